"""The adjudication queue: the clips of a dataset that need a curator, why, and in which
order. One set-based statement (no per-clip Python), driven by the small tables
(decisions, adjudications, gold labels, low original-label scores), so it costs the same on
2M clips as on 20 when the number of decisions is the same.

A (clip, label) pair is *disputed* for one of these reasons, each only while the pair has
no adjudication (a curator's verdict settles it):

* ``disagree``: reviewers voted both accept and reject on it.
* ``unsure``: a reviewer voted unsure.
* ``original_rejected``: an original label the reviewers' majority rejects.
* ``clap_low``: an original label whose CLAP score (pipeline.OriginalLabelScore of the run)
  is at least ``margin`` below the run's CLAP threshold.

and a clip is also listed for

* ``gold_missed``: on a gold clip a reviewer's accept or reject contradicts the gold answer
  (listed whatever the adjudication: it is about the reviewer, not the label).

Order ("stake"): the number of disputed pairs, plus the CLAP evidence against the majority
(for each disputed pair with a majority and a score: how far the score sits on the other
side of the threshold, |score - threshold|); then more gold misses; then dataset order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection, transaction

from pipeline.models import Candidate, OriginalLabelScore, PipelineRun
from relabel_app.models import Clip, ClipLabel, Dataset
from review.models import Decision, GoldClip, GoldLabel, PairVotes, pair_disputed_sql

from .models import Adjudication

REASONS = {
    "disagree": "Reviewers disagree",
    "unsure": "Unsure votes",
    "original_rejected": "Original label rejected",
    "gold_missed": "Gold clip missed",
    "clap_low": "CLAP far below threshold",
}
DEFAULT_MARGIN = 0.1
PAGE_SIZE = 50


class _T:
    clip = Clip._meta.db_table
    cliplabel = ClipLabel._meta.db_table
    decision = Decision._meta.db_table
    pairvotes = PairVotes._meta.db_table
    adjudication = Adjudication._meta.db_table
    candidate = Candidate._meta.db_table
    origscore = OriginalLabelScore._meta.db_table
    goldclip = GoldClip._meta.db_table
    goldlabel = GoldLabel._meta.db_table


@dataclass(frozen=True)
class QueueFilter:
    """What the queue page asks for: one reason or all, the CLAP margin, the run whose
    threshold and scores count, and reviewers whose votes are left out."""

    dataset_id: int
    reason: str = ""
    run_id: int | None = None
    threshold: float | None = None
    margin: float = DEFAULT_MARGIN
    excluded_reviewer_ids: tuple[int, ...] = ()

    def __post_init__(self):
        if self.reason and self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}")

    def params(self) -> dict:
        return {"ds": self.dataset_id, "run": self.run_id, "thr": self.threshold,
                "margin": self.margin, "excluded": list(self.excluded_reviewer_ids)}


def _one(alias: str, one_clip: bool) -> str:
    """Only the clip ``%(clip)s`` (its page reads its disputes through the same SQL)."""
    return f" AND {alias}.clip_id = %(clip)s" if one_clip else ""


def _left_out_cte(f: QueueFilter, one_clip: bool = False) -> str:
    """left_out: the verdicts of the reviewers left out (the gold rule), counted per pair,
    which votes and tally subtract from PairVotes' counts (few decisions, found by
    reviewer). Empty, and never read, when nobody is left out."""
    if not f.excluded_reviewer_ids:
        return """
    left_out AS (SELECT NULL::int AS clip_id, NULL::int AS label_id, 0 AS n_accept,
                        0 AS n_reject, 0 AS n_unsure WHERE false)"""
    return f"""
    left_out AS (
        SELECT d.clip_id, d.label_id,
               count(*) FILTER (WHERE d.verdict = 'accept') AS n_accept,
               count(*) FILTER (WHERE d.verdict = 'reject') AS n_reject,
               count(*) FILTER (WHERE d.verdict = 'unsure') AS n_unsure
        FROM {_T.decision} d
        WHERE d.reviewer_id = ANY(%(excluded)s::int[]) AND d.dataset_id = %(ds)s{_one("d", one_clip)}
        GROUP BY d.clip_id, d.label_id
    )"""


def _votes_cte(f: QueueFilter, one_clip: bool = False) -> str:
    """votes: the disputed (clip, label) pairs by the reviewers' verdicts.

    Read from PairVotes' partial index review_pairvotes_disputed (the disputed pairs only,
    counted by triggers as decisions change): no aggregation of the dataset's decisions
    and no lookup of an original label for every voted pair. With reviewers left out (the
    gold rule) each pair's counts less those reviewers' verdicts (left_out), disputed or
    not after the subtraction."""
    if not f.excluded_reviewer_ids:
        return f"""
    votes AS (
        SELECT clip_id, label_id, n_accept, n_reject, n_unsure, original
        FROM {_T.pairvotes}
        WHERE dataset_id = %(ds)s AND {pair_disputed_sql()}{" AND clip_id = %(clip)s" if one_clip else ""}
    )"""
    return f"""
    votes AS (
        SELECT v.* FROM (
            SELECT p.clip_id, p.label_id,
                   p.n_accept - coalesce(x.n_accept, 0) AS n_accept,
                   p.n_reject - coalesce(x.n_reject, 0) AS n_reject,
                   p.n_unsure - coalesce(x.n_unsure, 0) AS n_unsure, p.original
            FROM {_T.pairvotes} p
            LEFT JOIN left_out x ON x.clip_id = p.clip_id AND x.label_id = p.label_id
            WHERE p.dataset_id = %(ds)s{_one("p", one_clip)}
        ) v
        WHERE {pair_disputed_sql("v")}
    )"""


def _tally_cte() -> str:
    """tally: the whole vote of a pair listed for its CLAP score alone (an accepted original
    far below the threshold), which ``votes`` leaves out as undisputed, so reading the
    majority there alone left that evidence at 0 (issue 21). The pairs in ``votes`` have
    their whole vote there already; these few are probed in PairVotes (unique index) less
    the reviewers left out."""
    return f"""
    tally AS (
        SELECT c.clip_id, c.label_id,
               pv.n_accept - coalesce(x.n_accept, 0) AS n_accept,
               pv.n_reject - coalesce(x.n_reject, 0) AS n_reject
        FROM clap_low c
        JOIN {_T.pairvotes} pv ON pv.clip_id = c.clip_id AND pv.label_id = c.label_id
        LEFT JOIN left_out x ON x.clip_id = c.clip_id AND x.label_id = c.label_id
        WHERE NOT EXISTS (SELECT 1 FROM votes v
                          WHERE v.clip_id = c.clip_id AND v.label_id = c.label_id)
    )"""


def _clap_low_cte(with_scores: bool, one_clip: bool = False) -> str:
    """clap_low: original labels whose CLAP score lies the margin or more below the
    run's threshold (none without a run's scores)."""
    return f"""
    clap_low AS (
        SELECT s.clip_id, s.label_id
        FROM {_T.origscore} s JOIN {_T.clip} c ON c.id = s.clip_id
        WHERE s.run_id = %(run)s AND c.dataset_id = %(ds)s
          AND s.clap_score <= %(thr)s - %(margin)s{_one("s", one_clip)}
    )""" if with_scores else """
    clap_low AS (SELECT NULL::int AS clip_id, NULL::int AS label_id WHERE false)"""


def _gold_miss_cte(one_clip: bool = False) -> str:
    """gold_miss: per clip, the reviewers' verdicts that contradict a gold answer."""
    return f"""
    gold_miss AS (
        SELECT d.clip_id, count(*) AS n
        FROM {_T.decision} d
        JOIN {_T.goldclip} g ON g.clip_id = d.clip_id
        LEFT JOIN {_T.goldlabel} gl ON gl.clip_id = d.clip_id AND gl.label_id = d.label_id
        WHERE g.dataset_id = %(ds)s{_one("d", one_clip)}
          AND ((d.verdict = 'accept' AND NOT coalesce(gl.present, NOT g.complete))
               OR (d.verdict = 'reject' AND coalesce(gl.present, false)))
        GROUP BY d.clip_id
    )"""


