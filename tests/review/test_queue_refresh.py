"""The set-based queue refresh (review.queue.queue_sync: ranks into a staging table, a
plain sorted insert on a first build, a re-rank that writes only changed slots) against the
code it replaced (tests/review/queue_reference.py, verbatim): same slots, same ranks, same
order for every priority, on a seeded dataset with every rank ingredient (unprocessed
clips, unfinished results, unscored and duplicate candidates, original scores far below a
threshold set's class thresholds). Also: leases and finished slots survive a re-rank, a
failure half-way leaves the old slots, and the plan shapes the 2M-clip figures rest on."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from pipeline.models import (
    Candidate,
    ClassThreshold,
    ClipResult,
    OriginalLabelScore,
    ThresholdSet,
)
from relabel_app.models import Clip, ClipLabel, Dataset, Label
from review import queue
from review.finishing import clip_finish
from review.models import QueueSlot, QueueState
from review.queue import RANK_COLUMNS, queue_next_clip, queue_sync
from tests.factories import UserFactory, make_dataset, make_run
from tests.review.queue_reference import reference_queue_sync

pytestmark = pytest.mark.django_db

N_CLIPS = 80


def _labels() -> list[Label]:
    return list(Label.objects.filter(index__isnull=False).order_by("index")[:10])


def seed(name: str, *, k: int = 2, seed_value: int = 7):
    """A dataset whose clips cover each rank case (drawn with a fixed seed)."""
    rng = random.Random(seed_value)
    ds, clips = make_dataset(name, n_clips=N_CLIPS, with_audio=False,
                             review_priority="uncertain", required_reviews=k)
    labels = _labels()
    ClipLabel.objects.bulk_create([
        ClipLabel(clip=c, label=lab) for c in clips
        for lab in rng.sample(labels, rng.randint(0, 3))
    ])
    run = make_run(ds, threshold=0.25)
    fill_run(run, clips, labels, rng)
    return ds, clips, run


def fill_run(run, clips, labels, rng) -> None:
    results, cands, scores = [], [], []
    for c in clips:
        fate = rng.random()
        if fate < 0.1:
            continue  # not processed by the run
        done = "done" if fate >= 0.2 else "failed"  # an unfinished result: unprocessed too
        results.append(ClipResult(run=run, clip=c, caption={}, summary="", caption_status="done",
                                  predict_status="done", match_status="done",
                                  filter_status=done))
        for lab in rng.sample(labels, rng.randint(0, 4)):
            score = None if rng.random() < 0.1 else round(rng.random() * 0.6, 3)
            kept = score is not None and score >= 0.25
            cands.append(Candidate(run=run, clip=c, label=lab, tier="exact", phrase="p",
                                   clap_score=score, kept=kept, selected=rng.random() > 0.1))
            if rng.random() < 0.1:  # a second selected attempt of the same label
                cands.append(Candidate(run=run, clip=c, label=lab, attempt=1, tier="exact",
                                       phrase="p", clap_score=score, kept=kept, selected=True))
        for lab_id in ClipLabel.objects.filter(clip=c).values_list("label_id", flat=True):
            if rng.random() < 0.6:
                scores.append(OriginalLabelScore(run=run, clip=c, label_id=lab_id,
                                                 clap_score=round(rng.random() * 0.5, 3)))
    ClipResult.objects.bulk_create(results)
    Candidate.objects.bulk_create(cands)
    OriginalLabelScore.objects.bulk_create(scores)


def threshold_set(ds, run, labels) -> None:
    from pipeline.threshold_sets import clap_model_of

    ts = ThresholdSet.objects.create(name=f"ts{run.pk}", version=1, dataset=ds, fitted_from=run,
                                     clap_model=clap_model_of(run.config, run.profile_name),
                                     global_threshold=0.25, min_decisions=1)
    ClassThreshold.objects.bulk_create([
        ClassThreshold(threshold_set=ts, label=lab, decisions=5, positives=2,
                       threshold=0.1 + 0.05 * i, f1=0.8)
        for i, lab in enumerate(labels[:5])
    ])


SLOT_FIELDS = ("clip_id", "slot", "rank_uncertain", "rank_order", "rank_random", "leased_to_id",
               "lease_expires_at", "done_by_id", "done_at")


def snapshot(ds) -> dict:
    rows = {(r[0], r[1]): r for r in QueueSlot.objects.filter(dataset=ds)
            .values_list(*SLOT_FIELDS)}
    orders = {
        column: list(QueueSlot.objects.filter(dataset=ds, done_by__isnull=True)
                     .order_by(column, "clip_id", "slot").values_list("clip_id", "slot"))
        for column in RANK_COLUMNS.values()
    }
    state = QueueState.objects.filter(dataset=ds).values_list(
        "max_position", "required_reviews", "run_id").first()
    return {"rows": rows, "orders": orders, "state": state}


class _Undo(Exception):
    pass


def with_reference(ds, **kw) -> dict:
    """The slots the old code makes from the current database, then everything undone."""
    try:
        with transaction.atomic():
            reference_queue_sync(dataset=ds, **kw)
            got = snapshot(ds)
            raise _Undo
    except _Undo:
        return got


def test_first_build_is_the_old_codes():
    ds, clips, run = seed("rf1")
    threshold_set(ds, run, _labels())
    expected = with_reference(ds)
    assert not QueueSlot.objects.filter(dataset=ds).exists()
    assert queue_sync(dataset=ds) is True
    got = snapshot(ds)
    assert len(got["rows"]) == 2 * N_CLIPS
    assert got == expected
    # Every case is there: unprocessed clips last, far-below originals pulling clips forward.
    ranks = {r[2] for r in got["rows"].values()}
    assert queue.RANK_UNPROCESSED in ranks and min(ranks) < 0


def test_incremental_changes_are_the_old_codes():
    """New clips, a raised overlap, a lowered one: each refresh as the old code's."""
    ds, clips, run = seed("rf2", k=1)
    queue_sync(dataset=ds)
    rng = random.Random(3)
    new = [Clip.objects.create(dataset=ds, ytid=f"late{i:07d}", start_s=0, end_s=10,
                               position=N_CLIPS + i) for i in range(5)]
    for c in new[:3]:
        ClipLabel.objects.create(clip=c, label=_labels()[0])
    fill_run(run, new, _labels(), rng)
    for overlap in (None, 3, 1):
        if overlap is not None:
            Dataset.objects.filter(pk=ds.pk).update(required_reviews=overlap)
            ds.refresh_from_db()
        expected = with_reference(ds)
        assert queue_sync(dataset=ds) is True
        assert snapshot(ds) == expected


