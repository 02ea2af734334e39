"""relabel_app.demo_audio: the synthesized demo clips and their segments CSV."""

from __future__ import annotations

import csv
import io
import re
import shutil
import time

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import load_audio
from relabel_app.audio_files import probe_audio, scan_audio_folder, ytid_from_filename
from relabel_app.demo_audio import (
    LABEL_NAMES,
    LABELS,
    DemoClip,
    demo_segments_csv,
    synthesize_demo_clips,
)

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    t0 = time.perf_counter()
    clips = synthesize_demo_clips(out, seed=0)
    return out, clips, time.perf_counter() - t0


def _by_slug(clips: list[DemoClip]) -> dict[str, DemoClip]:
    return {c.slug: c for c in clips}


def _amp(x: np.ndarray, sr: int, hz: float) -> float:
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * w)) * 2 / w.sum()
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spec[np.abs(f - hz) <= 2].max())


def test_files_are_ten_second_decodable_clips(demo):
    out, clips, seconds = demo
    assert len(clips) == 16
    assert seconds < 10.0
    assert sorted(p.name for p in out.iterdir()) == sorted(c.filename for c in clips)
    for c in clips:
        info = probe_audio(out / c.filename)
        assert (info.duration_s, info.sample_rate, info.channels, info.frames) == (
            10.0, 16000, 1, 160000), c.slug
        assert info.format == "WAV/PCM_16"
        y = load_audio(out / c.filename, 16000)
        assert y.shape == (160000,) and np.max(np.abs(y)) <= 1.0
        assert (c.start_s, c.end_s, c.sample_rate) == (0.0, 10.0, 16000)
        assert ytid_from_filename(c.filename) == (c.ytid, None)
    assert sorted(ytid for _, ytid, _ in scan_audio_folder(out)) == sorted(
        c.ytid for c in clips)


def test_ids_are_valid_unique_and_deterministic(demo, tmp_path):
    out, clips, _ = demo
    ids = [c.ytid for c in clips]
    assert len(set(ids)) == 16
    assert all(re.fullmatch(r"demo[A-Za-z0-9_-]{7}", i) for i in ids)
    again = synthesize_demo_clips(tmp_path / "again", seed=0)
    assert [c.ytid for c in again] == ids
    assert again == clips
    for c in clips:  # noise, clicks and speech alike: byte-identical files
        assert (tmp_path / "again" / c.filename).read_bytes() == (out / c.filename).read_bytes()
    other = synthesize_demo_clips(tmp_path / "other", seed=1)
    assert not set(c.ytid for c in other) & set(ids)
    assert [c.slug for c in other] == [c.slug for c in clips]
    assert [c.true_labels for c in other] == [c.true_labels for c in clips]
    white0 = sf.read(out / _by_slug(clips)["white_noise"].filename)[0]
    white1 = sf.read(tmp_path / "other" / _by_slug(other)["white_noise"].filename)[0]
    assert not np.array_equal(white0, white1)


def test_labels_are_trainable_classes_with_their_real_names():
    from relabel_app.ontology_source import load_ontology, wheel_path

    try:
        wheel_path(download=False)
    except FileNotFoundError as e:
        pytest.skip(f"ontology wheel not cached: {e}")
    onto = load_ontology()
    for name, mid in LABELS.items():
        c = onto.by_mid[mid]
        assert c.name == name
        assert c.index is not None, f"{name} is not trainable"
        assert not c.blacklisted and not c.abstract


