import re

import pytest
from django.test import Client
from django.urls import reverse

from relabel_app.models import Label
from review.decisions import decision_record
from review.models import ClipReview, Decision, DecisionLog, ErrorCategory
from review.queue import queue_next_clip
from tests.factories import UserFactory, add_result, label, make_dataset, make_run

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


def clip_url(clip):
    return reverse("review:clip", kwargs={"clip_id": clip.pk})


def decide_url(clip, lab):
    return reverse("review:decide", kwargs={"clip_id": clip.pk, "label_id": lab.pk})


def logged_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


# --- roles ------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(review_setup):
    clip = review_setup["clips"][0]
    c = Client()
    for url in (reverse("review:home"), clip_url(clip),
                reverse("review:clip_audio", kwargs={"clip_id": clip.pk}),
                reverse("review:label_search") + "?q=dog"):
        r = c.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/accounts/login/"), url
    r = c.post(decide_url(clip, label("dog")), {"verdict": "accept"})
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]
    assert not Decision.objects.exists()


def test_user_without_role_is_refused(review_setup):
    clip = review_setup["clips"][0]
    c = logged_in(UserFactory(role=""))
    assert c.get(reverse("review:home")).status_code == 403
    assert c.get(clip_url(clip)).status_code == 403
    assert c.post(decide_url(clip, label("dog")), {"verdict": "accept"}).status_code == 403
    assert not Decision.objects.exists()


def test_reviewer_reviews_but_cannot_adjudicate_or_manage(review_setup, reviewer):
    clip, ds = review_setup["clips"][0], review_setup["dataset"]
    c = logged_in(reviewer)
    assert c.get(reverse("review:home")).status_code == 200
    assert c.get(clip_url(clip)).status_code == 200
    assert c.get(reverse("review:clip_decisions", kwargs={"clip_id": clip.pk})).status_code == 403
    r = c.post(reverse("review:dataset_settings", kwargs={"dataset_id": ds.pk}),
               {f"ds{ds.pk}-review_priority": "random", f"ds{ds.pk}-required_reviews": 3})
    assert r.status_code == 403
    ds.refresh_from_db()
    assert (ds.review_priority, ds.required_reviews) == ("uncertain", 1)


@pytest.mark.parametrize("role", ["curator", "admin"])
def test_curator_adjudicates_and_manages(review_setup, reviewer, role):
    clip, ds = review_setup["clips"][0], review_setup["dataset"]
    decision_record(clip=clip, label=label("dog"), reviewer=reviewer, verdict="reject")
    c = logged_in(UserFactory(role=role))
    r = c.get(reverse("review:clip_decisions", kwargs={"clip_id": clip.pk}))
    assert r.status_code == 200 and b"rita" in r.content
    r = c.post(reverse("review:dataset_settings", kwargs={"dataset_id": ds.pk}),
               {f"ds{ds.pk}-review_priority": "random", f"ds{ds.pk}-required_reviews": 3})
    assert r.status_code == 302
    ds.refresh_from_db()
    assert (ds.review_priority, ds.required_reviews) == ("random", 3)
    home = c.get(reverse("review:home")).content.decode()
    assert "Review priority" in home  # the settings form


def test_roles_are_read_with_the_session_user_and_changes_apply_at_once(review_setup):
    from django.contrib.auth.models import Group

    from relabel_app.roles import RoleLoadingBackend

    user = UserFactory()
    Group.objects.get_or_create(name="curator")
    loaded = RoleLoadingBackend().get_user(user.pk)
    assert loaded._review_roles == frozenset({"reviewer"})
    c = logged_in(user)
    assert c.get(reverse("review:home")).status_code == 200
    user.groups.clear()  # taken off the project: refused on the very next request
    assert c.get(reverse("review:home")).status_code == 403
    user.groups.add(Group.objects.get(name="curator"))
    clip = review_setup["clips"][0]
    assert c.get(reverse("review:clip_decisions", kwargs={"clip_id": clip.pk})).status_code == 200
    user.is_active = False
    user.save()
    assert RoleLoadingBackend().get_user(user.pk) is None
    assert c.get(reverse("review:home")).status_code == 302  # logged out


