"""Embeddings of fixed text lists (label names), computed once per model.

Label text embeddings depend only on the model and the texts, so they are computed once
and, when a cache directory is given, stored as ``.npy``. The file name carries the model
id and a hash of the model id plus the texts, so a changed text list or prompt template
never reads a stale file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def cache_key(model_id: str, texts: Sequence[str]) -> str:
    h = hashlib.sha256(model_id.encode())
    for t in texts:
        h.update(b"\0")
        h.update(t.encode())
    return h.hexdigest()[:16]


def cache_path(
    cache_dir: str | os.PathLike, kind: str, model_id: str, texts: Sequence[str]
) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_")[:80] or "model"
    return Path(cache_dir) / f"{kind}-{slug}-{cache_key(model_id, texts)}.npy"


def unit_rows(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    if m.ndim == 1:
        m = m[None, :]
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


def cached_embeddings(
    embedder,
    texts: Sequence[str],
    cache_dir: str | os.PathLike | None = None,
    kind: str = "text",
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> np.ndarray:
    """Row-normalised float32 embeddings of ``texts`` by ``embedder`` (its ``model_id``
    keys the cache). ``embed`` defaults to ``embedder.embed``; CLAP passes
    ``embedder.embed_text``. One call to the model for all texts; none when the file
    exists."""
    embed = embed or embedder.embed
    texts = list(texts)
    path = cache_path(cache_dir, kind, embedder.model_id, texts) if cache_dir else None
    if path is not None and path.exists():
        m = np.load(path)
        if m.shape[0] == len(texts):
            return m
    m = unit_rows(embed(texts))
    if m.shape[0] != len(texts):
        raise ValueError(f"embedder returned {m.shape[0]} rows for {len(texts)} texts")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, m)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return m
