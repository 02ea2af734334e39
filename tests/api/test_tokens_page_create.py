"""The tokens page creates a token (issue 21): the key is in that answer only (no-store),
it works against the API, and the page never shows it again."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_tokens_page_creates_a_token_shown_once(client):
    UserFactory(username="tia")
    assert client.login(username="tia", password="pw")
    page = client.get("/accounts/tokens/").content.decode()
    assert "Create a token</button>" in page and "You have no live API tokens." in page
    r = client.post("/accounts/tokens/", {"create": "1"})
    assert r.status_code == 200 and "no-store" in r["Cache-Control"]
    key = re.search(r"<code class=\"token-key\" data-token>([^<]+)</code>",
                    r.content.decode()).group(1)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/datasets/").status_code == 200
    again = client.get("/accounts/tokens/").content.decode()
    assert key not in again and key[:8] in again  # listed by its prefix only
