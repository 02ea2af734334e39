"""Per-class CLAP thresholds learned from expert decisions, and their application to a run's
stored scores as a derived run.

Fit (``threshold_set_fit``): the samples are the run's *decided candidates*, the same as
the audit's threshold curve: selected candidates with a CLAP score whose (clip, label) has
a resolved curated state (curation.resolution: adjudication, else the reviewers' majority).
For every class with at least ``min_decisions`` samples, the threshold is the score that
maximises F1 of "keep when score >= t" on that class's samples (ties: the highest
threshold, curation.metrics.best_f1); the global threshold is the same over all samples
and applies to every other class. A class with no accepted sample gets a threshold just
above its highest score (keep nothing).

Honesty (``kfold_evaluation``): clips are split into k folds; for each fold the thresholds
are fitted on the other folds only and applied to the held-out clips, and precision, recall
and F1 of the global threshold and of the per-class thresholds are summed over the held-out
predictions of every fold (micro). So a curator sees whether per-class thresholds pay on
clips they were not fitted on.

Apply (``threshold_set_apply``): one transaction of INSERT ... SELECT statements: a new
PipelineRun (kind derived, source_run and threshold_set set) with the source's clip
results (statuses only: the model text stays with the source run, where the review page
reads it, review.selectors._derived_text_from_source), its selected candidates with ``kept`` recomputed as
``clap_score >= coalesce(class threshold, global threshold)``, and its original-label
scores. No model runs; the derived run is reviewed, audited and exported like any run.
"""

from __future__ import annotations

import copy
import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from pipeline import chain
from pipeline.models import (
    Candidate,
    ClassThreshold,
    ClipResult,
    OriginalLabelScore,
    PipelineRun,
    ThresholdSet,
)
from pipeline.threshold_sets import active_threshold_set
from pipeline.threshold_sets import clap_model_of as _clap_model_of
from relabel_app.models import Dataset, Label
from relabel_app.roles import user_is_curator

from . import metrics
from .resolution import Scope, T, decided_ctes

DEFAULT_MIN_DECISIONS = 20
DEFAULT_FOLDS = 5


class ThresholdError(Exception):
    """The fit or the application cannot be done; nothing was written."""


@dataclass(frozen=True)
class Sample:
    clip_id: int
    label_id: int
    score: float
    accepted: bool


@dataclass(frozen=True)
class ClassFit:
    label_id: int
    decisions: int
    positives: int
    threshold: float
    f1: float


@dataclass
class Fit:
    global_threshold: float | None
    global_f1: float | None
    per_class: dict[int, ClassFit] = field(default_factory=dict)

    def threshold_for(self, label_id: int) -> float | None:
        c = self.per_class.get(label_id)
        return c.threshold if c is not None else self.global_threshold


def clap_model_of(run: PipelineRun) -> str:
    """The CLAP model a run's scores come from, as its resolved profile names it."""
    return _clap_model_of(run.config, run.profile_name)


# --- fitting (pure) -------------------------------------------------------------------------


def _best(samples: Sequence[Sample]) -> tuple[float, float]:
    """(threshold, F1) maximising F1 over ``samples``; keep nothing when none is accepted."""
    groups: dict[float, list[int]] = {}
    for s in samples:
        g = groups.setdefault(s.score, [0, 0])
        g[0 if s.accepted else 1] += 1
    if not any(g[0] for g in groups.values()):
        return math.nextafter(max(groups), math.inf), 0.0
    best = metrics.best_f1(metrics.pr_curve((score, a, r) for score, (a, r) in groups.items()))
    return best.threshold, best.f1


def fit(samples: Sequence[Sample], *, min_decisions: int = DEFAULT_MIN_DECISIONS) -> Fit:
    """Thresholds maximising F1: one per class with at least ``min_decisions`` samples, a
    global one (over all samples) for the rest."""
    if not samples:
        return Fit(global_threshold=None, global_f1=None)
    g_threshold, g_f1 = _best(samples)
    by_label: dict[int, list[Sample]] = {}
    for s in samples:
        by_label.setdefault(s.label_id, []).append(s)
    per_class = {}
    for label_id, ss in by_label.items():
        if len(ss) < min_decisions:
            continue
        t, f1 = _best(ss)
        per_class[label_id] = ClassFit(label_id=label_id, decisions=len(ss),
                                       positives=sum(s.accepted for s in ss), threshold=t, f1=f1)
    return Fit(global_threshold=g_threshold, global_f1=g_f1, per_class=per_class)


