"""Review queue and clip page at scale (service level, no HTTP): a dataset of N clips (2M by
default) with 2 original labels and 4 selected candidates each (a finished run), then

- the first queue build and the re-rank after a new run (queue_sync), each with its
  steps (review.queue.last_refresh_steps: ranks into the staging table, insert or update,
  commit with its deferred foreign key checks); the new run has the same candidates, so
  that re-rank writes no slot: a second one after every slot's rank was moved measures a
  re-rank that rewrites all 2M (review_queue_rerank_all_changed_2M_s),
- next-clip picks (queue_next_clip + clip_finish) by 20 reviewers in turn, with the first
  10% of the queue already finished, p50/p95 of the pick,
- clip_page_data (the clip page's reads) p50/p95.

It does not measure HTTP round trips under gunicorn with concurrent clients (the issue's
targets); this is the database side those numbers rest on.
Usage: python bench/bench_review_queue.py [--quick] [--clips N] [--picks N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("RELABEL_BENCH_DB", "relabel_bench_review")
from bench.common import ensure_bench_database, loadavg, machine, record  # noqa: E402

NAME = "bench_queue"
# The figures before the set-based refresh (staging table, plain insert, no per-row dataset
# check): as recorded in bench/results.json, and re-measured on this machine just before
# (2 cores, shared with other work; old code, same dataset).
OLD = {"recorded": {"review_queue_build_2M_s": 119.888, "review_queue_rerank_2M_s": 142.307},
       "remeasured_e7fca08": {"review_queue_build_2M_s": 119.9, "review_queue_rerank_2M_s": 50.9,
                              "review_pick_p95_ms": 18.28, "load_average": "4.1 to 7.7"}}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def build_dataset(n: int) -> None:
    from django.db import connection

    from pipeline.models import Candidate, ClipResult, PipelineRun
    from relabel_app.models import Clip, ClipLabel, Dataset, Label

    Dataset.objects.filter(name=NAME).delete()
    ds = Dataset.objects.create(name=NAME, review_priority="uncertain")
    labels = list(Label.objects.filter(index__isnull=False).order_by("index")
                  .values_list("id", flat=True))
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {Clip._meta.db_table} (dataset_id, ytid, start_s, end_s, position, "
            "audio_path, audio_status, audio_error) "
            "SELECT %s, lpad(to_hex(g), 11, '0'), 0, 10, g, '', 'missing', '' "
            "FROM generate_series(0, %s - 1) g",
            [ds.pk, n],
        )
        cur.execute(
            f"INSERT INTO {ClipLabel._meta.db_table} (clip_id, label_id) "
            f"SELECT c.id, (%s::bigint[])[1 + (c.position * 7 + k) %% %s] "
            f"FROM {Clip._meta.db_table} c CROSS JOIN generate_series(0, 1) k "
            "WHERE c.dataset_id = %s ON CONFLICT DO NOTHING",
            [labels, len(labels), ds.pk],
        )
        run = PipelineRun.objects.create(dataset=ds, profile_name="bench", status="done",
                                         config={"filter": {"threshold": 0.25}})
        cur.execute(
            f"INSERT INTO {ClipResult._meta.db_table} (run_id, clip_id, caption_status, "
            "predict_status, match_status, filter_status, caption, summary, predict, "
            "free_labels, best_attempt, error_stage, error, timings, updated_at) "
            "SELECT %s, c.id, 'done', 'done', 'done', 'done', '{}', '', '{}', '[]', 0, '', "
            f"'', '{{}}', now() FROM {Clip._meta.db_table} c WHERE c.dataset_id = %s",
            [run.pk, ds.pk],
        )
        cur.execute(
            f"INSERT INTO {Candidate._meta.db_table} (run_id, clip_id, label_id, attempt, "
            "tier, phrase, match_score, clap_score, kept, selected) "
            "SELECT %s, c.id, (%s::bigint[])[1 + (c.position * 5 + k * 3) %% %s], 0, "
            "'exact', 'phrase', 1, s.score, s.score >= 0.25, true "
            f"FROM {Clip._meta.db_table} c CROSS JOIN generate_series(0, 3) k "
            "CROSS JOIN LATERAL (SELECT random() * 0.6 AS score) s "
            "WHERE c.dataset_id = %s ON CONFLICT DO NOTHING",
            [run.pk, labels, len(labels), ds.pk],
        )
        cur.execute("ANALYZE")
    print(f"dataset: {n:,} clips, 2 originals and 4 candidates each, "
          f"in {time.perf_counter() - t0:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100,000 clips")
    ap.add_argument("--clips", type=int, default=2_000_000)
    ap.add_argument("--picks", type=int, default=2000)
    ap.add_argument("--reuse", action="store_true", help="keep an existing bench dataset")
    args = ap.parse_args()
    n = 100_000 if args.quick else args.clips
    ensure_bench_database()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection

    from pipeline.models import PipelineRun
    from relabel_app.models import Clip, Dataset
    from review import queue as review_queue
    from review.finishing import clip_finish
    from review.models import ClipReview, QueueSlot
    from review.queue import queue_next_clip, queue_sync
    from review.selectors import clip_page_data

    print(f"machine: {machine()}")
    ds = Dataset.objects.filter(name=NAME).first()
    if not (args.reuse and ds and Clip.objects.filter(dataset=ds).count() == n):
        build_dataset(n)
        ds = Dataset.objects.get(name=NAME)

    QueueSlot.objects.filter(dataset=ds).delete()
    ClipReview.objects.filter(dataset=ds).delete()
    from review.models import QueueState

    QueueState.objects.filter(dataset=ds).delete()
    loads = {"build": loadavg()}
    t0 = time.perf_counter()
    queue_sync(dataset=ds)
    build_s = time.perf_counter() - t0
    steps = {"build": dict(review_queue.last_refresh_steps)}
    print(f"first queue build (slots + uncertainty ranks): {build_s:.1f} s {steps['build']} "
          f"(load {loads['build']})")

    # The run the queue was built from (with --reuse, not the dataset's first one: an
    # earlier benchmark moved the candidates on).
    old = QueueState.objects.get(dataset=ds).run
    run = PipelineRun.objects.get(pk=old.pk)
    run.pk, run.id = None, None
    run.save()  # a newer finished run with the same candidates: a full re-rank
    from pipeline.models import Candidate

    with connection.cursor() as cur:
        cur.execute(f"UPDATE {Candidate._meta.db_table} SET run_id = %s WHERE run_id = %s",
                    [run.pk, old.pk])
        from pipeline.models import ClipResult

        cur.execute(f"UPDATE {ClipResult._meta.db_table} SET run_id = %s WHERE run_id = %s",
                    [run.pk, old.pk])
    loads["rerank"] = loadavg()
    t0 = time.perf_counter()
    queue_sync(dataset=ds)
    rerank_s = time.perf_counter() - t0
    steps["rerank"] = dict(review_queue.last_refresh_steps)
    print(f"re-rank after a new run: {rerank_s:.1f} s {steps['rerank']} (load {loads['rerank']})")
    User = get_user_model()
    reviewers = [User.objects.get_or_create(username=f"bench{i}")[0] for i in range(20)]
    # The first 10% of the queue already finished (by reviewers who left).
    done_by = reviewers[0]
    with connection.cursor() as cur:
        cur.execute(
            f"""UPDATE {QueueSlot._meta.db_table} SET done_by_id = %s, done_at = now()
            WHERE id IN (SELECT id FROM {QueueSlot._meta.db_table} WHERE dataset_id = %s
                         ORDER BY rank_uncertain, clip_id, slot LIMIT %s)""",
            [done_by.pk, ds.pk, n // 10],
        )
        cur.execute("ANALYZE")
    def measure(count: int, offset: int) -> tuple[list[float], list[float]]:
        picks, pages = [], []
        for i in range(count):
            r = reviewers[(offset + i) % len(reviewers)]
            t0 = time.perf_counter()
            clip = queue_next_clip(dataset=ds, reviewer=r)
            picks.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            clip_page_data(clip=clip, reviewer=r)
            pages.append(time.perf_counter() - t0)
            clip_finish(clip=clip, reviewer=r)
        return picks, pages

    ms = 1000
    # Right after the bulk update: the finished slots' dead index entries are still there.
    cold, _ = measure(args.picks // 2, 0)
    print(f"pick, before any vacuum ({len(cold)} picks): p50 {statistics.median(cold) * ms:.2f} ms,"
          f" p95 {pct(cold, 95) * ms:.2f} ms")
    with connection.cursor() as cur:
        cur.execute(f"VACUUM ANALYZE {QueueSlot._meta.db_table}")
    picks, pages = measure(args.picks, args.picks // 2)
    print(f"pick, vacuumed as autovacuum keeps it ({len(picks)} picks): "
          f"p50 {statistics.median(picks) * ms:.2f} ms, p95 {pct(picks, 95) * ms:.2f} ms, "
          f"max {max(picks) * ms:.2f} ms")
    print(f"clip_page_data: p50 {statistics.median(pages) * ms:.2f} ms, "
          f"p95 {pct(pages, 95) * ms:.2f} ms")
    # Last (so the picks above meet the table as before): every slot's rank moved away
    # from what the run gives, then a re-rank: all 2M slots written, leases and finished
    # slots among them.
    with connection.cursor() as cur:
        cur.execute(f"UPDATE {QueueSlot._meta.db_table} SET rank_uncertain = rank_uncertain + 10 "
                    "WHERE dataset_id = %s", [ds.pk])
        cur.execute(f"VACUUM ANALYZE {QueueSlot._meta.db_table}")
    QueueState.objects.filter(dataset=ds).update(run=None)
    loads["rerank_all_changed"] = loadavg()
    t0 = time.perf_counter()
    queue_sync(dataset=ds)
    rerank_all_s = time.perf_counter() - t0
    steps["rerank_all_changed"] = dict(review_queue.last_refresh_steps)
    print(f"re-rank rewriting every slot: {rerank_all_s:.1f} s {steps['rerank_all_changed']} "
          f"(load {loads['rerank_all_changed']})")

    if not args.quick:
        record({
            "review_queue_build_2M_s": (build_s, "s"),
            "review_queue_rerank_2M_s": (rerank_s, "s"),
            "review_queue_rerank_all_changed_2M_s": (rerank_all_s, "s"),
            "review_pick_p50_ms": (statistics.median(picks) * ms, "ms"),
            "review_pick_p95_ms": (pct(picks, 95) * ms, "ms"),
            "review_pick_unvacuumed_p95_ms": (pct(cold, 95) * ms, "ms"),
            "review_clip_page_data_p95_ms": (pct(pages, 95) * ms, "ms"),
        }, extra={"review_queue": f"{n} clips, 20 reviewers in turn, service level, no HTTP",
                  "review_queue_refresh": {
                      "steps_s": steps, "load_average": {**loads, "end": loadavg()},
                      "before": OLD,
                      "note": "2 cores shared with other sessions' work: contended figures"}})


if __name__ == "__main__":
    main()
