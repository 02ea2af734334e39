"""Runs of the model chain, per-clip stage outputs and candidate labels."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

from relabel_app.models import Clip, Dataset, Label

from . import stage_declarations
from .embeddings import ClipEmbedding, EmbeddingSpace  # noqa: F401  (models of this app)
from .stages.filter import run_threshold
from .threshold_sets import ClassThreshold, ThresholdSet  # noqa: F401  (models of this app)


class StageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


def stage_status_field() -> models.CharField:
    """A stage's status column (`<stage>_status`, one per registered stage, added below).
    'pending' is also the database default, so raw INSERTs need not name it."""
    return models.CharField(max_length=8, choices=StageStatus.choices,
                            default=StageStatus.PENDING, db_default=StageStatus.PENDING)


class PipelineRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        CANCELLED = "cancelled", "Cancelled"
        DONE = "done", "Done"

    class Kind(models.TextChoices):
        MODELS = "models", "Model chain"
        EXTERNAL = "external", "External label set"
        # Kept candidates recomputed from another run's stored scores with a threshold set.
        DERIVED = "derived", "Derived (threshold set)"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.MODELS)
    profile_name = models.CharField(max_length=100)
    # The fully resolved profile: adapters, model ids and revisions, prompts, thresholds.
    config = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    clip_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Automatic recovery of a run whose workers are gone (services.runs_recover_interrupted):
    # how often it was re-queued since it was last started by hand, and why it stopped or
    # was re-queued (shown on the run page).
    recoveries = models.PositiveSmallIntegerField(default=0, db_default=0)
    requeued_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.TextField(blank=True, default="", db_default="")
    # Derived runs only: the run whose scores were re-thresholded (its derived runs go with
    # it: they are a function of its scores and read its model text), and the thresholds
    # (a set in use cannot be deleted on its own; with its dataset it can).
    source_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="derived_runs"
    )
    threshold_set = models.ForeignKey(
        ThresholdSet, null=True, blank=True, on_delete=models.RESTRICT, related_name="runs"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["dataset", "profile_name"], name="run_dataset_profile")]

    def __str__(self) -> str:
        return f"run {self.pk} {self.profile_name} on {self.dataset}"

    @property
    def random_weights(self) -> bool:
        return bool(self.config.get("random_weights"))

    @property
    def filter_config(self):
        """The run's filter section as FilterConfig (defaults where the run has none)."""
        return stage_declarations.Filter.read_config(self.config)

    @property
    def threshold(self) -> float | None:
        """The run's CLAP threshold (None when it has none: an external label set). The
        same fact for SQL: pipeline.selectors.run_threshold_sql."""
        return run_threshold(self.config)


class ClipResult(models.Model):
    """Everything the chain produced for one clip in one run; one row per (run, clip)."""

    # clipresult_unique_run_clip starts with run.
    run = models.ForeignKey(
        PipelineRun, on_delete=models.CASCADE, related_name="results", db_index=False
    )
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="results")
    # One `<stage>_status` column per declared stage, added after the class.
    # Caption rounds of every attempt, presence decisions, the chosen summary.
    # Database defaults too: the bulk INSERTs (pipeline.services, pipeline.external_import)
    # name only the columns they set.
    caption = models.JSONField(default=dict, db_default={}, blank=True)
    summary = models.TextField(blank=True, db_default="")
    summary_ok = models.BooleanField(null=True)
    # Raw stage-2 answers (all attempts) and the parsed free-form labels per attempt.
    predict = models.JSONField(default=dict, db_default={}, blank=True)
    free_labels = models.JSONField(default=list, db_default=[], blank=True)
    best_attempt = models.PositiveSmallIntegerField(default=0, db_default=0)
    error_stage = models.CharField(max_length=8, blank=True, db_default="")
    error = models.TextField(blank=True, db_default="")
    timings = models.JSONField(default=dict, db_default={}, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "clip"], name="clipresult_unique_run_clip")
        ]

    def __str__(self) -> str:
        return f"result run={self.run_id} clip={self.clip_id}"

    @property
    def failed(self) -> bool:
        return bool(self.error_stage)


def add_stage_status_fields() -> None:
    """A `<stage>_status` column for every declared stage that has none yet: the built-in
    stages' when this module loads, the extra stages' (settings.PIPELINE_EXTRA_STAGES)
    once PipelineConfig.ready has loaded pipeline.chain, which imports them."""
    have = {f.name for f in ClipResult._meta.local_fields}
    for stage in stage_declarations.stages():
        if stage.status_field() not in have:
            ClipResult.add_to_class(stage.status_field(), stage_status_field())


add_stage_status_fields()


class Candidate(models.Model):
    """A trainable class proposed for a clip by a run (one attempt of best-of-N)."""

    class Tier(models.TextChoices):
        EXACT = "exact", "Exact"
        FUZZY = "fuzzy", "Fuzzy"
        SYNONYM = "synonym", "Synonym"
        LLM = "llm", "LLM"
        EXTERNAL = "external", "External label set"

    # No single-column indexes: (run, clip, attempt, label) and (clip, run) cover both
    # lookups, and every index costs writes on a 10M-row table.
    run = models.ForeignKey(
        PipelineRun, on_delete=models.CASCADE, related_name="candidates", db_index=False
    )
    clip = models.ForeignKey(
        Clip, on_delete=models.CASCADE, related_name="candidates", db_index=False
    )
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="candidates")
    attempt = models.PositiveSmallIntegerField(default=0)
    tier = models.CharField(max_length=8, choices=Tier.choices)
    phrase = models.CharField(max_length=200, blank=True)
    match_score = models.FloatField(null=True, blank=True)
    clap_score = models.FloatField(null=True, blank=True)
    kept = models.BooleanField(default=False)
    # True for the candidates of the attempt chosen by best-of-N (what review shows).
    selected = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "clip", "attempt", "label"], name="candidate_unique"
            )
        ]
        indexes = [models.Index(fields=["clip", "run"], name="candidate_clip_run")]

    def __str__(self) -> str:
        return f"{self.label_id} for clip {self.clip_id} (run {self.run_id})"


class OriginalLabelScore(models.Model):
    """CLAP evidence for an original label: the cosine between the clip's audio and the
    class text, scored by a run's filter stage. Not a candidate: it proposes nothing, it
    only tells reviewers and audits how well the audio supports a label the clip came with."""

    run = models.ForeignKey(
        PipelineRun, on_delete=models.CASCADE, related_name="original_scores", db_index=False
    )
    clip = models.ForeignKey(
        Clip, on_delete=models.CASCADE, related_name="original_scores", db_index=False
    )
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="+", db_index=False)
    clap_score = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "clip", "label"], name="originalscore_unique_run_clip_label"
            )
        ]
        indexes = [models.Index(fields=["clip", "run"], name="originalscore_clip_run")]

    def __str__(self) -> str:
        return f"{self.label_id} original on clip {self.clip_id} (run {self.run_id}): {self.clap_score:.3f}"
