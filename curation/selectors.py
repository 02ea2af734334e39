"""Reads of the curation app: the adjudication page's rows, export lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db import connection

from pipeline.models import OriginalLabelScore, PipelineRun
from pipeline.selectors import run_that_counts_for_clip
from relabel_app.ids import parse_id
from relabel_app.label_info import ontology
from relabel_app.models import Clip, Dataset, Label
from review.models import Decision, GoldClip, GoldLabel

from .models import Adjudication, ExportJob
from .resolution import default_run, pair_states_sql, scope_for

if TYPE_CHECKING:
    from .adjudication_queue import PairDispute


@dataclass
class ReviewerVerdict:
    reviewer: str
    verdict: str
    error_category: str
    note: str


@dataclass
class LabelState:
    """One (clip, label) pair on the adjudication page, resolved by the export's rules."""

    label: Label
    is_original: bool
    is_candidate: bool
    kept: bool
    clap_score: float | None
    n_accept: int
    n_reject: int
    n_unsure: int
    accepted: bool | None
    curated: bool
    adjudication: Adjudication | None = None
    reviewers: list[ReviewerVerdict] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)  # ontology paths, "A > B > C"
    gold: bool | None = None  # the gold answer (present / absent) on a gold clip
    # The run's CLAP score of an original label (pipeline.OriginalLabelScore), as the
    # review screen shows it; clap_score above is the candidate's.
    original_score: float | None = None
    # Why the adjudication queue lists this label (None when it does not): set by the page.
    dispute: PairDispute | None = None

    @property
    def state(self) -> str:
        return {True: "accepted", False: "rejected", None: "unresolved"}[self.accepted]

    @property
    def majority(self) -> str:
        if self.n_accept > self.n_reject:
            return "accept"
        if self.n_reject > self.n_accept:
            return "reject"
        return "tie" if self.n_accept else "none"

    @property
    def origin(self) -> str:
        if self.is_original and self.is_candidate:
            return "original + candidate"
        if self.is_original:
            return "original"
        if self.is_candidate:
            return "candidate"
        if self.n_accept + self.n_reject + self.n_unsure:
            return "added by a reviewer"
        return "added by a curator"

    @property
    def sort_key(self) -> tuple:
        return (not self.is_original, not self.is_candidate, -(self.clap_score or 0.0),
                self.label.index if self.label.index is not None else 10_000, self.label.mid)


def clip_label_states(*, clip: Clip, run: PipelineRun | None,
                      label_id: int | None = None) -> list[LabelState]:
    """Every label of the clip (originals, the run's selected candidates, reviewer- and
    curator-added labels) with its votes, adjudication, curated state (keep-original),
    ontology paths and gold answer. A fixed number of queries whatever the number of labels."""
    scope = scope_for(dataset=clip.dataset, run_id=run.pk if run else None, clip_id=clip.pk)
    sql = pair_states_sql(scope)
    params = scope.params()
    if label_id is not None:
        sql = f"SELECT * FROM ({sql}) s WHERE s.label_id = %(label_id)s"
        params["label_id"] = label_id
    with connection.cursor() as cur:
        cur.execute(sql, params)
        cols = [c.name for c in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    labels = Label.objects.in_bulk([r["label_id"] for r in rows])
    adjudications = {
        a.label_id: a for a in Adjudication.objects.filter(clip=clip).select_related("curator")
    }
    decisions = (Decision.objects.filter(clip=clip)
                 .select_related("reviewer", "error_category").order_by("reviewer__username"))
    if label_id is not None:
        decisions = decisions.filter(label_id=label_id)
    by_label: dict[int, list[ReviewerVerdict]] = {}
    for d in decisions:
        by_label.setdefault(d.label_id, []).append(ReviewerVerdict(
            reviewer=d.reviewer.username, verdict=d.verdict,
            error_category=d.error_category.name if d.error_category else "", note=d.note,
        ))
    onto = ontology(need_ids=labels.keys())
    gold = dict(GoldLabel.objects.filter(clip=clip).values_list("label_id", "present"))
    gold_complete = GoldClip.objects.filter(clip=clip, complete=True).exists()
    original_scores = dict(
        OriginalLabelScore.objects.filter(run=run, clip=clip).values_list("label_id",
                                                                          "clap_score")
    ) if run is not None else {}

    def paths(label_id: int) -> list[str]:
        info = onto.get(label_id)
        return [info.path, *info.other_paths] if info else []

    states = [
        LabelState(
            label=labels[r["label_id"]], is_original=r["is_original"],
            is_candidate=r["is_candidate"], kept=r["kept"], clap_score=r["clap_score"],
            n_accept=r["n_accept"], n_reject=r["n_reject"], n_unsure=r["n_unsure"],
            accepted=r["accepted"], curated=r["curated"],
            adjudication=adjudications.get(r["label_id"]),
            reviewers=by_label.get(r["label_id"], []), paths=paths(r["label_id"]),
            gold=gold.get(r["label_id"], False if gold_complete else None),
            original_score=(original_scores.get(r["label_id"]) if r["is_original"]
                            else None),
        )
        for r in rows
    ]
    states.sort(key=lambda s: s.sort_key)
    return states


def dataset_runs(dataset: Dataset) -> list[PipelineRun]:
    return list(PipelineRun.objects.filter(dataset=dataset).order_by("-created_at", "-id"))


def run_for(dataset: Dataset, run_id: str | int | None, *,
            clip: Clip | None = None) -> PipelineRun | None:
    """The run named by a request (?run=ID), else the run that counts: for the clip when
    one is given (as the review page picks it), else for the dataset. A ?run= that is not
    an id is a `BadNumber` (a 400)."""
    if run_id not in (None, ""):
        return PipelineRun.objects.filter(dataset=dataset, pk=parse_id(run_id, name="run")).first()
    return run_that_counts_for_clip(clip=clip) if clip is not None else default_run(dataset)


def export_jobs_for(dataset: Dataset, *, limit: int = 100) -> list[ExportJob]:
    return list(ExportJob.objects.filter(dataset=dataset).select_related("created_by", "dataset")
                .order_by("-created_at", "-id")[:limit])
