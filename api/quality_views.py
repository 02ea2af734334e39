"""Quality studies in the API (curators): the list of a dataset's studies and one study's
report, the same data as the report page and ``manage.py quality_study report --json``."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from curation.quality.models import QualityStudy
from curation.quality.report import quality_report, report_json
from relabel_app.models import Dataset

from .permissions import IsCurator
from .views import path_id


@extend_schema(summary="Quality studies of a dataset (curators)", operation_id="quality_study_list",
               responses={200: OpenApiTypes.OBJECT})
@api_view(["GET"])
@permission_classes([IsCurator])
def quality_study_list(request: Request, pk: int) -> Response:
    dataset = get_object_or_404(Dataset, pk=path_id(str(pk)))
    return Response({"results": [
        {"id": s.pk, "name": s.name, "sources": s.sources, "per_class": s.per_class,
         "recall_clips": s.recall_clips, "answers_per_question": s.answers_per_question,
         "seed": s.seed, "status": s.status, "created_at": s.created_at}
        for s in QualityStudy.objects.filter(dataset=dataset)]})


@extend_schema(summary="A quality study's report (curators)", operation_id="quality_study_report",
               responses={200: OpenApiTypes.OBJECT},
               description="Per class and source: rated, true, unsure, precision with its "
               "Wilson 95 % interval; per source: stratified overall precision, macro "
               "precision, recall and missing labels per clip with bootstrap intervals; "
               "differences between sources; agreement; progress.")
@api_view(["GET"])
@permission_classes([IsCurator])
def quality_study_report(request: Request, pk: int, study_id: int) -> Response:
    dataset = get_object_or_404(Dataset, pk=path_id(str(pk)))
    study = get_object_or_404(QualityStudy.objects.select_related("dataset"),
                              pk=path_id(str(study_id)), dataset=dataset)
    return Response(report_json(quality_report(study)))
