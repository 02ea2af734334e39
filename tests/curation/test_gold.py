"""Gold clips: making and importing answers, reviewers' precision and recall worked out by
hand, the floor, flagged reviewers left out of the majority, and serving in the queue
(never twice to one reviewer; at about the set rate over 1,000 picks)."""

from __future__ import annotations

import io
import random

import pytest
from django.core.management import CommandError, call_command
from pytest import approx

from curation.gold import reviewer_gold_accuracy
from curation.gold_clips import GoldError, gold_make_from_adjudications
from review.models import ClipReview, GoldClip, GoldLabel, GoldServe, QueueSlot
from tests.factories import UserFactory

from .conftest import MIDS, adjudicate, decide, finish, label, make_clip

pytestmark = pytest.mark.django_db

SEGMENTS = (
    "# Segments csv created for a test\n"
    "# num_ytids=1, num_segs=1, num_unique_labels=1, num_positive_labels=1\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)


@pytest.fixture
def gset(tmp_path):
    """Gold clip A (from adjudications): bark present, cat absent, dog present.
    Gold clip B (imported, complete): speech present, everything else absent.

    gr1 on A: accept bark (TP), accept cat (FP), reject dog (missed); on B: accept speech
        (TP), accept music (FP: B is complete). Finished A and B.
        precision 2/4 = 0.5; positives 3 (bark, dog, speech): recall 2/3; judged 5.
    gr2 on A: accept bark, accept dog (TP 2), unsure cat (no count); finished A.
        precision 1.0, recall 2/2 = 1.0, judged 2.
    gr3 decided only on the ordinary clip X: not listed.
    gr4 finished B without a decision: 1 gold clip, 1 positive, TP 0: recall 0.0, precision
        none.
    X (ordinary, original dog): gr1 reject, gr2 accept: a tie."""
    from relabel_app.models import Dataset

    r1, r2, r3, r4 = (UserFactory(username=f"gr{i}") for i in (1, 2, 3, 4))
    curator = UserFactory(username="gcur", role="curator")
    ds = Dataset.objects.create(name="gold", required_reviews=1)
    a = make_clip(ds, "goldgoldgA1", 0.0, 0, ["bark", "cat"])
    b = make_clip(ds, "goldgoldgB2", 30.0, 1, ["speech"])
    x = make_clip(ds, "plainplainX", 0.0, 2, ["dog"])
    for key, verdict in (("bark", "accept"), ("cat", "reject"), ("dog", "accept")):
        adjudicate(a, key, curator, verdict)
    assert gold_make_from_adjudications(clip=a, curator=curator) == 3
    csv = tmp_path / "gold.csv"
    csv.write_text(SEGMENTS + f'goldgoldgB2, 30.000, 40.000, "{MIDS["speech"]}"\n')
    out = io.StringIO()
    call_command("import_gold", str(csv), dataset="gold", stdout=out)
    assert out.getvalue().strip() == "gold: 1 gold clips with 1 present labels imported"
    decide(a, "bark", r1, "accept")
    decide(a, "cat", r1, "accept")
    decide(a, "dog", r1, "reject")
    decide(b, "speech", r1, "accept")
    decide(b, "music", r1, "accept")
    finish(a, r1)
    finish(b, r1)
    decide(a, "bark", r2, "accept")
    decide(a, "dog", r2, "accept")
    decide(a, "cat", r2, "unsure")
    finish(a, r2)
    decide(x, "siren", r3, "accept")
    finish(b, r4)
    decide(x, "dog", r1, "reject")
    decide(x, "dog", r2, "accept")
    return {"ds": ds, "a": a, "b": b, "x": x, "users": (r1, r2, r3, r4), "curator": curator}


def test_answers_from_adjudications_and_import(gset):
    a, b = gset["a"], gset["b"]
    answers = {(g.clip_id, g.label.mid): g.present
               for g in GoldLabel.objects.select_related("label")}
    assert answers == {(a.pk, MIDS["bark"]): True, (a.pk, MIDS["cat"]): False,
                       (a.pk, MIDS["dog"]): True, (b.pk, MIDS["speech"]): True}
    assert GoldClip.objects.get(clip=a).complete is False
    assert GoldClip.objects.get(clip=b).complete is True


def test_precision_and_recall_by_hand(gset):
    got = {g.reviewer: g for g in reviewer_gold_accuracy(dataset=gset["ds"])}
    assert sorted(got) == ["gr1", "gr2", "gr4"]
    g1, g2, g4 = got["gr1"], got["gr2"], got["gr4"]
    assert (g1.gold_clips, g1.judged, g1.tp, g1.fp, g1.missed, g1.positives) == (2, 5, 2, 2, 1, 3)
    assert (g1.precision, g1.recall) == (0.5, approx(2 / 3))
    assert (g2.gold_clips, g2.judged, g2.tp, g2.fp, g2.precision, g2.recall) == (
        1, 2, 2, 0, 1.0, 1.0)
    assert (g4.gold_clips, g4.positives, g4.tp, g4.precision, g4.recall) == (1, 1, 0, None, 0.0)
    assert not any(g.flagged for g in got.values())  # no floor set


def test_floor_flags_and_exclusion_changes_the_curated_state(gset, client):
    from curation.selectors import clip_label_states

    ds = gset["ds"]
    ds.gold_floor = 0.6
    ds.save()
    flagged = {g.reviewer for g in reviewer_gold_accuracy(dataset=ds) if g.flagged}
    assert flagged == {"gr1", "gr4"}  # precision 0.5; recall 0.0
    # X's dog is a 1-1 tie until the flagged gr1's reject leaves the majority.
    dog = label("dog")
    [state] = [s for s in clip_label_states(clip=gset["x"], run=None) if s.label == dog]
    assert state.accepted is None
    ds.gold_exclude_flagged = True
    ds.save()
    [state] = [s for s in clip_label_states(clip=gset["x"], run=None) if s.label == dog]
    assert (state.accepted, state.n_accept, state.n_reject) == (True, 1, 0)
    # The audit says whose votes it left out, and shows the flags.
    from curation.audits import dataset_audit

    f = dataset_audit(dataset=ds, use_default_run=False)
    assert f["excluded_reviewers"] == ["gr1", "gr4"]
    assert [(g["reviewer"], g["flagged"]) for g in f["gold"]["reviewers"]] == [
        ("gr1", True), ("gr2", False), ("gr4", True)]
    # The curator's reviewer page.
    client.force_login(gset["curator"])
    html = client.get("/curation/dataset/gold/reviewers/").content.decode()
    assert 'class="flagged" data-reviewer="gr1"' in html
    assert "<td>0.500</td><td>0.667</td>" in html
    # The adjudication page says whose votes the curated state leaves out.
    html = client.get(f"/curation/clip/{gset['x'].pk}/").content.decode()
    assert "Votes of gr1, gr4 are left out of the majority" in html


def test_make_gold_needs_adjudications_and_a_curator(gset):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(GoldError, match="no adjudicated labels"):
        gold_make_from_adjudications(clip=gset["x"], curator=gset["curator"])
    with pytest.raises(PermissionDenied):
        gold_make_from_adjudications(clip=gset["a"], curator=gset["users"][0])


def test_import_gold_errors_write_nothing(gset, tmp_path):
    bad = tmp_path / "bad.csv"
    for row, reason in [
        ('plainplainX, 0.000, 10.000, "/m/nope"', "line 4: unknown label '/m/nope'"),
        ('notindatase, 0.000, 10.000, "/m/09x0r"',
         "line 4: notindatase at 0.000 s is not a clip of dataset 'gold'"),
        ("plainplainX, zero, 10.000, /m/09x0r", "line 4: start/end are not numbers"),
    ]:
        bad.write_text(SEGMENTS + row + "\n")
        with pytest.raises(CommandError, match=reason + ".*\\nNothing was imported"):
            call_command("import_gold", str(bad), dataset="gold")
    assert not GoldClip.objects.filter(clip=gset["x"]).exists()


# --- serving ------------------------------------------------------------------------------


def _pick_and_finish(dataset, reviewer, rng):
    from review.finishing import clip_finish
    from review.queue import queue_next_clip

    clip = queue_next_clip(dataset=dataset, reviewer=reviewer, rng=rng)
    if clip is not None:
        clip_finish(clip=clip, reviewer=reviewer)
    return clip


def _dataset_with_gold(name: str, n_plain: int, n_gold: int, required_reviews: int):
    from relabel_app.models import Clip, Dataset

    ds = Dataset.objects.create(name=name, required_reviews=required_reviews,
                                review_priority="order")
    Clip.objects.bulk_create([
        Clip(dataset=ds, ytid=f"{name[:3]}{i:08d}", start_s=0.0, end_s=10.0, position=i)
        for i in range(n_plain + n_gold)])
    clips = list(Clip.objects.filter(dataset=ds).order_by("position"))
    golds = GoldClip.objects.bulk_create([
        GoldClip(dataset=ds, clip=c, source="imported", complete=True)
        for c in clips[n_plain:]])
    GoldLabel.objects.bulk_create([GoldLabel(gold=g, clip=g.clip, label=label("speech"),
                                             present=True) for g in golds])
    from review.queue import queue_sync

    queue_sync(dataset=ds)
    # Their ordinary slots are done (a gold clip was reviewed before it became gold), so
    # a gold clip reaches a reviewer only as a gold serve.
    QueueSlot.objects.filter(clip__in=clips[n_plain:]).update(
        done_by=UserFactory(username=f"{name}-done"))
    return ds, clips[:n_plain], clips[n_plain:]


def test_gold_is_never_served_twice():
    ds, plain, gold = _dataset_with_gold("gserve", n_plain=6, n_gold=3, required_reviews=1)
    ds.gold_rate = 1.0  # every pick would be gold while any is left
    ds.save()
    reviewer = UserFactory(username="gs-r")
    # This reviewer reviewed the third gold clip before: it is not served to them.
    ClipReview.objects.create(dataset=ds, clip=gold[2], reviewer=reviewer)
    served = [_pick_and_finish(ds, reviewer, random.random) for _ in range(6)]
    assert set(served[:2]) == set(gold[:2])
    assert served[2:] == plain[:4]  # then only ordinary clips
    assert GoldServe.objects.filter(reviewer=reviewer).count() == 2


def test_a_reload_gives_back_the_same_gold_clip():
    from review.queue import queue_next_clip

    ds, _, gold = _dataset_with_gold("greload", n_plain=3, n_gold=2, required_reviews=1)
    ds.gold_rate = 1.0
    ds.save()
    reviewer = UserFactory(username="gr-r")
    first = queue_next_clip(dataset=ds, reviewer=reviewer)
    assert first in gold
    ds.gold_rate = 0.0  # the current serve comes back whatever the dice say
    ds.save()
    assert queue_next_clip(dataset=ds, reviewer=reviewer) == first


@pytest.mark.slow
def test_gold_is_served_at_about_the_set_rate():
    """1,000 picks by four reviewers at 5 %: about 50 gold serves. The binomial standard
    deviation is sqrt(1000 * 0.05 * 0.95) = 6.9; 30..70 is about three of them either
    side. No reviewer gets a gold clip twice."""
    ds, _, gold = _dataset_with_gold("grate", n_plain=260, n_gold=60, required_reviews=4)
    assert ds.gold_rate == 0.05  # the default
    reviewers = [UserFactory(username=f"rate-r{i}") for i in range(4)]
    rng = random.Random(20261130).random
    gold_ids = {c.pk for c in gold}
    served_gold = 0
    for _ in range(250):
        for r in reviewers:
            clip = _pick_and_finish(ds, r, rng)
            assert clip is not None
            served_gold += clip.pk in gold_ids
    assert 30 <= served_gold <= 70, served_gold
    assert GoldServe.objects.count() == served_gold
    for r in reviewers:
        clips = list(GoldServe.objects.filter(reviewer=r).values_list("clip_id", flat=True))
        assert len(clips) == len(set(clips))
