"""Synthetic clustered unit vectors standing in for CLAP audio embeddings (benchmarks and
the approximate-recall test): `clusters` random centres, each point a centre plus
isotropic noise, L2-normalised. With noise 0.8 the cosine of two points of one cluster is
about 0.6 and of two clusters about 0, roughly what CLAP gives clips of one class and of
two unrelated ones."""

from __future__ import annotations

import numpy as np


def clustered_vectors(n: int, d: int = 512, *, clusters: int = 1000, noise: float = 0.8,
                      seed: int = 0, chunk: int = 200_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, d), dtype=np.float32)
    for i in range(0, n, chunk):
        m = min(chunk, n - i)
        x = centres[rng.integers(0, clusters, m)]
        x += rng.standard_normal((m, d), dtype=np.float32) * (noise / np.sqrt(d))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[i:i + m] = x
    return out


def queries_near(vectors: np.ndarray, m: int, *, noise: float = 0.5, seed: int = 1) -> np.ndarray:
    """m query vectors near random stored ones (a query is rarely a stored clip exactly)."""
    rng = np.random.default_rng(seed)
    q = vectors[rng.integers(0, len(vectors), m)].copy()
    q += rng.standard_normal(q.shape, dtype=np.float32) * (noise / np.sqrt(q.shape[1]))
    return q / np.linalg.norm(q, axis=1, keepdims=True)
