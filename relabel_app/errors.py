"""Error answers that Django itself gives (handler400/403/404/500): the styled pages for
the site, JSON for the API, whose clients parse every answer (``{"detail": ...}`` like
DRF's own errors; never a traceback or a model name).

A database outage under /api/ is a 503 with ``Retry-After`` (the client may try again),
not a 500. Errors raised inside an API view are handled by api.exceptions first; these
are for what happens around the views (middleware, URLs that match nothing)."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

from .ids import BadNumber
from .text_input import ControlCharacters

API_PREFIX = "/api/"
RETRY_AFTER_S = 10
DATABASE_AWAY = "The database is not reachable at the moment; try again shortly."
# Exceptions whose message was written for the user (the rest may name internals).
USER_MESSAGES = (BadNumber, ControlCharacters)


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def database_away_response() -> JsonResponse:
    response = JsonResponse({"detail": DATABASE_AWAY}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = str(exception) if isinstance(exception, USER_MESSAGES) else "Bad request."
    if is_api(request):
        return JsonResponse({"detail": message}, status=400)
    return render(request, "400.html", {"message": message}, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return JsonResponse(
            {"detail": "You do not have permission to perform this action."}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this inside its `except`, so the exception is at hand.
    exc = sys.exc_info()[1]
    if is_api(request):
        if isinstance(exc, OperationalError | InterfaceError):
            return database_away_response()
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)
