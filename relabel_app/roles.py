"""Roles are Django groups. The names are an interface: users' scripts rely on them."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

REVIEWER = "reviewer"
CURATOR = "curator"
ADMIN = "admin"
ROLE_GROUPS = (REVIEWER, CURATOR, ADMIN)


def ensure_role_groups() -> None:
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)


def user_roles(user) -> frozenset[str]:
    """The user's role names, read once per request (cached on the user object)."""
    if not user.is_authenticated:
        return frozenset()
    roles = getattr(user, "_review_roles", None)
    if roles is None:
        roles = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            roles |= {ADMIN}
        user._review_roles = roles
    return roles


def user_is_curator(user) -> bool:
    return bool(user_roles(user) & {CURATOR, ADMIN})


def user_can_review(user) -> bool:
    """Any role may review: reviewer, curator or admin."""
    return bool(user_roles(user) & set(ROLE_GROUPS))


def role_required(check, message: str):
    """View decorator: anonymous users go to the login page, users failing `check` get 403."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


reviewer_required = role_required(
    user_can_review, "This page needs the reviewer, curator or admin role."
)
curator_required = role_required(user_is_curator, "This page is for curators.")
