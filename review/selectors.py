"""Reads of the review app: the clip page, progress, counters, rapid mode (the queue's
pick and peek are in review.queue).

The clip page takes a fixed number of queries whatever the number of labels: the ontology
(names, descriptions, paths, ancestors) comes from the in-process cache of
relabel_app.label_info."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Count

from pipeline.models import Candidate, ClipResult, OriginalLabelScore, PipelineRun
from pipeline.selectors import COUNTS_SQL, ORDER_SQL, run_threshold_sql
from relabel_app.label_info import LabelInfo, ontology
from relabel_app.models import Clip, ClipLabel, Dataset
from relabel_app.roles import user_is_curator

from .models import ClipReview, Decision, ErrorCategory, QueueSlot, ReviewerSettings, Verdict

# --- model outputs ----------------------------------------------------------------------

ROUND_TITLES = {"round1": "Description", "round2": "Speech", "round3": "Music"}
PRESENCE_OF_ROUND = {"round2": "speech", "round3": "music"}


@dataclass
class CaptionRoundView:
    key: str
    title: str
    prompt: str
    answer: str | None
    skipped: bool
    denied: bool
    presence: dict | None


@dataclass
class CaptionAttemptView:
    number: int
    rounds: list[CaptionRoundView]
    summary: str
    ok: bool
    reason: str


@dataclass
class ModelOutputs:
    run: PipelineRun
    result: ClipResult
    threshold: float | None
    attempts: list[CaptionAttemptView]
    chosen: CaptionAttemptView | None
    summary: str
    summary_ok: bool | None
    caption_reason: str
    free_labels: list[str]

    @property
    def random_weights(self) -> bool:
        return self.run.random_weights

    @property
    def attempt_count(self) -> int:
        return len(self.attempts)

    @property
    def other_attempts(self) -> list[CaptionAttemptView]:
        return [a for a in self.attempts if a is not self.chosen]


def _caption_attempts(caption: dict) -> tuple[list[CaptionAttemptView], CaptionAttemptView | None]:
    """Read ClipResult.caption (dataclasses.asdict of pipeline.stages.caption.CaptionResult)
    defensively: a missing key shows as nothing rather than breaking the page."""
    attempts = []
    for i, a in enumerate(caption.get("attempts") or []):
        if not isinstance(a, dict):
            continue
        presence = a.get("presence") or {}
        rounds = []
        for r in a.get("rounds") or []:
            if not isinstance(r, dict):
                continue
            key = str(r.get("name", ""))
            rounds.append(CaptionRoundView(
                key=key, title=ROUND_TITLES.get(key, key), prompt=str(r.get("prompt") or ""),
                answer=r.get("answer"), skipped=bool(r.get("skipped")),
                denied=bool(r.get("denied")),
                presence=presence.get(PRESENCE_OF_ROUND.get(key, ""), None),
            ))
        attempts.append(CaptionAttemptView(
            number=int(a.get("number") or i + 1), rounds=rounds,
            summary=str(a.get("summary") or ""), ok=bool(a.get("ok")),
            reason=str(a.get("reason") or ""),
        ))
    chosen = None
    if attempts:
        idx = caption.get("chosen_attempt")
        idx = idx if isinstance(idx, int) and 0 <= idx < len(attempts) else len(attempts) - 1
        chosen = attempts[idx]
    return attempts, chosen


def _model_outputs(result: ClipResult | None, threshold: float | None) -> ModelOutputs | None:
    if result is None:
        return None
    caption = result.caption if isinstance(result.caption, dict) else {}
    attempts, chosen = _caption_attempts(caption)
    free = result.free_labels or []
    best = result.best_attempt if result.best_attempt < len(free) else 0
    free_labels = [str(x) for x in free[best]] if free and isinstance(free[best], list) else []
    return ModelOutputs(
        run=result.run, result=result, threshold=threshold, attempts=attempts, chosen=chosen,
        summary=result.summary, summary_ok=result.summary_ok,
        caption_reason=str(caption.get("reason") or ""), free_labels=free_labels,
    )


# --- label rows -------------------------------------------------------------------------


@dataclass
class Flag:
    code: str  # "implied" | "too-generic" | "contradiction" | "blacklisted" | "abstract" | ...
    text: str
    title: str = ""


@dataclass
class LabelRow:
    info: LabelInfo
    is_original: bool = False
    candidate: Candidate | None = None
    added: bool = False
    decision: Decision | None = None
    flags: list[Flag] = field(default_factory=list)
    counts: dict[str, int] | None = None  # curators: verdict -> reviewers
    clap_pct: float = 0.0
    implied_by: list[str] = field(default_factory=list)
    # CLAP score of an original label (pipeline.OriginalLabelScore of the page's run).
    original_score: float | None = None

    @property
    def clap_score(self) -> float | None:
        """The row's CLAP evidence: the candidate's score, else the original label's."""
        if self.candidate is not None and self.candidate.clap_score is not None:
            return self.candidate.clap_score
        return self.original_score

    @property
    def source(self) -> str:
        """original / candidate / added: where the label came from (rapid mode shows it)."""
        if self.is_original:
            return "original"
        return "candidate" if self.candidate is not None else "added"

    @property
    def label_id(self) -> int:
        return self.info.id

    @property
    def mid(self) -> str:
        return self.info.mid

    @property
    def verdict(self) -> str:
        return self.decision.verdict if self.decision else ""

    @property
    def kept(self) -> bool:
        return bool(self.candidate and self.candidate.kept)

    @property
    def disagrees(self) -> bool:
        """The decision goes against the original labels (or rejects a kept candidate):
        the reviewer is offered the error categories."""
        v = self.verdict
        if not v:
            return False
        if self.is_original:
            return v == Verdict.REJECT
        return v == Verdict.ACCEPT or (self.kept and v == Verdict.REJECT)

    @property
    def sort_key(self) -> tuple:
        if self.is_original:
            return (0, self.info.path)
        if self.candidate is not None:
            score = self.candidate.clap_score
            return (1 if self.candidate.kept else 2, -(score if score is not None else -9))
        created = self.decision.created_at.timestamp() if self.decision else 0
        return (3, created)


