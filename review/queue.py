"""The review queue: slots per clip and overlap, their ranks, leases, the next-clip pick
and its peek, and the curator's queue settings. Gold serves at Dataset.gold_rate come
from review.gold_queue.

Every function takes keyword arguments only; each write runs in one transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
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
from pipeline.selectors import COUNTS_SQL, ORDER_SQL
from pipeline.threshold_sets import active_threshold_set
from relabel_app.models import Clip, ClipLabel, Dataset

from .models import ClipReview, QueueSlot, QueueState

logger = logging.getLogger(__name__)

# How long a clip stays with the reviewer it was handed to. Long enough to listen twice and
# decide on every label; short enough that a reviewer who walks away frees it soon.
LEASE = timedelta(minutes=10)
# Namespace of pg_advisory_xact_lock(ns, dataset_id) for queue refreshes.
_QUEUE_LOCK_NS = 0x5245  # "RE"
# rank_uncertain of a clip the latest finished run did not process: after all processed ones.
RANK_UNPROCESSED = 2.0
# An original label whose CLAP score lies this far (or more) below its class's threshold is
# a reason to review the clip sooner: each such label lowers the rank by the weight (at most
# ORIGINAL_FAR_BELOW_MAX of them count), twice what a plain disagreement weighs.
ORIGINAL_FAR_BELOW_MARGIN = 0.1
ORIGINAL_FAR_BELOW_WEIGHT = 0.2
ORIGINAL_FAR_BELOW_MAX = 3


def queue_pick_sql(rank_column: str, *, lock: bool, exclude_many: bool = False) -> str:
    """The next-clip pick (queue_next_clip locks it; the page's peek does not).

    It walks the partial index of open slots in priority order and stops at the first
    slot that is free (never leased, or lease expired) of a clip this reviewer neither
    finished nor holds another slot of. SKIP LOCKED: a slot another reviewer is picking at
    this moment is passed over rather than waited for. exclude_many: %(exclude)s is a list
    of clip ids (rapid mode's look-ahead past the clips it has loaded)."""
    slot_t, review_t = QueueSlot._meta.db_table, ClipReview._meta.db_table
    return f"""
        SELECT s.id, s.clip_id FROM {slot_t} s
        WHERE s.dataset_id = %(ds)s AND s.done_by_id IS NULL
          AND (s.leased_to_id IS NULL OR s.lease_expires_at <= %(now)s)
          AND s.clip_id <> {"ALL(%(exclude)s)" if exclude_many else "%(exclude)s"}
          AND NOT EXISTS (SELECT 1 FROM {review_t} r
                          WHERE r.clip_id = s.clip_id AND r.reviewer_id = %(me)s)
          AND NOT EXISTS (SELECT 1 FROM {slot_t} o
                          WHERE o.clip_id = s.clip_id AND o.id <> s.id
                            AND o.leased_to_id = %(me)s AND o.lease_expires_at > %(now)s)
        ORDER BY s.{rank_column}, s.clip_id, s.slot
        LIMIT 1
        {"FOR UPDATE OF s SKIP LOCKED" if lock else ""}
    """


RANK_COLUMNS = {
    Dataset.ReviewPriority.UNCERTAIN: "rank_uncertain",
    Dataset.ReviewPriority.ORDER: "rank_order",
    Dataset.ReviewPriority.RANDOM: "rank_random",
}


def queue_peek_next_clip_id(*, dataset: Dataset, reviewer, exclude_clip_id: int,
                            also_exclude: Sequence[int] = ()) -> int | None:
    """The clip the reviewer would most likely get after this one (not leased): what the
    page preloads. Another reviewer may take it first; then the preload was wasted.
    also_exclude: clips already loaded ahead (not leased yet, so the pick could give them)."""
    column = RANK_COLUMNS.get(dataset.review_priority, "rank_order")
    many = bool(also_exclude)
    with connection.cursor() as cur:
        cur.execute(
            queue_pick_sql(column, lock=False, exclude_many=many),
            {"ds": dataset.pk, "me": reviewer.pk, "now": timezone.now(),
             "exclude": [exclude_clip_id, *also_exclude] if many else exclude_clip_id},
        )
        row = cur.fetchone()
    return row[1] if row else None




def _uncertain_rank_sql(run_id: int | None) -> tuple[str, dict]:
    """SQL of (clip_id, position, rank) for the dataset's clips (``%(ds)s``, positions after
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
            f"SELECT k.id AS clip_id, k.position, {RANK_UNPROCESSED}::float8 AS rank "
            f"FROM {clip_t} k "
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
    # planner turns them into hash or merge joins, one pass over each table. Two passes
    # here: the run's candidates (each looked up among the clip's original labels), and the
    # original labels (each with its CLAP score, for the far-below count). The candidates
    # of the run are the run's dataset's: the clip filter is needed only for a part of it.
    sql = f"""
        WITH cand AS (
            SELECT c.clip_id,
                   min(abs(c.clap_score - coalesce(ct.threshold, %(thr)s))) AS gap,
                   count(*) FILTER (WHERE c.kept AND o.clip_id IS NULL) AS new_kept,
                   count(*) FILTER (WHERE c.kept AND o.clip_id IS NOT NULL) AS confirmed
            FROM {cand_t} c
            LEFT JOIN {orig_t} o ON o.clip_id = c.clip_id AND o.label_id = c.label_id
            LEFT JOIN {ct_t} ct ON ct.threshold_set_id = %(tset)s AND ct.label_id = c.label_id
            WHERE c.run_id = %(run)s AND c.selected
              AND (%(after)s < 0 OR c.clip_id IN (
                  SELECT k.id FROM {clip_t} k
                  WHERE k.dataset_id = %(ds)s AND k.position > %(after)s))
            GROUP BY c.clip_id
        ), orig AS (
            SELECT o.clip_id, count(*) AS n,
                   count(*) FILTER (WHERE s.clap_score
                                    <= coalesce(ct.threshold, %(thr)s) - %(far_margin)s) AS far
            FROM {orig_t} o JOIN {clip_t} k ON k.id = o.clip_id
            LEFT JOIN {score_t} s ON s.run_id = %(run)s AND s.clip_id = o.clip_id
                                 AND s.label_id = o.label_id
            LEFT JOIN {ct_t} ct ON ct.threshold_set_id = %(tset)s AND ct.label_id = o.label_id
            WHERE k.dataset_id = %(ds)s AND k.position > %(after)s
            GROUP BY o.clip_id
        )
        SELECT k.id AS clip_id, k.position,
               CASE WHEN r.id IS NULL THEN {RANK_UNPROCESSED}::float8
                    ELSE COALESCE(cand.gap, 1.0) - 0.1 * LEAST(
                        COALESCE(cand.new_kept, 0)
                        + COALESCE(orig.n, 0) - COALESCE(cand.confirmed, 0), 5)
                        - %(far_weight)s * LEAST(COALESCE(orig.far, 0), %(far_max)s)
               END AS rank
        FROM {clip_t} k
        LEFT JOIN {res_t} r ON r.run_id = %(run)s AND r.clip_id = k.id
                           AND r.{chain_done} = '{StageStatus.DONE.value}'
        LEFT JOIN cand ON cand.clip_id = k.id
        LEFT JOIN orig ON orig.clip_id = k.id
        WHERE k.dataset_id = %(ds)s AND k.position > %(after)s
    """
    return sql, {"thr": threshold, "run": run_id, "tset": tset.pk if tset else None,
                 "far_margin": ORIGINAL_FAR_BELOW_MARGIN,
                 "far_weight": ORIGINAL_FAR_BELOW_WEIGHT, "far_max": ORIGINAL_FAR_BELOW_MAX}


@dataclass(frozen=True)
class QueueFreshness:
    """What the slots should reflect (wanted) against what they were built from (built;
    None before the first build)."""

    # (max clip position, overlap k, the finished run that counts: pipeline.selectors)
    wanted: tuple[int, int, int | None]
    built: tuple[int, int, int | None] | None

    @property
    def fresh(self) -> bool:
        return self.built == self.wanted


def queue_freshness(*, dataset: Dataset) -> QueueFreshness | None:
    """One indexed round trip (None when the dataset is gone)."""
    run_t, clip_t = PipelineRun._meta.db_table, Clip._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT GREATEST(d.required_reviews, 1),
                   COALESCE((SELECT max(c.position) FROM {clip_t} c
                             WHERE c.dataset_id = d.id), -1),
                   (SELECT r.id FROM {run_t} r
                    WHERE r.dataset_id = d.id AND {COUNTS_SQL} AND r.status = %s
                    ORDER BY {ORDER_SQL} LIMIT 1),
                   s.dataset_id IS NOT NULL, s.max_position, s.required_reviews, s.run_id
            FROM {Dataset._meta.db_table} d
            LEFT JOIN {QueueState._meta.db_table} s ON s.dataset_id = d.id
            WHERE d.id = %s
            """,
            [PipelineRun.Status.DONE.value, dataset.pk],
        )
        row = cur.fetchone()
    if row is None:
        return None
    k, max_position, run_id, built, b_pos, b_k, b_run = row
    return QueueFreshness(
        wanted=(max_position, k, run_id), built=(b_pos, b_k, b_run) if built else None
    )


# Session settings of a refresh's bulk statements, for its transaction only, put back
# before queue_sync returns so that a pick later in the same transaction plans as usual.
# Measured on 2M clips, 2 cores: work_mem keeps the hash joins and aggregates over
# millions of rows in memory (4MB spills them to disk in batches); jit off saves compiling
# some 70 functions for a plan that is not bound by expression evaluation.
_BULK_SETTINGS = {"work_mem": "256MB", "jit": "off"}
# For the rank query only: right after a run finishes, its candidates and results have no
# statistics yet (autovacuum analyzes later), so the planner takes the run for one row and
# chooses nested loops with an index probe per row over millions of rows. Hash and merge
# joins cost about the same whether that estimate is right or not. (The statements after
# it read the analyzed staging table; a small dataset's re-rank may want a nested loop.)
_RANK_SETTINGS = {"enable_nestloop": "off"}
# The staging table of a refresh's ranks (a temporary table: no WAL, dropped at commit).
_STAGE = "review_rank_stage"


@contextmanager
def _session_settings(cur, settings: dict[str, str]) -> Iterator[None]:
    names = list(settings)
    cur.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
    before = cur.fetchone()
    for name, value in settings.items():
        cur.execute("SELECT set_config(%s, %s, true)", [name, value])
    yield
    # Reached only on success; on an error the transaction (or savepoint) rolls back, and
    # with it these settings.
    for name, value in zip(names, before, strict=True):
        cur.execute("SELECT set_config(%s, %s, true)", [name, value])


def _rank_stage(cur, *, dataset: Dataset, after: int, rank_sql: str,
                rank_params: dict) -> int:
    """Ranks of the clips after position ``after`` into the staging table, computed once
    (CREATE TABLE AS may use parallel workers, which an INSERT ... SELECT may not) and
    analyzed, so the statements that read it get exact row counts. Returns its row count."""
    cur.execute(f"DROP TABLE IF EXISTS {_STAGE}")  # a refresh earlier in this transaction
    with _session_settings(cur, _RANK_SETTINGS):
        cur.execute(
            f"CREATE TEMP TABLE {_STAGE} ON COMMIT DROP AS {rank_sql}",
            {"ds": dataset.pk, "after": after, **rank_params},
        )
        n = cur.rowcount
    cur.execute(f"ANALYZE {_STAGE}")
    return n


def _slots_insert(cur, *, dataset: Dataset, after: int, k: int, first_build: bool) -> int:
    """The missing slots (k per clip) of the clips after position ``after``, with their
    ranks from the staging table; returns how many.

    On a first build the dataset has no slots, so a plain INSERT does (ON CONFLICT makes
    each row a speculative insertion: about a quarter more time at 2M rows). Should slots
    exist all the same (a QueueState deleted by hand), the unique constraint says so, and
    the savepoint takes that insert back for the ON CONFLICT one."""
    sql = f"""
        INSERT INTO {QueueSlot._meta.db_table} (dataset_id, clip_id, slot, rank_uncertain,
                                                rank_order, rank_random)
        -- A hash, not random(): every slot of a clip, whenever made, shares it.
        SELECT %(ds)s, t.clip_id, s.n, t.rank, t.position,
               hashint8extended(t.clip_id, %(ds)s)::float8
        FROM {_STAGE} t CROSS JOIN generate_series(0, %(k)s - 1) AS s(n)
        WHERE t.position > %(after)s
        -- In clip order: the primary key, (clip, slot) and rank_order indexes then grow at
        -- their right edge instead of taking inserts all over their pages.
        ORDER BY t.clip_id, s.n
    """
    params = {"ds": dataset.pk, "after": after, "k": k}
    if first_build:
        try:
            with transaction.atomic():
                cur.execute(sql, params)
                return cur.rowcount
        except IntegrityError:
            pass
    cur.execute(sql + " ON CONFLICT (clip_id, slot) DO NOTHING", params)
    return cur.rowcount


def _slots_trim(cur, *, dataset: Dataset, k: int) -> int:
    """Overlap lowered: drop the open slots beyond k (finished ones stay as history)."""
    cur.execute(
        f"DELETE FROM {QueueSlot._meta.db_table} WHERE dataset_id = %s AND slot >= %s "
        "AND done_by_id IS NULL",
        [dataset.pk, k],
    )
    return cur.rowcount


def _slots_rerank(cur, *, dataset: Dataset) -> int:
    """rank_uncertain of every slot whose clip's rank changed, from the staging table (one
    hash join). Rows whose rank is unchanged are not written: each written row is a new row
    version with an entry in each of the table's indexes (no HOT update: an indexed column
    changes). Leases and done_by are other columns: untouched. Returns how many changed."""
    cur.execute(
        f"""
        UPDATE {QueueSlot._meta.db_table} s SET rank_uncertain = t.rank
        FROM {_STAGE} t
        WHERE s.clip_id = t.clip_id AND s.dataset_id = %s
          AND s.rank_uncertain IS DISTINCT FROM t.rank
        """,
        [dataset.pk],
    )
    return cur.rowcount


def queue_sync(*, dataset: Dataset, force: bool = False) -> bool:
    """Bring the dataset's queue slots up to date with its clips, its overlap
    (required_reviews) and its finished run that counts (pipeline.selectors). Cheap when
    nothing changed (one indexed query); otherwise, in one transaction: the ranks into a
    staging table, then one set-based statement per change (see bench/bench_review_queue.py
    for the figures at 2M clips; queue_next_clip hands big refreshes to a Celery task).
    A failure rolls it all back: the old slots stay. Returns True if it refreshed."""
    freshness = queue_freshness(dataset=dataset)
    if freshness is None or (freshness.fresh and not force):
        return False
    max_position, k, run_id = freshness.wanted
    steps: dict[str, float] = {}
    t_start = t = time.perf_counter()

    def step(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        steps[name] = round(now - t, 3)
        t = now

    with transaction.atomic(), connection.cursor() as cur:
        # One refresh per dataset at a time; the others wait, then find it done.
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_QUEUE_LOCK_NS, dataset.pk])
        # The slots' dataset column has no foreign key constraint (review.models.QueueSlot):
        # this lock keeps the dataset from being deleted until the slots are committed.
        cur.execute(f"SELECT 1 FROM {Dataset._meta.db_table} WHERE id = %s FOR KEY SHARE",
                    [dataset.pk])
        if cur.fetchone() is None:
            return False  # deleted meanwhile
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
        insert = max_position > after
        changed = 0
        with _session_settings(cur, _BULK_SETTINGS):
            if insert or rerank:
                # One computation serves both: a re-rank needs every clip's rank.
                rank_sql, rank_params = _uncertain_rank_sql(run_id)
                _rank_stage(cur, dataset=dataset, after=-1 if rerank else after,
                            rank_sql=rank_sql, rank_params=rank_params)
                step("ranks")
            if insert:
                changed += _slots_insert(cur, dataset=dataset, after=after, k=k,
                                         first_build=first_build)
                step("insert")
            if k < state.required_reviews:
                changed += _slots_trim(cur, dataset=dataset, k=k)
                step("trim")
            if rerank:
                changed += _slots_rerank(cur, dataset=dataset)
                step("rerank")
        if changed > 10_000:
            # Fresh statistics after bulk changes, so the pick's plan stays an index walk.
            cur.execute(f"ANALYZE {QueueSlot._meta.db_table}")
            step("analyze")
        state.max_position, state.required_reviews, state.run_id = max_position, k, run_id
        state.refreshed_at = timezone.now()
        state.save()
    # COMMIT checks the new slots' foreign keys (deferred constraints).
    step("commit")
    logger.info("queue refresh of dataset %s: %d slots changed in %.1f s %s", dataset.pk,
                changed, time.perf_counter() - t_start, steps)
    last_refresh_steps.clear()
    last_refresh_steps.update(steps)
    return True


