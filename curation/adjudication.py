"""Writes of adjudication: a curator's final verdict on a label of a clip (overrides the
reviewers' majority), with its append-only log.

Keyword-only arguments; each runs in one transaction. Role checks are here as well as in
the views, so a script or the API cannot adjudicate as a reviewer."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from relabel_app.models import Clip, Label
from relabel_app.roles import require_curator

from .models import Adjudication, AdjudicationLog, AdjudicationVerdict

log = logging.getLogger(__name__)


def _require_curator(user) -> None:
    require_curator(user, "Only curators adjudicate and export.")


def _audit_refresh_later(dataset_id: int) -> None:
    """After a decision of a curator: the audit snapshots refresh, debounced."""

    def request() -> None:
        from .snapshots import audit_snapshot_after_decision

        try:
            audit_snapshot_after_decision(dataset_id=dataset_id)
        except Exception:  # never fail an adjudication for its audit refresh
            log.exception("could not request an audit refresh of dataset %s", dataset_id)

    transaction.on_commit(request)


def _log(*, clip: Clip, label: Label, curator, action: str, before: Adjudication | None,
         after: Adjudication | None) -> AdjudicationLog:
    return AdjudicationLog.objects.create(
        clip=clip, label=label, curator=curator, action=action,
        before_verdict=before.verdict if before else "", before_note=before.note if before else "",
        after_verdict=after.verdict if after else "", after_note=after.note if after else "",
    )


@transaction.atomic
def adjudication_record(*, clip: Clip, label: Label, curator, verdict: str,
                        note: str = "") -> Adjudication:
    """Set the curator's final verdict on a label of a clip (overrides the reviewers'
    majority). Idempotent: the same call twice leaves one row and one log entry. Another
    curator's later call replaces the verdict and becomes its author."""
    _require_curator(curator)
    verdict = AdjudicationVerdict(verdict).value
    adj = Adjudication.objects.select_for_update().filter(clip=clip, label=label).first()
    if adj is None:
        try:
            # A savepoint: when a concurrent request inserted the row first, the unique
            # constraint fires here and we update that row instead.
            with transaction.atomic():
                adj = Adjudication.objects.create(
                    clip=clip, label=label, curator=curator, verdict=verdict, note=note
                )
        except IntegrityError:
            adj = Adjudication.objects.select_for_update().get(clip=clip, label=label)
        else:
            _log(clip=clip, label=label, curator=curator,
                 action=AdjudicationLog.Action.RECORD, before=None, after=adj)
            _audit_refresh_later(clip.dataset_id)
            return adj
    if (adj.verdict, adj.note, adj.curator_id) == (verdict, note, curator.pk):
        return adj
    before = Adjudication(verdict=adj.verdict, note=adj.note)
    adj.verdict, adj.note, adj.curator = verdict, note, curator
    adj.save(update_fields=["verdict", "note", "curator", "updated_at"])
    _log(clip=clip, label=label, curator=curator, action=AdjudicationLog.Action.RECORD,
         before=before, after=adj)
    _audit_refresh_later(clip.dataset_id)
    return adj


@transaction.atomic
def adjudication_clear(*, clip: Clip, label: Label, curator) -> bool:
    """Remove the adjudication of a label (the reviewers' majority applies again).
    Returns whether there was one."""
    _require_curator(curator)
    adj = Adjudication.objects.select_for_update().filter(clip=clip, label=label).first()
    if adj is None:
        return False
    _log(clip=clip, label=label, curator=curator, action=AdjudicationLog.Action.CLEAR,
         before=adj, after=None)
    adj.delete()
    _audit_refresh_later(clip.dataset_id)
    return True
