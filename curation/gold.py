"""Gold clips as a measure of reviewers: precision and recall of each reviewer's verdicts
on gold labels, and the reviewers a curator's floor flags.

Definitions (worked by hand in tests/curation/test_gold.py):

* A reviewer *reviewed* a gold clip when they decided on one of its labels or finished it.
* Each accept / reject of theirs on a gold clip meets the gold answer of its label: the
  GoldLabel's ``present``; for a ``complete`` gold clip (imported answers list every
  label) a label without a GoldLabel is absent; otherwise it has no answer and does not
  count. "unsure" never counts.
* TP = accepted and present; FP = accepted and absent.
* precision = TP / (TP + FP); recall = TP / present gold labels of the gold clips they
  reviewed (a present label they rejected or never accepted is missed).
* With a floor set on the dataset (Dataset.gold_floor), a reviewer whose precision or
  recall is below it is flagged; a reviewer with no gold label judged yet is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection

from relabel_app.models import Dataset
from review.models import ClipReview, Decision, GoldClip, GoldLabel


class _T:
    decision = Decision._meta.db_table
    clipreview = ClipReview._meta.db_table
    goldclip = GoldClip._meta.db_table
    goldlabel = GoldLabel._meta.db_table


@dataclass
class ReviewerGold:
    reviewer_id: int
    reviewer: str
    gold_clips: int
    judged: int  # accepts and rejects that met a gold answer
    tp: int
    fp: int
    missed: int  # present gold labels not accepted
    positives: int
    precision: float | None
    recall: float | None
    flagged: bool = False

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "reviewer", "gold_clips", "judged", "tp", "fp", "missed", "positives",
            "precision", "recall", "flagged")}


GOLD_ACCURACY_SQL = f"""
WITH reviewed AS (
    SELECT d.clip_id, d.reviewer_id FROM {_T.decision} d
    JOIN {_T.goldclip} g ON g.clip_id = d.clip_id WHERE g.dataset_id = %(ds)s
    UNION
    SELECT r.clip_id, r.reviewer_id FROM {_T.clipreview} r
    JOIN {_T.goldclip} g ON g.clip_id = r.clip_id WHERE g.dataset_id = %(ds)s
),
judged AS (
    SELECT d.reviewer_id, d.verdict,
           coalesce(gl.present, CASE WHEN g.complete THEN false END) AS present
    FROM {_T.decision} d
    JOIN {_T.goldclip} g ON g.clip_id = d.clip_id
    LEFT JOIN {_T.goldlabel} gl ON gl.clip_id = d.clip_id AND gl.label_id = d.label_id
    WHERE g.dataset_id = %(ds)s AND d.verdict IN ('accept', 'reject')
),
per_judged AS (
    SELECT reviewer_id,
           count(*) FILTER (WHERE present IS NOT NULL) AS judged,
           count(*) FILTER (WHERE verdict = 'accept' AND present) AS tp,
           count(*) FILTER (WHERE verdict = 'accept' AND NOT present) AS fp
    FROM judged GROUP BY reviewer_id
),
per_reviewed AS (
    SELECT r.reviewer_id, count(DISTINCT r.clip_id) AS gold_clips,
           count(gl.id) AS positives
    FROM reviewed r
    LEFT JOIN {_T.goldlabel} gl ON gl.clip_id = r.clip_id AND gl.present
    GROUP BY r.reviewer_id
)
SELECT r.reviewer_id, r.gold_clips, coalesce(j.judged, 0), coalesce(j.tp, 0),
       coalesce(j.fp, 0), r.positives
FROM per_reviewed r LEFT JOIN per_judged j ON j.reviewer_id = r.reviewer_id
"""


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def reviewer_gold_accuracy(*, dataset: Dataset) -> list[ReviewerGold]:
    """Every reviewer who reviewed a gold clip of the dataset, by username. Two queries."""
    with connection.cursor() as cur:
        cur.execute(GOLD_ACCURACY_SQL, {"ds": dataset.pk})
        rows = cur.fetchall()
    names = dict(get_user_model().objects.filter(pk__in=[r[0] for r in rows])
                 .values_list("pk", "username"))
    out = []
    floor = dataset.gold_floor
    for reviewer_id, clips, judged, tp, fp, positives in rows:
        g = ReviewerGold(
            reviewer_id=reviewer_id, reviewer=names.get(reviewer_id, str(reviewer_id)),
            gold_clips=clips, judged=judged, tp=tp, fp=fp, missed=positives - tp,
            positives=positives, precision=_ratio(tp, tp + fp), recall=_ratio(tp, positives),
        )
        if floor is not None:
            g.flagged = any(v is not None and v < floor for v in (g.precision, g.recall))
        out.append(g)
    out.sort(key=lambda g: g.reviewer)
    return out


def flagged_reviewer_ids(*, dataset: Dataset) -> tuple[int, ...]:
    """Reviewers whose votes the majority leaves out: the flagged ones when the dataset
    says so (Dataset.gold_exclude_flagged with a floor), else none."""
    if not dataset.gold_exclude_flagged or dataset.gold_floor is None:
        return ()
    return tuple(sorted(g.reviewer_id for g in reviewer_gold_accuracy(dataset=dataset)
                        if g.flagged))


def excluded_reviewer_names(*, dataset: Dataset) -> list[str]:
    """Usernames of the reviewers whose votes the majority leaves out (see above)."""
    ids = flagged_reviewer_ids(dataset=dataset)
    if not ids:
        return []
    return sorted(get_user_model().objects.filter(pk__in=ids)
                  .values_list("username", flat=True))


def gold_reviewed_before(*, clip, gold: GoldClip | None = None) -> list[str]:
    """Reviewers who had decided on this clip before it became gold (all of them while it is
    not gold yet). Gold answers made from adjudications that saw their verdicts agree with
    them by construction: their accuracy on this clip is trivial, not a measurement."""
    qs = Decision.objects.filter(clip=clip)
    if gold is not None and gold.source == GoldClip.Source.ADJUDICATED:
        qs = qs.filter(created_at__lt=gold.created_at)
    elif gold is not None:
        return []  # imported answers were not made from this app's verdicts
    names = qs.values_list("reviewer__username", flat=True).distinct()
    return sorted(names)