def _lease_and_finish(ds) -> tuple[list, list]:
    """Two reviewers finish a clip each and hold a lease each; one lease has run out."""
    a, b = UserFactory(), UserFactory()
    done = []
    for r in (a, b):
        c = queue_next_clip(dataset=ds, reviewer=r)
        clip_finish(clip=c, reviewer=r)
        done.append(c.pk)
    leased = [queue_next_clip(dataset=ds, reviewer=r).pk for r in (a, b)]
    QueueSlot.objects.filter(clip_id=leased[1], leased_to=b).update(
        lease_expires_at=timezone.now() - timedelta(minutes=1))
    return done, leased


def test_rerank_after_a_new_run_is_the_old_codes_and_keeps_leases_and_finished_slots():
    ds, clips, run = seed("rf3")
    queue_sync(dataset=ds)
    done, leased = _lease_and_finish(ds)
    before = snapshot(ds)
    run2 = make_run(ds, threshold=0.3)
    fill_run(run2, clips, _labels(), random.Random(11))
    threshold_set(ds, run2, _labels()[3:])
    expected = with_reference(ds)
    assert queue_sync(dataset=ds) is True
    got = snapshot(ds)
    assert got == expected
    assert got["state"][2] == run2.pk
    # Leases and finished slots as they were; ranks moved.
    lease_cols = slice(5, 9)
    for key, row in before["rows"].items():
        assert got["rows"][key][lease_cols] == row[lease_cols]
    assert sum(got["rows"][key][2] != row[2] for key, row in before["rows"].items()) > N_CLIPS
    assert {key[0] for key, r in got["rows"].items() if r[7] is not None} == set(done)
    assert {key[0] for key, r in got["rows"].items() if r[5] is not None} >= set(leased)


