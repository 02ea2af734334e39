"""Shared by the benchmark scripts: machine description, results file, a scratch database."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
BENCH_DB = os.environ.get("RELABEL_BENCH_DB", "relabel_bench")


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_gb, 1),
        "python": platform.python_version(), "platform": platform.platform(),
    }


def record(figures: dict[str, tuple[float, str]], extra: dict | None = None) -> None:
    """Merge figures into bench/results.json as {"name": {"value": v, "unit": u}}."""
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    at = datetime.now(UTC).isoformat(timespec="seconds")
    for name, (value, unit) in figures.items():
        data[name] = {"value": round(value, 3), "unit": unit, "measured_at": at}
    data["_machine"] = machine()
    if extra:
        data.setdefault("_details", {}).update(extra)
    RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pct(xs: list[float], p: float) -> float:
    """Percentile by linear interpolation between closest ranks (numpy's default)."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def bench_env() -> dict:
    env = dict(os.environ)
    env["RELABEL_DATABASE_NAME"] = BENCH_DB
    env.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
    env["PYTHONPATH"] = str(ROOT)
    return env


def ensure_bench_database() -> None:
    """Create the benchmark database (migrated, ontology loaded) if it does not exist."""
    os.environ["RELABEL_DATABASE_NAME"] = BENCH_DB
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
    if os.environ.get("DATABASE_URL"):
        import psycopg

        url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(url, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    for cmd in (["migrate", "--noinput", "-v", "0"], ["load_ontology"]):
        subprocess.run([sys.executable, str(ROOT / "manage.py"), *cmd], check=True,
                       env=bench_env(), stdout=subprocess.DEVNULL)
