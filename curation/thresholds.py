"""Per-class CLAP thresholds learned from expert decisions, and their application to a run's
stored scores as a derived run.

Fit (``threshold_set_fit``): the samples are the run's *decided candidates*, the same as
the audit's threshold curve: selected candidates with a CLAP score whose (clip, label) has
a resolved curated state (curation.resolution: adjudication, else the reviewers' majority).
For every class with at least ``min_decisions`` samples, the threshold is the score that
maximises F1 of "keep when score >= t" on that class's samples (ties: the highest
threshold, curation.metrics.best_f1); the global threshold is the same over all samples
and applies to every other class.

Too few to fit (issue 21): F1 needs both kinds of answer. A class with fewer than
``MIN_EACH`` accepted or fewer than ``MIN_EACH`` rejected samples gets no threshold of its
own (refused, with its reason, stored in the set's evaluation; the global one applies), and
the whole fit is refused (ThresholdError, nothing written) when all samples together have
fewer than ``MIN_EACH`` of either: a "best F1 0.000" threshold fitted on rejections alone
keeps nothing or everything and says nothing.

Honesty (``kfold_evaluation``): clips are split into k folds; for each fold the thresholds
are fitted on the other folds only and applied to the held-out clips, and precision, recall
and F1 of the global threshold and of the per-class thresholds are summed over the held-out
predictions of every fold (micro). So a curator sees whether per-class thresholds pay on
clips they were not fitted on.

Apply (``threshold_set_apply``): INSERT ... SELECT statements, by two connections at once,
into a run nobody counts until one short UPDATE makes it done (all or nothing): a new
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

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
from relabel_app.ids import INTEGER_MAX, looks_like_id, parse_int
from relabel_app.models import Dataset, Label
from relabel_app.roles import user_is_curator

from . import metrics
from .resolution import Scope, T, decided_ctes

DEFAULT_MIN_DECISIONS = 20
DEFAULT_FOLDS = 5
# Accepted and rejected samples each that a threshold (per class, or global) needs.
MIN_EACH = 3


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


@dataclass(frozen=True)
class ClassRefused:
    """A class with enough decisions but too few of one answer for a threshold of its own."""

    label_id: int
    decisions: int
    positives: int

    @property
    def negatives(self) -> int:
        return self.decisions - self.positives

    @property
    def reason(self) -> str:
        return too_few_reason(self.positives, self.negatives)


def too_few_reason(accepted: int, rejected: int) -> str:
    """Why ``accepted`` / ``rejected`` samples cannot fit a threshold ("" when they can)."""
    if accepted >= MIN_EACH and rejected >= MIN_EACH:
        return ""
    return (f"{accepted} accepted and {rejected} rejected: a threshold needs at least "
            f"{MIN_EACH} accepted and {MIN_EACH} rejected decisions")


@dataclass
class Fit:
    global_threshold: float | None
    global_f1: float | None
    per_class: dict[int, ClassFit] = field(default_factory=dict)
    refused: dict[int, ClassRefused] = field(default_factory=dict)

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
    per_class, refused = {}, {}
    for label_id, ss in by_label.items():
        if len(ss) < min_decisions:
            continue
        positives = sum(s.accepted for s in ss)
        if too_few_reason(positives, len(ss) - positives):
            refused[label_id] = ClassRefused(label_id=label_id, decisions=len(ss),
                                             positives=positives)
            continue
        t, f1 = _best(ss)
        per_class[label_id] = ClassFit(label_id=label_id, decisions=len(ss),
                                       positives=positives, threshold=t, f1=f1)
    return Fit(global_threshold=g_threshold, global_f1=g_f1, per_class=per_class,
               refused=refused)


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
    positives = sum(s.accepted for s in samples)
    if reason := too_few_reason(positives, len(samples) - positives):
        raise ThresholdError(f"too few decisions to fit on run {run.pk}: {reason}")
    f = fit(samples, min_decisions=min_decisions)
    evaluation = kfold_evaluation(samples, min_decisions=min_decisions, folds=folds)
    evaluation.update({
        "samples": len(samples), "positives": positives,
        "global_f1": f.global_f1, "run_threshold": run.threshold,
        "refused_classes": _refused_for_display(f.refused.values()),
        "warnings": _fit_warnings(samples, f, min_decisions=min_decisions),
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


def _refused_for_display(refused: Iterable[ClassRefused]) -> list[dict]:
    labels = Label.objects.in_bulk([r.label_id for r in refused])
    out = [{"label_id": r.label_id, "mid": labels[r.label_id].mid,
            "name": labels[r.label_id].name, "decisions": r.decisions,
            "accepted": r.positives, "rejected": r.negatives, "reason": r.reason}
           for r in refused if r.label_id in labels]
    out.sort(key=lambda r: (-r["decisions"], r["name"]))
    return out


def _fit_warnings(samples: Sequence[Sample], f: Fit, *, min_decisions: int) -> list[str]:
    """What a curator should know before trusting the set (stored with it)."""
    out = []
    if len(samples) < min_decisions:
        out.append(f"The global threshold rests on {len(samples)} decided candidates, fewer "
                   f"than the {min_decisions} a class needs for its own.")
    if f.refused:
        n = len(f.refused)
        out.append(f"{n} class{'es' if n != 1 else ''} with at least {min_decisions} "
                   f"decisions {'have' if n != 1 else 'has'} no threshold of its own: too few "
                   f"accepted or rejected (at least {MIN_EACH} of each needed); the global "
                   "threshold applies.")
    if not f.per_class:
        out.append(f"No class has {min_decisions} decisions with at least {MIN_EACH} "
                   "accepted and rejected: every class uses the global threshold.")
    return out


def threshold_set_by_name(name: str) -> ThresholdSet | None:
    """``NAME`` (the latest version) or ``NAME@VERSION`` / ``NAME v3``. A version that is
    not a whole number in the column's range is a `BadNumber`."""
    version = None
    for sep in ("@", " v"):
        if sep in name:
            base, _, v = name.rpartition(sep)
            if looks_like_id(v):
                name, version = base, parse_int(v, name="version", min_value=1,
                                                max_value=INTEGER_MAX)
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