def test_reviewers_do_not_see_each_others_decisions(review_setup, reviewer, reviewer2, curator):
    clip = review_setup["clips"][0]
    decision_record(clip=clip, label=label("dog"), reviewer=reviewer2, verdict="reject")
    decision_record(clip=clip, label=label("siren"), reviewer=reviewer2, verdict="accept")  # added
    page = logged_in(reviewer).get(clip_url(clip)).content.decode()
    dog_row = re.search(r'<tr id="label-\d+"[^>]*data-mid="/m/0bt9lr".*?</tr>', page, re.S).group(0)
    assert 'data-verdict=""' in dog_row and 'aria-pressed="true"' not in dog_row
    assert 'data-mid="/m/03kmc9"' not in page  # rob's added label is not shown to rita
    assert "All reviewers" not in page
    cur = logged_in(curator).get(clip_url(clip)).content.decode()
    assert 'data-mid="/m/03kmc9"' in cur
    assert "All reviewers" in cur and "✗ 1" in cur


# --- decisions through the views --------------------------------------------------------


def test_decide_returns_the_row_and_oob_flags(review_setup, reviewer):
    clip = review_setup["clips"][0]
    c = logged_in(reviewer)
    r = c.post(decide_url(clip, label("bark")), {"verdict": "accept"}, **HX)
    assert r.status_code == 200
    body = r.content.decode()
    assert body.lstrip().startswith("<tr") and 'data-mid="/m/05tny_"' in body
    assert re.search(r'aria-pressed="true"[^>]*>Accept<', body.replace("\n", " "))
    # Accepting Bark flags its ancestor Dog (an original label) out of band.
    dog_id = label("dog").pk
    assert f'id="flags-{dog_id}" hx-swap-oob="true"' in body
    oob = body.split(f'id="flags-{dog_id}"')[1].split("</td>")[0]
    assert "implied by accepted child" in oob
    assert "too generic?" not in oob  # AudioSet labels Dog on Bark's clips too
    d = Decision.objects.get()
    assert (d.reviewer, d.verdict, d.label.mid) == (reviewer, "accept", "/m/05tny_")


def test_decision_redraws_only_the_rows_it_can_change(review_setup, reviewer):
    """Out-of-band flags go to the decided label's ancestors on the page, no other row;
    undoing the decision clears the flags it set."""
    clip = review_setup["clips"][0]
    c = logged_in(reviewer)
    dog_id = label("dog").pk
    body = c.post(decide_url(clip, label("speech")), {"verdict": "accept"}, **HX).content.decode()
    assert body.lstrip().startswith("<tr") and 'data-mid="/m/09x0r"' in body
    assert "hx-swap-oob" not in body  # Speech is nobody's descendant on this page
    c.post(decide_url(clip, label("bark")), {"verdict": "accept"}, **HX)
    r = c.post(reverse("review:undo", kwargs={"clip_id": clip.pk, "label_id": label("bark").pk}),
               **HX)
    body = r.content.decode()
    oobs = re.findall(r'id="flags-(\d+)" hx-swap-oob="true"', body)
    assert oobs == [str(dog_id)]
    oob = body.split(f'id="flags-{dog_id}"')[1].split("</td>")[0]
    assert "implied" not in oob and "too generic?" not in oob
    assert 'data-verdict=""' in body.split("<template>")[0]  # Bark's row, undecided again


def test_decide_without_htmx_redirects_back(review_setup, reviewer):
    clip = review_setup["clips"][0]
    r = logged_in(reviewer).post(decide_url(clip, label("bark")), {"verdict": "reject"})
    assert r.status_code == 302 and r["Location"].startswith(clip_url(clip))


def test_same_decision_twice_through_the_view(review_setup, reviewer):
    clip, c = review_setup["clips"][0], logged_in(reviewer)
    for _ in range(2):
        assert c.post(decide_url(clip, label("dog")), {"verdict": "accept"}, **HX).status_code == 200
    assert Decision.objects.count() == 1 and DecisionLog.objects.count() == 1


