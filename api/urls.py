from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularSwaggerSplitView,
)
from rest_framework.routers import DefaultRouter

from . import auth_views, quality_views, search_views, views

app_name = "api"

router = DefaultRouter()
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("clips", views.ClipViewSet, basename="clip")
router.register("labels", views.LabelViewSet, basename="label")
router.register("runs", views.RunViewSet, basename="run")
router.register("candidates", views.CandidateViewSet, basename="candidate")
router.register("original-label-scores", views.OriginalLabelScoreViewSet,
                basename="original-label-score")
router.register("decisions", views.DecisionViewSet, basename="decision")
router.register("error-categories", views.ErrorCategoryViewSet, basename="error-category")
router.register("adjudications", views.AdjudicationViewSet, basename="adjudication")
router.register("exports", views.ExportViewSet, basename="export")

urlpatterns = [
    path("auth/token/", auth_views.TokenView.as_view(), name="token"),
    path("auth/tokens/", auth_views.TokenListView.as_view(), name="tokens"),
    path("auth/tokens/<str:token_id>/", auth_views.TokenDetailView.as_view(), name="token-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view: the page loads its start-up script from a URL (no inline script), so
    # the docs work under the Content-Security-Policy.
    path("docs/", SpectacularSwaggerSplitView.as_view(
        url_name="api:schema", template_name="api/swagger_ui.html"), name="docs"),
    path("datasets/<int:pk>/audit/", views.dataset_audit_view, name="dataset-audit"),
    path("clips/<int:pk>/similar/", search_views.ClipSimilarView.as_view(), name="clip-similar"),
    path("search/", search_views.SearchView.as_view(), name="search"),
    path("datasets/<int:pk>/quality/", quality_views.quality_study_list, name="quality-studies"),
    path("datasets/<int:pk>/quality/<int:study_id>/", quality_views.quality_study_report,
         name="quality-study-report"),
    path("", include(router.urls)),
]
