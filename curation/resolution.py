"""Curated-state resolution, as set-based SQL (one statement, no per-clip Python), so it
runs the same on a 20-clip demo and on 2M clips with 10M candidates.

The rules (one place, used by export, audits and the adjudication page):

* The pairs considered, for a dataset and a run: every (clip, label) that is an original
  label (ClipLabel), a *selected* candidate of the run (the best-of-N attempt review shows),
  a reviewer-added label (a Decision on a label that is neither) or a curator-added label
  (an Adjudication on a label that is none of these).
* State of a pair: the curator's adjudication if there is one; else the reviewers' majority,
  accept votes against reject votes ("unsure" does not vote); a tie, 0-0 included, is
  unresolved.
* Policies decide what unresolved means in an export:
  - keep-original: an unresolved original label stays, an unresolved candidate or added
    label is left out.
  - strict: accepted labels only.
  - reviewed-only: only clips that at least Dataset.required_reviews reviewers finished
    (ClipReview rows; 0 required means every clip); within them, unresolved labels are
    treated as in keep-original. A reviewer who finished a clip without voting on an
    original label left it standing, so dropping it would turn "nobody objected" into a
    rejection.

The run only decides which pairs count as candidates. Decisions carry no run, and an
unresolved candidate is left out under every policy, so the exported label sets do not
depend on the run; audits and the adjudication page do.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.models import Candidate, ClipResult, PipelineRun
from pipeline.selectors import counting_runs, run_that_counts
from relabel_app.models import Clip, ClipLabel, Dataset, Label
from review.models import ClipReview, Decision

from .models import Adjudication, Policy


class _Tables:
    clip = Clip._meta.db_table
    cliplabel = ClipLabel._meta.db_table
    label = Label._meta.db_table
    label_parents = Label.parents.through._meta.db_table
    candidate = Candidate._meta.db_table
    clipresult = ClipResult._meta.db_table
    decision = Decision._meta.db_table
    clipreview = ClipReview._meta.db_table
    adjudication = Adjudication._meta.db_table


T = _Tables


@dataclass(frozen=True)
class Scope:
    """What a resolution query is about. ``clip_id`` narrows it to one clip (the
    adjudication page), with the same SQL as the whole dataset."""

    dataset_id: int
    run_id: int | None = None
    clip_id: int | None = None
    # Reviewers whose votes the majority leaves out (flagged by the gold floor, when the
    # dataset says so: curation.gold.flagged_reviewer_ids).
    excluded_reviewer_ids: tuple[int, ...] = ()
    # A table with a clip_id column narrowing the scope to its clips (the audit's
    # incremental pass over the decided clips: curation.audits).
    clips_table: str | None = None
    # Resolve as if nobody had decided anything (the audit's base, curation.audits).
    no_decisions: bool = False

    def params(self) -> dict:
        return {"dataset_id": self.dataset_id, "run_id": self.run_id, "clip_id": self.clip_id,
                "excluded_reviewers": list(self.excluded_reviewer_ids)}

    def clip_filter(self, alias: str) -> str:
        """SQL restricting ``alias`` (a clip table alias) to the scope."""
        sql = f"{alias}.dataset_id = %(dataset_id)s"
        if self.clip_id is not None:
            sql += f" AND {alias}.id = %(clip_id)s"
        if self.clips_table is not None:
            sql += f" AND {alias}.id IN (SELECT clip_id FROM {self.clips_table})"
        return sql

    def decision_filter(self, alias: str) -> str:
        """SQL restricting ``alias`` (a decision table alias) to the scope, by the dataset
        each decision carries (Decision.dataset), without a join to its clip."""
        sql = f"{alias}.dataset_id = %(dataset_id)s"
        if self.clip_id is not None:
            sql += f" AND {alias}.clip_id = %(clip_id)s"
        if self.clips_table is not None:
            sql += f" AND {alias}.clip_id IN (SELECT clip_id FROM {self.clips_table})"
        if self.no_decisions:
            sql += " AND false"
        return sql


def default_run(dataset: Dataset) -> PipelineRun | None:
    """The run audits and the adjudication page use unless told otherwise: the dataset's
    run that counts (pipeline.selectors: the same rule as review and the API)."""
    return run_that_counts(dataset=dataset)


def latest_run(dataset: Dataset) -> PipelineRun | None:
    """The run the audit uses unless told otherwise (issue: "the dataset's latest run, model
    or external"): the newest of the runs that count (pipeline.selectors.counting_runs, the
    same rule review and the API use), whatever its kind."""
    return counting_runs(dataset).order_by("-created_at", "-id").first()


def scope_for(*, dataset: Dataset, run_id: int | None = None,
              clip_id: int | None = None) -> Scope:
    """The Scope with the dataset's gold rule applied (flagged reviewers left out of the
    majority when Dataset.gold_exclude_flagged)."""
    from .gold import flagged_reviewer_ids

    return Scope(dataset_id=dataset.pk, run_id=run_id, clip_id=clip_id,
                 excluded_reviewer_ids=flagged_reviewer_ids(dataset=dataset))


def decided_ctes(scope: Scope) -> str:
    """CTEs ``votes``, ``adj`` and ``decided``. ``decided`` has a row for every pair with a
    decision or an adjudication: (clip_id, label_id, n_accept, n_reject, n_unsure,
    adjudication, accepted) where accepted is true / false / null (unresolved). Votes of
    ``scope.excluded_reviewer_ids`` are not counted."""
    excluded = ""
    if scope.excluded_reviewer_ids:
        excluded = " AND d.reviewer_id <> ALL(%(excluded_reviewers)s::int[])"
    return f"""
    votes AS (
        SELECT d.clip_id, d.label_id,
               count(*) FILTER (WHERE d.verdict = 'accept') AS n_accept,
               count(*) FILTER (WHERE d.verdict = 'reject') AS n_reject,
               count(*) FILTER (WHERE d.verdict = 'unsure') AS n_unsure
        FROM {T.decision} d
        WHERE {scope.decision_filter("d")}{excluded}
        GROUP BY d.clip_id, d.label_id
    ),
    adj AS (
        SELECT a.clip_id, a.label_id, a.verdict
        FROM {T.adjudication} a JOIN {T.clip} c ON c.id = a.clip_id
        WHERE {scope.clip_filter("c")}{" AND false" if scope.no_decisions else ""}
    ),
    decided AS (
        SELECT coalesce(a.clip_id, v.clip_id) AS clip_id,
               coalesce(a.label_id, v.label_id) AS label_id,
               coalesce(v.n_accept, 0) AS n_accept,
               coalesce(v.n_reject, 0) AS n_reject,
               coalesce(v.n_unsure, 0) AS n_unsure,
               a.verdict AS adjudication,
               CASE WHEN a.verdict IS NOT NULL THEN a.verdict = 'accept'
                    WHEN v.n_accept > v.n_reject THEN true
                    WHEN v.n_reject > v.n_accept THEN false
               END AS accepted
        FROM adj a FULL JOIN votes v ON v.clip_id = a.clip_id AND v.label_id = a.label_id
    )"""


def _eligible_clips_cte(scope: Scope, required_reviews: int) -> str:
    return f"""
    eligible AS (
        SELECT r.clip_id
        FROM {T.clipreview} r JOIN {T.clip} c ON c.id = r.clip_id
        WHERE {scope.clip_filter("c")}
        GROUP BY r.clip_id
        HAVING count(*) >= {int(required_reviews)}
    )"""


def curated_ctes(scope: Scope, policy: str, *, required_reviews: int = 1) -> str:
    """CTEs ending in ``curated``: (clip_id, label_id, ord), the exported labels under the
    policy. ``ord`` is the original label's ClipLabel id (the import file's order), null
    for labels that were not original, so an untouched dataset exports in its own order."""
    policy = Policy(policy)
    ctes = [decided_ctes(scope)]
    restrict = ""
    if policy == Policy.REVIEWED_ONLY and required_reviews > 0:
        ctes.append(_eligible_clips_cte(scope, required_reviews))
        restrict = " AND {col} IN (SELECT clip_id FROM eligible)"
    accepted = f"""
        SELECT d.clip_id, d.label_id, cl.id AS ord
        FROM decided d
        LEFT JOIN {T.cliplabel} cl ON cl.clip_id = d.clip_id AND cl.label_id = d.label_id
        WHERE d.accepted{restrict.format(col="d.clip_id")}"""
    if policy == Policy.STRICT:
        body = accepted
    else:
        # Unresolved originals stay: every original without a resolved decision.
        body = accepted + f"""
        UNION ALL
        SELECT cl.clip_id, cl.label_id, cl.id AS ord
        FROM {T.cliplabel} cl JOIN {T.clip} c ON c.id = cl.clip_id
        WHERE {scope.clip_filter("c")}{restrict.format(col="cl.clip_id")}
          AND NOT EXISTS (
              SELECT 1 FROM decided d
              WHERE d.clip_id = cl.clip_id AND d.label_id = cl.label_id
                AND d.accepted IS NOT NULL)"""
    ctes.append(f"""
    curated AS ({body}
    )""")
    return "WITH " + ",".join(ctes)


def clip_scope_sql(scope: Scope, policy: str, *, required_reviews: int = 1) -> str:
    """The clips an export covers under the policy (for the "left out" count)."""
    sql = f"SELECT c.id FROM {T.clip} c WHERE {scope.clip_filter('c')}"
    if Policy(policy) == Policy.REVIEWED_ONLY and required_reviews > 0:
        sql += f""" AND c.id IN (
            SELECT r.clip_id FROM {T.clipreview} r
            GROUP BY r.clip_id HAVING count(*) >= {int(required_reviews)})"""
    return sql


def curated_per_clip_sql(scope: Scope, policy: str, *, required_reviews: int = 1) -> str:
    """CTEs ending in ``per_clip``: one row per clip with at least one curated label,
    (position, id, ytid, start_s, end_s, audio_path, mids "m1,m2", n_labels). Labels of a
    clip: originals in their import order, then the others by class index.

    Only the 527 trainable classes (``index`` not null): a curated label outside them (an
    abstract class added before the review screen refused them) would break every loader
    built on the class index. Such labels are left out here and counted by
    ``curated_not_trainable_sql``.

    MATERIALIZED: an export reads it twice in one statement (the header counts, then the
    rows); it is computed once and both reads see exactly the same rows."""
    return curated_ctes(scope, policy, required_reviews=required_reviews) + f"""
    , per_clip AS MATERIALIZED (
        SELECT c.position, c.id, c.ytid, c.start_s, c.end_s, c.audio_path,
               string_agg(l.mid, ',' ORDER BY cu.ord NULLS LAST, l.index NULLS LAST, l.mid)
                   AS mids,
               count(*) AS n_labels
        FROM curated cu
        JOIN {T.clip} c ON c.id = cu.clip_id
        JOIN {T.label} l ON l.id = cu.label_id
        WHERE l.index IS NOT NULL
        GROUP BY c.id
    )"""


def curated_not_trainable_sql() -> str:
    """After ``curated_per_clip_sql``'s CTEs: how many curated (clip, label) pairs the
    export leaves out because the label is not one of the 527 trainable classes."""
    return f"""(SELECT count(*) FROM curated cu JOIN {T.label} l ON l.id = cu.label_id
               WHERE l.index IS NULL)"""


def pair_states_sql(scope: Scope, *, policy: str = Policy.KEEP_ORIGINAL) -> str:
    """Every pair of the scope with where it came from and how it resolved:
    (clip_id, label_id, is_original, is_candidate, kept, clap_score, n_accept, n_reject,
    n_unsure, adjudication, accepted, curated).

    ``accepted`` is the resolved state (true / false / null = unresolved); ``curated`` says
    whether the pair is in the exported set under ``policy`` ignoring reviewed-only's clip
    restriction (keep-original or strict semantics)."""
    keep_unresolved_original = Policy(policy) != Policy.STRICT
    return "WITH " + decided_ctes(scope) + f""",
    orig AS (
        SELECT cl.clip_id, cl.label_id
        FROM {T.cliplabel} cl JOIN {T.clip} c ON c.id = cl.clip_id
        WHERE {scope.clip_filter("c")}
    ),
    cand AS (
        SELECT k.clip_id, k.label_id, bool_or(k.kept) AS kept, max(k.clap_score) AS clap_score
        FROM {T.candidate} k JOIN {T.clip} c ON c.id = k.clip_id
        WHERE k.run_id = %(run_id)s AND k.selected AND {scope.clip_filter("c")}
        GROUP BY k.clip_id, k.label_id
    ),
    pairs AS (
        SELECT clip_id, label_id FROM orig
        UNION SELECT clip_id, label_id FROM cand
        UNION SELECT clip_id, label_id FROM decided
    )
    SELECT p.clip_id, p.label_id,
           o.clip_id IS NOT NULL AS is_original,
           k.clip_id IS NOT NULL AS is_candidate,
           coalesce(k.kept, false) AS kept,
           k.clap_score,
           coalesce(d.n_accept, 0) AS n_accept,
           coalesce(d.n_reject, 0) AS n_reject,
           coalesce(d.n_unsure, 0) AS n_unsure,
           d.adjudication,
           d.accepted,
           coalesce(d.accepted, {"o.clip_id IS NOT NULL" if keep_unresolved_original else "false"})
               AS curated
    FROM pairs p
    LEFT JOIN orig o ON o.clip_id = p.clip_id AND o.label_id = p.label_id
    LEFT JOIN cand k ON k.clip_id = p.clip_id AND k.label_id = p.label_id
    LEFT JOIN decided d ON d.clip_id = p.clip_id AND d.label_id = p.label_id"""


def covered_clips_sql(clips_table: str | None = None) -> str:
    """Clips a run covers: a ClipResult of the run or a candidate (an external label set
    may have candidates only). Needs %(run_id)s and %(dataset_id)s; ``clips_table``
    narrows it to that table's clips."""
    only = f" AND c.id IN (SELECT clip_id FROM {clips_table})" if clips_table else ""
    return f"""
        SELECT r.clip_id FROM {T.clipresult} r JOIN {T.clip} c ON c.id = r.clip_id
        WHERE r.run_id = %(run_id)s AND c.dataset_id = %(dataset_id)s{only}
        UNION
        SELECT k.clip_id FROM {T.candidate} k JOIN {T.clip} c ON c.id = k.clip_id
        WHERE k.run_id = %(run_id)s AND k.selected AND c.dataset_id = %(dataset_id)s{only}"""
