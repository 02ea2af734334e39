import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from relabel_app.roles import ADMIN, CURATOR, REVIEWER, ensure_role_groups

# username, role group, may use the admin site (staff and superuser). Only the separate
# 'admin' account administers: the demo curator curates, like any curator, and cannot
# reach the admin site (where, for instance, a dataset's audio root is set).
DEMO_ACCOUNTS = (
    ("curator", CURATOR, False),
    ("reviewer", REVIEWER, False),
    ("admin", ADMIN, True),
)


class Command(BaseCommand):
    help = (
        "Create (or reset) the demo accounts 'curator', 'reviewer' and 'admin' (the only one "
        "allowed into the admin site) and print their passwords."
    )

    def handle(self, *args, **options):
        ensure_role_groups()
        User = get_user_model()
        for username, group, admin in DEMO_ACCOUNTS:
            password = secrets.token_urlsafe(9)
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = admin
            user.is_superuser = admin
            user.save()
            user.groups.set([Group.objects.get(name=group)])
            self.stdout.write(f"  demo {group}: username {username!r} password {password!r}")
