"""Stored audit snapshots: the audit page reads figures a Celery task computed, so it opens
in a few indexed reads at 2M clips (computing them takes tens of seconds there).

When a snapshot is (re)computed:
* a run finishes or a label set is imported (pipeline.signals.run_finished);
* a curator presses Refresh on the audit page;
* debounced after decisions: the audit page asks for a refresh when decisions came in
  since the snapshot and it is older than DEBOUNCE; an adjudication asks for one DEBOUNCE
  later. A request while one is queued or computing is folded into it.

``audit --json`` computes fresh (curation.audits.dataset_audit), as before."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from pipeline.models import PipelineRun
from relabel_app.models import Clip, Dataset
from review.models import DecisionLog

from .models import AuditSnapshot

log = logging.getLogger(__name__)

DEBOUNCE = timedelta(minutes=2)
# A request older than this whose task never ran (broker down, worker killed) is retried.
STALE_REQUEST = timedelta(minutes=30)


def audit_snapshot_get(*, dataset: Dataset, run: PipelineRun | None) -> AuditSnapshot | None:
    return AuditSnapshot.objects.filter(dataset=dataset, run=run).first()


def decisions_since(*, snapshot: AuditSnapshot) -> int:
    """Decision changes (DecisionLog entries) on the dataset's clips since the snapshot's
    computation started. An index range scan over the newest log ids."""
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM {DecisionLog._meta.db_table} l "
            f"JOIN {Clip._meta.db_table} c ON c.id = l.clip_id "
            "WHERE l.id > %s AND c.dataset_id = %s",
            [snapshot.last_log_id, snapshot.dataset_id],
        )
        return cur.fetchone()[0]


def _enqueue(snapshot_id: int, countdown: float) -> None:
    from .tasks import audit_snapshot_task

    try:
        audit_snapshot_task.apply_async((snapshot_id,), countdown=countdown)
    except Exception:  # broker away: the page says "queued"; a later request retries
        log.exception("could not queue audit snapshot %s", snapshot_id)


def audit_snapshot_request(*, dataset: Dataset, run: PipelineRun | None,
                           delay: timedelta = timedelta(0)) -> AuditSnapshot:
    """Ask for a (re)computation of the snapshot of (dataset, run), ``delay`` from now.
    Folded into a request already queued or running (unless that one looks lost)."""
    now = timezone.now()
    due = now + delay
    with transaction.atomic():
        snap, _ = AuditSnapshot.objects.select_for_update().get_or_create(
            dataset=dataset, run=run)
        # requested_at: when the computation is due (a debounced one, DEBOUNCE ahead).
        pending = snap.status in (AuditSnapshot.Status.PENDING, AuditSnapshot.Status.RUNNING)
        if (pending and snap.requested_at and now - snap.requested_at < STALE_REQUEST
                and (snap.status == AuditSnapshot.Status.RUNNING or snap.requested_at <= due)):
            return snap
        # Else a new request, or one sooner than the pending one: a Refresh pressed while a
        # debounced refresh waits its two minutes is computed now, not folded into the wait
        # (the later message then finds the snapshot fresh, audit_snapshot_compute).
        snap.status = AuditSnapshot.Status.PENDING
        snap.requested_at = due
        snap.save(update_fields=["status", "requested_at"])
        transaction.on_commit(lambda: _enqueue(snap.pk, delay.total_seconds()))
    return snap


def audit_snapshot_compute(*, snapshot_id: int) -> AuditSnapshot | None:
    """Compute and store the figures of one snapshot (the Celery task's body).

    Incremental: the sums over every clip as if nobody had decided (the base) are kept with
    the snapshot and computed again only when what they rest on changed (a run, an import,
    a deletion: audits.audit_base_key); each refresh resolves only the decided clips
    against them (audits.dataset_audit_increment)."""
    from .audits import (
        Tallies,
        audit_base_key,
        audit_base_tallies,
        dataset_audit_increment,
    )

    snap = AuditSnapshot.objects.select_related("dataset", "run").filter(pk=snapshot_id).first()
    if snap is None:
        return None
    if (snap.status == AuditSnapshot.Status.DONE and snap.computed_at and snap.requested_at
            and snap.computed_at >= snap.requested_at):
        return snap  # a message that was overtaken by a sooner request: already fresh
    AuditSnapshot.objects.filter(pk=snap.pk).update(status=AuditSnapshot.Status.RUNNING,
                                                    started_at=timezone.now())
    with connection.cursor() as cur:
        cur.execute(f"SELECT coalesce(max(id), 0) FROM {DecisionLog._meta.db_table}")
        last_log_id = cur.fetchone()[0]
    t0 = time.perf_counter()
    try:
        key = audit_base_key(dataset=snap.dataset, run=snap.run)
        if snap.base_tallies is not None and snap.base_key == key:
            base = Tallies.from_json(snap.base_tallies)
        else:
            base = audit_base_tallies(dataset=snap.dataset, run=snap.run)
            AuditSnapshot.objects.filter(pk=snap.pk).update(base_tallies=base.as_json(),
                                                            base_key=key)
        figures = dataset_audit_increment(dataset=snap.dataset, run=snap.run, base=base,
                                          run_choice="given" if snap.run else "none")
    except Exception as e:
        log.exception("audit snapshot %s failed", snap.pk)
        AuditSnapshot.objects.filter(pk=snap.pk).update(
            status=AuditSnapshot.Status.FAILED, error=f"{type(e).__name__}: {e}"[:2000])
        return snap
    seconds = time.perf_counter() - t0
    AuditSnapshot.objects.filter(pk=snap.pk).update(
        figures=figures, status=AuditSnapshot.Status.DONE, computed_at=timezone.now(),
        compute_seconds=seconds, last_log_id=last_log_id, error="",
    )
    snap.refresh_from_db()
    return snap


def audit_snapshot_for_page(*, dataset: Dataset, run: PipelineRun | None
                            ) -> tuple[AuditSnapshot | None, int]:
    """The snapshot the audit page shows and the decisions since it; asks for a first
    computation, or a debounced refresh when decisions came in and it is older than
    DEBOUNCE."""
    snap = audit_snapshot_get(dataset=dataset, run=run)
    if snap is None:
        return audit_snapshot_request(dataset=dataset, run=run), 0
    since = decisions_since(snapshot=snap) if snap.computed_at else 0
    stale = snap.computed_at is not None and timezone.now() - snap.computed_at > DEBOUNCE
    lost = (snap.status in (AuditSnapshot.Status.PENDING, AuditSnapshot.Status.RUNNING)
            and snap.requested_at and timezone.now() - snap.requested_at > STALE_REQUEST)
    if (since and stale and snap.status == AuditSnapshot.Status.DONE) or lost:
        audit_snapshot_request(dataset=dataset, run=run)
        snap.status = AuditSnapshot.Status.PENDING
    return snap, since


def audit_snapshot_after_run(*, run: PipelineRun) -> None:
    """A run finished or a label set was imported: recompute the audit against it (the
    page's default run is the latest one)."""
    audit_snapshot_request(dataset=run.dataset, run=run)


def audit_snapshot_after_decision(*, dataset_id: int) -> None:
    """Decisions came in: refresh the snapshots of the dataset that exist, DEBOUNCE later
    (several decisions in that window make one computation)."""
    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        return
    for snap in AuditSnapshot.objects.filter(dataset=dataset).select_related("run"):
        audit_snapshot_request(dataset=dataset, run=snap.run, delay=DEBOUNCE)


def audit_snapshot_progress(snapshot: AuditSnapshot | None) -> dict:
    """What the audit page's state line says about a computation on its way: busy (the
    line polls), seconds running, the fraction of the last computation's time elapsed
    (None: no estimate), seconds until a debounced request is due."""
    busy = snapshot is None or snapshot.status in (AuditSnapshot.Status.PENDING,
                                                   AuditSnapshot.Status.RUNNING)
    out = {"snapshot_busy": busy, "snapshot_elapsed_s": 0.0, "snapshot_progress": None,
           "snapshot_wait_s": 0.0}
    if not busy or snapshot is None or snapshot.requested_at is None:
        return out
    now = timezone.now()
    if snapshot.status == AuditSnapshot.Status.RUNNING:
        started = snapshot.started_at or snapshot.requested_at
        elapsed = max((now - started).total_seconds(), 0.0)
        out["snapshot_elapsed_s"] = elapsed
        if snapshot.compute_seconds:
            out["snapshot_progress"] = min(elapsed / snapshot.compute_seconds, 0.99)
    else:
        out["snapshot_wait_s"] = max((snapshot.requested_at - now).total_seconds(), 0.0)
    return out
