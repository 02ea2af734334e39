"""The large review benchmark database: a 2,041,789-clip dataset with synthetic pipeline
output, a built review queue and some decisions, generated in SQL. Built once; later calls
find the marker row and return at once.

Dataset ``bench_review`` (``bench_quick`` with --quick: the first 100,000 rows) in the
benchmark database (bench.common.BENCH_DB, ``relabel_bench``):

- clips and original labels: copied in SQL from the ``bench_import`` dataset when
  bench_import.py has imported the unbalanced list there, else imported from the official
  list with segments_import. A copy, not bench_import itself: bench_import.py deletes that
  dataset's clips with raw SQL before each repetition (the deferred foreign keys of the rows
  added here would make that DELETE fail) and bench_export.py checks its export byte for
  byte against the official list (decisions would change it);
- a finished PipelineRun (kind models, the tiny profile with random_weights true and CLAP
  threshold 0.25), one ClipResult per clip (all four stages done, a short caption shaped
  like pipeline.stages.caption.CaptionResult) and 5 candidates per clip (random trainable
  labels, random tiers, clap_score uniform on [0, 0.6), kept = score >= 0.25, selected);
  ON CONFLICT drops the ~2% that draw the same label twice for a clip;
- the review queue (review.queue.queue_sync(force=True));
- 50,000 decisions (with their log entries) by 4 seed reviewers on the first 10,000
  clips of the queue, those clips finished by them (ClipReview, slot done);
- VACUUM ANALYZE of every table touched.

Rows are inserted with the tables' indexes in place (as the migrations define them): the
database is shared with other benchmarks, so dropping an index or constraint for the
load could break or block them. Foreign-key triggers are skipped with
session_replication_role = replica when the role is a superuser.

Usage: python bench/scale_db.py [--quick] [--rebuild]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, ensure_bench_database, loadavg, machine  # noqa: E402

FULL, QUICK = "bench_review", "bench_quick"
QUICK_ROWS = 100_000
SOURCE = "bench_import"  # the unbalanced list as bench_import.py imports it
SOURCE_ROWS = 2_041_789
MARKER = "bench_scale_marker"
THRESHOLD = 0.25
CANDIDATES_PER_CLIP = 5
SEED_REVIEWERS = 4
SEED_CLIPS = 10_000  # x 5 candidates = 50,000 decisions
SEED_PASSWORDLESS_PREFIX = "bench_seed"


class Steps:
    """Prints and keeps how long each part takes."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def __call__(self, name: str):
        steps = self

        class _Step:
            def __enter__(self):
                print(f"  {name} ...", flush=True)
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                dt = time.perf_counter() - self.t0
                if exc[0] is None:
                    steps.times[name] = round(dt, 1)
                    print(f"  {name}: {dt:.1f} s (load average {loadavg()})", flush=True)

        return _Step()


