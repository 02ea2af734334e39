"""Celery entry points of the search app. Thin: take ids, call a service."""

from celery import shared_task

from relabel_app.queues import CeleryQueue

# A 2M-clip IVF build takes minutes on a few cores; the limits leave room on a busy machine.
INDEX_SOFT_TIME_LIMIT_S = 3600
INDEX_TIME_LIMIT_S = 3700


@shared_task(name="search.build_index", queue_name=CeleryQueue.INDEX.value, acks_late=True,
             reject_on_worker_lost=True, soft_time_limit=INDEX_SOFT_TIME_LIMIT_S,
             time_limit=INDEX_TIME_LIMIT_S)
def build_index_task(index_id: int) -> str:
    """(Re)build one SearchIndex on the "index" queue; a duplicate message finds nothing
    new to index and does nothing."""
    from .services import index_build

    idx = index_build(index_id=index_id)
    return idx.status if idx else "missing"
