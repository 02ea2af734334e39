"""The state of each (dataset, CLAP model) vector index; the files live under
settings.SEARCH_INDEX_DIR (search.vector_index)."""

from __future__ import annotations

from django.db import models

from pipeline.models import EmbeddingSpace
from relabel_app.models import Dataset


class SearchIndex(models.Model):
    class Status(models.TextChoices):
        EMPTY = "empty", "Not built"
        QUEUED = "queued", "Queued"
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="search_indexes")
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.EMPTY)
    # The version being served (its folder is v<version>); 0 until a first build.
    version = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=10, blank=True)  # flat / ivf-sq8 / numpy
    clip_count = models.PositiveIntegerField(default=0)
    # The highest ClipEmbedding id the served version saw: newer rows mean a rebuild is due.
    last_embedding_id = models.BigIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    build_seconds = models.FloatField(null=True, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "space"],
                                               name="searchindex_unique_dataset_space")]

    def __str__(self) -> str:
        return f"search index {self.dataset_id}/{self.space_id} v{self.version} ({self.status})"
