"""Review at expert speed, in a real browser (Debian's Chromium through Playwright): one key
per label, `A`, the undecided guard on `n`, Back after a change, rapid mode, the spectrogram,
the layout at 1280x720 and 1024 px, and "Add a label" refusing an abstract class. Each test
checks the database afterwards. Screenshots go to test-artifacts/ (and /work/screens/ when
that folder exists)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, log_in
from tests.factories import MIDS, UserFactory, add_result, label, make_dataset, make_run

from .test_browser import ARTIFACTS

pytestmark = pytest.mark.browser

CURRENT = re.compile(r"\bis-current\b")
SCREENS = Path("/work/screens")
# Autoplay without a gesture (the per-reviewer setting plays the clip when it opens).
ARGS = CHROMIUM_ARGS + ["--autoplay-policy=no-user-gesture-required"]

# Six labels for clip 0: three originals (one with a low CLAP score), three candidates.
ORIGINALS_0 = ("dog", "speech", "music")
CANDIDATES_0 = [
    ("bark", 0.41, "exact", "dog barking"),
    ("speech", 0.27, "fuzzy", "man talking"),  # 0.02 from the threshold: asked first
    ("siren", 0.31, "synonym", "a siren wails"),
    ("animal", 0.12, "synonym", "some animal"),
]


def _save(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    if SCREENS.is_dir():
        page.screenshot(path=str(SCREENS / f"c10review_{name}"))


@pytest.fixture
def speed_setup(transactional_db, audio_root):
    from pipeline.models import OriginalLabelScore
    from relabel_app.models import ClipLabel

    ds, clips = make_dataset("speed", audio_root, n_clips=5, review_priority="order")
    run = make_run(ds, threshold=0.25)
    for key in ORIGINALS_0:
        ClipLabel.objects.create(clip=clips[0], label=label(key))
    add_result(run, clips[0], candidates=CANDIDATES_0)
    OriginalLabelScore.objects.create(run=run, clip=clips[0], label=label("dog"), clap_score=0.08)
    OriginalLabelScore.objects.create(run=run, clip=clips[0], label=label("music"), clap_score=0.52)
    for clip, keys in ((clips[1], ("music", "siren")), (clips[2], ("dog", "bark")),
                       (clips[3], ("speech", "music")), (clips[4], ("siren", "animal"))):
        for key in keys:
            ClipLabel.objects.create(clip=clip, label=label(key))
        add_result(run, clip, candidates=[("pets", 0.2, "synonym", "a pet")])
    user = UserFactory(username="rita", password="s3cret-pass", role="reviewer")
    return {"dataset": ds, "clips": clips, "run": run, "user": user}


@contextmanager
def browser_page(live_server, monkeypatch, *, username="rita", width=1440, height=900):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM is used before and
    # after it, never while a page waits.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(15_000)
        log_in(page, live_server.url, username, "s3cret-pass")
        yield page
        browser.close()
    assert not [e for e in errors if "favicon" not in e], errors


def _start(page, clip):
    page.get_by_role("button", name="Start reviewing").click()
    page.wait_for_url(f"**/clips/{clip.pk}/")
    page.wait_for_selector("[data-player][data-ready='1']")


def _verdicts(user, clip) -> dict[str, str]:
    from review.models import Decision

    return {d.label.mid: d.verdict
            for d in Decision.objects.filter(reviewer=user, clip=clip).select_related("label")}


def test_one_key_per_label_accept_rest_and_the_guard_on_next(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    clips, user = speed_setup["clips"], speed_setup["user"]
    with browser_page(live_server, monkeypatch) as page:
        _start(page, clips[0])
        rows = page.locator("#label-rows tr[data-mid]")
        expect(rows).to_have_count(6)
        mids = [rows.nth(i).get_attribute("data-mid") for i in range(6)]
        # a, r, u: one key each, the cursor moves on by itself.
        for i, key in enumerate("aru"):
            expect(rows.nth(i)).to_have_class(CURRENT)
            page.keyboard.press(key)
            expect(rows.nth(i + 1)).to_have_class(CURRENT)
        for i, verdict in enumerate(("accept", "reject", "unsure")):
            expect(rows.nth(i)).to_have_attribute("data-verdict", verdict)
        # A: every undecided row accepted at once; 4 keys for 6 labels.
        page.keyboard.press("A")
        for i in range(3, 6):
            expect(rows.nth(i)).to_have_attribute("data-verdict", "accept")
        # Every row decided: n goes straight on.
        page.keyboard.press("n")
        page.wait_for_url(f"**/clips/{clips[1].pk}/")
        expect(page.locator("#label-rows tr[data-mid]")).to_have_count(3)
        # Undecided rows: n says how many and stays; Esc dismisses; n twice finishes.
        page.keyboard.press("a")
        expect(page.locator("#label-rows tr[data-mid]").first).to_have_attribute("data-verdict", "accept")
        page.keyboard.press("n")
        guard = page.locator("#next-guard")
        expect(guard).to_be_visible()
        expect(guard).to_contain_text("2 labels are still undecided")
        page.wait_for_timeout(300)
        assert page.url.endswith(f"/clips/{clips[1].pk}/")
        page.keyboard.press("Escape")
        expect(guard).to_be_hidden()
        page.keyboard.press("n")
        expect(guard).to_be_visible()
        page.keyboard.press("n")
        page.wait_for_url(f"**/clips/{clips[2].pk}/")

    from review.models import ClipReview

    assert _verdicts(user, clips[0]) == dict(zip(mids, ["accept", "reject", "unsure",
                                                        "accept", "accept", "accept"], strict=True))
    assert len(_verdicts(user, clips[1])) == 1
    assert set(ClipReview.objects.filter(reviewer=user).values_list("clip_id", flat=True)) == {
        clips[0].pk, clips[1].pk}


def test_back_after_next_shows_the_saved_verdict(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    clips, user = speed_setup["clips"], speed_setup["user"]
    with browser_page(live_server, monkeypatch) as page:
        _start(page, clips[0])
        first = page.locator("#label-rows tr[data-mid]").first
        mid = first.get_attribute("data-mid")
        page.keyboard.press("A")
        expect(first).to_have_attribute("data-verdict", "accept")
        # Change the verdict, then on to the next clip and back.
        first.get_by_role("button", name="Reject", exact=True).click()
        expect(first).to_have_attribute("data-verdict", "reject")
        page.keyboard.press("n")
        page.wait_for_url(f"**/clips/{clips[1].pk}/")
        response_headers = {}
        page.on("response", lambda r: r.url.endswith(f"/clips/{clips[0].pk}/")
                and response_headers.update(r.headers))
        page.go_back()
        page.wait_for_url(f"**/clips/{clips[0].pk}/")
        expect(page.locator(f'#label-rows tr[data-mid="{mid}"]')).to_have_attribute("data-verdict", "reject")
        assert "no-store" in response_headers.get("cache-control", "")
        page.go_forward()
        page.wait_for_url(f"**/clips/{clips[1].pk}/")
    assert _verdicts(user, clips[0])[mid] == "reject"


def test_rapid_session_of_ten_questions_with_one_undo(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    from review.models import ClipReview

    clips, user = speed_setup["clips"], speed_setup["user"]
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        page.get_by_role("button", name="Rapid review").click()
        page.wait_for_url(f"**/rapid/clips/{clips[0].pk}/")
        q = page.locator("[data-question]:visible")
        expect(q).to_have_count(1)
        # Near the threshold first: Speech (0.27 against 0.25), then the original with a
        # low CLAP score (Dog, 0.08), then candidates that are not original labels.
        expect(q).to_have_attribute("data-mid", MIDS["speech"])
        expect(q).to_have_attribute("data-clip", str(clips[0].pk))
        expect(q).to_contain_text("0.270")
        expect(q).to_contain_text("against threshold 0.25")
        page.wait_for_selector("[data-player][data-ready='1']")
        _save(page, "rapid_question_1280x720.png")
        asked: list[tuple[str, str]] = []
        # Ten questions, one z: the second answer is taken back and given again.
        keys = ["a", "r", "z", "a", "u", "a", "r", "a", "a", "r", "a", "a"]
        for key in keys:
            if key == "z":
                page.keyboard.press("z")
                asked.pop()
                continue
            if page.locator("#rapid-missing").is_visible():
                # A clip's last question was answered: "Anything missing?" - nothing.
                page.keyboard.press("Enter")
                expect(q).to_have_count(1)
            asked.append((q.get_attribute("data-clip"), q.get_attribute("data-mid")))
            before = (asked[-1][0], asked[-1][1], len(asked))
            page.keyboard.press(key)
            page.wait_for_function(
                """([clip, mid]) => { const e = document.querySelector('[data-question]:not([hidden])');
                    return !e || e.dataset.clip !== clip || e.dataset.mid !== mid; }""",
                arg=[before[0], before[1]])
        verdict = {"a": "accept", "r": "reject", "u": "unsure"}
        answers = [verdict[k] for k in keys if k != "z"]
        answers.pop(1)  # the z took back the second answer ("r"): it became the next "a"
        assert len(asked) == len(answers) == 10
        expected = dict(zip(asked, answers, strict=True))
        # The player moved on with the questions: it holds the current clip's audio.
        current = page.locator("[data-question]:visible").get_attribute("data-clip")
        assert current == str(clips[2].pk)
        page.wait_for_function(
            f"window.ReviewPlayer.audio.src.endsWith('/clips/{current}/audio/')")
        # Wait until the last answer is saved (the POSTs go out behind the questions).
        page.wait_for_function("() => document.body.dataset.unsaved === '0'")

    from review.models import Decision

    got = {(str(d.clip_id), d.label.mid): d.verdict
           for d in Decision.objects.filter(reviewer=user).select_related("label")}
    assert got == expected
    assert len(got) == 10
    # Clip 0 (six questions) and clip 1 (three) are finished; clip 2 is under way.
    finished = set(ClipReview.objects.filter(reviewer=user).values_list("clip_id", flat=True))
    assert {clips[0].pk, clips[1].pk} <= finished and clips[3].pk not in finished
    # The full screen shows the same verdicts.
    from django.test import Client

    c = Client()
    c.force_login(user)
    html = c.get(f"/clips/{clips[0].pk}/").content.decode()
    for (clip_id, mid), v in expected.items():
        if clip_id == str(clips[0].pk):
            assert re.search(rf'data-mid="{re.escape(mid)}"[^>]*data-verdict="{v}"', html), mid


def test_spectrogram_is_drawn_for_a_tone(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    clips = speed_setup["clips"]
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        _start(page, clips[0])
        stats = page.evaluate("""() => {
            const cs = window.ReviewPlayer.spectrogramCanvases().filter(c => c.width && c.height);
            const c = cs[0];
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0, sum = 0, sq = 0;
            for (let i = 0; i < d.length; i += 4) { const v = (d[i] + d[i+1] + d[i+2]) / 3; n++; sum += v; sq += v * v; }
            const mean = sum / n;
            return {count: cs.length, width: c.width, height: c.height, variance: sq / n - mean * mean,
                    labels: !!window.ReviewPlayer.spectrogramElement()
                            .querySelector('canvas[part~="spec-labels"]')};
        }""")
        assert stats["count"] >= 1 and stats["width"] > 100 and stats["height"] >= 100
        assert stats["variance"] > 100, stats  # a blank canvas has 0; the tone bursts draw bands
        assert stats["labels"]  # the Hz axis
        _save(page, "clip_page_1280x720.png")
        # s cycles waveform + spectrogram -> waveform -> spectrogram -> both.
        box = page.locator("[data-player]")
        for view in ("wave", "spec", "both"):
            page.keyboard.press("s")
            expect(box).to_have_attribute("data-view", view)
        # Autoplay (the default setting) started the clip; Space pauses it.
        page.wait_for_function("!window.ReviewPlayer.audio.paused")
        page.keyboard.press(" ")
        page.wait_for_function("window.ReviewPlayer.audio.paused")
        # Click to seek: three quarters along the player is three quarters of the clip.
        wave = page.locator("[data-player] .wave").bounding_box()
        page.mouse.click(wave["x"] + wave["width"] * 0.75, wave["y"] + 20)
        t = page.evaluate("window.ReviewPlayer.audio.currentTime")
        assert t == pytest.approx(1.5, abs=0.1)  # the clip lasts 2 s
        # Zoom in: the waveform gets wider than the player (it scrolls).
        page.keyboard.press("+")
        page.wait_for_function("window.ReviewPlayer.ws.getWrapper().scrollWidth > "
                               "window.ReviewPlayer.ws.getWrapper().parentElement.clientWidth + 10")
        # One clock: no native controls anywhere on the page.
        assert page.evaluate("document.querySelectorAll('audio[controls], video[controls]').length") == 0


def test_five_rows_above_the_fold_at_1280x720(speed_setup, live_server, monkeypatch):
    clips = speed_setup["clips"]
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        _start(page, clips[0])
        inside = page.evaluate("""() => Array.from(document.querySelectorAll('tr[data-mid]'))
            .filter(r => { const b = r.getBoundingClientRect(); return b.top >= 0 && b.bottom <= window.innerHeight; })
            .length""")
        assert inside >= 5, inside
        player = page.locator("[data-player]").bounding_box()
        assert player["y"] >= 0 and player["y"] + player["height"] <= 720


@pytest.mark.parametrize("role", ["reviewer", "curator"])
def test_nothing_overflows_at_1024(speed_setup, live_server, monkeypatch, role):
    from review.decisions import decision_record

    clips, user = speed_setup["clips"], speed_setup["user"]
    if role == "curator":
        user = UserFactory(username="cora", password="s3cret-pass", role="curator")
        decision_record(clip=clips[0], label=label("siren"), reviewer=speed_setup["user"],
                        verdict="accept")
    with browser_page(live_server, monkeypatch, username=user.username, width=1024, height=768) as page:
        _start(page, clips[0])
        assert page.evaluate("document.documentElement.scrollWidth") <= 1024
        # Words are never broken inside: the match tier stays on one line.
        heights = page.evaluate("""() => Array.from(document.querySelectorAll('td.match .tier'))
            .map(e => e.getClientRects().length)""")
        assert heights and all(h == 1 for h in heights), heights
        if role == "curator":
            _save(page, "clip_page_curator_1024.png")


def test_adding_an_abstract_class_is_refused(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    clips, user = speed_setup["clips"], speed_setup["user"]
    with browser_page(live_server, monkeypatch) as page:
        _start(page, clips[0])
        page.keyboard.press("/")
        page.keyboard.type("Human sounds")
        hit = page.locator("#search-results button.hit").first
        expect(hit).to_contain_text("abstract")
        expect(hit).to_contain_text("Add instead:")
        # An abstract class is never pre-selected (Enter would not add it); chosen on
        # purpose, it is refused with the reason.
        expect(hit).not_to_have_class(re.compile(r"\bis-active\b"))
        hit.click()
        refused = page.locator("#add-refused")
        expect(refused).to_be_visible()
        expect(refused).to_contain_text("Human sounds is an abstract class")
        expect(refused).to_contain_text("Add one of its trainable children instead: Whistling")
        expect(page.locator('tr[data-mid="/m/0dgw9r"]')).to_have_count(0)
    assert "/m/0dgw9r" not in _verdicts(user, clips[0])


def test_player_works_under_a_strict_csp(speed_setup, live_server, monkeypatch):
    """The CSP being added elsewhere (script-src 'self', style-src 'self' with a nonce): the
    player passes the nonce of <meta name="csp-nonce"> to wavesurfer's shadow-DOM <style>,
    and nothing of ours is inline; the spectrogram's Web Worker (a blob: URL) is allowed by
    worker-src, as in the real policy (settings). Simulated here by adding the header and the
    meta tag."""
    clips = speed_setup["clips"]
    nonce = "c10reviewNonce123"
    csp = (f"default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; "
           "img-src 'self' data:; media-src 'self'; worker-src 'self' blob:; connect-src 'self'")
    violations: list[str] = []

    def add_csp(route):
        response = route.fetch()
        # What the CSP's own change does to base.html: the nonce for scripts that need it,
        # and htmx told not to inject its indicator <style>.
        body = response.text().replace(
            "<head>", f'<head><meta name="csp-nonce" content="{nonce}">'
            """<meta name="htmx-config" content='{"includeIndicatorStyles": false}'>""", 1)
        route.fulfill(response=response, body=body,
                      headers={**response.headers, "content-security-policy": csp})

    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        page.on("console", lambda m: "Content Security Policy" in m.text and violations.append(m.text))
        page.route(f"**/clips/{clips[0].pk}/", add_csp)
        page.goto(live_server.url + f"/clips/{clips[0].pk}/")
        page.wait_for_selector("[data-player][data-ready='1']")
        assert page.evaluate("window.ReviewPlayer.spectrogramCanvases().length") >= 1
        # wavesurfer's own stylesheet applied (its cursor is positioned absolutely).
        assert page.evaluate("""() => getComputedStyle(window.ReviewPlayer.ws.getWrapper()
            .querySelector('.cursor')).position""") == "absolute"
    assert not violations, violations
