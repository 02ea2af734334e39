import pytest

from pipeline.models import Candidate
from relabel_app.label_info import ontology, ontology_clear
from relabel_app.models import Label
from review.decisions import decision_record
from review.label_search import label_search
from review.selectors import clip_page_data

from .conftest import add_result, label, make_run

pytestmark = pytest.mark.django_db


def rows_by_mid(page):
    return {r.mid: r for r in page.rows}


def flags(row):
    return {f.code for f in row.flags}


def test_ontology_paths_and_ancestors():
    ontology_clear()
    onto = ontology()
    assert len(onto.by_id) == 632
    bark = onto.by_mid["/m/05tny_"]
    assert bark.path == "Animal > Domestic animals, pets > Dog > Bark"
    assert {onto.by_id[i].name for i in bark.ancestor_ids} == {
        "Animal", "Domestic animals, pets", "Dog"
    }
    # A class with several parents has several paths, shortest first.
    multi = [i for i in onto.by_id.values() if len(i.paths) > 1]
    assert multi and all(len(i.paths[0]) <= len(i.paths[-1]) for i in multi)


def test_rows_are_the_union_of_sources(review_setup, reviewer):
    clip, run = review_setup["clips"][0], review_setup["run"]
    # An unselected attempt's candidate and an older run's candidate are not shown.
    Candidate.objects.create(run=run, clip=clip, label=label("siren"), attempt=1, tier="exact",
                             clap_score=0.9, kept=True, selected=False)
    decision_record(clip=clip, label=label("animal"), reviewer=reviewer, verdict="accept")
    page = clip_page_data(clip=clip, reviewer=reviewer)
    rows = rows_by_mid(page)
    assert set(rows) == {"/m/0bt9lr", "/m/09x0r", "/m/05tny_", "/m/04rlf", "/m/0jbk"}
    assert rows["/m/0bt9lr"].is_original and rows["/m/0bt9lr"].candidate is None
    assert rows["/m/09x0r"].is_original and rows["/m/09x0r"].kept
    assert rows["/m/05tny_"].kept and rows["/m/05tny_"].candidate.phrase == "dog barking"
    assert not rows["/m/04rlf"].kept and rows["/m/04rlf"].candidate.clap_score == 0.12
    assert rows["/m/0jbk"].added
    # Order: originals, kept candidates, filtered candidates, added labels.
    assert [r.mid for r in page.rows][-2:] == ["/m/04rlf", "/m/0jbk"]
    assert page.outputs.threshold == 0.25 and page.outputs.random_weights
    assert [r.title for r in page.outputs.chosen.rounds] == ["Description", "Speech", "Music"]
    assert page.outputs.attempt_count == 2 and page.outputs.chosen.number == 2


def test_latest_run_wins(review_setup, reviewer):
    ds, clip = review_setup["dataset"], review_setup["clips"][0]
    newer = make_run(ds, profile="paper", random_weights=False, threshold=0.3)
    add_result(newer, clip, candidates=[("siren", 0.5, "synonym", "wailing")])
    page = clip_page_data(clip=clip, reviewer=reviewer)
    assert page.outputs.run == newer and not page.outputs.random_weights
    assert "/m/05tny_" not in rows_by_mid(page)
    assert rows_by_mid(page)["/m/03kmc9"].candidate.tier == "synonym"


def test_model_run_beats_a_newer_external_label_set(review_setup, reviewer):
    from pipeline.models import PipelineRun

    ds, clip = review_setup["dataset"], review_setup["clips"][0]
    external = make_run(ds, profile="labelset", threshold=0.9)
    PipelineRun.objects.filter(pk=external.pk).update(kind=PipelineRun.Kind.EXTERNAL)
    add_result(external, clip, candidates=[("siren", 0.95, "external", "siren")])
    page = clip_page_data(clip=clip, reviewer=reviewer)
    assert page.outputs.run == review_setup["run"] and page.threshold == 0.25
    assert "/m/03kmc9" not in rows_by_mid(page)
    # The rows-only form (after a decision) picks the same run and threshold.
    lean = clip_page_data(clip=clip, reviewer=reviewer, with_outputs=False)
    assert lean.outputs is None and lean.categories == [] and lean.threshold == 0.25
    assert [r.mid for r in lean.rows] == [r.mid for r in page.rows]