# The step timings of the last refresh in this process (seconds), for the benchmark.
last_refresh_steps: dict[str, float] = {}


# Up to this many clips a stale queue is refreshed inside the pick; beyond, the pick uses
# the slots as they are and a Celery task refreshes them (a re-rank of 2M clips takes
# tens of seconds, too long for a request).
INLINE_REFRESH_MAX_CLIPS = 50_000
_REFRESH_ENQUEUE_EVERY_S = 30.0
_refresh_enqueued_at: dict[int, float] = {}


def queue_vacuum() -> None:
    """VACUUM ANALYZE the slot table, outside any transaction. After a refresh that touched
    millions of slots the dead index entries at the front of the queue make each pick step
    over them until a vacuum (measured on 2M clips: p50 46 ms before, 2.7 ms after)."""
    if connection.in_atomic_block:
        return  # VACUUM cannot run in a transaction; autovacuum will do it
    with connection.cursor() as cur:
        cur.execute(f"VACUUM (ANALYZE) {QueueSlot._meta.db_table}")


def queue_refresh_in_background(*, dataset: Dataset) -> bool:
    """What the Celery task and the management command run: refresh, then vacuum when the
    dataset is big enough for dead index entries to matter."""
    changed = queue_sync(dataset=dataset)
    if changed:
        freshness = queue_freshness(dataset=dataset)
        if freshness and freshness.wanted[0] >= INLINE_REFRESH_MAX_CLIPS:
            queue_vacuum()
    return changed


