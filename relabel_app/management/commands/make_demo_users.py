import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from relabel_app.roles import ensure_role_groups


class Command(BaseCommand):
    help = "Create (or reset) the demo accounts 'curator' and 'reviewer' and print their passwords."

    def handle(self, *args, **options):
        ensure_role_groups()
        User = get_user_model()
        for username, group, staff in (("curator", "curator", True), ("reviewer", "reviewer", False)):
            password = secrets.token_urlsafe(9)
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = staff
            user.is_superuser = staff  # the demo curator may browse the whole admin
            user.save()
            user.groups.set([Group.objects.get(name=group)])
            self.stdout.write(f"  demo {group}: username {username!r} password {password!r}")
