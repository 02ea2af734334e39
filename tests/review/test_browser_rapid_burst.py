"""Rapid mode keeps ahead of the keys (issue 18), in a real browser: thirty answers sent as
fast as Playwright types them, never waiting for the page; the web server is stopped for
two seconds in the middle (a TCP proxy in front of the live server). The page shows the
failure, and every answer reaches the database, in the order given, on its own clip."""

from __future__ import annotations

import time

import pytest

from tests.factories import UserFactory, label, make_dataset

from .test_browser_trust import Proxy, tolerant_page

pytestmark = pytest.mark.browser

KEYS = ("dog", "speech", "music", "siren", "bark")
N_CLIPS = 10  # three questions each: thirty answers


@pytest.fixture
def burst_setup(transactional_db, audio_root):
    from relabel_app.models import ClipLabel

    ds, clips = make_dataset("burst", audio_root, n_clips=N_CLIPS + 2, review_priority="order")
    for i, clip in enumerate(clips):
        for k in range(3):
            ClipLabel.objects.create(clip=clip, label=label(KEYS[(i + k) % len(KEYS)]))
    user = UserFactory(username="rita", password="s3cret-pass", role="reviewer")
    return {"clips": clips, "user": user}


def _decisions(user) -> list[tuple[str, str, str]]:
    from review.models import Decision

    return [(str(d.clip_id), d.label.mid, d.verdict) for d in
            Decision.objects.filter(reviewer=user).select_related("label").order_by("id")]


def test_rapid_burst_of_thirty_answers_with_the_server_away(burst_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    from review.models import ClipReview

    clips, user = burst_setup["clips"], burst_setup["user"]
    proxy = Proxy(int(live_server.url.rsplit(":", 1)[1]))
    proxy.start()
    base = f"http://localhost:{proxy.port}"
    verdicts = [("a", "accept"), ("r", "reject"), ("u", "unsure"), ("a", "accept"), ("r", "reject")]
    pressed: list[str] = []
    try:
        with tolerant_page(base, monkeypatch) as page:
            page.goto(base + "/")
            page.get_by_role("button", name="Rapid review").first.click()
            page.wait_for_selector("[data-question]:not([hidden])")

            def clip_keys(c: int) -> None:
                for k in range(3):
                    key, verdict = verdicts[(3 * c + k) % len(verdicts)]
                    page.keyboard.press(key)
                    pressed.append(verdict)
                page.keyboard.press("Enter")  # "Anything missing?": nothing

            for c in range(5):
                clip_keys(c)
            # The server away for two seconds; the keys go on.
            proxy.stop()
            stopped_at = time.monotonic()
            clip_keys(5)
            # The page says so (the first failure can take a moment: a request in flight).
            banner = page.locator("#unsaved-banner")
            expect(banner).to_be_visible(timeout=15_000)
            expect(banner).to_contain_text("not saved — the server cannot be reached")
            time.sleep(max(0.0, 2.0 - (time.monotonic() - stopped_at)))
            proxy.start()
            for c in range(6, N_CLIPS):
                clip_keys(c)
            # Every answer arrives once the server is back (the outbox retries in order).
            deadline = time.monotonic() + 30
            while len(_decisions(user)) < 30 and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            shown = page.evaluate("""() => Array.from(document.querySelectorAll('#questions [data-question]'))
                .map(q => [q.dataset.clip, q.dataset.mid])""")
            expect(page.locator("body")).to_have_attribute("data-unsaved", "0", timeout=30_000)
    finally:
        proxy.stop()

    got = _decisions(user)
    assert len(pressed) == 30
    # In the order answered, each on the clip and label its question showed.
    assert got == [(c, m, v) for (c, m), v in zip(shown[:30], pressed, strict=True)]
    assert [c for c, _, _ in got] == [str(clips[i].pk) for i in range(N_CLIPS) for _ in range(3)]
    assert set(ClipReview.objects.filter(reviewer=user).values_list("clip_id", flat=True)) >= {
        clips[i].pk for i in range(N_CLIPS - 1)}
