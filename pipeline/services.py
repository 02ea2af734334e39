"""Runs: create or reuse, dispatch to Celery, cancel, resume, progress."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from relabel_app.models import Clip, Dataset

from . import chain
from .models import ClipResult, PipelineRun, StageStatus
from .profiles import resolve_profile

log = logging.getLogger(__name__)


def run_get_or_create(
    *,
    dataset: Dataset,
    profile: str,
    clip_ids: list[int] | None = None,
    new: bool = False,
    user=None,
) -> tuple[PipelineRun, bool]:
    """The latest run of this dataset and profile (continued), or a fresh one with `new`.
    Result rows are added for clips that lack one (all clips, or `clip_ids`)."""
    config = resolve_profile(profile, model_dir=settings.MODEL_DIR)
    with transaction.atomic():
        run = None
        if not new:
            run = (
                PipelineRun.objects.select_for_update()
                .filter(dataset=dataset, profile_name=config["name"], kind=PipelineRun.Kind.MODELS)
                .order_by("-created_at")
                .first()
            )
        created = run is None
        if created:
            run = PipelineRun.objects.create(
                dataset=dataset, profile_name=config["name"], config=config, created_by=user
            )
        # Every other column (the stages' 'pending', empty outputs) is a database default.
        with connection.cursor() as cur:
            sql = (
                f"INSERT INTO {ClipResult._meta.db_table} (run_id, clip_id) "
                f"SELECT %s, c.id FROM {Clip._meta.db_table} c WHERE c.dataset_id = %s"
            )
            params: list = [run.id, dataset.id]
            if clip_ids:
                sql += " AND c.id = ANY(%s)"
                params.append(list(clip_ids))
            cur.execute(sql + " ON CONFLICT (run_id, clip_id) DO NOTHING", params)
        run.clip_count = ClipResult.objects.filter(run=run).count()
        if run.status in (PipelineRun.Status.DONE, PipelineRun.Status.CANCELLED) and \
                _pending_results(run).exists():
            run.status = PipelineRun.Status.PENDING
        run.save(update_fields=["clip_count", "status"])
    return run, created


def _pending_results(run: PipelineRun):
    """The run's clips that neither failed nor went through the last stage."""
    return ClipResult.objects.filter(run=run, error_stage="").exclude(
        **{chain.get(chain.last()).status_field(): StageStatus.DONE}
    )


def run_dispatch(*, run: PipelineRun) -> int:
    """Queue every unfinished clip of the run, in chunks, at the first stage it lacks.
    Safe to call again (resume after a crash): finished work is skipped by the tasks."""
    from .tasks import stage_task_for

    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().get(pk=run.pk)
        if run.status == PipelineRun.Status.CANCELLED:
            return 0
        run.status = PipelineRun.Status.RUNNING
        run.started_at = run.started_at or timezone.now()
        run.finished_at = None
        run.save(update_fields=["status", "started_at", "finished_at"])
    chunk = int(run.config.get("chunk_size", 16))
    fields = chain.status_fields()
    pending = list(_pending_results(run).order_by("clip_id").values_list("clip_id", *fields))
    groups: dict[str, list[int]] = {}
    for clip_id, *statuses in pending:
        # The first stage the clip has not done yet.
        stage = next(name for name, st in zip(chain.names(), statuses, strict=True)
                     if st != StageStatus.DONE)
        groups.setdefault(stage, []).append(clip_id)
    sent = 0
    for stage, ids in groups.items():
        for i in range(0, len(ids), chunk):
            part = ids[i : i + chunk]
            transaction.on_commit(
                lambda s=stage, p=part: stage_task_for(s).delay(run.pk, p)
            )
            sent += 1
    if not pending:
        run_finish_if_complete(run_id=run.pk)
    return sent


def run_cancel(*, run: PipelineRun) -> None:
    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineRun.Status.CANCELLED)


def run_resume(*, run: PipelineRun) -> int:
    """A person resumes a run: cancelled (by hand, or by the recovery after a second
    interruption) or interrupted. The recovery count starts again."""
    PipelineRun.objects.filter(pk=run.pk, status=PipelineRun.Status.CANCELLED).update(
        status=PipelineRun.Status.PENDING
    )
    PipelineRun.objects.filter(pk=run.pk).update(recoveries=0, stop_reason="",
                                                 requeued_at=timezone.now())
    run.refresh_from_db()
    return run_dispatch(run=run)


# A run re-queued this many times by the recovery and interrupted again is stopped.
MAX_AUTOMATIC_RECOVERIES = 1


def runs_recover_interrupted(*, run_ids: list[int] | None = None) -> dict[str, list[int]]:
    """Runs whose workers are gone: running (or pending after a start) with clips left and
    no clip result written for stall_seconds() (results are written per chunk, so their
    updated_at is the run's heartbeat). Each is re-queued once (run_dispatch: idempotent
    tasks skip finished work), then, interrupted again, stopped as cancelled with the
    reason; a person's Resume starts the count again. Called when a worker starts, by
    ``manage.py recover_runs`` (not on a page load: a GET changes nothing; the run page
    says the run looks interrupted and offers Resume)."""
    out: dict[str, list[int]] = {"requeued": [], "stopped": []}
    qs = PipelineRun.objects.filter(
        status__in=[PipelineRun.Status.RUNNING, PipelineRun.Status.PENDING],
        started_at__isnull=False,
    )
    if run_ids is not None:
        qs = qs.filter(pk__in=run_ids)
    for pk in qs.values_list("pk", flat=True):
        with transaction.atomic():
            run = (PipelineRun.objects.select_for_update(skip_locked=True)
                   .filter(pk=pk).first())
            if run is None or not run_progress(run=run).interrupted:
                continue
            idle = int(stall_seconds())
            if run.recoveries >= MAX_AUTOMATIC_RECOVERIES:
                run.status = PipelineRun.Status.CANCELLED
                run.stop_reason = (
                    f"Stopped: interrupted again after {run.recoveries} automatic re-queue "
                    f"(no clip result written for over {idle} s; its workers are gone?). "
                    "Resume re-queues what is unfinished.")
                run.save(update_fields=["status", "stop_reason"])
                out["stopped"].append(pk)
                log.warning("run %s stopped: %s", pk, run.stop_reason)
                continue
            run.recoveries += 1
            run.requeued_at = timezone.now()  # the stall clock starts again from here
            run.stop_reason = (f"Re-queued automatically ({run.recoveries}x): no clip result "
                               f"was written for over {idle} s.")
            run.save(update_fields=["recoveries", "requeued_at", "stop_reason"])
            run_dispatch(run=run)
            out["requeued"].append(pk)
            log.warning("run %s re-queued: %s", pk, run.stop_reason)
    return out


