"""Pipeline overhead per clip: the `tiny` profile through a real Celery worker subprocess
and PostgreSQL, on K synthetic clips (the demo synthesizer run with several seeds).

    overhead per clip = (run wall time from dispatch to done) / K
                        - mean over clips of the time inside model calls
                          (ClipResult.timings[stage]["model_s"], summed over the 4 stages)

The wall time ends at the run's ``finished_at`` (set by the worker as the last filter chunk
ends), so the parent's polling interval does not count. Before the measured runs a warm-up
run through the same worker loads every model and builds the per-process caches (class
text embeddings, the synonym index); the measured runs are the steady state. The worker
log's per-task runtimes split the overhead into: inside a stage's per-clip timing but
outside model calls (audio decoding, building the result), inside a task but outside
per-clip timing (each clip's result write in its own transaction, the chunk's queries,
the next stage's enqueue) and between tasks (broker and worker loop).

The setup comes from the environment like the app's: with no CELERY_BROKER_URL the
filesystem transport (here under data/broker/bench, apart from the demo's queue), with no
DATABASE_URL the embedded PostgreSQL. The database is ``relabel_bench`` (bench.common), for
the worker too. The figures are written under their plain names for whatever setup ran
(`_details` says which) and again with a suffix naming the setup, for comparisons.
With --profile-worker the worker runs under cProfile (slower: its figures are not
recorded) and the time inside the project's per-task steps, the database driver and the
broker is printed per clip.
Usage: python bench/bench_pipeline_overhead.py [--quick] [--clips K] [--reps N]
       [--profile-worker]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (  # noqa: E402
    BENCH_DB,
    ROOT,
    ensure_bench_database,
    machine,
    median,
    record,
)
from bench.contention import Watch, wait_for_quiet  # noqa: E402

DATASET = "bench_overhead"
STAGES = ("caption", "predict", "match", "filter")
TASK_LINE = re.compile(r"Task pipeline\.(\w+)\[[^\]]+\] succeeded in ([0-9.eE+-]+)s")
# Issue 6: "pipeline overhead <= 10 ms per clip", the whole chain's overhead per clip.
TARGET_MS_PER_CLIP = 10.0


def setup_label() -> tuple[str, str, str]:
    """(broker description, database description, results-name suffix)."""
    from django.conf import settings
    from django.db import connection

    url = settings.CELERY_BROKER_URL
    scheme = url.split(":", 1)[0]
    if scheme == "filesystem":
        broker = f"filesystem transport under {settings.BROKER_DIR}"
    else:
        broker = re.sub(r"//[^@/]*@", "//***@", url)
    s = connection.settings_dict
    external = bool(os.environ.get("DATABASE_URL"))
    db = (f"{'PostgreSQL from DATABASE_URL' if external else 'embedded PostgreSQL'} "
          f"at {s['HOST'] or 'local socket'}:{s['PORT']} / {s['NAME']}")
    suffix = ("" if scheme == "filesystem" else f"_{scheme}") + ("_dburl" if external else "")
    return broker, db, suffix


def ensure_dataset(k: int):
    """The bench dataset with K clips (16 per synthesizer seed) and matched audio."""
    from django.conf import settings

    from relabel_app.audio_matching import dataset_match_audio
    from relabel_app.demo_audio import demo_segments_csv, synthesize_demo_clips
    from relabel_app.models import Clip, Dataset
    from relabel_app.segment_import import segments_import

    out = settings.AUDIO_ROOT / DATASET
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for seed in range(math.ceil(k / 16)):
        clips += synthesize_demo_clips(out, seed=1000 + seed)
    csv = demo_segments_csv(clips).encode()
    segments_import(source=io.BytesIO(csv), source_name="bench clips", dataset_name=DATASET,
                    audio_root=str(out))
    Dataset.objects.filter(name=DATASET).update(synthetic=True)
    dataset_match_audio(dataset_name=DATASET)
    ds = Dataset.objects.get(name=DATASET)
    ytids = [c.ytid for c in clips]
    ids = list(Clip.objects.filter(dataset=ds, ytid__in=ytids, audio_status="ok")
               .order_by("id").values_list("id", flat=True))
    if len(ids) < len(ytids):
        raise SystemExit(f"only {len(ids)} of {len(ytids)} bench clips have readable audio")
    return ds, ids


def purge_queues() -> None:
    """Drop messages a killed earlier run may have left on the bench broker."""
    from pipeline.worker import all_queues
    from relabel_app.celery import app

    # kombu warns that a filesystem:// URL names no host; that is how it is meant.
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)
    with app.connection_for_write() as conn:
        ch = conn.default_channel
        for q in all_queues():
            with contextlib.suppress(Exception):  # a queue that does not exist yet
                ch.queue_purge(q)


def task_runtimes(log: Path, offset: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {s: [] for s in STAGES}
    with open(log, "rb") as f:
        f.seek(offset)
        for line in f.read().decode("utf-8", "replace").splitlines():
            m = TASK_LINE.search(line)
            if m and m.group(1) in out:
                out[m.group(1)].append(float(m.group(2)))
    return out


def start_profiled_worker(prof_out: Path, **kw):
    """pipeline.worker.start_worker's very command and environment, with the Python it
    runs replaced by a wrapper that runs the worker under cProfile."""
    from pipeline import worker as worker_mod

    wrapper = prof_out.with_suffix(".sh")
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cProfile -o "{prof_out}" "$@"\n')
    wrapper.chmod(0o755)
    real = sys.executable
    sys.executable = str(wrapper)
    try:
        return worker_mod.start_worker(**kw)
    finally:
        sys.executable = real


# (label, pstats pattern on "file:line(function)"), for --profile-worker.
PROFILE_ROWS = [
    ("task bodies (pipeline.tasks._run_stage)", r"pipeline/tasks\.py:\d+\(_run_stage\)"),
    ("  model calls (ModelTimer)", r"pipeline/execution\.py:\d+\(timed\)"),
    ("  per-clip result writes (stage_result_save)",
     r"pipeline/stage_io\.py:\d+\(stage_result_save\)"),
    ("  chunk's result query (_results)", r"pipeline/execution\.py:\d+\(_results\)"),
    ("  audio decoding (load_audio)", r"pipeline/audio\.py:\d+\(load_audio\)"),
    ("  backend lookup/load (stage_backend)", r"pipeline/stage_io\.py:\d+\(stage_backend\)"),
    ("  next stage enqueue (Task.apply_async)", r"celery/app/task\.py:\d+\(apply_async\)"),
    ("  run_finish_if_complete", r"pipeline/services\.py:\d+\(run_finish_if_complete\)"),
    ("waiting on PostgreSQL (psycopg wait)", r"psycopg/connection\.py:\d+\(wait\)"),
    ("broker: idle polling sleep (time.sleep)", r"[<{]built-in method time\.sleep[>}]"),
    ("worker loop total (synloop)", r"celery/worker/loops\.py:\d+\(synloop\)"),
]


def print_worker_profile(prof_out: Path, clips: int) -> None:
    import pstats

    stats = pstats.Stats(str(prof_out)).stats  # {(file, line, fn): (cc, nc, tt, ct, callers)}
    print(f"\nworker profile (cProfile; whole worker life, warm-up included; per clip over "
          f"{clips} clips; nested rows are part of the row above):")
    print(f"    {'':<44}{'calls':>8}{'total s':>10}{'ms/clip':>10}")
    for label, pat in PROFILE_ROWS:
        rx = re.compile(pat)
        calls = total = 0.0
        for (file, line, fn), (_cc, nc, _tt, ct, _callers) in stats.items():
            if rx.search(f"{file}:{line}({fn})"):
                calls += nc
                total += ct
        print(f"    {label:<44}{int(calls):>8}{total:>10.2f}{1000 * total / clips:>10.2f}")
    print("    (model loads in the warm-up are in _backend; the idle sleeps include the "
          "gaps between runs)")


def one_run(ds, clip_ids: list[int], worker, log: Path) -> dict:
    from django.utils import timezone

    from pipeline.models import ClipResult
    from pipeline.services import run_dispatch, run_get_or_create, run_wait

    run, _ = run_get_or_create(dataset=ds, profile="tiny", clip_ids=clip_ids, new=True)
    offset = log.stat().st_size
    watch = Watch()
    t_dispatch = timezone.now()
    run_dispatch(run=run)

    def alive(_p):
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with code {worker.returncode}; see {log}")

    p = run_wait(run=run, on_progress=alive, poll_s=0.25, timeout_s=900)
    run.refresh_from_db()
    if run.finished_at is None:
        raise SystemExit(f"run {run.pk} did not finish: {p}")
    wall = (run.finished_at - t_dispatch).total_seconds()
    busy = watch.machine_cores()
    time.sleep(0.3)  # let the worker write the last task's log line
    rows = list(ClipResult.objects.filter(run=run).values_list("timings", "error"))
    errors = [e for _, e in rows if e]
    if errors:
        raise SystemExit(f"{len(errors)} clips failed in run {run.pk}, e.g. {errors[0]}")
    n = len(rows)
    model = {s: sum(t[s]["model_s"] for t, _ in rows) / n for s in STAGES}
    stage_wall = {s: sum(t[s]["wall_s"] for t, _ in rows) / n for s in STAGES}
    tasks = task_runtimes(log, offset)
    return {"run": run.pk, "clips": n, "wall_s": wall, "model_s": model,
            "stage_wall_s": stage_wall, "task_s": {s: sum(v) / n for s, v in tasks.items()},
            "tasks": {s: len(v) for s, v in tasks.items()}, "machine_cores": busy}


def breakdown(r: dict) -> None:
    ms = 1000.0
    rows = [
        ("model calls (timings model_s)", {s: r["model_s"][s] for s in STAGES}),
        ("in stage, outside model calls", {s: r["stage_wall_s"][s] - r["model_s"][s]
                                           for s in STAGES}),
        ("in task, outside per-clip timing", {s: r["task_s"][s] - r["stage_wall_s"][s]
                                              for s in STAGES}),
    ]
    print(f"    {'ms per clip':<34}" + "".join(f"{s:>10}" for s in STAGES) + f"{'all':>10}")
    for name, vals in rows:
        print(f"    {name:<34}" + "".join(f"{ms * vals[s]:>10.2f}" for s in STAGES)
              + f"{ms * sum(vals.values()):>10.2f}")
    between = r["wall_s"] / r["clips"] - sum(r["task_s"].values())
    print(f"    {'between tasks (broker, worker loop)':<34}" + f"{'':>40}{ms * between:>10.2f}"
          f"   ({between * r['clips']:.2f} s per run)")
    print(f"    {'tasks run':<34}" + "".join(f"{r['tasks'][s]:>10}" for s in STAGES))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="32 clips, 2 runs")
    ap.add_argument("--clips", type=int, help="clips per run, rounded up to a multiple of 16 "
                    "(default 128, quick 32)")
    ap.add_argument("--reps", type=int, help="measured runs (default 3, quick 2)")
    ap.add_argument("--no-record", action="store_true", help="do not write bench/results.json")
    ap.add_argument("--wait-quiet", type=float, default=60.0,
                    help="wait up to this many seconds for other processes to go quiet")
    ap.add_argument("--profile-worker", action="store_true",
                    help="run the worker under cProfile and print where its time goes")
    args = ap.parse_args()
    if args.profile_worker:
        args.no_record = True
    k = args.clips or (32 if args.quick else 128)
    reps = args.reps or (2 if args.quick else 3)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    extra_env = {"RELABEL_DATABASE_NAME": BENCH_DB}
    if not os.environ.get("CELERY_BROKER_URL"):
        data = Path(os.environ.get("RELABEL_DATA_DIR", ROOT / "data"))
        os.environ.setdefault("RELABEL_BROKER_DIR", str(data / "broker" / "bench"))
        extra_env["RELABEL_BROKER_DIR"] = os.environ["RELABEL_BROKER_DIR"]
    ensure_bench_database()
    import django

    django.setup()
    from django.conf import settings

    from pipeline.models import PipelineRun
    from pipeline.tiny_models import ensure_tiny_models
    from pipeline.worker import start_worker

    broker, db, suffix = setup_label()
    print(f"machine: {machine()}")
    print(f"broker: {broker}")
    print(f"database: {db}")
    print(f"worker: one Celery worker subprocess (solo pool), RELABEL_TORCH_THREADS="
          f"{settings.TORCH_THREADS}")
    quiet = wait_for_quiet(args.wait_quiet)
    print(f"other processes: {quiet:.2f} cores busy before the start (load average "
          f"{os.getloadavg()[0]:.2f}); this benchmark's own processes (worker, database, "
          "poller) use up to about 1.3 cores, so more than that during a run means others "
          "competed")
    t0 = time.perf_counter()
    ensure_tiny_models(settings.MODEL_DIR / "tiny")
    ds, ids = ensure_dataset(k)
    ids = ids[:max(16, math.ceil(k / 16) * 16)]
    PipelineRun.objects.filter(dataset=ds).delete()
    purge_queues()
    print(f"dataset {DATASET}: {len(ids)} synthetic 10 s clips, tiny models ready "
          f"({time.perf_counter() - t0:.1f} s)")

    log = Path(tempfile.mkstemp(prefix="bench_worker_", suffix=".log")[1])
    prof_out = log.with_suffix(".prof")
    worker_args = {"log_file": log, "extra_env": extra_env, "hostname": "bench-overhead@%h"}
    if args.profile_worker:
        worker = start_profiled_worker(prof_out, **worker_args)
    else:
        worker = start_worker(**worker_args)
    results = []
    try:
        t0 = time.perf_counter()
        warm = one_run(ds, ids[:16], worker, log)
        print(f"warm-up run {warm['run']} (16 clips; worker start and model loads): "
              f"{time.perf_counter() - t0:.1f} s")
        for rep in range(reps):
            r = one_run(ds, ids, worker, log)
            results.append(r)
            model = sum(r["model_s"].values())
            over = r["wall_s"] / r["clips"] - model
            r["overhead_s"] = over
            print(f"\nrun {r['run']} (rep {rep + 1}): {r['clips']} clips in {r['wall_s']:.2f} s "
                  f"= {1000 * r['wall_s'] / r['clips']:.1f} ms per clip; model calls "
                  f"{1000 * model:.1f} ms per clip; overhead {1000 * over:.2f} ms per clip "
                  f"= {1000 * over / len(STAGES):.2f} ms per clip per stage; machine busy "
                  f"{r['machine_cores']:.2f} cores")
            breakdown(r)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except Exception:
                worker.kill()
                worker.wait()
    if args.profile_worker:
        print_worker_profile(prof_out, 16 + sum(r["clips"] for r in results))
        prof_out.unlink(missing_ok=True)
        prof_out.with_suffix(".sh").unlink(missing_ok=True)
    over = median([r["overhead_s"] for r in results])
    per_stage = over / len(STAGES)
    mid = sorted(results, key=lambda r: r["overhead_s"])[len(results) // 2]
    stage_over = {s: (mid["task_s"][s] - mid["model_s"][s]) * 1000 for s in STAGES}
    between = 1000 * (mid["wall_s"] / mid["clips"] - sum(mid["task_s"].values()))
    print(f"\npipeline_overhead_ms_per_clip{suffix} = {1000 * over:.2f} (median of {reps} runs "
          f"of {len(ids)} clips; target <= {TARGET_MS_PER_CLIP:g}: "
          f"{'met' if 1000 * over <= TARGET_MS_PER_CLIP else 'MISSED'})")
    print(f"pipeline_overhead_ms_per_clip_per_stage{suffix} = {1000 * per_stage:.2f}")
    print("per stage, median run (inside the stage's tasks, outside model calls, ms per clip): "
          + ", ".join(f"{s} {v:.2f}" for s, v in stage_over.items())
          + f"; between tasks {between:.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if not args.no_record:
        q = "_quick" if args.quick else ""
        figures = {}
        for sfx in dict.fromkeys(["", suffix]):
            figures[f"pipeline_overhead_ms_per_clip{sfx}{q}"] = (1000 * over, "ms/clip")
            figures[f"pipeline_overhead_ms_per_clip_per_stage{sfx}{q}"] = (
                1000 * per_stage, "ms/clip/stage")
        record(figures, extra={f"bench_pipeline_overhead{q}": {
            "broker": broker, "database": db, "clips": len(ids), "runs": reps,
            "torch_threads_worker": settings.TORCH_THREADS,
            "in_task_overhead_ms_per_clip": {s: round(v, 2) for s, v in stage_over.items()},
            "between_tasks_ms_per_clip": round(between, 2),
            "model_ms_per_clip": {s: round(1000 * mid["model_s"][s], 2) for s in STAGES},
        }})
    log.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