def test_forced_refresh_is_the_old_codes():
    ds, clips, run = seed("rf4")
    queue_sync(dataset=ds)
    _lease_and_finish(ds)
    expected = with_reference(ds, force=True)
    assert queue_sync(dataset=ds, force=True) is True
    assert snapshot(ds) == expected


def _fail_after(monkeypatch, name: str) -> None:
    real = getattr(queue, name)

    def run_then_fail(*args, **kwargs):
        real(*args, **kwargs)  # the statement ran; the transaction has its writes
        raise RuntimeError(f"failure after {name}")

    monkeypatch.setattr(queue, name, run_then_fail)


def test_a_failure_half_way_leaves_the_old_queue(monkeypatch):
    ds, clips, run = seed("rf5")
    queue_sync(dataset=ds)
    _lease_and_finish(ds)
    before = snapshot(ds)
    # A newer run and new clips: the refresh inserts, then re-ranks, then fails.
    Clip.objects.create(dataset=ds, ytid="latecomer01", start_s=0, end_s=10, position=999)
    run2 = make_run(ds)
    fill_run(run2, clips, _labels(), random.Random(5))
    _fail_after(monkeypatch, "_slots_rerank")
    with pytest.raises(RuntimeError):
        queue_sync(dataset=ds)
    assert snapshot(ds) == before
    # A failure in the first statement of a first build: no slots at all.
    ds2, _, _ = seed("rf5b")
    monkeypatch.undo()
    _fail_after(monkeypatch, "_slots_insert")
    with pytest.raises(RuntimeError):
        queue_sync(dataset=ds2)
    assert not QueueSlot.objects.filter(dataset=ds2).exists()
    assert not QueueState.objects.filter(dataset=ds2, required_reviews__gt=0).exists()
    monkeypatch.undo()
    assert queue_sync(dataset=ds) is True  # and the next try succeeds
    assert snapshot(ds)["state"][2] == run2.pk


def test_first_build_over_leftover_slots_falls_back_to_on_conflict():
    """Slots without a QueueState (deleted by hand): the plain insert meets the unique
    constraint and the savepoint falls back; the kept slots are not duplicated."""
    ds, clips, run = seed("rf6", k=1)
    queue_sync(dataset=ds)
    r = UserFactory()
    c = queue_next_clip(dataset=ds, reviewer=r)
    clip_finish(clip=c, reviewer=r)
    QueueSlot.objects.filter(dataset=ds).exclude(clip=c).delete()
    QueueState.objects.filter(dataset=ds).delete()
    expected = with_reference(ds)
    assert queue_sync(dataset=ds) is True
    assert snapshot(ds) == expected
    assert QueueSlot.objects.filter(dataset=ds).count() == N_CLIPS


def _xact_writes() -> tuple[int, int]:
    with connection.cursor() as cur:
        cur.execute("SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables "
                    "WHERE relname = %s", [QueueSlot._meta.db_table])
        row = cur.fetchone()
    return (row[0], row[1]) if row else (0, 0)


def test_rerank_writes_only_the_slots_whose_rank_changed():
    """Every written slot is a new row version in each of the table's indexes (the rank
    is indexed: no HOT update); the 2M-clip re-rank figure rests on writing none when the
    ranks did not change (a new run with the same results)."""
    ds, clips, run = seed("rf7")
    queue_sync(dataset=ds)
    run2 = make_run(ds, threshold=0.25)
    for model in (ClipResult, Candidate, OriginalLabelScore):
        model.objects.bulk_create([
            model(**{f.attname: getattr(o, f.attname) for f in model._meta.concrete_fields
                     if f.attname not in ("id", "run_id")}, run=run2)
            for o in model.objects.filter(run=run)
        ])
    ins, upd = _xact_writes()
    assert queue_sync(dataset=ds) is True
    assert QueueState.objects.get(dataset=ds).run == run2
    assert _xact_writes() == (ins, upd)  # no slot written
    # One clip's candidates change: its k slots are written, nothing else.
    clip = ClipResult.objects.filter(run=run2, filter_status="done").first().clip
    ClipResult.objects.filter(run=run2, clip=clip).update(filter_status="failed")
    queue_sync(dataset=ds, force=True)
    assert _xact_writes() == (ins, upd + 2)  # its two slots (k = 2)


