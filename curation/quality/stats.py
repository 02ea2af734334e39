"""Estimators of a quality study: plain functions over plain numbers (no Django), so they
can be checked against hand-worked cases and reused from a notebook.

* Per class: a Wilson score interval (good coverage at the small n AudioSet used, 10).
* Per source overall: a stratified estimate (strata = classes, each weighted by its number
  of labels in the source) with the finite-population correction: a class taken whole
  contributes no sampling variance.
* Recall and missing labels per clip: ratio estimators over the sampled clips, intervals
  from a seeded bootstrap over clips (the clip is the sampling unit; labels on one clip
  are not independent).
* Agreement: percent agreement and Cohen's kappa between two answers of a question.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high}


NONE = Estimate(None, None, None)


def wilson(true: int, rated: int, z: float = Z95) -> Estimate:
    """Wilson score interval for ``true`` successes out of ``rated``; no estimate at 0."""
    if rated <= 0:
        return NONE
    return _wilson_at(true / rated, rated, z)


@dataclass(frozen=True)
class Stratum:
    """One class of one source: ``population`` labels, ``rated`` of them answered (unsure
    excluded), ``true`` of those right."""

    population: int
    rated: int
    true: int


def stratified_precision(strata: Sequence[Stratum], z: float = Z95) -> Estimate:
    """Overall label precision of a source: sum of W_h * p_h with W_h = N_h / N, variance
    sum of W_h^2 (1 - n_h/N_h) p_h (1 - p_h) / (n_h - 1) (Cochran, stratified random
    sampling with the finite-population correction).

    A stratum with labels but no rated answer cannot be estimated; its weight is spread
    over the rated strata (the estimate is then of the rated classes; the report says how
    many labels that leaves out). A stratum's p_h of exactly 0 or 1 from few answers would
    claim zero variance, which makes the interval too narrow: p_h(1-p_h) is floored at the
    value for half an error in n_h + 1 answers (a small-sample guard, zero for whole
    classes through the finite-population correction)."""
    rated = [s for s in strata if s.rated > 0 and s.population > 0]
    total = sum(s.population for s in rated)
    if not rated or total <= 0:
        return NONE
    value = 0.0
    var = 0.0
    for s in rated:
        w = s.population / total
        p = s.true / s.rated
        value += w * p
        n = min(s.rated, s.population)
        fpc = max(0.0, 1 - n / s.population)
        if fpc == 0.0:
            continue
        floor = 0.5 / (n + 1) * (1 - 0.5 / (n + 1))
        pq = max(p * (1 - p), floor)
        var += w * w * fpc * pq / max(1, n - 1)
    # Weights sum to 1 up to rounding: an all-true source must read exactly 1, not 1 - 1e-16
    # (whose p(1-p) would make the effective sample size, and the interval, absurd).
    value = min(1.0, max(0.0, value))
    if abs(value - 1.0) < 1e-12 or abs(value) < 1e-12:
        value = round(value)
    if var <= 0.0:
        return Estimate(value, value, value)
    pq = value * (1 - value)
    if pq <= 0.0:
        half = z * math.sqrt(var)
        return Estimate(value, max(0.0, value - half), min(1.0, value + half))
    # A Wilson interval at the design's effective sample size (Kish: n_eff = pq / var):
    # asymmetric near 0 and 1 where the normal interval undercovers, as per class.
    return _wilson_at(value, pq / var, z)


def _wilson_at(p: float, n: float, z: float) -> Estimate:
    z2 = z * z
    den = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / den
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))


def macro_precision(per_class: Sequence[float | None]) -> float | None:
    """The unweighted mean of the per-class precisions that have a value."""
    vals = [p for p in per_class if p is not None]
    return sum(vals) / len(vals) if vals else None


@dataclass(frozen=True)
class RecallClip:
    """One sampled clip of the recall part, for one source: ``true_total`` labels judged
    present on the clip (pooled over sources, plus classes the expert added), of which
    ``true_in_source`` the source has."""

    true_total: int
    true_in_source: int


def _bootstrap_indices(n: int, seed: int, rounds: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(rounds, n))


def _percentile(values: np.ndarray, value: float | None) -> Estimate:
    values = values[np.isfinite(values)]
    if value is None or not len(values):
        return Estimate(value, None, None)
    lo, hi = np.quantile(values, [0.025, 0.975])
    return Estimate(value, float(lo), float(hi))


def recall_estimates(clips: Sequence[RecallClip], *, seed: int = 0,
                     rounds: int = 2000) -> tuple[Estimate, Estimate]:
    """(recall, missing labels per clip) of one source over the recall sample. Recall is
    the ratio sum(true_in_source) / sum(true_total) over clips; missing per clip the mean
    of true_total - true_in_source. Intervals: percentile bootstrap over clips, seeded."""
    if not clips:
        return NONE, NONE
    tot = np.array([c.true_total for c in clips], dtype=float)
    has = np.array([c.true_in_source for c in clips], dtype=float)
    miss = tot - has
    idx = _bootstrap_indices(len(clips), seed, rounds)
    bt, bh = tot[idx].sum(axis=1), has[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        brec = np.where(bt > 0, bh / bt, np.nan)
    rec = float(has.sum() / tot.sum()) if tot.sum() > 0 else None
    return _proportion_interval(brec, rec), _percentile(miss[idx].mean(axis=1), float(miss.mean()))


def _proportion_interval(boot: np.ndarray, value: float | None, z: float = Z95) -> Estimate:
    """A proportion's interval from its bootstrap replicates: the replicates' variance, as
    a Wilson interval at the effective sample size p(1-p)/var. The plain percentile interval
    undercovers a recall near 1 from a few dozen clips (few missing labels in the sample;
    measured in the simulation test); the Wilson shape does not."""
    boot = boot[np.isfinite(boot)]
    if value is None or len(boot) < 2:
        return Estimate(value, None, None)
    var = float(boot.var(ddof=1))
    pq = value * (1 - value)
    if var <= 0 or pq <= 0:
        return _percentile(boot, value)
    return _wilson_at(value, pq / var, z)


def recall_difference(a: Sequence[RecallClip], b: Sequence[RecallClip], *, seed: int = 0,
                      rounds: int = 2000) -> Estimate:
    """Recall of a minus recall of b on the same clips (paired bootstrap over clips)."""
    if not a or len(a) != len(b):
        return NONE
    tot = np.array([c.true_total for c in a], dtype=float)
    ha = np.array([c.true_in_source for c in a], dtype=float)
    hb = np.array([c.true_in_source for c in b], dtype=float)
    if tot.sum() <= 0:
        return NONE
    idx = _bootstrap_indices(len(a), seed, rounds)
    bt = tot[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(bt > 0, (ha[idx].sum(axis=1) - hb[idx].sum(axis=1)) / bt, np.nan)
    return _percentile(d, float((ha.sum() - hb.sum()) / tot.sum()))


def precision_difference(a: Estimate, b: Estimate, z: float = Z95) -> Estimate:
    """a - b for two stratified estimates, each interval's half-width taken as z * SE and
    the SEs combined as if independent. The samples overlap (a pair drawn in both is asked
    once), which correlates them positively, so this interval errs on the wide side."""
    if a.value is None or b.value is None or a.low is None or b.low is None:
        return NONE
    # Half-widths are symmetric before clipping to [0, 1]; recover SE from the wider side.
    se_a = max(a.high - a.value, a.value - a.low) / z
    se_b = max(b.high - b.value, b.value - b.low) / z
    d = a.value - b.value
    half = z * math.sqrt(se_a * se_a + se_b * se_b)
    return Estimate(d, d - half, d + half)


def intervals_overlap(a: Estimate, b: Estimate) -> bool:
    if None in (a.low, a.high, b.low, b.high):
        return True
    return not (a.high < b.low or b.high < a.low)


@dataclass(frozen=True)
class Agreement:
    pairs: int
    percent: float | None
    kappa: float | None


def agreement(pairs: Sequence[tuple[str, str]]) -> Agreement:
    """Percent agreement and Cohen's kappa between the first and second answer of each
    question answered twice (categories as given: accept / reject / unsure)."""
    n = len(pairs)
    if not n:
        return Agreement(0, None, None)
    po = sum(1 for a, b in pairs if a == b) / n
    cats = {c for p in pairs for c in p}
    pe = sum((sum(1 for a, _ in pairs if a == c) / n) * (sum(1 for _, b in pairs if b == c) / n)
             for c in cats)
    kappa = None if pe >= 1 else (po - pe) / (1 - pe)
    return Agreement(n, po, kappa)
