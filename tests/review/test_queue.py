from datetime import timedelta

import pytest
from django.utils import timezone

from relabel_app.models import Clip, ClipLabel
from review.finishing import clip_finish
from review.models import ClipReview, QueueSlot, QueueState
from review.queue import queue_next_clip, queue_release, queue_sync
from tests.factories import UserFactory

from .conftest import add_result, label, make_dataset, make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def ds3(db):
    ds, clips = make_dataset("q3", n_clips=3, with_audio=False, review_priority="order")
    return ds, clips


def test_lease_is_exclusive_between_reviewers(ds3, reviewer, reviewer2):
    ds, clips = ds3
    a = queue_next_clip(dataset=ds, reviewer=reviewer)
    b = queue_next_clip(dataset=ds, reviewer=reviewer2)
    assert a == clips[0] and b == clips[1]
    # Asking again before finishing gives the same clip back (reload, double click).
    assert queue_next_clip(dataset=ds, reviewer=reviewer) == clips[0]
    assert QueueSlot.objects.filter(leased_to__isnull=False).count() == 2


def test_finished_clip_is_skipped_and_not_handed_out_again(ds3, reviewer, reviewer2):
    ds, clips = ds3
    first = queue_next_clip(dataset=ds, reviewer=reviewer)
    clip_finish(clip=first, reviewer=reviewer)
    assert queue_next_clip(dataset=ds, reviewer=reviewer) == clips[1]
    # k = 1: clip 0 is done for everybody.
    assert queue_next_clip(dataset=ds, reviewer=reviewer2) == clips[2]
    assert ClipReview.objects.filter(reviewer=reviewer).count() == 1
    assert QueueSlot.objects.get(clip=clips[0]).done_by == reviewer


def test_overlap_two_gives_the_same_clip_to_two_reviewers():
    ds, clips = make_dataset("q2", n_clips=2, with_audio=False, review_priority="order",
                             required_reviews=2)
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    assert queue_next_clip(dataset=ds, reviewer=a) == clips[0]
    assert queue_next_clip(dataset=ds, reviewer=b) == clips[0]
    # Two reviewers hold clip 0: the third gets the next clip.
    assert queue_next_clip(dataset=ds, reviewer=c) == clips[1]
    clip_finish(clip=clips[0], reviewer=a)
    clip_finish(clip=clips[0], reviewer=b)
    # a never gets clip 0 again, and neither does c (both of its reviews are done).
    assert queue_next_clip(dataset=ds, reviewer=a) == clips[1]
    clip_finish(clip=clips[1], reviewer=c)
    clip_finish(clip=clips[1], reviewer=a)
    assert queue_next_clip(dataset=ds, reviewer=c) is None
    assert queue_next_clip(dataset=ds, reviewer=b) is None


def test_expired_lease_frees_the_clip(ds3, reviewer, reviewer2):
    ds, clips = ds3
    assert queue_next_clip(dataset=ds, reviewer=reviewer) == clips[0]
    QueueSlot.objects.filter(clip=clips[0]).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert queue_next_clip(dataset=ds, reviewer=reviewer2) == clips[0]
    # The first reviewer lost it and moves on.
    assert queue_next_clip(dataset=ds, reviewer=reviewer) == clips[1]


def test_released_lease_frees_the_clip(ds3, reviewer, reviewer2):
    ds, clips = ds3
    queue_next_clip(dataset=ds, reviewer=reviewer)
    queue_release(clip=clips[0], reviewer=reviewer)
    assert queue_next_clip(dataset=ds, reviewer=reviewer2) == clips[0]


def test_finishing_a_clip_reached_outside_the_queue(ds3, reviewer, reviewer2):
    ds, clips = ds3
    queue_sync(dataset=ds)
    clip_finish(clip=clips[0], reviewer=reviewer)  # opened from a link, not leased
    clip_finish(clip=clips[0], reviewer=reviewer)  # idempotent
    assert ClipReview.objects.count() == 1
    assert queue_next_clip(dataset=ds, reviewer=reviewer2) == clips[1]


def test_dataset_order():
    ds, clips = make_dataset("qo", n_clips=3, with_audio=False, review_priority="order")
    # Reverse the positions: dataset order is position, not id.
    for pos, clip in zip((2, 1, 0), clips, strict=True):
        Clip.objects.filter(pk=clip.pk).update(position=pos)
    r = UserFactory()
    got = []
    while (c := queue_next_clip(dataset=ds, reviewer=r)) is not None:
        got.append(c)
        clip_finish(clip=c, reviewer=r)
    assert got == clips[::-1]


def test_random_order_visits_every_clip_once():
    ds, clips = make_dataset("qr", n_clips=6, with_audio=False, review_priority="random")
    r = UserFactory()
    got = []
    while (c := queue_next_clip(dataset=ds, reviewer=r)) is not None:
        got.append(c.pk)
        clip_finish(clip=c, reviewer=r)
    assert sorted(got) == sorted(c.pk for c in clips)
    ranks = QueueSlot.objects.filter(dataset=ds).values_list("rank_random", flat=True)
    assert len(set(ranks)) == 6


