"""The adjudication queue at 2M clips: a curator opens the queue page, all reasons and each
reason's filter, on the 2,041,789-clip benchmark dataset (bench/scale_db.py: 50,000
decisions by 4 reviewers on 10,000 clips, ~20,000 disputed pairs).

``adjudication_queue_p95_ms_2m`` (target <= 300 ms): the p95 of every page load (the
first page, through Django's view and template, in this process, as a logged-in curator),
``--reps`` loads of each of the six filters (all reasons, then each reason). Beside it in
``_details``: each filter's p50/p95 and the old query's time on the same database (the
votes looked up through each decision's clip, before Decision.dataset: the reference query
of tests/curation/test_decision_dataset.py), ``--old-reps`` calls of the service per filter.

``--compare-ref REF`` (by default 34c9d77, the tree before Decision.dataset and PairVotes)
also times that commit's whole
curation/adjudication_queue.py (loaded from git, run against the same database): the old
code's figure, ``old_code_ms`` per filter.

Never builds the database: exits when bench/scale_db.py has not finished it.

Usage: python bench/bench_adjudication_queue.py [--quick] [--reps 20] [--old-reps 2]
           [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
from bench import scale_db  # noqa: E402
from bench.common import ROOT, loadavg, machine, median, pct, record  # noqa: E402

TARGET_P95_MS = 300
OLD_REF = "34c9d77"  # main before the queue read Decision.dataset and PairVotes


def old_module(ref: str):
    """``ref``'s curation/adjudication_queue.py as a module of its own."""
    import importlib.util
    import subprocess
    import tempfile

    src = subprocess.run(["git", "show", f"{ref}:curation/adjudication_queue.py"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="bench_adjq_")) / "adjudication_queue_old.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("curation.adjudication_queue_old", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the 100,000-clip bench_quick")
    ap.add_argument("--reps", type=int, default=20, help="page loads per filter")
    ap.add_argument("--old-reps", type=int, default=2,
                    help="calls of the old query per filter (0: skip)")
    ap.add_argument("--compare-ref", default=OLD_REF,
                    help="git ref whose adjudication_queue.py is timed too ('' to skip)")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    scale_db.setup_django()
    details = scale_db.built(scale_db.QUICK if args.quick else scale_db.FULL)
    if details is None:
        raise SystemExit("the benchmark dataset is not built (bench/scale_db.py)")
    from django.db import connection
    from django.test import Client

    from curation import adjudication_queue as aq
    from curation.resolution import latest_run
    from relabel_app.models import Dataset
    from relabel_app.roles import ensure_role_groups
    from tests.curation.test_decision_dataset import old_votes_cte
    from tests.factories import UserFactory

    ensure_role_groups()
    ds = Dataset.objects.get(pk=details["dataset_id"])
    run = latest_run(ds)
    user = UserFactory(username="bench_adjudicator", role="curator")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    print(f"machine: {machine()}; load average {loadavg()}")
    print(f"dataset {ds.name}: {details['clips']:,} clips; run #{run.pk}; database "
          f"{connection.settings_dict['NAME']}")
    reasons = ["", *aq.REASONS]
    per: dict[str, dict] = {}
    all_ms: list[float] = []
    for reason in reasons:
        url = f"/curation/dataset/{ds.name}/adjudicate/?run={run.pk}&reason={reason}"
        r = client.get(url)  # warm (plans, caches)
        assert r.status_code == 200, r.status_code
        ms = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            r = client.get(url)
            ms.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200
        all_ms += ms
        f = aq.queue_filter_for(dataset=ds, run=run, reason=reason)
        page = aq.adjudication_queue(f=f)
        per[reason or "all"] = {"p50_ms": round(median(ms), 1), "p95_ms": round(pct(ms, 95), 1),
                                "clips": page.matching}
        print(f"  {reason or 'all':18} {page.matching:7,} clips: p50 {median(ms):6.0f} ms, "
              f"p95 {pct(ms, 95):6.0f} ms")
    p95 = pct(all_ms, 95)
    print(f"adjudication queue page, every filter, {len(all_ms)} loads: p50 "
          f"{median(all_ms):.0f} ms, p95 {p95:.0f} ms (target <= {TARGET_P95_MS} ms); "
          f"load average {loadavg()}")
    if args.old_reps:
        new_votes = aq._votes_cte
        aq._votes_cte = old_votes_cte
        try:
            for reason in reasons:
                f = aq.queue_filter_for(dataset=ds, run=run, reason=reason)
                ms = []
                for _ in range(args.old_reps):
                    t0 = time.perf_counter()
                    aq.adjudication_queue(f=f)
                    ms.append((time.perf_counter() - t0) * 1000)
                per[reason or "all"]["old_query_ms"] = round(median(ms), 1)
                print(f"  old query, {reason or 'all':18}: {median(ms):6.0f} ms")
        finally:
            aq._votes_cte = new_votes
    if args.compare_ref and args.old_reps:
        old = old_module(args.compare_ref)
        for reason in reasons:
            f = old.queue_filter_for(dataset=ds, run=run, reason=reason)
            ms = []
            for _ in range(args.old_reps):
                t0 = time.perf_counter()
                old.adjudication_queue(f=f)
                ms.append((time.perf_counter() - t0) * 1000)
            per[reason or "all"]["old_code_ms"] = round(median(ms), 1)
            print(f"  {args.compare_ref}'s code, {reason or 'all':18}: {median(ms):6.0f} ms")
    extra = {"clips": details["clips"], "decisions": details.get("decisions"),
             "loads": len(all_ms), "p50_ms": round(median(all_ms), 1), "per_filter": per,
             "old_first_page_ms_recorded": 3834.6, "compare_ref": args.compare_ref,
             "note": "old_query_ms: this statement with the old votes CTE (decisions "
                     "grouped, clip looked up); old_code_ms: the ref's whole module",
             "load_average": loadavg()}
    print(json.dumps(extra, indent=2))
    if not args.no_record:
        suffix = "_quick" if args.quick else "_2m"
        record({f"adjudication_queue_p95_ms{suffix}": (p95, "ms")},
               {f"bench_adjudication_queue{suffix}": extra})


if __name__ == "__main__":
    main()
