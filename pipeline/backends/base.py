"""The small interfaces each stage talks to. Adapters live beside this module.

Messages follow the OpenAI chat shape: {"role": "user"|"assistant"|"system", "content": str}.
Audio is a mono float32 numpy array with its sample rate; each adapter resamples to what
its model needs (16 kHz for Qwen2-Audio, 48 kHz for CLAP) via pipeline.audio.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class BackendError(RuntimeError):
    """A model call failed (after the adapter's own retries); the clip's stage records it."""


@runtime_checkable
class AudioChat(Protocol):
    """Chat about one clip, history kept by the caller (Qwen2-Audio class)."""

    def chat(self, audio: np.ndarray, sample_rate: int, messages: list[dict]) -> str:
        """`messages` is the whole history so far ending with the user's new question; the
        audio belongs to the first user turn. Returns the assistant's answer text."""
        ...


@runtime_checkable
class TextChat(Protocol):
    def chat(self, messages: list[dict]) -> str: ...


@runtime_checkable
class TextEmbedder(Protocol):
    """Sentence embeddings (synonym tier of the matcher). Rows L2-normalised."""

    model_id: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


@runtime_checkable
class ClapEmbedder(Protocol):
    """CLAP audio/text embeddings in one joint space. Rows L2-normalised."""

    model_id: str
    sample_rate: int  # what embed_audio expects (48000 for LAION CLAP)

    def embed_audio(self, batch: list[np.ndarray]) -> np.ndarray: ...

    def embed_text(self, texts: list[str]) -> np.ndarray: ...
