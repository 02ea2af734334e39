"""Writes through the API: decisions (idempotent, nothing written on a bad request), runs,
and no 500 whatever the body."""

from __future__ import annotations

import json

import pytest

from pipeline.models import ClipResult, PipelineRun
from review.models import Decision, DecisionLog

from .conftest import client_for, label

pytestmark = pytest.mark.django_db


def test_decision_post_twice_is_one_row(world):
    rita = world["users"]["reviewer"]
    clip = world["clips"][1]
    body = {"clip": clip.pk, "label": label("siren").pk, "verdict": "reject",
            "error_category": "original-label-wrong", "note": "a car alarm"}
    c = client_for(rita)
    first = c.post("/api/decisions/", body, format="json")
    second = c.post("/api/decisions/", body, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Decision.objects.filter(clip=clip, reviewer=rita).count() == 1
    assert DecisionLog.objects.filter(clip=clip, reviewer=rita).count() == 1
    d = second.json()
    assert (d["verdict"], d["error_category"], d["note"], d["label"]["mid"]) == (
        "reject", "original-label-wrong", "a car alarm", "/m/03kmc9"
    )


def test_decision_update_keeps_or_clears_category(world):
    rita = world["users"]["reviewer"]
    clip = world["clips"][1]
    c = client_for(rita)
    base = {"clip": clip.pk, "mid": "/m/03kmc9"}
    c.post("/api/decisions/", {**base, "verdict": "reject",
                               "error_category": "original-label-wrong", "note": "n"},
           format="json")
    # Same verdict, no category given: the stored one stays.
    d = c.post("/api/decisions/", {**base, "verdict": "reject"}, format="json").json()
    assert (d["error_category"], d["note"]) == ("original-label-wrong", "n")
    # null clears it.
    d = c.post("/api/decisions/", {**base, "verdict": "reject", "error_category": None},
               format="json").json()
    assert d["error_category"] is None
    # A changed verdict updates the same row.
    resp = c.post("/api/decisions/", {**base, "verdict": "accept"}, format="json")
    assert resp.status_code == 200 and resp.json()["verdict"] == "accept"
    assert Decision.objects.filter(clip=clip, reviewer=rita).count() == 1


@pytest.mark.parametrize("body", [
    {"clip": 987654321, "mid": "/m/09x0r", "verdict": "accept"},
    {"clip": "{clip}", "mid": "/m/not-a-class", "verdict": "accept"},
    {"clip": "{clip}", "label": 987654321, "verdict": "accept"},
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "accept", "error_category": "nope"},
])
def test_decision_on_missing_clip_or_label_writes_nothing(world, body):
    body = {k: (world["clips"][0].pk if v == "{clip}" else v) for k, v in body.items()}
    before = (Decision.objects.count(), DecisionLog.objects.count())
    resp = client_for(world["users"]["reviewer"]).post("/api/decisions/", body, format="json")
    assert resp.status_code == 400, resp.content
    assert (Decision.objects.count(), DecisionLog.objects.count()) == before


BIG = 10**30
MALFORMED_DECISIONS = [
    [],
    "a string",
    {},
    {"clip": "abc", "mid": "/m/09x0r", "verdict": "accept"},
    {"clip": 1.5, "mid": "/m/09x0r", "verdict": "accept"},
    {"clip": BIG, "mid": "/m/09x0r", "verdict": "accept"},
    {"clip": -1, "mid": "/m/09x0r", "verdict": "accept"},
    {"clip": None, "mid": "/m/09x0r", "verdict": "accept"},
    {"clip": [1], "mid": "/m/09x0r", "verdict": "accept"},
    {"clip": "{clip}", "verdict": "accept"},  # no label
    {"clip": "{clip}", "mid": "/m/09x0r", "label": "{label}", "verdict": "accept"},  # both
    {"clip": "{clip}", "label": BIG, "verdict": "accept"},
    {"clip": "{clip}", "label": "9" * 25, "verdict": "accept"},
    {"clip": "{clip}", "mid": {"a": 1}, "verdict": "accept"},
    {"clip": "{clip}", "mid": "/m/09x0r\x00", "verdict": "accept"},
    {"clip": "{clip}", "mid": "/m/09x0r"},  # no verdict
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "maybe"},
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": ["accept"]},
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "accept", "note": ["x"]},
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "accept", "note": "a\x00b"},
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "accept", "note": "x" * 5000},
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "accept", "error_category": 7},
    {"clip": "{clip}", "mid": "/m/09x0r", "verdict": "accept", "error_category": "a\x00"},
]

