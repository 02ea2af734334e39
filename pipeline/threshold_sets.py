"""Threshold sets: per-class CLAP thresholds fitted from expert decisions (curation.thresholds
fits them), applied to a run's stored scores as a *derived* run.

Defined in the pipeline app, next to the runs they are applied to: a derived PipelineRun
points at its threshold set, and the review queue reads the active set to rank clips, and
neither pipeline nor review may import curation (dependency direction core <- pipeline <-
review <- curation)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ThresholdSet(models.Model):
    """A named, versioned set of CLAP thresholds for one CLAP model: one row per class with
    enough decisions (ClassThreshold), ``global_threshold`` for every other class."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    # The CLAP model the scores came from (the run config's backends.clap.model): thresholds
    # of one model mean nothing for another's cosine scores.
    clap_model = models.CharField(max_length=500)
    dataset = models.ForeignKey(
        "relabel_app.Dataset", on_delete=models.CASCADE, related_name="threshold_sets"
    )
    fitted_from = models.ForeignKey(
        "pipeline.PipelineRun", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="threshold_sets_fitted",
    )
    global_threshold = models.FloatField()
    min_decisions = models.PositiveIntegerField()
    # How it was fitted and what the held-out clips say: folds, P/R/F1 of the global and the
    # per-class thresholds (curation.thresholds.ThresholdFit.evaluation).
    evaluation = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="thresholdset_unique_version")
        ]
        indexes = [models.Index(fields=["clap_model", "-created_at"], name="thresholdset_model")]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class ClassThreshold(models.Model):
    threshold_set = models.ForeignKey(ThresholdSet, on_delete=models.CASCADE, related_name="classes")
    label = models.ForeignKey("relabel_app.Label", on_delete=models.PROTECT, related_name="+")
    decisions = models.PositiveIntegerField()  # decided candidates the fit used
    positives = models.PositiveIntegerField()  # of them accepted
    threshold = models.FloatField()
    f1 = models.FloatField()  # on the decided candidates it was fitted on

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["threshold_set", "label"],
                                    name="classthreshold_unique_label")
        ]

    def __str__(self) -> str:
        return f"{self.label_id} >= {self.threshold:.4f} ({self.threshold_set_id})"


def clap_model_of(config: dict | None, profile_name: str = "") -> str:
    """The CLAP model a run's scores come from, as its resolved profile names it."""
    clap = ((config or {}).get("backends") or {}).get("clap") or {}
    model = clap.get("model") or ""
    adapter = clap.get("adapter") or ""
    return f"{adapter}:{model}" if adapter or model else f"profile:{profile_name}"


def active_threshold_set(run) -> ThresholdSet | None:
    """The thresholds that hold for a run's scores: a derived run's own set, else the newest
    set fitted for the run's CLAP model (None: the run's global threshold holds)."""
    if run is None:
        return None
    if run.threshold_set_id:
        return run.threshold_set
    return (ThresholdSet.objects.filter(clap_model=clap_model_of(run.config, run.profile_name))
            .order_by("-created_at", "-id").first())
