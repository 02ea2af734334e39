"""The review queue's refresh as it was before the set-based rewrite (review/queue.py at
e7fca08), kept verbatim as the reference the new code must agree with: same slots, same
ranks, same order for every priority. Tests only."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from pipeline import chain
from pipeline.models import (
    Candidate,
    ClassThreshold,
    ClipResult,
    OriginalLabelScore,
    PipelineRun,
    StageStatus,
)
from pipeline.threshold_sets import active_threshold_set
from relabel_app.models import Clip, ClipLabel, Dataset
from review.models import QueueSlot, QueueState
from review.queue import queue_freshness

_QUEUE_LOCK_NS = 0x5245
RANK_UNPROCESSED = 2.0
ORIGINAL_FAR_BELOW_MARGIN = 0.1
ORIGINAL_FAR_BELOW_WEIGHT = 0.2
ORIGINAL_FAR_BELOW_MAX = 3


def _uncertain_rank_sql(run_id: int | None) -> tuple[str, dict]:
    """SQL of (clip_id, rank) for the dataset's clips (``%(ds)s``, positions after
    ``%(after)s``): lower rank = review sooner.

    rank = min |CLAP score - threshold| over the clip's selected candidates (1.0 with no
    score) minus 0.1 per disagreement between original labels and kept candidates (a kept
    candidate that is not original, an original no kept candidate confirms), at most 5,
    minus ORIGINAL_FAR_BELOW_WEIGHT per original label whose CLAP score
    (OriginalLabelScore) lies ORIGINAL_FAR_BELOW_MARGIN or more below its class's
    threshold, at most ORIGINAL_FAR_BELOW_MAX. A class's threshold is the active threshold
    set's (pipeline.threshold_sets.active_threshold_set), else the run's global one.
    Clips the run did not finish get RANK_UNPROCESSED."""
    clip_t, orig_t = Clip._meta.db_table, ClipLabel._meta.db_table
    if run_id is None:
        return (
            f"SELECT k.id AS clip_id, {RANK_UNPROCESSED}::float8 AS rank FROM {clip_t} k "
            "WHERE k.dataset_id = %(ds)s AND k.position > %(after)s",
            {},
        )
    run = PipelineRun.objects.only("config", "profile_name", "threshold_set").get(pk=run_id)
    threshold = run.filter_config.threshold
    tset = active_threshold_set(run)
    cand_t, res_t = Candidate._meta.db_table, ClipResult._meta.db_table
    score_t, ct_t = OriginalLabelScore._meta.db_table, ClassThreshold._meta.db_table
    chain_done = chain.status_fields()[-1]  # a clip the chain's last stage finished
    # Plain joins and aggregates (no correlated subqueries): on millions of clips the
    # planner turns them into hash or merge joins, one pass over each table.
    sql = f"""
        WITH cand AS (
            SELECT c.clip_id,
                   min(abs(c.clap_score - coalesce(ct.threshold, %(thr)s))) AS gap,
                   count(*) FILTER (WHERE c.kept AND o.clip_id IS NULL) AS new_kept,
                   count(*) FILTER (WHERE c.kept AND o.clip_id IS NOT NULL) AS confirmed
            FROM {cand_t} c
            JOIN {clip_t} k ON k.id = c.clip_id
            LEFT JOIN {orig_t} o ON o.clip_id = c.clip_id AND o.label_id = c.label_id
            LEFT JOIN {ct_t} ct ON ct.threshold_set_id = %(tset)s AND ct.label_id = c.label_id
            WHERE c.run_id = %(run)s AND c.selected
              AND k.dataset_id = %(ds)s AND k.position > %(after)s
            GROUP BY c.clip_id
        ), orig AS (
            SELECT o.clip_id, count(*) AS n
            FROM {orig_t} o JOIN {clip_t} k ON k.id = o.clip_id
            WHERE k.dataset_id = %(ds)s AND k.position > %(after)s
            GROUP BY o.clip_id
        ), far AS (
            SELECT s.clip_id, count(*) AS n
            FROM {score_t} s
            JOIN {clip_t} k ON k.id = s.clip_id
            JOIN {orig_t} o ON o.clip_id = s.clip_id AND o.label_id = s.label_id
            LEFT JOIN {ct_t} ct ON ct.threshold_set_id = %(tset)s AND ct.label_id = s.label_id
            WHERE s.run_id = %(run)s AND k.dataset_id = %(ds)s AND k.position > %(after)s
              AND s.clap_score <= coalesce(ct.threshold, %(thr)s) - %(far_margin)s
            GROUP BY s.clip_id
        )
        SELECT k.id AS clip_id,
               CASE WHEN r.id IS NULL THEN {RANK_UNPROCESSED}::float8
                    ELSE COALESCE(cand.gap, 1.0) - 0.1 * LEAST(
                        COALESCE(cand.new_kept, 0)
                        + COALESCE(orig.n, 0) - COALESCE(cand.confirmed, 0), 5)
                        - %(far_weight)s * LEAST(COALESCE(far.n, 0), %(far_max)s)
               END AS rank
        FROM {clip_t} k
        LEFT JOIN {res_t} r ON r.run_id = %(run)s AND r.clip_id = k.id
                           AND r.{chain_done} = '{StageStatus.DONE.value}'
        LEFT JOIN cand ON cand.clip_id = k.id
        LEFT JOIN orig ON orig.clip_id = k.id
        LEFT JOIN far ON far.clip_id = k.id
        WHERE k.dataset_id = %(ds)s AND k.position > %(after)s
    """
    return sql, {"thr": threshold, "run": run_id, "tset": tset.pk if tset else None,
                 "far_margin": ORIGINAL_FAR_BELOW_MARGIN,
                 "far_weight": ORIGINAL_FAR_BELOW_WEIGHT, "far_max": ORIGINAL_FAR_BELOW_MAX}


def _slots_insert(cur, *, dataset: Dataset, after: int, k: int, rank_sql: str,
                  rank_params: dict) -> int:
    """The missing slots (k per clip) of the clips after position ``after``, ranked as
    they are inserted; returns how many."""
    cur.execute(
        f"""
        WITH ranked AS ({rank_sql}),
        clips AS (
            -- A hash, not random(): every slot of a clip, whenever made, shares it.
            SELECT k.id, k.position, hashint8extended(k.id, %(ds)s)::float8 AS rnd
            FROM {Clip._meta.db_table} k WHERE k.dataset_id = %(ds)s AND k.position > %(after)s)
        INSERT INTO {QueueSlot._meta.db_table} (dataset_id, clip_id, slot, rank_uncertain,
                                                rank_order, rank_random)
        SELECT %(ds)s, clips.id, s.n, ranked.rank, clips.position, clips.rnd
        FROM clips JOIN ranked ON ranked.clip_id = clips.id
        CROSS JOIN generate_series(0, %(k)s - 1) AS s(n)
        ON CONFLICT (clip_id, slot) DO NOTHING
        """,
        {"ds": dataset.pk, "after": after, "k": k, **rank_params},
    )
    return cur.rowcount


def _slots_trim(cur, *, dataset: Dataset, k: int) -> int:
    """Overlap lowered: drop the open slots beyond k (finished ones stay as history)."""
    cur.execute(
        f"DELETE FROM {QueueSlot._meta.db_table} WHERE dataset_id = %s AND slot >= %s "
        "AND done_by_id IS NULL",
        [dataset.pk, k],
    )
    return cur.rowcount


def _slots_rerank(cur, *, dataset: Dataset, rank_sql: str, rank_params: dict) -> None:
    """Every slot's rank_uncertain from the run that counts now. Ranks go into a temporary
    table first, analyzed, so that the UPDATE is one hash join rather than a nested loop
    over millions of rows."""
    slot_t = QueueSlot._meta.db_table
    # (Tests only: inside a test's outer transaction ON COMMIT DROP never fires.)
    cur.execute("DROP TABLE IF EXISTS review_rank_tmp")
    cur.execute(
        f"CREATE TEMP TABLE review_rank_tmp ON COMMIT DROP AS {rank_sql}",
        {"ds": dataset.pk, "after": -1, **rank_params},
    )
    cur.execute("ANALYZE review_rank_tmp")
    cur.execute(
        f"""
        UPDATE {slot_t} s SET rank_uncertain = t.rank
        FROM review_rank_tmp t
        WHERE s.clip_id = t.clip_id AND s.dataset_id = %s
          AND s.rank_uncertain IS DISTINCT FROM t.rank
        """,
        [dataset.pk],
    )
    if cur.rowcount > 10_000:
        cur.execute(f"ANALYZE {slot_t}")


def reference_queue_sync(*, dataset: Dataset, force: bool = False) -> bool:
    """Bring the dataset's queue slots up to date with its clips, its overlap
    (required_reviews) and its finished run that counts (pipeline.selectors). Cheap when nothing changed (one
    indexed query); otherwise one set-based statement per change (2M clips on 2 cores: about
    2 minutes for the first build, half a minute to 2 minutes for a re-rank, so
    queue_next_clip hands big refreshes to a Celery task). Returns True if it refreshed."""
    freshness = queue_freshness(dataset=dataset)
    if freshness is None or (freshness.fresh and not force):
        return False
    max_position, k, run_id = freshness.wanted
    with transaction.atomic(), connection.cursor() as cur:
        # One refresh per dataset at a time; the others wait, then find it done.
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_QUEUE_LOCK_NS, dataset.pk])
        state, _ = QueueState.objects.select_for_update().get_or_create(dataset=dataset)
        if not force and (state.max_position, state.required_reviews, state.run_id) == (
            max_position, k, run_id
        ):
            return False  # another request refreshed it while we waited for the lock
        first_build = state.required_reviews == 0
        # Slots made below get their rank as they are inserted; existing ones are re-ranked
        # when the run they were ranked from is no longer the latest finished one.
        rerank = not first_build and (force or state.run_id != run_id)
        # New slots: for every clip when the overlap grew (or on the first build), else only
        # for clips imported since the last refresh.
        after = -1 if (force or k > state.required_reviews) else state.max_position
        rank_sql, rank_params = _uncertain_rank_sql(run_id)
        changed = 0
        if max_position > after:
            changed += _slots_insert(cur, dataset=dataset, after=after, k=k, rank_sql=rank_sql,
                                     rank_params=rank_params)
        if k < state.required_reviews:
            changed += _slots_trim(cur, dataset=dataset, k=k)
        if changed > 10_000 or rerank:
            # Fresh statistics after bulk changes (and before the join below), so plans stay
            # hash joins here and an index walk in the pick.
            cur.execute(f"ANALYZE {QueueSlot._meta.db_table}")
        if rerank:
            _slots_rerank(cur, dataset=dataset, rank_sql=rank_sql, rank_params=rank_params)
        state.max_position, state.required_reviews, state.run_id = max_position, k, run_id
        state.refreshed_at = timezone.now()
        state.save()
    return True
