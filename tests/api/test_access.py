"""Who may call what: the role matrix of the API, and the two ways to authenticate."""

from __future__ import annotations

import pytest
from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from review.models import Decision

from .conftest import client_for, label

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "norole", "reviewer", "curator", "admin")

# method, path (formatted with the world's ids), body,
#   expected status for: anonymous, no role, reviewer, curator, admin
MATRIX = [
    ("get", "/api/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/datasets/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/datasets/{dataset}/", None, (401, 403, 200, 200, 200)),
    ("post", "/api/datasets/", {"name": "x"}, (401, 403, 405, 405, 405)),
    ("get", "/api/clips/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/clips/?dataset=apids&decided=false", None, (401, 403, 200, 200, 200)),
    ("get", "/api/clips/{clip}/", None, (401, 403, 200, 200, 200)),
    ("delete", "/api/clips/{clip}/", None, (401, 403, 405, 405, 405)),
    ("get", "/api/labels/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/labels/?q=dog", None, (401, 403, 200, 200, 200)),
    ("get", "/api/labels/{label}/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/runs/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/runs/{run}/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/runs/{run}/progress/", None, (401, 403, 200, 200, 200)),
    # Continues the world's tiny run (200); reviewers may not start runs.
    ("post", "/api/runs/", {"dataset": "{dataset}", "profile": "tiny"},
     (401, 403, 403, 200, 200)),
    ("get", "/api/candidates/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/candidates/?run={run}&kept=true", None, (401, 403, 200, 200, 200)),
    ("get", "/api/candidates/{candidate}/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/decisions/", None, (401, 403, 200, 200, 200)),
    # Rita's own decision; Rob's is invisible to her (404), visible to curators.
    ("get", "/api/decisions/{d_rita}/", None, (401, 403, 200, 200, 200)),
    ("get", "/api/decisions/{d_rob}/", None, (401, 403, 404, 200, 200)),
    ("post", "/api/decisions/", {"clip": "{clip}", "mid": "/m/04rlf", "verdict": "reject"},
     (401, 403, 201, 201, 201)),
    ("put", "/api/decisions/{d_rita}/", {"verdict": "reject"}, (401, 403, 405, 405, 405)),
    ("delete", "/api/decisions/{d_rita}/", None, (401, 403, 405, 405, 405)),
    ("get", "/api/error-categories/", None, (401, 403, 200, 200, 200)),
    # Curation: curators only.
    ("get", "/api/adjudications/", None, (401, 403, 403, 200, 200)),
    ("post", "/api/adjudications/", {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "reject"},
     (401, 403, 403, 201, 201)),
    ("get", "/api/exports/", None, (401, 403, 403, 200, 200)),
    ("post", "/api/exports/", {"dataset": "{dataset}", "format": "csv"},
     (401, 403, 403, 202, 202)),
    ("get", "/api/datasets/{dataset}/audit/", None, (401, 403, 403, 200, 200)),
    ("get", "/api/datasets/{dataset}/audit/?run={run}", None, (401, 403, 403, 200, 200)),
    # The schema and its docs pages are public: they describe, they do not read data.
    ("get", "/api/schema/", None, (200, 200, 200, 200, 200)),
    ("get", "/api/docs/", None, (200, 200, 200, 200, 200)),
    ("post", "/api/auth/token/", {"username": "rita", "password": "wrong"},
     (400, 400, 400, 400, 400)),
]


def _ids(world) -> dict:
    return {
        "dataset": world["dataset"].pk, "clip": world["clips"][0].pk, "run": world["run"].pk,
        "candidate": world["candidates"][0].pk, "label": label("dog").pk,
        "d_rita": world["d_rita"].pk, "d_rob": world["d_rob"].pk,
    }


