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

from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from pipeline.models import OriginalLabelScore, PipelineRun
from relabel_app.models import Dataset, Label
from review.models import ErrorCategory

from . import metrics
from .models import Policy
from .resolution import (
    Scope,
    T,
    covered_clips_sql,
    latest_run,
    pair_states_sql,
    scope_for,
)

ACTIVE_GAP = timedelta(minutes=10)
# Points of the precision-recall curve kept for the chart and the JSON (evenly spaced by
# rank); the best-F1 point and the figures are computed on every threshold.
PR_CURVE_MAX_POINTS = 400
VERDICTS = ("accept", "reject", "unsure")

_PAIRS = "curation_audit_pairs"
_COVERED = "curation_audit_covered"
_DECIDED = "curation_audit_decided"


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


@dataclass
class Tallies:
    """The audit's figures that are sums over clips, kept as sums so that they can be added
    and taken away clip by clip: a figure over the dataset = the base's (every clip as if
    nobody had decided anything, which only a new run, import or deletion changes) less the
    decided clips' base part plus their part with the decisions (``dataset_audit_increment``).
    Every other figure counts resolved pairs or decisions only, so it comes from the
    decided clips alone."""

    # 'original' | 'run' | 'curated' -> labels on a clip -> clips ('run': covered clips)
    hist: dict[str, dict[int, int]] = field(default_factory=dict)
    # label id -> [original, kept, both] on the clips the run covers
    per_class: dict[int, list[int]] = field(default_factory=dict)
    covered: int = 0
    # 'kept' | 'rejected' | 'unresolved' -> [original labels, labels scored, sum of scores]
    scores: dict[str, list[float]] = field(default_factory=dict)

    def plus(self, other: Tallies, sign: int = 1) -> Tallies:
        def add(a: dict, b: dict, width: int | None) -> dict:
            out = {k: (list(v) if width else v) for k, v in a.items()}
            for k, v in b.items():
                if width:
                    cur = out.setdefault(k, [0] * width)
                    out[k] = [x + sign * y for x, y in zip(cur, v, strict=True)]
                else:
                    out[k] = out.get(k, 0) + sign * v
            return out

        return Tallies(
            hist={s: {n: c for n, c in add(self.hist.get(s, {}), other.hist.get(s, {}),
                                           None).items() if c}
                  for s in {*self.hist, *other.hist}},
            per_class={k: v for k, v in add(self.per_class, other.per_class, 3).items()
                       if any(v)},
            covered=self.covered + sign * other.covered,
            scores=add(self.scores, other.scores, 3),
        )

    def as_json(self) -> dict:
        return {"hist": {s: {str(n): c for n, c in h.items()} for s, h in self.hist.items()},
                "per_class": {str(k): v for k, v in self.per_class.items()},
                "covered": self.covered, "scores": self.scores}

    @classmethod
    def from_json(cls, data: dict) -> Tallies:
        return cls(hist={s: {int(n): int(c) for n, c in h.items()}
                         for s, h in data["hist"].items()},
                   per_class={int(k): [int(x) for x in v] for k, v in data["per_class"].items()},
                   covered=int(data["covered"]),
                   scores={k: [float(x) for x in v] for k, v in data["scores"].items()})


