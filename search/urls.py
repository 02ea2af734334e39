from django.urls import path

from . import views

app_name = "search"
urlpatterns = [
    path("find/", views.find_start, name="find_start"),
    path("datasets/<int:dataset_id>/find/", views.find, name="find"),
    path("datasets/<int:dataset_id>/find/add/", views.add_to_selected, name="add_selected"),
    path("datasets/<int:dataset_id>/search-index/", views.index_state, name="index_state"),
    # <mid> as in /m/09x0r, written without its first slash: /datasets/1/sweep/m/09x0r/
    path("datasets/<int:dataset_id>/sweep/<path:mid>/decide/", views.sweep_decide,
         name="sweep_decide"),
    path("datasets/<int:dataset_id>/sweep/<path:mid>/", views.sweep, name="sweep"),
    path("clips/<int:clip_id>/similar/", views.similar_panel, name="similar"),
]
