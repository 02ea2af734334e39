"""Small helpers shared by the adapters (audio conversion, torch dtype/device names)."""

from __future__ import annotations

import warnings

import numpy as np


def to_mono_float32(audio: np.ndarray) -> np.ndarray:
    """A 1-D float32 array; (n, channels) or (channels, n) input is averaged to mono."""
    a = np.asarray(audio)
    if a.ndim == 2:
        # soundfile gives (frames, channels); torchaudio style is (channels, frames).
        a = a.mean(axis=1) if a.shape[0] >= a.shape[1] else a.mean(axis=0)
    elif a.ndim != 1:
        raise ValueError(f"audio must be 1-D (mono) or 2-D, got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    return np.ascontiguousarray(a, dtype=np.float32)


def resample(audio: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Mono float32 audio at target_rate (pipeline.audio's polyphase resampler)."""
    from pipeline.audio import resample as resample_poly_audio

    a = to_mono_float32(audio)
    if int(sample_rate) <= 0:
        raise ValueError(f"bad sample rate {sample_rate}")
    if a.size == 0:
        return a
    return np.ascontiguousarray(resample_poly_audio(a, int(sample_rate), int(target_rate)),
                                dtype=np.float32)


def cut(audio: np.ndarray, sample_rate: int, max_seconds: float, who: str) -> np.ndarray:
    """Keep the first max_seconds of audio, warning when something is cut."""
    limit = int(round(max_seconds * sample_rate))
    if audio.shape[0] > limit:
        warnings.warn(
            f"{who}: clip of {audio.shape[0] / sample_rate:.1f} s cut to its first "
            f"{max_seconds:g} s (the model's limit)",
            stacklevel=3,
        )
        return audio[:limit]
    return audio


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM RIFF/WAV of a mono float array (pipeline.audio.encode_wav_bytes)."""
    from pipeline.audio import encode_wav_bytes

    return encode_wav_bytes(np.clip(to_mono_float32(audio), -1.0, 1.0), int(sample_rate))


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def torch_dtype(name):
    """A torch dtype from "float32"/"fp32", "bfloat16"/"bf16", "float16"/"fp16" or "auto"."""
    import torch

    if name is None or isinstance(name, torch.dtype):
        return name
    aliases = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
        "half": torch.float16,
        "auto": "auto",
    }
    try:
        return aliases[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; use one of {sorted(aliases)}") from None


def resolve_device(device: str | None) -> str:
    """The device name; "auto" picks cuda when available, else cpu."""
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)