@dataclass
class ClipPage:
    clip: Clip
    outputs: ModelOutputs | None
    rows: list[LabelRow]
    categories: list[ErrorCategory]
    show_all: bool
    threshold: float | None  # the run's CLAP threshold
    threshold_pct: float | None
    scale_max: float
    next_clip_id: int | None = None
    autoplay: bool = True  # the reviewer's setting (ReviewerSettings)

    @property
    def dataset(self) -> Dataset:
        return self.clip.dataset

    @property
    def contradictions(self) -> int:
        return sum(1 for r in self.rows if any(f.code == "contradiction" for f in r.flags))

    def row(self, label_id: int) -> LabelRow | None:
        return next((r for r in self.rows if r.label_id == label_id), None)


def _clap_scale(rows: list[LabelRow], threshold: float | None) -> float:
    """Upper end of the CLAP bars: cosine scores sit well below 1, so a 0..1 scale would
    leave every bar short; the scale fits the threshold and the scores shown."""
    top = max([0.5, 2 * (threshold or 0.0)]
              + [r.clap_score for r in rows if r.clap_score is not None])
    return math.ceil(top * 10) / 10


def _pct(value: float | None, scale: float) -> float:
    if value is None or scale <= 0:
        return 0.0
    return round(max(0.0, min(1.0, value / scale)) * 100, 1)


