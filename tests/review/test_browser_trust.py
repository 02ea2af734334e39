"""A review screen an expert can trust (issue 21), in a real browser, each as the trial did
it: the cursor rule after the category dialog and after a mouse click, undo of the last
action, shortcuts after the Speed select, a spectrogram to the file's Nyquist frequency,
columns that stay still, and nothing lost while the web server is away (a TCP proxy in
front of the live server is stopped and started again). Each test checks the database."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from contextlib import contextmanager

import pytest

from tests.browser_support import CHROMIUM, log_in
from tests.factories import UserFactory, make_dataset, make_run, write_sine_wav

from . import test_browser_speed as _speed
from .test_browser_speed import ARGS, _save, _start, _verdicts, browser_page

speed_setup = _speed.speed_setup  # the fixture: five clips, six labels on the first

pytestmark = pytest.mark.browser
CURRENT = re.compile(r"\bis-current\b")


def _rows(page):
    return page.locator("#label-rows tr[data-mid]")


def _saved(page):
    # No data-unsaved yet: a fresh page that has sent nothing.
    page.wait_for_function("() => (document.body.dataset.unsaved || '0') === '0'")


def test_category_dialog_never_moves_the_cursor_back(speed_setup, live_server, monkeypatch):
    """a, r, e <category>, a: the reject stays, the next row is accepted."""
    from playwright.sync_api import expect

    clips, user = speed_setup["clips"], speed_setup["user"]
    with browser_page(live_server, monkeypatch) as page:
        _start(page, clips[0])
        rows = _rows(page)
        mids = [rows.nth(i).get_attribute("data-mid") for i in range(3)]
        page.keyboard.press("a")
        page.keyboard.press("r")
        page.keyboard.press("e")
        expect(page.locator("#category-dialog")).to_be_visible()
        expect(page.locator("#category-dialog [data-slot=label]")).to_have_text(
            rows.nth(1).get_attribute("data-name"))
        page.keyboard.press("4")
        expect(page.locator("#category-dialog")).to_be_hidden()
        expect(rows.nth(2)).to_have_class(CURRENT)
        page.keyboard.press("a")
        _saved(page)
        expect(rows.nth(1).locator(".errcat")).to_contain_text("Error: Original label wrong")
    from review.models import Decision

    assert _verdicts(user, clips[0]) == {mids[0]: "accept", mids[1]: "reject", mids[2]: "accept"}
    d = Decision.objects.get(reviewer=user, clip=clips[0], label__mid=mids[1])
    assert d.error_category.slug == "original-label-wrong"


def test_mouse_accept_then_r_rejects_the_next_row(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    clips, user = speed_setup["clips"], speed_setup["user"]
    with browser_page(live_server, monkeypatch) as page:
        _start(page, clips[0])
        rows = _rows(page)
        mids = [rows.nth(i).get_attribute("data-mid") for i in range(3)]
        rows.nth(1).get_by_role("button", name="Accept", exact=True).click()
        expect(rows.nth(2)).to_have_class(CURRENT)
        page.keyboard.press("r")
        _saved(page)
    assert _verdicts(user, clips[0]) == {mids[1]: "accept", mids[2]: "reject"}


def test_z_undoes_the_last_action_whichever_row(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    from review.models import DecisionLog

    clips, user = speed_setup["clips"], speed_setup["user"]
    with browser_page(live_server, monkeypatch) as page:
        _start(page, clips[0])
        rows = _rows(page)
        mids = [rows.nth(i).get_attribute("data-mid") for i in range(3)]
        page.keyboard.press("a")
        page.keyboard.press("r")
        expect(rows.nth(2)).to_have_class(CURRENT)
        # z: the reject on row 1 goes (the cursor had moved on), the cursor goes there.
        page.keyboard.press("z")
        expect(rows.nth(1)).to_have_class(CURRENT)
        expect(rows.nth(1)).to_have_attribute("data-verdict", "")
        _saved(page)
        assert _verdicts(user, clips[0]) == {mids[0]: "accept"}
        # Again: further back (Ctrl+Z works the same).
        page.keyboard.press("Control+z")
        expect(rows.nth(0)).to_have_attribute("data-verdict", "")
        _saved(page)
    assert _verdicts(user, clips[0]) == {}
    # Undo is a logged action like any other.
    assert DecisionLog.objects.filter(reviewer=user, action=DecisionLog.Action.UNDO).count() == 2


def test_keys_work_after_the_speed_select_and_zoom(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    clips, user = speed_setup["clips"], speed_setup["user"]
    with browser_page(live_server, monkeypatch) as page:
        _start(page, clips[0])
        rows = _rows(page)
        first = rows.nth(0).get_attribute("data-mid")
        page.select_option("[data-speed]", "1.5")
        page.keyboard.press("a")
        expect(rows.nth(0)).to_have_attribute("data-verdict", "accept")
        # After the zoom button, Space plays / pauses instead of zooming again.
        page.locator('[data-action="zoom-in"]').click()
        playing = page.evaluate("!window.ReviewPlayer.audio.paused")
        page.keyboard.press(" ")
        page.wait_for_function(f"() => window.ReviewPlayer.audio.paused === {'true' if playing else 'false'}")
        _saved(page)
    assert _verdicts(user, clips[0]) == {first: "accept"}


@pytest.fixture
def tone_setup(transactional_db, tmp_path):
    """Two 16 kHz clips: clip 0 with a 6 kHz tone (above the old 4 kHz cut), clip 1 at 220 Hz."""
    audio_root = tmp_path / "audio"
    audio_root.mkdir()
    ds, clips = make_dataset("tones", audio_root, n_clips=2, review_priority="order")
    write_sine_wav(audio_root / clips[0].audio_path, freq=6000.0)
    make_run(ds, threshold=0.25)
    UserFactory(username="rita", password="s3cret-pass", role="reviewer")
    return clips


TOP_HALF = """() => {
    const c = window.ReviewPlayer.spectrogramCanvases().filter(c => c.width && c.height)[0];
    const h = Math.floor(c.height / 2), d = c.getContext('2d').getImageData(0, 0, c.width, h).data;
    let n = 0, sum = 0, sq = 0;
    const rowMeans = [];
    for (let y = 0; y < h; y++) {
        let rs = 0;
        for (let x = 0; x < c.width; x++) {
            const i = 4 * (y * c.width + x), v = (d[i] + d[i+1] + d[i+2]) / 3;
            n++; sum += v; sq += v * v; rs += v;
        }
        rowMeans.push(rs / c.width);
    }
    const mean = sum / n;
    rowMeans.sort((a, b) => a - b);
    return {variance: sq / n - mean * mean,
            band: rowMeans[rowMeans.length - 1] - rowMeans[Math.floor(rowMeans.length / 2)]};
}"""


def test_spectrogram_reaches_the_nyquist_frequency(tone_setup, live_server, monkeypatch):
    clips = tone_setup
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        _start(page, clips[0])
        box = page.locator("[data-player]")
        assert box.get_attribute("data-max-hz") == "8000"
        assert page.evaluate("window.ReviewPlayer.ws.getDecodedData().sampleRate") == 16000
        tone = page.evaluate(TOP_HALF)
        # The 6 kHz tone bursts draw a bright band in the top half (the old 8 kHz decode
        # showed nothing above 4 kHz).
        assert tone["band"] > 40 and tone["variance"] > 100, tone
        # Linear scale: the same band, further down but still in the top half (6 of 8 kHz).
        page.keyboard.press("f")
        page.wait_for_function("() => document.querySelector('[data-player]').dataset.scale === 'linear'")
        page.wait_for_function("() => window.ReviewPlayer.specReady")
        assert page.evaluate(TOP_HALF)["band"] > 40
        page.keyboard.press("f")
        page.wait_for_function("() => window.ReviewPlayer.specReady")
        _save(page, "trust_clip_6khz_1280x720.png")
        # Zoomed in and scrolled, the Hz labels stay at the left edge of what is shown.
        page.keyboard.press("+")
        page.keyboard.press("+")
        page.wait_for_function("() => { const w = window.ReviewPlayer.ws.getWrapper();"
                               " return w.scrollWidth > w.parentElement.clientWidth + 100; }")
        page.evaluate("() => window.ReviewPlayer.ws.setScroll(300)")
        page.wait_for_function("""() => {
            const c = window.ReviewPlayer.ws.getWrapper().querySelector('canvas[part~="spec-labels"]');
            const edge = document.querySelector('[data-wave]').getBoundingClientRect().left;
            return window.ReviewPlayer.ws.getScroll() > 0 && Math.abs(c.getBoundingClientRect().left - edge) < 3;
        }""")
        # The 220 Hz clip has nothing up there.
        page.goto(live_server.url + f"/clips/{clips[1].pk}/")
        page.wait_for_selector("[data-player][data-ready='1']")
        low = page.evaluate(TOP_HALF)
        assert low["band"] < tone["band"] / 2, (low, tone)
        assert float(box.get_attribute("data-peak-dbfs")) < 0


def test_no_column_moves_across_ten_decisions(speed_setup, live_server, monkeypatch):
    clips = speed_setup["clips"]
    columns = """() => Array.from(document.querySelectorAll('#label-rows tr[data-mid]'))
        .map(r => Array.from(r.cells).map(c => Math.round(c.getBoundingClientRect().left)))"""
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        _start(page, clips[0])
        before = page.evaluate(columns)
        moved = []
        for key in "aruaraurar":
            page.keyboard.press(key)
            _saved(page)
            now = page.evaluate(columns)
            moved.append(max(abs(a - b) for ra, rb in zip(before, now, strict=True)
                             for a, b in zip(ra, rb, strict=True)))
        assert max(moved) <= 2, moved


class Proxy:
    """A TCP forwarder in front of the live server that can be stopped (connections
    refused, open ones cut) and started again on the same port: the web server away."""

    def __init__(self, target_port: int):
        self.target = target_port
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.listener = None
        self.conns: list[socket.socket] = []

    def start(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def stop(self) -> None:
        if self.listener:
            # shutdown wakes the thread blocked in accept(); close alone would leave the
            # socket listening until that call returns.
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        self.conns.clear()

    def _accept(self, ls) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextmanager
def tolerant_page(base_url, monkeypatch, width=1280, height=720):
    """A logged-in page whose failed loads (the server is away on purpose) are allowed;
    page errors (exceptions) are not."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(15_000)
        log_in(page, base_url, "rita", "s3cret-pass")
        yield page
        browser.close()
    assert not errors, errors


