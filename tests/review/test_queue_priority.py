"""Priority reason: an original label whose CLAP score lies far below its class's threshold
(the active threshold set's, else the run's global one) brings its clip forward in the
uncertainty queue. Ranks worked out by hand (review.queue._uncertain_rank_sql)."""

from __future__ import annotations

import pytest

from relabel_app.models import ClipLabel
from review.models import QueueSlot
from review.queue import queue_next_clip, queue_sync
from tests.factories import UserFactory

from .conftest import add_result, label, make_dataset, make_run

pytestmark = pytest.mark.django_db

CAT = "/m/01yrx"


def build(name: str, cat_score: float | None):
    """Two clips, both with originals dog and cat and one candidate dog at 0.80 (kept,
    confirming dog; threshold 0.25): rank = |0.80 - 0.25| - 0.1 * 1 (cat unconfirmed) =
    0.45 each. Clip 1 alone has a CLAP score for its original cat."""
    from pipeline.models import OriginalLabelScore

    ds, clips = make_dataset(name, n_clips=2, with_audio=False, review_priority="uncertain")
    run = make_run(ds, threshold=0.25)
    for c in clips:
        ClipLabel.objects.create(clip=c, label=label("dog"))
        ClipLabel.objects.create(clip=c, label=label(CAT))
        add_result(run, c, candidates=[("dog", 0.80, "exact", "dog")])
    if cat_score is not None:
        OriginalLabelScore.objects.create(run=run, clip=clips[1], label=label(CAT),
                                          clap_score=cat_score)
    return ds, clips, run


def ranks(ds, clips) -> list[float]:
    queue_sync(dataset=ds, force=True)
    by_clip = dict(QueueSlot.objects.filter(dataset=ds).values_list("clip_id", "rank_uncertain"))
    return [by_clip[c.pk] for c in clips]


def test_original_far_below_the_global_threshold_comes_first():
    ds, clips, _ = build("qp1", cat_score=0.05)  # 0.05 <= 0.25 - 0.1
    assert ranks(ds, clips) == pytest.approx([0.45, 0.25])  # 0.45 - 0.2
    assert queue_next_clip(dataset=ds, reviewer=UserFactory()) == clips[1]


def test_slightly_below_is_no_reason():
    ds, clips, _ = build("qp2", cat_score=0.20)  # only 0.05 below
    assert ranks(ds, clips) == pytest.approx([0.45, 0.45])
    assert queue_next_clip(dataset=ds, reviewer=UserFactory()) == clips[0]  # tie: clip id


def test_the_active_threshold_set_decides():
    from pipeline.models import ClassThreshold, ThresholdSet
    from pipeline.threshold_sets import clap_model_of

    ds, clips, run = build("qp3", cat_score=0.20)
    # A threshold set for the run's CLAP model: cat 0.40 (0.20 is 0.20 below: far), dog
    # 0.70 (gap |0.80 - 0.70| = 0.10 for both clips).
    ts = ThresholdSet.objects.create(name="qp3", version=1, dataset=ds, fitted_from=run,
                                     clap_model=clap_model_of(run.config, run.profile_name),
                                     global_threshold=0.25, min_decisions=1)
    ClassThreshold.objects.create(threshold_set=ts, label=label(CAT), decisions=5,
                                  positives=2, threshold=0.40, f1=0.8)
    ClassThreshold.objects.create(threshold_set=ts, label=label("dog"), decisions=5,
                                  positives=2, threshold=0.70, f1=0.8)
    assert ranks(ds, clips) == pytest.approx([0.10 - 0.1, 0.10 - 0.1 - 0.2])
    assert queue_next_clip(dataset=ds, reviewer=UserFactory()) == clips[1]
    # A set for another CLAP model does not count.
    ThresholdSet.objects.filter(pk=ts.pk).update(clap_model="other:model")
    assert ranks(ds, clips) == pytest.approx([0.45, 0.45])
