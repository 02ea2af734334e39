"""Run every benchmark (each in its own subprocess), then print bench/results.json as a table.

A benchmark that fails prints its error and the others still run; the exit status is 1
when any failed. Called by `make bench` (`make bench QUICK=1` passes --quick).
Usage: python bench/run_all.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import RESULTS, ROOT, bench_env  # noqa: E402

BENCHMARKS = ["bench_import", "bench_export", "bench_clap", "bench_pipeline_overhead",
              "scale_db", "bench_review_http", "bench_audit_page", "bench_adjudication_queue",
              "bench_review_browser", "bench_thresholds", "bench_generation", "bench_search",
              "bench_quality", "bench_review_queue"]


def run_one(name: str, quick: bool) -> tuple[bool, float, str]:
    """(ok, seconds, last lines of output when it failed). Output streams through."""
    cmd = [sys.executable, str(ROOT / "bench" / f"{name}.py")] + (["--quick"] if quick else [])
    print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    tail: list[str] = []
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=bench_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
    except OSError as e:
        return False, 0.0, str(e)
    assert proc.stdout is not None
    for line in proc.stdout:
        print(line, end="", flush=True)
        tail = (tail + [line.rstrip()])[-15:]
    rc = proc.wait()
    dt = time.perf_counter() - t0
    return rc == 0, dt, "" if rc == 0 else f"exit status {rc}:\n    " + "\n    ".join(tail)


def table(since: datetime | None = None) -> None:
    """Every figure in bench/results.json; those not measured since `since` (by an earlier
    run, or by a benchmark not run now) are marked with their date."""
    try:
        data = json.loads(RESULTS.read_text())
    except (OSError, ValueError) as e:
        print(f"no readable {RESULTS}: {e}")
        return
    rows = [(k, v["value"], v["unit"], v.get("measured_at")) for k, v in sorted(data.items())
            if not k.startswith("_") and isinstance(v, dict) and "value" in v]
    w = max([len(r[0]) for r in rows] + [4])
    print(f"\n{'name':<{w}}  {'value':>14}  {'unit':<13}  measured")
    print(f"{'-' * w}  {'-' * 14}  {'-' * 13}  {'-' * 20}")
    for name, value, unit, at in rows:
        fresh = at is not None and since is not None and datetime.fromisoformat(at) >= since
        when = "this run" if fresh else f"earlier ({at or 'date unknown'})"
        print(f"{name:<{w}}  {value:>14,.3f}  {unit:<13}  {when}")
    m = data.get("_machine")
    if m:
        print(f"\nmachine (last benchmark written): {m}")


def main() -> int:
    ap = argparse.ArgumentParser(description="Run all benchmarks and print their results.")
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    ap.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    args = ap.parse_args()
    failed = []
    started = datetime.now(UTC).replace(microsecond=0)
    for name in args.only or BENCHMARKS:
        ok, dt, err = run_one(name, args.quick)
        print(f"=== {name}: {'ok' if ok else 'FAILED'} in {dt:.0f} s", flush=True)
        if not ok:
            failed.append((name, err))
    table(since=started)
    for name, err in failed:
        print(f"\nFAILED {name}: {err}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
