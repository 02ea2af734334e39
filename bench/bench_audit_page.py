"""The audit page at 2M clips: curators open it while it reads a stored snapshot.

On the 2,041,789-clip benchmark dataset (bench/scale_db.py: ~10M candidates, of which ~5.8M
kept by the run, 50,000 decisions):

1. computes the audit snapshot against the dataset's latest run (the Celery task's body,
   called in this process); the first time this computes the base (every clip as if
   nobody had decided: ``audit_snapshot_base_s_2m`` when it did); then a reviewer's
   session of decisions comes in (AFTER_DECISIONS_CLIPS clips decided on every candidate)
   and the refresh the page then asks for is timed: ``audit_snapshot_compute_s_2m`` (the
   audit's lag behind decisions; goal <= 60 s); the added decisions are deleted at the end;
   ``--compare-app-dir DIR`` also times another checkout's dataset_audit on the same
   database (an export of main: ``git archive main | tar -x -C DIR``), the computation the
   page ran on every load before;
2. times the first page of the adjudication queue (detail only);
3. serves the app with gunicorn (2 sync workers) and lets ``--clients`` curators (2) load
   the audit page in a closed loop, each as fast as it answers, for ``--duration`` seconds
   after ``--warmup``: ``audit_page_p95_ms_2m`` (target <= 1,000 ms) and the p50.

Usage: python bench/bench_audit_page.py [--quick] [--clients 2] [--duration 40]
           [--compare-app-dir DIR] [--no-record]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
from bench import scale_db  # noqa: E402
from bench.common import BENCH_DB, loadavg, machine, median, pct, record  # noqa: E402
from bench.contention import Watch, wait_for_quiet  # noqa: E402

TARGET_P95_MS = 1000
CURATOR_PREFIX = "bench_curator"
AFTER_DECISIONS_CLIPS = 200
AFTER_DECISIONS_USER = "bench_audit_reviewer"
# The figure before the incremental snapshot (issue 18), on the same kind of machine.
PREVIOUS_COMPUTE_S = 264.6


def add_decisions(dataset_id: int, run_id: int, clips: int) -> int:
    """A reviewer decides every selected candidate of ``clips`` undecided clips (with the
    log entries the page counts as "decisions since"); returns how many decisions."""
    from django.db import connection

    from bench.scale_db import seed_users

    user = seed_users(AFTER_DECISIONS_USER, 1)[0]
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH picked AS (
                SELECT c.id FROM relabel_app_clip c
                WHERE c.dataset_id = %(ds)s AND NOT EXISTS (
                    SELECT 1 FROM review_decision d WHERE d.clip_id = c.id)
                ORDER BY c.position DESC LIMIT %(n)s),
            made AS (
                INSERT INTO review_decision (clip_id, dataset_id, label_id, reviewer_id, verdict,
                                             note, created_at, updated_at)
                SELECT k.clip_id, %(ds)s, k.label_id, %(me)s,
                       CASE WHEN k.kept THEN 'accept' ELSE 'reject' END, '', now(), now()
                FROM pipeline_candidate k JOIN picked p ON p.id = k.clip_id
                WHERE k.run_id = %(run)s AND k.selected
                RETURNING clip_id, label_id, verdict, created_at)
            INSERT INTO review_decisionlog (clip_id, label_id, reviewer_id, action,
                before_verdict, before_note, after_verdict, after_note, created_at)
            SELECT clip_id, label_id, %(me)s, 'record', '', '', verdict, '', created_at
            FROM made""",
            {"ds": dataset_id, "run": run_id, "me": user, "n": clips})
        return cur.rowcount


def remove_added_decisions() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for table in ("review_decisionlog", "review_decision"):
            cur.execute(f"DELETE FROM {table} WHERE reviewer_id IN (SELECT id FROM auth_user "
                        "WHERE username LIKE %s)", [AFTER_DECISIONS_USER + "%"])


def curators(n: int) -> list:
    from relabel_app.roles import ensure_role_groups
    from tests.factories import UserFactory

    ensure_role_groups()
    return [UserFactory(username=f"{CURATOR_PREFIX}{i}", role="curator") for i in range(n)]


