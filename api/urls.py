from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from . import views

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
    path("auth/token/", obtain_auth_token, name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("datasets/<int:pk>/audit/", views.dataset_audit_view, name="dataset-audit"),
    path("", include(router.urls)),
]
