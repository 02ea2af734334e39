"""Import speed of the 2,041,789-row unbalanced segment list (4,020,212 labels).

Prints rows/s per repetition and the median; writes `import_unbalanced_rows_per_s`.
Usage: python bench/bench_import.py [--quick] [--reps N]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ensure_bench_database, machine, median, record  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="first 100,000 rows only")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    ensure_bench_database()
    import django

    django.setup()
    from django.db import connection

    from relabel_app.models import Clip, Dataset
    from relabel_app.ontology_source import open_builtin_list
    from relabel_app.segment_import import segments_import

    with open_builtin_list("unbalanced_train") as f:
        data = f.read()
    if args.quick:
        data = b"\n".join(data.split(b"\n")[: 100_003]) + b"\n"
    print(f"machine: {machine()}")
    print(f"database: {connection.settings_dict['HOST'] or 'local'} / {connection.settings_dict['NAME']}")
    with connection.cursor() as cur:
        cur.execute("SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                    "('server_version', 'shared_buffers', 'max_wal_size', 'fsync', "
                    "'synchronous_commit', 'autovacuum')")
        print("postgresql: " + ", ".join(f"{n}={v}" for n, v in cur.fetchall()))
    rates = []
    for rep in range(args.reps):
        with connection.cursor() as cur:
            cur.execute(
                f"DELETE FROM {Clip.labels.through._meta.db_table} WHERE clip_id IN "
                f"(SELECT id FROM {Clip._meta.db_table} WHERE dataset_id IN "
                f"(SELECT id FROM {Dataset._meta.db_table} WHERE name = 'bench_import'))"
            )
            cur.execute(
                f"DELETE FROM {Clip._meta.db_table} WHERE dataset_id IN "
                f"(SELECT id FROM {Dataset._meta.db_table} WHERE name = 'bench_import')"
            )
        with connection.cursor() as cur:
            # The deleted rows are dead tuples until vacuumed; with autovacuum off (this
            # machine's PostgreSQL) every repetition would insert into a more bloated table
            # and index than the one before. Outside the timing.
            cur.execute(f"VACUUM {Clip.labels.through._meta.db_table}, {Clip._meta.db_table}")
            cur.execute("CHECKPOINT")
        t0 = time.perf_counter()
        r = segments_import(source=io.BytesIO(data), source_name="unbalanced_train",
                            dataset_name="bench_import")
        dt = time.perf_counter() - t0
        rates.append(r.rows_read / dt)
        print(f"rep {rep + 1}: {r.rows_read:,} rows, {r.labels_created:,} labels in {dt:.1f} s "
              f"= {r.rows_read / dt:,.0f} rows/s  phases {r.timings}")
    value = median(rates)
    print(f"import_unbalanced_rows_per_s = {value:,.0f} (median of {len(rates)})")
    name = "import_unbalanced_rows_per_s" + ("_quick" if args.quick else "")
    record({name: (value, "rows/s")})


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
    main()
