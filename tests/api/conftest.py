"""Fixtures of the API tests: a user per role, a small dataset with original labels, a
finished run with candidates, and a decision of each of two reviewers."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

MIDS = {
    "speech": "/m/09x0r",
    "dog": "/m/0bt9lr",
    "bark": "/m/05tny_",
    "music": "/m/04rlf",
    "siren": "/m/03kmc9",
}


def label(key: str):
    from relabel_app.models import Label

    return Label.objects.get(mid=MIDS.get(key, key))


PASSWORD = "pw-secret-1"


@pytest.fixture
def users(db):
    return {
        "norole": UserFactory(username="nora", role="", password=PASSWORD),
        "reviewer": UserFactory(username="rita", role="reviewer", password=PASSWORD),
        "reviewer2": UserFactory(username="rob", role="reviewer", password=PASSWORD),
        "curator": UserFactory(username="cora", role="curator", password=PASSWORD),
        "admin": UserFactory(username="adam", role="admin", password=PASSWORD),
    }


def client_for(user=None) -> APIClient:
    c = APIClient()
    if user is not None:
        c.force_authenticate(user)
    return c


def make_clips(dataset, n: int, *, start_position: int = 0):
    from relabel_app.models import Clip

    return Clip.objects.bulk_create([
        Clip(dataset=dataset, ytid=f"yt{i:09d}", start_s=10.0 * i, end_s=10.0 * i + 10.0,
             position=start_position + i)
        for i in range(n)
    ])


@pytest.fixture
def world(users):
    """Dataset "apids" of 3 clips. Clip 0: originals Dog + Speech; the tiny run proposes
    Bark (kept), Speech (kept), Music (filtered). Clip 1: original Siren. Rita accepted Bark
    on clip 0, Rob rejected Speech on clip 0."""
    from pipeline.models import Candidate, ClipResult, PipelineRun
    from relabel_app.models import ClipLabel, Dataset
    from review.decisions import decision_record

    ds = Dataset.objects.create(name="apids")
    clips = make_clips(ds, 3)
    ClipLabel.objects.create(clip=clips[0], label=label("dog"))
    ClipLabel.objects.create(clip=clips[0], label=label("speech"))
    ClipLabel.objects.create(clip=clips[1], label=label("siren"))
    run = PipelineRun.objects.create(
        dataset=ds, profile_name="tiny", status="done", clip_count=3,
        config={"name": "tiny", "random_weights": True, "filter": {"threshold": 0.25}},
    )
    for c in clips:
        ClipResult.objects.create(run=run, clip=c, caption_status="done",
                                  predict_status="done", match_status="done",
                                  filter_status="done")
    cands = [
        Candidate.objects.create(run=run, clip=clips[0], label=label(k), tier="exact",
                                 phrase=k, clap_score=s, kept=s >= 0.25)
        for k, s in (("bark", 0.41), ("speech", 0.30), ("music", 0.12))
    ]
    d_rita = decision_record(clip=clips[0], label=label("bark"), reviewer=users["reviewer"],
                             verdict="accept")
    d_rob = decision_record(clip=clips[0], label=label("speech"), reviewer=users["reviewer2"],
                            verdict="reject")
    return {"dataset": ds, "clips": clips, "run": run, "candidates": cands,
            "d_rita": d_rita, "d_rob": d_rob, "users": users}
