"""Reads through the API: filters, cursor pagination, labels, runs, the schema and docs."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.validation import validate_schema
from knox.models import AuthToken
from rest_framework.test import APIClient

from pipeline.models import Candidate, PipelineRun
from relabel_app.models import Clip, ClipLabel, Dataset
from review.decisions import decision_record
from review.models import ClipReview

from .conftest import client_for, label, make_clips

pytestmark = pytest.mark.django_db


def walk(c, url: str) -> list[dict]:
    """Every row of a cursor-paginated list, following `next` links."""
    rows, pages = [], 0
    while url:
        resp = c.get(url)
        assert resp.status_code == 200, resp.content
        body = resp.json()
        assert "count" not in body  # cursor pages never count the table
        rows += body["results"]
        url = body["next"]
        pages += 1
        assert pages < 1000
    return rows


def test_cursor_pagination_walks_every_clip_once(world):
    ds = Dataset.objects.create(name="many")
    clips = make_clips(ds, 53, start_position=0)
    c = client_for(world["users"]["reviewer"])
    rows = walk(c, f"/api/clips/?dataset={ds.pk}&page_size=7")
    ids = [r["id"] for r in rows]
    assert ids == sorted(c.pk for c in clips)
    assert len(ids) == len(set(ids)) == 53


def test_cursor_walk_is_stable_while_rows_are_added(world):
    ds = Dataset.objects.create(name="growing")
    make_clips(ds, 20)
    c = client_for(world["users"]["reviewer"])
    first = c.get(f"/api/clips/?dataset={ds.name}&page_size=5").json()
    Clip.objects.create(dataset=ds, ytid="zzzzzzzzzzz", start_s=0, end_s=10, position=99)
    rows = first["results"] + walk(c, first["next"])
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 21
    assert ids == sorted(ids)
    # Backwards from the last page, `previous` links give the same rows in reverse.
    url, pages = f"/api/clips/?dataset={ds.pk}&page_size=5", []
    while url:
        body = c.get(url).json()
        pages.append(body)
        url = body["next"]
    back, url = [], pages[-1]["previous"]
    while url:
        body = c.get(url).json()
        back = body["results"] + back
        url = body["previous"]
    assert [r["id"] for r in back + pages[-1]["results"]] == ids


def test_cursor_pagination_candidates_and_decisions(world):
    rita = world["users"]["reviewer"]
    ds = Dataset.objects.create(name="cands")
    clips = make_clips(ds, 12)
    run = PipelineRun.objects.create(dataset=ds, profile_name="x", status="done")
    mids = ["/m/09x0r", "/m/0bt9lr", "/m/04rlf"]
    for clip in clips:
        for mid in mids:
            Candidate.objects.create(run=run, clip=clip, label=label(mid), tier="exact",
                                     clap_score=0.3, kept=True)
            decision_record(clip=clip, label=label(mid), reviewer=rita, verdict="accept")
    c = client_for(rita)
    cand = walk(c, f"/api/candidates/?run={run.pk}&page_size=4")
    assert len(cand) == len({r["id"] for r in cand}) == 36
    assert all(r["run"] == run.pk and r["label"]["mid"] in mids for r in cand)
    dec = walk(c, f"/api/decisions/?dataset={ds.pk}&page_size=5")
    assert len(dec) == len({r["id"] for r in dec}) == 36
    assert [r["id"] for r in dec] == sorted(r["id"] for r in dec)


def test_clip_filters(world):
    rita, rob = world["users"]["reviewer"], world["users"]["reviewer2"]
    clips = world["clips"]
    ClipReview.objects.create(dataset=world["dataset"], clip=clips[2], reviewer=rita)
    c = client_for(rita)

    def ids(query: str) -> list[int]:
        resp = c.get("/api/clips/?" + query)
        assert resp.status_code == 200, resp.content
        return [r["id"] for r in resp.json()["results"]]

    all_ids = [x.pk for x in clips]
    assert ids("dataset=apids") == all_ids
    assert ids(f"dataset={world['dataset'].pk}") == all_ids
    # Rita decided on clip 0 only; Rob's decision on clip 0 is not hers.
    assert ids("dataset=apids&decided=true") == [clips[0].pk]
    assert ids("dataset=apids&decided=false") == [clips[1].pk, clips[2].pk]
    assert client_for(rob).get("/api/clips/?dataset=apids&decided=true").json()[
        "results"][0]["id"] == clips[0].pk
    assert ids("dataset=apids&finished=true") == [clips[2].pk]
    assert ids("dataset=apids&finished=false") == [clips[0].pk, clips[1].pk]
    # Labels: Dog is original on clip 0; Bark only a candidate; Siren original on clip 1.
    assert ids("label=/m/0bt9lr") == [clips[0].pk]
    assert ids("label=/m/0bt9lr&label_source=candidate") == []
    assert ids("label=/m/05tny_&label_source=candidate") == [clips[0].pk]
    assert ids(f"label=/m/05tny_&label_source=candidate&run={world['run'].pk}") == [clips[0].pk]
    assert ids(f"label=/m/05tny_&label_source=candidate&run={world['run'].pk + 999}") == []
    assert ids("label=/m/05tny_&label_source=original") == []
    assert ids(f"label={label('siren').pk}") == [clips[1].pk]
    assert ids("ytid=yt000000001") == [clips[1].pk]

    row = c.get(f"/api/clips/{clips[0].pk}/").json()
    assert {lab["mid"] for lab in row["labels"]} == {"/m/0bt9lr", "/m/09x0r"}
    assert (row["ytid"], row["start_s"], row["end_s"], row["audio_url"]) == (
        "yt000000000", 0.0, 10.0, None
    )


def test_candidate_filters(world):
    c = client_for(world["users"]["reviewer"])
    run, clip = world["run"], world["clips"][0]

    def mids(query: str) -> list[str]:
        return [r["label"]["mid"] for r in c.get("/api/candidates/?" + query).json()["results"]]

    assert mids(f"run={run.pk}") == ["/m/05tny_", "/m/09x0r", "/m/04rlf"]
    assert mids(f"run={run.pk}&kept=true") == ["/m/05tny_", "/m/09x0r"]
    assert mids(f"clip={clip.pk}&kept=false") == ["/m/04rlf"]
    assert mids(f"clip={world['clips'][1].pk}") == []
    assert mids("label=/m/04rlf&tier=exact") == ["/m/04rlf"]
    row = c.get(f"/api/candidates/{world['candidates'][0].pk}/").json()
    assert (row["clap_score"], row["kept"], row["tier"], row["label"]["name"]) == (
        0.41, True, "exact", "Bark"
    )


def test_labels_list_search_and_detail(world):
    c = client_for(world["users"]["reviewer"])
    page = c.get("/api/labels/?limit=3").json()
    assert page["count"] == 632
    assert [r["mid"] for r in page["results"]] == ["/m/09x0r", "/m/05zppz", "/m/02zsn"]
    assert page["results"][0]["index"] == 0 and page["results"][0]["trainable"]
    assert c.get("/api/labels/?trainable=true&limit=1").json()["count"] == 527
    assert c.get("/api/labels/?trainable=false&limit=1").json()["count"] == 105
    hits = c.get("/api/labels/?q=dog").json()["results"]
    assert hits[0]["name"] == "Dog"
    assert c.get("/api/labels/?q=Bark").json()["results"][0]["mid"] == "/m/05tny_"
    assert c.get("/api/labels/?mid=/m/05tny_").json()["results"][0]["name"] == "Bark"
    assert c.get("/api/labels/?q=").json()["count"] == 632
    dog = c.get(f"/api/labels/{label('dog').pk}/").json()
    assert dog["path"].endswith("Dog") and dog["parent_ids"]


def test_datasets_and_runs(world):
    c = client_for(world["users"]["reviewer"])
    datasets = c.get("/api/datasets/").json()["results"]
    row = next(d for d in datasets if d["name"] == "apids")
    assert row["clip_count"] == 3
    runs = c.get(f"/api/runs/?dataset={world['dataset'].pk}").json()["results"]
    assert [(r["id"], r["kind"], r["random_weights"]) for r in runs] == [
        (world["run"].pk, "models", True)
    ]
    detail = c.get(f"/api/runs/{world['run'].pk}/").json()
    assert detail["progress"]["total"] == 3 and detail["progress"]["percent"] == 100.0
    progress = c.get(f"/api/runs/{world['run'].pk}/progress/").json()
    assert (progress["finished"], progress["failed"], progress["status"]) == (3, 0, "done")
    assert progress["stages"] == {"caption": 3, "predict": 3, "match": 3, "filter": 3}
    assert c.get("/api/runs/?kind=external").json()["results"] == []


def test_list_queries_do_not_grow_with_rows(world):
    """A page of clips costs the same few queries for 3 rows or 60 (labels come from the
    in-process ontology, original labels in one prefetch)."""
    ds = Dataset.objects.create(name="qcount")
    clips = make_clips(ds, 60)
    ClipLabel.objects.bulk_create(
        [ClipLabel(clip=x, label=label(m)) for x in clips for m in ("/m/09x0r", "/m/04rlf")]
    )
    _, key = AuthToken.objects.create(user=world["users"]["curator"])
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    c.get("/api/labels/?limit=1")  # warm the ontology cache

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert c.get(url).status_code == 200
        return len(ctx.captured_queries)

    # token + user's groups + the dataset filter's lookup + clips + their original labels
    # + those labels' CLAP scores
    assert queries(f"/api/clips/?dataset={ds.pk}&page_size=3") == 6
    assert queries(f"/api/clips/?dataset={ds.pk}&page_size=60") == 6
    # token + groups + decisions (reviewer and category joined)
    assert queries("/api/decisions/?page_size=100") == 3
    assert queries(f"/api/candidates/?run={world['run'].pk}") == 3


def test_schema_is_valid_openapi3_with_every_endpoint(world):
    c = APIClient()
    as_json = c.get("/api/schema/?format=json")
    assert as_json.status_code == 200
    schema = json.loads(as_json.content)
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # raises on an invalid document
    as_yaml = c.get("/api/schema/")
    assert as_yaml.status_code == 200
    assert yaml.safe_load(as_yaml.content) == schema
    for path in ("/api/datasets/", "/api/clips/", "/api/clips/{id}/", "/api/labels/",
                 "/api/runs/", "/api/runs/{id}/progress/", "/api/candidates/",
                 "/api/decisions/", "/api/error-categories/", "/api/auth/token/",
                 "/api/adjudications/", "/api/exports/", "/api/exports/{id}/download/",
                 "/api/datasets/{id}/audit/"):
        assert path in schema["paths"], path
    assert "post" in schema["paths"]["/api/decisions/"]
    assert "post" in schema["paths"]["/api/runs/"]
    params = {p["name"] for p in schema["paths"]["/api/clips/"]["get"]["parameters"]}
    assert {"dataset", "decided", "label", "label_source", "cursor"} <= params
    schemes = schema["components"]["securitySchemes"]
    assert {"tokenAuth", "cookieAuth"} <= set(schemes)


def test_docs_pages_load_nothing_from_outside(client):
    for url in ("/api/docs/",):
        resp = client.get(url)
        assert resp.status_code == 200
        html = resp.content.decode()
        refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)', html)
        assert refs, html[:500]
        external = [r for r in refs if urlsplit(r).netloc or r.startswith("//")]
        assert not external, external
        assert "cdn" not in html.lower()
        # Every script the page loads is served by this app.
        for ref in refs:
            if ref.endswith(".js"):
                assert client.get(ref).status_code == 200, ref


def test_browsable_api_renders_for_a_logged_in_reviewer(world):
    c = APIClient()
    c.force_login(world["users"]["reviewer"])
    for url in ("/api/", "/api/clips/", f"/api/clips/{world['clips'][0].pk}/",
                "/api/decisions/", "/api/runs/", f"/api/runs/{world['run'].pk}/",
                "/api/labels/?q=dog", "/api/candidates/"):
        resp = c.get(url, HTTP_ACCEPT="text/html")
        assert resp.status_code == 200, url
        assert resp["Content-Type"].startswith("text/html")
        html = resp.content.decode()
        # What the page loads (scripts, images, stylesheets), not what it links to.
        loads = re.findall(r'src\s*=\s*["\']([^"\']+)', html) + re.findall(
            r'<link[^>]+href\s*=\s*["\']([^"\']+)', html)
        assert loads
        external = [r for r in loads if urlsplit(r).netloc]
        assert not external, (url, external)
