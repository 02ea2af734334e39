"""Decode audio files into the mono float32 arrays the model backends take, and encode
arrays back into WAV bytes (to send over HTTP). Plain Python, no Django.

``load_audio`` reads WAV (8/16/24/32-bit integer, 32/64-bit float), FLAC, OGG/Vorbis/Opus,
MP3 and the other libsndfile formats with soundfile. When libsndfile cannot read a file
whose first bytes announce a known audio container (m4a/AAC, WebM, an MP3 it rejects) and
``ffmpeg`` is on PATH, ffmpeg decodes it in a subprocess with a time limit. Files whose
bytes look like no audio format are refused without ever reaching ffmpeg.

Every failure is an ``AudioDecodeError`` (a ``ValueError``) naming the reason: file not
found, empty file, file too large (checked before anything is read), truncated WAV,
not an audio file, corrupt or truncated, zero-length audio, too long, non-finite samples.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from relabel_app.audio_files import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DURATION_S,
    AudioDecodeError,
    check_file,
    check_wav_complete,
    ffprobe_info,
    libsndfile_reason,
    sniff_container,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DURATION_S",
    "FFMPEG_TIMEOUT_S",
    "AudioDecodeError",
    "encode_wav_bytes",
    "load_audio",
    "resample",
    "to_mono",
]

FFMPEG_TIMEOUT_S = 120.0
MAX_SAMPLE_RATE = 768_000
BLOCK_FRAMES = 1 << 20  # decoded and mixed down block by block: channels never pile up
MAX_CHANNELS = 256
# Above this up/down factor resample_poly's filter gets too long (memory); the ratio is
# then approximated (relative error below 1e-6, i.e. under 1 sample in 10 s at 16 kHz).
MAX_POLY_FACTOR = 1 << 16

# Formats whose libsndfile frame count is exact, so a short read means a damaged file.
# (MP3's count is an estimate.)
_EXACT_FRAME_FORMATS = {"WAV", "WAVEX", "RF64", "W64", "FLAC", "AIFF", "CAF", "AU"}


def resample(audio: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Polyphase resampling of a 1-D (or frames x channels) array from ``sr`` to
    ``target_sr`` with scipy.signal.resample_poly, up/down reduced by their gcd. Output
    length is ceil(n * target_sr / sr)."""
    if sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {sr} -> {target_sr}")
    if sr == target_sr:
        return audio
    ratio = Fraction(int(target_sr), int(sr))
    if max(ratio.numerator, ratio.denominator) > MAX_POLY_FACTOR:
        ratio = ratio.limit_denominator(MAX_POLY_FACTOR // 16)
    out = resample_poly(audio, ratio.numerator, ratio.denominator, axis=0)
    return out.astype(np.float32, copy=False)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Mean over channels of a frames x channels array (1-D passes through)."""
    if audio.ndim == 1:
        return audio
    if audio.shape[1] == 1:
        return audio[:, 0]
    return audio.mean(axis=1, dtype=np.float64).astype(np.float32)


_reason = libsndfile_reason


class _OpenFailed(Exception):
    """libsndfile could not open the file (format unknown to it, or a broken header)."""


def _decode_soundfile(
    p: Path, max_duration_s: float | None
) -> tuple[np.ndarray, int]:
    """Mono float32 (mean of the channels) and the rate, read by libsndfile in blocks.
    Raises _OpenFailed when libsndfile cannot open the file (the caller may try ffmpeg)
    and AudioDecodeError for everything after a successful open: too long, zero-length,
    a decoding error or a short read (damaged or truncated file)."""
    try:
        f = sf.SoundFile(str(p))
    except MemoryError:
        raise
    except Exception as e:  # LibsndfileError, SoundFileError, RuntimeError, TypeError
        raise _OpenFailed(_reason(e)) from None
    with f:
        sr, ch, frames, fmt = int(f.samplerate), int(f.channels), int(f.frames), f.format
        if not 0 < sr <= MAX_SAMPLE_RATE or not 0 < ch <= MAX_CHANNELS:
            raise AudioDecodeError(p, f"corrupt header: {sr} Hz, {ch} channels")
        if frames <= 0 and fmt in _EXACT_FRAME_FORMATS:
            raise AudioDecodeError(p, "zero-length audio (0 frames)")
        if max_duration_s is not None and frames / sr > max_duration_s:
            raise AudioDecodeError(
                p, f"too long: {frames / sr:.1f} s is over the limit of {max_duration_s:g} s"
            )
        # read at most one frame past the limit, so an underestimated MP3/OGG length
        # cannot make us hold more than the limit allows
        cap = -1 if max_duration_s is None else math.floor(max_duration_s * sr) + 1
        blocks: list[np.ndarray] = []
        n = 0
        try:
            while cap < 0 or n < cap:
                want = BLOCK_FRAMES if cap < 0 else min(BLOCK_FRAMES, cap - n)
                block = f.read(frames=want, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                blocks.append(np.ascontiguousarray(to_mono(block)))
                n += block.shape[0]
                if block.shape[0] < want:
                    break
        except MemoryError:
            raise
        except Exception as e:
            raise AudioDecodeError(p, f"corrupt or truncated {fmt} file: {_reason(e)}") \
                from None
    if n == 0:
        raise AudioDecodeError(
            p, f"zero-length audio (0 frames decoded; the {fmt} file may be truncated)"
        )
    if max_duration_s is not None and n / sr > max_duration_s:
        raise AudioDecodeError(p, f"too long: over the limit of {max_duration_s:g} s")
    if fmt in _EXACT_FRAME_FORMATS and n < frames:
        raise AudioDecodeError(
            p, f"corrupt or truncated {fmt} file: decoded {n} of {frames} frames"
        )
    return (blocks[0] if len(blocks) == 1 else np.concatenate(blocks)), sr


def _decode_ffmpeg(
    p: Path, target_sr: int, max_duration_s: float | None, timeout_s: float
) -> np.ndarray:
    """Mono float32 at ``target_sr`` decoded by ffmpeg, at most ``max_duration_s`` + 1 s of
    it; AudioDecodeError when ffmpeg fails. Channels are averaged with a pan filter when
    ffprobe gives their count (as ``to_mono`` does), else by ffmpeg's own ``-ac 1``
    downmix; ffmpeg's resampler converts the rate."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioDecodeError(p, "ffmpeg not found")
    info = ffprobe_info(p, timeout_s)
    cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error",
           "-protocol_whitelist", "file,pipe", "-i", "file:" + str(p.resolve()),
           "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if max_duration_s is not None:
        cmd += ["-t", f"{max_duration_s + 1:.3f}"]
    if info is not None and 1 < info.channels <= 64:
        w = 1.0 / info.channels
        mix = "+".join(f"{w!r}*c{i}" for i in range(info.channels))
        cmd += ["-af", f"pan=mono|c0={mix}"]
    else:
        cmd += ["-ac", "1"]
    cmd += ["-ar", str(int(target_sr)), "-f", "f32le", "-c:a", "pcm_f32le", "pipe:1"]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise AudioDecodeError(p, f"ffmpeg decode timed out after {timeout_s:g} s") from None
    except OSError as e:
        raise AudioDecodeError(p, f"ffmpeg could not run: {e}") from None
    if r.returncode != 0:
        err = r.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioDecodeError(p, f"ffmpeg: {err[-1] if err else f'exit {r.returncode}'}")
    raw = r.stdout[: len(r.stdout) // 4 * 4]
    audio = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if audio.size == 0:
        raise AudioDecodeError(p, "zero-length audio (ffmpeg decoded 0 frames)")
    if max_duration_s is not None and audio.size / target_sr > max_duration_s:
        raise AudioDecodeError(p, f"too long: over the limit of {max_duration_s:g} s")
    return audio


def load_audio(
    path: str | os.PathLike,
    target_sr: int,
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_duration_s: float | None = DEFAULT_MAX_DURATION_S,
    use_ffmpeg: bool = True,
    ffmpeg_timeout_s: float = FFMPEG_TIMEOUT_S,
) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``target_sr`` (mean of the channels, then
    polyphase resampling). ``max_bytes`` (file size) and ``max_duration_s`` guard memory;
    None disables a limit. Raises AudioDecodeError with the reason on any failure."""
    if int(target_sr) <= 0:
        raise ValueError(f"target_sr must be positive, got {target_sr}")
    p = Path(path)
    size = check_file(p, max_bytes)
    container = sniff_container(p)
    if container == "wav":
        check_wav_complete(p, size)
    try:
        data, sr = _decode_soundfile(p, max_duration_s)
    except _OpenFailed as e:
        reason = str(e)
        if container is None:
            raise AudioDecodeError(p, f"not an audio file (unrecognised format: {reason})") \
                from None
        if use_ffmpeg and shutil.which("ffmpeg") is not None:
            try:
                audio = _decode_ffmpeg(p, int(target_sr), max_duration_s, ffmpeg_timeout_s)
            except AudioDecodeError as fe:
                raise AudioDecodeError(
                    p, f"corrupt or truncated {container} file: {reason}; {fe.reason}"
                ) from None
            return _finite(p, audio)
        raise AudioDecodeError(p, f"corrupt or truncated {container} file: {reason}") from None
    return _finite(p, resample(data, sr, int(target_sr)))


def _finite(p: Path, audio: np.ndarray) -> np.ndarray:
    if not np.isfinite(audio).all():
        raise AudioDecodeError(p, "audio contains NaN or infinite samples")
    return np.ascontiguousarray(audio, dtype=np.float32)


def encode_wav_bytes(audio: np.ndarray, sr: int) -> bytes:
    """16-bit PCM WAV file bytes of ``audio`` (1-D mono, or frames x channels) at ``sr``.
    Float samples (nominal range [-1, 1]) are scaled by 32768 and clipped to the int16
    range; NaN/inf are refused. int16 input is written as is."""
    a = np.asarray(audio)
    if a.ndim not in (1, 2) or a.size == 0:
        raise ValueError(f"audio must be a non-empty 1-D or 2-D array, got shape {a.shape}")
    if int(sr) <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    if a.dtype == np.int16:
        pcm = a
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("audio contains NaN or infinite samples")
        # x * 32768 clipped to the int16 range: readers divide by 32768, so decoding
        # gives back the input within half a step
        pcm = np.clip(np.round(a.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    else:
        raise ValueError(f"audio must be float samples in [-1, 1] or int16, got {a.dtype}")
    buf = io.BytesIO()
    sf.write(buf, pcm, int(sr), format="WAV", subtype="PCM_16")
    return buf.getvalue()
