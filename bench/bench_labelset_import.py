"""Speed of import_labelset: an external label set of N items (default 200,000) in the
{"data": [{"wav", "labels"}]} format into a synthetic dataset of N clips.

Prints the time of a first import (creates the run) and of a re-import under the same name
(replaces its candidates), with the phases of each. 1% of the items name clips that are not
in the dataset (reported, not imported).
Usage: python bench/bench_labelset_import.py [--items N] [--record]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ensure_bench_database, machine, record  # noqa: E402

DATASET = "bench_labelset"  # a dataset per size: bench_labelset_<N>


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=200_000)
    ap.add_argument("--record", action="store_true", help="write bench/results.json")
    args = ap.parse_args()
    ensure_bench_database()
    import django

    django.setup()
    from pipeline.external_import import labelset_import
    from pipeline.models import PipelineRun
    from relabel_app.models import Clip, Label
    from relabel_app.segment_import import segments_import

    n = args.items
    rng = random.Random(0)
    mids = list(Label.objects.filter(index__isnull=False).values_list("mid", flat=True))
    ytids = [f"b{i:010d}" for i in range(n)]
    dataset = f"{DATASET}_{n}"
    if not Clip.objects.filter(dataset__name=dataset).exists():
        csv = "".join(f'{y}, 0.000, 10.000, "{rng.choice(mids)}"\n' for y in ytids)
        segments_import(source=io.BytesIO(csv.encode()), source_name="synthetic",
                        dataset_name=dataset)
    items = []
    for i, y in enumerate(ytids):
        if i % 100 == 99:
            y = f"x{i:010d}"  # not a clip of the dataset
        k = rng.choice((1, 2, 2, 3, 3, 4))
        items.append({"wav": f"/audio/Y{y}.wav", "labels": ",".join(rng.sample(mids, k))})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labelset.json"
        path.write_text(json.dumps({"data": items}))
        size_mb = path.stat().st_size / 2**20
        del items
        print(f"machine: {machine()}")
        print(f"file: {n:,} items, {size_mb:.1f} MiB")
        rates = {}
        PipelineRun.objects.filter(dataset__name=dataset, profile_name="bench").delete()
        for what in ("first import", "re-import (replace)"):
            t0 = time.perf_counter()
            r = labelset_import(path=path, dataset_name=dataset, name="bench")
            dt = time.perf_counter() - t0
            rates[what] = n / dt
            phases = ", ".join(f"{k} {v:.1f}s" for k, v in r.timings.items())
            print(f"{what}: {r.items_read:,} items, {r.clips_matched:,} clips, "
                  f"{r.candidates:,} labels, {r.unmatched_items:,} unmatched in {dt:.1f} s "
                  f"= {n / dt:,.0f} items/s (cumulative phases: {phases})")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_mb:,.0f} MiB")
    if args.record:
        record({"labelset_import_items_per_s": (rates["first import"], "items/s")})


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
    main()
