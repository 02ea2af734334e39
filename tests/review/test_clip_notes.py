"""A note on a clip as a whole (issue 21): one per reviewer and clip, saved from the clip
page (htmx partial or plain form post), shown escaped to curators on the adjudication page."""

import pytest
from django.test import Client
from django.urls import reverse

from review.clip_notes import clip_note_save, clip_notes_list
from review.models import ClipNote
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def note_url(clip):
    return reverse("review:clip_note", kwargs={"clip_id": clip.pk})


def logged_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_note_saved_updated_in_place_and_removed(review_setup, reviewer):
    clip = review_setup["clips"][0]
    c = logged_in(reviewer)
    r = c.post(note_url(clip), {"note": "  two recordings overlap  "}, **HX)
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="clip-note-form"' in html and 'value="two recordings overlap"' in html
    assert "Note saved." in html
    # A second save (e.g. the outbox retrying) updates the one row.
    assert c.post(note_url(clip), {"note": "audio cut at 6 s"}, **HX).status_code == 200
    assert list(ClipNote.objects.values_list("clip_id", "reviewer_id", "text")) == [
        (clip.pk, reviewer.pk, "audio cut at 6 s")]
    # The clip page shows the reviewer's own note in the field.
    page = c.get(reverse("review:clip", kwargs={"clip_id": clip.pk})).content.decode()
    assert 'value="audio cut at 6 s"' in page and 'aria-keyshortcuts="c"' in page
    # Empty removes it.
    r = c.post(note_url(clip), {"note": "   "}, **HX)
    assert r.status_code == 200 and "Note removed." in r.content.decode()
    assert not ClipNote.objects.exists()


def test_plain_post_redirects_to_the_clip(review_setup, reviewer):
    clip = review_setup["clips"][1]
    r = logged_in(reviewer).post(note_url(clip), {"note": "siren far away, then close"})
    assert r.status_code == 302
    assert r["Location"] == reverse("review:clip", kwargs={"clip_id": clip.pk}) + "#clip-note-form"
    assert ClipNote.objects.get(clip=clip, reviewer=reviewer).text == "siren far away, then close"


def test_bad_input_is_refused_whole(review_setup, reviewer):
    clip = review_setup["clips"][0]
    c = logged_in(reviewer)
    r = c.post(note_url(clip), {"note": "x" * 2001}, **HX)
    assert r.status_code == 400 and "2000" in r.content.decode()
    assert c.post(reverse("review:clip_note", kwargs={"clip_id": 999999}), {"note": "a"}).status_code == 404
    assert c.get(note_url(clip)).status_code == 405
    assert not ClipNote.objects.exists()


def test_roles(review_setup):
    clip = review_setup["clips"][0]
    r = Client().post(note_url(clip), {"note": "a"})
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]
    assert logged_in(UserFactory(role="")).post(note_url(clip), {"note": "a"}).status_code == 403
    assert not ClipNote.objects.exists()


def test_curators_read_every_reviewers_note_escaped(review_setup, reviewer, reviewer2, curator):
    clip = review_setup["clips"][0]
    clip_note_save(clip=clip, reviewer=reviewer, text="<script>alert(1)</script> & hum")
    clip_note_save(clip=clip, reviewer=reviewer2, text="wind noise throughout")
    clip_note_save(clip=review_setup["clips"][1], reviewer=reviewer2, text="another clip")
    assert [n.text for n in clip_notes_list(clip=clip)] == [
        "<script>alert(1)</script> & hum", "wind noise throughout"]
    html = logged_in(curator).get(reverse("curation:clip", kwargs={"clip_id": clip.pk})).content.decode()
    assert "Reviewers&#x27; notes on this clip" in html or "Reviewers' notes on this clip" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; hum" in html
    assert "<script>alert(1)" not in html
    assert "<strong>rita</strong>" in html and "<strong>rob</strong>" in html
    assert "wind noise throughout" in html and "another clip" not in html
    # A reviewer cannot open the adjudication page.
    assert logged_in(reviewer).get(reverse("curation:clip", kwargs={"clip_id": clip.pk})).status_code == 403
