"""The adjudication queue: every reason and the order, on a hand-built dataset; the
"next to adjudicate" walk; the page.

The dataset (run threshold 0.3, CLAP margin 0.1):

  q0  original dog: r1 accept, r2 reject -> disagree; original score 0.5; tie, so no
      evidence. disputed 1, stake 1.0
  q1  originals speech, music: speech r1+r2 reject -> original rejected, score 0.6 against
      a reject majority: evidence 0.3; music r1 unsure -> unsure. disputed 2, stake 2.3
  q2  original siren, score 0.15 <= 0.3 - 0.1 -> CLAP far below. disputed 1, stake 1.0
  q3  gold clip (bark present, cat absent, from adjudications): r1 accepted cat -> gold
      missed (1). stake 0
  q4  original dog: r1 accept, r2 reject, but adjudicated -> not listed
  q5  candidate bark (kept, 0.9): r1, r2 reject, r3 accept -> disagree; majority reject
      against 0.9: evidence 0.6. disputed 1, stake 1.6
  q6  original music, nothing decided, score 0.25 (not far below) -> not listed

Order: q1 (2.3), q5 (1.6), q0 and q2 (1.0; dataset order), q3 (0, a gold miss).
"""

from __future__ import annotations

import pytest
from pytest import approx

from curation.adjudication_queue import (
    adjudication_queue,
    adjudication_queue_next,
    queue_filter_for,
)
from tests.factories import UserFactory

from .conftest import add_candidates, adjudicate, decide, label, make_clip, make_run

pytestmark = pytest.mark.django_db


def original_score(run, clip, key, score):
    from pipeline.models import OriginalLabelScore

    OriginalLabelScore.objects.create(run=run, clip=clip, label=label(key), clap_score=score)


@pytest.fixture
def qset():
    from curation.gold_clips import gold_make_from_adjudications
    from relabel_app.models import Dataset

    r1, r2, r3 = (UserFactory(username=n) for n in ("qr1", "qr2", "qr3"))
    curator = UserFactory(username="qcur", role="curator")
    ds = Dataset.objects.create(name="adq", required_reviews=2)
    q = [make_clip(ds, f"qqqqqqqqqq{i}", 0.0, i, o) for i, o in enumerate(
        [["dog"], ["speech", "music"], ["siren"], [], ["dog"], [], ["music"]])]
    run = make_run(ds, threshold=0.3)
    original_score(run, q[0], "dog", 0.5)
    decide(q[0], "dog", r1, "accept")
    decide(q[0], "dog", r2, "reject")
    original_score(run, q[1], "speech", 0.6)
    original_score(run, q[1], "music", 0.35)
    decide(q[1], "speech", r1, "reject")
    decide(q[1], "speech", r2, "reject")
    decide(q[1], "music", r1, "unsure")
    original_score(run, q[2], "siren", 0.15)
    adjudicate(q[3], "bark", curator, "accept")
    adjudicate(q[3], "cat", curator, "reject")
    gold_make_from_adjudications(clip=q[3], curator=curator)
    decide(q[3], "cat", r1, "accept")
    decide(q[3], "bark", r1, "accept")
    decide(q[4], "dog", r1, "accept")
    decide(q[4], "dog", r2, "reject")
    adjudicate(q[4], "dog", curator, "reject")
    add_candidates(run, q[5], {"bark": 0.9})
    decide(q[5], "bark", r1, "reject")
    decide(q[5], "bark", r2, "reject")
    decide(q[5], "bark", r3, "accept")
    original_score(run, q[6], "music", 0.25)
    return {"ds": ds, "clips": q, "run": run, "curator": curator, "reviewers": (r1, r2, r3)}


def ids(page, qset):
    index = {c.pk: i for i, c in enumerate(qset["clips"])}
    return [index[r.clip_id] for r in page.rows]


def test_reasons_counts_and_order(qset):
    f = queue_filter_for(dataset=qset["ds"], run=qset["run"])
    page = adjudication_queue(f=f)
    assert ids(page, qset) == [1, 5, 0, 2, 3]
    assert page.total == 5
    assert page.counts == {"disagree": 2, "unsure": 1, "original_rejected": 1,
                           "gold_missed": 1, "clap_low": 1}
    rows = {i: r for i, r in zip(ids(page, qset), page.rows, strict=True)}
    assert rows[1].counts == {"disagree": 0, "unsure": 1, "original_rejected": 1,
                              "gold_missed": 0, "clap_low": 0}
    assert (rows[1].n_disputed, rows[1].evidence, rows[1].stake) == (2, approx(0.3),
                                                                      approx(2.3))
    assert (rows[5].n_disputed, rows[5].evidence, rows[5].stake) == (1, approx(0.6),
                                                                      approx(1.6))
    assert (rows[0].counts["disagree"], rows[0].evidence, rows[0].stake) == (1, 0.0, 1.0)
    assert (rows[2].counts["clap_low"], rows[2].stake) == (1, 1.0)
    assert (rows[3].counts["gold_missed"], rows[3].n_disputed, rows[3].stake) == (1, 0, 0.0)
    assert rows[3].reasons == ["Gold clip missed"]


