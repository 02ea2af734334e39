"""The curated set: curators' adjudications (with their append-only log) and export jobs.

The curated state of a (clip, label) is resolved in SQL (curation.resolution): the
adjudication if any, else the reviewers' majority, else unresolved; an export policy says
what an unresolved label becomes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from relabel_app.models import Clip, Dataset, Label


class Policy(models.TextChoices):
    """What an export does with unresolved labels. The values are an interface (CLI, API)."""

    KEEP_ORIGINAL = "keep-original", "Keep original (unresolved originals stay)"
    STRICT = "strict", "Strict (accepted labels only)"
    REVIEWED_ONLY = "reviewed-only", "Reviewed only (clips every required reviewer finished)"


class AdjudicationVerdict(models.TextChoices):
    ACCEPT = "accept", "Accept"
    REJECT = "reject", "Reject"


class Adjudication(models.Model):
    """A curator's final word on one label of one clip; overrides the reviewers' majority.
    One row per (clip, label), updated in place; every change goes to AdjudicationLog."""

    # adjudication_unique_clip_label starts with clip.
    clip = models.ForeignKey(
        Clip, on_delete=models.CASCADE, related_name="adjudications", db_index=False
    )
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="adjudications")
    curator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications"
    )
    verdict = models.CharField(max_length=8, choices=AdjudicationVerdict.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clip", "label"], name="adjudication_unique_clip_label")
        ]

    def __str__(self) -> str:
        return f"{self.verdict} {self.label_id} on clip {self.clip_id} by {self.curator_id}"


class AdjudicationLog(models.Model):
    """Append-only history of adjudications. An empty verdict means "no adjudication"
    (before the first one, or after it was cleared)."""

    class Action(models.TextChoices):
        RECORD = "record", "Record"
        CLEAR = "clear", "Clear"

    # adjudicationlog_pair starts with clip.
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+", db_index=False)
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="+")
    curator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=8, choices=Action.choices)
    before_verdict = models.CharField(max_length=8, choices=AdjudicationVerdict.choices, blank=True)
    before_note = models.TextField(blank=True)
    after_verdict = models.CharField(max_length=8, choices=AdjudicationVerdict.choices, blank=True)
    after_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["clip", "label", "id"], name="adjudicationlog_pair")]

    def __str__(self) -> str:
        return (
            f"{self.action} {self.before_verdict or '-'} -> {self.after_verdict or '-'} "
            f"({self.label_id} on clip {self.clip_id} by {self.curator_id})"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("AdjudicationLog is append-only")
        super().save(*args, **kwargs)


class ExportJob(models.Model):
    """One export written under settings.EXPORT_DIR by the Celery task curation.export.
    Kept (file and row) so curators can download earlier exports again."""

    class Format(models.TextChoices):
        CSV = "csv", "AudioSet segments CSV"
        JSON = "json", 'JSON {"data": [{"wav", "labels"}]}'
        DECISIONS = "decisions", "Decisions CSV (audit trail)"

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="export_jobs")
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.CSV)
    policy = models.CharField(max_length=16, choices=Policy.choices, default=Policy.KEEP_ORIGINAL)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # rows_total is known once the export's count query ran; rows_done grows while writing.
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    rows_done = models.PositiveIntegerField(default=0)
    # Relative to settings.EXPORT_DIR; the download view refuses anything outside it.
    path = models.CharField(max_length=500, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    # Header counts and the other figures of the finished export (curation.exports.ExportResult).
    summary = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # Liveness (curation.export_jobs.export_jobs_recover): the worker process running the job
    # ("host:pid") beats every few seconds; a job whose worker is gone is re-queued once,
    # then failed. attempts counts the runs started.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["dataset", "-created_at"], name="exportjob_dataset_created")]

    def __str__(self) -> str:
        return f"export {self.pk} {self.format}/{self.policy} of {self.dataset_id} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.CANCELED)

    @property
    def can_retry(self) -> bool:
        return self.status in (self.Status.FAILED, self.Status.CANCELED)

    @property
    def can_cancel(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)

    @property
    def percent(self) -> float:
        if self.status == self.Status.DONE:
            return 100.0
        if not self.rows_total:
            return 0.0
        return min(100.0, 100.0 * self.rows_done / self.rows_total)

    @property
    def file_name(self) -> str:
        """The name a download gets, e.g. ``balanced_train-csv-strict-42.csv`` (dataset
        names are slugs, relabel_app.names). The file on disk is named from ids only
        (curation.export_jobs.export_job_relative_path)."""
        if not self.path:
            return ""
        ext = self.path.rsplit(".", 1)[-1]
        kind = (self.format if self.format == self.Format.DECISIONS
                else f"{self.format}-{self.policy}")
        return f"{self.dataset.name}-{kind}-{self.pk}.{ext}"


class AuditSnapshot(models.Model):
    """The audit figures of a dataset against one run (or none), computed by the Celery task
    curation.audit_snapshot and read by the audit page, so opening the page costs a
    few indexed reads whatever the dataset's size. ``audit --json`` still computes fresh.

    ``last_log_id``: the newest DecisionLog id when the computation started; decisions
    logged after it are "N decisions since" on the page."""

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        RUNNING = "running", "Computing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    # Null: the audit without a run.
    run = models.ForeignKey("pipeline.PipelineRun", null=True, blank=True,
                            on_delete=models.CASCADE, related_name="+")
    figures = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    computed_at = models.DateTimeField(null=True, blank=True)
    compute_seconds = models.FloatField(null=True, blank=True)
    last_log_id = models.BigIntegerField(default=0)
    # When the computation asked for is due (now, or DEBOUNCE ahead for decisions).
    requested_at = models.DateTimeField(null=True, blank=True)
    # When the running computation started (the page's progress line).
    started_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The sums over every clip as if nobody had decided (curation.audits.Tallies) and what
    # they were computed from (audits.audit_base_key): a refresh after decisions resolves
    # only the decided clips against them.
    base_tallies = models.JSONField(null=True, blank=True)
    base_key = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "run"], name="auditsnapshot_unique",
                                    nulls_distinct=False)
        ]

    def __str__(self) -> str:
        return f"audit snapshot of {self.dataset_id} / run {self.run_id} ({self.status})"


class ThresholdFitJob(models.Model):
    """One press of "Fit thresholds": fitted by the Celery task curation.threshold_fit (not
    inside the request: at 2M clips reading the decided candidates takes seconds), followed
    by the panel while pending. At most one pending or running fit per run (a constraint):
    a second press while one runs gets that one."""

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        RUNNING = "running", "Fitting"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    run = models.ForeignKey("pipeline.PipelineRun", on_delete=models.CASCADE, related_name="+")
    min_decisions = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    # The set the fit made (DONE), else why not (FAILED: the refusal, e.g. too few decisions).
    threshold_set = models.ForeignKey("pipeline.ThresholdSet", null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    ACTIVE = (Status.PENDING, Status.RUNNING)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run"], name="thresholdfitjob_one_active_per_run",
                condition=models.Q(status__in=["pending", "running"]),
            )
        ]

    def __str__(self) -> str:
        return f"threshold fit {self.pk} of run {self.run_id} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in self.ACTIVE
# Quality studies live in their own package; imported here so Django registers them.
from .quality.models import (  # noqa: E402, F401
    QualityAnswer,
    QualityClipDone,
    QualityQuestion,
    QualityRecallClip,
    QualityStratum,
    QualityStudy,
)
