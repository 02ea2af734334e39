"""Finishing a clip: a reviewer closes one of its queue slots (or their gold serve), and
that is what progress counts."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from relabel_app.models import Clip

from .models import ClipReview, GoldClip, GoldServe, QueueSlot
from .queue import queue_refresh_for_pick


@transaction.atomic
def clip_finish(*, clip: Clip, reviewer) -> ClipReview | None:
    """Mark the clip finished by the reviewer (idempotent) by closing one of its queue
    slots. The one rule, enforced by a single statement in the database under row locks:
    a slot is closed only by the holder of its live lease, or, when nobody holds a live
    lease on it, by anyone (a clip reached outside the queue, or after one's own lease
    ran out). The finished review (ClipReview, what progress counts) is written by that
    same statement and points at the slot it closed (one review per slot, unique), so
    there are never more finished reviews than slots, and never an open slot left for a
    clip that reached its count.

    Returns the reviewer's ClipReview, or None when every open slot of the clip is held by
    someone else's live lease (or none is left): their decisions are kept as they are, but
    the clip does not count as finished by them."""
    existing = ClipReview.objects.filter(clip=clip, reviewer=reviewer).first()
    if existing is not None:
        return existing
    queue_refresh_for_pick(clip.dataset)  # a queue never built has no slot to close
    slot_t, review_t = QueueSlot._meta.db_table, ClipReview._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""
            WITH target AS (
                SELECT s.id FROM {slot_t} s
                WHERE s.clip_id = %(clip)s AND s.done_by_id IS NULL
                  AND NOT EXISTS (SELECT 1 FROM {slot_t} d
                                  WHERE d.clip_id = %(clip)s AND d.done_by_id = %(me)s)
                  AND (s.leased_to_id IS NULL OR s.lease_expires_at IS NULL
                       OR s.lease_expires_at <= %(now)s OR s.leased_to_id = %(me)s)
                ORDER BY (s.leased_to_id = %(me)s) DESC NULLS LAST, s.slot
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            ), closed AS (
                UPDATE {slot_t} s SET done_by_id = %(me)s, done_at = %(now)s,
                                      leased_to_id = NULL, lease_expires_at = NULL
                FROM target WHERE s.id = target.id
                RETURNING s.id, s.dataset_id, s.clip_id
            )
            INSERT INTO {review_t} (dataset_id, clip_id, reviewer_id, slot_id, finished_at)
            SELECT dataset_id, clip_id, %(me)s, id, %(now)s FROM closed
            ON CONFLICT DO NOTHING
            """,
            {"me": reviewer.pk, "clip": clip.pk, "now": timezone.now()},
        )
        if cur.rowcount == 0:
            # A gold clip served to this reviewer (review.gold_queue) is finished without a
            # slot: its slots belong to the ordinary queue, the serve is what they hold.
            cur.execute(
                f"""
                INSERT INTO {review_t} (dataset_id, clip_id, reviewer_id, slot_id, finished_at)
                SELECT g.dataset_id, g.clip_id, %(me)s, NULL, %(now)s
                FROM {GoldClip._meta.db_table} g
                JOIN {GoldServe._meta.db_table} s ON s.clip_id = g.clip_id
                WHERE g.clip_id = %(clip)s AND s.reviewer_id = %(me)s
                ON CONFLICT DO NOTHING
                """,
                {"me": reviewer.pk, "clip": clip.pk, "now": timezone.now()},
            )
    return ClipReview.objects.filter(clip=clip, reviewer=reviewer).first()