def _scores_cte(with_scores: bool) -> str:
    """score: the best CLAP score of each disputed pair with a majority (candidate or
    original label): looked up for those ``weighed`` pairs only, not for every voted pair
    (20,000 candidate lookups were half the statement's time at 2M clips)."""
    return f"""
    weighed AS (
        -- Evidence weighs a score against a majority: a tie (an unsure vote alone) needs
        -- no score.
        SELECT clip_id, label_id FROM hot WHERE n_accept <> n_reject
    ),
    scores AS (
        SELECT k.clip_id, k.label_id, max(k.clap_score) AS score
        FROM {_T.candidate} k JOIN weighed p
          ON p.clip_id = k.clip_id AND p.label_id = k.label_id
        WHERE k.run_id = %(run)s AND k.selected AND k.clap_score IS NOT NULL
        GROUP BY k.clip_id, k.label_id
        UNION ALL
        SELECT s.clip_id, s.label_id, s.clap_score
        FROM {_T.origscore} s JOIN weighed p
          ON p.clip_id = s.clip_id AND p.label_id = s.label_id
        WHERE s.run_id = %(run)s
    ),
    score AS (SELECT clip_id, label_id, max(score) AS score FROM scores
              GROUP BY clip_id, label_id)""" if with_scores else """
    score AS (SELECT NULL::int AS clip_id, NULL::int AS label_id, NULL::float8 AS score
              WHERE false)"""