def fold_of(clip_id: int, folds: int) -> int:
    """A clip's fold: a fixed hash of its id, so a rerun splits the same way."""
    return zlib.crc32(clip_id.to_bytes(8, "little")) % folds


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, kept: bool, accepted: bool) -> None:
        if kept and accepted:
            self.tp += 1
        elif kept:
            self.fp += 1
        elif accepted:
            self.fn += 1
        else:
            self.tn += 1

    def as_dict(self) -> dict:
        p, r = metrics.precision_recall(self.tp, self.fp, self.fn)
        f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r else (
            0.0 if p is not None or r is not None else None)
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
                "precision": p, "recall": r,
                "f1": f1}


def kfold_evaluation(samples: Sequence[Sample], *, min_decisions: int = DEFAULT_MIN_DECISIONS,
                     folds: int = DEFAULT_FOLDS,
                     fit_fn: Callable[..., Fit] = fit) -> dict:
    """Precision, recall and F1 on held-out clips of the global threshold and of the
    per-class thresholds, each fold's thresholds fitted without that fold's clips."""
    clips = sorted({s.clip_id for s in samples})
    folds = min(folds, len(clips))
    if folds < 2:
        return {"folds": 0, "clips": len(clips), "samples": len(samples),
                "global": None, "per_class": None,
                "note": "fewer than two decided clips: nothing to hold out"}
    by_fold: dict[int, list[Sample]] = {}
    for s in samples:
        by_fold.setdefault(fold_of(s.clip_id, folds), []).append(s)
    g, pc = Counts(), Counts()
    for k in range(folds):
        held_out = by_fold.get(k, [])
        if not held_out:
            continue
        train = [s for j, ss in by_fold.items() if j != k for s in ss]
        f = fit_fn(train, min_decisions=min_decisions)
        for s in held_out:
            if f.global_threshold is None:
                g.add(False, s.accepted)
                pc.add(False, s.accepted)
                continue
            g.add(s.score >= f.global_threshold, s.accepted)
            pc.add(s.score >= f.threshold_for(s.label_id), s.accepted)
    return {"folds": folds, "clips": len(clips), "samples": len(samples),
            "global": g.as_dict(), "per_class": pc.as_dict()}


# --- reading samples ------------------------------------------------------------------------


def decided_samples(*, run: PipelineRun) -> list[Sample]:
    """The run's decided candidates (see the module doc), one per (clip, label)."""
    scope = Scope(dataset_id=run.dataset_id, run_id=run.pk)
    sql = "WITH " + decided_ctes(scope) + f"""
        SELECT d.clip_id, d.label_id, max(k.clap_score), bool_or(d.accepted)
        FROM decided d
        JOIN {T.candidate} k ON k.clip_id = d.clip_id AND k.label_id = d.label_id
                            AND k.run_id = %(run_id)s AND k.selected
        WHERE d.accepted IS NOT NULL AND k.clap_score IS NOT NULL
        GROUP BY d.clip_id, d.label_id
        ORDER BY d.clip_id, d.label_id"""
    with connection.cursor() as cur:
        cur.execute(sql, scope.params())
        return [Sample(c, lab, float(s), bool(a)) for c, lab, s, a in cur.fetchall()]


# --- services ------------------------------------------------------------------------------


def _require_curator(user) -> None:
    if user is not None and not user_is_curator(user):
        raise PermissionDenied("Only curators fit and apply threshold sets.")


