"""Audit figures of a dataset (and a run): what the dashboard page shows and what
``manage.py audit --json`` prints, from one function, ``dataset_audit``.

Counting is set-based SQL over a temporary table of every (clip, label) pair with its
origin and curated state (curation.resolution.pair_states_sql), so the figures follow the
same resolution rules as the export. The arithmetic that needs more than a count (kappa,
alpha, average precision, the precision-recall curve) is in curation.metrics, pure Python.

Definitions (each checked by hand in tests/curation/test_audits.py):

* label_counts: labels per clip of the originals (all clips of the dataset), the run's
  kept candidates (clips the run covers: a ClipResult or a candidate of the run) and the
  curated set under keep-original (all clips); average = labels / clips, histogram =
  clips per number of labels.
* agreement (clips the run covers): original_kept_fraction = |original and kept| /
  |original|; run_original_fraction = |original and kept| / |kept|; per class too.
* error_categories: decisions per error category; per top-level ontology branch (the 7
  classes without a parent) a decision counts once in each branch its label lies under
  (a class with parents in two branches counts in both).
* pipeline_vs_experts (resolved pairs on covered clips): TP = kept and accepted, FP = kept
  and rejected, FN = accepted and not kept (filtered out or never proposed); precision and
  recall per class and overall (micro). The precision-recall curve of the CLAP threshold
  runs over decided candidates (selected candidates with a score and a resolved state):
  keep when score >= t; recall is relative to the accepted decided candidates. The best
  threshold maximises F1 (ties: the highest threshold). clap_map: average precision of
  CLAP scores against the curated state per class over decided candidates, averaged over
  classes with at least one accepted candidate.
* reviewer_agreement: Cohen's kappa per reviewer pair over the (clip, label) pairs both
  decided (accept / reject / unsure as three nominal values); Krippendorff's alpha
  (nominal) over every pair with two or more decisions.
* throughput: decisions per active hour per reviewer. Active time is the sum of the gaps
  between a reviewer's consecutive decisions (Decision.created_at) that are at most
  ACTIVE_GAP long; a longer gap is a break and counts nothing.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from pipeline.models import OriginalLabelScore, PipelineRun
from relabel_app.models import Dataset, Label
from review.models import ErrorCategory

from . import metrics
from .models import Policy
from .resolution import T, covered_clips_sql, latest_run, pair_states_sql, scope_for

ACTIVE_GAP = timedelta(minutes=10)
# Points of the precision-recall curve kept for the chart and the JSON (evenly spaced by
# rank); the best-F1 point and the figures are computed on every threshold.
PR_CURVE_MAX_POINTS = 400
VERDICTS = ("accept", "reject", "unsure")

_PAIRS = "curation_audit_pairs"
_COVERED = "curation_audit_covered"


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _fetch(cur, sql: str, params=None) -> list[tuple]:
    cur.execute(sql, params or {})
    return cur.fetchall()


def _labels(ids) -> dict[int, Label]:
    return Label.objects.in_bulk(list(ids))


def _label_fields(label: Label | None) -> dict:
    return {"mid": label.mid, "name": label.name} if label else {"mid": "?", "name": "?"}


def run_summary(run: PipelineRun | None) -> dict | None:
    if run is None:
        return None
    threshold = run.threshold
    return {
        "id": run.pk, "kind": run.kind, "profile": run.profile_name, "status": run.status,
        "threshold": threshold, "random_weights": run.random_weights,
        "created_at": run.created_at.isoformat() if run.created_at else None,
    }


# --- sections ----------------------------------------------------------------------------


def _label_counts(cur, dataset_id: int, has_run: bool) -> dict:
    rows = _fetch(cur, f"""
        WITH per AS (
            SELECT c.id,
                   count(p.clip_id) FILTER (WHERE p.is_original) AS o,
                   count(p.clip_id) FILTER (WHERE p.kept) AS r,
                   count(p.clip_id) FILTER (WHERE p.curated) AS cu,
                   bool_or(cov.clip_id IS NOT NULL) AS covered
            FROM {T.clip} c
            LEFT JOIN {_PAIRS} p ON p.clip_id = c.id
            LEFT JOIN {_COVERED} cov ON cov.clip_id = c.id
            WHERE c.dataset_id = %(ds)s
            GROUP BY c.id
        )
        SELECT 'original', o, count(*) FROM per GROUP BY o
        UNION ALL SELECT 'run', r, count(*) FROM per WHERE covered GROUP BY r
        UNION ALL SELECT 'curated', cu, count(*) FROM per GROUP BY cu""", {"ds": dataset_id})
    out: dict[str, dict | None] = {}
    for name in ("original", "run", "curated"):
        hist = {int(n): int(k) for s, n, k in rows if s == name}
        clips = sum(hist.values())
        labels = sum(n * k for n, k in hist.items())
        out[name] = {
            "clips": clips, "labels": labels, "average": _ratio(labels, clips),
            "histogram": {str(n): hist[n] for n in sorted(hist)},
        }
    if not has_run:
        out["run"] = None
    return out


def _agreement(cur) -> dict:
    rows = _fetch(cur, f"""
        SELECT p.label_id,
               count(*) FILTER (WHERE p.is_original) AS o,
               count(*) FILTER (WHERE p.kept) AS r,
               count(*) FILTER (WHERE p.is_original AND p.kept) AS b
        FROM {_PAIRS} p JOIN {_COVERED} cov ON cov.clip_id = p.clip_id
        GROUP BY p.label_id
        HAVING count(*) FILTER (WHERE p.is_original OR p.kept) > 0""")
    labels = _labels(r[0] for r in rows)
    per_class = []
    for label_id, o, r, b in rows:
        per_class.append({
            **_label_fields(labels.get(label_id)), "original": o, "run": r, "both": b,
            "original_kept_fraction": _ratio(b, o), "run_original_fraction": _ratio(b, r),
        })
    per_class.sort(key=lambda x: (-x["original"], -x["run"], x["mid"]))
    o = sum(x["original"] for x in per_class)
    r = sum(x["run"] for x in per_class)
    b = sum(x["both"] for x in per_class)
    covered = _fetch(cur, f"SELECT count(*) FROM {_COVERED}")[0][0]
    return {
        "clips": covered, "original_labels": o, "run_labels": r, "both": b,
        "original_kept_fraction": _ratio(b, o), "run_original_fraction": _ratio(b, r),
        "per_class": per_class,
    }


def _error_categories(cur, dataset_id: int) -> dict:
    cats = list(ErrorCategory.objects.order_by("position", "name"))
    counts = dict(_fetch(cur, f"""
        SELECT d.error_category_id, count(*)
        FROM {T.decision} d
        WHERE d.dataset_id = %(ds)s AND d.error_category_id IS NOT NULL
        GROUP BY d.error_category_id""", {"ds": dataset_id}))
    per_category = [
        {"slug": c.slug, "name": c.name, "kind": c.kind, "count": int(counts.get(c.pk, 0))}
        for c in cats if c.active or counts.get(c.pk)
    ]
    roots = _fetch(cur, f"""
        SELECT l.id, l.mid, l.name FROM {T.label} l
        WHERE NOT EXISTS (SELECT 1 FROM {T.label_parents} p WHERE p.from_label_id = l.id)
        ORDER BY l.id""")
    branch_rows = _fetch(cur, f"""
        WITH RECURSIVE anc(label_id, ancestor_id) AS (
            SELECT id, id FROM {T.label}
            UNION
            SELECT a.label_id, p.to_label_id
            FROM anc a JOIN {T.label_parents} p ON p.from_label_id = a.ancestor_id
        )
        SELECT a.ancestor_id, d.error_category_id, count(DISTINCT d.id)
        FROM {T.decision} d
        JOIN anc a ON a.label_id = d.label_id
        WHERE d.dataset_id = %(ds)s AND d.error_category_id IS NOT NULL
          AND a.ancestor_id IN (
              SELECT l.id FROM {T.label} l WHERE NOT EXISTS (
                  SELECT 1 FROM {T.label_parents} p WHERE p.from_label_id = l.id))
        GROUP BY a.ancestor_id, d.error_category_id""", {"ds": dataset_id})
    slug_of = {c.pk: c.slug for c in cats}
    per_branch = []
    for root_id, mid, name in roots:
        by_cat = {slug_of.get(cid, str(cid)): int(n) for rid, cid, n in branch_rows
                  if rid == root_id}
        per_branch.append({"mid": mid, "name": name, "count": sum(by_cat.values()),
                           "by_category": by_cat})
    return {
        "decisions_with_category": sum(counts.values()),
        "per_category": per_category,
        "per_branch": per_branch,
    }


def _sample(points: list, n: int) -> list:
    if len(points) <= n:
        return points
    step = (len(points) - 1) / (n - 1)
    return [points[round(i * step)] for i in range(n)]


def _pipeline_vs_experts(cur, run: PipelineRun) -> dict:
    rows = _fetch(cur, f"""
        SELECT p.label_id,
               count(*) FILTER (WHERE p.kept AND p.accepted) AS tp,
               count(*) FILTER (WHERE p.kept AND NOT p.accepted) AS fp,
               count(*) FILTER (WHERE p.accepted AND NOT p.kept) AS fn
        FROM {_PAIRS} p JOIN {_COVERED} cov ON cov.clip_id = p.clip_id
        WHERE p.accepted IS NOT NULL
        GROUP BY p.label_id
        HAVING count(*) FILTER (WHERE p.kept OR p.accepted) > 0""")
    labels = _labels(r[0] for r in rows)
    per_class = []
    for label_id, tp, fp, fn in rows:
        precision, recall = metrics.precision_recall(tp, fp, fn)
        per_class.append({**_label_fields(labels.get(label_id)), "tp": tp, "fp": fp, "fn": fn,
                          "precision": precision, "recall": recall})
    per_class.sort(key=lambda x: (-(x["tp"] + x["fn"]), -x["fp"], x["mid"]))
    tp, fp, fn = (sum(x[k] for x in per_class) for k in ("tp", "fp", "fn"))
    precision, recall = metrics.precision_recall(tp, fp, fn)

    groups = _fetch(cur, f"""
        SELECT p.clap_score, count(*) FILTER (WHERE p.accepted), count(*) FILTER (WHERE NOT p.accepted)
        FROM {_PAIRS} p
        WHERE p.is_candidate AND p.accepted IS NOT NULL AND p.clap_score IS NOT NULL
        GROUP BY p.clap_score""")
    points = metrics.pr_curve(groups)
    best = metrics.best_f1(points)
    threshold = run.threshold
    at_run = None
    if threshold is not None and points:
        above = [p for p in points if p.threshold >= threshold]
        at_run = above[-1] if above else None

    def point(p):
        return None if p is None else {"threshold": p.threshold, "precision": p.precision,
                                       "recall": p.recall, "f1": p.f1, "kept": p.kept}

    scored = _fetch(cur, f"""
        SELECT p.label_id, p.clap_score, p.accepted FROM {_PAIRS} p
        WHERE p.is_candidate AND p.accepted IS NOT NULL AND p.clap_score IS NOT NULL
        ORDER BY p.label_id""")
    per_label: dict[int, tuple[list[int], list[float]]] = {}
    for label_id, score, accepted in scored:
        ys, ss = per_label.setdefault(label_id, ([], []))
        ys.append(1 if accepted else 0)
        ss.append(score)
    mean_ap, aps = metrics.mean_average_precision(per_label)
    ap_labels = _labels(aps)
    ap_rows = sorted(
        ({**_label_fields(ap_labels.get(lid)), "ap": ap, "positives": sum(per_label[lid][0]),
          "candidates": len(per_label[lid][0])} for lid, ap in aps.items()),
        key=lambda x: (-x["positives"], x["mid"]),
    )
    return {
        "overall": {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall},
        "per_class": per_class,
        "pr_curve": {
            "decided_candidates": sum(g[1] + g[2] for g in groups),
            "positives": sum(g[1] for g in groups),
            "thresholds": len(points),
            "points": [point(p) for p in _sample(points, PR_CURVE_MAX_POINTS)],
            "best": point(best),
            "run_threshold": threshold,
            "at_run_threshold": point(at_run),
        },
        "clap_map": {"map": mean_ap, "classes": len(aps), "per_class": ap_rows},
    }


def _reviewer_agreement(cur, dataset_id: int) -> dict:
    rows = _fetch(cur, f"""
        SELECT d1.reviewer_id, d2.reviewer_id, d1.verdict, d2.verdict, count(*)
        FROM {T.decision} d1
        JOIN {T.decision} d2 ON d2.clip_id = d1.clip_id AND d2.label_id = d1.label_id
                            AND d2.reviewer_id > d1.reviewer_id
        WHERE d1.dataset_id = %(ds)s
        GROUP BY 1, 2, 3, 4""", {"ds": dataset_id})
    confusions: dict[tuple[int, int], dict[tuple[str, str], int]] = {}
    for a, b, va, vb, n in rows:
        confusions.setdefault((a, b), {})[(va, vb)] = n
    names = dict(get_user_model().objects.filter(
        pk__in={u for pair in confusions for u in pair}).values_list("pk", "username"))
    pairs = []
    for (a, b), conf in sorted(confusions.items()):
        n = sum(conf.values())
        agree = sum(c for (x, y), c in conf.items() if x == y)
        pairs.append({"a": names.get(a, str(a)), "b": names.get(b, str(b)), "n": n,
                      "observed_agreement": agree / n, "kappa": metrics.cohen_kappa(conf)})
    patterns_rows = _fetch(cur, f"""
        SELECT n_accept, n_reject, n_unsure, count(*) FROM {_PAIRS}
        WHERE n_accept + n_reject + n_unsure >= 2
        GROUP BY 1, 2, 3""")
    patterns = {}
    for na, nr, nu, units in patterns_rows:
        key = tuple((v, c) for v, c in zip(VERDICTS, (na, nr, nu), strict=True) if c)
        patterns[key] = units
    return {
        "pairs": pairs,
        "alpha": metrics.krippendorff_alpha_nominal(patterns),
        "units": sum(patterns.values()),
        "values": sum(sum(c for _, c in k) * u for k, u in patterns.items()),
    }


def _throughput(cur, dataset_id: int) -> list[dict]:
    rows = _fetch(cur, f"""
        SELECT reviewer_id, count(*),
               coalesce(sum(extract(epoch FROM gap)) FILTER (WHERE gap <= %(gap)s), 0),
               min(created_at), max(created_at)
        FROM (
            SELECT d.reviewer_id, d.created_at,
                   d.created_at - lag(d.created_at) OVER (
                       PARTITION BY d.reviewer_id ORDER BY d.created_at, d.id) AS gap
            FROM {T.decision} d
            WHERE d.dataset_id = %(ds)s
        ) x
        GROUP BY reviewer_id""", {"ds": dataset_id, "gap": ACTIVE_GAP})
    finished = dict(_fetch(cur, f"""
        SELECT r.reviewer_id, count(*) FROM {T.clipreview} r JOIN {T.clip} c ON c.id = r.clip_id
        WHERE c.dataset_id = %(ds)s GROUP BY r.reviewer_id""", {"ds": dataset_id}))
    names = dict(get_user_model().objects.filter(
        pk__in={r[0] for r in rows} | set(finished)).values_list("pk", "username"))
    out = []
    for reviewer_id, n, active_s, first, last in rows:
        hours = float(active_s) / 3600.0
        out.append({
            "reviewer": names.get(reviewer_id, str(reviewer_id)), "decisions": n,
            "clips_finished": int(finished.get(reviewer_id, 0)),
            "active_hours": hours, "decisions_per_hour": _ratio(n, hours),
            "first": first.isoformat(), "last": last.isoformat(),
        })
    out.sort(key=lambda x: x["reviewer"])
    return out


def _usernames(ids) -> list[str]:
    if not ids:
        return []
    return sorted(get_user_model().objects.filter(pk__in=ids).values_list("username", flat=True))


# --- entry point ---------------------------------------------------------------------------


def _original_label_scores(cur, run: PipelineRun) -> dict:
    """Mean CLAP score (pipeline.OriginalLabelScore of the run) of the original labels the
    experts kept (curated state accepted), rejected, and left unresolved."""
    rows = _fetch(cur, f"""
        SELECT CASE WHEN p.accepted THEN 'kept' WHEN NOT p.accepted THEN 'rejected'
                    ELSE 'unresolved' END, count(*), avg(s.clap_score)
        FROM {_PAIRS} p
        JOIN {OriginalLabelScore._meta.db_table} s
          ON s.run_id = %(run)s AND s.clip_id = p.clip_id AND s.label_id = p.label_id
        WHERE p.is_original
        GROUP BY 1""", {"run": run.pk})
    got = {k: (int(n), float(m) if m is not None else None) for k, n, m in rows}
    return {k: {"labels": got.get(k, (0, None))[0], "mean_clap": got.get(k, (0, None))[1]}
            for k in ("kept", "rejected", "unresolved")}


def _gold(dataset: Dataset) -> dict:
    from .gold import reviewer_gold_accuracy

    return {
        "floor": dataset.gold_floor, "rate": dataset.gold_rate,
        "exclude_flagged": dataset.gold_exclude_flagged,
        "reviewers": [g.as_dict() for g in reviewer_gold_accuracy(dataset=dataset)],
    }


def dataset_audit(*, dataset: Dataset, run: PipelineRun | None = None,
                  use_default_run: bool = True) -> dict:
    """Every audit figure of ``dataset`` as JSON-ready data. ``run`` defaults to the latest
    run (model chain or external label set, resolution.latest_run; ``run_choice`` in the
    figures says so); ``use_default_run=False`` with no run audits without one."""
    run_choice = "given" if run is not None else "none"
    if run is None and use_default_run:
        run = latest_run(dataset)
        run_choice = "latest" if run is not None else "none"
    if run is not None and run.dataset_id != dataset.pk:
        raise ValueError(f"run {run.pk} belongs to another dataset")
    scope = scope_for(dataset=dataset, run_id=run.pk if run else None)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off")
        for t in (_PAIRS, _COVERED):
            cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TEMP TABLE {_PAIRS} ON COMMIT DROP AS "
                    + pair_states_sql(scope, policy=Policy.KEEP_ORIGINAL), scope.params())
        cur.execute(f"CREATE TEMP TABLE {_COVERED} ON COMMIT DROP AS "
                    + covered_clips_sql(), scope.params())
        cur.execute(f"ANALYZE {_PAIRS}")
        clips = _fetch(cur, f"SELECT count(*) FROM {T.clip} WHERE dataset_id = %(ds)s",
                       {"ds": dataset.pk})[0][0]
        agreement = _agreement(cur) if run else None
        figures = {
            "dataset": dataset.name,
            "clips": clips,
            "run": run_summary(run),
            "run_choice": run_choice,
            "coverage": None if agreement is None else {
                "covered_clips": agreement["clips"],
                "uncovered_clips": clips - agreement["clips"],
            },
            "excluded_reviewers": _usernames(scope.excluded_reviewer_ids),
            "policy": Policy.KEEP_ORIGINAL.value,
            "label_counts": _label_counts(cur, dataset.pk, run is not None),
            "agreement": agreement,
            "original_label_scores": _original_label_scores(cur, run) if run else None,
            "gold": _gold(dataset),
            "error_categories": _error_categories(cur, dataset.pk),
            "pipeline_vs_experts": _pipeline_vs_experts(cur, run) if run else None,
            "reviewer_agreement": _reviewer_agreement(cur, dataset.pk),
            "throughput": _throughput(cur, dataset.pk),
        }
        for t in (_PAIRS, _COVERED):
            cur.execute(f"DROP TABLE IF EXISTS {t}")
    return figures
