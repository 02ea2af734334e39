"""Failed-login lockout (django-axes): what a locked-out client is told, and which address
a request comes from.

The login page answers 429 with a page that says why and for how long; the API (the token
endpoint) answers 429 in JSON with ``Retry-After``. The lockout ends by itself after
``AXES_COOLOFF_TIME``."""

from __future__ import annotations

import math

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

LOCKOUT_STATUS = 429


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' standalone backend for every login over HTTP (the login page, the
    admin's, the token endpoint: each passes its request). A call without a request comes
    from code, not from a client (a management command, the test client's ``login()``):
    there is no address to count, so it is left to the next backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def cooloff_minutes() -> int:
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message() -> str:
    minutes = cooloff_minutes()
    return (
        f"Too many failed logins for this account or from this address. Logging in is "
        f"blocked for {minutes} minute{'s' if minutes != 1 else ''} after the last failure; "
        f"then it works again by itself."
    )


def lockout_response(request: HttpRequest, original_response=None, credentials=None):
    seconds = max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"detail": lockout_message()}, status=LOCKOUT_STATUS
        )
    else:
        response = render(
            request, "registration/lockout.html",
            {"message": lockout_message(), "cooloff_minutes": cooloff_minutes()},
            status=LOCKOUT_STATUS,
        )
    response["Retry-After"] = str(seconds)
    return response


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or, behind a trusted proxy
    (``RELABEL_TRUSTED_PROXY``), the last address of X-Forwarded-For (the one the proxy
    added; earlier ones are the client's own claims)."""
    if settings.TRUSTED_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1]
    return request.META.get("REMOTE_ADDR")


def axes_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username django-axes records, read as axes does, cut to its column (varchar 255):
    Django's login form does not enforce the username's length on the server, and a longer
    name failed the failure's INSERT (a 500). No account's name is longer than 150."""
    field = settings.AXES_USERNAME_FORM_FIELD
    name = credentials.get(field) if credentials else \
        getattr(request, "data", request.POST).get(field)
    return name[:150] if isinstance(name, str) else name