def _flags_cte() -> str:
    """flags and hot: each pair's flags, with its whole vote (votes, else tally) for the
    evidence; hot, the disputed pairs among them."""
    return f"""
    flags AS (
        SELECT p.clip_id, p.label_id,
               coalesce(v.n_accept, t.n_accept) AS n_accept,
               coalesce(v.n_reject, t.n_reject) AS n_reject,
               coalesce(v.n_accept > 0 AND v.n_reject > 0, false) AS disagree,
               coalesce(v.n_unsure > 0, false) AS unsure,
               -- votes say whether the label is an original (PairVotes.original): no
               -- probe of the 4M-row original labels per pair.
               coalesce(v.original AND v.n_reject > v.n_accept, false) AS original_rejected,
               cl.clip_id IS NOT NULL AS clap_low
        FROM pairs p
        LEFT JOIN votes v ON v.clip_id = p.clip_id AND v.label_id = p.label_id
        LEFT JOIN tally t ON t.clip_id = p.clip_id AND t.label_id = p.label_id
        LEFT JOIN clap_low cl ON cl.clip_id = p.clip_id AND cl.label_id = p.label_id
        WHERE NOT EXISTS (SELECT 1 FROM {_T.adjudication} a
                          WHERE a.clip_id = p.clip_id AND a.label_id = p.label_id)
    ),
    hot AS (
        SELECT * FROM flags WHERE disagree OR unsure OR original_rejected OR clap_low
    )"""


def _per_clip_cte() -> str:
    """hot_evidence, disputed and per_clip: each disputed pair's CLAP evidence against
    its majority; their flags and evidence summed per clip, with the stake."""
    return """
    hot_evidence AS (
        SELECT h.*,
               CASE WHEN h.n_accept > h.n_reject THEN greatest(%(thr)s - s.score, 0)
                    WHEN h.n_reject > h.n_accept THEN greatest(s.score - %(thr)s, 0)
                    ELSE 0 END AS evidence
        FROM hot h
        LEFT JOIN score s ON s.clip_id = h.clip_id AND s.label_id = h.label_id
    ),
    disputed AS (
        SELECT h.clip_id,
               count(*) FILTER (WHERE h.disagree) AS n_disagree,
               count(*) FILTER (WHERE h.unsure) AS n_unsure,
               count(*) FILTER (WHERE h.original_rejected) AS n_original_rejected,
               count(*) FILTER (WHERE h.clap_low) AS n_clap_low,
               count(*) AS n_disputed,
               coalesce(sum(h.evidence), 0) AS evidence
        FROM hot_evidence h
        GROUP BY h.clip_id
    ),
    per_clip AS (
        SELECT coalesce(d.clip_id, g.clip_id) AS clip_id,
               coalesce(d.n_disagree, 0) AS n_disagree,
               coalesce(d.n_unsure, 0) AS n_unsure,
               coalesce(d.n_original_rejected, 0) AS n_original_rejected,
               coalesce(g.n, 0) AS n_gold_missed,
               coalesce(d.n_clap_low, 0) AS n_clap_low,
               coalesce(d.n_disputed, 0) AS n_disputed,
               coalesce(d.evidence, 0)::float8 AS evidence,
               (coalesce(d.n_disputed, 0) + coalesce(d.evidence, 0))::float8 AS stake
        FROM disputed d FULL JOIN gold_miss g ON g.clip_id = d.clip_id
    )"""


