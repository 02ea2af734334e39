"""Threshold sets at scale: fit per-class CLAP thresholds from the seeded decisions of the
scale dataset (bench/scale_db.py: 2,041,789 clips, ~10M scored candidates, decisions on
10,000 clips), then apply them to the run's stored scores as a derived run (INSERT ...
SELECT: 2M clip results and 10M candidates, kept recomputed in SQL).

Records apply_thresholds_2m_s (the whole threshold_set_apply call, commit included) and
fit_thresholds_2m_s; the CPU time of the database backend during the apply goes to
_details (on a shared machine the wall time also counts the other processes' share) (bench_quick with --quick: *_quick names, nothing else changes).
The derived runs of earlier repetitions are deleted (raw SQL, not timed) before each one
and at the end, so the database keeps its size.
Usage: python bench/bench_thresholds.py [--quick] [--reps N] [--no-record]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import scale_db  # noqa: E402
from bench.common import loadavg, machine, record  # noqa: E402

SET_NAME = "bench_thresholds"


def backend_cpu_s() -> float | None:
    """CPU seconds (user + system) the database backend of this connection has used: on a
    shared machine, what the apply itself cost, whatever the other processes did. None when
    the server is not a local process we can read."""
    import os

    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drop_derived(run_id: int) -> int:
    """Delete the runs derived from ``run_id`` with raw SQL (the ORM would load 10M rows)."""
    from django.db import connection, transaction

    from pipeline.models import Candidate, ClipResult, OriginalLabelScore, PipelineRun

    ids = list(PipelineRun.objects.filter(source_run_id=run_id).values_list("id", flat=True))
    if not ids:
        return 0
    with transaction.atomic(), connection.cursor() as cur:
        for model in (Candidate, ClipResult, OriginalLabelScore):
            cur.execute(f"DELETE FROM {model._meta.db_table} WHERE run_id = ANY(%s)", [ids])
        cur.execute(f"DELETE FROM {PipelineRun._meta.db_table} WHERE id = ANY(%s)", [ids])
    with connection.cursor() as cur:
        cur.execute(f"VACUUM (ANALYZE) {Candidate._meta.db_table}")
        cur.execute(f"VACUUM (ANALYZE) {ClipResult._meta.db_table}")
    return len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the 100,000-clip bench_quick")
    ap.add_argument("--reps", type=int, default=1, help="applications to time (median kept)")
    ap.add_argument("--min-decisions", type=int, default=20)
    ap.add_argument("--parts", type=int, default=None,
                    help="connections copying at once (default: curation.thresholds.APPLY_PARTS)")
    ap.add_argument("--compare-one", action="store_true",
                    help="also time the one-connection copy (the code before issue 18) "
                         "on the same database, after the timed ones")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    scale_db.setup_django()
    details = scale_db.build(quick=args.quick)
    from django.db import connection

    from curation.thresholds import (
        APPLY_PARTS,
        derived_run_kept_counts,
        threshold_set_apply,
        threshold_set_fit,
    )
    from pipeline.models import PipelineRun
    from relabel_app.models import Dataset

    run = PipelineRun.objects.get(pk=details["run_id"])
    dataset = Dataset.objects.get(pk=details["dataset_id"])
    print(f"machine: {machine()}")
    print(f"dataset {dataset.name}: {details['clips']:,} clips, {details['candidates']:,} "
          f"candidates of run {run.pk}; database {connection.settings_dict['NAME']}; "
          f"load average {loadavg()}")
    dropped = drop_derived(run.pk)
    if dropped:
        print(f"deleted {dropped} derived run(s) of earlier runs (not timed)")

    t0 = time.perf_counter()
    ts = threshold_set_fit(dataset=dataset, run=run, name=SET_NAME,
                           min_decisions=args.min_decisions)
    fit_s = time.perf_counter() - t0
    ev = ts.evaluation
    print(f"fit: {fit_s:.2f} s; set {ts.name} v{ts.version}: {ev['samples']:,} decided "
          f"candidates, {ts.classes.count()} classes with their own threshold, global "
          f"{ts.global_threshold:.4f}; held-out F1 global {ev['global']['f1']:.3f} vs "
          f"per-class {ev['per_class']['f1']:.3f}")

    parts = args.parts or APPLY_PARTS
    times, cpus = [], []
    for rep in range(args.reps):
        if rep:
            drop_derived(run.pk)
        print(f"apply {rep + 1}/{args.reps} ({parts} connections): load average {loadavg()}",
              flush=True)
        cpu0 = backend_cpu_s()
        t0 = time.perf_counter()
        derived = threshold_set_apply(run=run, threshold_set=ts, parts=parts)
        dt = time.perf_counter() - t0
        cpu1 = backend_cpu_s()
        times.append(dt)
        cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        if cpu is not None:
            cpus.append(cpu)
        n, kept = derived_run_kept_counts(derived)
        print(f"  derived run {derived.pk}: {n:,} candidates, {kept:,} kept in {dt:.1f} s "
              f"(database backend CPU {cpu if cpu is not None else float('nan'):.1f} s; load "
              f"average {loadavg()})", flush=True)
    apply_s = statistics.median(times)
    drop_derived(run.pk)
    one_s = None
    if args.compare_one:
        print(f"apply with one connection (before issue 18): load average {loadavg()}",
              flush=True)
        t0 = time.perf_counter()
        threshold_set_apply(run=run, threshold_set=ts, parts=1)
        one_s = time.perf_counter() - t0
        print(f"  {one_s:.1f} s (load average {loadavg()})")
        drop_derived(run.pk)
    suffix = "_quick" if args.quick else "_2m"
    print(f"apply_thresholds{suffix}_s = {apply_s:.1f} (target < 60 at 2M clips); "
          f"fit_thresholds{suffix}_s = {fit_s:.2f}")
    if not args.no_record:
        record({f"apply_thresholds{suffix}_s": (apply_s, "s"),
                f"fit_thresholds{suffix}_s": (fit_s, "s")},
               extra={"thresholds": {"clips": details["clips"],
                                     "candidates": details["candidates"],
                                     "apply_times_s": [round(t, 2) for t in times],
                                     "apply_connections": parts,
                                     # the main connection's backend only (the parts run
                                     # in backends of their own)
                                     "apply_backend_cpu_s": [round(c, 2) for c in cpus],
                                     "apply_one_connection_s": (round(one_s, 2)
                                                                if one_s is not None else None),
                                     "apply_before_issue_18_s": 85.7,
                                     "decided_candidates": ev["samples"],
                                     "load_average_after": loadavg()}})


if __name__ == "__main__":
    main()
