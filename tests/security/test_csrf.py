"""CSRF: every unsafe request (POST, PUT, PATCH, DELETE) to every URL of the project, as a
logged-in user with a session cookie and no CSRF token, is refused with 403 and writes
nothing: plain form posts, htmx requests (HX-Request) and the API under session auth. The
same requests with a token get through (so the 403 was the CSRF check, not the role), and
the API with token auth (``Authorization: Token``) needs no CSRF token at all."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.test import Client

from curation.models import Adjudication, ExportJob
from review.models import Decision

from .conftest import ROLES
from .test_access_matrix import _requests
from .url_patterns import all_patterns

pytestmark = pytest.mark.django_db

UNSAFE = ("post", "put", "patch", "delete")
WATCHED_APPS = ("relabel_app", "pipeline", "review", "curation", "auth", "knox", "axes",
                "sessions", "admin")


def fingerprint() -> dict:
    """Every row of every table the app (and auth, sessions, the admin log) writes."""
    out = {}
    for app in WATCHED_APPS:
        for model in apps.get_app_config(app).get_models():
            out[model._meta.label] = list(model._default_manager.order_by("pk").values_list())
    return out


def _diff(before: dict, after: dict) -> list[str]:
    return [k for k in before if before[k] != after[k]]


def _example_url(p, world) -> str:
    """A URL of the pattern with real ids (kwargs as the access matrix fills them)."""
    from django.urls import reverse

    from .test_access_matrix import MATRIX, _admin_url, _fill

    if p.namespace == "admin":
        return _admin_url(p, world)
    kwargs = MATRIX[p.key][0][1]
    return reverse(p.name, kwargs=_fill(kwargs, world.ids()))


def _csrf_client(user) -> tuple[Client, str]:
    """A client that enforces CSRF, logged in, and the token the login page handed out."""
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    c.get("/accounts/login/")
    return c, c.cookies["csrftoken"].value


@pytest.mark.parametrize("role", ["reviewer", "curator"])
def test_every_unsafe_request_without_a_token_is_refused_and_writes_nothing(world, role):
    c = Client(enforce_csrf_checks=True)
    c.force_login(world.users[role])
    failures = []
    before = fingerprint()
    for p in all_patterns():
        url = _example_url(p, world)
        for method in UNSAFE:
            for htmx in (False, True):
                headers = {"HX-Request": "true"} if htmx else {}
                resp = getattr(c, method)(url, data={"verdict": "accept"} if method == "post"
                                          else None, headers=headers)
                if resp.status_code != 403:
                    failures.append(f"{method.upper()} {url} [{p.key}] htmx={htmx}: "
                                    f"{resp.status_code}")
                elif p.key.startswith("api:") and "html" not in resp["Content-Type"]:
                    assert b"CSRF Failed" in resp.content, url
        if p.namespace != "admin":  # admin URLs: checked once at the end (many, all alike)
            changed = _diff(before, fingerprint())
            if changed:
                failures.append(f"{url} [{p.key}] wrote to {changed}")
                before = fingerprint()
    changed = _diff(before, fingerprint())
    assert not changed, f"admin URLs wrote to {changed}"
    assert not failures, "\n".join(failures)


def test_unsafe_requests_with_a_token_get_through(world):
    """The access matrix's unsafe rows, as the curator, with a CSRF token: the statuses of
    the matrix (the role allows them), so the refusals above were the CSRF check."""
    c, token = _csrf_client(world.users["curator"])
    want_col = ROLES.index("curator")
    failures = []
    for key, method, url, body, expected in _requests(world):
        if method not in UNSAFE or key == "logout":
            continue
        kwargs = {"headers": {"X-CSRFToken": token}}
        if key.startswith("api:") and body is not None:
            kwargs.update(data=body, content_type="application/json")
        elif body is not None:
            kwargs["data"] = body
        resp = getattr(c, method)(url, **kwargs)
        if resp.status_code != expected[want_col]:
            failures.append(f"{method.upper()} {url} [{key}]: {resp.status_code}, "
                            f"expected {expected[want_col]}")
    assert not failures, "\n".join(failures)


def test_htmx_decision_with_the_token_in_the_header_is_accepted(world):
    """What the review page's htmx does: X-CSRFToken header, HX-Request, a partial back."""
    c, token = _csrf_client(world.users["reviewer"])
    clip, music = world.clips[0], world.ids()["label_music"]
    url = f"/clips/{clip.pk}/labels/{music}/decide/"
    resp = c.post(url, {"verdict": "reject"}, headers={"HX-Request": "true"})
    assert resp.status_code == 403
    assert not Decision.objects.filter(clip=clip, label_id=music).exists()
    resp = c.post(url, {"verdict": "reject"},
                  headers={"HX-Request": "true", "X-CSRFToken": token})
    assert resp.status_code == 200 and f'id="label-{music}"' in resp.content.decode()
    assert Decision.objects.get(clip=clip, label_id=music).verdict == "reject"


def test_api_token_auth_is_exempt_and_session_auth_is_not(world):
    from rest_framework.test import APIClient

    ids = world.ids()
    writes = [
        ("post", "/api/decisions/", {"clip": ids["clip1"], "mid": "/m/04rlf",
                                     "verdict": "reject"}, 201),
        ("post", "/api/adjudications/", {"clip": ids["clip1"], "mid": "/m/03kmc9",
                                         "verdict": "accept"}, 201),
        ("post", "/api/exports/", {"dataset": ids["dataset"], "format": "csv"}, 202),
        ("post", "/api/runs/", {"dataset": ids["dataset"], "profile": "tiny"}, 200),
        ("delete", f"/api/adjudications/{ids['adjudication']}/", None, 204),
    ]
    session = APIClient(enforce_csrf_checks=True)
    session.force_login(world.users["curator"])
    before = fingerprint()
    for method, url, body, _ in writes:
        resp = getattr(session, method)(url, body, format="json")
        assert resp.status_code == 403, (url, resp.status_code)
        assert "CSRF" in resp.json()["detail"]
    assert not _diff(before, fingerprint())

    token = APIClient(enforce_csrf_checks=True)
    token.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens['curator']}")
    for method, url, body, status in writes:
        resp = getattr(token, method)(url, body, format="json")
        assert resp.status_code == status, (url, resp.status_code, resp.content[:300])
    assert Decision.objects.filter(clip=world.clips[1], label__mid="/m/04rlf").exists()
    assert Adjudication.objects.filter(clip=world.clips[1], label__mid="/m/03kmc9").exists()
    assert not Adjudication.objects.filter(pk=ids["adjudication"]).exists()
    assert ExportJob.objects.count() == 2
