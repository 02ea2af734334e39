from django.urls import path

from . import views

app_name = "review"
urlpatterns = [
    path("", views.home, name="home"),
    path("datasets/<int:dataset_id>/start/", views.review_start, name="start"),
    path("datasets/<int:dataset_id>/settings/", views.dataset_settings, name="dataset_settings"),
    path("clips/<int:clip_id>/", views.clip_detail, name="clip"),
    path("clips/<int:clip_id>/audio/", views.clip_audio, name="clip_audio"),
    path("clips/<int:clip_id>/next/", views.review_next, name="next"),
    path("clips/<int:clip_id>/add/", views.label_add, name="label_add"),
    path("clips/<int:clip_id>/decisions/", views.clip_decisions, name="clip_decisions"),
    path("clips/<int:clip_id>/labels/<int:label_id>/decide/", views.decision_set, name="decide"),
    path("clips/<int:clip_id>/labels/<int:label_id>/undo/", views.decision_undo, name="undo"),
    path(
        "clips/<int:clip_id>/labels/<int:label_id>/category/",
        views.decision_category,
        name="category",
    ),
    path("clips/<int:clip_id>/note/", views.clip_note_set, name="clip_note"),
    path("labels/search/", views.label_search_view, name="label_search"),
    path("clips/<int:clip_id>/counters/", views.clip_counters, name="counters"),
    path("clips/recent/", views.recent_clips_view, name="recent_clips"),
    path("settings/autoplay/", views.autoplay_set, name="autoplay"),
    # Rapid mode: one label at a time over the same queue and the same decision endpoints.
    path("datasets/<int:dataset_id>/rapid/", views.rapid_start, name="rapid_start"),
    path("rapid/clips/<int:clip_id>/", views.rapid_clip, name="rapid"),
    path("rapid/clips/<int:clip_id>/questions/", views.rapid_questions_view,
         name="rapid_questions"),
    path("rapid/clips/<int:clip_id>/next/", views.rapid_next, name="rapid_next"),
]