# The rows' data in one round trip; the clip page runs on every decision, so its reads are
# one statement rather than five ORM queries (most of a decision's time was building them).
# The run: the run that counts for the clip (pipeline.selectors, rule in SQL). Candidates in
# the order of ORDER BY clap_score DESC (NULLs first, as the ORM's "-clap_score"), label_id.
_PAGE_ROWS_SQL = """
WITH res AS (
    SELECT r.id AS run_id, {threshold} AS threshold
    FROM {run} r
    WHERE r.dataset_id = %(dataset)s AND {counts}
      AND (EXISTS (SELECT 1 FROM {result} cr WHERE cr.run_id = r.id AND cr.clip_id = %(clip)s)
           OR EXISTS (SELECT 1 FROM {candidate} k
                      WHERE k.run_id = r.id AND k.clip_id = %(clip)s))
    ORDER BY {order}
    LIMIT 1
)
SELECT
    (SELECT run_id FROM res),
    (SELECT threshold FROM res),
    ARRAY(SELECT label_id FROM {cliplabel} WHERE clip_id = %(clip)s),
    (SELECT json_agg(c ORDER BY c.clap_score DESC, c.label_id) FROM (
        SELECT id, run_id, clip_id, label_id, attempt, tier, phrase, match_score, clap_score,
               kept, selected
        FROM {candidate}
        WHERE clip_id = %(clip)s AND run_id = (SELECT run_id FROM res) AND selected) c),
    (SELECT json_agg(d) FROM (
        SELECT d.id, d.clip_id, d.label_id, d.reviewer_id, d.verdict, d.error_category_id,
               d.note, d.created_at, d.updated_at, to_jsonb(e) AS error_category
        FROM {decision} d LEFT JOIN {category} e ON e.id = d.error_category_id
        WHERE d.clip_id = %(clip)s AND d.reviewer_id = %(reviewer)s) d),
    CASE WHEN %(show_all)s THEN (SELECT json_agg(v) FROM (
        SELECT label_id, verdict, count(*) AS n FROM {decision}
        WHERE clip_id = %(clip)s GROUP BY label_id, verdict) v) END,
    (SELECT json_object_agg(label_id, clap_score) FROM {origscore}
     WHERE clip_id = %(clip)s AND run_id = (SELECT run_id FROM res)),
    (SELECT autoplay FROM {settings} WHERE user_id = %(reviewer)s)
"""


def _instance(model, values: dict):
    """A model instance from a row decoded from JSON, as if loaded by the ORM."""
    obj = model(**values)
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


def _decision_from_json(values: dict) -> Decision:
    category = values.pop("error_category", None)
    for key in ("created_at", "updated_at"):
        values[key] = datetime.fromisoformat(values[key])
    d = _instance(Decision, values)
    d.error_category = _instance(ErrorCategory, category) if category else None
    return d


@dataclass
class _RowsData:
    run_id: int | None
    threshold: float | None
    original_ids: set[int]
    candidates: list[Candidate]
    decisions: dict[int, Decision]
    counts: dict[int, dict[str, int]]
    original_scores: dict[int, float]
    autoplay: bool


def _page_rows_fetch(*, clip: Clip, reviewer, show_all: bool) -> _RowsData:
    sql = _PAGE_ROWS_SQL.format(
        result=ClipResult._meta.db_table, run=PipelineRun._meta.db_table,
        cliplabel=ClipLabel._meta.db_table, candidate=Candidate._meta.db_table,
        decision=Decision._meta.db_table, category=ErrorCategory._meta.db_table,
        origscore=OriginalLabelScore._meta.db_table, settings=ReviewerSettings._meta.db_table,
        counts=COUNTS_SQL, order=ORDER_SQL, threshold=run_threshold_sql("r"),
    )
    with connection.cursor() as cur:
        cur.execute(sql, {"clip": clip.pk, "dataset": clip.dataset_id, "reviewer": reviewer.pk,
                          "show_all": show_all})
        (run_id, threshold, original_ids, candidates, decisions, counts, original_scores,
         autoplay) = cur.fetchone()
    by_label: dict[int, dict[str, int]] = defaultdict(dict)
    for n in counts or []:
        by_label[n["label_id"]][n["verdict"]] = n["n"]
    return _RowsData(
        run_id=run_id, threshold=threshold, original_ids=set(original_ids),
        candidates=[_instance(Candidate, c) for c in candidates or []],
        decisions={d["label_id"]: _decision_from_json(d) for d in decisions or []},
        counts=by_label,
        original_scores={int(k): float(v) for k, v in (original_scores or {}).items()},
        autoplay=True if autoplay is None else bool(autoplay),
    )