@pytest.mark.parametrize(("reason", "expected"), [
    ("disagree", [5, 0]), ("unsure", [1]), ("original_rejected", [1]),
    ("gold_missed", [3]), ("clap_low", [2]),
])
def test_each_filter(qset, reason, expected):
    f = queue_filter_for(dataset=qset["ds"], run=qset["run"], reason=reason)
    page = adjudication_queue(f=f)
    assert ids(page, qset) == expected
    assert page.matching == len(expected)


def test_margin_and_no_run(qset):
    # A margin of 0.2 puts 0.15 above 0.3 - 0.2 = 0.1: q2 leaves the queue.
    f = queue_filter_for(dataset=qset["ds"], run=qset["run"], margin=0.2)
    assert 2 not in ids(adjudication_queue(f=f), qset)
    # Without a run there are no scores: no CLAP reason, no evidence.
    f = queue_filter_for(dataset=qset["ds"], run=None)
    page = adjudication_queue(f=f)
    assert ids(page, qset) == [1, 0, 5, 3]
    assert page.counts["clap_low"] == 0 and all(r.evidence == 0 for r in page.rows)


def test_adjudicating_removes_a_label_and_next_walks_on(qset):
    q = qset["clips"]
    f = queue_filter_for(dataset=qset["ds"], run=qset["run"])
    nxt = adjudication_queue_next(f=f, current_clip_id=None)
    assert nxt == (q[1].pk, 0)
    assert adjudication_queue_next(f=f, current_clip_id=q[1].pk, rank=0) == (q[5].pk, 1)
    # The curator settles q1's two labels: it leaves the queue, and "next" from it goes to
    # the clip now at its rank (the one that followed it).
    adjudicate(q[1], "speech", qset["curator"], "reject")
    adjudicate(q[1], "music", qset["curator"], "accept")
    assert ids(adjudication_queue(f=f), qset) == [5, 0, 2, 3]
    assert adjudication_queue_next(f=f, current_clip_id=q[1].pk, rank=0) == (q[5].pk, 0)
    assert adjudication_queue_next(f=f, current_clip_id=q[3].pk, rank=3) is None


def test_flagged_reviewers_leave_the_majority(qset):
    """qr1 met gold clip q3: accepted bark (present) and cat (absent): precision 0.5. With
    a floor of 0.6 and the exclusion on, qr1's votes no longer count: q0 becomes an
    original rejected by qr2 alone, q1's unsure vote disappears."""
    ds = qset["ds"]
    ds.gold_floor, ds.gold_exclude_flagged = 0.6, True
    ds.save()
    f = queue_filter_for(dataset=ds, run=qset["run"])
    assert f.excluded_reviewer_ids == (qset["reviewers"][0].pk,)
    page = adjudication_queue(f=f)
    rows = {i: r for i, r in zip(ids(page, qset), page.rows, strict=True)}
    assert rows[0].counts["disagree"] == 0 and rows[0].counts["original_rejected"] == 1
    assert rows[1].counts["unsure"] == 0 and rows[1].counts["original_rejected"] == 1
    # q5: qr2 reject vs qr3 accept is still a disagreement (a tie now: no evidence).
    assert rows[5].counts["disagree"] == 1 and rows[5].evidence == 0


def test_queue_page_and_next_redirect(client, qset):
    q = qset["clips"]
    client.force_login(qset["reviewers"][0])
    assert client.get("/curation/dataset/adq/adjudicate/").status_code == 403
    client.force_login(qset["curator"])
    r = client.get("/curation/dataset/adq/adjudicate/")
    html = r.content.decode()
    assert r.status_code == 200
    assert "<strong>5</strong> clips need a curator" in html
    assert 'data-reason="disagree"' in html and "Reviewers disagree" in html
    assert html.index(f'data-clip-id="{q[1].pk}"') < html.index(f'data-clip-id="{q[5].pk}"')
    r = client.get("/curation/dataset/adq/adjudicate/?reason=clap_low")
    assert f'data-clip-id="{q[2].pk}"' in r.content.decode()
    assert f'data-clip-id="{q[1].pk}"' not in r.content.decode()
    r = client.get("/curation/dataset/adq/adjudicate/next/")
    assert r.status_code == 302
    assert r["Location"] == f"/curation/clip/{q[1].pk}/?queue=all&rank=0&run={qset['run'].pk}"
    r = client.get(f"/curation/dataset/adq/adjudicate/next/?after={q[3].pk}&rank=4")
    assert r.status_code == 302 and r["Location"] == "/curation/dataset/adq/adjudicate/"
    # The clip page in queue mode: next link, review link, ontology paths, preloading audio.
    r = client.get(f"/curation/clip/{q[1].pk}/?queue=all&rank=0")
    html = r.content.decode()
    assert f'/curation/dataset/adq/adjudicate/next/?after={q[1].pk}&amp;rank=0' in html
    assert f'href="/clips/{q[1].pk}/"' in html
    assert "Human sounds &gt; Human voice &gt; Speech" in html