def _fill(value, ids: dict):
    if isinstance(value, str):
        filled = value.format(**ids)
        return int(filled) if filled.isdigit() and value.startswith("{") else filled
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(world, role):
    user = None if role == "anonymous" else world["users"][
        {"norole": "norole", "reviewer": "reviewer", "curator": "curator", "admin": "admin"}[role]
    ]
    ids = _ids(world)
    c = client_for(user)
    failures = []
    for method, path, body, expected in MATRIX:
        want = expected[ROLES.index(role)]
        url = _fill(path, ids)
        kwargs = {"format": "json"} if body is not None else {}
        resp = getattr(c, method)(url, _fill(body, ids), **kwargs) if body is not None \
            else getattr(c, method)(url)
        if resp.status_code != want:
            failures.append(f"{method.upper()} {url}: {resp.status_code}, expected {want}")
        if resp.status_code == 401:
            assert "WWW-Authenticate" in resp  # clients learn to send a token
    assert not failures, "\n".join(failures)


def test_reviewer_post_decision_writes_only_own_row(world):
    rita = world["users"]["reviewer"]
    clip = world["clips"][1]
    resp = client_for(rita).post("/api/decisions/", {
        "clip": clip.pk, "mid": "/m/03kmc9", "verdict": "reject",
    }, format="json")
    assert resp.status_code == 201
    d = Decision.objects.get(pk=resp.json()["id"])
    assert (d.reviewer, d.clip, d.label.mid, d.verdict) == (rita, clip, "/m/03kmc9", "reject")


def test_token_auth(world, client):
    resp = client.post("/api/auth/token/", {"username": "rita", "password": "pw-secret-1"},
                       content_type="application/json")
    assert resp.status_code == 200
    key = resp.json()["token"]
    # Stored hashed: the row holds the key's SHA-512, never the key.
    stored = AuthToken.objects.get(digest=hash_token(key))
    assert stored.user == world["users"]["reviewer"]
    assert key not in {stored.digest, stored.token_key} and len(key) == 64

    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert c.get("/api/clips/").status_code == 200
    resp = c.post("/api/decisions/", {"clip": world["clips"][2].pk, "mid": "/m/09x0r",
                                      "verdict": "unsure"}, format="json")
    assert resp.status_code == 201  # no CSRF token needed with a token
    assert resp.json()["reviewer"] == "rita"

    c.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    assert c.get("/api/clips/").status_code == 401
    c.credentials(HTTP_AUTHORIZATION="Token")
    assert c.get("/api/clips/").status_code == 401


def test_session_auth_needs_csrf_for_writes(world):
    c = APIClient(enforce_csrf_checks=True)
    assert c.login(username="rita", password="pw-secret-1")
    assert c.get("/api/decisions/").status_code == 200
    body = {"clip": world["clips"][2].pk, "mid": "/m/09x0r", "verdict": "accept"}
    resp = c.post("/api/decisions/", body, format="json")
    assert resp.status_code == 403 and "CSRF" in resp.json()["detail"]
    assert not Decision.objects.filter(clip=world["clips"][2]).exists()

    secret = _get_new_csrf_string()
    c.cookies["csrftoken"] = secret
    resp = c.post("/api/decisions/", body, format="json",
                  HTTP_X_CSRFTOKEN=_mask_cipher_secret(secret))
    assert resp.status_code == 201


def test_reviewer_sees_only_own_decisions_curator_all(world):
    rita, rob, cora = (world["users"][k] for k in ("reviewer", "reviewer2", "curator"))
    mine = client_for(rita).get("/api/decisions/").json()["results"]
    assert [d["id"] for d in mine] == [world["d_rita"].pk]
    # Asking for someone else's does not widen a reviewer's view.
    mine = client_for(rita).get("/api/decisions/?reviewer=rob").json()["results"]
    assert [d["id"] for d in mine] == [world["d_rita"].pk]
    assert client_for(rob).get(f"/api/decisions/?clip={world['clips'][0].pk}").json()[
        "results"][0]["id"] == world["d_rob"].pk

    everyone = client_for(cora).get("/api/decisions/").json()["results"]
    assert {d["id"] for d in everyone} == {world["d_rita"].pk, world["d_rob"].pk}
    robs = client_for(cora).get("/api/decisions/?reviewer=rob").json()["results"]
    assert [(d["reviewer"], d["verdict"], d["label"]["mid"]) for d in robs] == [
        ("rob", "reject", "/m/09x0r")
    ]