def test_unknown_label_or_clip_is_404_and_writes_nothing(review_setup, reviewer):
    clip, c = review_setup["clips"][0], logged_in(reviewer)
    missing_label = Label.objects.order_by("-pk").first().pk + 1000
    r = c.post(reverse("review:decide", kwargs={"clip_id": clip.pk, "label_id": missing_label}),
               {"verdict": "accept"}, **HX)
    assert r.status_code == 404
    r = c.post(reverse("review:decide", kwargs={"clip_id": 10**9, "label_id": label("dog").pk}),
               {"verdict": "accept"}, **HX)
    assert r.status_code == 404
    r = c.post(reverse("review:label_add", kwargs={"clip_id": clip.pk}), {"label": "/m/nope"}, **HX)
    assert r.status_code == 404
    r = c.post(reverse("review:undo", kwargs={"clip_id": 10**9, "label_id": label("dog").pk}), **HX)
    assert r.status_code == 404
    assert c.post(decide_url(clip, label("dog")), {"verdict": "maybe"}, **HX).status_code == 400
    assert not Decision.objects.exists() and not DecisionLog.objects.exists()


def test_get_is_not_allowed_on_decisions(review_setup, reviewer):
    clip = review_setup["clips"][0]
    assert logged_in(reviewer).get(decide_url(clip, label("dog"))).status_code == 405


def test_csrf_is_enforced(review_setup, reviewer):
    clip = review_setup["clips"][0]
    c = Client(enforce_csrf_checks=True)
    c.force_login(reviewer)
    r = c.post(decide_url(clip, label("dog")), {"verdict": "accept"}, **HX)
    assert r.status_code == 403
    assert not Decision.objects.exists()
    # The page sets the token (and puts it in hx-headers); with it the post goes through.
    page = c.get(clip_url(clip)).content.decode()
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page).group(1)
    r = c.post(decide_url(clip, label("dog")), {"verdict": "accept"}, HTTP_X_CSRFTOKEN=token, **HX)
    assert r.status_code == 200
    assert Decision.objects.count() == 1


def test_undo_view_and_added_label_row_removed(review_setup, reviewer):
    clip, c = review_setup["clips"][0], logged_in(reviewer)
    siren = label("siren")
    r = c.post(reverse("review:label_add", kwargs={"clip_id": clip.pk}), {"label": siren.pk}, **HX)
    assert r.status_code == 200
    assert 'id="label-rows"' in r.content.decode() and "added by reviewer" in r.content.decode()
    assert Decision.objects.get().verdict == "accept"
    r = c.post(reverse("review:undo", kwargs={"clip_id": clip.pk, "label_id": siren.pk}), **HX)
    assert r.status_code == 200 and r["HX-Reswap"] == "delete"
    assert not Decision.objects.exists()


def test_add_by_mid(review_setup, reviewer):
    clip, c = review_setup["clips"][0], logged_in(reviewer)
    r = c.post(reverse("review:label_add", kwargs={"clip_id": clip.pk}), {"label": "/m/03kmc9"})
    assert r.status_code == 302
    assert Decision.objects.get().label.mid == "/m/03kmc9"


def test_error_category_view(review_setup, reviewer):
    clip, c = review_setup["clips"][0], logged_in(reviewer)
    dog = label("dog")
    url = reverse("review:category", kwargs={"clip_id": clip.pk, "label_id": dog.pk})
    cat = ErrorCategory.objects.get(slug="original-label-wrong")
    assert c.post(url, {"error_category": cat.pk}, **HX).status_code == 400  # no decision yet
    body = c.post(decide_url(clip, dog), {"verdict": "reject"}, **HX).content.decode()
    assert 'data-disagrees="1"' in body and "Error category…" in body
    r = c.post(url, {"error_category": cat.pk, "note": "a cat, not a dog"}, **HX)
    assert r.status_code == 200 and "Error: Original label wrong" in r.content.decode()
    d = Decision.objects.get()
    assert (d.error_category, d.note) == (cat, "a cat, not a dog")
    # Accepting an original label agrees with it: no category offered.
    body = c.post(decide_url(clip, dog), {"verdict": "accept"}, **HX).content.decode()
    assert 'data-disagrees="0"' in body and "Error category" not in body


