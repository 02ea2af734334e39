"""`embed_clips`: the CLAP audio embeddings of a dataset's clips computed with a profile's
CLAP alone (no caption/LLM stages), so a dataset can be searched before, or without, a
full run. Tasks on the `clap` queue, one chunk of clips each; idempotent (a chunk embeds
only its clips still missing, and the write ignores rows that exist) and resumable (the
same command again queues the clips still missing)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from celery import shared_task
from django.conf import settings

from relabel_app.models import Clip, Dataset

from .embeddings import ClipEmbedding, EmbeddingSpace, clap_model_id, embeddings_save

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedProgress:
    model_id: str
    total: int  # the dataset's clips with local audio
    embedded: int

    @property
    def missing(self) -> int:
        return max(0, self.total - self.embedded)


def embed_profile_spec(profile: str) -> tuple[dict, bool]:
    """The CLAP backend spec of a profile (name or path) and whether it has random weights.
    Raises ProfileError (a clear one-line message) when the profile has no CLAP."""
    from .profiles import ProfileError, resolve_profile

    resolved = resolve_profile(profile, model_dir=settings.MODEL_DIR)
    spec = resolved.get("backends", {}).get("clap")
    if not spec:
        raise ProfileError(f"profile {Path(profile).stem!r} has no CLAP backend")
    return spec, bool(resolved.get("random_weights"))


def _clips_with_audio(dataset: Dataset):
    return Clip.objects.filter(dataset=dataset).exclude(audio_path="")


def embed_progress(*, dataset: Dataset, spec: dict) -> EmbedProgress:
    model_id = clap_model_id(spec)
    embedded = ClipEmbedding.objects.filter(
        space__model_id=model_id, clip__dataset=dataset).exclude(clip__audio_path="").count()
    return EmbedProgress(model_id, _clips_with_audio(dataset).count(), embedded)


def embed_missing_clip_ids(*, dataset: Dataset, spec: dict) -> list[int]:
    have = ClipEmbedding.objects.filter(space__model_id=clap_model_id(spec),
                                        clip_id__in=_clips_with_audio(dataset).values("id"))
    return list(_clips_with_audio(dataset).exclude(id__in=have.values("clip_id"))
                .order_by("id").values_list("id", flat=True))


def embed_dispatch(*, dataset: Dataset, spec: dict, random_weights: bool = False,
                   chunk_size: int = 16) -> int:
    """Queue the clips still missing an embedding for the model of `spec`, `chunk_size`
    per task; returns the number of chunks queued."""
    ids = embed_missing_clip_ids(dataset=dataset, spec=spec)
    chunks = [ids[i:i + chunk_size] for i in range(0, len(ids), max(1, chunk_size))]
    for chunk in chunks:
        embed_chunk_task.delay(spec, chunk, random_weights)
    return len(chunks)


def embed_wait(*, dataset: Dataset, spec: dict, timeout_s: float | None = None,
               poll_s: float = 1.0,
               on_progress: Callable[[EmbedProgress], None] | None = None) -> EmbedProgress:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        p = embed_progress(dataset=dataset, spec=spec)
        if on_progress:
            on_progress(p)
        if p.missing == 0 or (deadline is not None and time.monotonic() > deadline):
            return p
        time.sleep(poll_s)


def embed_chunk(spec: dict, clip_ids: list[int], random_weights: bool = False) -> int:
    """Embed the clips of the chunk that still have no embedding for this model. A clip
    whose audio cannot be read is logged and skipped (it stays missing)."""
    from .backends.registry import build_backend
    from .stage_io import backend_spec_with_placement, load_clip_audio

    have = set(ClipEmbedding.objects.filter(
        space__in=EmbeddingSpace.objects.filter(model_id=clap_model_id(spec)),
        clip_id__in=clip_ids).values_list("clip_id", flat=True))
    clips = list(Clip.objects.filter(id__in=[c for c in clip_ids if c not in have])
                 .select_related("dataset").order_by("id"))
    if not clips:
        return 0
    clap = build_backend(backend_spec_with_placement(spec))
    ok, audio = [], []
    for clip in clips:
        try:
            audio.append(load_clip_audio(clip, clap.sample_rate))
            ok.append(clip.pk)
        except Exception as e:
            log.warning("embed_clips: clip %s skipped: %s", clip.pk, e)
    if not ok:
        return 0
    vectors = clap.embed_audio(audio)
    return embeddings_save(spec=spec, vectors=zip(ok, vectors, strict=True),
                           random_weights=random_weights)


def _transient_errors() -> tuple[type[Exception], ...]:
    from .tasks import _transient_errors as errors

    return errors()


@shared_task(name="pipeline.embed", queue_name="clap", acks_late=True,
             reject_on_worker_lost=True, autoretry_for=_transient_errors(), retry_backoff=1,
             retry_backoff_max=30, max_retries=20)
def embed_chunk_task(spec: dict, clip_ids: list[int], random_weights: bool = False) -> int:
    return embed_chunk(spec, clip_ids, random_weights)
