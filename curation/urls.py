from django.urls import path

from . import threshold_views, views
from .quality import views as quality_views

app_name = "curation"
urlpatterns = [
    path("", views.index, name="index"),
    path("clip/<int:clip_id>/", views.clip_adjudicate, name="clip"),
    path("clip/<int:clip_id>/labels/<int:label_id>/adjudicate/", views.adjudicate,
         name="adjudicate"),
    path("clip/<int:clip_id>/gold/", views.gold_make, name="gold_make"),
    path("dataset/<slug:name>/adjudicate/", views.adjudication_queue_page,
         name="adjudication_queue"),
    path("dataset/<slug:name>/adjudicate/next/", views.adjudicate_next, name="adjudicate_next"),
    path("dataset/<slug:name>/reviewers/", views.reviewers, name="reviewers"),
    path("dataset/<slug:name>/audit/", views.audit, name="audit"),
    path("dataset/<slug:name>/audit/refresh/", views.audit_refresh, name="audit_refresh"),
    path("dataset/<slug:name>/audit/state/", views.audit_state, name="audit_state"),
    path("dataset/<slug:name>/thresholds/", threshold_views.thresholds, name="thresholds"),
    path("dataset/<slug:name>/thresholds/fit/", threshold_views.thresholds_fit,
         name="thresholds_fit"),
    path("dataset/<slug:name>/exports/", views.exports, name="exports"),
    path("exports/<int:job_id>/progress/", views.export_progress, name="export_progress"),
    path("exports/<int:job_id>/download/", views.export_download, name="export_download"),
    path("exports/<int:job_id>/retry/", views.export_retry, name="export_retry"),
    path("exports/<int:job_id>/cancel/", views.export_cancel, name="export_cancel"),
    # Quality studies (curation.quality): curators create and read; reviewers answer blind.
    path("dataset/<slug:name>/quality/", quality_views.studies, name="quality_studies"),
    path("dataset/<slug:name>/quality/<int:study_id>/", quality_views.report,
         name="quality_report"),
    path("dataset/<slug:name>/quality/<int:study_id>/csv/", quality_views.report_csv,
         name="quality_csv"),
    path("quality/<int:study_id>/answer/", quality_views.answer_screen, name="quality_answer"),
    path("quality/<int:study_id>/units/", quality_views.units_partial, name="quality_units"),
    path("quality/<int:study_id>/questions/<int:question_id>/answer/", quality_views.answer,
         name="quality_answer_question"),
    path("quality/<int:study_id>/clips/<int:clip_id>/done/", quality_views.clip_done,
         name="quality_clip_done"),
    path("quality/<int:study_id>/clips/<int:clip_id>/add/", quality_views.class_add,
         name="quality_class_add"),
    path("quality/<int:study_id>/search/", quality_views.search, name="quality_search"),
]