def test_rows_carry_decisions_categories_and_counts(review_setup, reviewer, reviewer2):
    from review.models import ErrorCategory

    clip = review_setup["clips"][0]
    cat = ErrorCategory.objects.filter(active=True).first()
    decision_record(clip=clip, label=label("dog"), reviewer=reviewer, verdict="reject",
                    error_category=cat, note="no dog <b>here</b>")
    decision_record(clip=clip, label=label("dog"), reviewer=reviewer2, verdict="accept")
    decision_record(clip=clip, label=label("bark"), reviewer=reviewer2, verdict="reject")
    page = clip_page_data(clip=clip, reviewer=reviewer, show_all=True)
    dog = rows_by_mid(page)["/m/0bt9lr"]
    assert dog.verdict == "reject" and dog.decision.note == "no dog <b>here</b>"
    assert dog.decision.error_category.name == cat.name and dog.decision.error_category_id == cat.pk
    assert dog.decision.created_at.tzinfo is not None
    assert dog.counts == {"accept": 1, "reject": 1, "unsure": 0}
    assert rows_by_mid(page)["/m/05tny_"].counts == {"accept": 0, "reject": 1, "unsure": 0}
    assert rows_by_mid(page)["/m/05tny_"].decision is None  # reviewer2's, not this reviewer's
    assert clip_page_data(clip=clip, reviewer=reviewer).rows[0].counts is None


def test_hierarchy_flags(review_setup, reviewer):
    clip = review_setup["clips"][0]
    decision_record(clip=clip, label=label("bark"), reviewer=reviewer, verdict="accept")
    rows = rows_by_mid(clip_page_data(clip=clip, reviewer=reviewer))
    dog = rows["/m/0bt9lr"]
    assert flags(dog) >= {"implied", "too-generic"} and dog.implied_by == ["Bark"]
    assert not flags(rows["/m/05tny_"]) & {"implied", "too-generic", "contradiction"}
    # Rejecting the ancestor of an accepted label is a contradiction.
    decision_record(clip=clip, label=label("dog"), reviewer=reviewer, verdict="reject")
    page = clip_page_data(clip=clip, reviewer=reviewer)
    assert "contradiction" in flags(rows_by_mid(page)["/m/0bt9lr"])
    assert page.contradictions == 1
    # Accepting both parent and child: the parent is "too generic?".
    decision_record(clip=clip, label=label("dog"), reviewer=reviewer, verdict="accept")
    assert "too-generic" in flags(rows_by_mid(clip_page_data(clip=clip, reviewer=reviewer))["/m/0bt9lr"])


def test_hierarchy_flags_are_per_reviewer(review_setup, reviewer, reviewer2):
    clip = review_setup["clips"][0]
    decision_record(clip=clip, label=label("bark"), reviewer=reviewer2, verdict="accept")
    rows = rows_by_mid(clip_page_data(clip=clip, reviewer=reviewer))
    assert not flags(rows["/m/0bt9lr"]) & {"implied", "too-generic"}


def test_blacklisted_and_abstract_flags(review_setup, reviewer):
    clip = review_setup["clips"][0]
    black = Label.objects.filter(blacklisted=True).first()
    abstract = Label.objects.filter(abstract=True).first()
    for lab in (black, abstract):
        decision_record(clip=clip, label=lab, reviewer=reviewer, verdict="unsure")
    rows = rows_by_mid(clip_page_data(clip=clip, reviewer=reviewer))
    assert "blacklisted" in flags(rows[black.mid])
    assert "abstract" in flags(rows[abstract.mid])


def test_disagreement_offers_error_categories(review_setup, reviewer):
    clip = review_setup["clips"][0]
    for key, verdict in (("dog", "reject"), ("speech", "accept"), ("bark", "accept"),
                         ("music", "reject")):
        decision_record(clip=clip, label=label(key), reviewer=reviewer, verdict=verdict)
    rows = rows_by_mid(clip_page_data(clip=clip, reviewer=reviewer))
    assert rows["/m/0bt9lr"].disagrees        # original rejected
    assert not rows["/m/09x0r"].disagrees     # original accepted
    assert rows["/m/05tny_"].disagrees        # non-original accepted
    assert not rows["/m/04rlf"].disagrees     # filtered candidate rejected: agrees


def test_search_prefix_fuzzy_description_and_abstract():
    names = lambda q: [h.info.name for h in label_search(query=q)]  # noqa: E731
    assert names("Dog")[0] == "Dog"
    assert names("guit")[0] == "Guitar"
    assert "Speech" in names("speach")[:3]
    assert names("/m/05tny_") == ["Bark"]
    hits = label_search(query="woof")
    assert any(h.how == "description" for h in hits)
    env = label_search(query="Acoustic environment")[0]
    assert env.info.abstract
    assert label_search(query="   ") == []
