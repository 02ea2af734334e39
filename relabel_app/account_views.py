"""Account pages: changing one's own password (Django's PasswordChangeView; the new
password also lifts the account's login lockouts and revokes its API tokens), and the
"Lockouts" page where admins, and curators for reviewers, see and lift login lockouts
(relabel_app.logins) without going to /admin/axes/."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods

from .logins import cooloff_minutes, lockout_lift_as, lockout_liftable_by, lockouts_current
from .roles import ADMIN, curator_required, user_roles


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"


@curator_required
@require_http_methods(["GET", "POST"])
def lockouts_page(request):
    if request.method == "POST":
        ip_address = request.POST.get("ip_address", "")
        username = request.POST.get("username") or None
        try:
            lockout_lift_as(request.user, ip_address=ip_address, username=username)
        except PermissionDenied:
            messages.error(request, "That lockout is not in force any more, or not yours to lift.")
        else:
            who = f"{username} from {ip_address}" if username else f"every username from {ip_address}"
            messages.success(request, f"Lockout lifted: {who} may log in again.")
        return redirect("lockouts")
    lockouts = lockout_liftable_by(request.user, lockouts_current())
    return render(request, "registration/lockouts.html", {
        "lockouts": lockouts, "is_admin": ADMIN in user_roles(request.user),
        "settings_pair_limit": settings.AXES_FAILURE_LIMIT,
        "settings_address_limit": settings.RELABEL_LOGIN_ADDRESS_LIMIT,
        "cooloff_minutes": cooloff_minutes(),
    })