# Connections that copy a derived run's rows at once (threshold_set_apply): the copy is
# CPU-bound in the database backend (WAL and index entries of 10M rows), one core each.
APPLY_PARTS = 2
# A derived run still pending this long after its creation was left by a process that died
# while copying: the next apply deletes it with its rows.
ABANDONED_AFTER = timedelta(hours=1)


def _copy_derived_rows(cur, params: dict, clip_range: tuple[int, int] | None) -> None:
    """INSERT ... SELECT of the source's clip results, selected candidates (kept recomputed
    from the per-class thresholds) and original-label scores into the derived run, for the
    clips with lo <= id < hi (every clip when clip_range is None)."""
    only = ""
    if clip_range is not None:
        params = {**params, "lo": clip_range[0], "hi": clip_range[1]}
        only = " AND clip_id >= %(lo)s AND clip_id < %(hi)s"
    # Every row copied references rows that exist (the source's); per-row FK checks of
    # 10M rows would cost more than the copy itself.
    cur.execute("SET LOCAL jit = off")  # compiling costs more than it saves here
    cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if cur.fetchone()[0]:
        cur.execute("SET LOCAL session_replication_role = replica")
    # Clip results without the model text (captions, raw answers: 1.3 kB a clip, 2.7 GB
    # at 2M clips); the review page reads those from the source run
    # (review.selectors._derived_text_from_source). Statuses, errors and the summary flag
    # stay, so the derived run covers exactly the clips its source covers.
    statuses = ", ".join(chain.status_fields())
    cur.execute(f"""
        INSERT INTO {_table(ClipResult)} (run_id, clip_id, {statuses}, caption, summary,
            summary_ok, predict, free_labels, best_attempt, error_stage, error, timings,
            updated_at)
        SELECT %(dst)s, clip_id, {statuses}, '{{}}'::jsonb, '', summary_ok, '{{}}'::jsonb,
               '[]'::jsonb,
               best_attempt, error_stage, error, '{{}}'::jsonb, now()
        FROM {_table(ClipResult)} WHERE run_id = %(src)s{only}
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
        WHERE k.run_id = %(src)s AND k.selected{only.replace("clip_id", "k.clip_id")}
        ORDER BY k.clip_id, k.attempt, k.label_id""", params)
    score_cols = _copy_columns(OriginalLabelScore, skip=["run_id"])
    cur.execute(
        f"INSERT INTO {_table(OriginalLabelScore)} (run_id, {', '.join(score_cols)}) "
        f"SELECT %(dst)s, {', '.join(score_cols)} FROM {_table(OriginalLabelScore)} "
        f"WHERE run_id = %(src)s{only}", params)