def _per_clip_sql(f: QueueFilter, *, one_clip: bool = False) -> str:
    """CTEs ending in ``per_clip`` (clip_id, position, n_disagree, n_unsure,
    n_original_rejected, n_gold_missed, n_clap_low, n_disputed, evidence, stake); the
    per-pair ``hot_evidence`` before it. ``one_clip``: only the clip ``%(clip)s`` (its
    page)."""
    with_scores = f.run_id is not None and f.threshold is not None
    # votes called with the filter alone for the whole queue (the tests and the benchmark
    # swap in the old aggregation there).
    votes = _votes_cte(f, one_clip) if one_clip else _votes_cte(f)
    return f"""
    WITH {_clap_low_cte(with_scores, one_clip).strip()},
    {_left_out_cte(f, one_clip).strip()},
    {votes.strip()},
{_gold_miss_cte(one_clip).rstrip()},
    pairs AS (
        -- Only pairs the votes make disputed (or a low score): the per-pair lookups below
        -- (adjudicated? whole vote? score?) run on those, not on every decided pair.
        SELECT v.clip_id, v.label_id FROM votes v
        UNION SELECT clip_id, label_id FROM clap_low
    ),
    {_tally_cte().strip()},
{_flags_cte().strip()},
    {_scores_cte(with_scores).strip()},
{_per_clip_cte()}"""


def _where(f: QueueFilter) -> str:
    return f"WHERE q.n_{f.reason} > 0" if f.reason else ""


_ORDER = "q.stake DESC, q.n_gold_missed DESC, c.position, c.id"


@dataclass
class QueueRow:
    clip_id: int
    ytid: str
    start_s: float
    end_s: float
    counts: dict[str, int]
    n_disputed: int
    evidence: float
    stake: float
    rank: int = 0

    @property
    def reasons(self) -> list[str]:
        return [REASONS[k] for k, n in self.counts.items() if n]


@dataclass
class QueuePage:
    filter: QueueFilter
    rows: list[QueueRow]
    counts: dict[str, int]  # clips per reason
    total: int  # clips needing a curator (any reason)
    offset: int
    page_size: int
    reason_labels: dict[str, str] = field(default_factory=lambda: dict(REASONS))

    @property
    def matching(self) -> int:
        return self.counts[self.filter.reason] if self.filter.reason else self.total


def adjudication_queue(*, f: QueueFilter, offset: int = 0,
                       limit: int = PAGE_SIZE) -> QueuePage:
    """One page of the queue and its counts per reason. One statement (two for a page
    past the end)."""
    base = _per_clip_sql(f)
    params = f.params()
    totals = f"""
        SELECT count(*), {", ".join(f"count(*) FILTER (WHERE n_{k} > 0)" for k in REASONS)}
        FROM per_clip"""
    n = len(REASONS)
    with transaction.atomic(), connection.cursor() as cur:
        # The planner prices this over jit_above_cost on a large dataset, but it reads a
        # few thousand rows: compiling took 240 ms of the 490 ms at 2M clips.
        cur.execute("SET LOCAL jit = off")
        # One statement, also for a page past the end or an empty filter (the totals joined
        # to the page, not the page to the totals): per_clip is read twice (totals, page),
        # so PostgreSQL computes it once.
        cur.execute(base + f""",
            totals AS ({totals}),
            page AS (
                SELECT row_number() OVER (ORDER BY {_ORDER}) AS n, q.clip_id, c.ytid,
                       c.start_s, c.end_s, {", ".join(f"q.n_{k}" for k in REASONS)},
                       q.n_disputed, q.evidence, q.stake
                FROM per_clip q JOIN {_T.clip} c ON c.id = q.clip_id
                {_where(f)}
                ORDER BY {_ORDER}
                LIMIT %(limit)s OFFSET %(offset)s)
            SELECT p.clip_id, p.ytid, p.start_s, p.end_s,
                   {", ".join(f"p.n_{k}" for k in REASONS)},
                   p.n_disputed, p.evidence, p.stake, t.*
            FROM totals t LEFT JOIN page p ON true
            ORDER BY p.n""", {**params, "limit": limit, "offset": offset})
        raw = cur.fetchall()
    total, *per_reason = raw[0][-(n + 1):]
    raw = [r for r in raw if r[0] is not None]
    rows = []
    for i, r in enumerate(raw):
        clip_id, ytid, start_s, end_s = r[:4]
        counts = dict(zip(REASONS, r[4:4 + n], strict=True))
        n_disputed, evidence, stake = r[4 + n:4 + n + 3]
        rows.append(QueueRow(clip_id=clip_id, ytid=ytid, start_s=start_s, end_s=end_s,
                             counts=counts, n_disputed=n_disputed, evidence=evidence,
                             stake=stake, rank=offset + i))
    return QueuePage(filter=f, rows=rows, counts=dict(zip(REASONS, per_reason, strict=True)),
                     total=total, offset=offset, page_size=limit)


