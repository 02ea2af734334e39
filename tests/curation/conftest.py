"""Hand-built datasets for the curation tests. Every expected figure in the tests is worked
out by hand from what these fixtures create; change them only with the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import UserFactory

MIDS = {
    "speech": "/m/09x0r",   # Human sounds
    "dog": "/m/0bt9lr",     # Animal
    "bark": "/m/05tny_",    # Animal
    "music": "/m/04rlf",    # Music (a top-level class itself)
    "siren": "/m/03kmc9",   # Sounds of things
    "cat": "/m/01yrx",      # Animal
    "choir": "/m/0l14jd",   # under both Music and Human sounds
}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def label(key: str):
    from relabel_app.models import Label

    return Label.objects.get(mid=MIDS.get(key, key))


@pytest.fixture
def curator(db):
    return UserFactory(username="cora", role="curator")


@pytest.fixture
def reviewers(db):
    # Created in this order, so their ids ascend r1 < r2 < r3 (kappa pairs are ordered).
    return [UserFactory(username=name) for name in ("r1", "r2", "r3")]


def make_clip(ds, ytid: str, start: float, position: int, originals=(), audio_path=""):
    from relabel_app.models import Clip, ClipLabel

    clip = Clip.objects.create(dataset=ds, ytid=ytid, start_s=start, end_s=start + 10.0,
                               position=position, audio_path=audio_path)
    for key in originals:
        ClipLabel.objects.create(clip=clip, label=label(key))
    return clip


def make_run(ds, threshold: float = 0.3, kind: str = "models"):
    from pipeline.models import PipelineRun

    return PipelineRun.objects.create(
        dataset=ds, kind=kind, profile_name="tiny", status="done",
        config={"random_weights": True, "filter": {"threshold": threshold}},
    )


def add_candidates(run, clip, scored: dict[str, float], *, result: bool = True,
                   selected: bool = True, attempt: int = 0):
    from pipeline.models import Candidate, ClipResult

    threshold = run.config["filter"]["threshold"]
    if result:
        ClipResult.objects.get_or_create(run=run, clip=clip)
    for key, score in scored.items():
        Candidate.objects.create(run=run, clip=clip, label=label(key), attempt=attempt,
                                 tier="exact", clap_score=score, kept=score >= threshold,
                                 selected=selected)


def decide(clip, key: str, reviewer, verdict: str, *, at: datetime | None = None,
           category: str | None = None, note: str = ""):
    from review.models import Decision, ErrorCategory

    cat = None
    if category:
        cat, _ = ErrorCategory.objects.get_or_create(slug=category, defaults={"name": category})
    d = Decision.objects.create(clip=clip, label=label(key), reviewer=reviewer,
                                verdict=verdict, error_category=cat, note=note)
    if at is not None:
        Decision.objects.filter(pk=d.pk).update(created_at=at, updated_at=at)
    return d


def finish(clip, *reviewers):
    from review.models import ClipReview

    for r in reviewers:
        ClipReview.objects.create(dataset=clip.dataset, clip=clip, reviewer=r)


def adjudicate(clip, key: str, curator, verdict: str, note: str = ""):
    from curation.adjudication import adjudication_record

    return adjudication_record(clip=clip, label=label(key), curator=curator, verdict=verdict,
                               note=note)


@dataclass
class Built:
    dataset: object
    clips: list
    run: object = None
    users: dict = field(default_factory=dict)


@pytest.fixture
def policy_set(db, curator, reviewers) -> Built:
    """Five clips, two reviewers required per clip.

    c0  originals speech, dog; run candidates bark (kept), speech (kept), music (filtered)
        speech 2-0 accepted; dog 0-2 rejected; bark 1-1 tie, adjudicated accept;
        music: unsure + reject = 0-1 rejected. Finished by r1, r2.
    c1  originals siren, music; candidate dog (kept), nobody decided anything.
    c2  same YTID as c1, later start. original speech 1-1 tie (unresolved);
        cat added by r1 (1-0 accepted). Finished by r1 only.
    c3  original dog 0-2, adjudicated accept; siren added by the curator (accept).
        Finished by r1, r2.
    c4  original music: reject + unsure = 0-1 rejected. Finished by r1, r2.
    """
    from relabel_app.models import Dataset

    r1, r2, _ = reviewers
    ds = Dataset.objects.create(name="cur", required_reviews=2)
    c0 = make_clip(ds, "AAAAAAAAAA0", 0.0, 0, ["speech", "dog"], audio_path="a/c0.wav")
    c1 = make_clip(ds, "BBBBBBBBBB1", 10.0, 1, ["siren", "music"])
    c2 = make_clip(ds, "BBBBBBBBBB1", 30.5, 2, ["speech"])
    c3 = make_clip(ds, "DDDDDDDDDD3", 1.25, 3, ["dog"])
    c4 = make_clip(ds, "EEEEEEEEEE4", 7.0, 4, ["music"])
    run = make_run(ds)
    add_candidates(run, c0, {"bark": 0.41, "speech": 0.30, "music": 0.12})
    add_candidates(run, c1, {"dog": 0.5})
    for r in (r1, r2):
        decide(c0, "speech", r, "accept")
        decide(c0, "dog", r, "reject")
    decide(c0, "bark", r1, "accept")
    decide(c0, "bark", r2, "reject")
    decide(c0, "music", r1, "unsure")
    decide(c0, "music", r2, "reject")
    adjudicate(c0, "bark", curator, "accept")
    decide(c2, "speech", r1, "reject")
    decide(c2, "speech", r2, "accept")
    decide(c2, "cat", r1, "accept")
    decide(c3, "dog", r1, "reject")
    decide(c3, "dog", r2, "reject")
    adjudicate(c3, "dog", curator, "accept")
    adjudicate(c3, "siren", curator, "accept")
    decide(c4, "music", r1, "reject")
    decide(c4, "music", r2, "unsure")
    finish(c0, r1, r2)
    finish(c2, r1)
    finish(c3, r1, r2)
    finish(c4, r1, r2)
    return Built(ds, [c0, c1, c2, c3, c4], run, {"r1": r1, "r2": r2, "curator": curator})


@pytest.fixture
def audit_set(db, curator, reviewers) -> Built:
    """Four clips; the run covers a0..a2 (threshold 0.3). See test_audits.py for every
    figure worked out by hand from this."""
    from relabel_app.models import Dataset

    r1, r2, r3 = reviewers
    ds = Dataset.objects.create(name="aud", required_reviews=2)
    a0 = make_clip(ds, "aaaaaaaaaa0", 0.0, 0, ["speech", "dog"])
    a1 = make_clip(ds, "aaaaaaaaaa1", 0.0, 1, ["music"])
    a2 = make_clip(ds, "aaaaaaaaaa2", 0.0, 2, ["speech", "siren"])
    a3 = make_clip(ds, "aaaaaaaaaa3", 0.0, 3, ["dog"])
    run = make_run(ds, threshold=0.3)
    add_candidates(run, a0, {"speech": 0.9, "bark": 0.5, "music": 0.2})
    # Not the selected attempt of best-of-N: ignored everywhere.
    add_candidates(run, a0, {"cat": 0.99}, selected=False, attempt=1)
    add_candidates(run, a1, {"music": 0.8, "speech": 0.95})
    add_candidates(run, a2, {"siren": 0.4, "dog": 0.35})

    def at(minutes: float) -> datetime:
        return T0 + timedelta(minutes=minutes)

    # r1: 7 decisions at minutes 0, 1, 2, 3, 5, 6, 60 -> active 6 min
    decide(a0, "speech", r1, "accept", at=at(0))
    decide(a0, "dog", r1, "reject", at=at(1), category="t-orig-wrong")
    decide(a0, "bark", r1, "accept", at=at(2))
    decide(a0, "music", r1, "reject", at=at(3))
    decide(a1, "music", r1, "accept", at=at(5))
    decide(a1, "speech", r1, "reject", at=at(6), category="t-cand-wrong")
    decide(a3, "dog", r1, "accept", at=at(60))
    # r2: 7 decisions 30 s apart -> active 3 min
    decide(a0, "speech", r2, "accept", at=at(100))
    decide(a0, "dog", r2, "reject", at=at(100.5), category="t-orig-wrong")
    decide(a0, "bark", r2, "unsure", at=at(101))
    decide(a0, "music", r2, "reject", at=at(101.5))
    decide(a2, "siren", r2, "reject", at=at(102), category="t-env-confusion")
    decide(a2, "dog", r2, "accept", at=at(102.5))
    decide(a2, "speech", r2, "accept", at=at(103))
    # r3: 5 decisions at 200, 210, 220, 230.5, 231 -> gaps 10, 10, 10.5 (a break), 0.5
    decide(a1, "music", r3, "reject", at=at(200), category="t-ambiguous")
    decide(a2, "siren", r3, "reject", at=at(210))
    decide(a2, "dog", r3, "accept", at=at(220))
    decide(a2, "speech", r3, "unsure", at=at(230.5))
    decide(a2, "choir", r3, "accept", at=at(231), category="t-orig-missing")
    adjudicate(a1, "music", curator, "accept")
    finish(a0, r1, r2)
    finish(a1, r1, r3)
    finish(a2, r2, r3)
    finish(a3, r1)
    return Built(ds, [a0, a1, a2, a3], run, {"r1": r1, "r2": r2, "r3": r3, "curator": curator})
