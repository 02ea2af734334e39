"""A reviewer answers a 10-question study in a real browser, keyboard only (one z); the
curator's report shows the counts, and the AudioSet-format CSV has the exact header and
one row per class. Saves screenshots to test-artifacts/quality_*.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser_support import ConsoleWatch, launch, log_in
from tests.factories import UserFactory, make_dataset

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
DOG, SPEECH = "/m/0bt9lr", "/m/09x0r"


@pytest.fixture
def study_setup(transactional_db, tmp_path):
    from curation.quality.sampling import quality_study_create
    from relabel_app.models import ClipLabel, Label

    audio = tmp_path / "audio"
    audio.mkdir()
    ds, clips = make_dataset("qstudy", audio, n_clips=10)
    dog, speech = Label.objects.get(mid=DOG), Label.objects.get(mid=SPEECH)
    for i, c in enumerate(clips):
        ClipLabel.objects.create(clip=c, label=dog if i < 5 else speech)
    study = quality_study_create(dataset=ds, name="browser", sources=["original"],
                                 per_class=10, recall_clips=0, seed=5)
    UserFactory(username="rita", password="s3cret-pass")
    UserFactory(username="carl", password="s3cret-pass", role="curator")
    return {"study": study, "dataset": ds}


def test_keyboard_only_study(study_setup, live_server, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    from curation.quality.models import QualityAnswer, QualityQuestion
    from review.models import Decision

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    study = study_setup["study"]
    assert QualityQuestion.objects.filter(study=study).count() == 10
    ARTIFACTS.mkdir(exist_ok=True)
    console = ConsoleWatch()
    # Keys: 9 answers, one z (back to the 9th), its new answer, the 10th.
    keys = ["a", "a", "r", "a", "u", "a", "r", "a", "a", "z", "r", "a"]
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        console.attach(page)
        page.set_default_timeout(10_000)
        log_in(page, live_server.url, "rita", "s3cret-pass")
        page.screenshot(path=str(ARTIFACTS / "quality_home.png"))
        page.get_by_role("button", name="Answer quality study").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(rf".*/curation/quality/{study.pk}/answer/\??$"))
        visible = page.locator("[data-question]:visible")
        expect(visible).to_have_count(1)
        assert visible.get_attribute("data-mid") in (DOG, SPEECH)
        assert visible.get_attribute("data-clip")
        page.screenshot(path=str(ARTIFACTS / "quality_study.png"))
        seen = []
        for i, key in enumerate(keys):
            expect(page.locator("[data-question]:visible")).to_have_count(1)
            seen.append(page.locator("[data-question]:visible").get_attribute("data-question"))
            page.keyboard.press(key)
            if i == 9:  # after z: the 9th question again, with its answer shown
                expect(page.locator("[data-question]:visible [data-slot=verdict]")).to_contain_text("accept")
                assert page.locator("[data-question]:visible").get_attribute("data-question") == seen[8]
        expect(page.locator("#study-done")).to_be_visible()
        page.wait_for_function("() => true")
        console.assert_no_csp_violations()
        assert not console.errors, console.errors

        # The curator's report.
        page.context.clear_cookies()
        log_in(page, live_server.url, "carl", "s3cret-pass",
               next_path=f"/curation/dataset/qstudy/quality/{study.pk}/")
        expect(page.locator("#progress")).to_contain_text("10 / 10")
        page.screenshot(path=str(ARTIFACTS / "quality_report.png"), full_page=True)
        dog_row = page.locator(f'#classes tr[data-mid="{DOG}"]')
        speech_row = page.locator(f'#classes tr[data-mid="{SPEECH}"]')
        expect(dog_row).to_have_count(1)
        expect(speech_row).to_have_count(1)
        qa = page.request.get(f"{live_server.url}/curation/dataset/qstudy/quality/{study.pk}/csv/"
                              "?source=original")
        lines = qa.text().splitlines()
        browser.close()

    answers = dict(QualityAnswer.objects.filter(question__study=study)
                   .values_list("question__clip__position", "verdict"))
    assert len(answers) == 10
    verdicts = sorted(answers.values())
    assert verdicts.count("unsure") == 1 and verdicts.count("reject") == 3
    assert Decision.objects.filter(reviewer__username="rita").count() == 10
    assert lines[0] == "label_id,num_rated,num_true"
    assert len(lines) == 3 and {ln.split(",")[0] for ln in lines[1:]} == {DOG, SPEECH}
    rated = sum(int(ln.split(",")[1]) for ln in lines[1:])
    true = sum(int(ln.split(",")[2]) for ln in lines[1:])
    assert (rated, true) == (9, 6)