def _derived_text_from_source(result: ClipResult) -> None:
    """A derived run (a threshold set applied to another run's scores) stores no model text
    of its own (curation.thresholds.threshold_set_apply): show its source run's captions,
    summary and free-form labels."""
    source = (ClipResult.objects.filter(run_id=result.run.source_run_id, clip_id=result.clip_id)
              .only("caption", "summary", "predict", "free_labels", "timings").first())
    if source is not None:
        result.caption, result.summary, result.predict = (source.caption, source.summary,
                                                          source.predict)
        result.free_labels, result.timings = source.free_labels, source.timings


def clip_page_data(*, clip: Clip, reviewer, show_all: bool = False,
                   with_outputs: bool = True) -> ClipPage:
    """Everything the clip page shows. Rows: the union of the original labels, the selected
    candidates of the run that counts for the clip (kept and filtered) and labels added by reviewers
    (only this reviewer's unless ``show_all``, which also adds per-verdict counts of every
    reviewer). Decisions and hierarchy flags are this reviewer's own.

    ``with_outputs=False`` is for redrawing rows after a decision: the rows alone, without
    the captions (a large JSON document) and the error categories."""
    data = _page_rows_fetch(clip=clip, reviewer=reviewer, show_all=show_all)
    result: ClipResult | None = None
    categories: list[ErrorCategory] = []
    if with_outputs:
        if data.run_id is not None:
            result = (ClipResult.objects.select_related("run")
                      .filter(run_id=data.run_id, clip=clip).first())
            if result is not None and result.run.source_run_id:
                _derived_text_from_source(result)
        categories = list(ErrorCategory.objects.filter(active=True))

    cand_by_label: dict[int, Candidate] = {}
    for c in data.candidates:
        cand_by_label.setdefault(c.label_id, c)  # best score first (query order)
    ids = data.original_ids | set(cand_by_label) | set(data.decisions) | set(data.counts)
    onto = ontology(need_ids=ids)
    rows = []
    for label_id in ids:
        info = onto.get(label_id)
        if info is None:  # a label deleted since; nothing sensible to show
            continue
        row = LabelRow(
            info=info, is_original=label_id in data.original_ids,
            candidate=cand_by_label.get(label_id), decision=data.decisions.get(label_id),
            counts=({v: data.counts[label_id].get(v, 0) for v in Verdict.values}
                    if show_all else None),
        )
        row.added = not row.is_original and row.candidate is None
        if row.is_original:
            row.original_score = data.original_scores.get(label_id)
        rows.append(row)
    rows.sort(key=lambda r: r.sort_key)
    _hierarchy_flags(rows, onto)

    threshold = data.threshold
    scale = _clap_scale(rows, threshold)
    for r in rows:
        r.clap_pct = _pct(r.clap_score, scale)
    return ClipPage(
        clip=clip, outputs=_model_outputs(result, threshold), rows=rows,
        categories=categories, show_all=show_all, threshold=threshold,
        threshold_pct=_pct(threshold, scale) if threshold is not None else None,
        scale_max=scale, autoplay=data.autoplay,
    )


def _hierarchy_flags(rows: list[LabelRow], onto) -> None:
    """Accepting a label implies its ancestors. An ancestor of an accepted label is flagged
    as implied and "too generic?"; rejecting one is a contradiction."""
    accepted = [r.info for r in rows if r.verdict == Verdict.ACCEPT]
    for r in rows:
        r.implied_by = sorted(a.name for a in accepted if r.label_id in a.ancestor_ids)
        flags = []
        if r.implied_by:
            children = ", ".join(r.implied_by)
            if r.verdict == Verdict.REJECT:
                flags.append(Flag("contradiction", "contradiction",
                                  f"Rejected, but the accepted {children} implies it."))
            else:
                flags.append(Flag("implied", "implied by accepted child",
                                  f"Accepting {children} implies this class."))
                flags.append(Flag("too-generic", "too generic?",
                                  f"A more specific class is accepted: {children}."))
        if r.info.blacklisted:
            flags.append(Flag("blacklisted", "blacklisted class",
                              "The ontology marks this class as blacklisted."))
        if r.info.abstract:
            flags.append(Flag("abstract", "abstract",
                              "An abstract class: it groups others and has no examples."))
        elif not r.info.trainable:
            flags.append(Flag("not-trainable", "not among the 527",
                              "Not one of the 527 trainable classes."))
        r.flags = flags