def test_label_search(review_setup, reviewer):
    c = logged_in(reviewer)
    clip = review_setup["clips"][0]
    r = c.get(reverse("review:label_search"), {"q": "barkk", "clip": clip.pk}, **HX)
    assert r.status_code == 200 and 'data-mid="/m/05tny_"' in r.content.decode()
    r = c.get(reverse("review:label_search"), {"q": "acoustic env", "clip": clip.pk}, **HX)
    assert "abstract" in r.content.decode()


# --- queue through the views ------------------------------------------------------------


def test_start_and_next(review_setup, reviewer):
    ds, clips = review_setup["dataset"], review_setup["clips"]
    ds.review_priority = "order"
    ds.save()
    c = logged_in(reviewer)
    r = c.post(reverse("review:start", kwargs={"dataset_id": ds.pk}))
    assert r.status_code == 302 and r["Location"] == clip_url(clips[0])
    for i in (1, 2):
        r = c.post(reverse("review:next", kwargs={"clip_id": clips[i - 1].pk}))
        assert r["Location"] == clip_url(clips[i])
    r = c.post(reverse("review:next", kwargs={"clip_id": clips[2].pk}), follow=True)
    assert r.redirect_chain[-1][0] == reverse("review:home")
    assert "Thank you" in r.content.decode()
    assert ClipReview.objects.filter(reviewer=reviewer).count() == 3
    home = r.content.decode()
    assert "3 / 3" in home


def test_home_progress_bars(review_setup, reviewer, reviewer2):
    from review.finishing import clip_finish

    clips = review_setup["clips"]
    clip_finish(clip=clips[0], reviewer=reviewer)
    clip_finish(clip=clips[1], reviewer=reviewer2)
    page = logged_in(reviewer).get(reverse("review:home")).content.decode()
    assert "Start reviewing" in page
    assert 'aria-label="Clips done in demo" max="3" value="2"' in page  # clips done (k = 1)
    # A reviewer sees their own progress, not other reviewers' (issue 12).
    assert 'aria-label="Clips finished by rita"' in page and "rob" not in page


# --- the clip page ----------------------------------------------------------------------


def test_clip_page_shows_player_outputs_and_rows(review_setup, reviewer):
    clip = queue_next_clip(dataset=review_setup["dataset"], reviewer=reviewer)
    assert clip == review_setup["clips"][0]
    page = logged_in(reviewer).get(clip_url(clip)).content.decode()
    # The wavesurfer player over an <audio> without native controls (one clock).
    assert "data-player" in page and '<audio data-audio preload="auto"' in page
    assert "<audio controls" not in page and " controls " not in page.split("<audio", 1)[1].split(">")[0]
    assert "js/player.js" in page and 'type="module"' in page
    assert "These captions and labels come from random-weight test models (tiny profile) and mean nothing." in page
    assert "Caption attempt 2 of 2" in page and "Run #" in page
    assert "A dog barks twice" in page and "A calm male voice" in page
    for mid in ("/m/0bt9lr", "/m/09x0r", "/m/05tny_", "/m/04rlf"):
        assert f'data-mid="{mid}"' in page
    assert "Animal &gt; Domestic animals, pets &gt; Dog &gt; Bark" in page
    assert "candidate kept" in page and "candidate filtered" in page and "original" in page
    assert "0.410" in page and "(threshold 0.25)" in page
    for name in ("Accept", "Reject", "Unsure"):
        assert f">{name}</button>" in page
    assert 'hx-trigger="input changed delay:150ms, search"' in page
    # The next clip's audio is preloaded.
    nxt = reverse("review:clip_audio", kwargs={"clip_id": review_setup["clips"][1].pk})
    assert f'<link rel="prefetch" href="{nxt}">' in page


