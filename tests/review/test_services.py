import pytest

from review.decisions import decision_categorize, decision_record, decision_undo
from review.models import Decision, DecisionLog, ErrorCategory

from .conftest import label

pytestmark = pytest.mark.django_db


def test_error_categories_and_role_groups_are_seeded():
    from django.contrib.auth.models import Group

    slugs = set(ErrorCategory.objects.values_list("slug", flat=True))
    assert {
        "fine-grained-confusion", "environmental-confusion", "acoustically-ambiguous",
        "original-label-wrong", "original-label-missing", "candidate-wrong", "too-generic",
        "no-fitting-class",
    } <= slugs
    assert {"reviewer", "curator", "admin"} <= set(Group.objects.values_list("name", flat=True))


def test_same_decision_twice_is_one_row_and_one_log_entry(review_setup, reviewer):
    clip = review_setup["clips"][0]
    d1 = decision_record(clip=clip, label=label("dog"), reviewer=reviewer, verdict="accept")
    d2 = decision_record(clip=clip, label=label("dog"), reviewer=reviewer, verdict="accept")
    assert d1.pk == d2.pk
    assert Decision.objects.count() == 1
    assert DecisionLog.objects.count() == 1


def test_two_reviewers_same_label_are_two_rows(review_setup, reviewer, reviewer2):
    clip = review_setup["clips"][0]
    decision_record(clip=clip, label=label("dog"), reviewer=reviewer, verdict="accept")
    decision_record(clip=clip, label=label("dog"), reviewer=reviewer2, verdict="reject")
    assert set(Decision.objects.values_list("reviewer__username", "verdict")) == {
        ("rita", "accept"), ("rob", "reject")
    }


def test_change_is_updated_in_place_and_logged(review_setup, reviewer):
    clip = review_setup["clips"][0]
    cat = ErrorCategory.objects.get(slug="original-label-wrong")
    d = decision_record(clip=clip, label=label("dog"), reviewer=reviewer, verdict="reject",
                        error_category=cat, note="no dog")
    same = decision_record(clip=clip, label=label("dog"), reviewer=reviewer, verdict="reject")
    assert (same.pk, same.error_category_id, same.note) == (d.pk, cat.pk, "no dog")
    changed = decision_record(clip=clip, label=label("dog"), reviewer=reviewer, verdict="accept")
    assert changed.pk == d.pk
    # The category described the old verdict; the note stays.
    assert (changed.verdict, changed.error_category_id, changed.note) == ("accept", None, "no dog")
    log = list(DecisionLog.objects.values_list("before_verdict", "after_verdict"))
    assert log == [("", "reject"), ("reject", "accept")]
    first = DecisionLog.objects.order_by("id").first()  # written with the decision itself
    assert (first.action, first.clip_id, first.label_id, first.reviewer_id) == (
        "record", clip.pk, label("dog").pk, reviewer.pk)
    assert (first.before_error_category_id, first.before_note) == (None, "")
    assert (first.after_error_category_id, first.after_note) == (cat.pk, "no dog")
    assert first.reverts_id is None and first.created_at is not None


def test_bad_verdict_writes_nothing(review_setup, reviewer):
    with pytest.raises(ValueError):
        decision_record(clip=review_setup["clips"][0], label=label("dog"), reviewer=reviewer,
                        verdict="maybe")
    assert not Decision.objects.exists() and not DecisionLog.objects.exists()


def test_undo_walks_back_through_history(review_setup, reviewer):
    clip, dog = review_setup["clips"][0], label("dog")
    cat = ErrorCategory.objects.get(slug="original-label-wrong")
    decision_record(clip=clip, label=dog, reviewer=reviewer, verdict="accept")
    decision_record(clip=clip, label=dog, reviewer=reviewer, verdict="reject")
    decision_categorize(clip=clip, label=dog, reviewer=reviewer, error_category=cat, note="n")

    d = decision_undo(clip=clip, label=dog, reviewer=reviewer)
    assert (d.verdict, d.error_category_id, d.note) == ("reject", None, "")
    d = decision_undo(clip=clip, label=dog, reviewer=reviewer)
    assert d.verdict == "accept"
    assert decision_undo(clip=clip, label=dog, reviewer=reviewer) is None
    assert not Decision.objects.exists()
    # Nothing left to undo: a no-op, nothing logged.
    assert decision_undo(clip=clip, label=dog, reviewer=reviewer) is None
    actions = list(DecisionLog.objects.values_list("action", flat=True))
    assert actions == ["record", "record", "categorize", "undo", "undo", "undo"]
    undos = DecisionLog.objects.filter(action="undo").order_by("id")
    assert [u.reverts.action for u in undos] == ["categorize", "record", "record"]

    # A new decision after undos, then undo: back to no decision again.
    decision_record(clip=clip, label=dog, reviewer=reviewer, verdict="unsure")
    assert decision_undo(clip=clip, label=dog, reviewer=reviewer) is None


def test_undo_after_undo_then_new_change(review_setup, reviewer):
    clip, dog = review_setup["clips"][0], label("dog")
    decision_record(clip=clip, label=dog, reviewer=reviewer, verdict="accept")
    decision_record(clip=clip, label=dog, reviewer=reviewer, verdict="reject")
    decision_undo(clip=clip, label=dog, reviewer=reviewer)  # -> accept
    decision_record(clip=clip, label=dog, reviewer=reviewer, verdict="unsure")
    assert decision_undo(clip=clip, label=dog, reviewer=reviewer).verdict == "accept"
    assert decision_undo(clip=clip, label=dog, reviewer=reviewer) is None


def test_undo_touches_only_this_reviewer(review_setup, reviewer, reviewer2):
    clip, dog = review_setup["clips"][0], label("dog")
    decision_record(clip=clip, label=dog, reviewer=reviewer, verdict="accept")
    decision_record(clip=clip, label=dog, reviewer=reviewer2, verdict="reject")
    decision_undo(clip=clip, label=dog, reviewer=reviewer)
    assert list(Decision.objects.values_list("reviewer__username", "verdict")) == [("rob", "reject")]


def test_categorize_needs_a_decision(review_setup, reviewer):
    with pytest.raises(Decision.DoesNotExist):
        decision_categorize(clip=review_setup["clips"][0], label=label("dog"), reviewer=reviewer,
                            error_category=None)
    assert not DecisionLog.objects.exists()


def test_log_is_append_only(review_setup, reviewer):
    decision_record(clip=review_setup["clips"][0], label=label("dog"), reviewer=reviewer,
                    verdict="accept")
    entry = DecisionLog.objects.get()
    entry.after_verdict = "reject"
    with pytest.raises(ValueError):
        entry.save()
