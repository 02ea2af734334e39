"""Search over the API: "clips like this" and text-to-audio search (search.queries), with
the clip API's permissions (the reviewer, curator or admin role; IsReviewer by default).
Bad input and a dataset without an index answer 400 with the reason."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from relabel_app.models import Clip, Dataset
from search import queries

MAX_ID = 2**63 - 1


class SimilarQuerySerializer(serializers.Serializer):
    k = serializers.IntegerField(required=False, default=queries.SIMILAR_K, min_value=1,
                                 max_value=queries.MAX_K)


class SearchQuerySerializer(serializers.Serializer):
    dataset = serializers.IntegerField(min_value=1, max_value=MAX_ID,
                                       help_text="Dataset id")
    q = serializers.CharField(max_length=queries.MAX_QUERY_CHARS, trim_whitespace=True,
                              help_text="A sound description, e.g. 'dog barking'")
    k = serializers.IntegerField(required=False, default=queries.PAGE, min_value=1,
                                 max_value=queries.MAX_K)


class SearchLabelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mid = serializers.CharField()
    name = serializers.CharField()


class SearchHitSerializer(serializers.Serializer):
    clip = serializers.IntegerField(source="clip.pk")
    ytid = serializers.CharField(source="clip.ytid")
    start_s = serializers.FloatField(source="clip.start_s")
    score = serializers.FloatField(help_text="Cosine similarity of the CLAP embeddings")
    original_labels = SearchLabelSerializer(source="originals", many=True)
    kept_labels = SearchLabelSerializer(source="kept", many=True,
                                     help_text="Kept by the dataset's run that counts")
    added_labels = SearchLabelSerializer(source="added", many=True)


class SearchResultSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The CLAP model of the index")
    random_weights = serializers.BooleanField()
    index_version = serializers.IntegerField()
    results = SearchHitSerializer(many=True)


def _params(serializer_class, request: Request) -> dict:
    s = serializer_class(data=request.query_params.dict())
    s.is_valid(raise_exception=True)
    return dict(s.validated_data)


def _answer(page: queries.ResultPage) -> Response:
    return Response(SearchResultSerializer({
        "model": page.index.space.model_id, "random_weights": page.index.space.random_weights,
        "index_version": page.index.version, "results": page.rows,
    }).data)


class ClipSimilarView(APIView):
    @extend_schema(summary="Clips like this one", parameters=[SimilarQuerySerializer],
                   responses=SearchResultSerializer,
                   description="The k clips nearest this clip's CLAP audio embedding in its "
                   "dataset's search index (the clip itself left out), best first.")
    def get(self, request: Request, pk: int) -> Response:
        if pk > MAX_ID:
            raise ValidationError({"clip": "no such clip"})
        p = _params(SimilarQuerySerializer, request)
        clip = get_object_or_404(Clip.objects.select_related("dataset"), pk=pk)
        try:
            return _answer(queries.similar_clips(clip=clip, k=p["k"]))
        except queries.SearchUnavailable as e:
            raise ValidationError({"detail": str(e)}) from None


class SearchView(APIView):
    @extend_schema(summary="Find clips by sound description",
                   parameters=[SearchQuerySerializer], responses=SearchResultSerializer,
                   description="The k clips of the dataset whose CLAP audio embedding is "
                   "nearest the CLAP text embedding of q, best first.")
    def get(self, request: Request) -> Response:
        p = _params(SearchQuerySerializer, request)
        dataset = Dataset.objects.filter(pk=p["dataset"]).first()
        if dataset is None:
            raise ValidationError({"dataset": f"no dataset {p['dataset']}"})
        try:
            return _answer(queries.text_search(dataset=dataset, q=p["q"], k=p["k"]))
        except queries.SearchUnavailable as e:
            raise ValidationError({"detail": str(e)}) from None
