"""Brute force on the login page and the token endpoint (issue 12, break 4): 60 wrong
passwords, then the right one. django-axes locks the (account, address) pair, and an address
that sprays many usernames (issue 16: never an account for everyone); the lockout is
explained, and ends by itself after the cool-off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from freezegun import freeze_time
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

WRONG = 60


def login_page(username: str, password: str, *, ip: str = "10.0.0.1", client=None, **extra):
    c = client or Client()
    resp = c.post("/accounts/login/", {"username": username, "password": password},
                  REMOTE_ADDR=ip, **extra)
    return c, resp


def token(username: str, password: str, *, ip: str = "10.0.0.1", **extra):
    return APIClient().post("/api/auth/token/", {"username": username, "password": password},
                            format="json", REMOTE_ADDR=ip, **extra)


def logged_in(c: Client) -> bool:
    return "_auth_user_id" in c.session


def test_right_password_logs_in():
    UserFactory(username="una")
    c, resp = login_page("una", "pw")
    assert resp.status_code == 302 and logged_in(c)


def test_login_page_60_wrong_passwords_then_the_right_one_is_refused(settings):
    UserFactory(username="vic")
    statuses = [login_page("vic", f"guess-{i}")[1].status_code for i in range(WRONG)]
    limit = settings.AXES_FAILURE_LIMIT
    # Wrong-password answers (200, the form again) until the limit, then lockouts.
    assert statuses[: limit - 1] == [200] * (limit - 1)
    assert set(statuses[limit - 1:]) == {429}
    c, resp = login_page("vic", "pw")
    assert resp.status_code == 429 and not logged_in(c)
    page = resp.content.decode()
    assert "Logging in is blocked for now" in page
    assert "Too many failed logins for this account from this address" in page
    assert f"wait {int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)} minutes" in page
    assert "log in from another network" in page and "a new password lifts" in page
    assert int(resp["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())


def test_pair_lockout_does_not_lock_the_same_user_from_another_address():
    """Issue 16: failures from one address lock that address's tries at the account, not
    the account for everyone (else anyone could lock a colleague out)."""
    UserFactory(username="wes")
    for i in range(WRONG):
        login_page("wes", f"nope-{i}", ip="10.1.0.1")
    c, resp = login_page("wes", "pw", ip="10.1.0.1")
    assert resp.status_code == 429 and not logged_in(c)
    c, resp = login_page("wes", "pw", ip="10.9.9.9")
    assert resp.status_code == 302 and logged_in(c)


def test_lockout_is_per_address_across_accounts(settings):
    """Spraying one password over many usernames from one address locks the address after
    RELABEL_LOGIN_ADDRESS_LIMIT failures, even for a real account with its right password;
    other addresses still log in."""
    UserFactory(username="xia")
    limit = settings.RELABEL_LOGIN_ADDRESS_LIMIT
    assert limit == 50 and limit > settings.AXES_FAILURE_LIMIT
    for i in range(limit - 1):
        login_page(f"nobody{i}", "Password1", ip="10.2.0.1")
    c, resp = login_page("xia", "pw", ip="10.2.0.1")  # under the address limit: still works
    assert resp.status_code == 302 and logged_in(c)
    for i in range(limit - 1, WRONG):
        login_page(f"nobody{i}", "Password1", ip="10.2.0.1")
    c, resp = login_page("xia", "pw", ip="10.2.0.1")
    assert resp.status_code == 429 and not logged_in(c)
    c, resp = login_page("xia", "pw", ip="10.2.0.2")
    assert resp.status_code == 302 and logged_in(c)


def test_forwarded_for_header_does_not_dodge_the_address_lockout():
    """Without a trusted proxy, X-Forwarded-For is the client's own claim: ignored."""
    UserFactory(username="yan")
    for i in range(WRONG):
        login_page(f"nobody{i}", "x", ip="10.3.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{i + 1}")
    c, resp = login_page("yan", "pw", ip="10.3.0.1", HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert resp.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(settings):
    settings.TRUSTED_PROXY = True
    UserFactory(username="zoe")
    for i in range(WRONG):
        login_page(f"nobody{i}", "x", ip="10.4.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    # The attacker's address is locked; another client behind the same proxy is not.
    _, resp = login_page("zoe", "pw", ip="10.4.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert resp.status_code == 429
    c, resp = login_page("zoe", "pw", ip="10.4.0.1", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert resp.status_code == 302 and logged_in(c)


def test_token_endpoint_60_wrong_passwords_then_the_right_one_is_refused(settings):
    UserFactory(username="abe")
    statuses = [token("abe", f"guess-{i}").status_code for i in range(WRONG)]
    limit = settings.AXES_FAILURE_LIMIT
    assert statuses[: limit - 1] == [400] * (limit - 1)
    assert set(statuses[limit - 1:]) == {429}
    resp = token("abe", "pw")
    assert resp.status_code == 429
    assert "token" not in resp.json()
    assert "Too many failed logins" in resp.json()["detail"]
    assert int(resp["Retry-After"]) > 0


def test_login_page_and_token_endpoint_share_the_count(settings):
    UserFactory(username="bea")
    for i in range(settings.AXES_FAILURE_LIMIT // 2):
        login_page("bea", f"g{i}", ip="10.5.0.1")
        token("bea", f"h{i}", ip="10.5.0.1")
    assert token("bea", "pw", ip="10.5.0.1").status_code == 429
    assert login_page("bea", "pw", ip="10.5.0.1")[1].status_code == 429


def test_lockout_ends_by_itself_after_the_cooloff(settings):
    """The real cool-off (settings.AXES_COOLOFF_TIME), on a frozen clock moved past it."""
    UserFactory(username="cid")
    with freeze_time() as clock:
        for i in range(WRONG):
            login_page("cid", f"guess-{i}")
            token("cid", f"guess-{i}")
        assert login_page("cid", "pw")[1].status_code == 429
        assert token("cid", "pw").status_code == 429
        clock.tick(settings.AXES_COOLOFF_TIME + timedelta(seconds=1))
        c, resp = login_page("cid", "pw")
        assert resp.status_code == 302 and logged_in(c)
        resp = token("cid", "pw")
        assert resp.status_code == 200 and resp.json()["token"]


def test_logging_in_to_ones_own_account_does_not_reset_the_count():
    """The attack: an insider guesses a colleague's password from their desk, and logs in to
    their own account between rounds of guesses to clear the address's failures (with
    reset-on-success, django-axes deletes every attempt of that address)."""
    UserFactory(username="dee")
    UserFactory(username="eli")  # the attacker's own account
    for round_ in range(WRONG // 6):
        for i in range(5):
            login_page("dee", f"r{round_}-guess-{i}", ip="10.8.0.1")
        login_page("eli", "pw", ip="10.8.0.1")
    c, resp = login_page("dee", "pw", ip="10.8.0.1")
    assert resp.status_code == 429 and not logged_in(c)
    c, resp = login_page("dee", "pw", ip="10.8.0.2")  # dee's own desk: not locked
    assert resp.status_code == 302 and logged_in(c)


def test_admin_login_page_is_locked_out_too():
    UserFactory(username="fay", role="admin", is_staff=True, is_superuser=True)
    for i in range(WRONG):
        Client().post("/admin/login/", {"username": "fay", "password": f"g{i}"},
                      REMOTE_ADDR="10.10.0.1")
    c = Client()
    resp = c.post("/admin/login/", {"username": "fay", "password": "pw"}, REMOTE_ADDR="10.10.0.1")
    assert resp.status_code == 429 and not logged_in(c)
    assert "Logging in is blocked for now" in resp.content.decode()