def _clip_ranges(run: PipelineRun, parts: int) -> list[tuple[int, int]]:
    """``parts`` ranges of clip ids [lo, hi) splitting the run's clip ids evenly by value
    (two reads of the unique index's ends; a dataset's clips are imported in blocks, so
    each range gets about as many rows), covering every id."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT min(clip_id), max(clip_id) FROM {_table(ClipResult)} "
                    "WHERE run_id = %s", [run.pk])
        lo, hi = cur.fetchone()
    if lo is None:
        return [(0, 2**63 - 1)]
    step = max((hi - lo + 1) // parts, 1)
    bounds = [0, *(lo + step * i for i in range(1, parts)), 2**63 - 1]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if a < b]


def _copy_part(params: dict, clip_range: tuple[int, int]) -> None:
    """One connection's share (a thread of its own: Django gives each thread its own
    connection), committed on its own."""
    try:
        with transaction.atomic(), connection.cursor() as cur:
            _copy_derived_rows(cur, params, clip_range)
    finally:
        connection.close()


def derived_run_discard(run_id: int) -> None:
    """Delete a derived run that was not finished, with every row copied for it."""
    with transaction.atomic(), connection.cursor() as cur:
        for model in (Candidate, OriginalLabelScore, ClipResult):
            cur.execute(f"DELETE FROM {_table(model)} WHERE run_id = %s", [run_id])
        PipelineRun.objects.filter(pk=run_id).delete()


def derived_runs_discard_abandoned(*, older_than: timedelta = ABANDONED_AFTER) -> list[int]:
    """Derived runs a dead process left half-copied (still pending, never started)."""
    ids = list(PipelineRun.objects.filter(
        kind=PipelineRun.Kind.DERIVED, status=PipelineRun.Status.PENDING,
        started_at__isnull=True, created_at__lt=timezone.now() - older_than,
    ).values_list("pk", flat=True))
    for pk in ids:
        derived_run_discard(pk)
    return ids


def threshold_set_apply(*, run: PipelineRun, threshold_set: ThresholdSet,
                        user=None, parts: int = APPLY_PARTS) -> PipelineRun:
    """A derived run of ``run`` whose kept candidates follow ``threshold_set``: set-based
    INSERT ... SELECT of the source's clip results, selected candidates (kept recomputed)
    and original-label scores.

    All or nothing for everyone else: the rows are copied by ``parts`` connections at once
    (one range of clips each, committed on its own) into a run that is pending and not
    started, which no page, queue or audit counts (pipeline.selectors.counting_runs); one
    short UPDATE then makes it done. A failure deletes the run and its rows; a process
    that dies leaves a pending run that the next apply deletes (ABANDONED_AFTER). Inside a
    caller's transaction (or with parts=1) the copy runs in that one transaction."""
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
    # The per-class thresholds as one array indexed by label id (the global threshold
    # where a class has none, so the array has no NULLs and a lookup is O(1)): cheaper
    # per row than joining 10M candidates to the ClassThreshold rows.
    per_class = dict(threshold_set.classes.values_list("label_id", "threshold"))
    g = threshold_set.global_threshold
    by_label = [per_class.get(i, g) for i in range(1, max(per_class, default=0) + 1)]
    in_caller_transaction = connection.in_atomic_block
    if not in_caller_transaction:
        derived_runs_discard_abandoned()
    now = timezone.now()
    derived = PipelineRun.objects.create(
        dataset_id=run.dataset_id, kind=PipelineRun.Kind.DERIVED,
        profile_name=run.profile_name, config=config, status=PipelineRun.Status.PENDING,
        clip_count=run.clip_count, source_run=run, threshold_set=threshold_set,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    params = {"src": run.pk, "dst": derived.pk, "thr": by_label, "g": g}
    if in_caller_transaction or parts <= 1:
        with transaction.atomic(), connection.cursor() as cur:
            _copy_derived_rows(cur, params, None)
            PipelineRun.objects.filter(pk=derived.pk).update(
                status=PipelineRun.Status.DONE, started_at=now, finished_at=timezone.now())
    else:
        try:
            ranges = _clip_ranges(run, parts)
            with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
                for done in [pool.submit(_copy_part, params, r) for r in ranges]:
                    done.result()  # re-raises a part's error
            PipelineRun.objects.filter(pk=derived.pk).update(
                status=PipelineRun.Status.DONE, started_at=now, finished_at=timezone.now())
        except BaseException:
            derived_run_discard(derived.pk)
            raise
    derived.refresh_from_db()
    return derived


def derived_run_kept_counts(run: PipelineRun) -> tuple[int, int]:
    """(candidates, kept) of a run."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*), count(*) FILTER (WHERE kept) FROM {_table(Candidate)} "
                    "WHERE run_id = %s AND selected", [run.pk])
        n, kept = cur.fetchone()
    return int(n), int(kept)
