"""The search pages and API on the demo data with the tiny CLAP (random weights: the
mechanics, not the meaning): results, decisions from search, bad input, access."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from pipeline.embed_jobs import embed_chunk, embed_profile_spec
from pipeline.embeddings import ClipEmbedding, EmbeddingSpace
from relabel_app.models import Clip, Label
from review.models import Decision, DecisionLog, PairVotes
from search.models import SearchIndex
from search.services import index_build_now
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
DOG, SPEECH, ABSTRACT = "/m/0bt9lr", "/m/09x0r", "/t/dd00123"


@pytest.fixture
def indexed(demo_dataset, tiny_models):
    spec, rw = embed_profile_spec("tiny")
    ids = list(Clip.objects.filter(dataset=demo_dataset).order_by("id").values_list("id", flat=True))
    embed_chunk(spec, ids, rw)
    idx = index_build_now(dataset=demo_dataset, space=EmbeddingSpace.objects.get())
    assert idx.clip_count == 16
    return demo_dataset, ids


@pytest.fixture
def rita(client):
    user = UserFactory(username="rita", role="reviewer")
    client.force_login(user)
    return user


def test_similar_panel_lists_twelve_neighbours_with_labels(client, rita, indexed):
    ds, ids = indexed
    r = client.get(f"/clips/{ids[0]}/similar/")
    assert r.status_code == 200
    html = r.content.decode()
    assert html.count("data-result") == 12
    assert f'data-clip="{ids[0]}"' not in html  # not the clip itself
    assert "random-weight test CLAP" in html
    # The clip page carries the folded panel (fetched on open).
    page = client.get(f"/clips/{ids[0]}/").content.decode()
    assert 'id="similar"' in page and f'hx-get="/clips/{ids[0]}/similar/"' in page


def test_find_page_and_add_class_to_selected_records_search_decisions(client, rita, indexed):
    ds, ids = indexed
    r = client.get(f"/datasets/{ds.pk}/find/", {"q": "dog barking", "class": DOG})
    assert r.status_code == 200
    html = r.content.decode()
    assert html.count("data-result") == 16 and "Add Dog to selected" in html
    chosen = ids[:3]
    r = client.post(f"/datasets/{ds.pk}/find/add/", {"class": DOG, "clip": chosen,
                                                       "next": f"/datasets/{ds.pk}/find/?q=dog"})
    assert r.status_code == 302 and r["Location"] == f"/datasets/{ds.pk}/find/?q=dog"
    dog = Label.objects.get(mid=DOG)
    got = Decision.objects.filter(label=dog, reviewer=rita)
    assert sorted(got.values_list("clip_id", flat=True)) == sorted(chosen)
    assert set(got.values_list("verdict", "source")) == {("accept", "search")}
    # The adjudication queue's denormalised fields (issue 18) are kept by this path too.
    assert set(got.values_list("dataset_id", flat=True)) == {ds.pk}
    assert sorted(PairVotes.objects.filter(label=dog, clip_id__in=chosen).values_list(
        "clip_id", "dataset_id", "n_accept")) == sorted((c, ds.pk, 1) for c in chosen)
    assert DecisionLog.objects.filter(label=dog, reviewer=rita).count() == 3
    # Again: idempotent (no new rows, no new log entries).
    client.post(f"/datasets/{ds.pk}/find/add/", {"class": DOG, "clip": chosen})
    assert got.count() == 3 and DecisionLog.objects.filter(label=dog).count() == 3
    # The results now say the clips carry Dog.
    html = client.get(f"/datasets/{ds.pk}/find/", {"q": "dog", "class": DOG}).content.decode()
    assert html.count('<span class="tag">yes</span>') >= 3


def test_abstract_class_and_bad_input_get_clear_messages(client, rita, indexed):
    ds, ids = indexed
    r = client.post(f"/datasets/{ds.pk}/find/add/", {"class": ABSTRACT, "clip": ids[:2]}, follow=True)
    assert "is an abstract class" in r.content.decode()
    assert not Decision.objects.exists()
    r = client.get(f"/datasets/{ds.pk}/find/", {"q": "x", "class": ABSTRACT})
    assert r.status_code == 400 and "abstract class" in r.content.decode()
    r = client.get(f"/datasets/{ds.pk}/find/", {"q": "   "})
    assert r.status_code == 200 and "Type a sound description" in r.content.decode()
    r = client.get(f"/datasets/{ds.pk}/find/", {"q": "a" * 10_000})
    assert r.status_code == 400 and "10,000 characters" in r.content.decode()
    r = client.post(f"/datasets/{ds.pk}/find/add/", {"class": DOG}, follow=True)
    assert "Select one or more clips" in r.content.decode()
    r = client.post(f"/datasets/{ds.pk}/find/add/", {"class": DOG, "clip": ["1e9"]}, follow=True)
    assert r.status_code == 200 and not Decision.objects.exists()
    r = client.get(f"/datasets/{ds.pk}/sweep/t/dd00123/")
    assert r.status_code == 400 and "abstract class" in r.content.decode()
    r = client.get(f"/datasets/{ds.pk}/find/", {"q": "dog", "page": "99999"})
    assert r.status_code == 200


def test_dataset_without_index_says_so(client, rita, demo_dataset):
    r = client.get(f"/datasets/{demo_dataset.pk}/find/", {"q": "dog barking"})
    assert r.status_code == 400
    assert "has no clip embeddings to search yet" in r.content.decode()
    clip = Clip.objects.filter(dataset=demo_dataset).first()
    assert "no clip embeddings" in client.get(f"/clips/{clip.pk}/similar/").content.decode()
    with pytest.raises(CommandError, match="has no clip embeddings"):
        call_command("build_search_index", "--dataset", "demo")


def test_sweep_orders_carriers_and_keys_record_decisions(client, rita, indexed):
    ds, ids = indexed
    speech = Label.objects.get(mid=SPEECH)
    carriers = set(Clip.objects.filter(dataset=ds, labels=speech).values_list("id", flat=True))
    assert carriers, "the demo data gives some clips Speech"
    r = client.get(f"/datasets/{ds.pk}/sweep/m/09x0r/")
    assert r.status_code == 200
    rows = r.context["page"].rows
    assert {x.clip.pk for x in rows} == carriers
    scores = [x.score for x in rows]
    assert scores == sorted(scores)  # least similar first
    one = client.get(f"/datasets/{ds.pk}/sweep/m/09x0r/?view=one").content.decode()
    assert "one-at-a-time" in one and "Show as a list" in one
    missing = client.get(f"/datasets/{ds.pk}/sweep/m/09x0r/?tab=missing").context["page"].rows
    assert missing and not ({x.clip.pk for x in missing} & carriers)
    r = client.post(f"/datasets/{ds.pk}/sweep/m/09x0r/decide/",
                    {"clip": rows[0].clip.pk, "verdict": "reject"}, HTTP_X_REQUESTED_WITH="fetch")
    assert r.status_code == 204
    d = Decision.objects.get(reviewer=rita, label=speech)
    assert (d.clip_id, d.verdict, d.source) == (rows[0].clip.pk, "reject", "search")
    assert d.dataset_id == ds.pk
    assert PairVotes.objects.get(clip_id=d.clip_id, label=speech).n_reject == 1
    assert client.post(f"/datasets/{ds.pk}/sweep/m/09x0r/decide/",
                       {"clip": rows[0].clip.pk, "verdict": "maybe"}).status_code == 400


def test_api_similar_and_search_with_bad_input_and_access(indexed):
    from rest_framework.test import APIClient

    ds, ids = indexed
    c = APIClient()
    assert c.get(f"/api/clips/{ids[0]}/similar/").status_code in (401, 403)
    c.force_authenticate(UserFactory(username="nora", role=""))
    assert c.get(f"/api/search/?dataset={ds.pk}&q=dog").status_code == 403
    c.force_authenticate(UserFactory(username="rita", role="reviewer"))
    r = c.get(f"/api/clips/{ids[0]}/similar/?k=5")
    assert r.status_code == 200
    body = r.json()
    assert body["random_weights"] is True and len(body["results"]) == 5
    assert ids[0] not in [h["clip"] for h in body["results"]]
    scores = [h["score"] for h in body["results"]]
    assert scores == sorted(scores, reverse=True)
    r = c.get("/api/search/", {"dataset": ds.pk, "q": "dog barking", "k": 3})
    assert r.status_code == 200 and len(r.json()["results"]) == 3
    for params in ({"dataset": ds.pk, "q": ""}, {"dataset": ds.pk, "q": "a" * 10_000},
                   {"dataset": ds.pk, "q": "dog", "k": 0}, {"dataset": ds.pk, "q": "dog", "k": 10**9},
                   {"dataset": 10**30, "q": "dog"}, {"dataset": 999999, "q": "dog"}, {"q": "dog"}):
        assert c.get("/api/search/", params).status_code == 400, params
    assert c.get(f"/api/clips/{ids[0]}/similar/?k=0").status_code == 400
    assert c.get(f"/api/clips/{ids[0]}/similar/?k=1000000000").status_code == 400
    assert c.get("/api/clips/99999999/similar/").status_code == 404
    SearchIndex.objects.all().delete()
    r = c.get(f"/api/clips/{ids[0]}/similar/")
    assert r.status_code == 400 and "not built yet" in r.json()["detail"]
    schema = c.get("/api/schema/?format=json").json()
    assert "/api/clips/{id}/similar/" in schema["paths"] and "/api/search/" in schema["paths"]


def test_pages_need_the_reviewer_role(client, indexed):
    ds, ids = indexed
    assert client.get(f"/datasets/{ds.pk}/find/?q=dog").status_code == 302  # to the login
    client.force_login(UserFactory(username="nora", role=""))
    for url in (f"/datasets/{ds.pk}/find/?q=dog", f"/clips/{ids[0]}/similar/",
                f"/datasets/{ds.pk}/sweep/m/09x0r/", f"/datasets/{ds.pk}/search-index/"):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/datasets/{ds.pk}/find/add/", {"class": DOG, "clip": ids[:1]}).status_code == 403
    assert ClipEmbedding.objects.count() == 16
