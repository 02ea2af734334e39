"""Celery entry points of the review app. Thin: take ids, call a service."""

from celery import shared_task


@shared_task(name="review.queue_sync", acks_late=True, reject_on_worker_lost=True)
def queue_sync_task(dataset_id: int) -> bool:
    """Refresh a dataset's queue slots (new clips, overlap, re-rank after a run).
    Idempotent: a duplicate finds the queue fresh and does nothing."""
    from relabel_app.models import Dataset

    from .queue import queue_refresh_in_background

    dataset = Dataset.objects.filter(pk=dataset_id).first()
    return bool(dataset) and queue_refresh_in_background(dataset=dataset)
