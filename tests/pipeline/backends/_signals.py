"""Synthetic test signals."""

import numpy as np


def tone(freq: float, seconds: float, sr: int, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr), dtype=np.float64) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, sr: int, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    return (amp * np.random.RandomState(seed).randn(int(seconds * sr))).astype(np.float32)
