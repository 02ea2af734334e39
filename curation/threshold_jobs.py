""""Fit thresholds" in the background (issue 16): a press records a ThresholdFitJob and
queues the Celery task curation.threshold_fit after commit; the panel follows the job by
htmx polling until it is done (or refused, with the reason). One pending or running fit per
run, enforced by a partial unique constraint, so a second press while one runs starts
nothing and is told so. A job whose task never ran (broker down, worker killed) for
STALE_JOB is marked failed by the next press, which then starts afresh."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from pipeline.models import PipelineRun
from relabel_app.models import Dataset

from .models import ThresholdFitJob
from .thresholds import ThresholdError, _require_curator, threshold_set_fit

log = logging.getLogger(__name__)

STALE_JOB = timedelta(minutes=30)


@dataclass(frozen=True)
class FitRequest:
    job: ThresholdFitJob
    started: bool  # False: a fit of this run was already pending or running


def threshold_fit_active(*, run: PipelineRun | None) -> ThresholdFitJob | None:
    if run is None:
        return None
    return (ThresholdFitJob.objects.filter(run=run, status__in=ThresholdFitJob.ACTIVE)
            .order_by("-created_at").first())


def _enqueue(job_id: int) -> None:
    from .tasks import threshold_fit_task

    try:
        threshold_fit_task.delay(job_id)
    except Exception:  # broker away: the job stays pending; a press after STALE_JOB retries
        log.exception("could not queue threshold fit %s", job_id)


def threshold_fit_request(*, dataset: Dataset, run: PipelineRun, min_decisions: int,
                          user) -> FitRequest:
    """Record a fit of ``run`` and queue it, unless one is pending or running."""
    _require_curator(user)
    if run.dataset_id != dataset.pk:
        raise ThresholdError(f"run {run.pk} belongs to another dataset")
    if run.kind == PipelineRun.Kind.EXTERNAL:
        raise ThresholdError(f"run {run.pk} is an external label set: it has no CLAP scores")
    if min_decisions < 1:
        raise ThresholdError("min_decisions must be at least 1")
    now = timezone.now()
    # A fit lost on the way (never started, or its worker died) does not block for ever.
    ThresholdFitJob.objects.filter(
        run=run, status__in=ThresholdFitJob.ACTIVE, created_at__lt=now - STALE_JOB,
    ).update(status=ThresholdFitJob.Status.FAILED, finished_at=now,
             error="lost: the fit did not finish within 30 minutes")
    try:
        with transaction.atomic():
            job = ThresholdFitJob.objects.create(
                dataset=dataset, run=run, min_decisions=min_decisions,
                requested_by=user if user is not None and user.is_authenticated else None)
            transaction.on_commit(lambda: _enqueue(job.pk))
    except IntegrityError:  # thresholdfitjob_one_active_per_run: one is already on its way
        active = threshold_fit_active(run=run)
        if active is None:  # it finished between the insert and this read: try once more
            return threshold_fit_request(dataset=dataset, run=run,
                                         min_decisions=min_decisions, user=user)
        return FitRequest(job=active, started=False)
    return FitRequest(job=job, started=True)


def threshold_fit_job_run(*, job_id: int) -> ThresholdFitJob | None:
    """The Celery task's body: fit, store the set, record the outcome. A duplicate message
    (the job no longer pending) does nothing."""
    with transaction.atomic():
        job = (ThresholdFitJob.objects.select_for_update(skip_locked=True, of=("self",))
               .select_related("dataset", "run", "requested_by").filter(pk=job_id).first())
        if job is None or job.status != ThresholdFitJob.Status.PENDING:
            return job
        job.status, job.started_at = ThresholdFitJob.Status.RUNNING, timezone.now()
        job.save(update_fields=["status", "started_at"])
    try:
        ts = threshold_set_fit(dataset=job.dataset, run=job.run, user=job.requested_by,
                               min_decisions=job.min_decisions)
    except ThresholdError as e:
        job.status, job.error = ThresholdFitJob.Status.FAILED, str(e)
    except Exception as e:
        log.exception("threshold fit %s failed", job.pk)
        job.status, job.error = ThresholdFitJob.Status.FAILED, f"{type(e).__name__}: {e}"[:2000]
    else:
        job.status, job.threshold_set = ThresholdFitJob.Status.DONE, ts
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "threshold_set", "finished_at"])
    return job
