"""Fixtures for the review app: users per role, an audio root, a dataset with a run, results
and candidates (review_setup). The data helpers themselves are in tests/factories.py."""

from __future__ import annotations

import pytest

from tests.factories import (
    UserFactory,
    add_result,
    label,
    make_dataset,
    make_run,
)


@pytest.fixture
def reviewer(db):
    return UserFactory(username="rita")


@pytest.fixture
def reviewer2(db):
    return UserFactory(username="rob")


@pytest.fixture
def curator(db):
    return UserFactory(username="cora", role="curator")


@pytest.fixture
def audio_root(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    return root


@pytest.fixture
def review_setup(db, audio_root):
    """A dataset of 3 clips with audio; clip 0 has originals Dog + Speech and a finished
    tiny run with candidates Bark (kept), Speech (kept), Music (filtered)."""
    from relabel_app.models import ClipLabel

    ds, clips = make_dataset("demo", audio_root)
    for key in ("dog", "speech"):
        ClipLabel.objects.create(clip=clips[0], label=label(key))
    ClipLabel.objects.create(clip=clips[1], label=label("siren"))
    run = make_run(ds)
    add_result(run, clips[0], candidates=[
        ("bark", 0.41, "exact", "dog barking"),
        ("speech", 0.30, "fuzzy", "man talking"),
        ("music", 0.12, "synonym", "background tune"),
    ])
    return {"dataset": ds, "clips": clips, "run": run}
