"""Roles are Django groups. The names are an interface: users' scripts rely on them.

A reviewer reviews; a curator (or admin, or superuser) also sees every reviewer's decisions,
adjudicates, runs the pipeline and exports. A reviewer never sees another reviewer's
decisions before deciding (no anchoring). The views of every app use the checks here."""

from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.contrib.postgres.aggregates import ArrayAgg
from django.core.exceptions import PermissionDenied
from django.db.models import Q

REVIEWER = "reviewer"
CURATOR = "curator"
ADMIN = "admin"
ROLE_GROUPS = (REVIEWER, CURATOR, ADMIN)


def ensure_role_groups() -> None:
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)


def _roles_of(user, group_names) -> frozenset[str]:
    roles = frozenset(group_names)
    return roles | {ADMIN} if user.is_superuser else roles


def user_roles(user) -> frozenset[str]:
    """The user's role names, read once per request (cached on the user object; the session
    backend below reads them with the user)."""
    if not user.is_authenticated:
        return frozenset()
    roles = getattr(user, "_review_roles", None)
    if roles is None:
        roles = user._review_roles = _roles_of(user, user.groups.values_list("name", flat=True))
    return roles


class RoleLoadingBackend(ModelBackend):
    """Django's ModelBackend, except that loading the session's user (every request) reads
    the user's group names in the same query: the role check then costs no query."""

    def get_user(self, user_id):
        model = get_user_model()
        try:
            user = model._default_manager.annotate(
                role_names=ArrayAgg("groups__name", filter=Q(groups__isnull=False), default=[])
            ).get(pk=user_id)
        except model.DoesNotExist:
            return None
        if not self.user_can_authenticate(user):
            return None
        user._review_roles = _roles_of(user, user.role_names)
        return user


def user_is_curator(user) -> bool:
    return bool(user_roles(user) & {CURATOR, ADMIN})


def require_curator(user, message: str) -> None:
    """For services: a script or the API must not do a curator's write as a reviewer."""
    if not user_is_curator(user):
        raise PermissionDenied(message)


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
