"""The adjudication flow in a real browser (Debian's Chromium through Playwright), keyboard
only: from the adjudication queue through five clips with j/k, a, r, c and n; then check
the database. Saves screenshots of the queue and of a clip to /work/screens/ (when it
exists) and test-artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, log_in
from tests.factories import UserFactory, label, make_dataset

pytestmark = pytest.mark.browser

CURRENT = re.compile(r"\bis-current\b")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SCREENS = Path("/work/screens")


@pytest.fixture
def adjudication_setup(transactional_db, tmp_path):
    """Six clips with audio. Each has the original label Dog, accepted by one reviewer and
    rejected by the other (a disagreement); clip 0 also has Speech, marked unsure (two
    disputed labels: it comes first). The rest follow in dataset order."""
    from relabel_app.models import ClipLabel
    from review.models import Decision

    audio_root = tmp_path / "audio"
    audio_root.mkdir()
    ds, clips = make_dataset("adjdemo", audio_root, n_clips=6)
    r1 = UserFactory(username="ann")
    r2 = UserFactory(username="ben")
    UserFactory(username="cura", role="curator", password="s3cret-pass")
    dog, speech = label("dog"), label("speech")
    for c in clips:
        ClipLabel.objects.create(clip=c, label=dog)
        Decision.objects.create(clip=c, label=dog, reviewer=r1, verdict="accept",
                                note="I hear a bark <b>twice</b>")
        Decision.objects.create(clip=c, label=dog, reviewer=r2, verdict="reject")
    ClipLabel.objects.create(clip=clips[0], label=speech)
    Decision.objects.create(clip=clips[0], label=speech, reviewer=r2, verdict="unsure")
    return {"dataset": ds, "clips": clips}


def test_five_clips_by_keyboard(adjudication_setup, live_server, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    from .conftest import MIDS

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    clips = adjudication_setup["clips"]
    ARTIFACTS.mkdir(exist_ok=True)
    console_errors: list[str] = []
    dog_row = f'tr[data-mid="{MIDS["dog"]}"]'
    speech_row = f'tr[data-mid="{MIDS["speech"]}"]'

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        page.set_default_timeout(10_000)

        log_in(page, live_server.url, "cura", "s3cret-pass", "/curation/")
        page.get_by_role("link", name="Adjudication queue").click()
        page.wait_for_url("**/curation/dataset/adjdemo/adjudicate/")
        expect(page.locator("table.adj-queue tbody tr[data-clip-id]")).to_have_count(6)
        expect(page.locator('.reason-filters a[data-reason="disagree"] .count')).to_have_text("6")
        expect(page.locator('.reason-filters a[data-reason="unsure"] .count')).to_have_text("1")
        page.screenshot(path=str(ARTIFACTS / "adjudication_queue.png"), full_page=True)

        # "Next to adjudicate", reached with the keyboard.
        page.get_by_role("link", name="Next to adjudicate").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/curation/clip/{clips[0].pk}/?queue=all&rank=0*")

        # Clip 0: the player preloads; every reviewer's verdict and note, the ontology path
        # and the link to the review page are there.
        audio = page.locator("[data-player] audio")
        expect(audio).to_have_attribute("preload", "auto")
        # The review screen's player: waveform and spectrogram drawn once the audio decoded.
        page.wait_for_selector("[data-player][data-ready='1']")
        page.wait_for_function("document.querySelector('[data-player] audio').readyState >= 1")
        expect(page.get_by_role("link", name="Open the clip's review page")).to_have_attribute(
            "href", f"/clips/{clips[0].pk}/")
        dog = page.locator(dog_row)
        expect(dog).to_contain_text("ann: accept")
        expect(dog).to_contain_text("“I hear a bark <b>twice</b>”")  # text, not markup
        expect(dog).to_contain_text("Animal > Domestic animals, pets > Dog")
        # Rows: Speech (index 0) first, then Dog. Reject Speech, move down, accept Dog.
        speech = page.locator(speech_row)
        expect(speech).to_have_class(CURRENT)
        page.keyboard.press("r")
        expect(speech).to_have_attribute("data-adjudication", "reject")
        # The review screen's cursor rule: on to the next row without an adjudication.
        expect(dog).to_have_class(CURRENT)
        page.keyboard.press("a")
        expect(dog).to_have_attribute("data-adjudication", "accept")
        expect(dog).to_have_class(CURRENT)  # still current after htmx swapped the row
        page.keyboard.press("k")
        expect(speech).to_have_class(CURRENT)
        page.screenshot(path=str(ARTIFACTS / "adjudication_clip.png"), full_page=True)
        if SCREENS.is_dir():
            page.screenshot(path=str(SCREENS / "d11curate_adjudication_clip.png"),
                            full_page=True)

        # Clip 0 left the queue; "n" goes to the clip now first: clip 1. Reject its Dog.
        page.keyboard.press("n")
        page.wait_for_url(f"**/curation/clip/{clips[1].pk}/?queue=all&rank=0*")
        page.keyboard.press("r")
        expect(page.locator(dog_row)).to_have_attribute("data-adjudication", "reject")

        # Clip 2: accept, then clear (the majority applies again), then reject.
        page.keyboard.press("n")
        page.wait_for_url(f"**/curation/clip/{clips[2].pk}/*")
        page.keyboard.press("a")
        expect(page.locator(dog_row)).to_have_attribute("data-adjudication", "accept")
        page.keyboard.press("c")
        expect(page.locator(dog_row)).to_have_attribute("data-adjudication", "")
        page.keyboard.press("r")
        expect(page.locator(dog_row)).to_have_attribute("data-adjudication", "reject")

        # Clip 3: accept. Clip 4: accept.
        for clip in clips[3:5]:
            page.keyboard.press("n")
            page.wait_for_url(f"**/curation/clip/{clip.pk}/*")
            page.keyboard.press("a")
            expect(page.locator(dog_row)).to_have_attribute("data-adjudication", "accept")

        # The sixth clip is the only one left.
        page.keyboard.press("n")
        page.wait_for_url(f"**/curation/clip/{clips[5].pk}/*")
        page.goto(live_server.url + "/curation/dataset/adjdemo/adjudicate/")
        expect(page.locator("table.adj-queue tbody tr[data-clip-id]")).to_have_count(1)
        if SCREENS.is_dir():
            page.screenshot(path=str(SCREENS / "d11curate_adjudication_queue.png"),
                            full_page=True)
        browser.close()

    assert not console_errors, console_errors
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE")

    from curation.models import Adjudication, AdjudicationLog

    got = {(a.clip_id, a.label.mid, a.verdict)
           for a in Adjudication.objects.select_related("label")}
    assert got == {
        (clips[0].pk, MIDS["speech"], "reject"), (clips[0].pk, MIDS["dog"], "accept"),
        (clips[1].pk, MIDS["dog"], "reject"), (clips[2].pk, MIDS["dog"], "reject"),
        (clips[3].pk, MIDS["dog"], "accept"), (clips[4].pk, MIDS["dog"], "accept"),
    }
    assert list(AdjudicationLog.objects.filter(clip=clips[2]).values_list(
        "action", "after_verdict")) == [("record", "accept"), ("clear", ""),
                                        ("record", "reject")]


def test_clip_page_shows_why_and_the_table_starts_within_1280x720(adjudication_setup,
                                                                   live_server, monkeypatch):
    """Issue 21, item 9: at 1280x720 the label table starts on screen under a compact
    player; the page says why the clip is queued, marks the disputed rows and shows the
    CLAP score of the original labels."""
    from playwright.sync_api import expect, sync_playwright

    from pipeline.models import OriginalLabelScore, PipelineRun

    from .conftest import MIDS

    clips = adjudication_setup["clips"]
    run = PipelineRun.objects.create(
        dataset=adjudication_setup["dataset"], profile_name="tiny", status="done",
        config={"random_weights": False, "filter": {"threshold": 0.3}})
    OriginalLabelScore.objects.create(run=run, clip=clips[0], label=label("dog"),
                                      clap_score=0.197)
    OriginalLabelScore.objects.create(run=run, clip=clips[0], label=label("speech"),
                                      clap_score=0.41)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.set_default_timeout(10_000)
        log_in(page, live_server.url, "cura", "s3cret-pass", "/curation/")
        page.goto(f"{live_server.url}/curation/clip/{clips[0].pk}/"
                  f"?queue=all&rank=0&run={run.pk}")
        page.wait_for_selector("[data-player][data-ready='1']")
        why = page.locator("#queue-why")
        expect(why).to_contain_text("Reviewers disagree · 1 label")
        expect(why).to_contain_text("Unsure votes · 1 label")
        dog = page.locator(f'tr[data-mid="{MIDS["dog"]}"]')
        expect(dog).to_have_attribute("data-disputed", "disagree clap_low")
        expect(dog).to_contain_text("original · CLAP 0.197")
        first_row = page.locator("#adj-rows tbody tr").first
        box = first_row.bounding_box()
        page.screenshot(path=str(ARTIFACTS / "adjudication_clip_1280x720.png"))
        if SCREENS.is_dir():
            page.screenshot(path=str(SCREENS / "d21trust_adjudication_clip_1280x720.png"))
        browser.close()
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE")
    # The first label row starts within the window (the trial found the table at y=610).
    assert box is not None and box["y"] + 40 < 720, box