def adjudication_queue_next(*, f: QueueFilter, current_clip_id: int | None,
                            rank: int = 0) -> tuple[int, int] | None:
    """(clip id, rank) of the clip after ``current_clip_id`` in the queue. When the current
    clip has left the queue (the curator settled it), the clip now at its rank, which is
    the one that followed it. None at the end of the queue."""
    base = _per_clip_sql(f)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL jit = off")  # see adjudication_queue
        cur.execute(base + f"""
            SELECT q.clip_id FROM per_clip q JOIN {_T.clip} c ON c.id = q.clip_id
            {_where(f)} ORDER BY {_ORDER}""", f.params())
        ids = [r[0] for r in cur.fetchall()]
    i = ids.index(current_clip_id) + 1 if current_clip_id in ids else max(0, rank)
    return (ids[i], i) if i < len(ids) else None


def queue_filter_for(*, dataset: Dataset, run: PipelineRun | None, reason: str = "",
                     margin: float = DEFAULT_MARGIN) -> QueueFilter:
    """The filter with the run's CLAP threshold and the dataset's gold rule applied."""
    from .gold import flagged_reviewer_ids

    threshold = run.threshold if run is not None else None
    return QueueFilter(dataset_id=dataset.pk, reason=reason,
                       run_id=run.pk if run else None, threshold=threshold, margin=margin,
                       excluded_reviewer_ids=flagged_reviewer_ids(dataset=dataset))


@dataclass
class PairDispute:
    """Why one label of a clip is in the queue (the clip page marks its row)."""

    label_id: int
    reasons: list[str]  # keys of REASONS
    evidence: float  # CLAP evidence against the majority, |score - threshold| or 0

    @property
    def reason_labels(self) -> list[str]:
        return [REASONS[k] for k in self.reasons]


@dataclass
class ClipDisputes:
    """The queue's view of one clip: its reasons (with counts) and its disputed labels."""

    counts: dict[str, int]
    evidence: float
    pairs: dict[int, PairDispute]

    @property
    def reasons(self) -> list[tuple[str, str, int]]:
        return [(k, REASONS[k], n) for k, n in self.counts.items() if n]


def clip_disputes(*, f: QueueFilter, clip_id: int) -> ClipDisputes:
    """The same statement as the queue, for one clip: per disputed label its reasons and
    evidence, and the clip's counts per reason (what put it in the queue). One query."""
    base = _per_clip_sql(f, one_clip=True)
    keys = ("disagree", "unsure", "original_rejected", "clap_low")
    with connection.cursor() as cur:
        # One clip's rows are priced far under jit_above_cost: no SET LOCAL jit needed.
        # One row at least (the gold misses), plus one per disputed label (hot_evidence
        # holds the disputed pairs only).
        cur.execute(base + f"""
            SELECT fl.label_id, {", ".join(f"fl.{k}" for k in keys)}, fl.evidence::float8,
                   coalesce(g.n, 0)
            FROM (SELECT 1) one
            LEFT JOIN hot_evidence fl ON fl.clip_id = %(clip)s
            LEFT JOIN gold_miss g ON g.clip_id = %(clip)s""", {**f.params(), "clip": clip_id})
        rows = cur.fetchall()
    pairs = {}
    counts = dict.fromkeys(REASONS, 0)
    for label_id, *flags, evidence, gold_missed in rows:
        counts["gold_missed"] = gold_missed
        if label_id is None:
            continue
        reasons = [k for k, on in zip(keys, flags, strict=True) if on]
        for k in reasons:
            counts[k] += 1
        pairs[label_id] = PairDispute(label_id=label_id, reasons=reasons,
                                      evidence=evidence or 0.0)
    return ClipDisputes(counts=counts, evidence=sum(p.evidence for p in pairs.values()),
                        pairs=pairs)
