"""Quality studies at 2M clips (issue 19), on the benchmark dataset of bench/scale_db.py
(2,041,789 clips, original labels, a run keeping ~6M candidate labels, 50,000 decisions):

1. creates a study over all 527 classes, 10 per class, three sources (original, the run,
   curated) and 100 recall clips: ``quality_study_create_2m_s`` (target <= 15 s), the best
   and every one of ``--repeat`` seeds (each study deleted afterwards but the last);
2. answers every question of the last study through the answering service (a seeded
   random oracle: the figures do not depend on the answers' values);
3. loads the report page as a curator ``--loads`` times in this process (Django's test
   client, after one warm-up load): ``quality_report_p95_ms`` (target <= 300 ms).

Usage: python bench/bench_quality.py [--quick] [--repeat 2] [--loads 30] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
from bench import scale_db  # noqa: E402
from bench.common import loadavg, machine, pct, record  # noqa: E402

CREATE_TARGET_S = 15.0
REPORT_TARGET_MS = 300.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the 100,000-clip bench_quick")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--loads", type=int, default=30)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()
    scale_db.setup_django()
    details = scale_db.build(quick=args.quick)
    from django.test import Client
    from django.urls import reverse

    from curation.quality.answers import quality_answers_record, quality_clips_done
    from curation.quality.models import QualityQuestion, QualityRecallClip, QualityStudy
    from curation.quality.sampling import quality_study_create
    from relabel_app.models import Dataset
    from relabel_app.roles import ensure_role_groups
    from tests.factories import UserFactory

    suffix = "_quick" if args.quick else "_2m"
    ds = Dataset.objects.get(pk=details["dataset_id"])
    QualityStudy.objects.filter(dataset=ds, name__startswith="bench-").delete()
    print(f"machine: {machine()}; load average {loadavg()}")
    sources = ["original", f"run:{details['run_id']}", "curated"]
    times, study = [], None
    for seed in range(args.repeat):
        if study is not None:
            study.delete()
        t0 = time.perf_counter()
        study = quality_study_create(dataset=ds, name=f"bench-{seed}", sources=sources,
                                     per_class=10, recall_clips=100, seed=seed)
        times.append(time.perf_counter() - t0)
        print(f"create (seed {seed}): {times[-1]:.2f} s, {study.questions.count():,} questions; "
              f"load average {loadavg()}")
    ensure_role_groups()
    oracle = UserFactory(username="bench_quality_oracle")
    rng = random.Random(0)
    ids = list(QualityQuestion.objects.filter(study=study).values_list("id", flat=True))
    t0 = time.perf_counter()
    for i in range(0, len(ids), 2000):
        quality_answers_record(study=study, reviewer=oracle, answers=[
            (q, rng.choice(("accept", "accept", "accept", "reject", "unsure")))
            for q in ids[i:i + 2000]])
    quality_clips_done(study=study, reviewer=oracle, clips=[
        r.clip for r in QualityRecallClip.objects.filter(study=study).select_related("clip")])
    print(f"answered {len(ids):,} questions in {time.perf_counter() - t0:.1f} s")
    curator = UserFactory(username="bench_quality_curator", role="curator")
    client = Client(HTTP_HOST="127.0.0.1")  # in ALLOWED_HOSTS of the dev settings
    client.force_login(curator)
    url = reverse("curation:quality_report", args=[ds.name, study.pk])
    assert client.get(url).status_code == 200  # warm-up
    loads = []
    for _ in range(args.loads):
        t0 = time.perf_counter()
        r = client.get(url)
        loads.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
    p95, p50 = pct(loads, 95), pct(loads, 50)
    best = min(times)
    print(f"quality_study_create{suffix}_s: best {best:.2f} s of {len(times)} "
          f"(target <= {CREATE_TARGET_S} s); report page p50 {p50:.0f} ms, p95 {p95:.0f} ms "
          f"(target <= {REPORT_TARGET_MS:.0f} ms); load average {loadavg()}")
    if not args.no_record:
        record({f"quality_study_create{suffix}_s": (best, "s"),
                f"quality_report_p95_ms{'_quick' if args.quick else ''}": (p95, "ms")},
               extra={"quality_study": {"create_s": [round(t, 2) for t in times],
                                        "questions": len(ids), "report_p50_ms": round(p50, 1),
                                        "loads": args.loads, "load_average": loadavg(),
                                        # Before the qspeed fixes (load 3.5-5.1).
                                        "old": {"quality_study_create_2m_s": 113.929,
                                                "quality_report_p95_ms": 488.271}}})


if __name__ == "__main__":
    main()
