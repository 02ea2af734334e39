"""Server side of review at expert speed: no-store on the clip page and its partials, CLAP
scores of original labels, the YouTube link only for real YouTube ids, "Add a label"
refusing abstract classes, the autoplay setting, the counters, rapid mode's order and its
finish step."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from review.decisions import decision_record
from review.models import ClipReview, Decision, ReviewerSettings
from review.queue import queue_next_clip
from review.selectors import clip_page_data, rapid_questions
from tests.factories import MIDS, UserFactory, label, make_dataset, make_run

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def _clip_url(clip) -> str:
    return reverse("review:clip", kwargs={"clip_id": clip.pk})


def test_clip_page_and_partials_are_never_cached(review_setup):
    user = UserFactory()
    clip = review_setup["clips"][0]
    c = _client(user)
    dog = label("dog")
    responses = {
        "page": c.get(_clip_url(clip)),
        "decide": c.post(reverse("review:decide", kwargs={"clip_id": clip.pk, "label_id": dog.pk}),
                         {"verdict": "reject"}, **HX),
        "undo": c.post(reverse("review:undo", kwargs={"clip_id": clip.pk, "label_id": dog.pk}), **HX),
        "search": c.get(reverse("review:label_search") + f"?q=dog&clip={clip.pk}", **HX),
        "add": c.post(reverse("review:label_add", kwargs={"clip_id": clip.pk}),
                      {"label": MIDS["siren"]}, **HX),
        "counters": c.get(reverse("review:counters", kwargs={"clip_id": clip.pk}), **HX),
        "rapid": c.get(reverse("review:rapid", kwargs={"clip_id": clip.pk})),
        "questions": c.get(reverse("review:rapid_questions", kwargs={"clip_id": clip.pk})),
    }
    for name, r in responses.items():
        assert r.status_code == 200, name
        assert "no-store" in r["Cache-Control"], name
    # The audio keeps its own caching (it never changes; the next clip's is preloaded).
    audio = c.get(reverse("review:clip_audio", kwargs={"clip_id": clip.pk}))
    assert "no-store" not in audio["Cache-Control"]


def test_original_labels_show_their_clap_score(review_setup):
    from pipeline.models import OriginalLabelScore

    clip, run = review_setup["clips"][0], review_setup["run"]
    user = UserFactory()
    OriginalLabelScore.objects.create(run=run, clip=clip, label=label("dog"), clap_score=0.083)
    # A score from another run is not the page's evidence.
    other = make_run(review_setup["dataset"])
    OriginalLabelScore.objects.create(run=other, clip=clip, label=label("dog"), clap_score=0.9)
    page = clip_page_data(clip=clip, reviewer=user)
    dog = next(r for r in page.rows if r.mid == MIDS["dog"])
    assert dog.is_original and dog.candidate is None and dog.clap_score == pytest.approx(0.083)
    html = _client(user).get(_clip_url(clip)).content.decode()
    row = html.split(f'data-mid="{MIDS["dog"]}"', 1)[1].split("</tr>", 1)[0]
    assert "0.083" in row and "CLAP score of the original label" in row
    assert 'aria-label="CLAP score 0.083 against threshold 0.25"' in row


def test_youtube_link_only_for_real_youtube_ids(db, audio_root):
    from relabel_app.models import Clip

    user = UserFactory()
    ds, clips = make_dataset("yt", audio_root, n_clips=1)
    html = _client(user).get(_clip_url(clips[0])).content.decode()
    assert "https://www.youtube.com/watch?v=clip0000000&amp;t=0" in html
    Clip.objects.filter(pk=clips[0].pk).update(ytid="not-a-yt-id-at-all")
    assert "the segment on YouTube" not in _client(user).get(_clip_url(clips[0])).content.decode()
    synth, sclips = make_dataset("synth", audio_root / "s", n_clips=1, synthetic=True)
    html = _client(user).get(_clip_url(sclips[0])).content.decode()
    assert "the segment on YouTube" not in html and "youtube" not in html.lower()


def test_add_label_refuses_an_abstract_class_and_names_its_children(review_setup):
    clip = review_setup["clips"][0]
    user = UserFactory()
    c = _client(user)
    url = reverse("review:label_add", kwargs={"clip_id": clip.pk})
    r = c.post(url, {"label": "/m/0dgw9r"}, **HX)  # Human sounds
    assert r.status_code == 200 and r["HX-Reswap"] == "none"
    event = json.loads(r["HX-Trigger"])["review:label-refused"]
    assert event["mid"] == "/m/0dgw9r"
    assert event["message"].startswith("Human sounds is an abstract class, so it cannot be a label.")
    assert "Whistling" in event["message"]
    r = c.post(url, {"label": "/m/0dgw9r"}, follow=True)  # without JavaScript
    assert "Human sounds is an abstract class" in r.content.decode()
    assert not Decision.objects.filter(label__mid="/m/0dgw9r").exists()
    # The search marks it and names what to add instead.
    html = c.get(reverse("review:label_search") + f"?q=human+sounds&clip={clip.pk}").content.decode()
    assert "abstract: cannot be added" in html and "Add instead: Whistling" in html
    # A trainable class is added as before.
    r = c.post(url, {"label": MIDS["siren"]}, **HX)
    assert Decision.objects.get(label__mid=MIDS["siren"], reviewer=user).verdict == "accept"


def test_autoplay_is_a_per_reviewer_setting(review_setup):
    clip = review_setup["clips"][0]
    rita, rob = UserFactory(), UserFactory()
    assert 'data-autoplay="1"' in _client(rita).get(_clip_url(clip)).content.decode()
    r = _client(rita).post(reverse("review:autoplay"), {"autoplay": "0", "next": _clip_url(clip)})
    assert r.status_code == 302 and r["Location"] == _clip_url(clip)
    assert ReviewerSettings.objects.get(user=rita).autoplay is False
    assert 'data-autoplay="0"' in _client(rita).get(_clip_url(clip)).content.decode()
    assert 'data-autoplay="1"' in _client(rob).get(_clip_url(clip)).content.decode()
    # Never a redirect off the site.
    r = _client(rita).post(reverse("review:autoplay"), {"autoplay": "1", "next": "https://evil.example/"})
    assert r["Location"] == reverse("review:home")


def test_counters(review_setup):
    from django.core.cache import cache

    cache.clear()  # a big dataset's count of open clips is reused (review.counters)
    ds, clips = review_setup["dataset"], review_setup["clips"]
    user = UserFactory()
    c = _client(user)
    r = c.post(reverse("review:start", kwargs={"dataset_id": ds.pk}))
    assert r["Location"] == _clip_url(clips[0])
    decision_record(clip=clips[0], label=label("dog"), reviewer=user, verdict="accept")
    c.post(reverse("review:next", kwargs={"clip_id": clips[0].pk}))
    html = c.get(reverse("review:counters", kwargs={"clip_id": clips[1].pk})).content.decode()
    # One clip finished this session, two clips still need review: this is clip 2 of 3.
    assert "clip <strong>2</strong> of 3" in html
    assert "2 clips still need review" in html
    assert "1 decision today" in html


def test_rapid_questions_order(review_setup):
    from pipeline.models import OriginalLabelScore
    from relabel_app.models import ClipLabel

    clip, run = review_setup["clips"][0], review_setup["run"]
    user = UserFactory()
    # Originals Dog (low score) and Speech (candidate 0.30, 0.05 from 0.25: near);
    # candidates Bark 0.41 (kept, not original), Music 0.12 (filtered, not original);
    # Siren original with a high score.
    ClipLabel.objects.create(clip=clip, label=label("siren"))
    OriginalLabelScore.objects.create(run=run, clip=clip, label=label("dog"), clap_score=0.05)
    OriginalLabelScore.objects.create(run=run, clip=clip, label=label("siren"), clap_score=0.6)
    qs = rapid_questions(page=clip_page_data(clip=clip, reviewer=user, with_outputs=False))
    assert [q.row.mid for q in qs] == [MIDS["speech"], MIDS["dog"], MIDS["bark"], MIDS["music"],
                                       MIDS["siren"]]
    assert [q.group for q in qs] == [0, 1, 2, 2, 3]
    # Decided labels are not asked again.
    decision_record(clip=clip, label=label("dog"), reviewer=user, verdict="reject")
    qs = rapid_questions(page=clip_page_data(clip=clip, reviewer=user, with_outputs=False))
    assert MIDS["dog"] not in [q.row.mid for q in qs] and len(qs) == 4


def test_rapid_next_finishes_only_a_fully_decided_clip(review_setup):
    ds, clips = review_setup["dataset"], review_setup["clips"]
    user = UserFactory()
    c = _client(user)
    r = c.post(reverse("review:rapid_start", kwargs={"dataset_id": ds.pk}))
    assert r["Location"] == reverse("review:rapid", kwargs={"clip_id": clips[0].pk})
    page = c.get(r["Location"]).content.decode()
    assert page.count("data-question ") == 4  # Dog, Speech, Bark, Music
    assert f'data-clip="{clips[0].pk}"' in page
    nxt = reverse("review:rapid_next", kwargs={"clip_id": clips[0].pk})
    r = c.post(nxt)
    assert r.status_code == 409 and r.json() == {"undecided": 4}
    assert not ClipReview.objects.exists()
    for key in ("dog", "speech", "bark", "music"):
        # The same endpoint as the full screen's buttons.
        c.post(reverse("review:decide", kwargs={"clip_id": clips[0].pk,
                                                "label_id": label(key).pk}), {"verdict": "accept"})
    r = c.post(nxt)
    assert r.status_code == 200
    body = r.json()
    assert body["clip"] == clips[1].pk
    assert body["url"] == reverse("review:rapid", kwargs={"clip_id": clips[1].pk})
    assert body["questions_url"] == reverse("review:rapid_questions",
                                            kwargs={"clip_id": clips[1].pk})
    assert body["next_questions_url"] == reverse("review:rapid_questions",
                                                 kwargs={"clip_id": clips[2].pk})
    assert ClipReview.objects.filter(clip=clips[0], reviewer=user).exists()
    assert queue_next_clip(dataset=ds, reviewer=user) == clips[1]  # leased to the reviewer
