"""Statistical validity by simulation (issue 19): a synthetic dataset with known per-class
precision (0.3 to 1.0, classes of 3 to 6,000 labels), 300 seeded studies answered by an
oracle through the answering service; the intervals must cover the truth as often as a
95 % interval should."""

from __future__ import annotations

import pytest

from curation.quality.report import quality_report
from curation.quality.sampling import quality_study_create
from tests.factories import UserFactory

from .synthetic import build, oracle_answer

# Small enough that 300 studies take seconds (answers repeat, so few decisions change).
SIZES = [3, 25, 60, 200, 600, 1500]
RATES = [1.0, 0.3, 0.5, 0.7, 0.85, 0.9]
STUDIES = int(__import__("os").environ.get("QSIM_STUDIES", 300))


@pytest.mark.django_db
def test_intervals_cover_the_truth_in_300_seeded_studies():
    truth = build(name="sim", sizes=SIZES, rates=RATES, n_clips=2000, missing_rate=0.1)
    oracle = UserFactory(username="oracle")
    true_prec = {lab.pk: truth.precision("original", lab.pk) for lab in truth.labels[:len(SIZES)]}
    true_overall = truth.precision("original")
    true_recall = truth.recall("original")
    cls_cover = cls_cases = overall_cover = recall_cover = 0
    for seed in range(STUDIES):
        study = quality_study_create(dataset=truth.dataset, name=f"s{seed}", sources=["original"],
                                     per_class=10, recall_clips=60, seed=seed)
        oracle_answer(study, truth, oracle)
        rep = quality_report(study, bootstrap_rounds=1000)
        for row in rep["classes"]:
            if row.rated >= 5:
                cls_cases += 1
                cls_cover += row.estimate.low - 1e-12 <= true_prec[row.label_id] <= row.estimate.high + 1e-12
        src = rep["sources"][0]
        p, r = src["precision"], src["recall"]
        overall_cover += p["low"] <= true_overall <= p["high"]
        recall_cover += r["low"] <= true_recall <= r["high"]
    cls_rate = cls_cover / cls_cases
    print(f"class coverage {cls_rate:.3f} over {cls_cases}, overall {overall_cover / STUDIES:.3f}, "
          f"recall {recall_cover / STUDIES:.3f}")
    assert 0.93 <= cls_rate <= 0.97
    assert overall_cover / STUDIES >= 0.93
    assert recall_cover / STUDIES >= 0.92
