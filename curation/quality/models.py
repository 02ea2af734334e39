"""Tables of a quality study. Everything the estimate refers to is frozen when the study
is created: the sources' per-class label counts (QualityStratum), which sources carry each
asked pair (QualityQuestion.drawn_in / in_sources) and the recall clips."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from relabel_app.models import Clip, Dataset, Label
from review.models import Verdict


class QualityStudy(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="quality_studies")
    name = models.SlugField(max_length=100)
    # Label sources as given: "original", "run:ID", "curated" (the report's names).
    sources = ArrayField(models.CharField(max_length=32))
    per_class = models.PositiveIntegerField(default=10)
    recall_clips = models.PositiveIntegerField(default=100)
    answers_per_question = models.PositiveSmallIntegerField(default=1)
    seed = models.BigIntegerField(default=0)
    # MIDs the study is restricted to; empty: every trainable class.
    classes = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    # The export policy "curated" was resolved under.
    policy = models.CharField(max_length=16, default="keep-original")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    # Who may answer; empty: every reviewer.
    answerers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    total_clips = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["dataset", "name"],
                                               name="qualitystudy_unique_name")]

    def __str__(self) -> str:
        return f"quality study {self.name} on {self.dataset_id}"


class QualityStratum(models.Model):
    """One class of one source at creation: how many labels it had (the stratum's weight)
    and how many of them the precision part drew."""

    study = models.ForeignKey(QualityStudy, on_delete=models.CASCADE, related_name="strata",
                              db_index=False)
    source = models.PositiveSmallIntegerField()  # index into study.sources
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="+", db_index=False)
    population = models.PositiveIntegerField()
    drawn = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "source", "label"],
                                               name="qualitystratum_unique")]

    def __str__(self) -> str:
        return f"stratum {self.source}:{self.label_id} of study {self.study_id}"


class QualityQuestion(models.Model):
    """One (clip, class) pair asked once, whatever the number of sources that drew it."""

    study = models.ForeignKey(QualityStudy, on_delete=models.CASCADE, related_name="questions",
                              db_index=False)
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+", db_index=False)
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Sources whose precision sample drew the pair (credited to each).
    drawn_in = ArrayField(models.PositiveSmallIntegerField(), default=list)
    # On a recall clip: the sources that carry the pair (pooled); a class an expert added
    # that no source has: empty, with added_by set.
    in_sources = ArrayField(models.PositiveSmallIntegerField(), default=list)
    recall = models.BooleanField(default=False)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="+")
    # Seeded shuffle: questions of one clip share ``unit`` (asked together), units are in
    # random order, so the order says nothing about sources or classes.
    unit = models.BigIntegerField()
    answer_count = models.PositiveSmallIntegerField(default=0)
    # The answers' accept / reject tallies, kept by quality_answers_record, so the report
    # reads the questions alone (joining the answers was most of its time at 2M clips).
    n_accept = models.PositiveSmallIntegerField(default=0, db_default=0)
    n_reject = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "clip", "label"],
                                               name="qualityquestion_unique")]
        indexes = [models.Index(fields=["study", "unit", "id"], name="qualityquestion_order")]

    def __str__(self) -> str:
        return f"question {self.label_id} on clip {self.clip_id} (study {self.study_id})"


class QualityRecallClip(models.Model):
    """A clip of the recall part (a seeded uniform sample of whole clips)."""

    study = models.ForeignKey(QualityStudy, on_delete=models.CASCADE, related_name="recall_set",
                              db_index=False)
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+", db_index=False)
    unit = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "clip"],
                                               name="qualityrecallclip_unique")]

    def __str__(self) -> str:
        return f"recall clip {self.clip_id} of study {self.study_id}"


class QualityAnswer(models.Model):
    question = models.ForeignKey(QualityQuestion, on_delete=models.CASCADE, related_name="answers",
                                 db_index=False)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="+")
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    answered_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["question", "reviewer"],
                                               name="qualityanswer_unique")]

    def __str__(self) -> str:
        return f"{self.verdict} on question {self.question_id} by {self.reviewer_id}"


class QualityClipDone(models.Model):
    """A reviewer finished a recall clip (answered its classes and added what was missing)."""

    study = models.ForeignKey(QualityStudy, on_delete=models.CASCADE, related_name="+",
                              db_index=False)
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+", db_index=False)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "clip", "reviewer"],
                                               name="qualityclipdone_unique")]

    def __str__(self) -> str:
        return f"clip {self.clip_id} done by {self.reviewer_id} (study {self.study_id})"
