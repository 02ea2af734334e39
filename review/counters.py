"""The review screens' counters: "clip k of N", "still need review", decisions today.

"Still need review" is counted from the queue's own state, for the person looking: clips
of the dataset with an open slot (QueueSlot.done_by empty) that this reviewer has not
finished: the clips review.queue.queue_pick_sql can still give them, the one they hold, and
those another reviewer holds for now (a lease that may lapse back to the queue).
Every finish closes a slot in the same statement that writes the ClipReview
(review.finishing.clip_finish), so the count is right in the response after `n`.

Counting open slots of millions of clips scans a partial index of millions of entries,
so for a big dataset the dataset-wide part is reused for a few seconds; the reviewer's
own finishes since that count are subtracted exactly, so a stale figure is never visible
to the person who acted (only other reviewers' work shows up to STILL_NEEDED_CACHE_S
late). Small datasets are always counted exactly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from relabel_app.models import Clip

from .models import ClipReview, Decision, QueueSlot

# How long the dataset-wide count of clips with an open slot is reused (per process).
STILL_NEEDED_CACHE_S = 30
# Below this many open clips the count is cheap (milliseconds): never cached.
EXACT_BELOW = 50_000


@dataclass
class ReviewCounters:
    session_clip: int  # k: this clip is the reviewer's k-th of the session
    session_total: int  # N: k - 1 plus the clips still needing this reviewer
    still_needed: int  # clips with an open slot this reviewer has not finished
    decisions_today: int
    per_hour_today: float | None


def _open_clips(dataset_id: int) -> tuple[int, datetime | None]:
    """(clips of the dataset with an open slot, when that count was taken if it is a
    reused one, else None). The time is the app's clock, as ClipReview.finished_at is."""
    key = f"review:open_clips:{dataset_id}"
    hit = cache.get(key)
    if hit is not None:
        return hit
    at = timezone.now()
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT count(DISTINCT clip_id) FROM {QueueSlot._meta.db_table} "
            "WHERE dataset_id = %s AND done_by_id IS NULL", [dataset_id])
        value = cur.fetchone()[0]
    if value < EXACT_BELOW:
        return value, None
    cache.set(key, (value, at), STILL_NEEDED_CACHE_S)
    # Fresh this time: nothing of the reviewer's is newer than the count.
    return value, None


def clips_still_needed(*, dataset_id: int, reviewer) -> int:
    """Clips of the dataset the queue could still give this reviewer (or they hold): an
    open slot, not finished by them."""
    open_clips, counted_at = _open_clips(dataset_id)
    slot_t, review_t = QueueSlot._meta.db_table, ClipReview._meta.db_table
    with connection.cursor() as cur:
        # The reviewer's own finished clips: those with an open slot left (for other
        # reviewers) are not theirs to do; those whose last slot they closed after the
        # count above are already gone from the dataset (no stale figure for who acted).
        cur.execute(
            f"""
            SELECT count(*) FILTER (WHERE open_left),
                   count(*) FILTER (WHERE NOT open_left AND %(at)s::timestamptz IS NOT NULL
                                          AND r.finished_at >= %(at)s)
            FROM (SELECT r.finished_at,
                         EXISTS (SELECT 1 FROM {slot_t} s
                                 WHERE s.clip_id = r.clip_id AND s.done_by_id IS NULL)
                           AS open_left
                  FROM {review_t} r
                  WHERE r.dataset_id = %(ds)s AND r.reviewer_id = %(me)s) r
            """,
            {"ds": dataset_id, "me": reviewer.pk, "at": counted_at},
        )
        mine_open, mine_closed_since = cur.fetchone()
    return max(open_clips - mine_open - mine_closed_since, 0)


def review_counters(*, clip: Clip, reviewer, session_started: datetime | None) -> ReviewCounters:
    """Not on the clip page's own path: the page loads it afterwards (htmx), and rapid
    mode's finish answer carries it."""
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    review_t, decision_t = ClipReview._meta.db_table, Decision._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT (SELECT count(*) FROM {review_t}
                    WHERE dataset_id = %(ds)s AND reviewer_id = %(me)s
                      AND finished_at >= %(since)s),
                   (SELECT count(*) FROM {decision_t}
                    WHERE reviewer_id = %(me)s AND updated_at >= %(today)s),
                   (SELECT min(updated_at) FROM {decision_t}
                    WHERE reviewer_id = %(me)s AND updated_at >= %(today)s)
            """,
            {"ds": clip.dataset_id, "me": reviewer.pk, "today": today,
             "since": session_started or now},
        )
        session_done, today_n, first = cur.fetchone()
    still_needed = clips_still_needed(dataset_id=clip.dataset_id, reviewer=reviewer)
    hours = (now - first).total_seconds() / 3600 if first else 0.0
    # Under six minutes of work an hourly rate says nothing yet.
    per_hour = today_n / hours if hours >= 0.1 else None
    return ReviewCounters(
        session_clip=session_done + 1, session_total=session_done + max(still_needed, 1),
        still_needed=still_needed, decisions_today=today_n, per_hour_today=per_hour,
    )
