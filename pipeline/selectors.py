"""The run that counts: which run's candidates review, curation and the API show when no
run is named. One rule, used everywhere:

1. A run counts when it is running or done, or pending again after it was started
   (`run_pipeline` continuing a finished run over new clips). A run never dispatched has
   nothing to show; a cancelled one was stopped on purpose (resume it and it counts again).
2. Of those, a run of the model chain (or one derived from it by a threshold set) before
   an external label set (external sets are for comparison, chosen explicitly once a
   model run exists); then the latest
   (created_at, then id).
3. For a clip, the same rule among the runs with a result or a candidate for that clip:
   a run over some clips (`run_pipeline --clips`) counts for those clips only.

The same rule is written once more as SQL (COUNTS_SQL, ORDER_SQL) for the statements that
pick the run inside one query (the review page, the review queue); so is a run's CLAP
threshold (run_threshold_sql, as PipelineRun.threshold)."""

from __future__ import annotations

from django.db.models import Case, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When

from relabel_app.models import Clip, Dataset

from .models import Candidate, ClipResult, PipelineRun

_S, _K = PipelineRun.Status, PipelineRun.Kind

# For raw SQL over the runs table (alias r); values inlined (they are our constants).
COUNTS_SQL = (f"(r.status IN ('{_S.RUNNING.value}', '{_S.DONE.value}') "
              f"OR (r.status = '{_S.PENDING.value}' AND r.started_at IS NOT NULL))")
ORDER_SQL = (f"r.kind NOT IN ('{_K.MODELS.value}', '{_K.DERIVED.value}'), "
             "r.created_at DESC, r.id DESC")


def run_threshold_sql(alias: str = "r") -> str:
    """SQL of the run's CLAP threshold (float8; NULL when the run has none or it is not a
    number), as PipelineRun.threshold reads it."""
    path = "'{filter,threshold}'"
    return (f"CASE WHEN jsonb_typeof({alias}.config #> {path}) = 'number' "
            f"THEN ({alias}.config #>> {path})::float8 END")


def counting_runs(dataset: Dataset | int | None = None) -> QuerySet[PipelineRun]:
    """The runs that may count (rule 1), best first (rule 2)."""
    qs = PipelineRun.objects.filter(
        Q(status__in=[_S.RUNNING, _S.DONE]) | Q(status=_S.PENDING, started_at__isnull=False))
    if dataset is not None:
        qs = qs.filter(dataset=dataset)
    return qs.annotate(
        external_first=Case(When(kind__in=[_K.MODELS, _K.DERIVED], then=Value(0)), default=Value(1),
                            output_field=IntegerField())
    ).order_by("external_first", "-created_at", "-id")


def run_that_counts(*, dataset: Dataset | int, finished: bool = False) -> PipelineRun | None:
    """The dataset's run that counts; with `finished`, the best of its finished runs (what
    the review queue ranks by: uncertainty needs every clip's CLAP scores)."""
    qs = counting_runs(dataset)
    if finished:
        qs = qs.filter(status=_S.DONE)
    return qs.first()


def run_that_counts_for_clip(*, clip: Clip) -> PipelineRun | None:
    covers = Q(Exists(ClipResult.objects.filter(run=OuterRef("pk"), clip=clip))) | Q(
        Exists(Candidate.objects.filter(run=OuterRef("pk"), clip=clip)))
    return counting_runs(clip.dataset_id).filter(covers).first()
