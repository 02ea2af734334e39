"""The estimators against hand-worked cases and scipy's Wilson interval."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest

from curation.quality import stats


def test_wilson_hand_worked_8_of_10():
    # p = 0.8, z^2 = 3.8415: centre (0.8 + 0.19207) / 1.38415 = 0.71680;
    # half 1.95996 * sqrt(0.016 + 0.0096037) / 1.38415 = 0.22663 -> [0.4902, 0.9430]
    e = stats.wilson(8, 10)
    assert e.value == 0.8
    assert e.low == pytest.approx(0.4902, abs=1e-4)
    assert e.high == pytest.approx(0.9433, abs=1e-3)


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (10, 10), (3, 7), (47, 50), (0, 1)])
def test_wilson_matches_scipy(k, n):
    ci = binomtest(k, n).proportion_ci(method="wilson")
    e = stats.wilson(k, n)
    assert e.low == pytest.approx(ci.low, abs=1e-9)
    assert e.high == pytest.approx(ci.high, abs=1e-9)


def test_wilson_no_answers_is_no_estimate():
    assert stats.wilson(0, 0) == stats.NONE


def test_stratified_hand_worked():
    # Two classes: 1000 labels, 8/10 right; 100 labels, 5/10 right.
    # W = 1000/1100, 100/1100; p = 0.8*0.90909 + 0.5*0.09091 = 0.77273
    # var = 0.82645 * 0.99 * 0.16/9 + 0.0082645 * 0.9 * 0.25/9 = 0.014545 + 0.000207 = 0.014752
    e = stats.stratified_precision([stats.Stratum(1000, 10, 8), stats.Stratum(100, 10, 5)])
    assert e.value == pytest.approx(0.772727, abs=1e-6)
    var = (1000 / 1100) ** 2 * 0.99 * 0.16 / 9 + (100 / 1100) ** 2 * 0.9 * 0.25 / 9
    assert var == pytest.approx(0.014752, abs=1e-6)
    # Wilson at n_eff = p(1-p)/var around p
    n_eff = e.value * (1 - e.value) / var
    ref = stats.wilson(0, 1)  # shape only
    assert ref.low == 0
    z2 = stats.Z95 ** 2
    centre = (e.value + z2 / (2 * n_eff)) / (1 + z2 / n_eff)
    half = stats.Z95 * math.sqrt(e.value * (1 - e.value) / n_eff + z2 / (4 * n_eff ** 2)) / (1 + z2 / n_eff)
    assert e.low == pytest.approx(centre - half, abs=1e-9)
    assert e.high == pytest.approx(centre + half, abs=1e-9)


def test_stratified_whole_classes_have_no_sampling_error():
    e = stats.stratified_precision([stats.Stratum(5, 5, 4), stats.Stratum(3, 3, 3)])
    assert e.value == pytest.approx((4 + 3) / 8)
    assert e.low == e.high == e.value


def test_macro_precision():
    assert stats.macro_precision([1.0, 0.5, None]) == 0.75
    assert stats.macro_precision([None]) is None


def test_recall_bootstrap_is_seeded_and_brackets_the_ratio():
    clips = [stats.RecallClip(3, 2), stats.RecallClip(2, 2), stats.RecallClip(1, 0),
             stats.RecallClip(4, 3)] * 5
    rec, miss = stats.recall_estimates(clips, seed=3)
    assert rec.value == pytest.approx(35 / 50)
    assert miss.value == pytest.approx(15 / 20)
    assert rec.low < rec.value < rec.high
    assert stats.recall_estimates(clips, seed=3) == (rec, miss)


def test_differences():
    a = stats.Estimate(0.8, 0.7, 0.9)
    b = stats.Estimate(0.6, 0.5, 0.7)
    d = stats.precision_difference(a, b)
    assert d.value == pytest.approx(0.2)
    assert d.high - d.value == pytest.approx(math.sqrt(2) * 0.1)
    assert not stats.intervals_overlap(stats.Estimate(0.9, 0.85, 0.95), b)


def test_agreement_and_kappa_hand_worked():
    # 10 pairs: 6 accept/accept, 2 reject/reject, 1 accept/reject, 1 reject/accept.
    pairs = [("accept", "accept")] * 6 + [("reject", "reject")] * 2 + \
        [("accept", "reject"), ("reject", "accept")]
    a = stats.agreement(pairs)
    assert a.percent == pytest.approx(0.8)
    # pe = 0.7*0.7 + 0.3*0.3 = 0.58; kappa = (0.8 - 0.58) / 0.42
    assert a.kappa == pytest.approx(0.22 / 0.42)


def test_all_true_source_reads_exactly_one_whatever_the_rounding():
    # 527 strata whose weights sum to 1 only up to rounding.
    strata = [stats.Stratum(97 + i % 13, 10, 10) for i in range(527)]
    e = stats.stratified_precision(strata)
    assert e.value == 1.0 and e.high == 1.0 and 0.99 < e.low < 1.0
