"""The next clip without a page load (issue 18), in a real browser: twenty clips reviewed by
keyboard with the in-place swap (every decision on the right clip in the database, the URL
follows the clip, Back and Forward show saved verdicts, a reload shows the same state), and
the spectrogram of a swapped-in clip is drawn and is that clip's (a tone after a noise)."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from tests.factories import UserFactory, label, make_dataset

from .test_browser_speed import CURRENT, _start, _verdicts, browser_page

pytestmark = pytest.mark.browser

KEYS = ("dog", "speech", "music", "siren")
VERDICT_OF = {"a": "accept", "r": "reject", "u": "unsure"}

# Per spectrogram canvas: the share of pixel rows (frequency bands) clearly brighter than
# the darkest, and the pixel variance (a blank canvas has 0).
SPECTRUM_JS = """() => {
    const cs = window.ReviewPlayer.spectrogramCanvases().filter(c => c.width && c.height);
    const c = cs[0];
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const rows = [];
    let n = 0, sum = 0, sq = 0;
    for (let y = 0; y < c.height; y++) {
        let r = 0;
        for (let x = 0; x < c.width; x++) {
            const i = 4 * (y * c.width + x), v = (d[i] + d[i+1] + d[i+2]) / 3;
            r += v; n++; sum += v; sq += v * v;
        }
        rows.push(r / c.width);
    }
    const lo = Math.min(...rows), hi = Math.max(...rows), mid = lo + (hi - lo) / 2;
    const mean = sum / n;
    return {bright: rows.filter(r => r > mid).length / rows.length,
            variance: sq / n - mean * mean, clip: document.getElementById('review').dataset.clip};
}"""


def write_noise_wav(path, seconds: float = 2.0, rate: int = 16000) -> None:
    samples = np.random.default_rng(7).normal(0, 0.3, int(seconds * rate))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.fixture
def twenty(transactional_db, audio_root):
    from relabel_app.models import ClipLabel

    ds, clips = make_dataset("twenty", audio_root, n_clips=20, review_priority="order")
    for i, clip in enumerate(clips):
        for key in (KEYS[i % 4], KEYS[(i + 1) % 4]):
            ClipLabel.objects.create(clip=clip, label=label(key))
    # The first clip is loud noise over every band; the second a tone (one band).
    write_noise_wav(audio_root / clips[0].audio_path)
    user = UserFactory(username="rita", password="s3cret-pass", role="reviewer")
    return {"dataset": ds, "clips": clips, "user": user}


def _rows_verdicts(page) -> dict[str, str]:
    return page.evaluate("""() => Object.fromEntries(Array.from(
        document.querySelectorAll('#label-rows tr[data-mid]')).map(r => [r.dataset.mid, r.dataset.verdict]))""")


def _wait_clip(page, clip) -> None:
    page.wait_for_url(f"**/clips/{clip.pk}/")
    page.wait_for_selector(f'#review[data-clip="{clip.pk}"] #label-rows tr[data-mid]')


def test_twenty_clips_by_keyboard_swapped_in_place(twenty, live_server, monkeypatch):
    from playwright.sync_api import expect

    clips, user = twenty["clips"], twenty["user"]
    expected: dict[int, dict[str, str]] = {}
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        _start(page, clips[0])
        # Gone with any full page load: the swaps below must keep it.
        page.evaluate("window.sameDocument = 'yes'")
        noise = page.evaluate(SPECTRUM_JS)
        assert noise["clip"] == str(clips[0].pk) and noise["variance"] > 100, noise
        for i, clip in enumerate(clips):
            _wait_clip(page, clip)
            assert page.evaluate("window.sameDocument") == "yes", f"clip {i} was a full page load"
            rows = page.locator("#label-rows tr[data-mid]")
            expect(rows).to_have_count(2)
            mids = [rows.nth(k).get_attribute("data-mid") for k in range(2)]
            keys = ("a", "r") if i % 3 else ("r", "u")
            for k, key in enumerate(keys):
                expect(rows.nth(k)).to_have_class(CURRENT)
                page.keyboard.press(key)
            expected[clip.pk] = {mids[k]: VERDICT_OF[key] for k, key in enumerate(keys)}
            if i == 1:
                # The swapped-in tone clip's own spectrogram, drawn: one bright band, where
                # the noise clip before it was bright across the frequency axis.
                page.wait_for_selector("[data-player][data-ready='1']")
                tone = page.evaluate(SPECTRUM_JS)
                assert tone["clip"] == str(clip.pk) and tone["variance"] > 100, tone
                assert noise["bright"] > 0.3 and tone["bright"] < 0.12, (noise, tone)
            if i < len(clips) - 1:
                # n waits for the unsaved decisions (the outbox), then swaps the next clip in.
                page.keyboard.press("n")
        expect(page.locator("body")).to_have_attribute("data-unsaved", "0")
        expect(page.locator("#label-rows tr[data-mid]:not([data-verdict=''])")).to_have_count(2)
        assert _rows_verdicts(page) == expected[clips[-1].pk]

        # Back: the previous clips in place, with their saved verdicts.
        for back in (clips[-2], clips[-3]):
            page.go_back()
            _wait_clip(page, back)
            expect(page.locator("#label-rows tr[data-mid]:not([data-verdict=''])")).to_have_count(2)
            assert _rows_verdicts(page) == expected[back.pk]
        assert page.evaluate("window.sameDocument") == "yes"
        page.wait_for_selector("[data-player][data-ready='1']")
        # Reload: the same state from the server.
        page.reload()
        _wait_clip(page, clips[-3])
        assert page.evaluate("window.sameDocument") is None
        assert _rows_verdicts(page) == expected[clips[-3].pk]
        page.go_forward()
        _wait_clip(page, clips[-2])
        assert _rows_verdicts(page) == expected[clips[-2].pk]

    for clip in clips:
        assert _verdicts(user, clip) == expected[clip.pk], clip.position


# The player's decks: the live one and the next clip prepared off screen (player.js prepare).
DECKS_JS = """() => {
    const p = window.ReviewPlayer, sb = p.standby, box = p.box;
    const spec = (deck) => {
        const labels = deck.ws.getWrapper().querySelector('canvas[part~="spec-labels"]');
        const cs = labels ? Array.from(labels.parentElement.querySelectorAll('canvas'))
            .filter(c => c.getAttribute('part') !== 'spec-labels' && c.width && c.height) : [];
        return {canvases: cs.length, height: cs.length ? cs[0].height : 0};
    };
    return {
        clip: document.getElementById('review').dataset.clip,
        tag: p.ws.testTag || null, src: p.audio.src, scale: p.spectrogram.options.scale,
        live: spec(p.deck), zoom: p.ws.options.minPxPerSec || 0,
        wave: box.querySelectorAll('[data-wave]').length,
        waveInBox: box.querySelector('[data-wave]') === p.deck.container,
        waveRole: p.deck.container.getAttribute('role'),
        audios: box.querySelectorAll('audio[data-audio]').length,
        liveAudio: box.querySelector('audio[data-audio]') === p.audio,
        maxHz: box.dataset.maxHz, boxScale: box.dataset.scale, peak: box.dataset.peakDbfs,
        standby: sb ? {src: sb.audio.src, wave: sb.waveReady, spec: sb.specReady,
                       scale: sb.spectrogram.options.scale, tall: sb.tall,
                       hidden: getComputedStyle(sb.container).visibility === 'hidden'
                               && sb.container.getAttribute('aria-hidden') === 'true'
                               && !sb.container.hasAttribute('data-wave')
                               && !sb.audio.hasAttribute('data-audio'),
                       drawn: spec(sb), decoded: sb.ws.getDecodedData()
                                  ? sb.ws.getDecodedData().sampleRate : null} : null,
    };
}"""

PREPARED_JS = """(audio) => { const sb = window.ReviewPlayer.standby;
    return !!sb && sb.audio.src.endsWith(audio) && sb.waveReady && sb.specReady; }"""


def _decide_all(page) -> None:
    from playwright.sync_api import expect

    rows = page.locator("#label-rows tr[data-mid]")
    expect(rows).to_have_count(2)
    for k in range(2):
        expect(rows.nth(k)).to_have_class(CURRENT)
        page.keyboard.press("a")
        expect(rows.nth(k)).to_have_attribute("data-verdict", "accept")
    expect(page.locator("body")).to_have_attribute("data-unsaved", "0")


def test_next_clip_is_prepared_off_screen_and_swapped_in(twenty, live_server, monkeypatch):
    """While a clip is on screen the next one is loaded, decoded and drawn (waveform and
    spectrogram) in a hidden second wavesurfer; "n" swaps that very one in: no new load, its
    spectrogram is the swapped-in clip's own (the tone after the noise), one audio element and
    one waveform box stay, and the page's settings (Hz scale, tall, zoom) carry over; a
    setting changed after the preparation prepares the next clip again."""
    clips = twenty["clips"]
    audio = lambda clip: f"/clips/{clip.pk}/audio/"  # noqa: E731
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        _start(page, clips[0])
        page.wait_for_function(PREPARED_JS, arg=audio(clips[1]))
        before = page.evaluate(DECKS_JS)
        sb = before["standby"]
        assert sb["hidden"] and sb["decoded"] == 16000, before
        assert sb["drawn"]["canvases"] >= 1 and sb["drawn"]["height"] == before["live"]["height"]
        assert before["wave"] == 1 and before["audios"] == 1 and before["liveAudio"], before
        # Mark the prepared wavesurfer: after "n" it must be the one on screen.
        page.evaluate("window.ReviewPlayer.standby.ws.testTag = 'prepared-1'")
        _decide_all(page)
        page.keyboard.press("n")
        _wait_clip(page, clips[1])
        page.wait_for_selector("[data-player][data-ready='1']")
        after = page.evaluate(DECKS_JS)
        assert after["tag"] == "prepared-1" and after["src"].endswith(audio(clips[1])), after
        assert after["wave"] == 1 and after["waveInBox"] and after["waveRole"] == "img", after
        assert after["audios"] == 1 and after["liveAudio"] and after["maxHz"] == "8000", after
        # The peak level is the tone's (0.6 of full scale at most), not the clipped noise's.
        assert float(before["peak"]) > -0.5 and -8 < float(after["peak"]) < -3, (before, after)
        tone = page.evaluate(SPECTRUM_JS)
        assert tone["clip"] == str(clips[1].pk) and tone["bright"] < 0.12, tone
        # The finished clip's audio is stopped and gone.
        assert page.evaluate("""() => Array.from(document.querySelectorAll('audio'))
            .every(a => a === window.ReviewPlayer.audio || a === window.ReviewPlayer.standby?.audio)""")

        # Settings changed after clip 2 was prepared: it is prepared again with them.
        page.wait_for_function(PREPARED_JS, arg=audio(clips[2]))
        page.evaluate("window.ReviewPlayer.standby.ws.testTag = 'stale'")
        page.keyboard.press("f")  # Hz scale: linear
        page.locator('[data-action="tall"]').click()
        page.locator('[data-action="zoom-in"]').click()
        page.wait_for_function(PREPARED_JS, arg=audio(clips[2]))
        page.wait_for_function("window.ReviewPlayer.standby.ws.testTag !== 'stale'"
                               " && window.ReviewPlayer.standby.tall")
        mid = page.evaluate(DECKS_JS)
        assert mid["standby"]["scale"] == "linear" and mid["scale"] == "linear", mid
        assert mid["zoom"] > 0, mid
        page.evaluate("window.ReviewPlayer.standby.ws.testTag = 'prepared-2'")
        page.wait_for_selector("[data-player][data-ready='1']")
        _decide_all(page)
        page.keyboard.press("n")
        _wait_clip(page, clips[2])
        page.wait_for_selector("[data-player][data-ready='1']")
        page.wait_for_function("window.ReviewPlayer.ws.options.minPxPerSec > 0")
        last = page.evaluate(DECKS_JS)
        assert last["tag"] == "prepared-2" and last["scale"] == "linear", last
        assert last["boxScale"] == "linear" and last["zoom"] == mid["zoom"], last
        assert last["live"]["height"] == mid["live"]["height"] > before["live"]["height"], last


def test_next_before_the_next_clip_is_prepared(twenty, live_server, monkeypatch):
    """"n" pressed while the next clip is still being prepared (its audio held back by the
    network): the half-prepared clip is swapped in, says it is loading, and becomes ready with
    its own audio and spectrogram once the audio arrives; the finished clip stops playing."""
    import contextlib
    import threading

    from playwright.sync_api import Error as PlaywrightError

    clips = twenty["clips"]
    release = threading.Event()
    with browser_page(live_server, monkeypatch, width=1280, height=720) as page:
        held = []

        def hold(route):
            if release.is_set():
                route.continue_()
            else:
                held.append(route)

        page.route(f"**/clips/{clips[1].pk}/audio/", hold)
        _start(page, clips[0])
        page.wait_for_function("() => !!window.ReviewPlayer.standby")
        assert page.evaluate("window.ReviewPlayer.standby.waveReady") is False
        _decide_all(page)
        page.keyboard.press("n")
        _wait_clip(page, clips[1])
        page.wait_for_function("() => window.ReviewPlayer.audio.src.endsWith("
                               f"'/clips/{clips[1].pk}/audio/')")
        assert page.evaluate("document.querySelector('[data-player]').dataset.ready") == ""
        assert page.evaluate("document.getElementById('wave-status').hidden") is False
        assert page.evaluate("Array.from(document.querySelectorAll('audio')).every("
                             "a => a === window.ReviewPlayer.audio || a.paused)")
        release.set()
        for route in held:
            with contextlib.suppress(PlaywrightError):  # a request the page gave up meanwhile
                route.continue_()
        page.wait_for_selector("[data-player][data-ready='1']")
        tone = page.evaluate(SPECTRUM_JS)
        assert tone["clip"] == str(clips[1].pk) and tone["bright"] < 0.12, tone
        assert page.evaluate("document.getElementById('wave-status').hidden") is True
