"""Celery entry points of the curation app. Thin: take ids, call a service."""

import logging

from celery import shared_task
from celery.signals import worker_ready

from relabel_app.queues import CeleryQueue

log = logging.getLogger(__name__)

# An export of 2M clips takes about a minute; the limits leave room for bigger sets and a
# slow disk without letting a stuck job hold the export worker forever.
EXPORT_SOFT_TIME_LIMIT_S = 3600
EXPORT_TIME_LIMIT_S = 3700


@shared_task(
    name="curation.export", queue_name=CeleryQueue.EXPORT.value, acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=EXPORT_SOFT_TIME_LIMIT_S, time_limit=EXPORT_TIME_LIMIT_S,
)
def export_task(job_id: int) -> str:
    """Run one ExportJob (on the export queue). A duplicate
    message finds the job finished and does nothing."""
    from .export_jobs import export_job_run

    job = export_job_run(job_id=job_id)
    return job.status if job else "missing"


@shared_task(name="curation.audit_snapshot", queue_name=CeleryQueue.EXPORT.value, acks_late=True, reject_on_worker_lost=True,
             soft_time_limit=EXPORT_SOFT_TIME_LIMIT_S, time_limit=EXPORT_TIME_LIMIT_S)
def audit_snapshot_task(snapshot_id: int) -> str:
    """Compute one AuditSnapshot (on the export queue, with the other long SQL jobs)."""
    from .snapshots import audit_snapshot_compute

    snap = audit_snapshot_compute(snapshot_id=snapshot_id)
    return snap.status if snap else "missing"
@shared_task(name="curation.recover_exports", acks_late=True, reject_on_worker_lost=True)
def recover_exports_task() -> dict:
    """The periodic check (CELERY_BEAT_SCHEDULE, on the default queue): export jobs whose
    worker is gone are re-queued once, then failed."""
    from .export_jobs import export_jobs_recover

    return export_jobs_recover()


@worker_ready.connect
def recover_exports_at_worker_start(**kwargs) -> None:
    """A worker that starts (after a crash, say) recovers the export jobs whose worker is
    gone: re-queued once, then failed (curation.export_jobs.export_jobs_recover)."""
    from .export_jobs import export_jobs_recover

    try:
        done = export_jobs_recover()
    except Exception:  # never keep a worker from starting
        log.exception("recovering export jobs at worker start failed")
        return
    if done["requeued"] or done["failed"]:
        log.warning("export jobs recovered at worker start: %s", done)
