"""Issue 16, "smaller fixes found in the same attack": the CSRF cookie is HttpOnly (pages
carry the token), the Autoplay form's `next` is a relative path only, rapid mode says when
a finished clip did not count, and "1 adjudicated label is" on the gold card."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from curation.models import Adjudication
from review.models import ClipReview, Decision
from review.queue import queue_next_clip
from tests.factories import UserFactory, label

pytestmark = pytest.mark.django_db


def _client(user, **kw) -> Client:
    c = Client(**kw)
    c.force_login(user)
    return c


def test_csrf_cookie_is_httponly_and_pages_carry_the_token(review_setup):
    c = Client(enforce_csrf_checks=True)
    resp = c.get("/accounts/login/")
    cookie = resp.cookies["csrftoken"]
    assert cookie["httponly"] is True
    # A logged-in page: the token sits in the body's hx-headers (what htmx and rapid.js
    # send), and a POST with it passes the CSRF check.
    user = UserFactory(username="rita")
    c.force_login(user)
    clip = review_setup["clips"][0]
    page = c.get(reverse("review:clip", kwargs={"clip_id": clip.pk})).content.decode()
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    url = reverse("review:decide", kwargs={"clip_id": clip.pk, "label_id": label("dog").pk})
    assert c.post(url, {"verdict": "accept"}).status_code == 403  # no token: refused
    assert c.post(url, {"verdict": "accept"}, HTTP_X_CSRFTOKEN=token).status_code == 302
    assert Decision.objects.filter(clip=clip, reviewer=user, verdict="accept").count() == 1


@pytest.mark.parametrize("nxt", [
    "https://evil.example/", "//evil.example/", "/\\evil.example/", "http://testserver/clips/1/",
    "javascript:alert(1)", "clips/1/", "", "\t//evil.example/",
])
def test_autoplay_next_accepts_only_relative_paths(review_setup, nxt):
    c = _client(UserFactory(username="rita"))
    r = c.post(reverse("review:autoplay"), {"autoplay": "1", "next": nxt})
    assert r.status_code == 302 and r["Location"] == reverse("review:home")


def test_autoplay_next_relative_path_is_followed(review_setup):
    clip = review_setup["clips"][0]
    c = _client(UserFactory(username="rita"))
    url = reverse("review:clip", kwargs={"clip_id": clip.pk}) + "?x=1"
    r = c.post(reverse("review:autoplay"), {"autoplay": "0", "next": url})
    assert r.status_code == 302 and r["Location"] == url


def test_rapid_mode_says_when_a_finished_clip_did_not_count(review_setup):
    """Rob holds the clip's only slot (a live lease); Rita reached it outside the queue and
    answers every question: her answers are kept, the clip is not counted for her, and the
    response says so (the full screen says it with a message)."""
    ds, clips = review_setup["dataset"], review_setup["clips"]
    rob, rita = UserFactory(username="rob"), UserFactory(username="rita")
    assert queue_next_clip(dataset=ds, reviewer=rob) == clips[0]
    c = _client(rita)
    for key in ("dog", "speech", "bark", "music"):
        c.post(reverse("review:decide", kwargs={"clip_id": clips[0].pk,
                                                "label_id": label(key).pk}), {"verdict": "reject"})
    r = c.post(reverse("review:rapid_next", kwargs={"clip_id": clips[0].pk}))
    assert r.status_code == 200
    body = r.json()
    assert body["counted"] is False
    assert body["notice"].startswith("Your decisions on that clip are saved. It did not count")
    assert not ClipReview.objects.filter(reviewer=rita).exists()
    # Her own next clip (leased to her; only Siren on it) counts: no notice.
    assert body["clip"] == clips[1].pk
    c.post(reverse("review:decide", kwargs={"clip_id": clips[1].pk,
                                            "label_id": label("siren").pk}), {"verdict": "accept"})
    r = c.post(reverse("review:rapid_next", kwargs={"clip_id": clips[1].pk}))
    assert r.status_code == 200
    assert r.json()["counted"] is True and r.json()["notice"] == ""


def test_gold_card_says_1_adjudicated_label_is(review_setup):
    clip = review_setup["clips"][0]
    cora = UserFactory(username="cora", role="curator")
    Adjudication.objects.create(clip=clip, label=label("dog"), curator=cora, verdict="accept")
    c = _client(cora)
    r = c.post(reverse("curation:gold_make", kwargs={"clip_id": clip.pk}), follow=True)
    page = r.content.decode()
    assert "Gold clip: 1 adjudicated label is its gold answer." in page
    Adjudication.objects.create(clip=clip, label=label("bark"), curator=cora, verdict="reject")
    r = c.post(reverse("curation:gold_make", kwargs={"clip_id": clip.pk}), follow=True)
    assert "Gold clip: 2 adjudicated labels are its gold answers." in r.content.decode()
