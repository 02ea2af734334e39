"""Styled 403 and 404 pages (navigation and the reason) and a 403 logged on one line."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import ClipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_403_says_why_with_navigation_and_logs_one_line(caplog):
    clip = ClipFactory()
    reviewer = UserFactory(username="rita", role="reviewer")
    with caplog.at_level(logging.WARNING, logger="django.request"):
        r = _client(reviewer).get(reverse("review:clip_decisions", kwargs={"clip_id": clip.pk}))
    assert r.status_code == 403
    page = r.content.decode()
    assert "This page is for curators." in page
    assert 'class="topbar"' in page and 'href="/runs/"' in page  # the site's navigation
    assert "Back to the datasets" in page and "rita" in page
    assert "css/app.css" in page
    records = [rec for rec in caplog.records if rec.name == "django.request"]
    assert len(records) == 1
    rec = records[0]
    assert rec.exc_info is None and rec.exc_text is None
    line = logging.Formatter().format(rec)
    assert "\n" not in line and "Traceback" not in line
    assert "Forbidden" in line and "This page is for curators." in line and "user rita" in line


def test_user_without_a_role_gets_the_styled_403():
    r = _client(UserFactory(role="")).get(reverse("review:home"))
    assert r.status_code == 403
    assert "This page needs the reviewer, curator or admin role." in r.content.decode()


def test_404_is_styled_with_navigation():
    r = _client(UserFactory()).get(reverse("review:clip", kwargs={"clip_id": 987654321}))
    assert r.status_code == 404
    page = r.content.decode()
    assert "There is nothing at this address." in page and 'class="topbar"' in page
    assert "/clips/987654321/" in page


def test_500s_keep_their_traceback():
    from relabel_app.log_filters import ClientErrorsOnOneLine

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        rec = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal: %s",
                                ("/x",), sys.exc_info())
    rec.status_code = 500
    assert ClientErrorsOnOneLine().filter(rec) and rec.exc_info is not None


def test_404_names_no_model():
    """Issue 16: the 404 page said "No Clip matches the given query." (a model name)."""
    c = _client(UserFactory())
    decide = reverse("review:decide", kwargs={"clip_id": ClipFactory().pk, "label_id": 987654321})
    for method, url in (("get", reverse("review:clip", kwargs={"clip_id": 987654321})),
                        ("get", reverse("review:clip_audio", kwargs={"clip_id": 987654321})),
                        ("post", decide)):
        r = getattr(c, method)(url, {"verdict": "accept"} if method == "post" else None)
        assert r.status_code == 404
        page = r.content.decode()
        assert "not found" in page.lower()
        for model in ("Clip", "Label", "Dataset", "matches the given query"):
            assert f"No {model} " not in page and "matches the given query" not in page
