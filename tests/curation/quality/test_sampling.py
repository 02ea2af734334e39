"""Creating a study: seeded and reproducible, uniform, a pair in two sources asked once and
credited to both, small classes whole, bad input refused with nothing written; answers
stored with the study and as ordinary decisions; the command."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from scipy.stats import chisquare

from curation.quality.answers import QuestionFull, quality_answers_record, quality_next_units
from curation.quality.models import QualityAnswer, QualityQuestion, QualityStratum, QualityStudy
from curation.quality.report import quality_report
from curation.quality.sampling import QualityError, quality_study_create
from pipeline.models import Candidate, PipelineRun
from relabel_app.models import Clip, ClipLabel, Dataset, Label
from review.models import Decision
from tests.factories import UserFactory

from .synthetic import build, oracle_answer

pytestmark = pytest.mark.django_db


def _pairs(study):
    return sorted(QualityQuestion.objects.filter(study=study).values_list("clip_id", "label_id"))


def test_seeded_and_reproducible():
    t = build(name="rep", sizes=[40, 12, 4], rates=[0.5, 0.5, 0.5], n_clips=60)
    a = quality_study_create(dataset=t.dataset, name="a", sources=["original"], recall_clips=5, seed=1)
    b = quality_study_create(dataset=t.dataset, name="b", sources=["original"], recall_clips=5, seed=1)
    c = quality_study_create(dataset=t.dataset, name="c", sources=["original"], recall_clips=5, seed=2)
    assert _pairs(a) == _pairs(b)
    assert _pairs(a) != _pairs(c)
    assert list(QualityQuestion.objects.filter(study=a).order_by("unit", "label_id")
                .values_list("clip_id", "label_id")) == \
        list(QualityQuestion.objects.filter(study=b).order_by("unit", "label_id")
             .values_list("clip_id", "label_id"))


def test_small_classes_taken_whole_and_strata_frozen():
    t = build(name="whole", sizes=[40, 12, 4], rates=[0.5, 0.5, 0.5], n_clips=60)
    s = quality_study_create(dataset=t.dataset, name="w", sources=["original"], recall_clips=0)
    strata = {st.label_id: (st.population, st.drawn) for st in QualityStratum.objects.filter(study=s)}
    assert strata == {t.labels[0].pk: (40, 10), t.labels[1].pk: (12, 10), t.labels[2].pk: (4, 4)}
    asked = Counter(lab for _, lab in _pairs(s))
    assert asked == {t.labels[0].pk: 10, t.labels[1].pk: 10, t.labels[2].pk: 4}
    rep = quality_report(s)
    whole = {r.label_id: r.whole for r in rep["classes"]}
    assert whole == {t.labels[0].pk: False, t.labels[1].pk: False, t.labels[2].pk: True}


def test_uniform_chi_square_on_a_large_seeded_draw():
    t = build(name="uni", sizes=[50], rates=[0.5], n_clips=50)
    counts = Counter()
    for seed in range(400):
        s = quality_study_create(dataset=t.dataset, name=f"u{seed}", sources=["original"],
                                 per_class=5, recall_clips=0, seed=seed)
        counts.update(c for c, _ in _pairs(s))
    observed = [counts[c] for c in sorted(p[0] for p in t.source_pairs["original"])]
    assert sum(observed) == 400 * 5
    assert chisquare(observed).pvalue > 0.001


def test_pair_in_two_sources_asked_once_and_credited_to_both():
    ds = Dataset.objects.create(name="two")
    clips = [Clip.objects.create(dataset=ds, ytid=f"t{i}", start_s=0, end_s=10, position=i)
             for i in range(3)]
    dog = Label.objects.get(mid="/m/0bt9lr")
    for c in clips:
        ClipLabel.objects.create(clip=c, label=dog)
    run = PipelineRun.objects.create(dataset=ds, kind="external", profile_name="x", status="done")
    for c in clips:
        Candidate.objects.create(run=run, clip=c, label=dog, tier="external", kept=True)
    s = quality_study_create(dataset=ds, name="s", sources=["original", f"run:{run.pk}"],
                             recall_clips=0)
    qs = list(QualityQuestion.objects.filter(study=s))
    assert len(qs) == 3 and all(q.drawn_in == [0, 1] for q in qs)
    rev = UserFactory(username="r1")
    quality_answers_record(study=s, reviewer=rev, answers=[(qs[0].pk, "accept"), (qs[1].pk, "reject"),
                                                           (qs[2].pk, "unsure")])
    rep = quality_report(s)
    rows = {r.source: (r.rated, r.true, r.unsure) for r in rep["classes"]}
    assert rows == {"original": (2, 1, 1), f"run:{run.pk}": (2, 1, 1)}


def test_answers_are_decisions_and_no_reviewer_twice():
    t = build(name="ans", sizes=[5], rates=[0.5], n_clips=10)
    s = quality_study_create(dataset=t.dataset, name="s", sources=["original"], recall_clips=0,
                             answers_per_question=2)
    q = QualityQuestion.objects.filter(study=s).first()
    r1, r2, r3 = (UserFactory(username=f"a{i}") for i in range(3))
    quality_answers_record(study=s, reviewer=r1, answers=[(q.pk, "accept")])
    quality_answers_record(study=s, reviewer=r1, answers=[(q.pk, "reject")])  # changed mind
    assert QualityAnswer.objects.filter(question=q).count() == 1
    assert Decision.objects.get(clip=q.clip, label=q.label, reviewer=r1).verdict == "reject"
    # r1 is not asked again; r2 is
    assert all(q.pk not in [x.pk for x in u.questions]
               for u in quality_next_units(study=s, reviewer=r1, limit=10))
    assert any(q.pk in [x.pk for x in u.questions]
               for u in quality_next_units(study=s, reviewer=r2, limit=10))
    quality_answers_record(study=s, reviewer=r2, answers=[(q.pk, "reject")])
    with pytest.raises(QuestionFull):
        quality_answers_record(study=s, reviewer=r3, answers=[(q.pk, "accept")])
    assert not any(q.pk in [x.pk for x in u.questions]
                   for u in quality_next_units(study=s, reviewer=r3, limit=10))


def test_recall_part_pools_sources_and_counts_added_classes():
    t = build(name="rec", sizes=[30, 20], rates=[0.8, 0.6], n_clips=40, missing_rate=0.5)
    s = quality_study_create(dataset=t.dataset, name="s", sources=["original"], recall_clips=40)
    oracle_answer(s, t, UserFactory(username="o"))
    rep = quality_report(s)
    # Every clip of the dataset is a recall clip here: recall is the truth exactly.
    assert rep["sources"][0]["recall"]["value"] == pytest.approx(t.recall("original"))
    missing = sum(len(v) for v in t.missing.values()) + sum(
        1 for p, ok in t.present.items() if ok and p not in t.source_pairs["original"])
    assert rep["sources"][0]["missing_per_clip"]["value"] == pytest.approx(missing / 40)


@pytest.mark.parametrize("kwargs,reason", [
    ({"sources": ["run:999999"]}, "no run 999999"),
    ({"sources": ["bogus"]}, "unknown source"),
    ({"per_class": 0}, "per_class must be at least 1"),
    ({"classes": ["/m/nothing"]}, "no trainable class left"),
])
def test_bad_input_creates_nothing(kwargs, reason):
    t = build(name="bad", sizes=[5], rates=[0.5], n_clips=10)
    args = {"dataset": t.dataset, "name": "x", "sources": ["original"], **kwargs}
    with pytest.raises(QualityError, match=reason):
        quality_study_create(**args)
    assert not QualityStudy.objects.exists() and not QualityQuestion.objects.exists()


def test_run_of_another_dataset_is_refused():
    t = build(name="mine", sizes=[5], rates=[0.5], n_clips=10)
    other = Dataset.objects.create(name="other")
    run = PipelineRun.objects.create(dataset=other, profile_name="x")
    with pytest.raises(CommandError, match="belongs to another dataset"):
        call_command("quality_study", "create", "--dataset", "mine", "--source", f"run:{run.pk}",
                     "--name", "x")
    assert not QualityStudy.objects.exists()
    assert t.dataset.pk


def test_command_create_report_list(tmp_path, capsys):
    t = build(name="cmd", sizes=[30, 8], rates=[0.9, 0.5], n_clips=40, run_of={0: (20, 0.7)})
    call_command("quality_study", "create", "--dataset", "cmd", "--source", "original",
                 "--source", f"run:{t.run.pk}", "--recall-clips", "10", "--seed", "3",
                 "--name", "first")
    s = QualityStudy.objects.get(name="first")
    oracle_answer(s, t, UserFactory(username="o"))
    full, qa = tmp_path / "full.csv", tmp_path / "qa.csv"
    call_command("quality_study", "report", "first", "--dataset", "cmd", "--csv", str(full),
                 "--qa-csv", str(qa), "--source", f"run:{t.run.pk}")
    out = capsys.readouterr().out
    assert "original: precision" in out and f"run:{t.run.pk} − original:" in out
    lines = qa.read_text().splitlines()
    assert lines[0] == "label_id,num_rated,num_true" and len(lines) == 2
    assert lines[1].startswith(t.labels[0].mid + ",10,")
    head, *rows = full.read_text().splitlines()
    assert head == "mid,source,rated,true,unsure,precision,low,high"
    assert len(rows) == 3
    call_command("quality_study", "list", "--dataset", "cmd")
    assert "first" in capsys.readouterr().out
    with pytest.raises(CommandError, match="no study named"):
        call_command("quality_study", "report", "nope", "--dataset", "cmd")
    with pytest.raises(CommandError, match="not one of the study's sources"):
        call_command("quality_study", "report", "first", "--dataset", "cmd", "--qa-csv",
                     str(qa), "--source", "curated")


def test_prefilter_falls_back_to_the_exact_sample(monkeypatch):
    from curation.quality import sampling

    t = build(name="fb", sizes=[300, 40, 6], rates=[0.5, 0.5, 0.5], n_clips=400)
    a = quality_study_create(dataset=t.dataset, name="a", sources=["original"], recall_clips=0, seed=9)
    monkeypatch.setattr(sampling, "_margin", lambda per_class: 0.5)  # every stratum falls short
    b = quality_study_create(dataset=t.dataset, name="b", sources=["original"], recall_clips=0, seed=9)
    assert _pairs(a) == _pairs(b)
    assert sorted(QualityStratum.objects.filter(study=b).values_list("population", "drawn")) == \
        [(6, 6), (40, 10), (300, 10)]
