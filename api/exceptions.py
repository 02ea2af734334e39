"""The API's exception handler: DRF's, plus the errors DRF leaves to Django, so that every
error of an API view is JSON (``{"detail": ...}`` or a serializer's field errors).

- Django's ``Http404`` (``get_object_or_404``) says "Not found.", not "No Decision matches
  the given query." (model names are internals).
- A `BadRequest` (relabel_app.ids.BadNumber, a control character) is a 400 with its message.
- A database outage is a 503 with ``Retry-After``: the request may succeed when retried.
Anything else propagates to relabel_app.errors.server_error, a JSON 500."""

from __future__ import annotations

from django.core.exceptions import BadRequest
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from relabel_app.errors import DATABASE_AWAY, RETRY_AFTER_S, USER_MESSAGES


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, BadRequest):
        exc = exceptions.ParseError(str(exc) if isinstance(exc, USER_MESSAGES) else None)
    elif isinstance(exc, OperationalError | InterfaceError):
        return Response({"detail": DATABASE_AWAY}, status=503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})
    return exception_handler(exc, context)