def test_nothing_is_lost_while_the_server_is_away(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    clips, user = speed_setup["clips"], speed_setup["user"]
    port = int(live_server.url.rsplit(":", 1)[1])
    proxy = Proxy(port)
    proxy.start()
    base = f"http://localhost:{proxy.port}"
    try:
        with tolerant_page(base, monkeypatch) as page:
            _start(page, clips[0])
            rows = _rows(page)
            mids = [rows.nth(i).get_attribute("data-mid") for i in range(2)]
            url = page.url
            proxy.stop()
            page.keyboard.press("a")
            page.keyboard.press("r")
            # The page stays; the rows say they are not saved; the reviewer is told.
            expect(rows.nth(0)).to_have_attribute("data-unsaved", "1")
            expect(rows.nth(0).locator(".unsaved-flag")).to_have_text("not saved — retrying")
            expect(page.locator("#unsaved-banner")).to_be_visible()
            page.wait_for_timeout(1500)
            assert page.url == url
            assert _verdicts(user, clips[0]) == {}
            _save(page, "trust_server_away_1280x720.png")
            # n waits for them (and says so) instead of leaving.
            page.keyboard.press("n")
            page.keyboard.press("n")
            page.wait_for_timeout(300)
            assert page.url == url
            proxy.start()
            # Saved in order without a reload; then the waiting n goes on.
            page.wait_for_url(f"**/clips/{clips[1].pk}/", timeout=30_000)
    finally:
        proxy.stop()
    assert _verdicts(user, clips[0]) == {mids[0]: "accept", mids[1]: "reject"}


def test_rapid_mode_asks_anything_missing_and_adds_a_label(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    from review.models import Decision

    clips, user = speed_setup["clips"], speed_setup["user"]
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        # Clip 1 first: its three questions (Music, Siren originals; the Pets candidate).
        page.goto(live_server.url + f"/rapid/clips/{clips[1].pk}/")
        q = page.locator("[data-question]:visible")
        expect(q).to_have_count(1)
        page.keyboard.press("a")
        # e: an error category and a note on the answer just given.
        page.keyboard.press("e")
        expect(page.locator("#category-dialog")).to_be_visible()
        page.locator("#category-note").fill("faint, far away")
        page.keyboard.press("Enter")
        expect(page.locator("#category-dialog")).to_be_hidden()
        for _ in range(2):
            expect(q).to_have_count(1)
            page.keyboard.press("r")
        missing = page.locator("#rapid-missing")
        expect(missing).to_be_visible()
        expect(missing.get_by_role("heading", name="Anything missing?")).to_be_visible()
        page.wait_for_selector("[data-player][data-ready='1']")
        _save(page, "trust_rapid_anything_missing_1280x720.png")
        page.keyboard.press("/")
        expect(page.locator("#label-search")).to_be_focused()
        page.keyboard.type("bark")
        page.keyboard.press("Enter")
        expect(page.locator("#missing-added")).to_contain_text("Added and accepted: Bark")
        # Enter: nothing else missing; on to the next clip's questions.
        page.keyboard.press("Enter")
        expect(missing).to_be_hidden()
        expect(q).to_have_count(1)
        expect(q).not_to_have_attribute("data-clip", str(clips[1].pk))
        _saved(page)
    got = {d.label.mid: (d.verdict, d.note) for d in
           Decision.objects.filter(reviewer=user, clip=clips[1]).select_related("label")}
    assert got["/m/05tny_"] == ("accept", "")  # Bark, added
    assert sorted(v for v, _ in got.values()) == ["accept", "accept", "reject", "reject"]
    assert "faint, far away" in {n for _, n in got.values()}
    from review.models import ClipReview

    assert ClipReview.objects.filter(reviewer=user, clip=clips[1]).exists()


def test_help_fits_at_720_and_the_page_at_1920(speed_setup, live_server, monkeypatch):
    from playwright.sync_api import expect

    clips = speed_setup["clips"]
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        _start(page, clips[0])
        page.keyboard.press("?")
        box = page.locator("#help .modal-box")
        expect(box).to_be_visible()
        _save(page, "trust_help_1280x720.png")
        # Every key of the map is listed (the help is drawn from it), and it all fits.
        keys = page.locator("#help table.keys kbd").all_text_contents()
        for k in ("a", "z", "Ctrl+Z / ⌘Z", "e", "f", "Space", "?"):
            assert k in keys, (k, keys)
        b = box.bounding_box()
        assert b["y"] >= 0 and b["y"] + b["height"] <= 720, b
        assert page.evaluate("() => { const m = document.querySelector('#help .modal-box');"
                             " return m.scrollHeight <= m.clientHeight + 1; }")
        page.keyboard.press("Escape")
        _save(page, "trust_clip_page_1280x720.png")
        # Folding "What the models said" is remembered on the next page.
        page.locator("#outputs > summary").click()
        page.reload()
        page.wait_for_selector("[data-player][data-ready='1']")
        assert page.evaluate("() => document.getElementById('outputs').open") is False
        page.locator("#outputs > summary").click()
    with browser_page(live_server, monkeypatch, width=1920, height=1080) as page:
        _start(page, clips[0])  # the clip leased to rita before
        spec = page.evaluate("() => window.ReviewPlayer.spectrogramCanvases()[0].height")
        assert spec > 112  # grows with the window
        _save(page, "trust_clip_page_1920x1080.png")


def test_search_results_are_visible_and_enter_never_loads_a_page(speed_setup, live_server,
                                                                 monkeypatch):
    from playwright.sync_api import expect

    clips, user = speed_setup["clips"], speed_setup["user"]
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        _start(page, clips[0])
        url = page.url
        page.evaluate("window.samePage = true")
        page.keyboard.press("/")
        page.keyboard.type("church bell")
        page.wait_for_selector("#search-results button.hit")
        # The results are on screen (above the box when there is no room below).
        hit = page.locator("#search-results button.hit.is-active")
        b = hit.bounding_box()
        assert b["y"] >= 0 and b["y"] + b["height"] <= 720, b
        # Typed and Enter at once (results still loading): waits, adds, stays on the page.
        page.keyboard.press("Escape")
        page.keyboard.press("/")
        page.keyboard.type("siren")
        page.keyboard.press("Enter")
        expect(page.locator('tr[data-mid="/m/03kmc9"]')).to_have_class(CURRENT)
        assert page.url == url and page.evaluate("window.samePage") is True
        _saved(page)
    assert _verdicts(user, clips[0]) == {"/m/03kmc9": "accept"}
