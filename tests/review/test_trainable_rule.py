"""Issue 16, break 4: decide accepted labels that Add refuses. `POST
/clips/<id>/labels/<Human sounds>/decide/ verdict=accept` was recorded, the same for a
non-trainable class and through `POST /api/decisions/` (201); the adjudication page then
listed them as "added by a reviewer". One rule now (review.label_rules), called by every
service that writes a verdict: a non-trainable label may be rejected or marked unsure where
it is already on the clip, never accepted or added."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from curation.gold_clips import GoldError, gold_import_segments, gold_make_from_adjudications
from curation.models import Adjudication
from relabel_app.models import ClipLabel, Label
from review.decisions import decision_record
from review.label_rules import LabelRefused, label_verdict_check
from review.models import Decision, DecisionLog, GoldClip
from tests.factories import UserFactory, label

pytestmark = pytest.mark.django_db

HUMAN_SOUNDS = "/m/0dgw9r"  # abstract
HX = {"HTTP_HX_REQUEST": "true"}


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _non_trainable() -> Label:
    """A class of the ontology that is neither trainable nor abstract (blacklisted)."""
    lb = Label.objects.filter(index__isnull=True, abstract=False).order_by("pk").first()
    assert lb is not None
    return lb


def _decide(c, clip, lb, verdict):
    return c.post(reverse("review:decide", kwargs={"clip_id": clip.pk, "label_id": lb.pk}),
                  {"verdict": verdict}, **HX)


@pytest.fixture
def setup(review_setup):
    clip = review_setup["clips"][0]
    human = label(HUMAN_SOUNDS)
    assert human.abstract and human.index is None
    return {**review_setup, "clip": clip, "human": human, "other": _non_trainable()}


def test_decide_accept_of_an_abstract_class_is_refused(setup):
    """The attack, as the clip page and rapid mode send it."""
    clip, human = setup["clip"], setup["human"]
    c = _client(UserFactory(username="rita"))
    resp = _decide(c, clip, human, "accept")
    assert resp.status_code == 400
    assert resp.content.decode().startswith(
        "Human sounds is an abstract class, so it cannot be a label. It may only be rejected")
    assert "Accept one of its trainable children instead" in resp.content.decode()
    resp = _decide(c, clip, setup["other"], "accept")
    assert resp.status_code == 400
    assert "not one of the 527 trainable classes" in resp.content.decode()
    assert not Decision.objects.filter(label__index__isnull=True).exists()
    assert not DecisionLog.objects.filter(label__index__isnull=True).exists()


def test_decide_reject_or_unsure_of_an_abstract_class_needs_it_on_the_clip(setup):
    clip, human = setup["clip"], setup["human"]
    c = _client(UserFactory(username="rita"))
    for verdict in ("reject", "unsure"):
        resp = _decide(c, clip, human, verdict)
        assert resp.status_code == 400 and "It is not on this clip" in resp.content.decode()
    assert not Decision.objects.exists()
    # Old data: an abstract class as an original label of the clip. Rejecting it is useful.
    ClipLabel.objects.create(clip=clip, label=human)
    assert _decide(c, clip, human, "reject").status_code == 200
    assert _decide(c, clip, human, "unsure").status_code == 200
    assert Decision.objects.get(clip=clip, label=human).verdict == "unsure"
    assert _decide(c, clip, human, "accept").status_code == 400
    assert Decision.objects.get(clip=clip, label=human).verdict == "unsure"


def test_api_decision_accept_of_an_abstract_class_is_400(setup):
    clip = setup["clip"]
    api = APIClient()
    api.force_authenticate(UserFactory(username="rita"))
    resp = api.post("/api/decisions/", {"clip": clip.pk, "mid": HUMAN_SOUNDS,
                                        "verdict": "accept"}, format="json")
    assert resp.status_code == 400, resp.content
    assert "abstract class" in json.dumps(resp.json())
    resp = api.post("/api/decisions/", {"clip": clip.pk, "mid": setup["other"].mid,
                                        "verdict": "accept"}, format="json")
    assert resp.status_code == 400
    assert not Decision.objects.exists()
    # A trainable class is recorded as before.
    resp = api.post("/api/decisions/", {"clip": clip.pk, "mid": "/m/0bt9lr",
                                        "verdict": "accept"}, format="json")
    assert resp.status_code == 201


def test_adjudicate_accept_of_an_abstract_class_is_refused(setup):
    clip, human = setup["clip"], setup["human"]
    cora = UserFactory(username="cora", role="curator")
    c = _client(cora)
    url = reverse("curation:adjudicate", kwargs={"clip_id": clip.pk, "label_id": human.pk})
    resp = c.post(url, {"verdict": "accept"}, **HX)
    assert resp.status_code == 400 and "abstract class" in resp.content.decode()
    resp = c.post(url, {"verdict": "accept"}, follow=True)  # without JavaScript
    assert "Human sounds is an abstract class" in resp.content.decode()
    api = APIClient()
    api.force_authenticate(cora)
    resp = api.post("/api/adjudications/", {"clip": clip.pk, "mid": HUMAN_SOUNDS,
                                            "verdict": "accept"}, format="json")
    assert resp.status_code == 400, resp.content
    assert not Adjudication.objects.exists()
    ClipLabel.objects.create(clip=clip, label=human)
    assert c.post(url, {"verdict": "reject"}, **HX).status_code == 200
    assert Adjudication.objects.get(clip=clip, label=human).verdict == "reject"


def test_the_rule_is_in_the_service_not_the_view(setup):
    clip, human = setup["clip"], setup["human"]
    with pytest.raises(LabelRefused):
        decision_record(clip=clip, label=human, reviewer=UserFactory(), verdict="accept")
    label_verdict_check(clip_id=clip.pk, label=label("dog"), verdict="accept")  # passes


def test_gold_from_old_adjudications_refuses_an_accepted_abstract_class(setup):
    clip, human = setup["clip"], setup["human"]
    cora = UserFactory(username="cora", role="curator")
    # Written before the rule existed (straight to the table).
    Adjudication.objects.create(clip=clip, label=human, curator=cora, verdict="accept")
    with pytest.raises(GoldError, match="Human sounds is an abstract class"):
        gold_make_from_adjudications(clip=clip, curator=cora)
    assert not GoldClip.objects.exists()


def test_gold_import_refuses_an_abstract_class(setup, tmp_path):
    clip = setup["clip"]
    csv = tmp_path / "gold.csv"
    csv.write_text("# a\n# b\n# c\n"
                   f'{clip.ytid}, {clip.start_s:.3f}, {clip.end_s:.3f}, "/m/0bt9lr,{HUMAN_SOUNDS}"\n')
    with pytest.raises(GoldError, match="line 4: Human sounds is an abstract class"):
        gold_import_segments(path=csv, dataset=setup["dataset"])
    assert not GoldClip.objects.exists()
