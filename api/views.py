"""The REST API. Thin: check the role (api.permissions), validate the query or body with a
serializer, call one selector or service, serialize.

Roles are the UI's: every endpoint needs the reviewer, curator or admin role; reviewers
read datasets, clips, labels, runs and candidates and write their own decisions; only
curators start runs, see other reviewers' decisions, adjudicate, export and read the audit
figures (curation.adjudication, curation.export_jobs / curation.audits)."""

from __future__ import annotations

from django.db import transaction
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action, api_view, permission_classes
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from curation.adjudication import adjudication_clear, adjudication_record
from curation.audits import dataset_audit
from curation.export_jobs import export_job_create
from curation.models import Adjudication
from pipeline.models import PipelineRun
from pipeline.profiles import ProfileError
from pipeline.services import run_dispatch, run_get_or_create, run_progress
from relabel_app.label_info import ontology
from relabel_app.models import Dataset, Label
from relabel_app.roles import user_is_curator
from review.decisions import decision_upsert
from review.label_search import label_search
from review.models import ErrorCategory

from . import selectors
from .exports import export_file_path
from .pagination import BigTableCursorPagination, SmallTablePagination
from .permissions import IsCurator, ReadReviewerWriteCurator
from .serializers import (
    MAX_ID,
    AdjudicationFilterSerializer,
    AdjudicationInputSerializer,
    AdjudicationSerializer,
    AuditFilterSerializer,
    CandidateFilterSerializer,
    CandidateSerializer,
    ClipDetailSerializer,
    ClipFilterSerializer,
    ClipSerializer,
    DatasetSerializer,
    DecisionFilterSerializer,
    DecisionInputSerializer,
    DecisionSerializer,
    ErrorCategorySerializer,
    ExportFilterSerializer,
    ExportJobSerializer,
    ExportStartSerializer,
    LabelFilterSerializer,
    LabelSerializer,
    OriginalLabelScoreFilterSerializer,
    OriginalLabelScoreSerializer,
    RunDetailSerializer,
    RunFilterSerializer,
    RunProgressSerializer,
    RunSerializer,
    RunStartSerializer,
)

ID = r"[0-9]{1,19}"  # a path id: anything else is a 404 from the URL resolver


def query_filters(serializer_class: type[serializers.Serializer], request: Request) -> dict:
    """Validated query parameters (400 on a bad one). A plain dict, not the QueryDict, so
    an absent boolean stays absent instead of reading as false."""
    s = serializer_class(data=request.query_params.dict())
    s.is_valid(raise_exception=True)
    return dict(s.validated_data)


def path_id(value: str) -> int:
    n = int(value)
    if n > MAX_ID:
        raise NotFound()
    return n


@extend_schema_view(
    list=extend_schema(summary="Datasets", description="Every dataset, by name."),
    retrieve=extend_schema(summary="One dataset"),
)
class DatasetViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = DatasetSerializer
    pagination_class = SmallTablePagination
    lookup_value_regex = ID

    def get_queryset(self):
        return selectors.dataset_list()


@extend_schema_view(
    list=extend_schema(
        summary="Clips", parameters=[ClipFilterSerializer],
        description="Cursor-paginated by id. Filters: dataset, review state (yours), label "
        "(original, candidate or either).",
    ),
    retrieve=extend_schema(summary="One clip"),
)
class ClipViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ClipSerializer
    pagination_class = BigTableCursorPagination
    lookup_value_regex = ID

    def get_serializer_class(self):
        return ClipDetailSerializer if self.action == "retrieve" else ClipSerializer

    def get_queryset(self):
        filters = query_filters(ClipFilterSerializer, self.request) if self.action == "list" \
            else {}
        return selectors.clip_list(user=self.request.user, **filters)


@extend_schema_view(
    list=extend_schema(
        summary="Ontology labels", parameters=[LabelFilterSerializer],
        description="All 632 classes in class_labels_indices order (the 105 untrainable "
        "after), or with `q` the best search matches first.",
    ),
    retrieve=extend_schema(summary="One label"),
)
class LabelViewSet(viewsets.GenericViewSet):
    serializer_class = LabelSerializer
    pagination_class = SmallTablePagination
    lookup_value_regex = ID

    def get_queryset(self):
        # Rows come from the in-process ontology; this is only for DRF's HTML renderer.
        return Label.objects.none()

    def list(self, request: Request, **kwargs) -> Response:
        f = query_filters(LabelFilterSerializer, request)
        onto = ontology()
        if f.get("q"):
            infos = [hit.info for hit in label_search(query=f["q"], limit=50)]
        else:
            infos = sorted(
                onto.by_id.values(),
                key=lambda i: (i.index is None, i.index if i.index is not None else 0, i.name),
            )
        if f.get("mid"):
            infos = [i for i in infos if i.mid == f["mid"]]
        if "trainable" in f:
            infos = [i for i in infos if i.trainable == f["trainable"]]
        page = self.paginate_queryset(infos)
        return self.get_paginated_response(LabelSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str, **kwargs) -> Response:
        n = path_id(pk)
        info = ontology().get(n)
        if info is None:
            raise NotFound(f"no label {n}")
        return Response(LabelSerializer(info).data)


