"""apply_thresholds by two connections at once (issue 18): outside a caller's transaction the
derived run's rows are copied in parallel into a run nobody counts until one short UPDATE
makes it done; the result is the same as the one-transaction copy, a failure in any part
leaves nothing, and a run a dead process left half-copied is cleaned up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from curation import thresholds as th
from pipeline.models import Candidate, ClipResult, OriginalLabelScore, PipelineRun
from pipeline.selectors import counting_runs
from tests.curation.conftest import label
from tests.curation.threshold_fixtures import build_synthetic

pytestmark = pytest.mark.django_db(transaction=True)


def _rows(run_id: int) -> tuple[dict, set, set]:
    cands = {(c.clip_id, c.label_id, c.attempt): (c.clap_score, c.kept, c.selected, c.tier)
             for c in Candidate.objects.filter(run_id=run_id)}
    results = set(ClipResult.objects.filter(run_id=run_id).values_list(
        "clip_id", "caption_status", "filter_status", "best_attempt"))
    scores = set(OriginalLabelScore.objects.filter(run_id=run_id).values_list(
        "clip_id", "label_id", "clap_score"))
    return cands, results, scores


@pytest.fixture
def fitted(transactional_db):
    ds, run, clips, cora = build_synthetic()
    for i, clip in enumerate(clips[:6]):
        OriginalLabelScore.objects.create(run=run, clip=clip, label=label("speech"),
                                          clap_score=0.1 * i)
    ts = th.threshold_set_fit(dataset=ds, run=run, min_decisions=10, user=cora)
    return ds, run, clips, ts


def test_parallel_copy_equals_the_one_transaction_copy(fitted):
    ds, run, clips, ts = fitted
    ranges = th._clip_ranges(run, 2)
    assert len(ranges) == 2 and ranges[0][0] == 0 and ranges[0][1] == ranges[1][0]
    # Both parts hold clips: the split is a real one.
    ids = sorted(c.pk for c in clips)
    assert ids[0] < ranges[0][1] <= ids[-1]

    one = th.threshold_set_apply(run=run, threshold_set=ts, parts=1)
    two = th.threshold_set_apply(run=run, threshold_set=ts, parts=2)
    assert one.status == two.status == PipelineRun.Status.DONE
    assert two.started_at is not None and two.finished_at is not None
    assert _rows(one.pk) == _rows(two.pk)
    cands, results, scores = _rows(two.pk)
    assert len(results) == len(clips) and len(scores) == 6
    # kept follows the set: speech at 0.5, dog at 0.2, everything else the global one.
    thr = {label("speech").pk: 0.5, label("dog").pk: 0.2}
    for c in Candidate.objects.filter(run=run, selected=True):
        want = c.clap_score >= thr.get(c.label_id, ts.global_threshold)
        assert cands[(c.clip_id, c.label_id, c.attempt)][1] == want
    assert {k[:2] for k in cands} == set(Candidate.objects.filter(run=run, selected=True)
                                         .values_list("clip_id", "label_id"))
    assert counting_runs(ds).first().pk == two.pk


def test_a_failing_part_leaves_no_run_and_no_rows(fitted, monkeypatch):
    ds, run, clips, ts = fitted
    real = th._copy_derived_rows
    seen = []

    def copy_then_fail_in_the_second_range(cur, params, clip_range):
        real(cur, params, clip_range)
        seen.append(clip_range)
        if clip_range and clip_range[0] > 0:
            raise RuntimeError("disk full")

    monkeypatch.setattr(th, "_copy_derived_rows", copy_then_fail_in_the_second_range)
    runs_before = set(PipelineRun.objects.values_list("pk", flat=True))
    with pytest.raises(RuntimeError, match="disk full"):
        th.threshold_set_apply(run=run, threshold_set=ts, parts=2)
    assert len(seen) == 2  # the first part committed its rows before the second failed
    assert set(PipelineRun.objects.values_list("pk", flat=True)) == runs_before
    for model in (Candidate, ClipResult, OriginalLabelScore):
        assert not model.objects.exclude(run_id__in=runs_before).exists()


def test_a_half_copied_run_does_not_count_and_is_cleaned_up_later(fitted):
    ds, run, clips, ts = fitted
    # What a process that died mid-copy leaves: a pending, never started derived run
    # with some rows.
    left = PipelineRun.objects.create(dataset=ds, kind=PipelineRun.Kind.DERIVED,
                                      status=PipelineRun.Status.PENDING, source_run=run,
                                      threshold_set=ts, config=run.config)
    ClipResult.objects.create(run=left, clip=clips[0])
    Candidate.objects.create(run=left, clip=clips[0], label=label("dog"), tier="exact",
                             clap_score=0.9, kept=True, selected=True)
    assert left.pk not in set(counting_runs(ds).values_list("pk", flat=True))
    # Younger than ABANDONED_AFTER: it may still be copying; left alone.
    derived = th.threshold_set_apply(run=run, threshold_set=ts)
    assert PipelineRun.objects.filter(pk=left.pk).exists()
    PipelineRun.objects.filter(pk=left.pk).update(
        created_at=timezone.now() - th.ABANDONED_AFTER - timedelta(minutes=1))
    th.threshold_set_apply(run=run, threshold_set=ts)
    assert not PipelineRun.objects.filter(pk=left.pk).exists()
    assert not Candidate.objects.filter(run_id=left.pk).exists()
    assert not ClipResult.objects.filter(run_id=left.pk).exists()
    assert PipelineRun.objects.filter(pk=derived.pk, status="done").exists()
