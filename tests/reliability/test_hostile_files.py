"""Hostile audio files behind a dataset's clips: empty, truncated WAV, not audio, a huge
(sparse) file over the size limit, a zero-length WAV, NaN samples, 8 kHz and stereo 96 kHz.

dataset_match_audio marks each unreadable file with audio_status "error" and the reason;
the tiny profile through a real Celery worker gives each bad clip a clear error state
(the stage and the reason), converts the 8 kHz and stereo 96 kHz clips and processes them,
and the run completes."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import load_audio
from pipeline.models import Candidate, ClipResult, PipelineRun, StageStatus
from pipeline.services import run_dispatch, run_get_or_create, run_wait
from relabel_app.audio_files import DEFAULT_MAX_BYTES
from relabel_app.audio_matching import dataset_match_audio
from relabel_app.models import Clip, Dataset

SECONDS = 2.0


def _tone(rate: int, freqs: tuple[float, ...]) -> np.ndarray:
    t = np.arange(int(SECONDS * rate)) / rate
    chans = [0.3 * np.sin(2 * np.pi * f * t) for f in freqs]
    return np.stack(chans, axis=1) if len(chans) > 1 else chans[0]


def _wav_bytes(rate: int = 16000) -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, _tone(rate, (440.0,)), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_empty(p):
    p.write_bytes(b"")


def write_truncated(p):
    data = _wav_bytes()
    p.write_bytes(data[: len(data) // 3])  # an interrupted download


def write_text(p):
    p.write_text("This is not audio, just a text file with a .wav name.\n" * 50)


def write_huge(p):
    with open(p, "wb") as f:  # sparse: no gigabytes written
        f.write(_wav_bytes()[:44])
        f.truncate(DEFAULT_MAX_BYTES + 100 * 1024 * 1024)


def write_zero_length(p):
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")


def write_nan(p):
    x = _tone(16000, (440.0,)).astype(np.float32)
    x[100:200] = np.nan
    sf.write(p, x, 16000, subtype="FLOAT")


def write_8k(p):
    sf.write(p, _tone(8000, (440.0,)), 8000, subtype="PCM_16")


def write_stereo_96k(p):
    sf.write(p, _tone(96000, (440.0, 660.0)), 96000, subtype="PCM_24")


def write_good(p):
    p.write_bytes(_wav_bytes())


# ytid -> (writer, reason the file is refused, or None when it is usable)
FILES = {
    "hostEmpty00": (write_empty, "empty file (0 bytes)"),
    "hostTrunc00": (write_truncated, "truncated WAV"),
    "hostText000": (write_text, "not an audio file"),
    "hostHuge000": (write_huge, "file too large"),
    "hostZero000": (write_zero_length, "zero-length audio"),
    "hostNaN0000": (write_nan, "NaN"),
    "host8kHz000": (write_8k, None),
    "hostSt96k00": (write_stereo_96k, None),
    "hostGood000": (write_good, None),
}
# NaN samples are only seen when decoding: the header probe accepts the file.
DECODE_ONLY = {"hostNaN0000"}
EXPECTED_RATE = {"host8kHz000": 8000, "hostSt96k00": 96000, "hostGood000": 16000}


@pytest.fixture
def hostile_dataset(tmp_path):
    root = tmp_path / "hostile-audio"
    root.mkdir()
    for ytid, (write, _) in FILES.items():
        write(root / f"{ytid}.wav")
    ds = Dataset.objects.create(name="hostile", audio_root=str(root))
    Clip.objects.bulk_create([
        Clip(dataset=ds, ytid=ytid, start_s=0.0, end_s=10.0, position=i)
        for i, ytid in enumerate(FILES)
    ])
    return ds


def _peaks(audio: np.ndarray, rate: int, n: int) -> list[float]:
    spectrum = np.abs(np.fft.rfft(audio))
    freqs = np.fft.rfftfreq(len(audio), 1.0 / rate)
    return sorted(float(f) for f in freqs[np.argsort(spectrum)[-n:]])


def test_wrong_rates_and_channels_are_converted(tmp_path):
    """What the stages get: mono float32 at the model's rate, same duration, same tones
    (the stereo clip is the mean of its channels)."""
    for write, freqs in ((write_8k, [440.0]), (write_stereo_96k, [440.0, 660.0])):
        p = tmp_path / f"{write.__name__}.wav"
        write(p)
        for rate in (16000, 48000):
            audio = load_audio(p, rate)
            assert audio.dtype == np.float32 and audio.ndim == 1
            assert len(audio) == int(SECONDS * rate)
            assert _peaks(audio, rate, len(freqs)) == pytest.approx(freqs, abs=1.0)
            assert 0.05 < float(np.abs(audio).max()) <= 1.0


@pytest.mark.django_db
def test_match_audio_marks_unreadable_files_with_the_reason(hostile_dataset):
    report = dataset_match_audio(dataset_name="hostile")
    bad = [y for y, (_, reason) in FILES.items() if reason and y not in DECODE_ONLY]
    assert (report.matched, report.unreadable, report.missing) == (
        len(FILES) - len(bad), len(bad), 0)
    clips = {c.ytid: c for c in Clip.objects.filter(dataset=hostile_dataset)}
    for ytid, (_, reason) in FILES.items():
        c = clips[ytid]
        assert c.audio_path == f"{ytid}.wav"
        if ytid in bad:
            assert c.audio_status == Clip.AudioStatus.ERROR, ytid
            assert reason in c.audio_error, (ytid, c.audio_error)
            assert c.duration_s is None and c.sample_rate is None
        else:
            assert (c.audio_status, c.audio_error) == (Clip.AudioStatus.OK, ""), ytid
            assert c.duration_s == pytest.approx(SECONDS)
    for ytid, rate in EXPECTED_RATE.items():
        assert clips[ytid].sample_rate == rate


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_run_fails_bad_clips_with_reasons_and_completes(
    hostile_dataset, tiny_models, worker
):
    dataset_match_audio(dataset_name="hostile")
    run, _ = run_get_or_create(dataset=hostile_dataset, profile="tiny")
    run_dispatch(run=run)
    proc = worker()
    progress = run_wait(run=run, timeout_s=240, poll_s=0.5)
    assert proc.poll() is None, "the worker died"
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.DONE and run.finished_at is not None
    assert progress.total == len(FILES) == progress.filter + progress.failed
    assert progress.filter >= 1  # the usable clips went through every stage

    results = {r.clip.ytid: r for r in ClipResult.objects.filter(run=run).select_related("clip")}
    for ytid, (_, reason) in FILES.items():
        r = results[ytid]
        if reason:
            assert (r.error_stage, r.caption_status) == ("caption", StageStatus.FAILED), ytid
            assert reason in r.error and "AudioDecodeError" in r.error, (ytid, r.error)
            assert (r.predict_status, r.match_status, r.filter_status) == (
                StageStatus.PENDING,) * 3
            assert not Candidate.objects.filter(run=run, clip=r.clip).exists()
        else:
            # Converted and captioned; random weights may answer nothing parseable, which
            # is a recorded predict failure, not a crash.
            assert r.caption_status == StageStatus.DONE, (ytid, r.error)
            assert r.caption["attempts"] and r.summary, ytid
            if r.error_stage:
                assert (r.error_stage, r.error) == ("predict", "answer parsed to no labels")
            else:
                assert r.filter_status == StageStatus.DONE, ytid
                assert not Candidate.objects.filter(run=run, clip=r.clip,
                                                    clap_score__isnull=True).exists()
