"""Agreement and ranking metrics, pure Python (no Django, no numpy), so each can be checked
by hand and against scikit-learn / the krippendorff package in the tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


# --- ranking ---------------------------------------------------------------------------


def average_precision(y_true: Sequence[int | bool], scores: Sequence[float]) -> float | None:
    """Average precision as scikit-learn's ``average_precision_score`` computes it:
    sum over the distinct score thresholds, highest first, of (R_n - R_{n-1}) * P_n, where
    tied scores form one threshold (so ties are not interpolated). None without positives.
    """
    if len(y_true) != len(scores):
        raise ValueError("y_true and scores differ in length")
    positives = sum(1 for y in y_true if y)
    if not positives:
        return None
    pairs = sorted(zip(scores, y_true, strict=True), key=lambda p: -p[0])
    ap = 0.0
    tp = fp = 0
    prev_recall = 0.0
    i = 0
    n = len(pairs)
    while i < n:
        s = pairs[i][0]
        while i < n and pairs[i][0] == s:
            if pairs[i][1]:
                tp += 1
            else:
                fp += 1
            i += 1
        recall = tp / positives
        ap += (recall - prev_recall) * (tp / (tp + fp))
        prev_recall = recall
    return ap


def mean_average_precision(per_class: Mapping[object, tuple[Sequence[int], Sequence[float]]]
                           ) -> tuple[float | None, dict[object, float]]:
    """mAP over the classes that have at least one positive (the paper's metric), and the
    AP of each of those classes."""
    aps = {}
    for key, (y, s) in per_class.items():
        ap = average_precision(y, s)
        if ap is not None:
            aps[key] = ap
    return (sum(aps.values()) / len(aps) if aps else None), aps


@dataclass(frozen=True)
class PRPoint:
    threshold: float
    precision: float
    recall: float
    f1: float
    kept: int


def pr_curve(groups: Iterable[tuple[float, int, int]], *, positives: int | None = None
             ) -> list[PRPoint]:
    """Precision, recall and F1 of "keep a candidate when its score >= t" for every
    distinct score t. ``groups``: (score, accepted count, rejected count), any order.
    Recall is over the accepted candidates given (``positives`` defaults to their sum)."""
    groups = sorted(groups, key=lambda g: -g[0])
    if positives is None:
        positives = sum(g[1] for g in groups)
    points = []
    tp = k = 0
    for score, pos, neg in groups:
        tp += pos
        k += pos + neg
        precision = tp / k if k else 0.0
        recall = tp / positives if positives else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        points.append(PRPoint(score, precision, recall, f1, k))
    return points


def best_f1(points: Sequence[PRPoint]) -> PRPoint | None:
    """The point with the highest F1; on a tie, the highest threshold (the fewest labels)."""
    best = None
    for p in points:  # thresholds descending
        if best is None or p.f1 > best.f1:
            best = p
    return best


# --- agreement -------------------------------------------------------------------------


def cohen_kappa(confusion: Mapping[tuple[str, str], int]) -> float | None:
    """Cohen's kappa of two raters from {(rating of A, rating of B): count}.
    None when chance agreement is total (both raters always gave one same value)."""
    n = sum(confusion.values())
    if not n:
        return None
    values = {v for pair in confusion for v in pair}
    po = sum(c for (a, b), c in confusion.items() if a == b) / n
    pe = 0.0
    for v in values:
        row = sum(c for (a, _), c in confusion.items() if a == v)
        col = sum(c for (_, b), c in confusion.items() if b == v)
        pe += (row / n) * (col / n)
    if pe == 1.0:
        return None
    return (po - pe) / (1.0 - pe)


def krippendorff_alpha_nominal(
    unit_patterns: Mapping[tuple[tuple[str, int], ...], int] | Iterable[Sequence[str]],
) -> float | None:
    """Krippendorff's alpha for nominal data.

    Accepts either units (each a sequence of the values its raters gave) or the compact
    form {((value, count), ...): number of units with that pattern} that SQL can produce.
    Units with fewer than two values are not pairable and are ignored. With the
    coincidence matrix o and n_c = sum_k o_ck, n = sum_c n_c:
        alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k
    None when fewer than two pairable values or only one value occurs (no variation)."""
    if isinstance(unit_patterns, Mapping):
        patterns = unit_patterns.items()
    else:
        counted: dict[tuple[tuple[str, int], ...], int] = {}
        for unit in unit_patterns:
            per_value: dict[str, int] = {}
            for v in unit:
                per_value[v] = per_value.get(v, 0) + 1
            key = tuple(sorted(per_value.items()))
            counted[key] = counted.get(key, 0) + 1
        patterns = counted.items()
    o: dict[tuple[str, str], float] = {}
    for pattern, units in patterns:
        m = sum(c for _, c in pattern)
        if m < 2 or not units:
            continue
        for c, nc in pattern:
            for k, nk in pattern:
                pairs = nc * (nc - 1) if c == k else nc * nk
                if pairs:
                    o[(c, k)] = o.get((c, k), 0.0) + units * pairs / (m - 1)
    n_c: dict[str, float] = {}
    for (c, _), v in o.items():
        n_c[c] = n_c.get(c, 0.0) + v
    n = sum(n_c.values())
    if n < 2:
        return None
    disagree_observed = sum(v for (c, k), v in o.items() if c != k)
    disagree_expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    if not disagree_expected:
        return None
    return 1.0 - (n - 1) * disagree_observed / disagree_expected


def precision_recall(tp: int, fp: int, fn: int) -> tuple[float | None, float | None]:
    return _div(tp, tp + fp), _div(tp, tp + fn)
