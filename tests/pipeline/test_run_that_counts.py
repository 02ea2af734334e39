"""One rule for the run that counts (pipeline.selectors), used by the review page, the
curated state (the adjudication page, audits) and the API. Before, the review page took
the latest run of any status with a result for the clip (models first), curation the
latest model run of the dataset (never an external set, whatever its status), and the API
had no rule at all. Each case below is one where those rules picked different runs."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from curation.resolution import default_run
from pipeline.models import Candidate, ClipResult, PipelineRun
from pipeline.selectors import run_that_counts, run_that_counts_for_clip
from relabel_app.models import Label
from tests.factories import ClipFactory, DatasetFactory, UserFactory

pytestmark = pytest.mark.django_db

MODELS, EXTERNAL = PipelineRun.Kind.MODELS, PipelineRun.Kind.EXTERNAL
S = PipelineRun.Status


@pytest.fixture
def world():
    ds = DatasetFactory(name="counts")
    clips = [ClipFactory(dataset=ds, ytid=f"yt{i:09d}", position=i) for i in range(2)]
    labels = list(Label.objects.filter(index__isnull=False).order_by("index")[:6])
    return ds, clips, labels


_age = iter(range(1000, 0, -1))


def make_run(ds, clips, label, *, kind=MODELS, status=S.DONE, started=True):
    """A run over `clips` proposing `label` (kept) for each; later calls are newer runs."""
    now = timezone.now() - timedelta(minutes=next(_age))
    run = PipelineRun.objects.create(
        dataset=ds, kind=kind, profile_name=f"{kind}-{label.mid}", status=status,
        started_at=now if started else None, config={"filter": {"threshold": 0.2}})
    PipelineRun.objects.filter(pk=run.pk).update(created_at=now)
    for clip in clips:
        ClipResult.objects.create(run=run, clip=clip, filter_status="done")
        Candidate.objects.create(run=run, clip=clip, label=label, tier="exact",
                                 clap_score=0.5, kept=True)
    return run


def picked(clip):
    """The run each part of the project uses for this clip (and its dataset)."""
    curator = UserFactory(username="cur", role="curator")
    c = Client()
    c.force_login(curator)
    review = c.get(reverse("review:clip", kwargs={"clip_id": clip.pk}))
    assert review.status_code == 200
    page = review.context["page"]
    candidate_runs = {r.candidate.run_id for r in page.rows if r.candidate}
    curation = c.get(reverse("curation:clip", kwargs={"clip_id": clip.pk}))
    assert curation.status_code == 200
    curated_candidates = {s.label.pk for s in curation.context["states"] if s.is_candidate}
    api_clip = c.get(f"/api/clips/{clip.pk}/").json()
    api_ds = c.get(f"/api/datasets/{clip.dataset_id}/").json()
    return {
        "review": page.outputs.run.pk if page.outputs else None,
        "review candidates": candidate_runs,
        "curation": curation.context["run"].pk if curation.context["run"] else None,
        "curated candidates": curated_candidates,
        "api": api_clip["run_that_counts"],
        "api dataset": api_ds["run_that_counts"],
        "default_run": getattr(default_run(clip.dataset), "pk", None),
    }


def same_run(clip, run, label):
    return {"review": run.pk, "review candidates": {run.pk}, "curation": run.pk,
            "curated candidates": {label.pk}, "api": run.pk,
            "api dataset": getattr(run_that_counts(dataset=clip.dataset), "pk", None),
            "default_run": getattr(run_that_counts(dataset=clip.dataset), "pk", None)}


def test_an_external_set_counts_when_no_model_run_does(world):
    # Before: review showed the external set, curation showed nothing (no model run).
    ds, clips, labels = world
    ext = make_run(ds, clips, labels[0], kind=EXTERNAL)
    assert picked(clips[0]) == same_run(clips[0], ext, labels[0])
    assert run_that_counts(dataset=ds) == ext


def test_cancelled_and_never_started_runs_do_not_count(world):
    # Before: review and curation both took the newest run, cancelled or never dispatched,
    # while the API named none.
    ds, clips, labels = world
    done = make_run(ds, clips, labels[0])
    make_run(ds, clips, labels[1], status=S.CANCELLED)
    make_run(ds, clips, labels[2], status=S.PENDING, started=False)
    assert picked(clips[0]) == same_run(clips[0], done, labels[0])


def test_a_running_or_continued_run_counts_over_an_older_finished_one(world):
    ds, clips, labels = world
    make_run(ds, clips, labels[0])
    running = make_run(ds, clips, labels[1], status=S.RUNNING)
    assert picked(clips[0]) == same_run(clips[0], running, labels[1])
    # Continued over new clips: pending again, but started before; it still counts.
    PipelineRun.objects.filter(pk=running.pk).update(status=S.PENDING)
    assert picked(clips[1])["curation"] == running.pk


def test_a_run_over_some_clips_counts_for_those_clips_only(world):
    # Before: curation took the newest model run for every clip of the dataset, so a clip
    # outside a `--clips` run showed no candidates there while review showed the full run.
    ds, clips, labels = world
    full = make_run(ds, clips, labels[0])
    subset = make_run(ds, clips[:1], labels[1])
    assert picked(clips[0]) == same_run(clips[0], subset, labels[1])
    outside = picked(clips[1])
    assert {k: outside[k] for k in ("review", "review candidates", "curation",
                                    "curated candidates", "api")} == {
        "review": full.pk, "review candidates": {full.pk}, "curation": full.pk,
        "curated candidates": {labels[0].pk}, "api": full.pk}
    # The dataset as a whole (audits): the newest run that counts.
    assert outside["api dataset"] == outside["default_run"] == subset.pk


def test_a_model_run_counts_before_a_newer_external_set(world):
    ds, clips, labels = world
    models = make_run(ds, clips, labels[0])
    make_run(ds, clips, labels[1], kind=EXTERNAL)
    assert picked(clips[0]) == same_run(clips[0], models, labels[0])
    assert run_that_counts_for_clip(clip=clips[1]) == models


def test_no_run_no_candidates(world):
    ds, clips, _ = world
    assert picked(clips[0]) == {
        "review": None, "review candidates": set(), "curation": None,
        "curated candidates": set(), "api": None, "api dataset": None, "default_run": None}
