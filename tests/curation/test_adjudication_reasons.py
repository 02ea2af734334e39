"""Adjudication shows its reason (issue 21, item 9): the "CLAP evidence against majority"
figure as the README defines it (|score - threshold| when the score sits on the other
side of the reviewers' majority), worked by hand; the clip page says why the clip is
queued, marks the disputed rows and shows the CLAP scores of the original labels.

The clip (run threshold 0.3, margin 0.1):

  dog    original, CLAP 0.197; r1 accepts (a unanimous accept: no vote dispute). It is
         listed because 0.197 <= 0.3 - 0.1 (CLAP far below threshold). The majority accepts,
         the score is below the threshold: evidence 0.3 - 0.197 = 0.103. (The bug: 0.000,
         because the majority was read only from the vote-disputed pairs.)
  speech original, CLAP 0.45; r1, r2 reject, r3 accepts: reviewers disagree, and the
         majority rejects an original label. Majority reject, score above: 0.45 - 0.3 = 0.15.
  bark   candidate 0.9, accepted by r1 and r2: not disputed, not marked.

Clip: 2 disputed labels, evidence 0.103 + 0.15 = 0.253, stake 2.253.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from pytest import approx

from curation.adjudication_queue import adjudication_queue, clip_disputes, queue_filter_for

from .conftest import MIDS, add_candidates, decide, make_clip, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(curator, reviewers):
    from pipeline.models import OriginalLabelScore
    from relabel_app.models import Dataset

    from .conftest import label

    r1, r2, r3 = reviewers
    ds = Dataset.objects.create(name="why", required_reviews=2)
    clip = make_clip(ds, "whywhywhy00", 0.0, 0, ["dog", "speech"])
    run = make_run(ds, threshold=0.3)
    OriginalLabelScore.objects.create(run=run, clip=clip, label=label("dog"), clap_score=0.197)
    OriginalLabelScore.objects.create(run=run, clip=clip, label=label("speech"),
                                      clap_score=0.45)
    add_candidates(run, clip, {"bark": 0.9})
    decide(clip, "dog", r1, "accept")
    decide(clip, "speech", r1, "reject")
    decide(clip, "speech", r2, "reject")
    decide(clip, "speech", r3, "accept")
    decide(clip, "bark", r1, "accept")
    decide(clip, "bark", r2, "accept")
    return {"ds": ds, "clip": clip, "run": run}


def test_evidence_against_majority_hand_worked(case):
    f = queue_filter_for(dataset=case["ds"], run=case["run"])
    row = adjudication_queue(f=f).rows[0]
    assert row.clip_id == case["clip"].pk
    assert row.counts == {"disagree": 1, "unsure": 0, "original_rejected": 1,
                          "gold_missed": 0, "clap_low": 1}
    assert (row.n_disputed, row.evidence, row.stake) == (2, approx(0.253), approx(2.253))

    d = clip_disputes(f=f, clip_id=case["clip"].pk)
    from .conftest import label

    dog, speech, bark = (label(k).pk for k in ("dog", "speech", "bark"))
    assert set(d.pairs) == {dog, speech}  # bark is not disputed
    assert d.pairs[dog].reasons == ["clap_low"]
    assert d.pairs[dog].evidence == approx(0.103)
    assert d.pairs[speech].reasons == ["disagree", "original_rejected"]
    assert d.pairs[speech].evidence == approx(0.15)
    assert d.evidence == approx(0.253)
    assert [(k, n) for k, _, n in d.reasons] == [("disagree", 1), ("original_rejected", 1),
                                                 ("clap_low", 1)]


def test_clip_page_shows_the_reason_marks_rows_and_scores_originals(case, curator):
    c = Client()
    c.force_login(curator)
    html = c.get(reverse("curation:clip", kwargs={"clip_id": case["clip"].pk})).content.decode()
    why = html.split('id="queue-why"', 1)[1].split("</p>", 1)[0]
    assert "In the adjudication queue for:" in why
    assert "CLAP far below threshold · 1 label" in why
    assert "Reviewers disagree · 1 label" in why
    assert "Original label rejected · 1 label" in why
    assert "CLAP evidence against majority <strong data-clip-evidence>0.253</strong>" in why

    def row(key: str) -> str:
        return html.split(f'data-mid="{MIDS[key]}"', 1)[1].split("</tr>", 1)[0]

    dog = html.split(f'data-mid="{MIDS["dog"]}"', 1)[0].rsplit("<tr", 1)[1] + row("dog")
    assert "disputed" in dog and 'data-disputed="clap_low"' in dog
    assert "CLAP evidence against majority 0.103" in dog
    assert "original · CLAP 0.197" in dog
    speech = row("speech")
    assert "Reviewers disagree" in speech and "CLAP evidence against majority 0.150" in speech
    assert "original · CLAP 0.450" in speech
    bark_tr = html.split(f'data-mid="{MIDS["bark"]}"', 1)[0].rsplit("<tr", 1)[1]
    assert "disputed" not in bark_tr and "data-disputed" not in row("bark")


def test_clip_not_in_the_queue_says_so(case, curator):
    from curation.adjudication import adjudication_record

    from .conftest import label

    for key in ("dog", "speech"):
        adjudication_record(clip=case["clip"], label=label(key), curator=curator,
                            verdict="accept", note="")
    c = Client()
    c.force_login(curator)
    html = c.get(reverse("curation:clip", kwargs={"clip_id": case["clip"].pk})).content.decode()
    assert "Not in the adjudication queue: nothing on this clip is disputed." in html
    assert "data-disputed" not in html
    # The adjudicate answer (a row swapped in by htmx) carries the same marks.
    r = c.post(reverse("curation:adjudicate", kwargs={"clip_id": case["clip"].pk,
                                                       "label_id": label("dog").pk}),
               {"verdict": "clear"}, HTTP_HX_REQUEST="true")
    assert 'data-disputed="clap_low"' in r.content.decode()
