"""Export speed and memory: the 2,041,789-clip ``bench_import`` dataset (the unbalanced
list, imported by bench_import.py) to an AudioSet segments CSV with the keep-original
policy, through ``manage.py export`` in a subprocess.

Rows/s is end to end: rows written / wall time of the whole subprocess (interpreter and
Django start-up included). Peak RSS is the subprocess's own (os.wait4 rusage ru_maxrss);
the PostgreSQL server's memory is not in it. One warm-up run, then --reps timed runs;
the medians are recorded as ``export_csv_rows_per_s`` and ``export_csv_peak_rss_mb``.
Targets (issue 5): >= 43,000 rows/s, < 300 MB.

The last file is also checked: header counts against the database, and, when nobody has
reviewed anything in the benchmark database, its rows byte for byte against the official
list (an untouched dataset exports exactly the file it came from).

Usage: python bench/bench_export.py [--reps N] [--no-warmup] [--keep PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (  # noqa: E402
    ROOT,
    bench_env,
    ensure_bench_database,
    machine,
    median,
    record,
)

DATASET = "bench_import"
TARGET_ROWS_PER_S = 43_000
TARGET_RSS_MB = 300


def _export_once(out: Path) -> tuple[float, float, str]:
    """Run the export command; return (wall seconds, peak RSS MB, its stdout)."""
    cmd = [sys.executable, str(ROOT / "manage.py"), "export", "--dataset", DATASET,
           "--format", "csv", "--policy", "keep-original", "--out", str(out)]
    with tempfile.TemporaryFile() as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=bench_env(), stdout=log, stderr=subprocess.STDOUT)
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix in every child).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        text = log.read().decode(errors="replace")
    if proc.returncode:
        raise SystemExit(f"export failed ({proc.returncode}):\n{text}")
    return wall, usage.ru_maxrss / 1024.0, text.strip()  # ru_maxrss is in KiB on Linux


def _header_counts(path: Path) -> dict[str, int]:
    with open(path, "rb") as f:
        head = b"".join(f.readline() for _ in range(3)).decode()
    return {k: int(v) for k, v in re.findall(r"(num_\w+)=(\d+)", head)}


def _body_digest(lines) -> str:
    h = hashlib.sha256()
    for line in lines:
        if not line.startswith(b"#"):
            h.update(line.rstrip(b"\r\n") + b"\n")
    return h.hexdigest()


def _ensure_dataset() -> int:
    from relabel_app.models import Clip

    n = Clip.objects.filter(dataset__name=DATASET).count()
    if n:
        return n
    print(f"dataset {DATASET} missing: importing it with bench/bench_import.py --reps 1")
    subprocess.run([sys.executable, str(ROOT / "bench" / "bench_import.py"), "--reps", "1"],
                   check=True, env=bench_env())
    return Clip.objects.filter(dataset__name=DATASET).count()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one repetition, no warm-up")
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--keep", help="keep the last export at this path")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.no_warmup = 1, True
    ensure_bench_database()
    import django

    django.setup()
    from django.db import connection

    from review.models import Decision

    clips = _ensure_dataset()
    print(f"machine: {machine()}")
    print(f"database: {connection.settings_dict['HOST'] or 'local'} / "
          f"{connection.settings_dict['NAME']}; {DATASET}: {clips:,} clips")
    connection.close()  # hold no connection while the subprocess works

    out_dir = Path(tempfile.mkdtemp(prefix="bench_export_"))
    out = Path(args.keep) if args.keep else out_dir / f"{DATASET}.csv"
    rates, peaks = [], []
    runs = ([] if args.no_warmup else ["warm-up"]) + [f"rep {i + 1}" for i in range(args.reps)]
    rows = 0
    try:
        for name in runs:
            wall, rss_mb, said = _export_once(out)
            rows = _header_counts(out)["num_segs"]
            print(f"{name}: {rows:,} rows in {wall:.1f} s = {rows / wall:,.0f} rows/s, "
                  f"peak RSS {rss_mb:.0f} MB   [{said}]")
            if name != "warm-up":
                rates.append(rows / wall)
                peaks.append(rss_mb)
        counts = _header_counts(out)
        print(f"header: {counts}")
        if not Decision.objects.filter(clip__dataset__name=DATASET).exists():
            from relabel_app.ontology_source import open_builtin_list

            with open_builtin_list("unbalanced_train") as f:
                official = _body_digest(f.read().splitlines(keepends=True))
            with open(out, "rb") as f:
                ours = _body_digest(f)
            print(f"rows identical to the official unbalanced list: {ours == official}")
    finally:
        if not args.keep:
            out.unlink(missing_ok=True)
            out_dir.rmdir()
    rate, rss = median(rates), median(peaks)
    print(f"export_csv_rows_per_s = {rate:,.0f} (median of {len(rates)}; target >= "
          f"{TARGET_ROWS_PER_S:,})")
    print(f"export_csv_peak_rss_mb = {rss:.1f} (median of {len(peaks)}, max {max(peaks):.1f}; "
          f"target < {TARGET_RSS_MB})")
    # Quick mode exports whatever bench_import left (100,000 rows after its --quick): its
    # figures get their own names so they never stand in for the 2M-clip ones.
    sfx = "_quick" if args.quick else ""
    record(
        {f"export_csv_rows_per_s{sfx}": (rate, "rows/s"), f"export_csv_peak_rss_mb{sfx}": (rss, "MB")},
        extra={f"export_csv{sfx}": {
            "dataset": DATASET, "rows": rows, "policy": "keep-original",
            "rows_per_s_reps": [round(r) for r in rates],
            "peak_rss_mb_reps": [round(p, 1) for p in peaks],
            "measured": "end to end: manage.py export subprocess wall time and its ru_maxrss",
        }},
    )


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
    main()
