"""make_demo_users (issue 12, break 7): the demo curator was a superuser, so in the demo
every curator could set a dataset's audio root to "/" in the admin. Now the curator is a
curator only; a separate 'admin' account has the admin site."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def make_demo_users() -> dict[str, str]:
    out = StringIO()
    call_command("make_demo_users", stdout=out)
    return dict(re.findall(r"username '(\w+)' password '([^']+)'", out.getvalue()))


def test_demo_accounts_and_their_roles():
    passwords = make_demo_users()
    assert set(passwords) == {"curator", "reviewer", "admin"}
    users = {u.username: u for u in get_user_model().objects.filter(username__in=passwords)}
    roles = {name: sorted(u.groups.values_list("name", flat=True)) for name, u in users.items()}
    assert roles == {"curator": ["curator"], "reviewer": ["reviewer"], "admin": ["admin"]}
    flags = {name: (u.is_staff, u.is_superuser) for name, u in users.items()}
    assert flags == {"curator": (False, False), "reviewer": (False, False),
                     "admin": (True, True)}


def test_demo_curator_cannot_reach_the_admin_site_the_admin_can():
    passwords = make_demo_users()
    curator = Client()
    assert curator.login(username="curator", password=passwords["curator"])
    # The attack: open the dataset admin (where audio_root is set).
    resp = curator.get("/admin/relabel_app/dataset/")
    assert resp.status_code == 302 and "/admin/login/" in resp["Location"]
    assert curator.get("/curation/").status_code == 200  # still a curator
    admin = Client()
    assert admin.login(username="admin", password=passwords["admin"])
    assert admin.get("/admin/relabel_app/dataset/").status_code == 200


def test_rerunning_resets_passwords_and_demotes_an_old_superuser_curator():
    User = get_user_model()
    User.objects.create_user("curator", password="old", is_staff=True, is_superuser=True)
    passwords = make_demo_users()
    curator = User.objects.get(username="curator")
    assert (curator.is_staff, curator.is_superuser) == (False, False)
    assert curator.check_password(passwords["curator"]) and not curator.check_password("old")