def test_alterations(demo):
    _, clips, _ = demo
    for c in clips:
        assert c.true_labels and c.original_labels
        assert set(c.true_labels) | set(c.original_labels) <= set(LABEL_NAMES)
        assert len(set(c.original_labels)) == len(c.original_labels)
        if c.alteration == "none":
            assert c.original_labels == c.true_labels
            assert "correct" in c.notes
        elif c.alteration == "wrong":  # one true label replaced by a wrong one
            assert len(c.wrong_labels) == 1 and len(c.missing_labels) == 1
            assert LABEL_NAMES[c.wrong_labels[0]] in c.notes
            assert "wrong label" in c.notes
        else:
            assert c.alteration == "missing"
            assert c.wrong_labels == [] and len(c.missing_labels) == 1
            assert LABEL_NAMES[c.missing_labels[0]] in c.notes
    wrong = [c.slug for c in clips if c.alteration == "wrong"]
    missing = [c.slug for c in clips if c.alteration == "missing"]
    assert wrong == ["male_speech", "siren", "synth_chords", "busy_signal"]
    assert missing == ["white_noise", "clock", "speech_over_noise"]
    s = _by_slug(clips)
    assert s["male_speech"].wrong_labels == [LABELS["Female speech, woman speaking"]]
    assert s["male_speech"].missing_labels == [LABELS["Male speech, man speaking"]]
    assert s["siren"].original_labels == [LABELS["Music"]]
    assert s["busy_signal"].wrong_labels == [LABELS["Dial tone"]]
    assert s["clock"].missing_labels == [LABELS["Tick-tock"]]


def test_clips_sound_like_their_labels(demo):
    out, clips, _ = demo
    s = _by_slug(clips)

    def read(slug):
        return sf.read(out / s[slug].filename, dtype="float64")[0]

    sr = 16000
    x = read("sine_440")
    assert _amp(x, sr, 440) == pytest.approx(0.4, rel=0.02)
    dial = read("dial_tone")
    assert _amp(dial, sr, 350) > 0.15 and _amp(dial, sr, 440) > 0.15
    assert _amp(dial, sr, 480) < 0.01
    busy = read("busy_signal")
    assert _amp(busy, sr, 480) > 0.05 and _amp(busy, sr, 620) > 0.05
    assert _amp(busy, sr, 350) < 0.01
    env = np.sqrt(np.mean(busy.reshape(40, -1) ** 2, axis=1))  # 0.25 s frames
    on = env > 0.1  # 0.5 s on, 0.5 s off, starting at 0.25 s
    assert on.tolist() == [False, True, True, False] * 10
    assert np.sqrt(np.mean(read("silence") ** 2)) < 1e-3
    for slug in ("male_speech", "female_speech", "speech_over_noise", "speech_and_music"):
        y = read(slug)
        assert np.sqrt(np.mean(y**2)) > 0.02, slug
    # white noise: flat spectrum; pink: about -3 dB per octave
    for slug, ratio in (("white_noise", 1.0), ("pink_noise", 0.25)):
        p = np.abs(np.fft.rfft(read(slug))) ** 2
        f = np.fft.rfftfreq(160000, 1 / sr)
        low = p[(f > 500) & (f < 1000)].mean()
        high = p[(f > 2000) & (f < 4000)].mean()
        assert high / low == pytest.approx(ratio, rel=0.2), slug
    # the male and female espeak voices differ in pitch
    def pitch(y):
        seg = y[int(0.5 * sr):int(4.5 * sr)]
        ac = np.correlate(seg[:8000], seg[:8000], "full")[7999:]
        lo, hi = sr // 400, sr // 60
        return sr / (lo + np.argmax(ac[lo:hi]))
    assert pitch(read("male_speech")) < pitch(read("female_speech"))


def test_segments_csv(demo):
    _, clips, _ = demo
    text = demo_segments_csv(clips)
    lines = text.splitlines()
    assert lines[0].startswith("# Segments csv created")
    unique = {m for c in clips for m in c.original_labels}
    positives = sum(len(c.original_labels) for c in clips)
    assert lines[1] == (f"# num_ytids=16, num_segs=16, num_unique_labels={len(unique)}, "
                        f"num_positive_labels={positives}")
    assert lines[2] == "# YTID, start_seconds, end_seconds, positive_labels"
    rows = list(csv.reader(io.StringIO("\n".join(lines[3:])), skipinitialspace=True))
    assert len(rows) == 16
    for row, c in zip(rows, clips, strict=True):
        assert row == [c.ytid, "0.000", "10.000", ",".join(c.original_labels)]
    first = clips[0]
    assert lines[3] == f'{first.ytid}, 0.000, 10.000, "{",".join(first.original_labels)}"'
    assert text.endswith("\n")