def _plan(sql: str, params: dict) -> str:
    with connection.cursor() as cur:
        cur.execute("EXPLAIN " + sql, params)
        return "\n".join(r[0] for r in cur.fetchall())


def test_rank_query_plans_no_index_probe_per_row():
    """Right after a run finishes its candidates have no statistics; under the refresh's
    settings the rank query must still join by hash or merge (one pass per table) rather
    than probe an index per candidate. The old plan on 2M clips: nested loops, 50 to 140 s."""
    ds, clips, run = seed("rf8")
    threshold_set(ds, run, _labels())
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    run2 = make_run(ds)  # finished after the statistics were taken
    fill_run(run2, clips, _labels(), random.Random(2))
    sql, params = queue._uncertain_rank_sql(run2.pk)
    params = {"ds": ds.pk, "after": -1, **params}
    with transaction.atomic(), connection.cursor() as cur:
        stale = _plan(sql, params)
        with queue._session_settings(cur, queue._RANK_SETTINGS):
            plan = _plan(sql, params)
    print(stale, plan, sep="\n\n")
    assert "Nested Loop" in stale  # what the statistics alone lead to
    assert "Nested Loop" not in plan


def test_settings_are_put_back_for_the_rest_of_the_transaction():
    ds, clips, run = seed("rf9")
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT current_setting('work_mem'), current_setting('jit'), "
                    "current_setting('enable_nestloop')")
        before = cur.fetchone()
        queue_sync(dataset=ds)
        cur.execute("SELECT current_setting('work_mem'), current_setting('jit'), "
                    "current_setting('enable_nestloop')")
        assert cur.fetchone() == before


def test_deleting_a_dataset_still_deletes_its_slots():
    """QueueSlot.dataset has no database constraint (migration 0013); Django cascades."""
    ds, clips, run = seed("rf10", k=1)
    queue_sync(dataset=ds)
    assert QueueSlot.objects.filter(dataset=ds).count() == N_CLIPS
    pk = ds.pk
    ds.delete()
    assert not QueueSlot.objects.filter(dataset_id=pk).exists()


def test_other_datasets_keep_picking_during_a_rerank(transactional_db, monkeypatch):
    """A re-rank holds its transaction open (here: stopped right after its UPDATE); a pick in
    another dataset goes through meanwhile (no table lock, no wait on the shared table),
    and a second refresh of the same dataset waits for the first, then finds it done."""
    import threading
    import time

    from django.db import connections

    ds, clips, run = seed("rfc1", k=1)
    other, _ = make_dataset("rfc2", n_clips=3, with_audio=False, review_priority="order")
    queue_sync(dataset=ds)
    queue_sync(dataset=other)
    run2 = make_run(ds)
    fill_run(run2, clips, _labels(), random.Random(9))
    inside, go_on = threading.Event(), threading.Event()
    real = queue._slots_rerank

    def slow_rerank(*args, **kwargs):
        n = real(*args, **kwargs)
        inside.set()
        assert go_on.wait(timeout=30)
        return n

    monkeypatch.setattr(queue, "_slots_rerank", slow_rerank)
    results: dict[str, object] = {}

    def refresh(key: str) -> None:
        try:
            results[key] = queue_sync(dataset=Dataset.objects.get(pk=ds.pk))
        finally:
            connections.close_all()

    first = threading.Thread(target=refresh, args=("first",))
    first.start()
    assert inside.wait(timeout=30)
    second = threading.Thread(target=refresh, args=("second",))
    second.start()
    t0 = time.perf_counter()
    picked = queue_next_clip(dataset=other, reviewer=UserFactory())
    assert picked is not None and time.perf_counter() - t0 < 5
    assert "second" not in results  # waiting on the advisory lock
    go_on.set()
    first.join(timeout=60)
    second.join(timeout=60)
    assert results == {"first": True, "second": False}
    assert QueueState.objects.get(dataset=ds).run == run2
