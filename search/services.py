"""Writes of the search app: building a (dataset, CLAP model) vector index, and the
decisions made from search results.

Every function takes keyword arguments only."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from pipeline.embeddings import VECTOR_DTYPE, ClipEmbedding, EmbeddingSpace
from relabel_app.models import Clip, Dataset, Label
from review.decisions import LabelRefused, decision_add_label
from review.models import Decision

from . import vector_index
from .models import SearchIndex

log = logging.getLogger(__name__)

# Rebuilds while embeddings keep arriving (a run in progress) start at most this often.
MIN_REBUILD_INTERVAL = timedelta(seconds=60)
# A build marked "building" for longer than the task's hard limit was cut short.
STALE_BUILD = timedelta(seconds=3700)
_S = SearchIndex.Status


def index_folder(index: SearchIndex, version: int | None = None) -> Path:
    base = Path(settings.SEARCH_INDEX_DIR) / f"ds{index.dataset_id}-space{index.space_id}"
    return base if version is None else base / f"v{version}"


def _embeddings(dataset_id: int, space_id: int):
    return ClipEmbedding.objects.filter(space_id=space_id, clip__dataset_id=dataset_id)


def latest_embedding_id(*, dataset_id: int, space_id: int) -> int:
    return _embeddings(dataset_id, space_id).aggregate(m=Max("id"))["m"] or 0


def index_is_stale(index: SearchIndex) -> bool:
    return latest_embedding_id(dataset_id=index.dataset_id,
                               space_id=index.space_id) > index.last_embedding_id


def index_request_build(*, dataset_id: int, space: EmbeddingSpace, force: bool = False
                        ) -> SearchIndex:
    """Queue a build of the dataset's index for `space` (on the `index` queue, after
    commit) when embeddings were added since the last build, or always with `force`. Of
    concurrent callers one queues it (a conditional UPDATE); the others find it queued."""
    from .tasks import build_index_task

    idx, _ = SearchIndex.objects.get_or_create(dataset_id=dataset_id, space=space)
    if not force and not index_is_stale(idx):
        return idx
    now = timezone.now()
    won = SearchIndex.objects.filter(pk=idx.pk).exclude(
        status__in=[_S.QUEUED, _S.BUILDING], queued_at__gt=now - STALE_BUILD
    ).update(status=_S.QUEUED, queued_at=now)
    if won:
        delay = 0.0
        if idx.built_at and idx.version and not force:
            delay = max(0.0, (idx.built_at + MIN_REBUILD_INTERVAL - now).total_seconds())
        transaction.on_commit(lambda: build_index_task.apply_async((idx.pk,), countdown=delay))
        idx.refresh_from_db()
    return idx


def _read_vectors(dataset_id: int, space: EmbeddingSpace, upto_id: int):
    rows = _embeddings(dataset_id, space.pk).filter(id__lte=upto_id)
    n = rows.count()
    ids = np.empty(n, dtype=np.int64)
    # As stored (float16): 2 GB at 2M x 512 where float32 would be 4 GB; build() converts
    # slice by slice.
    vecs = np.empty((n, space.dim), dtype=VECTOR_DTYPE)
    i = 0
    for clip_id, blob in rows.values_list("clip_id", "vector").iterator(chunk_size=20_000):
        if i == n:  # rows added after the count: the next build takes them
            break
        ids[i] = clip_id
        vecs[i] = np.frombuffer(bytes(blob), dtype=VECTOR_DTYPE)
        i += 1
    return ids[:i], vecs[:i]


def index_build(*, index_id: int, force: bool = False, kind: str | None = None
                ) -> SearchIndex | None:
    """Build a new version of the index from the stored embeddings, serve it, and remove
    the older versions. Nothing new to index (a duplicate message): nothing is done. A
    failure is recorded on the row (shown on the pages) and the served version stays."""
    now = timezone.now()
    with transaction.atomic():
        idx = SearchIndex.objects.select_for_update().select_related("space").filter(
            pk=index_id).first()
        if idx is None:
            return None
        if idx.status == _S.BUILDING and idx.queued_at and idx.queued_at > now - STALE_BUILD:
            return idx  # another worker is on it
        upto = latest_embedding_id(dataset_id=idx.dataset_id, space_id=idx.space_id)
        if not force and idx.version and upto == idx.last_embedding_id:
            if idx.status != _S.READY:
                SearchIndex.objects.filter(pk=idx.pk).update(status=_S.READY)
                idx.status = _S.READY
            return idx
        SearchIndex.objects.filter(pk=idx.pk).update(status=_S.BUILDING, queued_at=now)
    t0 = time.perf_counter()
    version = idx.version + 1
    try:
        clip_ids, vectors = _read_vectors(idx.dataset_id, idx.space, upto)
        meta = vector_index.build(index_folder(idx, version), clip_ids, vectors, kind=kind,
                                  threads=settings.TORCH_THREADS)
    except Exception as e:
        log.exception("building search index %s", idx.pk)
        msg = str(e) if isinstance(e, vector_index.FaissMissing) else f"{type(e).__name__}: {e}"
        SearchIndex.objects.filter(pk=idx.pk).update(
            status=_S.FAILED if not idx.version else _S.READY, error=msg[:2000])
        idx.refresh_from_db()
        return idx
    SearchIndex.objects.filter(pk=idx.pk).update(
        status=_S.READY, version=version, kind=meta["kind"], clip_count=meta["n"],
        last_embedding_id=upto, size_bytes=meta["bytes"],
        build_seconds=round(time.perf_counter() - t0, 3), built_at=timezone.now(), error="",
    )
    # Processes still serving an older version keep their open (mapped) files until they
    # see the new version: unlinking does not pull the pages from under them.
    for old in index_folder(idx).glob("v*"):
        if old.name != f"v{version}":
            shutil.rmtree(old, ignore_errors=True)
    idx.refresh_from_db()
    if index_is_stale(idx):  # embeddings arrived during the build
        index_request_build(dataset_id=idx.dataset_id, space=idx.space)
    return idx


def index_build_now(*, dataset: Dataset, space: EmbeddingSpace, kind: str | None = None
                    ) -> SearchIndex:
    """Build in this process (the command line): the row first, then the build."""
    idx, _ = SearchIndex.objects.get_or_create(dataset=dataset, space=space)
    return index_build(index_id=idx.pk, force=True, kind=kind)


_LOADED: dict[int, tuple[int, vector_index.VectorIndex]] = {}
_LOAD_LOCK = threading.Lock()


def index_loaded(index: SearchIndex) -> vector_index.VectorIndex:
    """The served version of the index, loaded once per process (vectors memory-mapped);
    a newer version replaces it on the next call."""
    with _LOAD_LOCK:
        have = _LOADED.get(index.pk)
        if have is None or have[0] != index.version:
            _LOADED[index.pk] = (index.version,
                                 vector_index.VectorIndex(index_folder(index, index.version)))
        return _LOADED[index.pk][1]


# --- decisions from search ------------------------------------------------------------


def search_add_label(*, clips: list[Clip], label: Label, reviewer) -> list[Decision]:
    """"Add <class> to selected": one accepted added-label decision per clip through the
    review app's own service (the audit log, idempotence, the refusal of abstract and
    non-trainable classes), marked source `search` where this call created it. Raises
    LabelRefused before writing anything when the class cannot be a label."""
    if label.index is None:
        decision_add_label(clip=clips[0], label=label, reviewer=reviewer)  # raises the reason
        raise LabelRefused(f"{label.name} cannot be a label")
    out = []
    with transaction.atomic():
        for clip in clips:
            existed = Decision.objects.filter(clip=clip, label=label, reviewer=reviewer).exists()
            d = decision_add_label(clip=clip, label=label, reviewer=reviewer)
            if not existed:
                Decision.objects.filter(pk=d.pk).update(source=Decision.Source.SEARCH)
                d.source = Decision.Source.SEARCH
            out.append(d)
    return out