def compare_other_app(app_dir: Path, dataset_id: int, run_id: int) -> float | None:
    """Seconds another checkout's dataset_audit takes on the same database (best of one)."""
    code = (
        "import time, django; django.setup();"
        "from curation.audits import dataset_audit;"
        "from relabel_app.models import Dataset; from pipeline.models import PipelineRun;"
        f"ds = Dataset.objects.get(pk={dataset_id}); run = PipelineRun.objects.get(pk={run_id});"
        "t0 = time.perf_counter(); dataset_audit(dataset=ds, run=run);"
        "print('SECONDS', time.perf_counter() - t0)"
    )
    env = dict(os.environ, PYTHONPATH=str(app_dir), RELABEL_DATABASE_NAME=BENCH_DB,
               DJANGO_SETTINGS_MODULE="relabel_app.settings.dev")
    out = subprocess.run([sys.executable, "-c", code], cwd=app_dir, env=env,
                         capture_output=True, text=True, timeout=1800)
    for line in out.stdout.splitlines():
        if line.startswith("SECONDS"):
            return float(line.split()[1])
    print(f"  the other checkout failed: {out.stderr[-2000:]}")
    return None


def load_loop(port: int, path: str, session: str, stop: threading.Event, t_measure: float,
              out: list[float], errors: list[str]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            c.request("GET", path, headers={"Cookie": f"sessionid={session}",
                                            "Host": "127.0.0.1"})
            r = c.getresponse()
            body = r.read()
            c.close()
        except OSError as e:
            errors.append(str(e))
            continue
        dt = (time.perf_counter() - t0) * 1000
        if r.status != 200 or b"Computed at" not in body:
            errors.append(f"HTTP {r.status}")
        elif t0 >= t_measure:
            out.append(dt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the 100,000-clip bench_quick")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--duration", type=float, default=40)
    ap.add_argument("--wait-quiet", type=float, default=120)
    ap.add_argument("--compare-app-dir", type=Path)
    ap.add_argument("--reuse-snapshot", action="store_true",
                    help="load the page against the stored snapshot when there is one "
                         "(no computation; its earlier time is reported)")
    ap.add_argument("--with-base", action="store_true",
                    help="drop the stored base first, so the first computation computes it "
                         "(audit_snapshot_base_s_2m)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scale_db.setup_django()
    details = scale_db.build(quick=args.quick)
    from django.db import connection

    from bench.bench_review_http import new_session, start_server
    from curation.adjudication_queue import adjudication_queue, queue_filter_for
    from curation.resolution import latest_run
    from curation.snapshots import (
        audit_snapshot_compute,
        audit_snapshot_get,
        audit_snapshot_request,
    )
    from relabel_app.models import Dataset

    suffix = "_quick" if args.quick else "_2m"
    ds = Dataset.objects.get(pk=details["dataset_id"])
    run = latest_run(ds)
    print(f"machine: {machine()}")
    print(f"dataset {ds.name}: {details['clips']:,} clips, {details['candidates']:,} "
          f"candidates; run #{run.pk}; database {connection.settings_dict['NAME']}")
    if args.wait_quiet > 0:
        cores = wait_for_quiet(max_wait_s=args.wait_quiet)
        print(f"other processes used {cores:.2f} cores; load average {loadavg()}")

    w = Watch()
    snap = audit_snapshot_get(dataset=ds, run=run)
    if args.with_base and snap is not None:
        from curation.models import AuditSnapshot

        AuditSnapshot.objects.filter(pk=snap.pk).update(base_tallies=None, base_key=None)
        snap.refresh_from_db()
    base_s = None
    if not (args.reuse_snapshot and snap is not None and snap.status == "done"):
        had_base = snap is not None and snap.base_tallies is not None
        snap = audit_snapshot_request(dataset=ds, run=run)
        snap = audit_snapshot_compute(snapshot_id=snap.pk)
        first_s = snap.compute_seconds
        if not had_base or snap.base_tallies is None:
            base_s = first_s
        print(f"first snapshot computation: {first_s:.1f} s (status {snap.status}; "
              f"{'with' if base_s else 'without'} the base)")
    else:
        print(f"reusing the snapshot computed at {snap.computed_at}")
    try:
        added = add_decisions(ds.pk, run.pk, AFTER_DECISIONS_CLIPS)
        snap = audit_snapshot_request(dataset=ds, run=run)
        snap = audit_snapshot_compute(snapshot_id=snap.pk)
    finally:
        remove_added_decisions()
    compute_s = snap.compute_seconds
    other_cores = w.other_cores()
    print(f"refresh after {added:,} new decisions on {AFTER_DECISIONS_CLIPS} clips: "
          f"{compute_s:.1f} s (status {snap.status}; other processes used {other_cores:.2f} "
          f"cores meanwhile; before the incremental snapshot: {PREVIOUS_COMPUTE_S} s)")
    kept = snap.figures["label_counts"]["run"]["labels"]
    print(f"  the run keeps {kept:,} labels on {snap.figures['label_counts']['run']['clips']:,}"
          " clips")
    main_s = None
    if args.compare_app_dir:
        main_s = compare_other_app(args.compare_app_dir.resolve(), ds.pk, run.pk)
        if main_s is not None:
            print(f"the other checkout's dataset_audit ({args.compare_app_dir}): {main_s:.1f} s")

    t0 = time.perf_counter()
    q = adjudication_queue(f=queue_filter_for(dataset=ds, run=run))
    queue_s = time.perf_counter() - t0
    print(f"adjudication queue, first page: {queue_s * 1000:.0f} ms ({q.total:,} clips)")

    sessions = [new_session(u) for u in curators(args.clients)]
    connection.close()
    tmp = Path(tempfile.mkdtemp(prefix="bench_audit_page_"))
    server = start_server(args.workers, 1, 600, tmp)
    path = f"/curation/dataset/{ds.name}/audit/?run={run.pk}"
    latencies: list[float] = []
    errors: list[str] = []
    try:
        stop = threading.Event()
        t_measure = time.perf_counter() + args.warmup
        per_client = [[] for _ in sessions]
        threads = [threading.Thread(target=load_loop, args=(server.port, path, s, stop,
                                                            t_measure, out, errors))
                   for s, out in zip(sessions, per_client, strict=True)]
        w = Watch()
        for t in threads:
            t.start()
        time.sleep(args.warmup + args.duration)
        stop.set()
        for t in threads:
            t.join()
        machine_cores = w.machine_cores()
        latencies = [x for out in per_client for x in out]
    finally:
        server.stop()
    if errors:
        print(f"errors: {len(errors)}: {errors[:5]}")
    if not latencies:
        raise SystemExit("no page load measured")
    p50, p95 = median(latencies), pct(latencies, 95)
    print(f"audit page, {args.clients} curators at once, {len(latencies)} loads: "
          f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {max(latencies):.0f} ms "
          f"(target p95 <= {TARGET_P95_MS} ms; machine used {machine_cores:.2f} cores)")
    extra = {
        "clips": details["clips"], "candidates": details["candidates"], "run_kept_labels": kept,
        "snapshot_compute_s": round(compute_s, 2),
        "snapshot_base_s": round(base_s, 2) if base_s is not None else None,
        "decisions_added_before_refresh": added,
        "previous_snapshot_compute_s": PREVIOUS_COMPUTE_S,
        "previous_audit_compute_s": round(main_s, 2) if main_s is not None else None,
        "adjudication_queue_first_page_ms": round(queue_s * 1000, 1),
        "page_loads": len(latencies), "page_p50_ms": round(p50, 1),
        "page_max_ms": round(max(latencies), 1), "clients": args.clients,
        "gunicorn_workers": args.workers, "errors": len(errors),
        "other_cores_during_snapshot": round(other_cores, 2), "load_average": loadavg(),
    }
    print(json.dumps(extra, indent=2))
    if not args.no_record:
        figures = {f"audit_page_p95_ms{suffix}": (p95, "ms"),
                   f"audit_snapshot_compute_s{suffix}": (compute_s, "s")}
        if base_s is not None:
            figures[f"audit_snapshot_base_s{suffix}"] = (base_s, "s")
        record(figures,
               {f"bench_audit_page{suffix}": extra})


if __name__ == "__main__":
    main()
