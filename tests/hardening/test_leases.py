"""Issue 12 quirks: leases were advisory (an expired lease holder could finish a clip that
someone else held, leaving 2 finished reviews where 1 was required and the slot still
open), and 3 of 30 identical concurrent decision posts answered 201. Written as the
attacks, with real concurrent connections to PostgreSQL (threads, committed data)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from relabel_app.models import Clip, Label
from review.decisions import decision_record
from review.finishing import clip_finish
from review.models import ClipReview, Decision, DecisionLog, QueueSlot
from review.queue import queue_next_clip, queue_sync
from tests.factories import ClipFactory, DatasetFactory, UserFactory
from tests.threads import run_in_threads

pytestmark = pytest.mark.django_db(transaction=True)


def _dataset(name: str, n: int = 2, k: int = 1):
    ds = DatasetFactory(name=name, review_priority="order", required_reviews=k)
    clips = [ClipFactory(dataset=ds, position=i) for i in range(n)]
    queue_sync(dataset=ds)
    return ds, clips


def assert_consistent(ds) -> None:
    """Never more finished reviews than required, never an open slot for a clip that has
    them all, and every finished review is the one closed slot it points at."""
    k = ds.required_reviews
    for clip in Clip.objects.filter(dataset=ds).annotate(
        n=Count("reviews", distinct=True),
        open=Count("queue_slots", filter=Q(queue_slots__done_by__isnull=True), distinct=True),
    ):
        assert clip.n <= k, (clip.pk, clip.n)
        assert clip.n + clip.open == k, (clip.pk, clip.n, clip.open)
    for r in ClipReview.objects.filter(dataset=ds).select_related("slot"):
        assert r.slot is not None and r.slot.done_by_id == r.reviewer_id


def _expire(clip) -> None:
    QueueSlot.objects.filter(clip=clip).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1))


@pytest.mark.parametrize("late_first", [True, False])
def test_expired_lease_holder_cannot_finish_a_clip_someone_else_holds(late_first):
    ds, clips = _dataset(f"lease{int(late_first)}")
    alice, bob = UserFactory(role="reviewer"), UserFactory(role="reviewer")
    assert queue_next_clip(dataset=ds, reviewer=alice) == clips[0]
    _expire(clips[0])
    assert queue_next_clip(dataset=ds, reviewer=bob) == clips[0]  # bob holds it now
    dog = Label.objects.get(mid="/m/0bt9lr")
    decision_record(clip=clips[0], label=dog, reviewer=alice, verdict="reject")

    if late_first:
        assert clip_finish(clip=clips[0], reviewer=alice) is None
        assert clip_finish(clip=clips[0], reviewer=bob) is not None
    else:
        assert clip_finish(clip=clips[0], reviewer=bob) is not None
        assert clip_finish(clip=clips[0], reviewer=alice) is None

    # Alice's verdict is kept as a decision; the clip counts once, by the lease holder.
    assert Decision.objects.filter(clip=clips[0], reviewer=alice, verdict="reject").exists()
    assert list(ClipReview.objects.filter(clip=clips[0]).values_list("reviewer", flat=True)) \
        == [bob.pk]
    assert QueueSlot.objects.get(clip=clips[0]).done_by == bob
    assert_consistent(ds)
    # Alice is handed the next clip, not the finished one.
    assert queue_next_clip(dataset=ds, reviewer=alice) == clips[1]


def test_own_expired_lease_on_a_slot_nobody_took_still_finishes():
    ds, clips = _dataset("leaseown")
    alice = UserFactory(role="reviewer")
    queue_next_clip(dataset=ds, reviewer=alice)
    _expire(clips[0])
    assert clip_finish(clip=clips[0], reviewer=alice) is not None
    assert_consistent(ds)


@pytest.mark.parametrize("k", [1, 2])
def test_many_reviewers_finishing_one_clip_at_once_count_k(k):
    """Eight reviewers who opened the clip from a link (no lease) press "next" at once."""
    ds, clips = _dataset(f"leaserace{k}", n=1, k=k)
    users = [UserFactory(role="reviewer") for _ in range(8)]
    got = run_in_threads(8, lambda i: clip_finish(clip=clips[0], reviewer=users[i]))
    assert sum(r is not None for r in got) == k
    assert ClipReview.objects.filter(clip=clips[0]).count() == k
    assert not QueueSlot.objects.filter(clip=clips[0], done_by__isnull=True).exists()
    assert_consistent(ds)


def test_live_holder_and_expired_holder_finishing_at_once():
    for attempt in range(5):
        ds, clips = _dataset(f"leaseboth{attempt}", n=1)
        alice, bob = UserFactory(role="reviewer"), UserFactory(role="reviewer")
        queue_next_clip(dataset=ds, reviewer=alice)
        _expire(clips[0])
        queue_next_clip(dataset=ds, reviewer=bob)
        who = [alice, bob]
        got = run_in_threads(2, lambda i, c=clips[0], w=who: clip_finish(clip=c, reviewer=w[i]))
        assert got[0] is None and got[1] is not None
        assert_consistent(ds)


def test_thirty_identical_concurrent_decision_posts_answer_one_201():
    ds, clips = _dataset("leaseapi", n=1)
    rita = UserFactory(role="reviewer")
    speech = Label.objects.get(mid="/m/09x0r")
    body = {"clip": clips[0].pk, "label": speech.pk, "verdict": "accept", "note": "same"}

    def post(i):
        c = APIClient()
        c.force_authenticate(rita)
        return c.post("/api/decisions/", body, format="json").status_code

    codes = run_in_threads(30, post)
    assert sorted(codes) == [200] * 29 + [201]
    assert Decision.objects.filter(reviewer=rita).count() == 1
    assert DecisionLog.objects.filter(reviewer=rita).count() == 1


def test_next_button_says_when_the_clip_did_not_count(client):
    ds, clips = _dataset("leaseview")
    alice, bob = UserFactory(role="reviewer"), UserFactory(role="reviewer")
    queue_next_clip(dataset=ds, reviewer=alice)
    _expire(clips[0])
    queue_next_clip(dataset=ds, reviewer=bob)
    client.force_login(alice)
    r = client.post(reverse("review:next", kwargs={"clip_id": clips[0].pk}), follow=True)
    assert r.status_code == 200
    assert "did not count as finished by you" in r.content.decode()
    assert not ClipReview.objects.filter(reviewer=alice).exists()
