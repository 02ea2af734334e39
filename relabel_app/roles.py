"""Roles are Django groups. The names are an interface: users' scripts rely on them."""

from django.contrib.auth.models import Group

REVIEWER = "reviewer"
CURATOR = "curator"
ADMIN = "admin"
ROLE_GROUPS = (REVIEWER, CURATOR, ADMIN)


def ensure_role_groups() -> None:
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)


def user_is_curator(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=(CURATOR, ADMIN)).exists()