def queue_refresh_for_pick(dataset: Dataset) -> None:
    freshness = queue_freshness(dataset=dataset)
    if freshness is None or freshness.fresh:
        return
    if freshness.built is None or freshness.wanted[0] < INLINE_REFRESH_MAX_CLIPS:
        queue_sync(dataset=dataset)  # first build, or small: do it now
        return
    last = _refresh_enqueued_at.get(dataset.pk, 0.0)
    if time.monotonic() - last > _REFRESH_ENQUEUE_EVERY_S:
        from .tasks import queue_sync_task

        _refresh_enqueued_at[dataset.pk] = time.monotonic()
        transaction.on_commit(lambda: queue_sync_task.delay(dataset.pk))


def queue_next_clip(*, dataset: Dataset, reviewer, lease: timedelta = LEASE,
                    rng=None) -> Clip | None:
    """The clip this reviewer should review next in the dataset, leased to them.

    Their own unexpired lease comes first (a reload or a second "Start reviewing" gives the
    same clip). Otherwise the first free slot in the dataset's priority order; a clip with
    k required reviews has k slots, so up to k reviewers get it at once and no more.
    At Dataset.gold_rate a gold clip is served instead (review.gold_queue; ``rng`` is
    its random source, for tests)."""
    from .gold_queue import gold_next_clip_id

    gold_clip_id = gold_next_clip_id(dataset=dataset, reviewer=reviewer, lease=lease, rng=rng)
    if gold_clip_id is not None:
        return Clip.objects.select_related("dataset").get(pk=gold_clip_id)
    queue_refresh_for_pick(dataset)
    now = timezone.now()
    with transaction.atomic():
        mine = (
            QueueSlot.objects.select_for_update(skip_locked=True)
            .filter(dataset=dataset, leased_to=reviewer, done_by__isnull=True,
                    lease_expires_at__gt=now)
            .order_by("lease_expires_at")
            .first()
        )
        if mine is not None:
            slot_id, clip_id = mine.pk, mine.clip_id
        else:
            column = RANK_COLUMNS.get(dataset.review_priority, "rank_order")
            with connection.cursor() as cur:
                cur.execute(
                    queue_pick_sql(column, lock=True),
                    {"ds": dataset.pk, "me": reviewer.pk, "now": now, "exclude": 0},
                )
                row = cur.fetchone()
            if row is None:
                return None
            slot_id, clip_id = row
        QueueSlot.objects.filter(pk=slot_id).update(
            leased_to=reviewer, lease_expires_at=now + lease
        )
    return Clip.objects.select_related("dataset").get(pk=clip_id)


def queue_release(*, clip: Clip, reviewer) -> int:
    """Give back the reviewer's lease on a clip without finishing it."""
    return QueueSlot.objects.filter(clip=clip, leased_to=reviewer, done_by__isnull=True).update(
        leased_to=None, lease_expires_at=None
    )


@transaction.atomic
def dataset_review_settings_update(
    *, dataset: Dataset, review_priority: str, required_reviews: int
) -> Dataset:
    """Curator's choice of queue order and overlap (the slots follow at the next pick)."""
    dataset.review_priority = Dataset.ReviewPriority(review_priority).value
    if required_reviews < 1:
        raise ValueError("required_reviews must be at least 1")
    dataset.required_reviews = required_reviews
    dataset.save(update_fields=["review_priority", "required_reviews"])
    return dataset

