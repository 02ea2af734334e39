"""Adjudication: the service (curators only, idempotent, logged), and the clip page."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from curation.adjudication import adjudication_clear, adjudication_record
from curation.models import Adjudication, AdjudicationLog
from tests.factories import UserFactory

from .conftest import MIDS, label


def test_only_curators_adjudicate(policy_set, reviewers):
    c1 = policy_set.clips[1]
    with pytest.raises(PermissionDenied):
        adjudication_record(clip=c1, label=label("dog"), curator=reviewers[0], verdict="accept")
    with pytest.raises(PermissionDenied):
        adjudication_clear(clip=c1, label=label("dog"), curator=reviewers[0])
    assert not Adjudication.objects.filter(clip=c1).exists()


def test_record_is_idempotent_and_logged(policy_set, curator):
    c1 = policy_set.clips[1]
    dog = label("dog")
    a = adjudication_record(clip=c1, label=dog, curator=curator, verdict="accept", note="barks")
    again = adjudication_record(clip=c1, label=dog, curator=curator, verdict="accept",
                                note="barks")
    assert a.pk == again.pk
    log = list(AdjudicationLog.objects.filter(clip=c1, label=dog))
    assert [(x.action, x.before_verdict, x.after_verdict) for x in log] == [
        ("record", "", "accept")]
    other = UserFactory(username="cid", role="curator")
    adjudication_record(clip=c1, label=dog, curator=other, verdict="reject")
    a.refresh_from_db()
    assert (a.verdict, a.note, a.curator) == ("reject", "", other)
    assert adjudication_clear(clip=c1, label=dog, curator=other) is True
    assert adjudication_clear(clip=c1, label=dog, curator=other) is False
    log = list(AdjudicationLog.objects.filter(clip=c1, label=dog))
    assert [(x.action, x.before_verdict, x.after_verdict, x.before_note) for x in log] == [
        ("record", "", "accept", ""),
        ("record", "accept", "reject", "barks"),
        ("clear", "reject", "", ""),
    ]
    with pytest.raises(ValueError, match="append-only"):
        log[0].save()


def test_adjudication_decides_the_curated_state(policy_set, curator):
    from curation.selectors import clip_label_states

    c1 = policy_set.clips[1]
    adjudication_record(clip=c1, label=label("siren"), curator=curator, verdict="reject")
    states = {s.label.mid: s for s in clip_label_states(clip=c1, run=policy_set.run)}
    assert states[MIDS["siren"]].state == "rejected" and not states[MIDS["siren"]].curated
    adjudication_clear(clip=c1, label=label("siren"), curator=curator)
    states = {s.label.mid: s for s in clip_label_states(clip=c1, run=policy_set.run)}
    assert states[MIDS["siren"]].state == "unresolved" and states[MIDS["siren"]].curated


def test_clip_page_access(client, policy_set, reviewers):
    c0 = policy_set.clips[0]
    url = f"/curation/clip/{c0.pk}/"
    assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(reviewers[0])
    assert client.get(url).status_code == 403
    post = client.post(f"/curation/clip/{c0.pk}/labels/{label('dog').pk}/adjudicate/",
                       {"verdict": "accept"})
    assert post.status_code == 403
    assert not Adjudication.objects.filter(clip=c0, label=label("dog")).exists()


def test_clip_page_lists_every_label_with_counts(client, policy_set, curator,
                                                 django_assert_max_num_queries):
    c0 = policy_set.clips[0]
    client.force_login(curator)
    # The page's queries do not grow with the number of labels (12, plus the original
    # labels' CLAP scores and why the queue lists the clip, and the reviewers' notes on the
    # clip: issue 21).
    with django_assert_max_num_queries(15):
        r = client.get(f"/curation/clip/{c0.pk}/?run={policy_set.run.pk}")
    assert r.status_code == 200
    html = r.content.decode()
    for key in ("speech", "dog", "bark", "music"):
        assert MIDS[key] in html
    assert "✓ 1 · ✗ 1 · ? 0" in html  # bark, 1-1
    assert "candidate filtered · CLAP 0.120" in html
    assert 'hx-post="/curation/clip/' in html


def test_htmx_adjudication_returns_the_row(client, policy_set, curator):
    c1 = policy_set.clips[1]
    dog = label("dog")
    client.force_login(curator)
    url = f"/curation/clip/{c1.pk}/labels/{dog.pk}/adjudicate/"
    r = client.post(url, {"verdict": "accept", "note": "clearly a dog", "run": policy_set.run.pk},
                    HTTP_HX_REQUEST="true")
    assert r.status_code == 200
    html = r.content.decode()
    assert html.strip().startswith(f'<tr id="label-{dog.pk}" class="state-accepted" ')
    assert "clearly a dog" in html
    adj = Adjudication.objects.get(clip=c1, label=dog)
    assert (adj.verdict, adj.note, adj.curator) == ("accept", "clearly a dog", curator)
    # Without htmx: a redirect back to the row.
    r = client.post(url, {"verdict": "clear"})
    assert r.status_code == 302 and r["Location"].endswith(f"#label-{dog.pk}")
    assert not Adjudication.objects.filter(clip=c1, label=dog).exists()
    assert client.post(url, {"verdict": "maybe"}).status_code == 400


def test_simultaneous_identical_adjudications_create_once(transactional_db, policy_set, curator):
    """The API's 201 comes from the service (adjudication_upsert), like decisions': of
    identical concurrent calls exactly one created the row (real connections, committed)."""
    from curation.adjudication import adjudication_upsert
    from tests.threads import run_in_threads

    clip, dog = policy_set.clips[1], label("dog")
    got = run_in_threads(6, lambda i: adjudication_upsert(
        clip=clip, label=dog, curator=curator, verdict="accept", note="same")[1])
    assert sorted(got) == [False] * 5 + [True]
    assert Adjudication.objects.filter(clip=clip, label=dog).count() == 1
    assert AdjudicationLog.objects.filter(clip=clip, label=dog).count() == 1
