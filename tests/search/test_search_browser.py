"""Search in a real browser on the demo data (tiny CLAP, random weights: the mechanics, not
the meaning), keyboard only: find, select three results with x, add a class with Enter;
the decisions are in the database and on each clip's page. "Clips like this" opens and
moves with j. A class sweep by keyboard. Screenshots: test-artifacts/search_find.png,
search_similar.png, search_sweep.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser_support import ConsoleWatch, launch, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DOG, SPEECH = "/m/0bt9lr", "/m/09x0r"
CURRENT = re.compile(r"\bis-current\b")


@pytest.fixture
def indexed_demo(transactional_db, demo_dataset, tiny_models):
    from pipeline.embed_jobs import embed_chunk, embed_profile_spec
    from pipeline.embeddings import EmbeddingSpace
    from relabel_app.models import Clip
    from search.services import index_build_now

    spec, rw = embed_profile_spec("tiny")
    ids = list(Clip.objects.filter(dataset=demo_dataset).order_by("id").values_list("id", flat=True))
    embed_chunk(spec, ids, rw)
    index_build_now(dataset=demo_dataset, space=EmbeddingSpace.objects.get())
    user = UserFactory(username="rita", password="s3cret-pass")
    return demo_dataset, ids, user


def test_find_select_three_add_class_then_similar_and_sweep(indexed_demo, live_server, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    from relabel_app.models import ClipLabel, Label
    from review.models import Decision

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ds, ids, user = indexed_demo
    dog = Label.objects.get(mid=DOG)
    speech = Label.objects.get(mid=SPEECH)
    speech_clips = set(ClipLabel.objects.filter(clip__dataset=ds, label=speech)
                       .values_list("clip_id", flat=True))
    ARTIFACTS.mkdir(exist_ok=True)
    console = ConsoleWatch()
    base = live_server.url
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        console.attach(page)
        page.set_default_timeout(15_000)
        log_in(page, base, "rita", "s3cret-pass")

        # The navigation's link, then a search typed and sent with the keyboard.
        page.get_by_role("link", name="Find by sound").first.click()
        page.wait_for_url(re.compile(rf".*/datasets/{ds.pk}/find/$"))
        page.get_by_label("Sound description").fill("dog barking")
        page.get_by_label("Class to add").select_option(DOG)  # submits the form (autosubmit)
        page.wait_for_url(re.compile(r".*q=dog\+barking.*"))
        rows = page.locator("tr[data-result]")
        expect(rows).to_have_count(16)
        expect(page.get_by_text("16 clip(s) indexed", exact=False)).to_have_count(0)
        page.locator("h1").click()  # focus off the form's fields: keys go to the list
        expect(rows.nth(0)).to_have_class(CURRENT)
        page.keyboard.press("x")
        page.keyboard.press("j")
        page.keyboard.press("j")
        page.keyboard.press("x")
        page.keyboard.press("j")
        page.keyboard.press("x")
        expect(page.locator("[data-selected-count]")).to_have_text("3 selected")
        chosen = [int(rows.nth(i).get_attribute("data-clip")) for i in (0, 2, 3)]
        button = page.get_by_role("button", name="Add Dog to selected")
        expect(button).to_be_enabled()
        page.screenshot(path=str(ARTIFACTS / "search_find.png"), full_page=True)
        page.keyboard.press("Enter")
        expect(page.locator(".messages")).to_contain_text("Dog added to 3 clips.")
        got = Decision.objects.filter(reviewer=user, label=dog)
        assert sorted(got.values_list("clip_id", flat=True)) == sorted(chosen)
        assert set(got.values_list("verdict", "source")) == {("accept", "search")}
        # On each clip's page, Dog is there as the reviewer's accepted label.
        for cid in chosen:
            page.goto(f"{base}/clips/{cid}/")
            row = page.locator(f"#label-{dog.pk}")
            expect(row).to_contain_text("Dog")
            expect(row.get_by_role("button", name=re.compile("Accept"))).to_have_attribute(
                "aria-pressed", "true")

        # "Clips like this": folded, fetched when opened; j moves inside the panel.
        page.goto(f"{base}/clips/{chosen[0]}/")
        panel = page.locator("#similar")
        expect(panel.locator("tr[data-result]")).to_have_count(0)
        panel.locator("summary").click()
        similar = panel.locator("tr[data-result]")
        expect(similar).to_have_count(12)
        similar.nth(0).focus()
        page.keyboard.press("j")
        expect(similar.nth(0)).to_have_class(CURRENT)
        page.keyboard.press("j")
        expect(similar.nth(1)).to_have_class(CURRENT)
        panel.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "search_similar.png"), full_page=True)

        # A sweep of Speech by keyboard: reject the first (least similar), accept the next.
        page.goto(f"{base}/datasets/{ds.pk}/sweep/m/09x0r/")
        sweep_rows = page.locator("tr[data-result]")
        expect(sweep_rows).to_have_count(len(speech_clips))
        first = int(sweep_rows.nth(0).get_attribute("data-clip"))
        second = int(sweep_rows.nth(1).get_attribute("data-clip"))
        page.keyboard.press("r")
        expect(sweep_rows.nth(0)).to_have_attribute("data-verdict", "reject")
        expect(sweep_rows.nth(1)).to_have_class(CURRENT)
        page.keyboard.press("a")
        expect(sweep_rows.nth(1)).to_have_attribute("data-verdict", "accept")
        page.screenshot(path=str(ARTIFACTS / "search_sweep.png"), full_page=True)
        page.get_by_role("link", name="Likely missing").click()
        expect(page.locator("tr[data-result]").first).to_be_visible()
        missing = {int(x) for x in page.locator("tr[data-result]").evaluate_all(
            "rows => rows.map(r => r.dataset.clip)")}
        assert missing and not missing & speech_clips
        browser.close()
    verdicts = dict(Decision.objects.filter(reviewer=user, label=speech)
                    .values_list("clip_id", "verdict"))
    assert verdicts == {first: "reject", second: "accept"}
    console.assert_no_csp_violations()
