"""The review screen in a real browser (Debian's Chromium through Playwright), keyboard only:
decide on labels, tag errors, add a missing label, go to the next clip; then check the
database. Saves a screenshot of the clip page to test-artifacts/clip_page.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser_support import ConsoleWatch, launch, log_in
from tests.factories import MIDS, UserFactory, add_result, make_dataset, make_run

pytestmark = pytest.mark.browser
CURRENT = re.compile(r"\bis-current\b")  # the row the keys act on
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def browser_setup(transactional_db, audio_root):
    from relabel_app.models import ClipLabel
    from tests.factories import label

    ds, clips = make_dataset("demo", audio_root, n_clips=2, review_priority="order",
                             description="Two sine clips for the browser test.")
    for key in ("dog", "speech"):
        ClipLabel.objects.create(clip=clips[0], label=label(key))
    ClipLabel.objects.create(clip=clips[1], label=label("music"))
    run = make_run(ds, profile="tiny", random_weights=True, threshold=0.25)
    add_result(run, clips[0], answers={
        "round1": "A dog barks several times while a man talks quietly; a siren wails far "
                  "away. <b>not bold</b>",
        "round2": "A calm adult male voice speaking English.",
        "round3": None,
    }, candidates=[
        ("bark", 0.41, "exact", "dog barking"),
        ("speech", 0.30, "fuzzy", "man talking"),
        ("music", 0.12, "synonym", "background tune"),
    ])
    add_result(run, clips[1], candidates=[("music", 0.33, "exact", "music")])
    user = UserFactory(username="rita", password="s3cret-pass")
    return {"dataset": ds, "clips": clips, "user": user}


def test_keyboard_only_review(browser_setup, live_server, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM is only used
    # before it starts and after it stops, but Django checks the loop, not our discipline.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    clips = browser_setup["clips"]
    ARTIFACTS.mkdir(exist_ok=True)
    console = ConsoleWatch()

    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        console.attach(page)
        page.set_default_timeout(10_000)

        # Log in.
        log_in(page, live_server.url, "rita", "s3cret-pass")

        # Start reviewing (the button, reached with the keyboard).
        page.get_by_role("button", name="Start reviewing").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/clips/{clips[0].pk}/")
        expect(page.locator("#label-rows tr[data-mid]")).to_have_count(4)
        expect(page.get_by_text("These captions and labels come from random-weight test "
                                "models (tiny profile) and mean nothing.")).to_be_visible()
        # Model text is shown as text, never as markup.
        expect(page.locator("dl.rounds").first).to_contain_text("<b>not bold</b>")
        # Every row has the three decision buttons, by accessible name.
        dog = page.locator(f'tr[data-mid="{MIDS["dog"]}"]')
        for name in ("Accept", "Reject", "Unsure"):
            expect(dog.get_by_role("button", name=name, exact=True)).to_be_visible()
        # The waveform was decoded from the served audio.
        expect(page.locator("#wave-status")).to_be_hidden()

        # The first row (Dog, an original label) has the focus: reject it...
        expect(dog).to_have_class(CURRENT)
        page.keyboard.press("r")
        expect(dog).to_have_attribute("data-verdict", "reject")
        # ...and say why: 'e' opens the categories, '4' is "Original label wrong".
        page.keyboard.press("e")
        expect(page.locator("#category-dialog")).to_be_visible()
        page.keyboard.press("4")
        expect(page.locator("#category-dialog")).to_be_hidden()
        expect(dog.locator(".errcat")).to_contain_text("Error: Original label wrong")

        # The dialog left the cursor where the reject put it (the next row, Speech): one
        # row down to Bark (a kept candidate) and accept it: Dog is now implied by it.
        page.keyboard.press("ArrowDown")
        bark = page.locator(f'tr[data-mid="{MIDS["bark"]}"]')
        expect(bark).to_have_class(CURRENT)
        page.keyboard.press("a")
        expect(bark).to_have_attribute("data-verdict", "accept")
        expect(dog.locator("td.flags")).to_contain_text("contradiction")

        # Add a missing label: '/' to search, type, Enter adds the best match.
        page.keyboard.press("/")
        expect(page.locator("#label-search")).to_be_focused()
        page.keyboard.type("siren")
        page.keyboard.press("Enter")
        siren = page.locator(f'tr[data-mid="{MIDS["siren"]}"]')
        expect(siren).to_have_attribute("data-verdict", "accept")
        expect(siren).to_contain_text("added by reviewer")
        expect(siren).to_have_class(CURRENT)
        page.keyboard.press("e")
        page.keyboard.press("5")  # "Original label missing"
        expect(siren.locator(".errcat")).to_contain_text("Error: Original label missing")

        # The help overlay lists the keys.
        page.keyboard.press("?")
        expect(page.locator("#help")).to_be_visible()
        page.keyboard.press("?")
        expect(page.locator("#help")).to_be_hidden()

        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "clip_page.png"), full_page=True)

        # Next clip. Speech and Music are undecided: n says so and asks for n again.
        page.keyboard.press("n")
        expect(page.locator("#next-guard")).to_contain_text("2 labels are still undecided")
        page.keyboard.press("n")
        page.wait_for_url(f"**/clips/{clips[1].pk}/")
        expect(page.locator(f'tr[data-mid="{MIDS["music"]}"]')).to_be_visible()
        browser.close()

    console.assert_no_csp_violations()
    assert not console.errors, console.errors
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE")

    from review.models import ClipReview, Decision, QueueSlot

    got = {
        (d.label.mid, d.verdict, d.error_category.slug if d.error_category else None)
        for d in Decision.objects.filter(reviewer=browser_setup["user"]).select_related(
            "label", "error_category")
    }
    assert got == {
        (MIDS["dog"], "reject", "original-label-wrong"),
        (MIDS["bark"], "accept", None),
        (MIDS["siren"], "accept", "original-label-missing"),
    }
    assert ClipReview.objects.filter(clip=clips[0], reviewer=browser_setup["user"]).exists()
    assert QueueSlot.objects.get(clip=clips[1]).leased_to == browser_setup["user"]