# --- progress ---------------------------------------------------------------------------


@dataclass
class ReviewerProgress:
    username: str
    done: int
    percent: float


@dataclass
class DatasetProgress:
    dataset: Dataset
    total: int
    done: int  # clips finished by as many reviewers as the dataset requires
    reviewers: list[ReviewerProgress]  # curators: everyone; a reviewer: only themself
    mine: int

    @property
    def percent(self) -> float:
        return round(100.0 * self.done / self.total, 1) if self.total else 0.0


def dataset_progress_list(*, user) -> list[DatasetProgress]:
    """Datasets with clips done / total and per-reviewer counts (three queries). Curators
    get every reviewer's name and count; anyone else only their own (reviewers never learn
    who else reviews, or how much)."""
    from django.contrib.auth import get_user_model

    datasets = list(Dataset.objects.annotate(clip_count=Count("clips")).order_by("name"))
    per_reviewer: dict[int, list[tuple[int, int]]] = defaultdict(list)
    reviews = ClipReview.objects.all()
    if not user_is_curator(user):
        reviews = reviews.filter(reviewer_id=user.pk)
    for ds_id, reviewer_id, n in (
        reviews.values_list("dataset_id", "reviewer_id").annotate(n=Count("id")).order_by()
    ):
        per_reviewer[ds_id].append((reviewer_id, n))
    review_t, dataset_t = ClipReview._meta.db_table, Dataset._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT per_clip.dataset_id, count(*) FROM (
                SELECT r.dataset_id, r.clip_id, count(*) AS n FROM {review_t} r
                GROUP BY r.dataset_id, r.clip_id) per_clip
            JOIN {dataset_t} d ON d.id = per_clip.dataset_id
            WHERE per_clip.n >= GREATEST(d.required_reviews, 1)
            GROUP BY per_clip.dataset_id
            """
        )
        done = dict(cur.fetchall())
    user_ids = {rid for rows in per_reviewer.values() for rid, _ in rows}
    names = dict(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", "username"))
    out = []
    for ds in datasets:
        total = ds.clip_count
        revs = sorted(per_reviewer.get(ds.pk, []), key=lambda t: (-t[1], names.get(t[0], "")))
        out.append(DatasetProgress(
            dataset=ds, total=total, done=done.get(ds.pk, 0),
            reviewers=[
                ReviewerProgress(username=names.get(rid, "?"), done=n,
                                 percent=round(100.0 * n / total, 1) if total else 0.0)
                for rid, n in revs
            ],
            mine=next((n for rid, n in revs if rid == user.pk), 0),
        ))
    return out


def clip_decisions_all(*, clip: Clip) -> list[Decision]:
    """Every reviewer's decisions on a clip (curators' adjudication view)."""
    return list(
        Decision.objects.filter(clip=clip)
        .select_related("reviewer", "label", "error_category")
        .order_by("label__name", "reviewer__username")
    )


# --- rapid mode -------------------------------------------------------------------------

# |CLAP - threshold| up to this counts as "close to the threshold" (rapid mode asks first).
NEAR_THRESHOLD = 0.05


@dataclass
class RapidQuestion:
    """One label of one clip, asked as yes / no."""

    row: LabelRow
    threshold: float | None
    group: int  # 0 near the threshold, 1 original with a low score, 2 candidate only, 3 rest
    why: str

    @property
    def gap(self) -> float | None:
        s = self.row.clap_score
        return None if s is None or self.threshold is None else abs(s - self.threshold)


def _rapid_group(row: LabelRow, threshold: float | None) -> tuple[int, str]:
    score = row.clap_score
    if score is not None and threshold is not None and abs(score - threshold) <= NEAR_THRESHOLD:
        return 0, "CLAP score close to the threshold"
    if row.is_original and score is not None and threshold is not None and score < threshold:
        return 1, "original label with a low CLAP score"
    if row.candidate is not None and not row.is_original:
        return 2, "proposed by the models, not an original label"
    return 3, ""


def rapid_questions(*, page: ClipPage) -> list[RapidQuestion]:
    """The clip's undecided labels in the order rapid mode asks them: scores close to the
    threshold first (the closest first), then original labels with a low CLAP score (the
    lowest first), then candidates that are not original labels (kept ones first), then the
    rest. Which clip comes next is the queue's business; a clip's questions stay together."""
    out = []
    for row in page.rows:
        if row.verdict:
            continue
        group, why = _rapid_group(row, page.threshold)
        out.append(RapidQuestion(row=row, threshold=page.threshold, group=group, why=why))

    def key(q: RapidQuestion) -> tuple:
        s = q.row.clap_score
        if q.group == 0:
            return (0, q.gap, q.row.info.name)
        if q.group == 1:
            return (1, s, q.row.info.name)
        if q.group == 2:
            return (2, not q.row.kept, -(s if s is not None else -9), q.row.info.name)
        return (3, q.gap if q.gap is not None else 9, q.row.info.name)

    out.sort(key=key)
    return out


# --- counters on the clip page ----------------------------------------------------------


@dataclass
class ReviewCounters:
    session_clip: int  # k: this clip is the reviewer's k-th of the session
    session_total: int  # N: k - 1 plus the clips the dataset still needs
    still_needed: int  # clips of the dataset with a review slot nobody finished
    decisions_today: int
    per_hour_today: float | None


# How long the count of clips a dataset still needs is reused (per process): counting the
# open slots of 2M clips scans a partial index of millions of entries.
STILL_NEEDED_CACHE_S = 30


def dataset_clips_still_needed(*, dataset_id: int) -> int:
    """Clips of the dataset with a review slot nobody finished (cached a few seconds)."""
    from django.core.cache import cache

    key = f"review:still_needed:{dataset_id}"
    value = cache.get(key)
    if value is None:
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT count(DISTINCT clip_id) FROM {QueueSlot._meta.db_table} "
                "WHERE dataset_id = %s AND done_by_id IS NULL", [dataset_id])
            value = cur.fetchone()[0]
        cache.set(key, value, STILL_NEEDED_CACHE_S)
    return value


def review_counters(*, clip: Clip, reviewer, session_started: datetime | None) -> ReviewCounters:
    """Not on the clip page's own path: the page loads it afterwards (htmx)."""
    from django.utils import timezone

    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    review_t, decision_t = ClipReview._meta.db_table, Decision._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"""
            SELECT (SELECT count(*) FROM {review_t}
                    WHERE dataset_id = %(ds)s AND reviewer_id = %(me)s
                      AND finished_at >= %(since)s),
                   (SELECT count(*) FROM {decision_t}
                    WHERE reviewer_id = %(me)s AND updated_at >= %(today)s),
                   (SELECT min(updated_at) FROM {decision_t}
                    WHERE reviewer_id = %(me)s AND updated_at >= %(today)s)
            """,
            {"ds": clip.dataset_id, "me": reviewer.pk, "today": today,
             "since": session_started or now},
        )
        session_done, today_n, first = cur.fetchone()
    still_needed = dataset_clips_still_needed(dataset_id=clip.dataset_id)
    hours = (now - first).total_seconds() / 3600 if first else 0.0
    # Under six minutes of work an hourly rate says nothing yet.
    per_hour = today_n / hours if hours >= 0.1 else None
    return ReviewCounters(
        session_clip=session_done + 1, session_total=session_done + max(still_needed, 1),
        still_needed=still_needed, decisions_today=today_n, per_hour_today=per_hour,
    )
