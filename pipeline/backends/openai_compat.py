"""OpenAI-compatible HTTP chat (vLLM, Ollama, DeepSeek, OpenAI): TextChat and AudioChat.

The API key is read from the environment variable named by `api_key_env` at construction
and never stored in a spec or on disk. The openai client's own retries are off
(max_retries=0); this module retries 429, 5xx, timeouts and connection errors with
exponential backoff, fails at once on other 4xx, and raises BackendError at the end.
A BoundedSemaphore shared by every adapter of the same (base_url, model) caps the requests
in flight to that endpoint within the process; `chat_batch` sends a chunk's requests
from up to `max_concurrency` threads, so that limit is what a chunk actually uses.
A request with a Sampling sends its temperature, top_p and seed; without one the
adapter's own `temperature` (0: greedy) applies.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._util import resample, wav_bytes
from .base import BackendError, Sampling

log = logging.getLogger(__name__)

_SEMAPHORES: dict[tuple[str, str], threading.BoundedSemaphore] = {}
_SEMAPHORES_LOCK = threading.Lock()
_MAX_BACKOFF_S = 60.0


def _semaphore(base_url: str, model: str, limit: int) -> threading.BoundedSemaphore:
    """One semaphore per (base_url, model) per process; the first adapter fixes the limit."""
    key = (base_url.rstrip("/"), model)
    with _SEMAPHORES_LOCK:
        sem = _SEMAPHORES.get(key)
        if sem is None:
            sem = _SEMAPHORES[key] = threading.BoundedSemaphore(max(1, int(limit)))
        return sem


def _retry_after(exc) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


class _OpenAIChatBase:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_concurrency: int = 4,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        extra_body: dict | None = None,
    ):
        from openai import OpenAI

        if not base_url:
            raise ValueError("base_url is required (e.g. http://127.0.0.1:11434/v1)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = f"{self.base_url}#{model}"
        if api_key_env:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise BackendError(
                    f"environment variable {api_key_env} (API key for {self.base_url}) is not set"
                )
        else:
            api_key = "EMPTY"  # local servers (vLLM, Ollama) accept anything
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.backoff = max(0.0, float(backoff))
        self.max_concurrency = max(1, int(max_concurrency))
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self._client = OpenAI(
            base_url=self.base_url, api_key=api_key, timeout=self.timeout, max_retries=0
        )
        self._semaphore = _semaphore(self.base_url, model, self.max_concurrency)
        self._count_lock = threading.Lock()
        self.requests = 0  # HTTP attempts made
        self.retries = 0  # attempts that were retries

    def _complete(self, messages: list[dict], sampling: Sampling | None = None) -> str:
        import openai

        kwargs: dict = {"model": self.model, "messages": messages}
        if sampling is not None:
            # A sampled attempt: its own temperature, top_p and seed (vLLM and Ollama honour
            # the seed, so a rerun asks for the same draw).
            kwargs.update(
                temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed
            )
        elif self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens is not None:
            kwargs["max_tokens"] = self.max_tokens
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body

        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            if attempt:
                with self._count_lock:
                    self.retries += 1
            with self._count_lock:
                self.requests += 1
            wait = None
            try:
                with self._semaphore:
                    resp = self._client.chat.completions.create(**kwargs)
            except openai.APITimeoutError:
                last = f"timed out after {self.timeout:g} s"
            except openai.APIConnectionError as exc:
                last = f"connection error: {exc}"
            except openai.APIStatusError as exc:
                code = exc.status_code
                detail = f"HTTP {code}: {_short(exc)}"
                if code != 429 and code < 500:
                    raise BackendError(f"{self.model_id} rejected the request ({detail})") from exc
                last, wait = detail, _retry_after(exc)
            except openai.OpenAIError as exc:
                raise BackendError(f"{self.model_id}: {exc}") from exc
            else:
                return _content(resp, self.model_id)
            if attempt < self.max_retries:
                delay = min(_MAX_BACKOFF_S, self.backoff * (2**attempt))
                if wait is not None:
                    delay = min(_MAX_BACKOFF_S, max(delay, wait))
                log.warning(
                    "%s: %s; retry %d/%d in %.2f s",
                    self.model_id,
                    last,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
        raise BackendError(
            f"{self.model_id} failed after {self.max_retries + 1} attempt(s): {last}"
        )

    def _complete_many(
        self,
        requests: list,
        samplings: list[Sampling | None] | None,
        build: Callable,
        return_exceptions: bool,
    ) -> list[str | Exception]:
        """Send a chunk's requests concurrently: at most max_concurrency threads, and the
        shared per-endpoint semaphore still caps what is in flight in the process."""
        samplings = list(samplings) if samplings is not None else [None] * len(requests)
        if len(samplings) != len(requests):
            raise ValueError("one sampling (or None) per request")

        def one(i: int) -> str | Exception:
            try:
                return self._complete(build(requests[i]), samplings[i])
            except Exception as exc:  # noqa: BLE001 - handed back per request
                return exc

        if len(requests) <= 1:
            out = [one(i) for i in range(len(requests))]
        else:
            workers = min(self.max_concurrency, len(requests))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-http") as pool:
                out = list(pool.map(one, range(len(requests))))
        if not return_exceptions:
            for a in out:
                if isinstance(a, Exception):
                    raise a
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r}, {self.model!r})"


def _short(exc) -> str:
    msg = getattr(exc, "message", None) or str(exc)
    return msg if len(msg) <= 300 else msg[:300] + "..."


def _content(resp, model_id: str) -> str:
    choices = getattr(resp, "choices", None)
    if not choices:
        raise BackendError(f"{model_id} returned no choices")
    content = choices[0].message.content
    if isinstance(content, list):  # a few servers answer with content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


class OpenAITextChat(_OpenAIChatBase):
    """TextChat over /v1/chat/completions. Returns the answer text untouched (stages strip
    any <think> block)."""

    def chat(self, messages: list[dict], sampling: Sampling | None = None) -> str:
        return self._complete([dict(m) for m in messages], sampling)

    def chat_batch(
        self,
        requests: list[list[dict]],
        samplings: list[Sampling | None] | None = None,
        return_exceptions: bool = False,
    ) -> list[str | Exception]:
        return self._complete_many(
            requests, samplings, lambda msgs: [dict(m) for m in msgs], return_exceptions
        )


class OpenAIAudioChat(_OpenAIChatBase):
    """AudioChat over /v1/chat/completions: the clip travels as a base64 16-bit WAV
    `input_audio` content part at the start of the first user turn. `audio_sample_rate`
    (default 16000, None = as given) is the rate the WAV is resampled to."""

    def __init__(self, base_url: str, model: str, audio_sample_rate: int | None = 16000, **kw):
        super().__init__(base_url, model, **kw)
        self.audio_sample_rate = audio_sample_rate

    def build_messages(self, audio: np.ndarray, sample_rate: int, messages: list[dict]):
        sr = int(sample_rate)
        if self.audio_sample_rate:
            audio, sr = resample(audio, sr, self.audio_sample_rate), int(self.audio_sample_rate)
        b64 = base64.b64encode(wav_bytes(audio, sr)).decode("ascii")
        part = {"type": "input_audio", "input_audio": {"data": b64, "format": "wav"}}
        out, placed = [], False
        for m in messages:
            if m["role"] == "user" and not placed:
                content = m.get("content") or ""
                parts = (
                    content if isinstance(content, list) else [{"type": "text", "text": content}]
                )
                out.append({"role": "user", "content": [part, *parts]})
                placed = True
            else:
                out.append(dict(m))
        if not placed:
            raise ValueError("messages hold no user turn to attach the audio to")
        return out

    def chat(
        self,
        audio: np.ndarray,
        sample_rate: int,
        messages: list[dict],
        sampling: Sampling | None = None,
    ) -> str:
        return self._complete(self.build_messages(audio, sample_rate, messages), sampling)

    def chat_batch(
        self,
        requests: list[tuple[np.ndarray, int, list[dict]]],
        samplings: list[Sampling | None] | None = None,
        return_exceptions: bool = False,
    ) -> list[str | Exception]:
        return self._complete_many(
            requests, samplings, lambda r: self.build_messages(*r), return_exceptions
        )
