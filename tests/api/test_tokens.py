"""API tokens (issue 12, break 5): hashed at rest, expiring, revoked by DELETE on the token
endpoint, by logging out, by a password change; users list and revoke their own tokens.
Each test is the attack: a token that should be dead is sent again and must get 401."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def get_token(username: str, password: str = "pw") -> dict:
    resp = APIClient().post("/api/auth/token/", {"username": username, "password": password},
                           format="json")
    assert resp.status_code == 200, resp.content
    return resp.json()


def api(key: str) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return c


def works(key: str) -> bool:
    status = api(key).get("/api/datasets/").status_code
    assert status in (200, 401), status
    return status == 200


def test_token_is_stored_hashed_and_carries_an_expiry(settings):
    user = UserFactory(username="hana")
    before = timezone.now()
    body = get_token("hana")
    key = body["token"]
    assert works(key)
    row = AuthToken.objects.get(user=user)
    # Only the SHA-512 digest is stored; the key itself is nowhere in the row.
    assert row.digest == hash_token(key) and len(row.digest) == 128
    assert key not in (row.digest, row.token_key)
    ttl = settings.REST_KNOX["TOKEN_TTL"]
    assert before + ttl <= row.expiry <= timezone.now() + ttl
    assert body["expiry"] is not None


def test_expired_token_is_refused(settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(hours=1)}
    UserFactory(username="ivo")
    key = get_token("ivo")["token"]
    row = AuthToken.objects.get(digest=hash_token(key))
    assert row.expiry - row.created < timedelta(hours=1, seconds=5)  # the setting is used
    assert works(key)
    AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert not works(key)
    assert not AuthToken.objects.filter(pk=row.pk).exists()  # and deleted on sight


def test_delete_on_token_endpoint_revokes_that_token_only():
    UserFactory(username="jan")
    key1, key2 = get_token("jan")["token"], get_token("jan")["token"]
    resp = api(key1).delete("/api/auth/token/")
    assert resp.status_code == 204  # was 405
    assert not works(key1)
    assert works(key2)
    assert api(key1).delete("/api/auth/token/").status_code == 401


def test_delete_on_token_endpoint_without_a_token_is_refused():
    user = UserFactory(username="kai")
    key = get_token("kai")["token"]
    c = APIClient()
    c.force_authenticate(user)
    resp = c.delete("/api/auth/token/")
    assert resp.status_code == 400 and "Authorization: Token" in resp.json()["detail"]
    assert works(key)
    assert APIClient().delete("/api/auth/token/").status_code == 401


def test_logging_out_of_the_site_revokes_the_users_tokens(client):
    UserFactory(username="lea")
    other = UserFactory(username="max")
    key = get_token("lea")["token"]
    other_key = get_token("max")["token"]
    assert client.login(username="lea", password="pw")
    resp = client.post("/accounts/logout/")
    assert resp.status_code == 302
    assert not works(key)
    assert works(other_key)  # someone else's token lives on
    assert other.auth_token_set.count() == 1


def test_password_change_revokes_the_users_tokens():
    user = UserFactory(username="nia")
    key = get_token("nia")["token"]
    user.set_password("a-new-Passw0rd-9")  # as the admin, changepassword or a form does
    user.save()
    assert not works(key)
    assert works(get_token("nia", "a-new-Passw0rd-9")["token"])


def test_password_change_through_the_admin_form_revokes_tokens(client):
    user = UserFactory(username="ola", role="curator")
    user.is_staff = True
    user.save()
    key = get_token("ola")["token"]
    assert works(key)
    assert client.login(username="ola", password="pw")
    resp = client.post("/admin/password_change/", {
        "old_password": "pw", "new_password1": "a-new-Passw0rd-9",
        "new_password2": "a-new-Passw0rd-9",
    })
    assert resp.status_code == 302, resp.content[:500]
    assert not works(key)


def test_saving_a_user_without_a_new_password_keeps_tokens():
    user = UserFactory(username="pia")
    key = get_token("pia")["token"]
    user.first_name = "Pia"
    user.save()
    user.refresh_from_db()
    assert works(key)


def test_user_lists_and_revokes_own_tokens_not_others():
    UserFactory(username="quinn")
    UserFactory(username="ray")
    k1, k2 = get_token("quinn")["token"], get_token("quinn")["token"]
    ray_key = get_token("ray")["token"]
    listed = api(k1).get("/api/auth/tokens/").json()
    assert sorted(t["prefix"] for t in listed) == sorted([k1[:8], k2[:8]])
    assert [t["current"] for t in listed if t["prefix"] == k1[:8]] == [True]
    assert all(k1 not in str(t) and k2 not in str(t) for t in listed)  # keys never shown
    # Quinn tries to revoke Ray's token by its id: not found, and it keeps working.
    ray_id = hash_token(ray_key)
    assert api(k1).delete(f"/api/auth/tokens/{ray_id}/").status_code == 404
    assert works(ray_key)
    other_id = next(t["id"] for t in listed if not t["current"])
    assert api(k1).delete(f"/api/auth/tokens/{other_id}/").status_code == 204
    assert not works(k2)
    assert works(k1)
    assert APIClient().get("/api/auth/tokens/").status_code == 401


def test_tokens_page_lists_and_revokes(client):
    UserFactory(username="sol")
    k1, k2 = get_token("sol")["token"], get_token("sol")["token"]
    assert client.login(username="sol", password="pw")
    home = client.get("/").content.decode()
    assert 'href="/accounts/tokens/"' in home  # linked from the navigation
    page = client.get("/accounts/tokens/").content.decode()
    assert k1[:8] in page and k2[:8] in page and k1 not in page
    resp = client.post("/accounts/tokens/", {"token": hash_token(k1)}, follow=True)
    assert "Token revoked." in resp.content.decode()
    assert not works(k1) and works(k2)
    resp = client.post("/accounts/tokens/", {"revoke_all": "1"}, follow=True)
    assert "Revoked 1 API token." in resp.content.decode()
    assert not works(k2)
    assert "You have no live API tokens." in client.get("/accounts/tokens/").content.decode()


def test_tokens_page_needs_login(client):
    resp = client.get("/accounts/tokens/")
    assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/")


def test_existing_plain_tokens_are_moved_to_hashed_ones(django_user_model):
    """The migration: a key issued by the old (clear-text) token table keeps working, and
    the clear-text copy is gone."""
    import importlib

    from django.apps import apps
    from django.db import connection

    user = UserFactory(username="tim")
    old_key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS authtoken_token (key varchar(40) PRIMARY KEY, "
                    "created timestamptz NOT NULL, user_id integer NOT NULL)")
        cur.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [old_key, user.pk])
    migration = importlib.import_module("api.migrations.0001_knox_tokens")

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection
    migration.move_tokens(apps, editor)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM authtoken_token")
        assert cur.fetchone()[0] == 0
    assert works(old_key)
    assert AuthToken.objects.get(user=user).digest == hash_token(old_key)


def test_asking_for_a_token_with_a_stale_token_in_the_header_works():
    UserFactory(username="uma")
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION="Token expired-or-revoked-key")
    resp = c.post("/api/auth/token/", {"username": "uma", "password": "pw"}, format="json")
    assert resp.status_code == 200 and works(resp.json()["token"])
