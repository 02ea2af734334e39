"""The UI's roles (relabel_app.roles) as DRF permissions.

reviewer: reads everything but other reviewers' decisions, writes their own decisions.
curator (and admin, superuser): everything, including runs, adjudications and exports.
An authenticated user with no role gets 403; an anonymous one 401."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from relabel_app.roles import user_can_review, user_is_curator


class IsReviewer(BasePermission):
    message = "The API needs the reviewer, curator or admin role."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and user_can_review(request.user))


class IsCurator(BasePermission):
    message = "Only curators may do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and user_is_curator(request.user))


class ReadReviewerWriteCurator(BasePermission):
    """Reviewers read; only curators write (start runs)."""

    message = "Only curators may do this."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return bool(request.user and user_can_review(request.user))
        return bool(request.user and user_is_curator(request.user))
