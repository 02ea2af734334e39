"""The audit snapshot is computed incrementally (issue 18): the sums over every clip as if
nobody had decided (the base) are kept with the snapshot and only the decided clips are
resolved on each refresh. It must give exactly what a computation over every clip gives,
and compute the base again whenever what it rests on changes."""

from __future__ import annotations

import random

import pytest

from curation import audits
from curation.audits import audit_base_tallies, dataset_audit, dataset_audit_increment
from curation.models import AuditSnapshot
from curation.snapshots import audit_snapshot_compute, audit_snapshot_request

from .conftest import add_candidates, adjudicate, decide, label, make_clip, make_run

pytestmark = pytest.mark.django_db

KEYS = ["speech", "dog", "music", "siren", "bark", "cat", "choir"]


def _scores(run, clip, scored: dict[str, float]) -> None:
    from pipeline.models import OriginalLabelScore

    for key, score in scored.items():
        OriginalLabelScore.objects.create(run=run, clip=clip, label=label(key), clap_score=score)


@pytest.fixture
def mixed(curator, reviewers):
    """60 clips, most undecided; some covered by the run, some not; original scores on
    most originals; votes, ties, added labels, adjudications and a flagged-out reviewer's
    votes on a few."""
    from relabel_app.models import Dataset

    rng = random.Random(18)
    ds = Dataset.objects.create(name="mix", required_reviews=2)
    run = make_run(ds, threshold=0.3)
    clips = []
    for i in range(60):
        originals = rng.sample(KEYS, rng.randint(0, 3))
        clip = make_clip(ds, f"mix{i:08d}", 0.0, i, originals)
        clips.append(clip)
        if i % 7 != 3:  # covered by the run
            cands = {k: round(rng.random() * 0.6, 3) for k in rng.sample(KEYS, rng.randint(1, 4))}
            add_candidates(run, clip, cands)
            _scores(run, clip, {k: round(rng.random() * 0.6, 3) for k in originals[:2]})
    for clip in clips[::5]:
        for r in reviewers:
            for key in rng.sample(KEYS, 2):
                decide(clip, key, r, rng.choice(["accept", "reject", "unsure"]))
    adjudicate(clips[10], KEYS[0], curator, "accept")
    adjudicate(clips[11], "cat", curator, "reject")  # a clip no reviewer decided
    return ds, run, clips


def _same(a, b, path="") -> None:
    """Equal, floats to 1e-9 (sums taken away and added back)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-9), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def test_increment_gives_the_full_computations_figures(mixed):
    ds, run, _ = mixed
    full = dataset_audit(dataset=ds, run=run)
    inc = dataset_audit_increment(dataset=ds, run=run, base=audit_base_tallies(dataset=ds, run=run))
    _same(inc, full)
    # Not an empty comparison: decisions moved the curated set away from the originals.
    assert full["label_counts"]["curated"] != full["label_counts"]["original"]
    assert full["agreement"]["clips"] == 60 - 9 and full["pipeline_vs_experts"]["overall"]["tp"]
    scored = full["original_label_scores"]
    assert scored["unresolved"]["labels"] > 0 and scored["kept"]["labels"] > 0


def test_increment_without_a_run_and_with_a_flagged_reviewer(mixed, reviewers, monkeypatch):
    ds, run, _ = mixed
    _same(dataset_audit_increment(dataset=ds, run=None, base=audit_base_tallies(dataset=ds, run=None),
                                  run_choice="none"),
          dataset_audit(dataset=ds, run=None, use_default_run=False))
    # The gold floor leaves a reviewer's votes out: the decided clips' part follows.
    import curation.gold

    monkeypatch.setattr(curation.gold, "flagged_reviewer_ids", lambda dataset: (reviewers[0].pk,))
    full = dataset_audit(dataset=ds, run=run)
    assert full["excluded_reviewers"] == [reviewers[0].username]
    _same(dataset_audit_increment(dataset=ds, run=run, base=audit_base_tallies(dataset=ds, run=run)),
          full)


def test_snapshot_keeps_its_base_until_what_it_rests_on_changes(mixed, reviewers, monkeypatch):
    ds, run, clips = mixed
    calls = []
    real = audits.audit_base_tallies
    monkeypatch.setattr(audits, "audit_base_tallies",
                        lambda **kw: calls.append(kw) or real(**kw))
    snap = audit_snapshot_compute(snapshot_id=audit_snapshot_request(dataset=ds, run=run).pk)
    assert snap.status == AuditSnapshot.Status.DONE and len(calls) == 1
    assert snap.base_tallies and snap.base_key

    # New decisions: the base is reused, the figures follow the decisions.
    decide(clips[1], "choir", reviewers[0], "accept")
    decide(clips[1], "choir", reviewers[1], "accept")
    snap = audit_snapshot_compute(snapshot_id=audit_snapshot_request(dataset=ds, run=run).pk)
    assert len(calls) == 1
    _same(snap.figures, dataset_audit(dataset=ds, run=run, use_default_run=False) | {"run_choice": "given"})

    # A clip imported (with an original label): the base is computed again.
    make_clip(ds, "mixnew00001", 0.0, 99, ["dog"])
    snap = audit_snapshot_compute(snapshot_id=audit_snapshot_request(dataset=ds, run=run).pk)
    assert len(calls) == 2 and snap.figures["clips"] == 61
    _same(snap.figures, dataset_audit(dataset=ds, run=run) | {"run_choice": "given"})

    # More candidates written for the run: computed again too.
    add_candidates(run, clips[3], {"choir": 0.55})
    snap = audit_snapshot_compute(snapshot_id=audit_snapshot_request(dataset=ds, run=run).pk)
    assert len(calls) == 3
    _same(snap.figures, dataset_audit(dataset=ds, run=run) | {"run_choice": "given"})
