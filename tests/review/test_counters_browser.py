"""Counters right at once, in a real browser (issue 21, item 6): after `n` on the full
screen and in rapid mode, "clip k of N" and "still need review" equal a fresh count from
the database (no 30 s cache visible to the person who acted)."""

from __future__ import annotations

import re

import pytest

from tests.browser_support import launch, log_in
from tests.factories import UserFactory, label, make_dataset

pytestmark = pytest.mark.browser


def _fresh(dataset, user) -> int:
    from review.models import ClipReview, QueueSlot

    finished = ClipReview.objects.filter(reviewer=user, clip__dataset=dataset).values("clip_id")
    return (QueueSlot.objects.filter(dataset=dataset, done_by__isnull=True)
            .exclude(clip_id__in=finished).values("clip_id").distinct().count())


def _decide_all(clip_id: int, user) -> None:
    from relabel_app.models import Clip, Label
    from review.decisions import decision_record
    from review.selectors import clip_page_data

    clip = Clip.objects.get(pk=clip_id)
    for row in clip_page_data(clip=clip, reviewer=user, with_outputs=False).rows:
        if not row.verdict:
            decision_record(clip=clip, label=Label.objects.get(pk=row.label_id),
                            reviewer=user, verdict="accept")


def _shown(text: str) -> tuple[int, int, int]:
    k, n = re.search(r"clip (\d+) of (\d+)", text).groups()
    still = re.search(r"(\d+) clips? still needs? review", text).group(1)
    return int(k), int(n), int(still)


@pytest.mark.parametrize("mode", ["full", "rapid"])
def test_counters_after_n_equal_a_fresh_count(transactional_db, audio_root, live_server,
                                              monkeypatch, mode):
    from django.core.cache import cache
    from playwright.sync_api import expect, sync_playwright

    from relabel_app.models import ClipLabel

    cache.clear()
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ds, clips = make_dataset("counted", audio_root, n_clips=5, review_priority="order")
    for c in clips:
        ClipLabel.objects.create(clip=c, label=label("dog"))
    user = UserFactory(username="kim", password="s3cret-pass")
    button = "Start reviewing" if mode == "full" else "Rapid review"
    seen = []
    with sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.set_default_timeout(15_000)
        log_in(page, live_server.url, "kim", "s3cret-pass")
        page.get_by_role("button", name=button).first.click()
        counters = page.locator("#counters")
        expect(counters).to_contain_text("still need")
        seen.append(_shown(counters.inner_text()))
        for step in (1, 2):
            clip_id = clips[step - 1].pk
            if mode == "full":
                _decide_all(clip_id, user)
                page.reload()  # the decisions made on the server show on the page
                expect(page.locator("#counters")).to_contain_text("still need")
                page.locator("body").press("n")
                page.wait_for_url(f"**/clips/{clips[step].pk}/")
            else:
                # Rapid mode: answer the clip's one question with `a`, then "Anything
                # missing?" - nothing (Enter): that finishes the clip.
                page.locator("body").press("a")
                expect(page.locator("#rapid-missing")).to_be_visible()
                page.keyboard.press("Enter")
                page.wait_for_function(
                    "([k]) => (document.querySelector('#counters')?.innerText || '')"
                    ".includes('clip ' + k + ' of')", arg=[step + 1])
            expect(page.locator("#counters")).to_contain_text(f"clip {step + 1} of")
            seen.append(_shown(page.locator("#counters").inner_text()))
        browser.close()
    # The figures on the page against the database at the end: 2 clips finished of 5.
    assert seen[0] == (1, 5, 5)
    assert seen[1] == (2, 5, 4)
    assert seen[2] == (3, 5, 3) == (3, 5, _fresh(ds, user))
