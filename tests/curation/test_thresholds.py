"""Threshold sets: the fit on synthetic scores whose right per-class thresholds are known, the
k-fold evaluation (never fitted on its own fold), apply_thresholds against a Python
recomputation, the commands and their errors."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from curation import thresholds as th
from tests.curation.conftest import add_candidates, label, make_run
from tests.curation.threshold_fixtures import build_synthetic
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def synthetic(db):
    return build_synthetic()

def test_decided_samples_follow_the_curated_state(synthetic):
    ds, run, clips, _ = synthetic
    samples = th.decided_samples(run=run)
    by = {(s.clip_id, s.label_id): s for s in samples}
    assert len(samples) == 19 * 2 + 3 + 12  # the cat tie is unresolved
    assert (clips[0].pk, label("cat").pk) not in by
    assert by[(clips[8].pk, label("speech").pk)].accepted is False  # adjudicated
    assert by[(clips[10].pk, label("speech").pk)].accepted is True
    assert by[(clips[10].pk, label("speech").pk)].score == pytest.approx(0.55)


def test_fit_finds_the_known_thresholds(synthetic):
    ds, run, clips, cora = synthetic
    ts = th.threshold_set_fit(dataset=ds, run=run, min_decisions=10, user=cora)
    rows = {r.label.mid: r for r in th.threshold_set_rows(ts)}
    assert set(rows) == {label("speech").mid, label("dog").mid}
    assert rows[label("speech").mid].threshold == pytest.approx(0.5)
    assert rows[label("speech").mid].f1 == pytest.approx(1.0)
    assert rows[label("speech").mid].decisions == 19
    assert rows[label("speech").mid].positives == 10
    assert rows[label("dog").mid].threshold == pytest.approx(0.2)
    assert rows[label("dog").mid].f1 == pytest.approx(1.0)
    # No accepted siren (12 decisions, all rejected): refused a threshold of its own, with
    # its reason (issue 21); the global threshold applies to it.
    assert ts.evaluation["refused_classes"] == [{
        "label_id": label("siren").pk, "mid": label("siren").mid, "name": "Siren",
        "decisions": 12, "accepted": 0, "rejected": 12,
        "reason": "0 accepted and 12 rejected: a threshold needs at least 3 accepted and "
                  "3 rejected decisions"}]
    assert not ts.classes.filter(label=label("siren")).exists()
    assert any("1 class with at least 10 decisions has no threshold of its own" in w
               for w in ts.evaluation["warnings"])
    # Global: every sample. Positives: speech >= 0.5 (10), dog >= 0.2 (16), music (3) =
    # 29 of 53. F1 of "keep >= t" = 2 tp / (kept + 29); siren (rejected) runs 0.05..0.6.
    # t = 0.55: kept 9 + 9 + 2 = 20, tp 18 -> 36/49 = 0.735; t = 0.5: kept 10 + 10 + 3
    # = 23, tp 20 -> 40/52 = 0.769; t = 0.45: 11 + 11 + 4 = 26, tp 21 -> 42/55 = 0.764;
    # t = 0.4: 29, tp 22 -> 44/58 = 0.759; t = 0.2: 16 + 16 + 9 = 41, tp 26 -> 52/70 =
    # 0.743; lower thresholds add more rejected than accepted.
    assert ts.global_threshold == pytest.approx(0.5)
    assert ts.evaluation["global_f1"] == pytest.approx(40 / 52)
    assert ts.name == "thr" and ts.version == 1
    assert ts.clap_model == th.clap_model_of(run)
    assert ts.created_by == cora
    # Held-out: per-class thresholds beat the global one on clips they were not fitted on.
    ev = ts.evaluation
    assert ev["folds"] == 5 and ev["clips"] == 19 and ev["samples"] == 53
    g, p = ev["global"], ev["per_class"]
    assert g["tp"] + g["fn"] == p["tp"] + p["fn"] == 29  # every accepted sample, once
    assert p["f1"] > g["f1"]
    # A second fit under the same name is version 2.
    ts2 = th.threshold_set_fit(dataset=ds, run=run, min_decisions=30)
    assert ts2.version == 2 and ts2.classes.count() == 0
    assert th.threshold_set_by_name("thr") == ts2
    assert th.threshold_set_by_name("thr@1") == ts


def test_kfold_never_fits_on_its_own_fold():
    samples = [th.Sample(clip_id=c, label_id=c % 3, score=(c * 37 % 100) / 100,
                         accepted=(c * 37 % 100) >= 40) for c in range(1, 200)]
    calls = []

    def spy(train, *, min_decisions):
        calls.append({s.clip_id for s in train})
        return th.fit(train, min_decisions=min_decisions)

    ev = th.kfold_evaluation(samples, min_decisions=5, folds=4, fit_fn=spy)
    assert ev["folds"] == 4 and len(calls) == 4
    all_clips = {s.clip_id for s in samples}
    held_out_union = set()
    for k, train_clips in enumerate(calls):
        held_out = {c for c in all_clips if th.fold_of(c, 4) == k}
        assert held_out and not (train_clips & held_out)
        assert train_clips | held_out == all_clips
        held_out_union |= held_out
    assert held_out_union == all_clips
    # Every sample is predicted exactly once, on its held-out fold.
    for key in ("per_class", "global"):
        c = ev[key]
        assert c["tp"] + c["fp"] + c["fn"] + c["tn"] == len(samples)
        assert c["tp"] + c["fn"] == sum(s.accepted for s in samples)


def test_kfold_with_leakage_would_differ():
    """A class whose accepted scores differ between two clips' halves: the held-out result
    is worse than fitting on everything, which a leak would hide."""
    samples = []
    for c in range(40):
        score = c / 40
        # Noisy: accept above 0.5, except every fourth clip flips.
        acc = (score >= 0.5) != (c % 4 == 0)
        samples.append(th.Sample(clip_id=c, label_id=1, score=score, accepted=acc))
    in_sample = th.fit(samples, min_decisions=1)
    counts = th.Counts()
    for s in samples:
        counts.add(s.score >= in_sample.threshold_for(1), s.accepted)
    ev = th.kfold_evaluation(samples, min_decisions=1, folds=5)
    assert ev["per_class"]["f1"] <= counts.as_dict()["f1"]


# --- apply ------------------------------------------------------------------------------


def test_apply_equals_python_recomputation(synthetic):
    from pipeline.models import Candidate, ClipResult, OriginalLabelScore, PipelineRun

    ds, run, clips, cora = synthetic
    # One more candidate, on a class with no threshold of its own; one not selected.
    add_candidates(run, clips[1], {"bark": 0.49})
    add_candidates(run, clips[1], {"choir": 0.99}, selected=False, attempt=1)
    OriginalLabelScore.objects.create(run=run, clip=clips[0], label=label("speech"),
                                      clap_score=0.05)
    ts = th.threshold_set_fit(dataset=ds, run=run, min_decisions=10)
    thresholds = {c.label_id: c.threshold for c in ts.classes.all()}

    derived = th.threshold_set_apply(run=run, threshold_set=ts, user=cora)
    assert derived.kind == PipelineRun.Kind.DERIVED
    assert derived.source_run == run and derived.threshold_set == ts
    assert derived.status == PipelineRun.Status.DONE
    assert derived.config["filter"]["threshold"] == ts.global_threshold
    assert derived.config["derived"]["source_threshold"] == 0.3

    expected = {
        (c.clip_id, c.label_id, c.attempt): c.clap_score >= thresholds.get(c.label_id,
                                                                           ts.global_threshold)
        for c in Candidate.objects.filter(run=run, selected=True)
    }
    got = {(c.clip_id, c.label_id, c.attempt): c.kept
           for c in Candidate.objects.filter(run=derived)}
    assert got == expected
    assert got[(clips[1].pk, label("bark").pk, 0)] is False  # 0.49 < global 0.5
    assert got[(clips[4].pk, label("dog").pk, 0)] is True  # 0.25 >= 0.2 (0.3 in the source)
    assert not Candidate.objects.filter(run=derived, selected=False).exists()
    assert ClipResult.objects.filter(run=derived).count() == ClipResult.objects.filter(
        run=run).count() == 19
    assert OriginalLabelScore.objects.get(run=derived).clap_score == 0.05
    # The source is untouched.
    assert Candidate.objects.get(run=run, clip=clips[4], label=label("dog")).kept is False
    # Clip results: statuses copied, the model text stays with the source run.
    src = ClipResult.objects.get(run=run, clip=clips[4])
    src.summary, src.caption = "A dog barks twice.", {"attempts": [], "reason": "ok"}
    src.save()
    assert ClipResult.objects.get(run=derived, clip=clips[4]).summary == ""


def test_review_page_shows_the_derived_run_with_its_source_text(synthetic):
    from pipeline.models import ClipResult
    from review.selectors import clip_page_data

    ds, run, clips, cora = synthetic
    ClipResult.objects.filter(run=run, clip=clips[4]).update(
        summary="A dog barks twice.", free_labels=[["dog barking"]])
    ts = th.threshold_set_fit(dataset=ds, run=run, min_decisions=10)
    derived = th.threshold_set_apply(run=run, threshold_set=ts)
    page = clip_page_data(clip=clips[4], reviewer=cora)
    assert page.outputs.run == derived  # the newest run of the model chain or derived
    assert page.outputs.summary == "A dog barks twice."
    assert page.outputs.free_labels == ["dog barking"]
    dog = page.row(label("dog").pk)
    assert dog.candidate.run_id == derived.pk and dog.kept  # 0.25 >= the fitted 0.2
    # The audit's default run is the derived one too.
    from curation.resolution import default_run

    assert default_run(ds) == derived


def test_apply_refuses_other_clap_model_and_external_runs(synthetic):
    from pipeline.models import PipelineRun

    ds, run, clips, cora = synthetic
    ts = th.threshold_set_fit(dataset=ds, run=run, min_decisions=10)
    other = make_run(ds)
    other.config["backends"] = {"clap": {"adapter": "transformers-clap", "model": "big"}}
    other.save()
    with pytest.raises(th.ThresholdError, match="fitted for CLAP model"):
        th.threshold_set_apply(run=other, threshold_set=ts)
    ext = make_run(ds, kind="external")
    with pytest.raises(th.ThresholdError, match="external label set"):
        th.threshold_set_apply(run=ext, threshold_set=ts)
    reviewer = UserFactory(username="tnot")
    with pytest.raises(th.PermissionDenied):
        th.threshold_set_apply(run=run, threshold_set=ts, user=reviewer)
    assert PipelineRun.objects.filter(kind="derived").count() == 0


# --- commands -----------------------------------------------------------------------------


def cmd(name, *args) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def test_commands(synthetic):
    from pipeline.models import PipelineRun

    ds, run, clips, _ = synthetic
    text = cmd("fit_thresholds", "--dataset", "thr", "--run", str(run.pk),
               "--min-decisions", "10")
    assert "threshold set 'thr' version 1" in text
    assert "fitted on 53 decided candidates (29 accepted); global threshold 0.5000" in text
    assert "held-out (5-fold by clip, 19 clips)" in text
    assert "Speech" in text and "threshold 0.5000  F1 1.000" in text
    text = cmd("apply_thresholds", "--run", str(run.pk), "--set", "thr")
    derived = PipelineRun.objects.get(kind="derived")
    assert f"derived run {derived.pk} from run {run.pk} with threshold set thr v1" in text
    n, kept = th.derived_run_kept_counts(derived)
    assert f"{n:,} candidates, {kept:,} kept" in text

    with pytest.raises(CommandError, match="no threshold set named 'nope'"):
        cmd("apply_thresholds", "--run", str(run.pk), "--set", "nope")
    with pytest.raises(CommandError, match="no run 999999 in dataset 'thr'"):
        cmd("fit_thresholds", "--dataset", "thr", "--run", "999999")
    empty = make_run(ds)
    with pytest.raises(CommandError, match="no decided candidates"):
        cmd("fit_thresholds", "--dataset", "thr", "--run", str(empty.pk))


def test_deleting_sources_sets_and_datasets(synthetic):
    from django.db.models import RestrictedError

    from pipeline.models import Candidate, PipelineRun, ThresholdSet

    ds, run, clips, _ = synthetic
    ts = th.threshold_set_fit(dataset=ds, run=run, min_decisions=10)
    derived = th.threshold_set_apply(run=run, threshold_set=ts)
    with pytest.raises(RestrictedError):
        ts.delete()  # a derived run uses it
    derived2 = th.threshold_set_apply(run=run, threshold_set=ts)
    derived2.delete()
    assert PipelineRun.objects.filter(pk=derived.pk).exists()
    run.delete()  # its derived runs go with it
    assert not PipelineRun.objects.filter(pk=derived.pk).exists()
    assert not Candidate.objects.filter(run_id=derived.pk).exists()
    ts.delete()  # unused now
    assert ThresholdSet.objects.count() == 0


def test_deleting_a_dataset_with_derived_runs(synthetic):
    from pipeline.models import PipelineRun, ThresholdSet

    ds, run, clips, _ = synthetic
    ts = th.threshold_set_fit(dataset=ds, run=run, min_decisions=10)
    th.threshold_set_apply(run=run, threshold_set=ts)
    ds.delete()
    assert not PipelineRun.objects.exists() and not ThresholdSet.objects.exists()


def test_apply_a_set_without_class_thresholds(synthetic):
    from pipeline.models import Candidate

    ds, run, clips, _ = synthetic
    ts = th.threshold_set_fit(dataset=ds, run=run, min_decisions=1000)
    assert ts.classes.count() == 0
    derived = th.threshold_set_apply(run=run, threshold_set=ts)
    got = {(c.clip_id, c.label_id): c.kept for c in Candidate.objects.filter(run=derived)}
    assert got == {(c.clip_id, c.label_id): c.clap_score >= ts.global_threshold
                   for c in Candidate.objects.filter(run=run, selected=True)}
    assert any(got.values()) and not all(got.values())


def test_fit_on_a_class_with_0_accepted_is_refused_with_its_reason(db):
    """The trial: "Fit thresholds" on 10 candidates, none accepted, made a set at -0.0663
    ("best F1 0.000") with no warning. Now refused, nothing written, and it says how many
    decisions are needed."""
    from curation.models import ThresholdFitJob
    from curation.threshold_jobs import threshold_fit_job_run, threshold_fit_request
    from pipeline.models import ThresholdSet
    from tests.curation.conftest import decide, make_clip
    from tests.factories import DatasetFactory

    ds = DatasetFactory(name="none-acc")
    run = make_run(ds, threshold=0.3)
    r1 = UserFactory(username="na-r1")
    cora = UserFactory(username="na-cora", role="curator")
    for i in range(10):
        c = make_clip(ds, f"noneacc{i:04d}", 0.0, i)
        add_candidates(run, c, {"siren": -0.0663 + i / 100})
        decide(c, "siren", r1, "reject")
    with pytest.raises(th.ThresholdError) as e:
        th.threshold_set_fit(dataset=ds, run=run, min_decisions=5, user=cora)
    assert str(e.value) == (
        f"too few decisions to fit on run {run.pk}: 0 accepted and 10 rejected: a threshold "
        "needs at least 3 accepted and 3 rejected decisions")
    # The same through the button's background job: refused with that reason.
    req = threshold_fit_request(dataset=ds, run=run, min_decisions=5, user=cora)
    job = threshold_fit_job_run(job_id=req.job.pk)
    assert job.status == ThresholdFitJob.Status.FAILED and job.error == str(e.value)
    assert not ThresholdSet.objects.exists()
    # The command: exit 1 with that one line.
    with pytest.raises(CommandError, match="0 accepted and 10 rejected"):
        call_command("fit_thresholds", "--dataset", ds.name, "--run", str(run.pk),
                     stdout=io.StringIO())


def test_per_class_refusal_rules():
    """Per class: enough decisions but fewer than MIN_EACH of one answer -> no threshold of
    its own (the global one applies), with the reason; enough of both -> fitted."""
    samples = []
    for i in range(10):  # class 1: 9 rejected, 1 accepted -> refused
        samples.append(th.Sample(clip_id=i, label_id=1, score=i / 10, accepted=i == 9))
    for i in range(10):  # class 2: 5 and 5 -> fitted at 0.5
        samples.append(th.Sample(clip_id=i, label_id=2, score=i / 10, accepted=i >= 5))
    f = th.fit(samples, min_decisions=10)
    assert set(f.per_class) == {2} and f.per_class[2].threshold == pytest.approx(0.5)
    assert f.refused[1].reason == ("1 accepted and 9 rejected: a threshold needs at least 3 "
                                   "accepted and 3 rejected decisions")
    assert f.threshold_for(1) == f.global_threshold
