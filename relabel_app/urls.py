from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api.pages import tokens_page

from .account_views import PasswordChangeDoneView, PasswordChangeView, lockouts_page

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/tokens/", tokens_page, name="tokens"),
    path("accounts/password/", PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", PasswordChangeDoneView.as_view(),
         name="password_change_done"),
    path("accounts/lockouts/", lockouts_page, name="lockouts"),
    path("runs/", include("pipeline.urls")),
    path("api/", include("api.urls")),
    path("curation/", include("curation.urls")),
    path("", include("search.urls")),
    path("", include("review.urls")),
]

# The site's error pages, and JSON for the API (relabel_app.errors).
handler400 = "relabel_app.errors.bad_request"
handler403 = "relabel_app.errors.permission_denied"
handler404 = "relabel_app.errors.page_not_found"
handler500 = "relabel_app.errors.server_error"
