"""'Your recent clips': the reviewer's last clips, newest first, with verdict counts."""

from __future__ import annotations

import pytest
from django.test import Client

from review.decisions import decision_record
from review.recent_clips import reviewer_recent_clips
from tests.factories import UserFactory, label, make_dataset

pytestmark = pytest.mark.django_db


def test_newest_first_with_counts_and_only_mine():
    ds, clips = make_dataset("recent", n_clips=3, with_audio=False)
    other_ds, other = make_dataset("elsewhere", n_clips=1, with_audio=False)
    me, you = UserFactory(username="me"), UserFactory(username="you")
    decision_record(clip=clips[0], label=label("dog"), reviewer=me, verdict="accept")
    decision_record(clip=clips[1], label=label("dog"), reviewer=me, verdict="reject")
    decision_record(clip=clips[1], label=label("bark"), reviewer=me, verdict="unsure")
    decision_record(clip=clips[1], label=label("music"), reviewer=me, verdict="accept")
    decision_record(clip=clips[2], label=label("dog"), reviewer=you, verdict="accept")
    decision_record(clip=other[0], label=label("dog"), reviewer=me, verdict="reject")
    # A later change on clip 0 makes it the newest.
    decision_record(clip=clips[0], label=label("music"), reviewer=me, verdict="reject")

    got = reviewer_recent_clips(reviewer=me, dataset_id=ds.pk)
    assert [(c.clip_id, c.accept, c.reject, c.unsure) for c in got] == [
        (clips[0].pk, 1, 1, 0), (clips[1].pk, 1, 1, 1)]
    assert len(reviewer_recent_clips(reviewer=me)) == 3
    assert [c.clip_id for c in reviewer_recent_clips(reviewer=me, limit=1)] == [clips[0].pk]

    c = Client()
    c.force_login(UserFactory(username="rev", role="reviewer"))
    assert "No decisions yet" in c.get(f"/clips/recent/?dataset={ds.pk}").content.decode()
    c.force_login(me)
    html = c.get(f"/clips/recent/?dataset={ds.pk}&mode=rapid").content.decode()
    assert html.index(clips[0].ytid) < html.index(clips[1].ytid)
    assert f"/rapid/clips/{clips[0].pk}/" in html and "✗ 1" in html
    assert c.get("/clips/recent/?dataset=x").status_code == 400
