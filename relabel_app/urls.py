from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api.pages import tokens_page

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/tokens/", tokens_page, name="tokens"),
    path("runs/", include("pipeline.urls")),
    path("api/", include("api.urls")),
    path("curation/", include("curation.urls")),
    path("", include("search.urls")),
    path("", include("review.urls")),
]
