"""Roles are Django groups. The names are an interface: users' scripts rely on them."""

from django.contrib.auth.models import Group

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