def test_clip_without_run_shows_original_labels_only(review_setup, reviewer):
    clip = review_setup["clips"][1]
    page = logged_in(reviewer).get(clip_url(clip)).content.decode()
    assert "No pipeline run has processed this clip yet" in page
    assert 'data-mid="/m/03kmc9"' in page and page.count('class="label-row') == 1


def test_clip_without_local_file_shows_youtube(db, reviewer):
    ds, clips = make_dataset("yt", n_clips=1, with_audio=False)
    page = logged_in(reviewer).get(clip_url(clips[0])).content.decode()
    assert "https://www.youtube-nocookie.com/embed/" in page and "<audio" not in page


def test_model_text_is_escaped(review_setup, reviewer):
    ds, clips = review_setup["dataset"], review_setup["clips"]
    run = make_run(ds)
    evil = "<script>alert(1)</script>"
    add_result(run, clips[2], answers={"round1": f"Noise {evil}", "round2": evil, "round3": evil},
               candidates=[("siren", 0.5, "llm", evil)], free_labels=[evil])
    decision_record(clip=clips[2], label=label("siren"), reviewer=reviewer, verdict="reject",
                    note=evil)
    page = logged_in(reviewer).get(clip_url(clips[2])).content.decode()
    assert evil not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5


def _clip_with_labels(dataset, run, n: int, position: int):
    """A clip with n labels: half original, half candidates of the run."""
    from relabel_app.models import Clip, ClipLabel

    clip = Clip.objects.create(dataset=dataset, ytid=f"many{n:07d}", start_s=position,
                               end_s=position + 10, position=position)
    labels = list(Label.objects.filter(index__isnull=False).order_by("index")[:n])
    originals, cands = labels[: n // 2], labels[n // 2:]
    for lab in originals:
        ClipLabel.objects.create(clip=clip, label=lab)
    add_result(run, clip, candidates=[(lab.mid, 0.2 + 0.01 * i, "exact", lab.name)
                                      for i, lab in enumerate(cands)])
    return clip, labels


@pytest.mark.parametrize("role", ["reviewer", "curator"])
def test_clip_page_query_count_is_constant(review_setup, django_assert_num_queries, role):
    ds, run = review_setup["dataset"], review_setup["run"]
    user = UserFactory(role=role)
    small, small_labels = _clip_with_labels(ds, run, 3, 100)
    big, big_labels = _clip_with_labels(ds, run, 30, 101)
    for lab in small_labels[:2]:
        decision_record(clip=small, label=lab, reviewer=user, verdict="accept")
    for lab in big_labels[:20]:
        decision_record(clip=big, label=lab, reviewer=user, verdict="reject")
    c = logged_in(user)
    c.get(clip_url(small))  # warm the process' ontology cache
    # session, user with its roles, clip, the rows (originals, candidates of the latest run, own
    # decisions and, for curators, every reviewer's counts: one statement), the captions,
    # error categories, next-clip peek, the reviewer's own note on the clip (issue 21).
    expected = 8
    with django_assert_num_queries(expected):
        r = c.get(clip_url(small))
    assert r.content.decode().count('class="label-row') == 3
    with django_assert_num_queries(expected):
        r = c.get(clip_url(big))
    assert r.content.decode().count('class="label-row') == 30


def test_decision_round_trip_query_count_is_constant(review_setup, reviewer, django_assert_num_queries):
    ds, run = review_setup["dataset"], review_setup["run"]
    small, small_labels = _clip_with_labels(ds, run, 3, 100)
    big, big_labels = _clip_with_labels(ds, run, 30, 101)
    c = logged_in(reviewer)
    c.get(clip_url(small))
    counts = []
    for clip, lab in ((small, small_labels[0]), (big, big_labels[0])):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert c.post(decide_url(clip, lab), {"verdict": "accept"}, **HX).status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def test_queue_lease_shared_by_start_view(review_setup, reviewer, reviewer2):
    ds = review_setup["dataset"]
    a = queue_next_clip(dataset=ds, reviewer=reviewer)
    r = logged_in(reviewer2).post(reverse("review:start", kwargs={"dataset_id": ds.pk}))
    assert r["Location"] != clip_url(a)
