"""Writes of reviewers' decisions: record, categorize, undo (each with its append-only
DecisionLog entry) and "add a label".

Every function takes keyword arguments only; each write runs in one transaction."""

from __future__ import annotations

import enum

from django.db import connection, transaction
from django.utils import timezone

from relabel_app.models import Clip, Label

# LabelRefused: raised by the writes here; views catch it as decisions.LabelRefused.
from .label_rules import LabelRefused as LabelRefused
from .label_rules import label_verdict_check
from .models import Decision, DecisionLog, ErrorCategory, Verdict


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP
"""Default of ``error_category`` / ``note``: leave what is stored (see decision_record)."""

_State = tuple[str, int | None, str]  # (verdict or "", error_category_id, note)
_NONE: _State = ("", None, "")


def _state(d: Decision | None) -> _State:
    return _NONE if d is None else (d.verdict, d.error_category_id, d.note)


def _log(*, clip: Clip, label: Label, reviewer, action: str, before: _State, after: _State,
         reverts: DecisionLog | None = None) -> DecisionLog:
    return DecisionLog.objects.create(
        clip=clip, label=label, reviewer=reviewer, action=action,
        before_verdict=before[0], before_error_category_id=before[1], before_note=before[2],
        after_verdict=after[0], after_error_category_id=after[1], after_note=after[2],
        reverts=reverts,
    )


def _locked_decision(clip: Clip, label: Label, reviewer) -> Decision | None:
    return (
        Decision.objects.select_for_update()
        .filter(clip=clip, label=label, reviewer=reviewer)
        .first()
    )


def _decision_insert(*, clip: Clip, label: Label, reviewer, verdict: str,
                     error_category: ErrorCategory | None, note: str) -> Decision | None:
    """Insert the reviewer's decision and its log entry unless they have a decision already
    (then None, and nothing is written). One statement: a first decision, the common case,
    needs no SELECT ... FOR UPDATE, no savepoint against a concurrent insert of the same
    row and no second round trip for the log."""
    now = timezone.now()
    with connection.cursor() as cur:
        cur.execute(
            f"""WITH d AS (
                INSERT INTO {Decision._meta.db_table} (clip_id, dataset_id, label_id,
                    reviewer_id, verdict, error_category_id, note, created_at, updated_at)
                VALUES (%(clip)s, %(dataset)s, %(label)s, %(reviewer)s, %(verdict)s,
                        %(category)s, %(note)s, %(now)s, %(now)s)
                ON CONFLICT (clip_id, label_id, reviewer_id) DO NOTHING
                RETURNING id, clip_id, label_id, reviewer_id, verdict, error_category_id, note
            ), log AS (
                INSERT INTO {DecisionLog._meta.db_table} (clip_id, label_id, reviewer_id,
                    action, before_verdict, before_error_category_id, before_note,
                    after_verdict, after_error_category_id, after_note, created_at)
                SELECT clip_id, label_id, reviewer_id, %(action)s, '', NULL, '',
                       verdict, error_category_id, note, %(now)s
                FROM d
            )
            SELECT id FROM d""",
            {"clip": clip.pk, "dataset": clip.dataset_id, "label": label.pk, "reviewer": reviewer.pk, "verdict": verdict,
             "category": error_category.pk if error_category else None, "note": note,
             "now": now, "action": DecisionLog.Action.RECORD.value},
        )
        row = cur.fetchone()
    if row is None:
        return None
    d = Decision(id=row[0], clip=clip, dataset_id=clip.dataset_id, label=label, reviewer=reviewer, verdict=verdict,
                 error_category=error_category, note=note, created_at=now, updated_at=now)
    d._state.adding = False
    d._state.db = connection.alias
    return d


def decision_record(
    *,
    clip: Clip,
    label: Label,
    reviewer,
    verdict: str,
    error_category: ErrorCategory | None | _Keep = KEEP,
    note: str | _Keep = KEEP,
) -> Decision:
    """Set the reviewer's verdict on a label of a clip. Idempotent: the same call twice
    leaves one row and one log entry. Two reviewers get a row each.

    ``error_category`` and ``note`` default to KEEP: the stored ones stay, except that a
    *changed* verdict drops the error category (it described the old verdict). Pass a
    value (None / "" included) to set them."""
    return decision_upsert(clip=clip, label=label, reviewer=reviewer, verdict=verdict,
                           error_category=error_category, note=note)[0]


