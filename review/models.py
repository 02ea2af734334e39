"""Expert review: decisions per (clip, label, reviewer), their audit log, error categories,
and the queue that hands clips to reviewers.

The queue is a table of *slots*: a clip that needs k reviews (Dataset.required_reviews) has
k slot rows. A slot is leased to one reviewer for a few minutes (leased_to,
lease_expires_at) and marked done when that reviewer finishes the clip. Picking the next
clip is one index walk over the open slots of a dataset in priority order with
``FOR UPDATE SKIP LOCKED`` (see review.queue.queue_next_clip); the three orderings (most
uncertain first, dataset order, random) each have a partial index over open slots, so
switching the dataset's priority costs nothing and the walk never visits finished slots.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from relabel_app.models import Clip, Dataset, Label


class ErrorCategory(models.Model):
    """Why a label was wrong or missing. Seeded by a data migration; editable in the admin."""

    class Kind(models.TextChoices):
        SOURCE = "source", "Error source (why the model or annotator erred)"
        LABEL = "label", "Label error type"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.LABEL)
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "error categories"

    def __str__(self) -> str:
        return self.name


class Verdict(models.TextChoices):
    ACCEPT = "accept", "Accept"
    REJECT = "reject", "Reject"
    UNSURE = "unsure", "Unsure"


class Decision(models.Model):
    """One reviewer's current verdict on one label of one clip. Updated in place; every
    change (and every undo) is appended to DecisionLog."""

    # clip and reviewer: no single-column index; the unique triple and
    # decision_reviewer_updated start with them.
    clip = models.ForeignKey(
        Clip, on_delete=models.CASCADE, related_name="decisions", db_index=False
    )
    # The clip's dataset, copied (a clip never changes dataset): the adjudication queue and
    # the audits select a dataset's decisions without looking up the clip of each one.
    # Filled from the clip by save() and by review.decisions' insert; decision_dataset_pair
    # starts with it.
    dataset = models.ForeignKey(
        Dataset, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions",
        db_index=False,
    )
    class Source(models.TextChoices):
        REVIEW = "review", "Review screens"
        SEARCH = "search", "Search results (Add <class> to selected)"

    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    error_category = models.ForeignKey(
        ErrorCategory, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions"
    )
    # Where the decision was made. A database default: the raw INSERT of a first decision
    # (review.services) does not name it.
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.REVIEW,
                              db_default=Source.REVIEW)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "label", "reviewer"], name="decision_unique_clip_label_reviewer"
            )
        ]
        indexes = [
            models.Index(fields=["reviewer", "updated_at"], name="decision_reviewer_updated"),
            # The adjudication queue's votes: a dataset's decisions grouped by pair, read
            # from the index alone.
            models.Index(fields=["dataset", "clip", "label"], include=["verdict", "reviewer"],
                         name="decision_dataset_pair"),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} {self.label_id} on clip {self.clip_id} by {self.reviewer_id}"

    def save(self, *args, **kwargs):
        if self.dataset_id is None and self.clip_id is not None:
            self.dataset_id = self.clip.dataset_id
        super().save(*args, **kwargs)


# The votes of a (clip, label) pair that make it disputed: the predicate of PairVotes'
# partial index review_pairvotes_disputed, which the adjudication queue's query repeats.
def pair_disputed_sql(alias: str = "") -> str:
    a = f"{alias}." if alias else ""
    return (f"(({a}n_accept > 0 AND {a}n_reject > 0) OR {a}n_unsure > 0 "
            f"OR ({a}original AND {a}n_reject > {a}n_accept))")


class PairVotes(models.Model):
    """The reviewers' verdicts on one (clip, label) pair, counted, and whether the label is
    one of the clip's originals: what makes a pair disputed for the adjudication queue,
    read without aggregating the dataset's decisions. Maintained by statement triggers on
    review_decision and relabel_app_cliplabel (migration 0011_pair_votes), so every write
    path (the services, bulk SQL, cascades) keeps it right; never written by Python."""

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+", db_index=False)
    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="+",
                              db_index=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    n_accept = models.IntegerField(default=0)
    n_reject = models.IntegerField(default=0)
    n_unsure = models.IntegerField(default=0)
    original = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clip", "label"], name="pairvotes_unique_pair"),
        ]
        # A dataset's pairs, all of them (the queue with reviewers left out).
        indexes = [models.Index(fields=["dataset"], name="pairvotes_dataset")]

    def __str__(self) -> str:
        return (f"clip {self.clip_id} label {self.label_id}: {self.n_accept}/{self.n_reject}"
                f"/{self.n_unsure}")


class DecisionLog(models.Model):
    """Append-only history of every change to a Decision, including undos.

    ``before_*`` / ``after_*`` hold the state around the change; a null verdict means "no
    decision". An undo entry points at the entry it reverts (``reverts``), which is how
    repeated undo walks back through the history."""

    class Action(models.TextChoices):
        RECORD = "record", "Record"
        CATEGORIZE = "categorize", "Error category / note"
        UNDO = "undo", "Undo"

    # decisionlog_triple starts with clip.
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+", db_index=False)
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="+")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=10, choices=Action.choices)
    before_verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True)
    before_error_category = models.ForeignKey(
        ErrorCategory, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    before_note = models.TextField(blank=True)
    after_verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True)
    after_error_category = models.ForeignKey(
        ErrorCategory, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    after_note = models.TextField(blank=True)
    reverts = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reverted_by"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["clip", "label", "reviewer", "id"], name="decisionlog_triple"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.action} {self.before_verdict or '-'} -> {self.after_verdict or '-'} "
            f"({self.label_id} on clip {self.clip_id} by {self.reviewer_id})"
        )

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise ValueError("DecisionLog is append-only")
        super().save(*args, **kwargs)


class ClipReview(models.Model):
    """A reviewer finished a clip (pressed "next"). What progress bars count."""

    # Both covered by the composite indexes below.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+", db_index=False)
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="reviews", db_index=False)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="clip_reviews"
    )
    # The queue slot this review closed (review.finishing.clip_finish writes both in one
    # statement). Unique: one finished review per slot, so never more than the slots.
    slot = models.OneToOneField(
        "QueueSlot", null=True, blank=True, on_delete=models.SET_NULL, related_name="review",
    )
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clip", "reviewer"], name="clipreview_unique")
        ]
        indexes = [
            models.Index(fields=["dataset", "reviewer"], name="clipreview_dataset_reviewer")
        ]

    def __str__(self) -> str:
        return f"clip {self.clip_id} finished by {self.reviewer_id}"


_OPEN = Q(done_by__isnull=True)


class QueueSlot(models.Model):
    """One of the k reviewing slots of a clip; also the clip's lease (see module doc)."""

    # No database constraint on dataset: it is the clip's dataset, written only by
    # review.queue.queue_sync, which holds a key-share lock on the dataset row for its whole
    # transaction (the guarantee the constraint's per-row check gave, once instead of 2M
    # times: 10 s of a 2M-clip build). The clip constraint stays. Django still cascades.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+",
                                db_constraint=False)
    # queueslot_unique_clip_slot starts with clip.
    clip = models.ForeignKey(
        Clip, on_delete=models.CASCADE, related_name="queue_slots", db_index=False
    )
    slot = models.PositiveSmallIntegerField()
    # Sort keys, ascending. rank_uncertain: lower is more uncertain (filled from the latest
    # finished run, review.queue.queue_sync); rank_order: Clip.position; rank_random: a hash of
    # the clip id (all its slots share it, so overlap reviewers meet on a clip).
    rank_uncertain = models.FloatField(default=2.0)
    rank_order = models.BigIntegerField(default=0)
    rank_random = models.FloatField(default=0.0)
    # leased_to and done_by: indexed only where set (queueslot_leased_to, queueslot_done_by;
    # what a user's deletion looks up). A whole-column index would take one entry per new
    # slot, always empty: two of the build's index inserts per slot, for nothing.
    leased_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", db_index=False,
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", db_index=False,
    )
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clip", "slot"], name="queueslot_unique_clip_slot")
        ]
        indexes = [
            models.Index(
                fields=["dataset", "rank_uncertain", "clip", "slot"],
                name="queueslot_open_uncertain", condition=_OPEN,
            ),
            models.Index(
                fields=["dataset", "rank_order", "clip", "slot"],
                name="queueslot_open_order", condition=_OPEN,
            ),
            models.Index(
                fields=["dataset", "rank_random", "clip", "slot"],
                name="queueslot_open_random", condition=_OPEN,
            ),
            models.Index(
                fields=["leased_to", "dataset"], name="queueslot_open_leases",
                condition=_OPEN & Q(leased_to__isnull=False),
            ),
            models.Index(fields=["leased_to"], name="queueslot_leased_to",
                         condition=Q(leased_to__isnull=False)),
            models.Index(fields=["done_by"], name="queueslot_done_by",
                         condition=Q(done_by__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"clip {self.clip_id} slot {self.slot}"


class QueueState(models.Model):
    """What the dataset's slots were last built from, so a pick can tell cheaply whether
    they need a refresh (new clips imported, overlap changed, a newer run finished)."""

    dataset = models.OneToOneField(
        Dataset, on_delete=models.CASCADE, primary_key=True, related_name="queue_state"
    )
    max_position = models.BigIntegerField(default=-1)
    required_reviews = models.PositiveSmallIntegerField(default=0)
    run = models.ForeignKey(
        "pipeline.PipelineRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"queue of {self.dataset_id}"


class GoldClip(models.Model):
    """A clip with curator-approved answers (GoldLabel rows), mixed into reviewers' queues
    at Dataset.gold_rate to measure each reviewer. ``complete``: the answers list every
    label of the clip, so any other label a reviewer accepts is wrong (an imported segments
    CSV); otherwise only the labels with an answer count ("Make gold" from adjudications)."""

    class Source(models.TextChoices):
        ADJUDICATED = "adjudicated", "Adjudicated labels"
        IMPORTED = "imported", "Imported answers"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    clip = models.OneToOneField(Clip, on_delete=models.CASCADE, related_name="gold")
    source = models.CharField(max_length=12, choices=Source.choices)
    complete = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["dataset", "clip"], name="goldclip_dataset_clip")]

    def __str__(self) -> str:
        return f"gold clip {self.clip_id}"


class GoldLabel(models.Model):
    """The gold answer for one label of a gold clip: present or absent."""

    gold = models.ForeignKey(GoldClip, on_delete=models.CASCADE, related_name="labels",
                             db_index=False)
    # Denormalised from gold.clip so decisions join on (clip, label) directly.
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+", db_index=False)
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="+", db_index=False)
    present = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clip", "label"], name="goldlabel_unique_clip_label")
        ]

    def __str__(self) -> str:
        return f"{self.label_id} {'present' if self.present else 'absent'} on {self.clip_id}"


