"""Reads behind the API's lists: one queryset per resource, filters already validated.

The big tables (clips, candidates, decisions) are filtered with EXISTS on their indexed
keys and paged by cursor on the primary key (api.pagination); nothing here counts them."""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from curation.models import Adjudication, ExportJob
from pipeline.models import Candidate, OriginalLabelScore, PipelineRun
from relabel_app.models import Clip, ClipLabel, Dataset
from review.models import ClipReview, Decision


def where(qs: QuerySet, **lookups) -> QuerySet:
    """``qs`` filtered by each lookup that is given: None (and "") mean "no filter", so the
    optional query parameters of a list map straight onto lookups."""
    given = {k: v for k, v in lookups.items() if v is not None and v != ""}
    return qs.filter(**given) if given else qs


def dataset_list() -> QuerySet[Dataset]:
    last_position = (
        Clip.objects.filter(dataset=OuterRef("pk")).order_by("-position").values("position")[:1]
    )
    return Dataset.objects.annotate(
        clip_count=Coalesce(Subquery(last_position) + 1, Value(0))
    ).order_by("name")


def clip_list(
    *,
    user,
    dataset: int | None = None,
    ytid: str | None = None,
    decided: bool | None = None,
    finished: bool | None = None,
    label: int | None = None,
    label_source: str = "any",
    run: int | None = None,
) -> QuerySet[Clip]:
    qs = where(Clip.objects.all(), dataset_id=dataset, ytid=ytid)
    if decided is not None:
        mine = Exists(Decision.objects.filter(clip=OuterRef("pk"), reviewer=user))
        qs = qs.filter(mine if decided else ~mine)
    if finished is not None:
        done = Exists(ClipReview.objects.filter(clip=OuterRef("pk"), reviewer=user))
        qs = qs.filter(done if finished else ~done)
    if label is not None:
        original = Exists(ClipLabel.objects.filter(clip=OuterRef("pk"), label_id=label))
        cands = Candidate.objects.filter(clip=OuterRef("pk"), label_id=label, selected=True)
        if run is not None:
            cands = cands.filter(run_id=run)
        candidate = Exists(cands)
        qs = qs.filter(
            original if label_source == "original"
            else candidate if label_source == "candidate"
            else original | candidate
        )
    return qs.prefetch_related(
        Prefetch("clip_labels", queryset=ClipLabel.objects.only("id", "clip_id", "label_id")),
        Prefetch("original_scores", queryset=OriginalLabelScore.objects.order_by(
            "run_id", "label_id")),
    )


def original_score_list(
    *, run: int | None = None, clip: int | None = None, label: int | None = None
) -> QuerySet[OriginalLabelScore]:
    """CLAP scores of clips' original labels, as the runs' filter stages stored them."""
    return where(OriginalLabelScore.objects.all(), run_id=run, clip_id=clip, label_id=label)


def candidate_list(
    *,
    run: int | None = None,
    clip: int | None = None,
    label: int | None = None,
    kept: bool | None = None,
    selected: bool | None = None,
    tier: str | None = None,
) -> QuerySet[Candidate]:
    return where(Candidate.objects.all(), run_id=run, clip_id=clip, label_id=label, kept=kept,
                 selected=selected, tier=tier)


def decision_list(
    *,
    user,
    all_reviewers: bool,
    clip: int | None = None,
    dataset: int | None = None,
    label: int | None = None,
    verdict: str | None = None,
    reviewer: str | None = None,
) -> QuerySet[Decision]:
    """A reviewer sees only their own decisions (no anchoring on others'); a curator sees
    everyone's, optionally one reviewer's."""
    qs = Decision.objects.select_related("reviewer", "error_category")
    if not all_reviewers:
        qs = qs.filter(reviewer=user)
    elif reviewer:
        qs = qs.filter(reviewer__username=reviewer)
    return where(qs, clip_id=clip, clip__dataset_id=dataset, label_id=label, verdict=verdict)


def run_list(
    *, dataset: int | None = None, kind: str | None = None, status: str | None = None
) -> QuerySet[PipelineRun]:
    qs = PipelineRun.objects.select_related("created_by").order_by(
        F("created_at").desc(), F("id").desc()
    )
    return where(qs, dataset_id=dataset, kind=kind, status=status)


def adjudication_list(
    *,
    clip: int | None = None,
    dataset: int | None = None,
    label: int | None = None,
    verdict: str | None = None,
) -> QuerySet[Adjudication]:
    return where(Adjudication.objects.select_related("curator"), clip_id=clip,
                 clip__dataset_id=dataset, label_id=label, verdict=verdict)


def export_list(*, dataset: int | None = None, status: str | None = None) -> QuerySet[ExportJob]:
    qs = ExportJob.objects.select_related("created_by", "dataset").order_by(
        F("created_at").desc(), F("id").desc()
    )
    return where(qs, dataset_id=dataset, status=status)
