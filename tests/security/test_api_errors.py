"""Issue 16 "API errors are JSON" and issue 21 item 10 (server side): every error under
/api/ (400, 401/403, 404, 405, 429, 500) answers application/json with a ``detail`` and no
traceback or model name; a database outage answers 503 with ``Retry-After``, in JSON."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import Client
from knox.models import AuthToken

from api import views
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def api_client(world, role: str = "reviewer") -> Client:
    return Client(raise_request_exception=False,
                  HTTP_AUTHORIZATION=f"Token {world.tokens[role]}")


def assert_json_error(resp, status: int) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.content[:300])
    assert resp["Content-Type"] == "application/json"
    body = resp.json()
    text = resp.content.decode()
    assert "Traceback" not in text and "File \"" not in text
    for model in ("Decision", "Adjudication", "PipelineRun", "Candidate", "Clip ", "ExportJob",
                  "matches the given query"):
        assert model not in text, text
    return body


@pytest.mark.parametrize("path", ["/api/nothing-here/", "/api/clips/x/", "/api/decisions/0/"])
def test_an_unknown_api_url_is_a_json_404(world, path):
    assert assert_json_error(api_client(world).get(path), 404) == {"detail": "Not found."}


@pytest.mark.parametrize("path", ["/api/decisions/{}/", "/api/runs/999999/",
                                  "/api/adjudications/999999/", "/api/exports/999999/download/",
                                  "/api/runs/9999999999999999999/"])
def test_a_missing_row_is_a_json_404_without_the_model_name(world, path):
    path = path.format(world.d_rob.pk)  # rob's decision: not rita's to see
    role = "curator" if "adjudications" in path or "exports" in path else "reviewer"
    assert assert_json_error(api_client(world, role).get(path), 404) == {"detail": "Not found."}


def test_a_wrong_method_is_a_json_405(world):
    body = assert_json_error(api_client(world).delete("/api/datasets/"), 405)
    assert "DELETE" in body["detail"]


def test_a_reviewer_on_a_curator_endpoint_is_a_json_403(world):
    assert_json_error(api_client(world).get("/api/adjudications/"), 403)


def test_anonymous_is_a_json_401_or_403(world):
    resp = Client().get("/api/clips/")
    assert resp.status_code in (401, 403)
    assert resp["Content-Type"] == "application/json"


def test_a_bad_json_body_is_a_json_400(world):
    resp = api_client(world).post("/api/decisions/", "{not json",
                                  content_type="application/json")
    assert "detail" in assert_json_error(resp, 400)


def test_an_unexpected_error_is_a_json_500_without_internals(world, monkeypatch):
    def boom(**filters):
        raise RuntimeError("internal: Decision table /srv/secret/path")

    monkeypatch.setattr(views.DatasetViewSet, "select", staticmethod(boom))
    resp = api_client(world).get("/api/datasets/")
    assert assert_json_error(resp, 500) == {"detail": "Server error."}
    assert "secret" not in resp.content.decode()


def test_an_unexpected_error_outside_the_api_is_still_the_html_page(world, monkeypatch):
    from review import views as review_views

    def boom(*args, **kwargs):
        raise RuntimeError("internal")

    monkeypatch.setattr(review_views, "label_search", boom)
    c = Client(raise_request_exception=False)
    c.force_login(world.users["reviewer"])
    resp = c.get("/labels/search/", {"q": "dog"})
    assert resp.status_code == 500
    assert resp["Content-Type"].startswith("text/html")


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_is_a_json_503_with_retry_after():
    """The database really away: the connection's port points at nothing, so the token
    lookup (the request's first query) fails to connect."""
    user = UserFactory(role="reviewer")
    token = AuthToken.objects.create(user=user)[1]
    conn = connections["default"]
    port = conn.settings_dict["PORT"]
    conn.close()
    conn.settings_dict["PORT"] = "1"
    try:
        resp = Client(raise_request_exception=False,
                      HTTP_AUTHORIZATION=f"Token {token}").get("/api/clips/")
    finally:
        conn.close()
        conn.settings_dict["PORT"] = port
    body = assert_json_error(resp, 503)
    assert int(resp["Retry-After"]) > 0
    assert "database" in body["detail"]


def test_the_schema_says_which_fields_can_be_null(world):
    """Issue 16 "the schema tells the truth": schemathesis found these null in responses
    but documented as strings."""
    schema = api_client(world).get("/api/schema/?format=json").json()["components"]["schemas"]
    for component, field in [("Decision", "error_category"), ("Run", "created_by"),
                             ("RunDetail", "created_by"), ("ExportJob", "created_by")]:
        assert schema[component]["properties"][field].get("nullable") is True, component
    # And a real null answer: rita's decision has no error category.
    d = api_client(world).get(f"/api/decisions/{world.d_rita.pk}/").json()
    assert d["error_category"] is None
