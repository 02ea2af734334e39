"""Issue 16, breaks 2 and 3, as the attacks themselves, against the real django-axes backend:
a malformed X-Forwarded-For behind the proxy broke every login (500); any web page could
lock a visitor's (NAT) address out with ten cross-site token posts; a locked-out user's
retries were counted (and extended the lockout, and locked their new address); a new
password did not lift a lockout; nobody but /admin/axes/ could lift one."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Sum
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from relabel_app import logins
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-much-longer-Passphrase-42"


def login_page(username, password, *, ip="10.0.0.1", client=None, **extra):
    c = client or Client()
    resp = c.post("/accounts/login/", {"username": username, "password": password},
                  REMOTE_ADDR=ip, **extra)
    return c, resp


def token_json(username, password, *, ip="10.0.0.1", **extra):
    return APIClient().post("/api/auth/token/", {"username": username, "password": password},
                            format="json", REMOTE_ADDR=ip, **extra)


def logged_in(c: Client) -> bool:
    return "_auth_user_id" in c.session


def failures(**where) -> int:
    return AccessAttempt.objects.filter(**where).aggregate(n=Sum("failures_since_start"))["n"] or 0


def lock_pair(username: str, ip: str, settings) -> None:
    for i in range(settings.AXES_FAILURE_LIMIT):
        login_page(username, f"guess-{i}", ip=ip)
    assert login_page(username, "pw", ip=ip)[1].status_code == 429


# --- break 2: forwarded addresses -----------------------------------------------------

MALFORMED_LAST_HOPS = ["1.2.3.4:5678", "[::1]:80", "999.1.1.1", "garbage"]


@pytest.mark.parametrize("last_hop", MALFORMED_LAST_HOPS)
def test_malformed_forwarded_for_does_not_break_logins(settings, last_hop):
    """The exact inputs of the issue, right and wrong password, on all three login doors."""
    settings.TRUSTED_PROXY = True
    UserFactory(username="fwd", role="admin", is_staff=True, is_superuser=True)
    xff = {"HTTP_X_FORWARDED_FOR": f"203.0.113.9, {last_hop}"}
    _, resp = login_page("fwd", "wrong", ip="10.20.0.1", **xff)
    assert resp.status_code == 200 and "didn't match" in resp.content.decode()
    c, resp = login_page("fwd", "pw", ip="10.20.0.1", **xff)
    assert resp.status_code == 302 and logged_in(c)
    resp = token_json("fwd", "wrong", ip="10.20.0.1", **xff)
    assert resp.status_code == 400
    resp = token_json("fwd", "pw", ip="10.20.0.1", **xff)
    assert resp.status_code == 200 and resp.json()["token"]
    resp = Client().post("/admin/login/", {"username": "fwd", "password": "wrong"},
                         REMOTE_ADDR="10.20.0.1", **xff)
    assert resp.status_code == 200
    c = Client()
    resp = c.post("/admin/login/", {"username": "fwd", "password": "pw"},
                  REMOTE_ADDR="10.20.0.1", **xff)
    assert resp.status_code == 302 and logged_in(c)


def test_forwarded_address_with_a_port_counts_as_the_address(settings):
    """`X-Forwarded-For: 1.2.3.4:5678` logs in, and its failures count for 1.2.3.4 (not for
    the proxy's REMOTE_ADDR, which would lock every client behind it)."""
    settings.TRUSTED_PROXY = True
    UserFactory(username="port")
    login_page("port", "wrong", ip="10.21.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4:5678")
    login_page("port", "wrong", ip="10.21.0.1", HTTP_X_FORWARDED_FOR="[2001:db8::7]:443")
    assert failures(ip_address="1.2.3.4") == 1
    assert failures(ip_address="2001:db8::7") == 1
    assert failures(ip_address="10.21.0.1") == 0
    c, resp = login_page("port", "pw", ip="10.21.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4:5678")
    assert resp.status_code == 302 and logged_in(c)


def test_an_unreadable_forwarded_address_falls_back_to_remote_addr_logged_once(
        settings, caplog, monkeypatch):
    settings.TRUSTED_PROXY = True
    monkeypatch.setattr(logins, "_logged_bad_forwarded", False)
    UserFactory(username="garb")
    with caplog.at_level(logging.WARNING, logger="relabel_app.logins"):
        for _ in range(3):
            login_page("garb", "wrong", ip="10.22.0.1", HTTP_X_FORWARDED_FOR="garbage")
    assert failures(ip_address="10.22.0.1") == 3
    warned = [r for r in caplog.records if r.name == "relabel_app.logins"]
    assert len(warned) == 1 and "'garbage'" in warned[0].getMessage()


@pytest.mark.parametrize(("header", "hops", "expected"), [
    ("198.51.100.7", 1, "198.51.100.7"),
    ("6.6.6.6, 198.51.100.7", 1, "198.51.100.7"),  # the client's own claim is ignored
    ("6.6.6.6, 198.51.100.7, 10.0.0.2", 2, "198.51.100.7"),  # two proxies
    ("198.51.100.7", 2, "10.30.0.1"),  # fewer entries than proxies: REMOTE_ADDR
    ("1.2.3.4:5678", 1, "1.2.3.4"),
    ("[::1]:80", 1, "::1"),
    ("2001:db8::1", 1, "2001:db8::1"),
    ("999.1.1.1", 1, "10.30.0.1"),
    ("garbage", 1, "10.30.0.1"),
    ("[::1", 1, "10.30.0.1"),
    ("", 1, "10.30.0.1"),
])
def test_client_ip(settings, rf, header, hops, expected):
    settings.TRUSTED_PROXY = True
    settings.TRUSTED_PROXY_HOPS = hops
    request = rf.get("/", REMOTE_ADDR="10.30.0.1", HTTP_X_FORWARDED_FOR=header)
    assert logins.client_ip(request) == expected


def test_without_a_trusted_proxy_the_header_is_ignored(settings, rf):
    settings.TRUSTED_PROXY = False
    request = rf.get("/", REMOTE_ADDR="10.30.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert logins.client_ip(request) == "10.30.0.1"


# --- break 3: logins turned against users -----------------------------------------------

def test_ten_cross_site_posts_lock_nothing(settings):
    """The attack: a page the victim visits posts cookie-less forms to the token endpoint
    (`username=nobodyN`) ten times. Nothing is counted; the victim, and a curator at the
    same (NAT) address, log in."""
    UserFactory(username="victim")
    UserFactory(username="cur", role="curator")
    settings.AXES_FAILURE_LIMIT = 10
    settings.RELABEL_LOGIN_ADDRESS_LIMIT = 10  # even with the address limit that low
    for i in range(10):
        resp = Client().post("/api/auth/token/", {"username": f"nobody{i}", "password": "x"},
                             REMOTE_ADDR="10.40.0.1", HTTP_ORIGIN="https://evil.example")
        assert resp.status_code == 403, resp.content
        assert resp["Content-Type"].startswith("application/json")
    # Without an Origin (an older browser), a form body is refused as such.
    for i in range(10):
        resp = Client().post("/api/auth/token/", {"username": f"nobody{i}", "password": "x"},
                             REMOTE_ADDR="10.40.0.1")
        assert resp.status_code == 415, resp.content
    # JSON from the foreign page is refused by its Origin (a real browser would also need a
    # preflight first).
    resp = Client().post("/api/auth/token/", json.dumps({"username": "nobody", "password": "x"}),
                         content_type="application/json", REMOTE_ADDR="10.40.0.1",
                         HTTP_ORIGIN="https://evil.example")
    assert resp.status_code == 403
    assert AccessAttempt.objects.count() == 0
    for name in ("victim", "cur"):
        c, resp = login_page(name, "pw", ip="10.40.0.1")
        assert resp.status_code == 302 and logged_in(c)


def test_token_endpoint_accepts_the_sites_own_origins(settings):
    UserFactory(username="own")
    settings.CSRF_TRUSTED_ORIGINS = ["https://relabel.example.org"]
    resp = token_json("own", "pw", HTTP_ORIGIN="http://testserver")
    assert resp.status_code == 200 and resp.json()["token"]
    resp = token_json("own", "pw", HTTP_ORIGIN="https://relabel.example.org")
    assert resp.status_code == 200
    resp = token_json("own", "pw", HTTP_ORIGIN="null")
    assert resp.status_code == 403
    assert "another site" in resp.json()["detail"]


def test_refused_tries_during_a_lockout_are_not_counted_and_do_not_extend_it(settings):
    UserFactory(username="ret")
    lock_pair("ret", "10.41.0.1", settings)
    before = list(AccessAttempt.objects.values_list("failures_since_start", "attempt_time"))
    for password in ("pw", "pw", "wrong", "pw"):
        _, resp = login_page("ret", password, ip="10.41.0.1")
        assert resp.status_code == 429
        assert token_json("ret", password, ip="10.41.0.1").status_code == 429
    after = list(AccessAttempt.objects.values_list("failures_since_start", "attempt_time"))
    assert after == before  # same count, same last failure: the lockout ends when it did


def test_right_password_from_a_new_address_after_a_lockout_elsewhere_is_not_counted(settings):
    """The victim is locked out at the office (someone guessed there); from home, with the
    right password, they log in, and nothing is counted for the home address (before: a
    failure per try, locking the curator at home too)."""
    UserFactory(username="vic2")
    UserFactory(username="cur2", role="curator")
    lock_pair("vic2", "10.42.0.1", settings)
    for _ in range(3):
        c, resp = login_page("vic2", "pw", ip="10.42.0.2")
        assert resp.status_code == 302 and logged_in(c)
        assert token_json("vic2", "pw", ip="10.42.0.2").status_code == 200
    assert failures(ip_address="10.42.0.2") == 0
    c, resp = login_page("cur2", "pw", ip="10.42.0.2")
    assert resp.status_code == 302 and logged_in(c)


def test_password_change_page_clears_a_lockout(settings):
    """The user, still logged in on another device, sets a new password on the page the
    navigation links to; the lockout at the office is lifted."""
    user = UserFactory(username="chg")
    lock_pair("chg", "10.43.0.1", settings)
    c = Client()
    c.force_login(user)
    page = c.get("/").content.decode()
    assert 'href="/accounts/password/"' in page
    resp = c.post("/accounts/password/", {
        "old_password": "pw", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD,
    })
    assert resp.status_code == 302 and resp["Location"] == "/accounts/password/done/"
    assert failures(username="chg") == 0
    c, resp = login_page("chg", NEW_PASSWORD, ip="10.43.0.1")
    assert resp.status_code == 302 and logged_in(c)


def test_password_change_by_an_admin_clears_a_lockout(settings):
    UserFactory(username="adm", role="admin", is_staff=True, is_superuser=True)
    user = UserFactory(username="chg2")
    lock_pair("chg2", "10.44.0.1", settings)
    admin = Client()
    admin.force_login(get_user_model().objects.get(username="adm"))
    resp = admin.post(f"/admin/auth/user/{user.pk}/password/", {
        "password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true",
    })
    assert resp.status_code == 302, resp.content[:500]
    assert failures(username="chg2") == 0
    assert login_page("chg2", NEW_PASSWORD, ip="10.44.0.1")[1].status_code == 302


def test_changepassword_command_clears_a_lockout(settings, monkeypatch):
    from django.contrib.auth.management.commands import changepassword

    UserFactory(username="chg3")
    lock_pair("chg3", "10.45.0.1", settings)
    # The command reads the password twice from the terminal.
    monkeypatch.setattr(changepassword.Command, "_get_pass", lambda self, prompt=None: NEW_PASSWORD)
    call_command("changepassword", "chg3")
    assert failures(username="chg3") == 0
    assert login_page("chg3", NEW_PASSWORD, ip="10.45.0.1")[1].status_code == 302


def test_lockout_page_says_what_helps(settings):
    UserFactory(username="msg")
    lock_pair("msg", "10.46.0.1", settings)
    page = login_page("msg", "pw", ip="10.46.0.1")[1].content.decode()
    assert "blocked only from this address" in page
    assert "log in from another network" in page
    assert "Lockouts" in page and "a new password lifts the block too" in page


# --- lockouts in the app ------------------------------------------------------------------

def _page(user) -> tuple[Client, str]:
    c = Client()
    c.force_login(user)
    resp = c.get("/accounts/lockouts/")
    assert resp.status_code == 200
    return c, resp.content.decode()


def test_admins_see_and_lift_every_lockout(settings):
    admin = UserFactory(username="boss", role="admin")
    UserFactory(username="rev")
    lock_pair("rev", "10.50.0.1", settings)
    for i in range(settings.RELABEL_LOGIN_ADDRESS_LIMIT):
        login_page(f"spray{i}", "x", ip="10.50.0.9")
    c, page = _page(admin)
    assert "rev" in page and "10.50.0.1" in page
    assert "every username" in page and "10.50.0.9" in page
    assert 'href="/accounts/lockouts/"' in page  # in the navigation
    resp = c.post("/accounts/lockouts/", {"ip_address": "10.50.0.1", "username": "rev"})
    assert resp.status_code == 302
    assert login_page("rev", "pw", ip="10.50.0.1")[1].status_code == 302
    resp = c.post("/accounts/lockouts/", {"ip_address": "10.50.0.9"}, follow=True)
    assert "Lockout lifted: every username from 10.50.0.9" in resp.content.decode()
    assert failures(ip_address="10.50.0.9") == 0


def test_curators_lift_reviewers_lockouts_only(settings):
    cur = UserFactory(username="cora", role="curator")
    UserFactory(username="rev3")
    UserFactory(username="cur3", role="curator")
    lock_pair("rev3", "10.51.0.1", settings)
    lock_pair("cur3", "10.51.0.2", settings)
    for i in range(settings.RELABEL_LOGIN_ADDRESS_LIMIT):
        login_page(f"spray{i}", "x", ip="10.51.0.9")
    c, page = _page(cur)
    assert "rev3" in page and "10.51.0.1" in page
    assert "cur3" not in page and "10.51.0.9" not in page
    assert c.post("/accounts/lockouts/", {"ip_address": "10.51.0.2", "username": "cur3"}
                  ).status_code == 302
    assert login_page("cur3", "pw", ip="10.51.0.2")[1].status_code == 429  # not lifted
    assert c.post("/accounts/lockouts/", {"ip_address": "10.51.0.1", "username": "rev3"}
                  ).status_code == 302
    assert login_page("rev3", "pw", ip="10.51.0.1")[1].status_code == 302


def test_reviewers_cannot_see_lockouts():
    c = Client()
    c.force_login(UserFactory(username="plain"))
    assert c.get("/accounts/lockouts/").status_code == 403


def test_expired_lockouts_are_not_listed(settings):
    admin = UserFactory(username="boss2", role="admin")
    AccessAttempt.objects.create(
        username="old", ip_address="10.52.0.1", user_agent="x", get_data="", post_data="",
        http_accept="", path_info="/", failures_since_start=settings.AXES_FAILURE_LIMIT,
    )
    # attempt_time is auto_now_add: age the row afterwards.
    AccessAttempt.objects.filter(username="old").update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    _, page = _page(admin)
    assert "10.52.0.1" not in page and "No lockouts in force" in page


# --- tokens per user ------------------------------------------------------------------------

def test_tokens_per_user_are_capped_oldest_revoked(settings):
    settings.RELABEL_API_TOKENS_PER_USER = 10
    user = UserFactory(username="many")
    keys = [token_json("many", "pw").json()["token"] for _ in range(12)]
    assert AuthToken.objects.filter(user=user).count() == 10
    works = [APIClient(HTTP_AUTHORIZATION=f"Token {k}").get("/api/auth/tokens/").status_code
             for k in keys]
    assert works == [401, 401] + [200] * 10