@extend_schema_view(
    list=extend_schema(summary="Pipeline runs and external label sets",
                       parameters=[RunFilterSerializer]),
    retrieve=extend_schema(summary="One run with its configuration and progress",
                           responses=RunDetailSerializer),
)
class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [ReadReviewerWriteCurator]
    pagination_class = SmallTablePagination
    lookup_value_regex = ID

    def get_queryset(self):
        filters = query_filters(RunFilterSerializer, self.request) if self.action == "list" \
            else {}
        return selectors.run_list(**filters)

    def get_serializer_class(self):
        return RunSerializer if self.action == "list" else RunDetailSerializer

    def retrieve(self, request: Request, pk: str, **kwargs) -> Response:
        run = get_object_or_404(self.get_queryset(), pk=path_id(pk))
        return Response(RunDetailSerializer(run, context={"progress": run_progress(run=run)}).data)

    @extend_schema(
        summary="Start or continue a run (curators)",
        request=RunStartSerializer,
        responses={201: RunDetailSerializer, 200: RunDetailSerializer},
        description="Continues the latest run of the dataset and profile (200) or starts a "
        "new one (201; always with `new`), then queues its unfinished clips.",
    )
    def create(self, request: Request, **kwargs) -> Response:
        s = RunStartSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        try:
            run, created = run_get_or_create(
                dataset=d["dataset"], profile=d["profile"], clip_ids=d.get("clips"),
                new=d["new"], user=request.user,
            )
        except ProfileError as e:
            raise serializers.ValidationError({"profile": [str(e)]}) from None
        run_dispatch(run=run)
        run.refresh_from_db()
        return Response(
            RunDetailSerializer(run, context={"progress": run_progress(run=run)}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(summary="Progress of a run", responses=RunProgressSerializer)
    @action(detail=True, methods=["get"])
    def progress(self, request: Request, pk: str, **kwargs) -> Response:
        run = get_object_or_404(self.get_queryset(), pk=path_id(pk))
        return Response(RunProgressSerializer(run_progress(run=run)).data)


@extend_schema_view(
    list=extend_schema(summary="Candidate labels", parameters=[CandidateFilterSerializer],
                       description="Cursor-paginated by id."),
    retrieve=extend_schema(summary="One candidate"),
)
class CandidateViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CandidateSerializer
    pagination_class = BigTableCursorPagination
    lookup_value_regex = ID

    def get_queryset(self):
        filters = query_filters(CandidateFilterSerializer, self.request) \
            if self.action == "list" else {}
        return selectors.candidate_list(**filters)


@extend_schema_view(
    list=extend_schema(
        summary="CLAP scores of original labels", parameters=[OriginalLabelScoreFilterSerializer],
        description="Per run, clip and original label: the cosine between the clip's audio and "
        "the label's class text, from the run's filter stage (evidence, not candidates). "
        "Cursor-paginated by id.",
    ),
    retrieve=extend_schema(summary="One original-label score"),
)
class OriginalLabelScoreViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = OriginalLabelScoreSerializer
    pagination_class = BigTableCursorPagination
    lookup_value_regex = ID

    def get_queryset(self):
        filters = query_filters(OriginalLabelScoreFilterSerializer, self.request) \
            if self.action == "list" else {}
        return selectors.original_score_list(**filters)


@extend_schema_view(
    list=extend_schema(
        summary="Decisions", parameters=[DecisionFilterSerializer],
        description="Reviewers get their own decisions only; curators everyone's. "
        "Cursor-paginated by id.",
    ),
    retrieve=extend_schema(summary="One decision (yours, or any for curators)"),
)
class DecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DecisionSerializer
    pagination_class = BigTableCursorPagination
    lookup_value_regex = ID

    def get_queryset(self):
        filters = query_filters(DecisionFilterSerializer, self.request) \
            if self.action == "list" else {}
        return selectors.decision_list(
            user=self.request.user, all_reviewers=user_is_curator(self.request.user), **filters
        )

    @extend_schema(
        summary="Record your verdict on a label of a clip",
        request=DecisionInputSerializer,
        responses={
            201: DecisionSerializer, 200: DecisionSerializer,
            400: OpenApiResponse(description="Invalid body, or no such clip, label or "
                                             "error category (nothing is written)."),
        },
        description="Creates your decision (201) or updates it in place (200). Idempotent: "
        "the same body twice leaves one decision and one history entry.",
    )
    def create(self, request: Request, **kwargs) -> Response:
        s = DecisionInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        optional = {k: d[k] for k in ("error_category", "note") if k in d}
        # 201 only to the call whose INSERT made the row (decided in the database, so
        # identical concurrent posts get one 201 and 200s).
        decision, created = decision_upsert(
            clip=d["clip"], label=d["label"], reviewer=request.user, verdict=d["verdict"],
            **optional,
        )
        return Response(
            DecisionSerializer(decision).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


@extend_schema_view(list=extend_schema(summary="Error categories"))
class ErrorCategoryViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ErrorCategorySerializer
    pagination_class = SmallTablePagination
    queryset = ErrorCategory.objects.order_by("position", "name")


# --- curation: adjudications, exports, audits (curators only) -----------------------------


@extend_schema_view(
    list=extend_schema(summary="Adjudications (curators)",
                       parameters=[AdjudicationFilterSerializer],
                       description="Cursor-paginated by id."),
    retrieve=extend_schema(summary="One adjudication (curators)"),
    destroy=extend_schema(summary="Clear an adjudication (curators)",
                          description="The reviewers' majority applies again."),
)
class AdjudicationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          viewsets.GenericViewSet):
    serializer_class = AdjudicationSerializer
    permission_classes = [IsCurator]
    pagination_class = BigTableCursorPagination
    lookup_value_regex = ID

    def get_queryset(self):
        filters = query_filters(AdjudicationFilterSerializer, self.request) \
            if self.action == "list" else {}
        return selectors.adjudication_list(**filters)

    @extend_schema(
        summary="Record the final verdict on a label of a clip (curators)",
        request=AdjudicationInputSerializer,
        responses={201: AdjudicationSerializer, 200: AdjudicationSerializer},
        description="Creates (201) or updates (200) the clip's adjudication of the label; "
        "idempotent. It overrides the reviewers' majority in the curated set.",
    )
    def create(self, request: Request, **kwargs) -> Response:
        s = AdjudicationInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        with transaction.atomic():
            existed = Adjudication.objects.filter(clip=d["clip"], label=d["label"]).exists()
            adj = adjudication_record(clip=d["clip"], label=d["label"], curator=request.user,
                                      verdict=d["verdict"], note=d["note"])
        return Response(AdjudicationSerializer(adj).data,
                        status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str, **kwargs) -> Response:
        adj = get_object_or_404(self.get_queryset(), pk=path_id(pk))
        adjudication_clear(clip=adj.clip, label=adj.label, curator=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="Export jobs (curators)", parameters=[ExportFilterSerializer]),
    retrieve=extend_schema(summary="One export job with its progress (curators)"),
)
class ExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ExportJobSerializer
    permission_classes = [IsCurator]
    pagination_class = SmallTablePagination
    lookup_value_regex = ID

    def get_queryset(self):
        filters = query_filters(ExportFilterSerializer, self.request) \
            if self.action == "list" else {}
        return selectors.export_list(**filters)

    @extend_schema(
        summary="Start an export (curators)",
        request=ExportStartSerializer,
        responses={202: ExportJobSerializer},
        description="Queues a Celery job that writes the file; poll the job until its "
        "status is done, then GET its download_url.",
    )
    def create(self, request: Request, **kwargs) -> Response:
        s = ExportStartSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        d = s.validated_data
        job = export_job_create(dataset=d["dataset"], fmt=d["format"], policy=d["policy"],
                                user=request.user)
        return Response(ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Download a finished export (curators)",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                   404: OpenApiResponse(description="No such job, not finished, or its "
                                                    "file is gone.")},
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str, **kwargs) -> FileResponse:
        job = get_object_or_404(self.get_queryset(), pk=path_id(pk))
        path = export_file_path(job=job)
        if path is None:
            raise NotFound("This export is not finished, or its file is gone.")
        # FileResponse closes the file when the response is done.
        return FileResponse(open(path, "rb"), as_attachment=True,  # noqa: SIM115
                            filename=job.file_name)


@extend_schema(
    summary="Audit figures of a dataset (curators)",
    parameters=[AuditFilterSerializer],
    responses={200: OpenApiTypes.OBJECT},
    description="Label counts (original, run, curated), agreement between the original "
    "labels and the run, error categories, pipeline vs experts, reviewer agreement and "
    "throughput: the figures of the audit page and `manage.py audit --json`.",
)
@api_view(["GET"])
@permission_classes([IsCurator])
def dataset_audit_view(request: Request, pk: str) -> Response:
    dataset = get_object_or_404(Dataset, pk=path_id(pk))
    f = query_filters(AuditFilterSerializer, request)
    run = None
    if "run" in f:
        run = PipelineRun.objects.filter(pk=f["run"], dataset=dataset).first()
        if run is None:
            raise serializers.ValidationError({"run": [f"no run {f['run']} of this dataset"]})
    return Response(dataset_audit(dataset=dataset, run=run))
