"""The trainable-class rule, one function for every write of a verdict on a label.

Only the 527 trainable classes (``Label.index`` set) can be training labels: an abstract or
otherwise non-trainable class has no index, so no AudioSet loader can read it. Such a class
can still sit on a clip (an original label of old data, a candidate of an external label
set), and saying it is wrong or unclear there is useful; so it may be rejected or marked
unsure where it is already on the clip, and never accepted or added.

Callers are the services, not the views: a reviewer's decision (clip page, rapid mode, API:
``review.decisions.decision_upsert``, which adding a label goes through too), a curator's
adjudication, gold answers (made from adjudications or imported), and any bulk write or
import of decisions."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.models import Candidate
from relabel_app.models import ClipLabel, Label

ACCEPTING = "accept"  # the one verdict (review and curation alike) that makes a label


class LabelRefused(ValueError):
    """A verdict the trainable rule forbids; the message says why and what to do instead."""


def _kind(label: Label) -> str:
    return "an abstract class" if label.abstract else "not one of the 527 trainable classes"


def _children_hint(label: Label, verb: str) -> str:
    from relabel_app.label_info import trainable_descendants

    kids = [i.name for i in trainable_descendants(label.pk)]
    return f" {verb} one of its trainable children instead: {', '.join(kids)}." if kids else ""


def label_on_clip(*, clip_id: int, label_id: int) -> bool:
    """Whether the label is already on the clip: an original label, or a candidate of any
    run (model chain or imported label set)."""
    return (ClipLabel.objects.filter(clip_id=clip_id, label_id=label_id).exists()
            or Candidate.objects.filter(clip_id=clip_id, label_id=label_id).exists())


def label_verdict_check(*, clip_id: int, label: Label, verdict: str,
                        adding: bool = False) -> None:
    """Raise LabelRefused unless ``verdict`` on ``label`` of the clip obeys the trainable
    rule. A trainable class passes without a query."""
    if label.index is not None:
        return
    head = f"{label.name} is {_kind(label)}, so it cannot be a label."
    if adding:
        raise LabelRefused(head + _children_hint(label, "Add"))
    if verdict == ACCEPTING:
        raise LabelRefused(head + " It may only be rejected or marked unsure."
                           + _children_hint(label, "Accept"))
    if not label_on_clip(clip_id=clip_id, label_id=label.pk):
        raise LabelRefused(head + " It is not on this clip, so there is nothing to reject.")


def label_verdicts_check(items: Iterable[tuple[int, Label, str]]) -> None:
    """The rule for many (clip_id, label, verdict) at once (bulk writes, imports): raises
    LabelRefused on the first that breaks it, naming the clip. Queries only for the
    non-trainable labels that are not accepted (rare)."""
    for clip_id, label, verdict in items:
        try:
            label_verdict_check(clip_id=clip_id, label=label, verdict=verdict)
        except LabelRefused as e:
            raise LabelRefused(f"Clip {clip_id}: {e}") from None
