"""Curation pages are for curators (and admins, superusers): anonymous users are sent to
log in, everyone else gets 403. Uses relabel_app.roles, the project's one role check."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from relabel_app.roles import user_is_curator


def curator_required(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not user_is_curator(request.user):
            raise PermissionDenied("This page is for curators.")
        return view(request, *args, **kwargs)

    return wrapped
