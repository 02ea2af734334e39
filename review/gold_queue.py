"""Gold clips in the review queue: at Dataset.gold_rate a pick serves a gold clip instead of
the next slot, and the clip page shows it like any other clip.

A serve is a GoldServe row, unique per (clip, reviewer): a reviewer is never served the
same gold clip twice, nor one they already reviewed (finished, or decided on). An
unfinished serve younger than the lease comes back on a reload, as a slot lease does."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from relabel_app.models import Dataset

from .models import ClipReview, Decision, GoldClip, GoldServe, QueueSlot


class _T:
    serve = GoldServe._meta.db_table
    gold = GoldClip._meta.db_table
    review = ClipReview._meta.db_table
    decision = Decision._meta.db_table
    slot = QueueSlot._meta.db_table


def _current_serve(cur, *, dataset_id: int, reviewer_id: int, since) -> int | None:
    cur.execute(f"""
        SELECT s.clip_id FROM {_T.serve} s JOIN {_T.gold} g ON g.clip_id = s.clip_id
        WHERE s.reviewer_id = %(me)s AND s.served_at > %(since)s AND g.dataset_id = %(ds)s
          AND NOT EXISTS (SELECT 1 FROM {_T.review} r
                          WHERE r.clip_id = s.clip_id AND r.reviewer_id = %(me)s)
        ORDER BY s.served_at DESC LIMIT 1""",
                {"me": reviewer_id, "since": since, "ds": dataset_id})
    row = cur.fetchone()
    return row[0] if row else None


def _holds_slot(cur, *, dataset_id: int, reviewer_id: int, now) -> bool:
    cur.execute(f"""
        SELECT 1 FROM {_T.slot} s
        WHERE s.leased_to_id = %(me)s AND s.dataset_id = %(ds)s AND s.done_by_id IS NULL
          AND s.lease_expires_at > %(now)s LIMIT 1""",
                {"me": reviewer_id, "ds": dataset_id, "now": now})
    return cur.fetchone() is not None


def gold_next_clip_id(*, dataset: Dataset, reviewer, lease: timedelta,
                      rng: Callable[[], float] | None = None) -> int | None:
    """The gold clip this pick serves, or None for an ordinary pick.

    Their current gold serve first (a reload); none while they hold an ordinary lease (that
    clip comes back instead); otherwise, with probability Dataset.gold_rate, a random gold
    clip of the dataset they were never served and never reviewed."""
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cur:
        current = _current_serve(cur, dataset_id=dataset.pk, reviewer_id=reviewer.pk,
                                 since=now - lease)
        if current is not None:
            return current
        if dataset.gold_rate <= 0 or (rng or random.random)() >= dataset.gold_rate:
            return None
        if _holds_slot(cur, dataset_id=dataset.pk, reviewer_id=reviewer.pk, now=now):
            return None
        # The insert is the guard: the unique (clip, reviewer) makes a second serve of
        # the same clip to the same reviewer impossible, even from two tabs at once.
        cur.execute(f"""
            INSERT INTO {_T.serve} (clip_id, reviewer_id, served_at)
            SELECT g.clip_id, %(me)s, %(now)s FROM {_T.gold} g
            WHERE g.dataset_id = %(ds)s
              AND NOT EXISTS (SELECT 1 FROM {_T.serve} s
                              WHERE s.clip_id = g.clip_id AND s.reviewer_id = %(me)s)
              AND NOT EXISTS (SELECT 1 FROM {_T.review} r
                              WHERE r.clip_id = g.clip_id AND r.reviewer_id = %(me)s)
              AND NOT EXISTS (SELECT 1 FROM {_T.decision} d
                              WHERE d.clip_id = g.clip_id AND d.reviewer_id = %(me)s)
            ORDER BY random() LIMIT 1
            ON CONFLICT (clip_id, reviewer_id) DO NOTHING
            RETURNING clip_id""", {"me": reviewer.pk, "now": now, "ds": dataset.pk})
        row = cur.fetchone()
    return row[0] if row else None
