"""The core domain shared by everything: ontology, datasets, clips, original labels."""

from __future__ import annotations

from django.db import models

from .names import (
    DATASET_NAME_HELP,
    DATASET_NAME_MAX,
    DATASET_NAME_REGEX,
    validate_audio_root,
    validate_dataset_name,
)


class Label(models.Model):
    """One class of the AudioSet ontology (632 in all, 527 trainable)."""

    mid = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200, db_index=True)
    description = models.TextField(blank=True)
    # Standard class_labels_indices.csv position (0..526) for trainable classes; else null.
    index = models.PositiveSmallIntegerField(null=True, blank=True, unique=True)
    abstract = models.BooleanField(default=False)
    blacklisted = models.BooleanField(default=False)
    # A class may have several parents (e.g. "Bell" sits under two branches).
    parents = models.ManyToManyField(
        "self", symmetrical=False, related_name="children", blank=True
    )

    class Meta:
        ordering = ["index", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.mid})"

    @property
    def trainable(self) -> bool:
        return self.index is not None


class Dataset(models.Model):
    class ReviewPriority(models.TextChoices):
        UNCERTAIN = "uncertain", "Most uncertain first"
        ORDER = "order", "Dataset order"
        RANDOM = "random", "Random"

    # One rule (relabel_app.names), also a check constraint: names reach URLs and file names.
    name = models.SlugField(max_length=DATASET_NAME_MAX, unique=True,
                            validators=[validate_dataset_name], help_text=DATASET_NAME_HELP)
    description = models.TextField(blank=True)
    # Absolute folder that Clip.audio_path is relative to; empty means settings.AUDIO_ROOT/<name>.
    # Must lie under settings.RELABEL_AUDIO_ROOTS (checked in clean() and when serving).
    audio_root = models.CharField(max_length=500, blank=True, validators=[validate_audio_root],
                                  help_text="Empty: the default audio folder. Else an absolute "
                                            "folder under RELABEL_AUDIO_ROOTS.")
    synthetic = models.BooleanField(
        default=False, help_text="Clips were synthesized on the machine (demo data)."
    )
    review_priority = models.CharField(
        max_length=16, choices=ReviewPriority.choices, default=ReviewPriority.UNCERTAIN
    )
    required_reviews = models.PositiveSmallIntegerField(
        default=1, help_text="How many reviewers must finish each clip (overlap)."
    )
    # Gold clips (review.models.GoldClip): the share of picks that serve a gold clip, the
    # gold precision/recall below which a reviewer is flagged, and whether flagged
    # reviewers' votes are left out of the majority (curation.resolution).
    gold_rate = models.FloatField(
        default=0.05, db_default=0.05, help_text="Share of queue picks that serve a gold clip (0 to 1)."
    )
    gold_floor = models.FloatField(
        null=True, blank=True,
        help_text="Gold precision or recall below this flags a reviewer (empty: no floor).",
    )
    gold_exclude_flagged = models.BooleanField(
        default=False, db_default=False, help_text="Leave flagged reviewers' votes out of the majority."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(name__regex=DATASET_NAME_REGEX),
                                   name="dataset_name_slug"),
        ]

    def __str__(self) -> str:
        return self.name

    def resolved_audio_root(self):
        from pathlib import Path

        from django.conf import settings

        return Path(self.audio_root) if self.audio_root else settings.AUDIO_ROOT / self.name


class Clip(models.Model):
    class AudioStatus(models.TextChoices):
        UNKNOWN = "unknown", "Not looked for"
        MISSING = "missing", "No local file"
        OK = "ok", "Local file"
        ERROR = "error", "Unreadable file"

    # No index of its own: clip_dataset_position and clip_unique_segment start with it.
    dataset = models.ForeignKey(
        Dataset, on_delete=models.CASCADE, related_name="clips", db_index=False
    )
    ytid = models.CharField("YouTube id", max_length=64)
    start_s = models.FloatField("start (s)")
    end_s = models.FloatField("end (s)")
    # Row number in the import, so "dataset order" is the file's order.
    position = models.PositiveIntegerField(default=0)
    audio_path = models.CharField(max_length=500, blank=True)
    audio_status = models.CharField(
        max_length=8, choices=AudioStatus.choices, default=AudioStatus.UNKNOWN
    )
    audio_error = models.TextField(blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    sample_rate = models.PositiveIntegerField(null=True, blank=True)
    labels = models.ManyToManyField(
        Label, through="ClipLabel", related_name="clips", blank=True,
        help_text="The original labels the dataset came with.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "ytid", "start_s"], name="clip_unique_segment"
            )
        ]
        indexes = [
            models.Index(fields=["dataset", "position"], name="clip_dataset_position"),
            models.Index(fields=["ytid"], name="clip_ytid"),
        ]

    def __str__(self) -> str:
        return f"{self.ytid} [{self.start_s:.3f}-{self.end_s:.3f}]"

    @property
    def youtube_embed_url(self) -> str:
        return (
            f"https://www.youtube-nocookie.com/embed/{self.ytid}"
            f"?start={int(self.start_s)}&end={int(self.end_s)}"
        )


class ClipLabel(models.Model):
    """An original label of a clip, as imported."""

    # No single-column indexes: cliplabel_unique starts with clip, cliplabel_label is label's.
    # Each index costs millions of insertions on an import of the unbalanced list.
    clip = models.ForeignKey(
        Clip, on_delete=models.CASCADE, related_name="clip_labels", db_index=False
    )
    label = models.ForeignKey(
        Label, on_delete=models.PROTECT, related_name="clip_labels", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clip", "label"], name="cliplabel_unique")
        ]
        indexes = [models.Index(fields=["label"], name="cliplabel_label")]

    def __str__(self) -> str:
        return f"{self.clip_id}:{self.label_id}"
