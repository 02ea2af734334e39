"""The study pages: blindness of the study screen, the report, the CSV downloads, the
create form, the API and the home card."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from curation.quality.answers import quality_answers_record
from curation.quality.models import QualityQuestion, QualityStudy
from curation.quality.sampling import quality_study_create
from pipeline.models import Candidate, PipelineRun
from relabel_app.models import Clip, ClipLabel, Dataset, Label
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
DOG = "/m/0bt9lr"


@pytest.fixture
def two_sources():
    """clip 0 carries Dog as an original label, clip 1 as a kept candidate (CLAP 0.873)
    of a run; another reviewer already answered."""
    ds = Dataset.objects.create(name="blind")
    clips = [Clip.objects.create(dataset=ds, ytid=f"b{i}", start_s=0, end_s=10, position=i)
             for i in range(2)]
    dog = Label.objects.get(mid=DOG)
    ClipLabel.objects.create(clip=clips[0], label=dog)
    run = PipelineRun.objects.create(dataset=ds, kind="models", profile_name="tiny", status="done")
    Candidate.objects.create(run=run, clip=clips[1], label=dog, tier="exact", kept=True,
                             clap_score=0.873, phrase="a dog")
    study = quality_study_create(dataset=ds, name="s", sources=["original", f"run:{run.pk}"],
                                 recall_clips=0, answers_per_question=2)
    other = UserFactory(username="zelda-other")
    q0 = QualityQuestion.objects.get(study=study, clip=clips[0])
    quality_answers_record(study=study, reviewer=other, answers=[(q0.pk, "reject")])
    return {"study": study, "clips": clips, "run": run}


FORBIDDEN = ["original", "candidate", "curated", "run:", "clap", "0.873", "asked because",
             "zelda-other", "source"]


def test_study_screen_is_blind(client, two_sources):
    study, clips = two_sources["study"], two_sources["clips"]
    client.force_login(UserFactory(username="rev"))
    page = client.get(reverse("curation:quality_answer", args=[study.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    partial = client.get(reverse("curation:quality_units", args=[study.pk])).content.decode()
    body = html.split("<main", 1)[1]
    for text in (body, partial):
        low = text.lower()
        for word in FORBIDDEN:
            assert word not in low, word
        assert "b0" not in text and "b1" not in text  # no YouTube id either
    sections = re.findall(r'<section class="question card".*?</section>', partial, re.S)
    assert len(sections) == 2
    assert all(f'data-mid="{DOG}"' in s for s in sections)

    def normal(s: str) -> str:
        s = re.sub(r'data-(question|clip)="\d+"', r'data-\1="N"', s)
        return re.sub(r"/\d+/", "/N/", s)

    # The original label and the model's candidate render identically.
    assert normal(sections[0]) == normal(sections[1])
    assert clips  # both clips asked


def test_answer_endpoint_records_and_refuses_bad_verdict(client, two_sources):
    study = two_sources["study"]
    user = UserFactory(username="rev")
    client.force_login(user)
    q = QualityQuestion.objects.filter(study=study).first()
    url = reverse("curation:quality_answer_question", args=[study.pk, q.pk])
    assert client.post(url, {"verdict": "maybe"}).status_code == 400
    assert client.post(url, {"verdict": "accept"}).status_code == 200
    assert q.answers.get(reviewer=user).verdict == "accept"


def test_home_card_and_curator_only_report(client, two_sources):
    study = two_sources["study"]
    client.force_login(UserFactory(username="rev"))
    home = client.get("/").content.decode()
    assert "Answer quality study" in home
    assert reverse("curation:quality_answer", args=[study.pk]) in home
    assert client.get(reverse("curation:quality_report", args=["blind", study.pk])).status_code == 403


def test_report_csv_and_api(client, two_sources):
    study, run = two_sources["study"], two_sources["run"]
    client.force_login(UserFactory(username="cur", role="curator"))
    page = client.get(reverse("curation:quality_report", args=["blind", study.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "1 / 2" in html and "<svg" in html
    qa = client.get(reverse("curation:quality_csv", args=["blind", study.pk]),
                    {"source": f"run:{run.pk}"}).content.decode().splitlines()
    assert qa == ["label_id,num_rated,num_true", f"{DOG},0,0"]
    full = client.get(reverse("curation:quality_csv", args=["blind", study.pk])).content.decode()
    assert full.splitlines() == [
        "mid,source,rated,true,unsure,precision,low,high",
        f"{DOG},original,1,0,0,0.0000,0.0000,0.7935",
        f"{DOG},run:{run.pk},0,0,0,,,",
    ]
    assert client.get(reverse("curation:quality_csv", args=["blind", study.pk]),
                      {"source": "nope"}).status_code == 400
    api = client.get(f"/api/datasets/{study.dataset_id}/quality/{study.pk}/").json()
    assert api["progress"] == {"answered": 1, "total": 2, "recall_clips_done": 0}
    assert api["classes"][0]["rated"] == 1
    assert client.get(f"/api/datasets/{study.dataset_id}/quality/").json()["results"][0]["name"] == "s"


def test_create_form(client):
    ds = Dataset.objects.create(name="formds")
    c = Clip.objects.create(dataset=ds, ytid="f0", start_s=0, end_s=10)
    ClipLabel.objects.create(clip=c, label=Label.objects.get(mid=DOG))
    client.force_login(UserFactory(username="cur", role="curator"))
    url = reverse("curation:quality_studies", args=["formds"])
    assert client.get(url).status_code == 200
    bad = client.post(url, {"name": "s1", "sources": ["original"], "per_class": 10,
                            "recall_clips": 0, "answers_per_question": 1, "seed": 0,
                            "classes": "/m/not-a-class"})
    assert bad.status_code == 400 and "no trainable class left" in bad.content.decode()
    assert not QualityStudy.objects.exists()
    ok = client.post(url, {"name": "s1", "sources": ["original"], "per_class": 10,
                           "recall_clips": 0, "answers_per_question": 1, "seed": 0})
    assert ok.status_code == 302
    assert QualityStudy.objects.get().questions.count() == 1


def test_recall_clip_on_the_screen_add_a_class_and_finish(client):
    ds = Dataset.objects.create(name="recallds")
    clip = Clip.objects.create(dataset=ds, ytid="r0", start_s=0, end_s=10)
    ClipLabel.objects.create(clip=clip, label=Label.objects.get(mid=DOG))
    study = quality_study_create(dataset=ds, name="r", sources=["original"], recall_clips=1)
    user = UserFactory(username="rev")
    client.force_login(user)
    partial = client.get(reverse("curation:quality_units", args=[study.pk])).content.decode()
    assert "data-recall-card" in partial and f'data-mid="{DOG}"' in partial
    add = reverse("curation:quality_class_add", args=[study.pk, clip.pk])
    animal = Label.objects.get(mid="/m/09l8g")  # Human voice: abstract
    refused = client.post(add, {"label": animal.pk})
    assert refused.status_code == 400 and "abstract" in refused.content.decode()
    bark = Label.objects.get(mid="/m/05tny_")
    assert client.post(add, {"label": bark.pk}).status_code == 200
    added = QualityQuestion.objects.get(study=study, label=bark)
    assert added.recall and added.in_sources == [] and added.added_by == user
    assert added.answers.get().verdict == "accept"
    dog_q = QualityQuestion.objects.get(study=study, label__mid=DOG)
    client.post(reverse("curation:quality_answer_question", args=[study.pk, dog_q.pk]),
                {"verdict": "accept"})
    done = client.post(reverse("curation:quality_clip_done", args=[study.pk, clip.pk]),
                       HTTP_ACCEPT="application/json")
    assert done.status_code == 200
    partial = client.get(reverse("curation:quality_units", args=[study.pk])).content.decode()
    assert "data-unit" not in partial
    from curation.quality.report import quality_report
    rep = quality_report(study)
    # One clip, two true labels (Dog pooled, Bark added), the source has one.
    assert rep["sources"][0]["recall"]["value"] == 0.5
    assert rep["sources"][0]["missing_per_clip"]["value"] == 1.0


def test_only_chosen_answerers_may_answer(client):
    ds = Dataset.objects.create(name="chosen")
    c = Clip.objects.create(dataset=ds, ytid="c0", start_s=0, end_s=10)
    ClipLabel.objects.create(clip=c, label=Label.objects.get(mid=DOG))
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    study = quality_study_create(dataset=ds, name="c", sources=["original"], recall_clips=0,
                                 answerers=[alice])
    client.force_login(bob)
    assert "Answer quality study" not in client.get("/").content.decode()
    assert client.get(reverse("curation:quality_answer", args=[study.pk])).status_code == 403
    client.force_login(alice)
    assert "Answer quality study" in client.get("/").content.decode()
