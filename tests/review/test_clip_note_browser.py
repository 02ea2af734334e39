"""A note on the clip, in a real browser (issue 21): `c` from the key map focuses the note
field, Enter saves it through the outbox, the keys go back to the label rows (the cursor
stays where it was), and a curator reads the note, escaped, on the adjudication page.
Screenshot: test-artifacts/clip_note.png."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser_support import ConsoleWatch, launch, log_in
from tests.factories import UserFactory, label, make_dataset

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NOTE = "two recordings overlap <b>loud</b> & a hum"


def test_note_on_the_clip_by_keyboard(transactional_db, audio_root, live_server, monkeypatch):
    from playwright.sync_api import expect, sync_playwright

    from relabel_app.models import ClipLabel
    from review.models import ClipNote, Decision

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    ds, clips = make_dataset("noted", audio_root, n_clips=2, review_priority="order")
    clip = clips[0]
    for key in ("dog", "speech"):
        ClipLabel.objects.create(clip=clip, label=label(key))
    user = UserFactory(username="nora", password="s3cret-pass")
    UserFactory(username="cora", password="s3cret-pass", role="curator")
    console = ConsoleWatch()
    base = live_server.url
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        console.attach(page)
        page.set_default_timeout(15_000)
        log_in(page, base, "nora", "s3cret-pass")
        page.goto(f"{base}/clips/{clip.pk}/")
        rows = page.locator("#label-rows tr[data-mid]")
        expect(rows.first).to_have_class(re.compile(r"\bis-current\b"))
        # The key is in the help overlay, drawn from the key map.
        page.keyboard.press("?")
        expect(page.locator("#help table.keys")).to_contain_text("note on the whole clip")
        page.keyboard.press("Escape")
        page.keyboard.press("c")
        field = page.locator("#clip-note")
        expect(field).to_be_focused()
        expect(field).to_have_value("")  # the key itself is not typed into it
        page.keyboard.type(NOTE)
        page.keyboard.press("Enter")
        expect(page.locator("#clip-note-form [data-slot=note-state]")).to_have_text("Note saved.")
        expect(page.locator("#clip-note")).to_have_value(NOTE)
        assert list(ClipNote.objects.values_list("clip_id", "text")) == [(clip.pk, NOTE)]
        page.screenshot(path=str(ARTIFACTS / "clip_note.png"), full_page=True)
        # The keys are the page's again, on the row the cursor was on.
        first_mid = rows.first.get_attribute("data-mid")
        page.keyboard.press("a")
        expect(rows.first).to_have_attribute("data-verdict", "accept")
        assert Decision.objects.get(clip=clip, reviewer=user).label.mid == first_mid
        assert page.url.endswith(f"/clips/{clip.pk}/")
        console.assert_no_csp_violations()
        assert not console.errors, console.errors

        # A curator reads it on the adjudication page, as text.
        cur = browser.new_context().new_page()
        cur.set_default_timeout(15_000)
        log_in(cur, base, "cora", "s3cret-pass")
        cur.goto(f"{base}/curation/clip/{clip.pk}/")
        notes = cur.locator("#clip-notes")
        expect(notes).to_contain_text("nora")
        expect(notes.locator("li")).to_contain_text(NOTE)
        expect(notes.locator("b")).to_have_count(0)
        browser.close()
