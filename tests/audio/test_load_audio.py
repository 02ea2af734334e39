"""pipeline.audio: decoding, mixdown, resampling, hostile files, WAV encoding."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from pipeline.audio import AudioDecodeError, encode_wav_bytes, load_audio, resample
from relabel_app.audio_files import sniff_container


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float64)


def peak_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


def band_amp(x: np.ndarray, sr: int, hz: float) -> float:
    """Amplitude of the sinusoid at ``hz`` (windowed FFT, peak of the nearby bins)."""
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * w)) * 2 / w.sum()
    f = np.fft.rfftfreq(len(x), 1 / sr)
    near = np.abs(f - hz) <= 3 * sr / len(x)
    return float(spec[near].max())


# ------------------------------------------------------------------------------ decoding


@pytest.mark.parametrize(
    "subtype, tol",
    [("PCM_U8", 2e-2), ("PCM_16", 1e-4), ("PCM_24", 1e-6), ("PCM_32", 1e-6),
     ("FLOAT", 1e-7), ("DOUBLE", 1e-7)],
)
def test_wav_bit_depths_decode_to_float32(tmp_path, subtype, tol):
    x = sine(440, 16000, 1.0)
    p = tmp_path / f"x_{subtype}.wav"
    sf.write(p, x, 16000, subtype=subtype)
    assert sf.info(p).subtype == subtype
    y = load_audio(p, 16000)
    assert y.dtype == np.float32 and y.ndim == 1 and y.shape == (16000,)
    assert np.max(np.abs(y - x)) < tol
    assert peak_hz(y, 16000) == pytest.approx(440, abs=1.0)


def test_stereo_96k_to_mono_48k_keeps_frequency_and_filters_alias(tmp_path):
    sr = 96000
    left = sine(1000, sr, 2.0, 0.6) + sine(30000, sr, 2.0, 0.3)  # 30 kHz: above 24 kHz
    right = sine(1000, sr, 2.0, 0.2)
    p = tmp_path / "stereo96k.wav"
    sf.write(p, np.stack([left, right], axis=1), sr, subtype="FLOAT")
    y = load_audio(p, 48000)
    assert y.dtype == np.float32 and y.shape == (96000,)  # 2.0 s at 48 kHz
    assert peak_hz(y, 48000) == pytest.approx(1000, abs=1.0)
    assert band_amp(y, 48000, 1000) == pytest.approx(0.4, rel=0.01)  # mean of 0.6 and 0.2
    # 30 kHz would alias to 18 kHz without the anti-aliasing filter: 0.15 after the mix
    assert band_amp(y, 48000, 18000) < 1e-3


def test_long_multichannel_file_is_mixed_block_by_block(tmp_path):
    sr = 48000
    n = 1_300_000  # more than one 2**20-frame block
    t = np.arange(n) / sr
    chans = np.stack([0.3 * np.sin(2 * np.pi * 500 * t), np.full(n, 0.3),
                      -0.3 * np.sin(2 * np.pi * 500 * t), np.full(n, -0.3)], axis=1)
    chans[:, 0] += 0.2 * np.sin(2 * np.pi * 500 * t)
    p = tmp_path / "quad.flac"
    sf.write(p, chans, sr, format="FLAC", subtype="PCM_24")
    y = load_audio(p, sr)
    assert y.shape == (n,)
    assert np.max(np.abs(y - 0.05 * np.sin(2 * np.pi * 500 * t))) < 1e-5


@pytest.mark.parametrize("sr_in, sr_out", [(44100, 16000), (8000, 16000), (22050, 32000),
                                           (44101, 16000), (16000, 16000)])
def test_resample_lengths_and_frequency(tmp_path, sr_in, sr_out):
    x = sine(440, sr_in, 1.5)
    p = tmp_path / "r.wav"
    sf.write(p, x, sr_in, subtype="PCM_16")
    y = load_audio(p, sr_out)
    assert abs(len(y) - len(x) * sr_out / sr_in) <= 1
    assert peak_hz(y, sr_out) == pytest.approx(440, abs=1.0)
    assert band_amp(y, sr_out, 440) == pytest.approx(0.5, rel=0.01)


def test_resample_2d_and_identity():
    x = np.zeros((1000, 2), np.float32)
    assert resample(x, 16000, 8000).shape == (500, 2)
    assert resample(x, 16000, 16000) is x
    with pytest.raises(ValueError):
        resample(x, 0, 16000)


@pytest.mark.parametrize("fmt, ext", [("FLAC", "flac"), ("OGG", "ogg")])
def test_flac_and_ogg(tmp_path, fmt, ext):
    x = sine(1000, 44100, 2.0)
    p = tmp_path / f"a.{ext}"
    sf.write(p, np.stack([x, x], axis=1), 44100, format=fmt)
    y = load_audio(p, 16000)
    assert len(y) == 32000
    assert peak_hz(y, 16000) == pytest.approx(1000, abs=1.0)
    assert band_amp(y, 16000, 1000) == pytest.approx(0.5, rel=0.05)


def test_mp3_written_by_libsndfile(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} has no MP3 support")
    x = sine(1000, 44100, 2.0)
    p = tmp_path / "a.mp3"
    sf.write(p, x, 44100, format="MP3")
    y = load_audio(p, 16000)
    assert abs(len(y) - 32000) < 0.05 * 32000  # MP3 adds encoder delay / padding
    assert peak_hz(y, 16000) == pytest.approx(1000, abs=1.0)
    assert band_amp(y, 16000, 1000) == pytest.approx(0.5, rel=0.1)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_mp3_written_by_ffmpeg(tmp_path):
    src = tmp_path / "src.wav"
    sf.write(src, sine(660, 48000, 3.0), 48000, subtype="PCM_16")
    p = tmp_path / "lame.mp3"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "libmp3lame",
                    "-b:a", "128k", str(p)], check=True, timeout=60)
    y = load_audio(p, 16000)
    assert abs(len(y) - 48000) < 0.05 * 48000
    assert peak_hz(y, 16000) == pytest.approx(660, abs=1.0)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_m4a_falls_back_to_ffmpeg_and_averages_channels(tmp_path):
    x = sine(1000, 48000, 3.0)
    src = tmp_path / "src.wav"
    sf.write(src, np.stack([x, np.zeros_like(x)], axis=1), 48000, subtype="PCM_16")
    p = tmp_path / "a.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "aac", str(p)],
                   check=True, timeout=60)
    with pytest.raises(Exception):  # noqa: B017 - libsndfile cannot read AAC
        sf.info(p)
    y = load_audio(p, 16000)
    assert abs(len(y) - 48000) < 0.03 * 48000
    assert peak_hz(y, 16000) == pytest.approx(1000, abs=1.0)
    # mean of (x, 0) like the soundfile path, not ffmpeg's default -3 dB downmix
    assert band_amp(y, 16000, 1000) == pytest.approx(0.25, rel=0.05)
    with pytest.raises(AudioDecodeError, match="corrupt or truncated mp4"):
        load_audio(p, 16000, use_ffmpeg=False)


# ------------------------------------------------------------------------------ hostile


def _wav(tmp_path, seconds=1.0, sr=16000, name="ok.wav"):
    p = tmp_path / name
    sf.write(p, sine(440, sr, seconds), sr, subtype="PCM_16")
    return p


def test_decode_error_is_value_error():
    assert issubclass(AudioDecodeError, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(AudioDecodeError, match="file not found") as ei:
        load_audio(tmp_path / "nope.wav", 16000)
    assert ei.value.path.endswith("nope.wav") and ei.value.reason == "file not found"


def test_directory(tmp_path):
    with pytest.raises(AudioDecodeError, match="not a regular file"):
        load_audio(tmp_path, 16000)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match=r"empty file \(0 bytes\)"):
        load_audio(p, 16000)


def test_zero_length_wav(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0), 16000, subtype="PCM_16")
    assert p.stat().st_size == 44
    with pytest.raises(AudioDecodeError, match=r"zero-length audio \(0 frames\)"):
        load_audio(p, 16000)


def test_truncated_wav_data(tmp_path):
    data = _wav(tmp_path).read_bytes()
    p = tmp_path / "cut.wav"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioDecodeError,
                       match=r"truncated WAV: data chunk declares 32000 bytes but only 15978"):
        load_audio(p, 16000)


def test_truncated_wav_header(tmp_path):
    p = tmp_path / "hdr.wav"
    p.write_bytes(_wav(tmp_path).read_bytes()[:30])
    with pytest.raises(AudioDecodeError, match="truncated WAV: header ends at byte 30"):
        load_audio(p, 16000)


def test_wav_header_claiming_huge_data(tmp_path):
    data = bytearray(_wav(tmp_path).read_bytes())
    assert data[36:40] == b"data"
    data[40:44] = (0x7FFF0000).to_bytes(4, "little")
    p = tmp_path / "liar.wav"
    p.write_bytes(bytes(data))
    with pytest.raises(AudioDecodeError, match="truncated WAV"):
        load_audio(p, 16000)


def test_truncated_flac(tmp_path):
    src = tmp_path / "a.flac"
    sf.write(src, sine(1000, 48000, 3.0), 48000, format="FLAC")
    data = src.read_bytes()
    p = tmp_path / "cut.flac"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioDecodeError, match="corrupt or truncated FLAC"):
        load_audio(p, 16000)


def test_random_bytes_named_wav(tmp_path):
    p = tmp_path / "random.wav"
    p.write_bytes(np.random.default_rng(7).bytes(50_000))
    assert sniff_container(p) is None
    with pytest.raises(AudioDecodeError, match="not an audio file"):
        load_audio(p, 16000)


@pytest.mark.parametrize("content", [
    "hello, this is not audio\n" * 200,
    "#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/x.mp3\n",  # a playlist must not be fetched
    '{"data": [{"wav": "a.wav"}]}',
])
def test_text_file(tmp_path, content):
    p = tmp_path / "text.wav"
    p.write_text(content)
    with pytest.raises(AudioDecodeError, match="not an audio file"):
        load_audio(p, 16000)


def test_oversized_file_small_limit(tmp_path):
    p = _wav(tmp_path)
    size = p.stat().st_size
    with pytest.raises(AudioDecodeError, match=f"file too large: {size} bytes is over the "
                                               f"limit of 1000 bytes"):
        load_audio(p, 16000, max_bytes=1000)
    assert len(load_audio(p, 16000, max_bytes=size)) == 16000


def test_oversized_sparse_file_default_limit_is_refused_before_reading(tmp_path):
    p = tmp_path / "huge.wav"
    with open(p, "wb") as f:
        f.write(_wav(tmp_path).read_bytes()[:44])
        f.truncate(300 * 1024 * 1024)  # sparse: no disk used, 300 MiB > 200 MiB default
    with pytest.raises(AudioDecodeError, match="file too large: 314572800 bytes"):
        load_audio(p, 16000)


def test_too_long(tmp_path):
    p = _wav(tmp_path, seconds=3.0)
    with pytest.raises(AudioDecodeError, match=r"too long: 3\.0 s is over the limit of 2 s"):
        load_audio(p, 16000, max_duration_s=2)
    assert len(load_audio(p, 16000, max_duration_s=3)) == 48000


def test_non_finite_samples(tmp_path):
    x = sine(440, 16000, 0.5).astype(np.float32)
    x[100] = np.nan
    p = tmp_path / "nan.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match="NaN or infinite"):
        load_audio(p, 16000)


def test_bad_target_rate(tmp_path):
    with pytest.raises(ValueError, match="target_sr"):
        load_audio(_wav(tmp_path), 0)


# ------------------------------------------------------------------------------ encoding


def test_encode_wav_bytes_roundtrip(tmp_path):
    x = sine(440, 16000, 1.0, 0.9).astype(np.float32)
    x[:10] = 1.5  # clipped
    data = encode_wav_bytes(x, 16000)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert len(data) == 44 + 2 * 16000
    info = sf.info(io.BytesIO(data))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (
        16000, 1, 16000, "PCM_16")
    y, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == 16000
    assert np.allclose(y[:10], 32767 / 32768)
    assert np.max(np.abs(y[10:] - x[10:])) <= 0.5 / 32768 + 1e-7
    p = tmp_path / "enc.wav"
    p.write_bytes(data)
    assert np.max(np.abs(load_audio(p, 16000)[10:] - x[10:])) <= 0.5 / 32768 + 1e-7
    neg = encode_wav_bytes(np.array([-1.0, -2.0, 0.0], np.float32), 16000)
    assert np.array_equal(sf.read(io.BytesIO(neg), dtype="int16")[0], [-32768, -32768, 0])


def test_encode_wav_bytes_stereo_int16_and_errors():
    st = np.zeros((100, 2), np.float32)
    assert sf.info(io.BytesIO(encode_wav_bytes(st, 8000))).channels == 2
    pcm = np.arange(-50, 50, dtype=np.int16)
    y, _ = sf.read(io.BytesIO(encode_wav_bytes(pcm, 8000)), dtype="int16")
    assert np.array_equal(y, pcm)
    with pytest.raises(ValueError, match="NaN"):
        encode_wav_bytes(np.array([0.0, np.inf]), 16000)
    with pytest.raises(ValueError, match="non-empty"):
        encode_wav_bytes(np.zeros(0), 16000)
    with pytest.raises(ValueError, match="sample rate"):
        encode_wav_bytes(np.zeros(10), 0)
    with pytest.raises(ValueError, match="int16"):
        encode_wav_bytes(np.zeros(10, np.int32), 16000)


def test_mutated_files_never_crash(tmp_path):
    """Seeded fuzz: damaged WAV/FLAC/OGG/MP3 files decode to finite float32 or raise
    AudioDecodeError, nothing else, and quickly."""
    import time

    rng = np.random.default_rng(0)
    x = sine(440, 16000, 1.0)
    sources = {}
    for fmt, ext in [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")]:
        if fmt not in sf.available_formats():
            continue
        buf = io.BytesIO()
        sf.write(buf, np.stack([x, x], axis=1), 16000, format=fmt)
        sources[ext] = buf.getvalue()
    outcomes = {"ok": 0, "error": 0}
    for i in range(120):
        ext = list(sources)[i % len(sources)]
        data = bytearray(sources[ext])
        if i % 3 == 0:  # header damage
            for _ in range(rng.integers(1, 20)):
                data[rng.integers(0, min(len(data), 200))] = rng.integers(0, 256)
        elif i % 3 == 1:  # damage anywhere
            for _ in range(rng.integers(1, 50)):
                data[rng.integers(0, len(data))] = rng.integers(0, 256)
        else:  # cut short
            data = data[: rng.integers(1, len(data))]
        p = tmp_path / f"fuzz{i}.{ext}"
        p.write_bytes(bytes(data))
        t0 = time.perf_counter()
        try:
            y = load_audio(p, 16000, max_duration_s=30)
        except AudioDecodeError as e:
            assert e.reason
            outcomes["error"] += 1
        else:
            assert y.dtype == np.float32 and y.ndim == 1 and np.isfinite(y).all()
            outcomes["ok"] += 1
        assert time.perf_counter() - t0 < 10
    assert outcomes["ok"] > 0 and outcomes["error"] > 0
