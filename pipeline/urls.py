from django.urls import path

from . import views

app_name = "pipeline"
urlpatterns = [
    path("", views.run_list, name="run_list"),
    path("start/", views.run_start, name="run_start"),
    path("<int:pk>/", views.run_detail, name="run_detail"),
    path("<int:pk>/cancel/", views.run_cancel_view, name="run_cancel"),
    path("<int:pk>/resume/", views.run_resume_view, name="run_resume"),
]