def _exec(sql: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.rowcount


def _one(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    return row[0] if row else None


def ensure_marker_table() -> None:
    _exec(f"CREATE TABLE IF NOT EXISTS {MARKER} (name text PRIMARY KEY, "
          "built_at timestamptz NOT NULL DEFAULT now(), details jsonb NOT NULL)")


def built(name: str) -> dict | None:
    """The marker's details when the dataset was built completely, else None."""
    from relabel_app.models import Dataset

    ensure_marker_table()
    details = _one(f"SELECT details FROM {MARKER} WHERE name = %s", [name])
    if details is None:
        return None
    if isinstance(details, str):
        details = json.loads(details)
    ds = Dataset.objects.filter(name=name).first()
    if ds is None or ds.pk != details.get("dataset_id"):
        _exec(f"DELETE FROM {MARKER} WHERE name = %s", [name])
        return None
    return details


def drop_dataset(name: str) -> None:
    """Delete a (partially) built dataset in SQL: Django's collector would load millions of
    objects. Every table with a foreign key to a clip, then the dataset's own rows."""
    from relabel_app.models import Dataset

    ds = Dataset.objects.filter(name=name).first()
    _exec(f"DELETE FROM {MARKER} WHERE name = %s", [name])
    if ds is None:
        return
    clip_t, ds_t = "relabel_app_clip", "relabel_app_dataset"

    def referrers(table: str) -> list[tuple[str, str]]:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute(
                """SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c
                   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
                   WHERE c.contype = 'f' AND c.confrelid = %s::regclass""",
                [table],
            )
            return cur.fetchall()

    t0 = time.perf_counter()
    if _superuser():
        _exec("SET session_replication_role = replica")
    try:
        for table, col in referrers(clip_t):
            if table == clip_t:
                continue
            _exec(f"DELETE FROM {table} WHERE {col} IN "
                  f"(SELECT id FROM {clip_t} WHERE dataset_id = %s)", [ds.pk])
        run_refs = referrers("pipeline_pipelinerun")
        for table, col in run_refs:
            _exec(f"DELETE FROM {table} WHERE {col} IN "
                  "(SELECT id FROM pipeline_pipelinerun WHERE dataset_id = %s)", [ds.pk])
        for table, col in referrers(ds_t):
            if table != clip_t:
                _exec(f"DELETE FROM {table} WHERE {col} = %s", [ds.pk])
        _exec(f"DELETE FROM {clip_t} WHERE dataset_id = %s", [ds.pk])
        _exec(f"DELETE FROM {ds_t} WHERE id = %s", [ds.pk])
    finally:
        if _superuser():
            _exec("SET session_replication_role = DEFAULT")
    print(f"  dropped the unfinished dataset {name} in {time.perf_counter() - t0:.1f} s")


_SUPER: bool | None = None


def _superuser() -> bool:
    global _SUPER
    if _SUPER is None:
        _SUPER = bool(_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    return _SUPER


def load_clips(name: str, rows: int, steps: Steps) -> int:
    """Clips and original labels; returns the dataset id."""
    from relabel_app.models import Dataset

    src = Dataset.objects.filter(name=SOURCE).first()
    src_n = _one("SELECT count(*) FROM relabel_app_clip WHERE dataset_id = %s",
                 [src.pk]) if src else 0
    ds = Dataset.objects.create(name=name, review_priority="uncertain", required_reviews=1)
    if src_n == SOURCE_ROWS:
        with steps(f"clips: copy {rows:,} from {SOURCE}"):
            _exec(
                "INSERT INTO relabel_app_clip (dataset_id, ytid, start_s, end_s, position, "
                "audio_path, audio_status, audio_error, duration_s, sample_rate) "
                "SELECT %s, ytid, start_s, end_s, position, audio_path, audio_status, "
                "audio_error, duration_s, sample_rate FROM relabel_app_clip "
                "WHERE dataset_id = %s AND position < %s ORDER BY position",
                [ds.pk, src.pk, rows],
            )
        with steps("original labels: copy"):
            n = _exec(
                "INSERT INTO relabel_app_cliplabel (clip_id, label_id) "
                "SELECT n.id, cl.label_id FROM relabel_app_cliplabel cl "
                "JOIN relabel_app_clip o ON o.id = cl.clip_id "
                "JOIN relabel_app_clip n ON n.dataset_id = %s AND n.position = o.position "
                "WHERE o.dataset_id = %s AND o.position < %s ORDER BY n.id",
                [ds.pk, src.pk, rows],
            )
            print(f"    {n:,} labels")
    else:
        from relabel_app.ontology_source import open_builtin_list
        from relabel_app.segment_import import segments_import

        print(f"  {SOURCE} not there (or not the whole list): importing the official list")
        with open_builtin_list("unbalanced_train") as f:
            data = f.read()
        if rows < SOURCE_ROWS:
            data = b"\n".join(data.split(b"\n")[: rows + 3]) + b"\n"
        with steps(f"clips: import {rows:,} rows with segments_import"):
            r = segments_import(source=io.BytesIO(data), source_name="unbalanced_train",
                                dataset_name=name)
            print(f"    {r.rows_read:,} rows, {r.labels_created:,} labels")
    return ds.pk


def run_config() -> dict:
    cfg = json.loads((ROOT / "pipeline" / "profiles" / "tiny.json").read_text())
    cfg["random_weights"] = True
    cfg["filter"] = {**cfg.get("filter", {}), "threshold": THRESHOLD}
    cfg["source"] = "bench/scale_db.py (synthetic output, no model ran)"
    return cfg


# A short caption shaped like dataclasses.asdict(pipeline.stages.caption.CaptionResult):
# one attempt, three rounds (music skipped), varied per clip by its YouTube id.
_CAPTION_SQL = """
    jsonb_build_object(
      'summary', s.summary, 'summary_ok', true, 'reason', '', 'chosen_attempt', 0,
      'attempts', jsonb_build_array(jsonb_build_object(
        'number', 1,
        'rounds', jsonb_build_array(
          jsonb_build_object('name', 'round1',
            'prompt', 'Describe the sounds in this audio clip in at most 50 words.',
            'answer', s.r1, 'skipped', false, 'denied', false, 'text', s.r1),
          jsonb_build_object('name', 'round2',
            'prompt', 'Describe the human voice in this clip: the speaker''s emotion, '
                      || 'the speaker''s gender, and the spoken language.',
            'answer', s.r2, 'skipped', false, 'denied', false, 'text', s.r2),
          jsonb_build_object('name', 'round3',
            'prompt', 'Describe the music in this clip: its genre and the instruments '
                      || 'you hear.',
            'answer', null, 'skipped', true, 'denied', false, 'text', '')),
        'presence', jsonb_build_object(
          'speech', jsonb_build_object('present', true, 'method', 'read',
                                       'evidence', 'speaks', 'question', null),
          'music', jsonb_build_object('present', false, 'method', 'read',
                                      'evidence', '', 'question', null)),
        'summary', s.summary, 'summary_chars', length(s.summary), 'ok', true, 'reason', '',
        'messages', '[]'::jsonb)))
"""


def load_results(ds_id: int, steps: Steps) -> int:
    from pipeline.models import PipelineRun

    n = _one("SELECT count(*) FROM relabel_app_clip WHERE dataset_id = %s", [ds_id])
    from django.utils import timezone

    now = timezone.now()
    run = PipelineRun.objects.create(
        dataset_id=ds_id, kind=PipelineRun.Kind.MODELS, profile_name="tiny",
        config=run_config(), status=PipelineRun.Status.DONE, clip_count=n,
        started_at=now, finished_at=now,
    )
    with steps(f"clip results: {n:,} rows"):
        _exec(
            f"""
            INSERT INTO pipeline_clipresult (run_id, clip_id, caption_status, predict_status,
                match_status, filter_status, caption, summary, summary_ok, predict,
                free_labels, best_attempt, error_stage, error, timings, updated_at)
            SELECT %(run)s, s.id, 'done', 'done', 'done', 'done', {_CAPTION_SQL},
                   s.summary, true,
                   jsonb_build_object('attempts', jsonb_build_array(jsonb_build_object(
                       'answer', 'dog barking, male speech', 'labels',
                       jsonb_build_array('dog barking', 'male speech')))),
                   '[["dog barking", "male speech"]]'::jsonb, 0, '', '',
                   '{{"caption": 1.9, "predict": 0.4, "match": 0.1, "filter": 0.2}}'::jsonb,
                   now()
            FROM (
                SELECT c.id, r1, r2, r1 || ' ' || r2 || ' No music.' AS summary
                FROM relabel_app_clip c
                CROSS JOIN LATERAL (SELECT
                    'A dog barks several times close to the microphone while traffic hums '
                    || 'in the distance; segment ' || c.ytid || ' at ' || c.start_s::int
                    || ' s.' AS r1,
                    'A calm adult male voice speaks English in a neutral tone.' AS r2) t
                WHERE c.dataset_id = %(ds)s
            ) s
            ORDER BY s.id
            """,
            {"run": run.pk, "ds": ds_id},
        )
    with steps(f"candidates: {CANDIDATES_PER_CLIP} per clip"):
        ids = [r[0] for r in _rows(
            "SELECT id FROM relabel_app_label WHERE index IS NOT NULL ORDER BY index")]
        m = _exec(
            """
            INSERT INTO pipeline_candidate (run_id, clip_id, label_id, attempt, tier, phrase,
                match_score, clap_score, kept, selected)
            SELECT %(run)s, g.clip_id, g.label_id, 0, g.tier, lower(l.name),
                   CASE WHEN g.tier = 'exact' THEN 1.0 ELSE 0.6 + 0.4 * g.r3 END,
                   g.score, g.score >= %(thr)s, true
            FROM (
                SELECT c.id AS clip_id,
                       (%(labels)s::bigint[])[1 + floor(random() * %(nl)s)::int] AS label_id,
                       (ARRAY['exact', 'fuzzy', 'synonym'])[1 + floor(random() * 3)::int]
                           AS tier,
                       random() * 0.6 AS score, random() AS r3
                FROM relabel_app_clip c CROSS JOIN generate_series(1, %(k)s) k
                WHERE c.dataset_id = %(ds)s
            ) g
            JOIN relabel_app_label l ON l.id = g.label_id
            ORDER BY g.clip_id
            ON CONFLICT DO NOTHING
            """,
            {"run": run.pk, "ds": ds_id, "labels": ids, "nl": len(ids),
             "k": CANDIDATES_PER_CLIP, "thr": THRESHOLD},
        )
        print(f"    {m:,} candidates ({m / max(n, 1):.2f} per clip)")
    return run.pk


def _rows(sql: str, params=None) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def seed_users(prefix: str, count: int) -> list[int]:
    """Reviewers (group reviewer) without a usable password; returns their ids in order."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from relabel_app.roles import REVIEWER, ensure_role_groups

    ensure_role_groups()
    group = Group.objects.get(name=REVIEWER)
    User = get_user_model()
    ids = []
    for i in range(count):
        u, created = User.objects.get_or_create(username=f"{prefix}{i:02d}")
        if created:
            u.set_unusable_password()
            u.save()
        u.groups.add(group)
        ids.append(u.pk)
    return ids


def seed_decisions(ds_id: int, run_id: int, steps: Steps) -> int:
    """SEED_CLIPS clips from the front of the queue, split among SEED_REVIEWERS, each clip
    decided on every candidate and finished (ClipReview, slot done)."""
    users = seed_users(SEED_PASSWORDLESS_PREFIX, SEED_REVIEWERS)
    with steps(f"seed decisions: {SEED_CLIPS:,} clips by {SEED_REVIEWERS} reviewers"):
        _exec("DROP TABLE IF EXISTS bench_seed_tmp")
        _exec(
            """
            CREATE TEMP TABLE bench_seed_tmp AS
            SELECT s.id AS slot_id, s.clip_id,
                   (%(users)s::int[])[1 + (row_number() OVER (ORDER BY s.rank_uncertain,
                       s.clip_id, s.slot) - 1) %% %(nu)s] AS reviewer_id
            FROM review_queueslot s
            WHERE s.dataset_id = %(ds)s AND s.done_by_id IS NULL
            ORDER BY s.rank_uncertain, s.clip_id, s.slot LIMIT %(n)s
            """,
            {"users": users, "nu": len(users), "ds": ds_id, "n": SEED_CLIPS},
        )
        d = _exec(
            """
            INSERT INTO review_decision (clip_id, dataset_id, label_id, reviewer_id, verdict,
                                         note, created_at, updated_at)
            SELECT t.clip_id, %(ds)s, c.label_id, t.reviewer_id,
                   CASE WHEN random() < 0.6 THEN 'accept'
                        WHEN random() < 0.85 THEN 'reject' ELSE 'unsure' END,
                   '', now() - interval '1 day', now() - interval '1 day'
            FROM bench_seed_tmp t JOIN pipeline_candidate c
              ON c.run_id = %(run)s AND c.clip_id = t.clip_id AND c.selected
            ORDER BY t.clip_id, c.label_id
            ON CONFLICT DO NOTHING
            """,
            {"run": run_id, "ds": ds_id},
        )
        _exec(
            """
            INSERT INTO review_decisionlog (clip_id, label_id, reviewer_id, action,
                before_verdict, before_note, after_verdict, after_note, created_at)
            SELECT d.clip_id, d.label_id, d.reviewer_id, 'record', '', '', d.verdict, '',
                   d.created_at
            FROM review_decision d JOIN bench_seed_tmp t
              ON t.clip_id = d.clip_id AND t.reviewer_id = d.reviewer_id
            ORDER BY d.id
            """
        )
        _exec(
            """
            INSERT INTO review_clipreview (dataset_id, clip_id, reviewer_id, finished_at)
            SELECT %(ds)s, t.clip_id, t.reviewer_id, now() - interval '1 day'
            FROM bench_seed_tmp t ON CONFLICT DO NOTHING
            """,
            {"ds": ds_id},
        )
        _exec(
            """
            UPDATE review_queueslot s SET done_by_id = t.reviewer_id,
                   done_at = now() - interval '1 day'
            FROM bench_seed_tmp t WHERE s.id = t.slot_id
            """
        )
        _exec("DROP TABLE bench_seed_tmp")
        print(f"    {d:,} decisions")
    return d


TOUCHED = ["relabel_app_clip", "relabel_app_cliplabel", "pipeline_clipresult",
           "pipeline_candidate", "pipeline_pipelinerun", "review_queueslot",
           "review_queuestate", "review_decision", "review_decisionlog", "review_clipreview",
           "auth_user", "auth_user_groups", "django_session"]


def build(quick: bool = False, rebuild: bool = False) -> dict:
    """Build the dataset unless its marker says it is there; returns the marker details."""
    name = QUICK if quick else FULL
    rows = QUICK_ROWS if quick else SOURCE_ROWS
    from django.db import connection

    from relabel_app.models import Dataset
    from review.queue import queue_sync

    connection.ensure_connection()
    details = None if rebuild else built(name)
    if details is not None:
        print(f"{name}: already built {details.get('built')} ({details['clips']:,} clips, "
              f"{details['candidates']:,} candidates); --rebuild to start again")
        return details
    print(f"building {name} ({rows:,} clips) in {connection.settings_dict['NAME']}; "
          f"load average {loadavg()}")
    drop_dataset(name)
    steps = Steps()
    t_all = time.perf_counter()
    super_ = _superuser()
    if super_:
        _exec("SET session_replication_role = replica")
    try:
        ds_id = load_clips(name, rows, steps)
        run_id = load_results(ds_id, steps)
    finally:
        if super_:
            _exec("SET session_replication_role = DEFAULT")
    with steps("analyze before the queue build"):
        for t in ("relabel_app_clip", "relabel_app_cliplabel", "pipeline_clipresult",
                  "pipeline_candidate"):
            _exec(f"ANALYZE {t}")
    with steps("review queue: queue_sync(force=True)"):
        queue_sync(dataset=Dataset.objects.get(pk=ds_id), force=True)
    decisions = seed_decisions(ds_id, run_id, steps)
    with steps("VACUUM ANALYZE"):
        for t in TOUCHED:
            _exec(f"VACUUM (ANALYZE) {t}")
    total = time.perf_counter() - t_all
    details = {
        "dataset_id": ds_id, "run_id": run_id,
        "clips": _one("SELECT count(*) FROM relabel_app_clip WHERE dataset_id = %s", [ds_id]),
        "original_labels": _one(
            "SELECT count(*) FROM relabel_app_cliplabel cl JOIN relabel_app_clip c "
            "ON c.id = cl.clip_id WHERE c.dataset_id = %s", [ds_id]),
        "candidates": _one("SELECT count(*) FROM pipeline_candidate WHERE run_id = %s",
                           [run_id]),
        "decisions": decisions, "steps_s": steps.times, "total_s": round(total, 1),
        "built": time.strftime("%Y-%m-%d %H:%M:%S"), "superuser": super_,
        "machine": machine(),
    }
    _exec(f"INSERT INTO {MARKER} (name, details) VALUES (%s, %s) ON CONFLICT (name) DO "
          "UPDATE SET details = EXCLUDED.details, built_at = now()",
          [name, json.dumps(details)])
    print(f"{name} built in {total:.0f} s: {details['clips']:,} clips, "
          f"{details['original_labels']:,} original labels, {details['candidates']:,} "
          f"candidates, {decisions:,} decisions; load average {loadavg()}")
    return details


def setup_django() -> None:
    ensure_bench_database()
    import django

    django.setup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK}: the first 100,000 rows")
    ap.add_argument("--rebuild", action="store_true", help="drop and build again")
    args = ap.parse_args()
    setup_django()
    build(quick=args.quick, rebuild=args.rebuild)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
    main()