class GoldServe(models.Model):
    """A gold clip handed to a reviewer. Unique per (clip, reviewer): a reviewer is never
    served the same gold clip twice. Also the lease: an unfinished serve younger than the
    lease comes back on a reload, like a slot lease."""

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="+", db_index=False)
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                 related_name="+", db_index=False)
    served_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clip", "reviewer"], name="goldserve_unique")
        ]
        indexes = [models.Index(fields=["reviewer", "served_at"], name="goldserve_reviewer")]

    def __str__(self) -> str:
        return f"gold clip {self.clip_id} served to {self.reviewer_id}"
class ReviewerSettings(models.Model):
    """A reviewer's own preferences for the review screens (one row, made on first change;
    no row means the defaults)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
        related_name="review_settings",
    )
    # Play the clip as soon as its page opens (the full screen and rapid mode).
    autoplay = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"review settings of {self.user_id}"


class ClipNote(models.Model):
    """A reviewer's note on a clip as a whole (not on one label's decision): what no label
    says, e.g. "two overlapping recordings" or "audio cut at 6 s". One per reviewer and
    clip, updated in place; curators read them on the adjudication page."""

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="notes", db_index=False)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="clip_notes"
    )
    text = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Also the index of "the notes of a clip" (its leading column).
            models.UniqueConstraint(fields=["clip", "reviewer"], name="clipnote_unique")
        ]

    def __str__(self) -> str:
        return f"note of {self.reviewer_id} on clip {self.clip_id}"