def _tallies(cur, dataset_id: int, run: PipelineRun | None,
             clips_table: str | None = None) -> Tallies:
    """The sums over the clips of the dataset (or of ``clips_table``) from the pair tables
    as they are now."""
    only = f" AND c.id IN (SELECT clip_id FROM {clips_table})" if clips_table else ""
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
            WHERE c.dataset_id = %(ds)s{only}
            GROUP BY c.id
        )
        SELECT 'original', o, count(*) FROM per GROUP BY o
        UNION ALL SELECT 'run', r, count(*) FROM per WHERE covered GROUP BY r
        UNION ALL SELECT 'curated', cu, count(*) FROM per GROUP BY cu""", {"ds": dataset_id})
    t = Tallies(hist={"original": {}, "run": {}, "curated": {}})
    for series, n, clips in rows:
        t.hist[series][int(n)] = int(clips)
    if run is None:
        return t
    for label_id, o, r, b in _fetch(cur, f"""
            SELECT p.label_id,
                   count(*) FILTER (WHERE p.is_original) AS o,
                   count(*) FILTER (WHERE p.kept) AS r,
                   count(*) FILTER (WHERE p.is_original AND p.kept) AS b
            FROM {_PAIRS} p JOIN {_COVERED} cov ON cov.clip_id = p.clip_id
            GROUP BY p.label_id
            HAVING count(*) FILTER (WHERE p.is_original OR p.kept) > 0"""):
        t.per_class[int(label_id)] = [int(o), int(r), int(b)]
    t.covered = int(_fetch(cur, f"SELECT count(*) FROM {_COVERED}")[0][0])
    for key, n, scored, total in _fetch(cur, f"""
            SELECT CASE WHEN p.accepted THEN 'kept' WHEN NOT p.accepted THEN 'rejected'
                        ELSE 'unresolved' END,
                   count(*), count(s.clap_score), coalesce(sum(s.clap_score), 0)
            FROM {_PAIRS} p
            JOIN {OriginalLabelScore._meta.db_table} s
              ON s.run_id = %(run)s AND s.clip_id = p.clip_id AND s.label_id = p.label_id
            WHERE p.is_original
            GROUP BY 1""", {"run": run.pk}):
        t.scores[key] = [int(n), int(scored), float(total)]
    return t


def _label_counts(t: Tallies, has_run: bool) -> dict:
    out: dict[str, dict | None] = {}
    for name in ("original", "run", "curated"):
        hist = {n: k for n, k in t.hist.get(name, {}).items() if k}
        clips = sum(hist.values())
        labels = sum(n * k for n, k in hist.items())
        out[name] = {
            "clips": clips, "labels": labels, "average": _ratio(labels, clips),
            "histogram": {str(n): hist[n] for n in sorted(hist)},
        }
    if not has_run:
        out["run"] = None
    return out


def _agreement(t: Tallies) -> dict:
    labels = _labels(t.per_class)
    per_class = []
    for label_id, (o, r, b) in t.per_class.items():
        per_class.append({
            **_label_fields(labels.get(label_id)), "original": o, "run": r, "both": b,
            "original_kept_fraction": _ratio(b, o), "run_original_fraction": _ratio(b, r),
        })
    per_class.sort(key=lambda x: (-x["original"], -x["run"], x["mid"]))
    o = sum(x["original"] for x in per_class)
    r = sum(x["run"] for x in per_class)
    b = sum(x["both"] for x in per_class)
    return {
        "clips": t.covered, "original_labels": o, "run_labels": r, "both": b,
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


def _original_label_scores(t: Tallies) -> dict:
    """Mean CLAP score (pipeline.OriginalLabelScore of the run) of the original labels the
    experts kept (curated state accepted), rejected, and left unresolved."""
    out = {}
    for k in ("kept", "rejected", "unresolved"):
        n, scored, total = t.scores.get(k, [0, 0, 0.0])
        out[k] = {"labels": int(n), "mean_clap": total / scored if scored else None}
    return out


def _gold(dataset: Dataset) -> dict:
    from .gold import reviewer_gold_accuracy

    return {
        "floor": dataset.gold_floor, "rate": dataset.gold_rate,
        "exclude_flagged": dataset.gold_exclude_flagged,
        "reviewers": [g.as_dict() for g in reviewer_gold_accuracy(dataset=dataset)],
    }


def _resolve_run(dataset: Dataset, run: PipelineRun | None,
                 use_default_run: bool) -> tuple[PipelineRun | None, str]:
    run_choice = "given" if run is not None else "none"
    if run is None and use_default_run:
        run = latest_run(dataset)
        run_choice = "latest" if run is not None else "none"
    if run is not None and run.dataset_id != dataset.pk:
        raise ValueError(f"run {run.pk} belongs to another dataset")
    return run, run_choice


def _build_pairs(cur, scope: Scope) -> None:
    """(Re)create the temporary pair and covered-clip tables for ``scope``."""
    for t in (_PAIRS, _COVERED):
        cur.execute(f"DROP TABLE IF EXISTS {t}")
    cur.execute(f"CREATE TEMP TABLE {_PAIRS} ON COMMIT DROP AS "
                + pair_states_sql(scope, policy=Policy.KEEP_ORIGINAL), scope.params())
    cur.execute(f"CREATE TEMP TABLE {_COVERED} ON COMMIT DROP AS "
                + covered_clips_sql(scope.clips_table), scope.params())
    cur.execute(f"ANALYZE {_PAIRS}")
    cur.execute(f"ANALYZE {_COVERED}")


def _figures(cur, *, dataset: Dataset, run: PipelineRun | None, run_choice: str,
             scope: Scope, tallies: Tallies) -> dict:
    """Every figure: the sums from ``tallies``, the rest from the pair tables as they are
    (which must hold at least every decided clip)."""
    clips = _fetch(cur, f"SELECT count(*) FROM {T.clip} WHERE dataset_id = %(ds)s",
                   {"ds": dataset.pk})[0][0]
    agreement = _agreement(tallies) if run else None
    return {
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
        "label_counts": _label_counts(tallies, run is not None),
        "agreement": agreement,
        "original_label_scores": _original_label_scores(tallies) if run else None,
        "gold": _gold(dataset),
        "error_categories": _error_categories(cur, dataset.pk),
        "pipeline_vs_experts": _pipeline_vs_experts(cur, run) if run else None,
        "reviewer_agreement": _reviewer_agreement(cur, dataset.pk),
        "throughput": _throughput(cur, dataset.pk),
    }


def dataset_audit(*, dataset: Dataset, run: PipelineRun | None = None,
                  use_default_run: bool = True) -> dict:
    """Every audit figure of ``dataset`` as JSON-ready data, computed over every clip.
    ``run`` defaults to the latest run (model chain or external label set,
    resolution.latest_run; ``run_choice`` in the figures says so); ``use_default_run=False``
    with no run audits without one."""
    run, run_choice = _resolve_run(dataset, run, use_default_run)
    scope = scope_for(dataset=dataset, run_id=run.pk if run else None)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off")
        _build_pairs(cur, scope)
        figures = _figures(cur, dataset=dataset, run=run, run_choice=run_choice, scope=scope,
                           tallies=_tallies(cur, dataset.pk, run))
        for t in (_PAIRS, _COVERED):
            cur.execute(f"DROP TABLE IF EXISTS {t}")
    return figures


def audit_base_key(*, dataset: Dataset, run: PipelineRun | None) -> list:
    """What the base tallies depend on: the dataset's clips and original labels, the run's
    state and rows. Counts with the newest ids, so an import, a deletion or a run that
    wrote more rows changes it (index-only scans: about a second at 2M clips)."""
    with connection.cursor() as cur:
        cur.execute(f"""
            SELECT (SELECT count(*) FROM {T.clip} WHERE dataset_id = %(ds)s),
                   (SELECT coalesce(max(id), 0) FROM {T.clip} WHERE dataset_id = %(ds)s),
                   (SELECT count(*) FROM {T.cliplabel} cl JOIN {T.clip} c ON c.id = cl.clip_id
                    WHERE c.dataset_id = %(ds)s),
                   (SELECT coalesce(max(cl.id), 0) FROM {T.cliplabel} cl
                    JOIN {T.clip} c ON c.id = cl.clip_id WHERE c.dataset_id = %(ds)s)""",
                    {"ds": dataset.pk})
        key: list = list(cur.fetchone())
        if run is not None:
            run.refresh_from_db(fields=["status", "finished_at"])
            cur.execute(f"""
                SELECT (SELECT count(*) FROM {T.candidate} WHERE run_id = %(run)s),
                       (SELECT coalesce(max(id), 0) FROM {T.candidate} WHERE run_id = %(run)s),
                       (SELECT count(*) FROM {T.clipresult} WHERE run_id = %(run)s),
                       (SELECT count(*) FROM {OriginalLabelScore._meta.db_table}
                        WHERE run_id = %(run)s)""", {"run": run.pk})
            key += [run.pk, run.status,
                    run.finished_at.isoformat() if run.finished_at else None,
                    *cur.fetchone()]
    return [int(x) if isinstance(x, int) else x for x in key]


def audit_base_tallies(*, dataset: Dataset, run: PipelineRun | None) -> Tallies:
    """The sums over every clip as if nobody had decided anything (the slow part of an
    audit: every clip's pairs; computed again only when ``audit_base_key`` changes)."""
    scope = Scope(dataset_id=dataset.pk, run_id=run.pk if run else None, no_decisions=True)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off")
        _build_pairs(cur, scope)
        return _tallies(cur, dataset.pk, run)


def dataset_audit_increment(*, dataset: Dataset, run: PipelineRun | None, base: Tallies,
                            run_choice: str = "given") -> dict:
    """The same figures as ``dataset_audit``, from the base tallies and the decided clips
    only (clips with a decision or an adjudication): their pairs are resolved twice, with
    the decisions and without, and the difference is added to the base. At 2M clips with
    10,000 decided clips this reads a few hundred thousand rows instead of 15 million."""
    scope = scope_for(dataset=dataset, run_id=run.pk if run else None)
    scope = replace(scope, clips_table=_DECIDED)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off")
        cur.execute(f"DROP TABLE IF EXISTS {_DECIDED}")
        cur.execute(f"""
            CREATE TEMP TABLE {_DECIDED} ON COMMIT DROP AS
            SELECT DISTINCT d.clip_id FROM {T.decision} d WHERE d.dataset_id = %(ds)s
            UNION
            SELECT a.clip_id FROM {T.adjudication} a JOIN {T.clip} c ON c.id = a.clip_id
            WHERE c.dataset_id = %(ds)s""", {"ds": dataset.pk})
        cur.execute(f"ANALYZE {_DECIDED}")
        _build_pairs(cur, replace(scope, no_decisions=True))
        without = _tallies(cur, dataset.pk, run, _DECIDED)
        _build_pairs(cur, scope)
        tallies = base.plus(without, -1).plus(_tallies(cur, dataset.pk, run, _DECIDED))
        figures = _figures(cur, dataset=dataset, run=run, run_choice=run_choice, scope=scope,
                           tallies=tallies)
        for t in (_PAIRS, _COVERED, _DECIDED):
            cur.execute(f"DROP TABLE IF EXISTS {t}")
    return figures