MALFORMED_RUNS = [
    [],
    {},
    {"dataset": "{dataset}"},
    {"profile": "tiny"},
    {"dataset": "apids", "profile": "tiny"},
    {"dataset": BIG, "profile": "tiny"},
    {"dataset": 987654321, "profile": "tiny"},
    {"dataset": "{dataset}", "profile": "no-such-profile"},
    {"dataset": "{dataset}", "profile": "../../etc/passwd"},
    {"dataset": "{dataset}", "profile": ["tiny"]},
    {"dataset": "{dataset}", "profile": "tiny", "new": "perhaps"},
    {"dataset": "{dataset}", "profile": "tiny", "clips": "1,2"},
    {"dataset": "{dataset}", "profile": "tiny", "clips": [BIG]},
    {"dataset": "{dataset}", "profile": "tiny", "clips": [{"id": 1}]},
]

MALFORMED_TOKEN = [[], {}, {"username": ["rita"], "password": "x"}, "rita:pw"]


def _fill(body, world):
    ids = {"{clip}": world["clips"][0].pk, "{dataset}": world["dataset"].pk,
           "{label}": label("speech").pk}
    if isinstance(body, dict):
        return {k: ids.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    return body


@pytest.mark.parametrize(("path", "user", "bodies"), [
    ("/api/decisions/", "reviewer", MALFORMED_DECISIONS),
    ("/api/runs/", "curator", MALFORMED_RUNS),
    ("/api/auth/token/", None, MALFORMED_TOKEN),
])
def test_malformed_bodies_are_400_not_500(world, path, user, bodies):
    c = client_for(world["users"][user] if user else None)
    before = (Decision.objects.count(), DecisionLog.objects.count(),
              PipelineRun.objects.count(), ClipResult.objects.count())
    failures = []
    for body in bodies:
        resp = c.post(path, json.dumps(_fill(body, world)), content_type="application/json")
        if resp.status_code != 400:
            failures.append(f"{body!r}: {resp.status_code} {resp.content[:200]!r}")
    # Not JSON at all, and JSON under the wrong content type.
    for raw, ctype in (("{not json", "application/json"), ("\xff\xfe", "application/json"),
                       ("clip=1", "text/plain")):
        resp = c.post(path, raw, content_type=ctype)
        if resp.status_code not in (400, 415):
            failures.append(f"{raw!r} as {ctype}: {resp.status_code}")
    assert not failures, "\n".join(failures)
    assert (Decision.objects.count(), DecisionLog.objects.count(),
            PipelineRun.objects.count(), ClipResult.objects.count()) == before


def test_start_run_creates_and_continues(world, django_capture_on_commit_callbacks):
    cora = world["users"]["curator"]
    c = client_for(cora)
    ds = world["dataset"]
    with django_capture_on_commit_callbacks() as callbacks:
        resp = c.post("/api/runs/", {"dataset": ds.pk, "profile": "tiny", "new": True},
                      format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    run = PipelineRun.objects.get(pk=body["id"])
    assert (run.created_by, run.kind, run.clip_count) == (cora, "models", 3)
    assert body["status"] == "running" and body["progress"]["total"] == 3
    assert body["config"]["name"] == "tiny"
    assert len(callbacks) == 1  # one chunk of 3 clips queued for the caption stage
    resp = c.post("/api/runs/", {"dataset": ds.pk, "profile": "tiny"}, format="json")
    assert resp.status_code == 200 and resp.json()["id"] == run.pk


def test_non_json_query_and_path_values_are_4xx(world):
    c = client_for(world["users"]["curator"])
    bad = [
        "/api/clips/?dataset=no-such-dataset", "/api/clips/?decided=maybe",
        "/api/clips/?label=/m/none", "/api/clips/?run=abc", "/api/clips/?label_source=x",
        "/api/clips/?ytid=a%00b", "/api/clips/?dataset=" + "9" * 30,
        "/api/candidates/?kept=sometimes", "/api/candidates/?run=" + "9" * 30,
        "/api/candidates/?tier=magic", "/api/decisions/?verdict=perhaps",
        "/api/decisions/?reviewer=a%00", "/api/labels/?q=a%00", "/api/labels/?mid=a%00",
        "/api/runs/?kind=other", "/api/runs/?dataset=x",
    ]
    failures = [f"{u}: {r.status_code}" for u in bad if (r := c.get(u)).status_code != 400]
    not_found = [
        "/api/clips/?cursor=garbage", "/api/clips/9999999999999999999/",
        "/api/clips/99999999999999999999999/", "/api/clips/abc/", "/api/labels/999999999/",
        "/api/runs/9999999999999999999/", "/api/runs/9999999999999999999/progress/",
        "/api/decisions/9999999999999999999/", "/api/candidates/0/",
        "/api/datasets/9999999999999999999/",
    ]
    failures += [f"{u}: {r.status_code}" for u in not_found if (r := c.get(u)).status_code != 404]
    assert not failures, "\n".join(failures)
