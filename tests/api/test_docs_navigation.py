"""/api/docs/ has the app's navigation (issue 21): the same top bar as every page, from one
template (templates/_topbar.html)."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _topbar(html: str) -> str:
    return html.split('<header class="topbar">', 1)[1].split("</header>", 1)[0]


def test_api_docs_carry_the_app_navigation(client):
    UserFactory(username="doc-cora", role="curator")
    assert client.login(username="doc-cora", password="pw")
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    home = client.get("/").content.decode()
    bar = _topbar(html)
    for link in ('href="/"', 'href="/api/docs/"', 'href="/accounts/tokens/"',
                 'href="/curation/"', "Log out"):
        assert link in bar, link
    # The same bar as the rest of the app (one template), CSRF token aside.
    import re

    def strip(s: str) -> str:
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", s)

    assert strip(bar) == strip(_topbar(home))
    assert '<div id="swagger-ui"></div>' in html  # the docs themselves still there
    assert "css/topbar.css" in html
