"""Who may do what on the review screens. Roles are the groups of relabel_app.roles:
a reviewer reviews; a curator (or admin, or superuser) also sees every reviewer's decisions,
adjudicates and manages datasets. A reviewer never sees another reviewer's decisions
before deciding (no anchoring)."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from relabel_app.roles import ADMIN, CURATOR, REVIEWER, user_is_curator, user_roles  # noqa: F401


def user_can_review(user) -> bool:
    return bool(user_roles(user) & {REVIEWER, CURATOR, ADMIN})


def reviewer_required(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not user_can_review(request.user):
            raise PermissionDenied("Reviewing needs the reviewer, curator or admin role.")
        return view(request, *args, **kwargs)

    return wrapped


def curator_required(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not user_is_curator(request.user):
            raise PermissionDenied("This page is for curators.")
        return view(request, *args, **kwargs)

    return wrapped