def test_uncertain_first():
    ds, clips = make_dataset("qu", n_clips=4, with_audio=False, review_priority="uncertain")
    run = make_run(ds, threshold=0.25)
    for c in clips:
        ClipLabel.objects.create(clip=c, label=label("dog"))
    # clip 0: confident and in agreement (Dog kept far above the threshold)
    add_result(run, clips[0], candidates=[("dog", 0.80, "exact", "dog")])
    # clip 1: Dog's score right at the threshold
    add_result(run, clips[1], candidates=[("dog", 0.26, "exact", "dog")])
    # clip 2: confident, but the models disagree with the original labels
    add_result(run, clips[2], candidates=[("siren", 0.80, "exact", "siren"),
                                          ("music", 0.85, "exact", "music")])
    # clip 3: not processed by the run: last
    r = UserFactory()
    got = []
    while (c := queue_next_clip(dataset=ds, reviewer=r)) is not None:
        got.append(c)
        clip_finish(clip=c, reviewer=r)
    assert got == [clips[1], clips[2], clips[0], clips[3]]


def test_sync_follows_new_clips_new_runs_and_overlap():
    ds, clips = make_dataset("qs", n_clips=2, with_audio=False, review_priority="uncertain")
    r = UserFactory()
    assert queue_next_clip(dataset=ds, reviewer=r) == clips[0]
    assert QueueSlot.objects.filter(dataset=ds).count() == 2
    assert queue_sync(dataset=ds) is False  # nothing changed: no work
    # A clip imported later joins the queue.
    new = Clip.objects.create(dataset=ds, ytid="newclipxxxx", start_s=0, end_s=10, position=5)
    assert queue_sync(dataset=ds) is True
    assert QueueSlot.objects.filter(clip=new).count() == 1
    # A finished run re-ranks: clip 1 becomes the most uncertain.
    run = make_run(ds)
    ClipLabel.objects.create(clip=clips[1], label=label("dog"))
    add_result(run, clips[1], candidates=[("dog", 0.25, "exact", "dog")])
    assert queue_sync(dataset=ds) is True
    assert QueueState.objects.get(dataset=ds).run == run
    clip_finish(clip=clips[0], reviewer=r)
    assert queue_next_clip(dataset=ds, reviewer=r) == clips[1]
    # Overlap raised to 2, then lowered back: open extra slots go, finished ones stay.
    ds.required_reviews = 2
    ds.save()
    queue_sync(dataset=ds)
    assert QueueSlot.objects.filter(dataset=ds).count() == 6
    ds.required_reviews = 1
    ds.save()
    queue_sync(dataset=ds)
    assert QueueSlot.objects.filter(dataset=ds).count() == 3


def test_empty_dataset_gives_none():
    ds, _ = make_dataset("qe", n_clips=0, with_audio=False)
    assert queue_next_clip(dataset=ds, reviewer=UserFactory()) is None


def test_pick_uses_the_open_slot_index(ds3, reviewer):
    """The pick must walk a partial index in priority order, not scan the table."""
    from django.db import connection

    from review.queue import queue_pick_sql

    ds, _ = ds3
    queue_sync(dataset=ds)
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        # On a three-slot table a sort is cheaper than any index walk, and the planner's
        # pick between the dataset index and the partial one then depends on statistics.
        # Disfavouring sorts asks the question this test is about: can the pick walk the
        # open-slot index in priority order (a Sort would still appear if it could not)?
        cur.execute("SET LOCAL enable_sort = off")
        cur.execute(
            "EXPLAIN " + queue_pick_sql("rank_order", lock=True),
            {"ds": ds.pk, "me": reviewer.pk, "now": timezone.now(), "exclude": 0},
        )
        plan = "\n".join(r[0] for r in cur.fetchall())
    print(plan)
    assert "queueslot_open_order" in plan
    # Ordered by the index itself: no sort of all open slots.
    assert "Sort" not in plan


def test_big_stale_queue_is_refreshed_in_the_background(monkeypatch,
                                                       django_capture_on_commit_callbacks):
    from review import queue, tasks

    ds, clips = make_dataset("qb", n_clips=3, with_audio=False, review_priority="order")
    r = UserFactory()
    assert queue_next_clip(dataset=ds, reviewer=r) == clips[0]  # first build: inline
    sent = []
    monkeypatch.setattr(queue, "INLINE_REFRESH_MAX_CLIPS", 2)
    monkeypatch.setattr(tasks.queue_sync_task, "delay", lambda ds_id: sent.append(ds_id))
    new = Clip.objects.create(dataset=ds, ytid="latecomerxx", start_s=0, end_s=10, position=9)
    with django_capture_on_commit_callbacks(execute=True):
        clip_finish(clip=clips[0], reviewer=r)
        assert queue_next_clip(dataset=ds, reviewer=r) == clips[1]  # from the stale slots
    assert sent == [ds.pk]
    assert not QueueSlot.objects.filter(clip=new).exists()
    # The task does the refresh (and a duplicate does nothing).
    assert tasks.queue_sync_task(ds.pk) is True
    assert tasks.queue_sync_task(ds.pk) is False
    assert QueueSlot.objects.filter(clip=new).exists()


def test_queue_sync_command():
    from io import StringIO

    from django.core.management import call_command

    ds, _ = make_dataset("qc", n_clips=2, with_audio=False)
    out = StringIO()
    call_command("review_queue_sync", "--dataset", "qc", stdout=out)
    call_command("review_queue_sync", "--dataset", "qc", stdout=out)
    assert "qc: refreshed" in out.getvalue() and "qc: already fresh" in out.getvalue()
    assert QueueSlot.objects.filter(dataset=ds).count() == 2
