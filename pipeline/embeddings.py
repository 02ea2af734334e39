"""CLAP audio embeddings stored per clip (ClipEmbedding), one row per (clip, CLAP model):
what "clips like this", text-to-audio search and class sweeps (the search app) index.

Written by the filter stage in its chunk's bulk write, and by `embed_clips` (the profile's
CLAP alone, no LLM stages) on the `clap` queue. Defined in the pipeline app because the
filter stage writes them and pipeline may not import the apps above it."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from django.db import models, transaction
from django.db.models.functions import Now
from django.dispatch import Signal

# Sent after commit when embeddings were stored: space=EmbeddingSpace, dataset_ids=set[int].
# The search app rebuilds its index on it (pipeline may not import search).
embeddings_added = Signal()

# float16 is enough for cosines (error ~1e-3) and halves the rows: 1 KB per 512-d vector.
VECTOR_DTYPE = np.dtype("<f2")


def clap_model_id(spec: dict) -> str:
    """The id a CLAP backend built from `spec` reports as `model_id` (model + revision):
    the key of its embeddings, computable without loading the model."""
    rev = spec.get("revision")
    return str(spec["model"]) + (f"@{rev}" if rev else "")


class EmbeddingSpace(models.Model):
    """One CLAP model whose embeddings are stored: its backend spec, so the search app can
    load the same model's text encoder for queries."""

    model_id = models.CharField(max_length=500, unique=True)
    spec = models.JSONField(default=dict)
    dim = models.PositiveIntegerField()
    random_weights = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.model_id


class ClipEmbedding(models.Model):
    clip = models.ForeignKey(
        "relabel_app.Clip", on_delete=models.CASCADE, related_name="embeddings", db_index=False
    )
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="+",
                              db_index=False)
    # L2-normalised, VECTOR_DTYPE bytes.
    vector = models.BinaryField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            # (space, clip): an index build reads one space's rows by clip.
            models.UniqueConstraint(fields=["space", "clip"], name="clipembedding_unique_space_clip")
        ]
        indexes = [models.Index(fields=["clip"], name="clipembedding_clip")]

    def __str__(self) -> str:
        return f"embedding of clip {self.clip_id} ({self.space_id})"

    def as_array(self) -> np.ndarray:
        return vector_from_bytes(self.vector)


def vector_to_bytes(v) -> bytes:
    v = np.asarray(v, dtype=np.float32).reshape(-1)
    n = float(np.linalg.norm(v))
    if n > 0:
        v = v / n
    return v.astype(VECTOR_DTYPE).tobytes()


def vector_from_bytes(b) -> np.ndarray:
    return np.frombuffer(bytes(b), dtype=VECTOR_DTYPE).astype(np.float32)


def embedding_space_for(*, spec: dict, dim: int, random_weights: bool = False) -> EmbeddingSpace:
    space, _ = EmbeddingSpace.objects.get_or_create(
        model_id=clap_model_id(spec),
        defaults={"spec": {k: v for k, v in spec.items() if k not in ("device", "dtype")},
                  "dim": dim, "random_weights": random_weights},
    )
    return space


def embeddings_save(*, spec: dict, vectors: Iterable[tuple[int, object]],
                    random_weights: bool = False) -> int:
    """Store (clip id, vector) pairs for the CLAP model of `spec`: one INSERT ... ON
    CONFLICT DO NOTHING, so a rerun or a redelivered chunk never writes a clip twice.
    Returns the number of rows given."""
    pairs = [(cid, np.asarray(v, dtype=np.float32).reshape(-1)) for cid, v in vectors]
    if not pairs:
        return 0
    space = embedding_space_for(spec=spec, dim=int(pairs[0][1].shape[0]),
                                random_weights=random_weights)
    ClipEmbedding.objects.bulk_create(
        [ClipEmbedding(clip_id=cid, space=space, vector=vector_to_bytes(v)) for cid, v in pairs],
        ignore_conflicts=True,
    )
    from relabel_app.models import Clip

    dataset_ids = set(Clip.objects.filter(id__in=[cid for cid, _ in pairs])
                      .values_list("dataset_id", flat=True).distinct())
    transaction.on_commit(lambda: embeddings_added.send(
        sender=ClipEmbedding, space=space, dataset_ids=dataset_ids))
    return len(pairs)
