"""Real concurrency against PostgreSQL: several connections at once (threads), so these
tests commit (transactional_db) instead of running inside one rolled-back transaction."""



from relabel_app.models import Clip
from review.decisions import decision_record
from review.models import Decision, DecisionLog, QueueSlot
from review.queue import queue_next_clip, queue_sync
from tests.factories import UserFactory
from tests.threads import run_in_threads

from .conftest import label, make_dataset


def test_simultaneous_picks_never_share_a_clip(transactional_db):
    ds, clips = make_dataset("conc", n_clips=12, with_audio=False, review_priority="order")
    users = [UserFactory() for _ in range(8)]
    queue_sync(dataset=ds)
    got = run_in_threads(8, lambda i: queue_next_clip(dataset=ds, reviewer=users[i]).pk)
    assert len(set(got)) == 8
    assert QueueSlot.objects.filter(leased_to__isnull=False).count() == 8
    # Dataset order is kept: the 8 picked are the first 8 clips.
    assert set(got) == set(Clip.objects.filter(dataset=ds).order_by("position")
                           .values_list("pk", flat=True)[:8])


def test_simultaneous_picks_with_overlap_two(transactional_db):
    ds, clips = make_dataset("conc2", n_clips=4, with_audio=False, review_priority="order",
                             required_reviews=2)
    users = [UserFactory() for _ in range(6)]
    queue_sync(dataset=ds)
    got = run_in_threads(6, lambda i: queue_next_clip(dataset=ds, reviewer=users[i]).pk)
    # Each clip handed to at most two reviewers, and the first three clips are used.
    assert sorted(got.count(c.pk) for c in clips) == [0, 2, 2, 2]


def test_simultaneous_identical_decisions_make_one_row(transactional_db):
    ds, clips = make_dataset("conc3", n_clips=1, with_audio=False)
    user = UserFactory()
    dog = label("dog")
    run_in_threads(6, lambda i: decision_record(clip=clips[0], label=dog, reviewer=user,
                                                verdict="accept").pk)
    assert Decision.objects.count() == 1
    assert DecisionLog.objects.count() == 1


def test_two_reviewers_deciding_at_once_keep_both(transactional_db):
    ds, clips = make_dataset("conc4", n_clips=1, with_audio=False)
    users = [UserFactory(), UserFactory()]
    dog = label("dog")
    verdicts = ["accept", "reject"]
    run_in_threads(2, lambda i: decision_record(clip=clips[0], label=dog, reviewer=users[i],
                                                verdict=verdicts[i]).pk)
    assert sorted(Decision.objects.values_list("verdict", flat=True)) == verdicts