def threshold_set_fit(*, dataset: Dataset, run: PipelineRun, name: str | None = None,
                      min_decisions: int = DEFAULT_MIN_DECISIONS, folds: int = DEFAULT_FOLDS,
                      user=None) -> ThresholdSet:
    """Fit per-class thresholds on the run's decided candidates and store them as the next
    version of the named set (default name: the dataset's), with the k-fold evaluation."""
    _require_curator(user)
    if run.dataset_id != dataset.pk:
        raise ThresholdError(f"run {run.pk} belongs to another dataset")
    if min_decisions < 1:
        raise ThresholdError("--min-decisions must be at least 1")
    name = (name or dataset.name).strip()
    if not name or len(name) > 100:
        raise ThresholdError("a threshold set needs a name of 1 to 100 characters")
    samples = decided_samples(run=run)
    if not samples:
        raise ThresholdError(
            f"run {run.pk} has no decided candidates with a CLAP score: nothing to fit on")
    f = fit(samples, min_decisions=min_decisions)
    evaluation = kfold_evaluation(samples, min_decisions=min_decisions, folds=folds)
    evaluation.update({
        "samples": len(samples), "positives": sum(s.accepted for s in samples),
        "global_f1": f.global_f1, "run_threshold": run.threshold,
    })
    with transaction.atomic():
        # Versions per name: lock the name's rows so two fits cannot take one version.
        latest = (ThresholdSet.objects.select_for_update().filter(name=name)
                  .aggregate(v=Max("version"))["v"])
        ts = ThresholdSet.objects.create(
            name=name, version=(latest or 0) + 1, clap_model=clap_model_of(run),
            dataset=dataset, fitted_from=run, global_threshold=f.global_threshold,
            min_decisions=min_decisions, evaluation=evaluation,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        ClassThreshold.objects.bulk_create([
            ClassThreshold(threshold_set=ts, label_id=c.label_id, decisions=c.decisions,
                           positives=c.positives, threshold=c.threshold, f1=c.f1)
            for c in f.per_class.values()
        ])
    return ts


def threshold_set_by_name(name: str) -> ThresholdSet | None:
    """``NAME`` (the latest version) or ``NAME@VERSION`` / ``NAME v3``."""
    version = None
    for sep in ("@", " v"):
        if sep in name:
            base, _, v = name.rpartition(sep)
            if v.isdigit():
                name, version = base, int(v)
                break
    qs = ThresholdSet.objects.filter(name=name)
    if version is not None:
        qs = qs.filter(version=version)
    return qs.order_by("-version").first()


@dataclass
class ThresholdRow:
    label: Label
    decisions: int
    positives: int
    threshold: float
    f1: float


def threshold_set_rows(ts: ThresholdSet) -> list[ThresholdRow]:
    rows = [ThresholdRow(label=c.label, decisions=c.decisions, positives=c.positives,
                         threshold=c.threshold, f1=c.f1)
            for c in ts.classes.select_related("label")]
    rows.sort(key=lambda r: (-r.decisions, r.label.index if r.label.index is not None else 9999))
    return rows


@dataclass
class ThresholdPanel:
    """What the audit page's threshold panel shows for a run."""

    run: PipelineRun | None
    scored: bool  # the run has CLAP scores a threshold set can apply to
    threshold_set: ThresholdSet | None
    rows: list[ThresholdRow]
    derived_runs: list[PipelineRun]

    @property
    def evaluation(self) -> dict:
        return self.threshold_set.evaluation if self.threshold_set else {}

    @property
    def pays(self) -> bool | None:
        """Whether per-class thresholds beat the global one in F1 on held-out clips."""
        ev = self.evaluation
        g, p = ev.get("global") or {}, ev.get("per_class") or {}
        if g.get("f1") is None or p.get("f1") is None:
            return None
        return p["f1"] > g["f1"]


def threshold_panel_data(*, run: PipelineRun | None) -> ThresholdPanel:
    """The run's active threshold set, its per-class rows and the runs derived with it
    (four queries)."""
    if run is None:
        return ThresholdPanel(run=None, scored=False, threshold_set=None, rows=[],
                              derived_runs=[])
    ts = active_threshold_set(run)
    return ThresholdPanel(
        run=run, scored=run.kind != PipelineRun.Kind.EXTERNAL, threshold_set=ts,
        rows=threshold_set_rows(ts) if ts else [],
        derived_runs=list(ts.runs.order_by("-created_at", "-id")[:10]) if ts else [],
    )


def _table(model) -> str:
    return model._meta.db_table


def _copy_columns(model, skip: Iterable[str]) -> list[str]:
    return [f.column for f in model._meta.concrete_fields
            if not f.primary_key and f.column not in set(skip)]


def threshold_set_apply(*, run: PipelineRun, threshold_set: ThresholdSet,
                        user=None) -> PipelineRun:
    """A derived run of ``run`` whose kept candidates follow ``threshold_set``: set-based
    INSERT ... SELECT of the source's clip results, selected candidates (kept recomputed)
    and original-label scores, in one transaction."""
    _require_curator(user)
    if run.status != PipelineRun.Status.DONE:
        raise ThresholdError(f"run {run.pk} is {run.status}, not done")
    if run.kind == PipelineRun.Kind.EXTERNAL:
        raise ThresholdError(f"run {run.pk} is an external label set: it has no CLAP scores")
    if clap_model_of(run) != threshold_set.clap_model:
        raise ThresholdError(
            f"threshold set {threshold_set} was fitted for CLAP model "
            f"{threshold_set.clap_model!r}; run {run.pk} scored with {clap_model_of(run)!r}")
    config = copy.deepcopy(run.config or {})
    config.setdefault("filter", {})["threshold"] = threshold_set.global_threshold
    config["derived"] = {
        "source_run": run.pk, "threshold_set": threshold_set.pk,
        "threshold_set_name": threshold_set.name, "threshold_set_version": threshold_set.version,
        "source_threshold": run.threshold,
    }
    now = timezone.now()
    score_cols = _copy_columns(OriginalLabelScore, skip=["run_id"])
    with transaction.atomic(), connection.cursor() as cur:
        derived = PipelineRun.objects.create(
            dataset_id=run.dataset_id, kind=PipelineRun.Kind.DERIVED,
            profile_name=run.profile_name, config=config, status=PipelineRun.Status.DONE,
            clip_count=run.clip_count, source_run=run, threshold_set=threshold_set,
            created_by=user if user is not None and user.is_authenticated else None,
            started_at=now, finished_at=now,
        )
        # Every row copied references rows that exist (the source's); per-row FK checks of
        # 10M rows would cost more than the copy itself.
        cur.execute("SET LOCAL jit = off")  # compiling costs more than it saves here
        cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if cur.fetchone()[0]:
            cur.execute("SET LOCAL session_replication_role = replica")
        # The per-class thresholds as one array indexed by label id (the global threshold
        # where a class has none, so the array has no NULLs and a lookup is O(1)): cheaper
        # per row than joining 10M candidates to the ClassThreshold rows.
        per_class = dict(threshold_set.classes.values_list("label_id", "threshold"))
        g = threshold_set.global_threshold
        by_label = [per_class.get(i, g) for i in range(1, max(per_class, default=0) + 1)]
        params = {"src": run.pk, "dst": derived.pk, "thr": by_label, "g": g}
        # Clip results without the model text (captions, raw answers: 1.3 kB a clip, 2.7 GB
        # at 2M clips); the review page reads those from the source run
        # (review.selectors._derived_text_from_source). Statuses, errors and the summary flag stay, so the
        # derived run covers exactly the clips its source covers.
        statuses = ", ".join(chain.status_fields())
        cur.execute(f"""
            INSERT INTO {_table(ClipResult)} (run_id, clip_id, {statuses}, caption, summary,
                summary_ok, predict, free_labels, best_attempt, error_stage, error, timings,
                updated_at)
            SELECT %(dst)s, clip_id, {statuses}, '{{}}'::jsonb, '', summary_ok, '{{}}'::jsonb,
                   '[]'::jsonb,
                   best_attempt, error_stage, error, '{{}}'::jsonb, now()
            FROM {_table(ClipResult)} WHERE run_id = %(src)s
            ORDER BY clip_id""", params)
        # In the order of the unique index (run, clip, attempt, label), read from the same
        # index of the source, so each index the rows go into is filled at its end (pkey,
        # unique), in one forward sweep (clip, run) or at one place per label, not at
        # random. 10M rows: bench/bench_thresholds.py (apply_thresholds_2m_s).
        cur.execute(f"""
            INSERT INTO {_table(Candidate)} (run_id, clip_id, label_id, attempt, tier, phrase,
                                             match_score, clap_score, kept, selected)
            SELECT %(dst)s, k.clip_id, k.label_id, k.attempt, k.tier, k.phrase, k.match_score,
                   k.clap_score,
                   coalesce(k.clap_score >= coalesce((%(thr)s::float8[])[k.label_id], %(g)s),
                            false), true
            FROM {_table(Candidate)} k
            WHERE k.run_id = %(src)s AND k.selected
            ORDER BY k.clip_id, k.attempt, k.label_id""", params)
        cur.execute(
            f"INSERT INTO {_table(OriginalLabelScore)} (run_id, {', '.join(score_cols)}) "
            f"SELECT %(dst)s, {', '.join(score_cols)} FROM {_table(OriginalLabelScore)} "
            "WHERE run_id = %(src)s", params)
    return derived


def derived_run_kept_counts(run: PipelineRun) -> tuple[int, int]:
    """(candidates, kept) of a run."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*), count(*) FILTER (WHERE kept) FROM {_table(Candidate)} "
                    "WHERE run_id = %s AND selected", [run.pk])
        n, kept = cur.fetchone()
    return int(n), int(kept)