def run_finish_if_complete(*, run_id: int) -> bool:
    run = PipelineRun.objects.get(pk=run_id)
    if _pending_results(run).exists():
        return False
    finished = PipelineRun.objects.filter(pk=run_id, status=PipelineRun.Status.RUNNING).update(
        status=PipelineRun.Status.DONE, finished_at=timezone.now()
    )
    if finished:
        from .signals import run_finished

        transaction.on_commit(lambda: run_finished.send(sender=PipelineRun, run=run))
    return True


def stall_seconds() -> float:
    """How long a run may go without any clip result changing before it counts as
    interrupted: longer than a chunk task may run (results are written per chunk)."""
    return float(settings.CELERY_TASK_TIME_LIMIT) + 60.0


@dataclass
class RunProgress:
    total: int
    stages: dict[str, int]  # clips done per stage, in chain order
    failed: int
    status: str
    rate_per_s: float | None
    eta_s: float | None
    # Running (or pending) with clips left and no result written for stall_seconds():
    # its worker died or its messages were lost; Resume re-queues what is unfinished.
    interrupted: bool = False

    @property
    def can_cancel(self) -> bool:
        return self.status in (PipelineRun.Status.PENDING, PipelineRun.Status.RUNNING) \
            and not self.interrupted

    @property
    def can_resume(self) -> bool:
        """Only a cancelled or interrupted run; never one that is moving or finished."""
        return self.status == PipelineRun.Status.CANCELLED or self.interrupted

    def __getattr__(self, name: str) -> int:
        # progress.caption, progress.filter, ...: the clips done by that stage.
        stages = self.__dict__.get("stages") or {}
        if name in stages:
            return stages[name]
        raise AttributeError(name)

    @property
    def complete(self) -> int:
        """Clips through every stage."""
        return self.stages[chain.last()]

    @property
    def finished(self) -> int:
        return self.complete + self.failed

    @property
    def percent(self) -> float:
        return 100.0 * self.finished / self.total if self.total else 100.0


def run_progress(*, run: PipelineRun) -> RunProgress:
    done = StageStatus.DONE
    agg = ClipResult.objects.filter(run=run).aggregate(
        total=Count("id"),
        failed=Count("id", filter=~Q(error_stage="")),
        last_write=Max("updated_at"),
        **{f"stage_{s.name}": Count("id", filter=Q(**{s.status_field(): done}))
           for s in chain.stages()},
    )
    stages = {name: agg.pop(f"stage_{name}") for name in chain.names()}
    last_write = agg.pop("last_write")
    run.refresh_from_db(fields=["status", "created_at", "started_at", "finished_at",
                                "requeued_at"])
    rate = eta = None
    finished = stages[chain.last()] + agg["failed"]
    last_activity = max(t for t in (last_write, run.started_at, run.created_at,
                                     run.requeued_at) if t)
    interrupted = (
        run.status in (PipelineRun.Status.PENDING, PipelineRun.Status.RUNNING)
        and finished < agg["total"]
        and (timezone.now() - last_activity).total_seconds() > stall_seconds()
    )
    if run.started_at and finished:
        end = run.finished_at or timezone.now()
        elapsed = max((end - run.started_at).total_seconds(), 1e-3)
        rate = finished / elapsed
        eta = (agg["total"] - finished) / rate if rate else None
    return RunProgress(status=run.status, rate_per_s=rate, eta_s=eta, stages=stages,
                       interrupted=interrupted, **agg)


def run_failed_results(*, run: PipelineRun, limit: int = 200) -> tuple[list[ClipResult], int]:
    """The run's failed clips (stage and reason), in clip order, at most `limit`, and how
    many failed in all."""
    qs = ClipResult.objects.filter(run=run).exclude(error_stage="")
    rows = list(qs.select_related("clip").only(
        "id", "clip_id", "error_stage", "error", "clip__ytid", "clip__start_s", "clip__end_s",
    ).order_by("clip_id")[:limit])
    return rows, (len(rows) if len(rows) < limit else qs.count())


def run_wait(*, run: PipelineRun, on_progress=None, poll_s: float = 0.5,
             timeout_s: float | None = None) -> RunProgress:
    t0 = time.monotonic()
    while True:
        p = run_progress(run=run)
        if on_progress:
            on_progress(p)
        if p.finished >= p.total or p.status in (
            PipelineRun.Status.DONE, PipelineRun.Status.CANCELLED
        ):
            if p.finished >= p.total:
                run_finish_if_complete(run_id=run.pk)
            return run_progress(run=run)
        if timeout_s is not None and time.monotonic() - t0 > timeout_s:
            return p
        time.sleep(poll_s)
