"""Counters right at once (issue 21, item 6): after `n` on the full screen and in rapid
mode, "clip k of N" and "still need review" equal a fresh count from the database, with
the dataset-wide count cached or not, and with overlap (k = 2) and a second reviewer."""

from __future__ import annotations

import json
import re

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from review import counters as counters_module
from review.decisions import decision_record
from review.models import ClipReview, Decision, QueueSlot
from tests.factories import UserFactory, label, make_dataset

pytestmark = pytest.mark.django_db


def _fresh_still_needed(dataset, user) -> int:
    """The definition, straight from the tables: clips with an open slot that the user has
    not finished."""
    finished = ClipReview.objects.filter(reviewer=user, clip__dataset=dataset).values("clip_id")
    return (QueueSlot.objects.filter(dataset=dataset, done_by__isnull=True)
            .exclude(clip_id__in=finished).values("clip_id").distinct().count())


def _shown(html: str) -> tuple[int, int, int]:
    k, n = re.search(r"clip <strong>(\d+)</strong> of (\d+)", html).groups()
    still = re.search(r"(\d+) clips? still needs? review", html).group(1)
    return int(k), int(n), int(still)


def _decide_all(clip, user) -> None:
    from relabel_app.models import Label
    from review.selectors import clip_page_data

    for row in clip_page_data(clip=clip, reviewer=user, with_outputs=False).rows:
        if not row.verdict:
            decision_record(clip=clip, label=Label.objects.get(pk=row.label_id), reviewer=user, verdict="reject")


def _setup(audio_root, n_clips=6):
    from relabel_app.models import ClipLabel

    ds, clips = make_dataset("counted", audio_root, n_clips=n_clips, required_reviews=2)
    for c in clips:
        ClipLabel.objects.create(clip=c, label=label("dog"))
    return ds, clips


@pytest.mark.parametrize("cached", [False, True], ids=["exact", "cached-count"])
def test_full_screen_counters_after_next_equal_a_fresh_count(audio_root, monkeypatch, cached):
    from relabel_app.models import Clip

    cache.clear()
    if cached:  # the big-dataset path: the dataset-wide count is reused for 30 s
        monkeypatch.setattr(counters_module, "EXACT_BELOW", 0)
    ds, _ = _setup(audio_root)
    me, other = UserFactory(), UserFactory()
    c, o = Client(), Client()
    c.force_login(me)
    o.force_login(other)
    clip_id = int(c.post(reverse("review:start", kwargs={"dataset_id": ds.pk}))["Location"]
                  .rstrip("/").split("/")[-1])
    first = _shown(c.get(reverse("review:counters", kwargs={"clip_id": clip_id})).content.decode())
    assert first == (1, 6, 6) == (1, 6, _fresh_still_needed(ds, me))
    # The other reviewer finishes a clip too: with overlap 2 it still needs me.
    other_clip = int(o.post(reverse("review:start", kwargs={"dataset_id": ds.pk}))["Location"]
                     .rstrip("/").split("/")[-1])
    for step in range(1, 4):
        clip = Clip.objects.get(pk=clip_id)
        _decide_all(clip, me)
        r = c.post(reverse("review:next", kwargs={"clip_id": clip_id}))
        clip_id = int(r["Location"].rstrip("/").split("/")[-1])
        html = c.get(reverse("review:counters", kwargs={"clip_id": clip_id})).content.decode()
        k, n, still = _shown(html)
        assert still == _fresh_still_needed(ds, me) == 6 - step
        assert (k, n) == (step + 1, 6)  # N stays put while k counts up
        today = Decision.objects.filter(reviewer=me).count()
        assert f"{today} decision{'s' if today != 1 else ''} today" in html
    _decide_all(Clip.objects.get(pk=other_clip), other)
    o.post(reverse("review:next", kwargs={"clip_id": other_clip}))
    # The other reviewer's finish closes a slot, but each clip still has one for me.
    html = c.get(reverse("review:counters", kwargs={"clip_id": clip_id})).content.decode()
    assert _shown(html)[2] == _fresh_still_needed(ds, me) == 3


@pytest.mark.parametrize("cached", [False, True], ids=["exact", "cached-count"])
def test_rapid_next_answers_with_counters_equal_to_a_fresh_count(audio_root, monkeypatch,
                                                                 cached):
    from relabel_app.models import Clip

    cache.clear()
    if cached:
        monkeypatch.setattr(counters_module, "EXACT_BELOW", 0)
    ds, _ = _setup(audio_root, n_clips=4)
    ds.required_reviews = 1
    ds.save()
    me = UserFactory()
    c = Client()
    c.force_login(me)
    r = c.post(reverse("review:rapid_start", kwargs={"dataset_id": ds.pk}))
    clip_id = int(r["Location"].rstrip("/").split("/")[-1])
    # Warm the cache (if any) before the finish, as the page's first counters load does.
    assert _shown(c.get(reverse("review:counters", kwargs={"clip_id": clip_id}))
                  .content.decode()) == (1, 4, 4)
    for step in (1, 2, 3):
        _decide_all(Clip.objects.get(pk=clip_id), me)
        j = json.loads(c.post(reverse("review:rapid_next", kwargs={"clip_id": clip_id})).content)
        clip_id = j["clip"]
        assert _shown(j["counters_html"]) == (step + 1, 4, _fresh_still_needed(ds, me))
        assert _fresh_still_needed(ds, me) == 4 - step
        # The counters partial that rapid.js fetches says the same.
        html = c.get(reverse("review:counters", kwargs={"clip_id": clip_id})).content.decode()
        assert _shown(html) == (step + 1, 4, 4 - step)
