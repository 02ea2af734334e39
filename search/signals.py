"""Embeddings added (pipeline.embeddings.embeddings_added) -> queue an index rebuild."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from pipeline.embeddings import embeddings_added

log = logging.getLogger(__name__)


@receiver(embeddings_added)
def _rebuild_when_embeddings_added(sender, space, dataset_ids, **kwargs) -> None:
    from .services import index_request_build

    for dataset_id in dataset_ids:
        try:
            index_request_build(dataset_id=dataset_id, space=space)
        except Exception:  # a search index must never fail a pipeline chunk
            log.exception("queueing a search index build for dataset %s", dataset_id)
