"""The pure metrics: hand-computed values, then scikit-learn and the krippendorff package
on random data."""

from __future__ import annotations

import random

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, cohen_kappa_score

from curation import metrics


def test_average_precision_by_hand():
    # Ranked: 0.9 pos, 0.8 neg, 0.7 pos, 0.1 neg. P@hits: 1/1, 2/3 -> AP = (1 + 2/3) / 2.
    ap = metrics.average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1])
    assert ap == pytest.approx((1 + 2 / 3) / 2)
    # Ties form one threshold: both at 0.5, one positive -> P = 1/2 at recall 1.
    assert metrics.average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert metrics.average_precision([0, 0], [0.5, 0.4]) is None


@pytest.mark.parametrize("seed", range(40))
def test_average_precision_matches_sklearn_on_random_data(seed):
    rng = random.Random(seed)
    n = rng.randint(2, 300)
    y = [rng.random() < rng.uniform(0.05, 0.6) for _ in range(n)]
    if not any(y):
        y[rng.randrange(n)] = True
    # Coarse scores on some seeds, so ties happen.
    digits = rng.choice([1, 2, 6])
    s = [round(rng.random(), digits) for _ in range(n)]
    assert metrics.average_precision(y, s) == pytest.approx(
        average_precision_score(np.array(y, dtype=int), np.array(s)), abs=1e-12)


def test_mean_average_precision_skips_classes_without_positives():
    m, aps = metrics.mean_average_precision({
        "a": ([1, 0], [0.9, 0.1]),      # 1.0
        "b": ([0, 1], [0.9, 0.1]),      # 0.5
        "c": ([0, 0], [0.3, 0.2]),      # no positive: not counted
    })
    assert aps == {"a": pytest.approx(1.0), "b": pytest.approx(0.5)}
    assert m == pytest.approx(0.75)


def test_pr_curve_and_best_f1_by_hand():
    # (score, accepted, rejected): 0.9 A, 0.5 R, 0.3 A+R
    points = metrics.pr_curve([(0.3, 1, 1), (0.9, 1, 0), (0.5, 0, 1)])
    assert [(p.threshold, p.kept) for p in points] == [(0.9, 1), (0.5, 2), (0.3, 4)]
    assert [p.precision for p in points] == pytest.approx([1.0, 0.5, 0.5])
    assert [p.recall for p in points] == pytest.approx([0.5, 0.5, 1.0])
    assert [p.f1 for p in points] == pytest.approx([2 / 3, 0.5, 2 / 3])
    # Tie on F1: the highest threshold wins.
    assert metrics.best_f1(points).threshold == 0.9
    assert metrics.best_f1([]) is None


def test_cohen_kappa_by_hand_and_against_sklearn():
    # po = 3/4; A marginals (2, 1), R (2, 2), U (0, 1) over 4 -> pe = 3/8; kappa = 0.6.
    conf = {("accept", "accept"): 1, ("reject", "reject"): 2, ("accept", "unsure"): 1}
    assert metrics.cohen_kappa(conf) == pytest.approx(0.6)
    assert metrics.cohen_kappa({("accept", "accept"): 3}) is None
    rng = random.Random(7)
    values = ["accept", "reject", "unsure"]
    for _ in range(30):
        n = rng.randint(2, 80)
        a = [rng.choice(values) for _ in range(n)]
        b = [x if rng.random() < 0.6 else rng.choice(values) for x in a]
        if len(set(a) | set(b)) < 2:
            continue
        conf = {}
        for x, y in zip(a, b, strict=True):
            conf[(x, y)] = conf.get((x, y), 0) + 1
        assert metrics.cohen_kappa(conf) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_krippendorff_alpha_by_hand():
    # Two raters, four units: (a, a), (a, b), (b, b), (b, b).
    # o_aa = 2, o_bb = 4, o_ab = o_ba = 1; n_a = 3, n_b = 5, n = 8.
    # alpha = 1 - (n - 1) * 2 / (2 * 3 * 5) = 1 - 7 * 2 / 30 = 8/15.
    units = [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b")]
    assert metrics.krippendorff_alpha_nominal(units) == pytest.approx(8 / 15)
    # Same through the compact pattern form, plus an unpairable unit that must not count.
    patterns = {(("a", 2),): 1, (("a", 1), ("b", 1)): 1, (("b", 2),): 2, (("a", 1),): 5}
    assert metrics.krippendorff_alpha_nominal(patterns) == pytest.approx(8 / 15)
    assert metrics.krippendorff_alpha_nominal([("a", "a"), ("a", "a")]) is None
    assert metrics.krippendorff_alpha_nominal([("a",)]) is None


def test_krippendorff_alpha_against_the_krippendorff_package():
    rng = random.Random(11)
    for _ in range(25):
        raters, n_units = rng.randint(2, 5), rng.randint(3, 40)
        matrix = np.full((raters, n_units), np.nan)
        units = []
        for u in range(n_units):
            truth = rng.randrange(3)
            values = []
            for r in range(raters):
                if rng.random() < 0.3:
                    continue  # this rater did not see the unit
                v = truth if rng.random() < 0.7 else rng.randrange(3)
                matrix[r, u] = v
                values.append(str(v))
            units.append(values)
        pairable = [u for u in units if len(u) >= 2]
        if len({v for u in pairable for v in u}) < 2:
            continue
        expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
        assert metrics.krippendorff_alpha_nominal(units) == pytest.approx(expected, abs=1e-9)
