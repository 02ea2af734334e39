"""The small interfaces each stage talks to. Adapters live beside this module.

Messages follow the OpenAI chat shape: {"role": "user"|"assistant"|"system", "content": str}.
Audio is a mono float32 numpy array with its sample rate; each adapter resamples to what
its model needs (16 kHz for Qwen2-Audio, 48 kHz for CLAP) via pipeline.audio.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class BackendError(RuntimeError):
    """A model call failed (after the adapter's own retries); the clip's stage records it."""


@dataclass(frozen=True)
class Sampling:
    """Sampled decoding for one request: temperature, nucleus top_p and the seed that makes
    the draw reproducible. ``None`` instead of a Sampling means greedy decoding.

    Local adapters draw each request's tokens from its own generator seeded with ``seed``,
    so a request's answer does not depend on what else shares its batch; HTTP adapters
    send ``temperature``, ``top_p`` and ``seed`` (servers that honour ``seed``, such as
    vLLM and Ollama, then reproduce it)."""

    temperature: float
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError("a sampled request needs temperature > 0 (None means greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")

    def as_dict(self) -> dict:
        return asdict(self)

    def reseeded(self, offset: int) -> Sampling:
        """The same settings with a seed ``offset`` steps on (a retry inside one attempt)."""
        return Sampling(self.temperature, self.top_p, (self.seed + offset) % SEED_MODULUS)


SEED_MODULUS = 2**31  # what every server and torch.Generator accepts


def derive_seed(*parts: object) -> int:
    """A stable seed from its parts (for instance run id, clip id, attempt): the same parts
    give the same seed on every machine and Python version (no hash randomisation)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_MODULUS


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


# --- batches ------------------------------------------------------------------------------
#
# Adapters may offer ``chat_batch``: a list of requests in, a list of answers out (in the
# same order), each answer a str or, with ``return_exceptions=True``, the exception that
# request raised. Local models run the list as one batched ``generate``; HTTP adapters run
# the requests concurrently up to their concurrency limit. An adapter without it (a test
# double, a user's own class) is called once per request. ``chat_each`` and
# ``audio_chat_each`` hide the difference from the stages.


def _each(
    call_one: Callable[[int], str],
    n: int,
    batch: Callable[[list[int]], list] | None,
    batch_size: int | None,
) -> list[str | Exception]:
    out: list[str | Exception] = []
    if batch is None:
        for i in range(n):
            try:
                out.append(call_one(i))
            except Exception as exc:  # noqa: BLE001 - handed back per request
                out.append(exc)
        return out
    size = max(1, int(batch_size or n or 1))
    for start in range(0, n, size):
        out.extend(batch(list(range(start, min(n, start + size)))))
    return out


def _one(sampling: Sampling | None) -> dict:
    # Only pass the keyword when sampling: a greedy call keeps the plain protocol signature.
    return {"sampling": sampling} if sampling is not None else {}


def chat_each(
    chat: TextChat,
    requests: Sequence[list[dict]],
    samplings: Sequence[Sampling | None] | None = None,
    batch_size: int | None = None,
) -> list[str | Exception]:
    """Answer every request (a messages list); a failed request's entry is its exception."""
    samplings = list(samplings) if samplings is not None else [None] * len(requests)
    batch_fn = getattr(chat, "chat_batch", None)
    batch = None
    if batch_fn is not None:
        def batch(idx: list[int]) -> list:
            return batch_fn([requests[i] for i in idx], [samplings[i] for i in idx],
                            return_exceptions=True)
    return _each(lambda i: chat.chat(requests[i], **_one(samplings[i])), len(requests),
                 batch, batch_size)


def audio_chat_each(
    chat: AudioChat,
    requests: Sequence[tuple[np.ndarray, int, list[dict]]],
    samplings: Sequence[Sampling | None] | None = None,
    batch_size: int | None = None,
) -> list[str | Exception]:
    """Answer every (audio, sample_rate, messages) request; failures come back as exceptions."""
    samplings = list(samplings) if samplings is not None else [None] * len(requests)
    batch_fn = getattr(chat, "chat_batch", None)
    batch = None
    if batch_fn is not None:
        def batch(idx: list[int]) -> list:
            return batch_fn([requests[i] for i in idx], [samplings[i] for i in idx],
                            return_exceptions=True)
    return _each(lambda i: chat.chat(*requests[i], **_one(samplings[i])), len(requests),
                 batch, batch_size)


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