@transaction.atomic
def decision_upsert(
    *,
    clip: Clip,
    label: Label,
    reviewer,
    verdict: str,
    error_category: ErrorCategory | None | _Keep = KEEP,
    note: str | _Keep = KEEP,
) -> tuple[Decision, bool]:
    """decision_record, also saying whether this call created the row: of any number of
    identical concurrent calls exactly one gets True (the INSERT ... ON CONFLICT that won),
    so an API answers 201 once and 200 to all the others. Raises LabelRefused when the
    trainable rule (review.label_rules) forbids the verdict; nothing is written then."""
    verdict = Verdict(verdict).value
    label_verdict_check(clip_id=clip.pk, label=label, verdict=verdict)
    for _attempt in range(3):
        d = _decision_insert(
            clip=clip, label=label, reviewer=reviewer, verdict=verdict,
            error_category=None if error_category is KEEP else error_category,
            note="" if note is KEEP else note,
        )
        if d is not None:  # logged by the same statement
            return d, True
        d = _locked_decision(clip, label, reviewer)
        if d is not None:
            break
        # The row that blocked the insert was undone (deleted) in between: insert again.
    else:
        raise RuntimeError(f"decision on clip {clip.pk}, label {label.pk} kept changing")
    before = _state(d)
    if error_category is not KEEP:
        d.error_category = error_category
    elif d.verdict != verdict:
        d.error_category = None
    if note is not KEEP:
        d.note = note
    d.verdict = verdict
    after = _state(d)
    if after == before:
        return d, False
    d.save(update_fields=["verdict", "error_category", "note", "updated_at"])
    _log(clip=clip, label=label, reviewer=reviewer, action=DecisionLog.Action.RECORD,
         before=before, after=after)
    return d, False


@transaction.atomic
def decision_categorize(
    *,
    clip: Clip,
    label: Label,
    reviewer,
    error_category: ErrorCategory | None,
    note: str | _Keep = KEEP,
) -> Decision:
    """Tag the reviewer's existing decision with an error category (and a note).
    Raises Decision.DoesNotExist when there is no decision to tag."""
    d = _locked_decision(clip, label, reviewer)
    if d is None:
        raise Decision.DoesNotExist("no decision to categorize")
    before = _state(d)
    d.error_category = error_category
    if note is not KEEP:
        d.note = note
    after = _state(d)
    if after != before:
        d.save(update_fields=["error_category", "note", "updated_at"])
        _log(clip=clip, label=label, reviewer=reviewer, action=DecisionLog.Action.CATEGORIZE,
             before=before, after=after)
    return d


@transaction.atomic
def decision_undo(*, clip: Clip, label: Label, reviewer) -> Decision | None:
    """Revert the reviewer's latest change to this label that is not reverted yet, and log
    the undo. Repeated undo walks back through the history to "no decision". Returns the
    decision as it now stands (None when there is none)."""
    current = _locked_decision(clip, label, reviewer)
    entry = (
        DecisionLog.objects.select_for_update(of=("self",))
        .filter(clip=clip, label=label, reviewer=reviewer, reverted_by__isnull=True)
        .exclude(action=DecisionLog.Action.UNDO)
        .order_by("-id")
        .first()
    )
    if entry is None:
        return current
    before = _state(current)
    restored: _State = (entry.before_verdict, entry.before_error_category_id, entry.before_note)
    if not restored[0]:
        if current is not None:
            current.delete()
        result = None
    else:
        if current is None:
            current = Decision(clip=clip, label=label, reviewer=reviewer)
        current.verdict, current.error_category_id, current.note = restored
        current.save()
        result = current
    _log(clip=clip, label=label, reviewer=reviewer, action=DecisionLog.Action.UNDO,
         before=before, after=_state(result), reverts=entry)
    return result


def decision_add_label(*, clip: Clip, label: Label, reviewer) -> Decision:
    """"Add a label": the reviewer adds a class the clip lacks, accepted. Only the 527
    trainable classes: an abstract (or otherwise non-trainable) class has no index, so no
    AudioSet loader can read it; the error names its trainable children to add instead."""
    label_verdict_check(clip_id=clip.pk, label=label, verdict=Verdict.ACCEPT, adding=True)
    return decision_record(clip=clip, label=label, reviewer=reviewer, verdict=Verdict.ACCEPT)

