"""'Your recent clips': the last clips a reviewer decided on, newest first, with their
verdict counts, so a reviewer can go back to one (both review screens show the list)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Q

from .models import Decision, Verdict

RECENT_LIMIT = 50


@dataclass(frozen=True)
class RecentClip:
    clip_id: int
    ytid: str
    dataset: str
    last: datetime
    accept: int
    reject: int
    unsure: int


def reviewer_recent_clips(*, reviewer, dataset_id: int | None = None,
                          limit: int = RECENT_LIMIT) -> list[RecentClip]:
    """One grouped query over the reviewer's decisions (index reviewer, updated_at)."""
    qs = Decision.objects.filter(reviewer=reviewer)
    if dataset_id is not None:
        qs = qs.filter(clip__dataset_id=dataset_id)
    rows = (
        qs.values("clip_id", "clip__ytid", "clip__dataset__name")
        .annotate(
            last=Max("updated_at"),
            n_accept=Count("id", filter=Q(verdict=Verdict.ACCEPT)),
            n_reject=Count("id", filter=Q(verdict=Verdict.REJECT)),
            n_unsure=Count("id", filter=Q(verdict=Verdict.UNSURE)),
        )
        .order_by("-last", "-clip_id")[:limit]
    )
    return [
        RecentClip(clip_id=r["clip_id"], ytid=r["clip__ytid"], dataset=r["clip__dataset__name"],
                   last=r["last"], accept=r["n_accept"], reject=r["n_reject"],
                   unsure=r["n_unsure"])
        for r in rows
    ]
