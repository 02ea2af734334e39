"""Celery entry points of the curation app. Thin: take ids, call a service."""

from celery import shared_task

# An export of 2M clips takes about a minute; the limits leave room for bigger sets and a
# slow disk without letting a stuck job hold the export worker forever.
EXPORT_SOFT_TIME_LIMIT_S = 3600
EXPORT_TIME_LIMIT_S = 3700


@shared_task(
    name="curation.export", queue_name="export", acks_late=True, reject_on_worker_lost=True,
    soft_time_limit=EXPORT_SOFT_TIME_LIMIT_S, time_limit=EXPORT_TIME_LIMIT_S,
)
def export_task(job_id: int) -> str:
    """Run one ExportJob (on the "export" queue). A duplicate
    message finds the job finished and does nothing."""
    from .services import export_job_run

    job = export_job_run(job_id=job_id)
    return job.status if job else "missing"
