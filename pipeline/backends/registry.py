"""Build adapters from plain dict specs (as stored in a profile) and cache them per process.

    build_backend({"adapter": "transformers-clap", "model": "laion/clap-htsat-unfused",
                   "device": "cuda", "dtype": "float32"})

"adapter" picks the class, "model" is its first argument (hub id, local dir, or served model
name), every other key is passed as a keyword option. The same spec (compared as sorted
JSON) returns the same instance, so a worker loads each model once.
"""

from __future__ import annotations

import importlib
import json
import threading

ADAPTERS: dict[str, tuple[str, str]] = {
    "transformers-qwen2-audio": ("pipeline.backends.transformers_audio", "Qwen2AudioChat"),
    "transformers-causal-lm": ("pipeline.backends.transformers_text", "CausalLMChat"),
    "sentence-transformers": ("pipeline.backends.transformers_text", "SentenceEmbedder"),
    "transformers-clap": ("pipeline.backends.transformers_clap", "ClapTransformers"),
    "openai-chat": ("pipeline.backends.openai_compat", "OpenAITextChat"),
    "openai-audio-chat": ("pipeline.backends.openai_compat", "OpenAIAudioChat"),
}
# Adapters whose "model" is a served model name and which need "base_url".
_HTTP = {"openai-chat", "openai-audio-chat"}

_CACHE: dict[str, object] = {}
_LOCK = threading.RLock()
_KEY_LOCKS: dict[str, threading.Lock] = {}


def spec_key(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)


def adapter_class(name: str) -> type:
    try:
        module, cls = ADAPTERS[name]
    except KeyError:
        raise ValueError(
            f"unknown backend adapter {name!r}; known: {', '.join(sorted(ADAPTERS))}"
        ) from None
    return getattr(importlib.import_module(module), cls)


def _construct(spec: dict):
    if not isinstance(spec, dict):
        raise TypeError(f"backend spec must be a dict, got {type(spec).__name__}")
    options = dict(spec)
    name = options.pop("adapter", None)
    model = options.pop("model", None)
    if not name:
        raise ValueError(f"backend spec has no 'adapter': {spec!r}")
    if not model:
        raise ValueError(f"backend spec has no 'model': {spec!r}")
    cls = adapter_class(name)
    if name in _HTTP:
        base_url = options.pop("base_url", None)
        if not base_url:
            raise ValueError(f"adapter {name!r} needs 'base_url': {spec!r}")
        return cls(base_url, model, **options)
    return cls(model, **options)


def build_backend(spec: dict):
    """The adapter instance for spec, built on first use and cached for the process."""
    key = spec_key(spec)
    with _LOCK:
        inst = _CACHE.get(key)
        if inst is not None:
            return inst
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    # Load outside the global lock (models take seconds to load), once per spec.
    with key_lock:
        with _LOCK:
            inst = _CACHE.get(key)
        if inst is None:
            inst = _construct(spec)
            with _LOCK:
                _CACHE[key] = inst
        return inst


def clear_backend_cache() -> None:
    """Forget every cached instance (tests; freeing memory between runs)."""
    with _LOCK:
        _CACHE.clear()
        _KEY_LOCKS.clear()
