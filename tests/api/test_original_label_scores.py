"""CLAP scores of original labels through the API: on each clip, and as their own list."""

from __future__ import annotations

import pytest

from pipeline.models import OriginalLabelScore

from .conftest import client_for, label

pytestmark = pytest.mark.django_db


@pytest.fixture
def scored(world):
    clips, run = world["clips"], world["run"]
    rows = [
        OriginalLabelScore.objects.create(run=run, clip=clips[0], label=label("dog"),
                                          clap_score=0.31),
        OriginalLabelScore.objects.create(run=run, clip=clips[0], label=label("speech"),
                                          clap_score=0.07),
        OriginalLabelScore.objects.create(run=run, clip=clips[1], label=label("siren"),
                                          clap_score=0.52),
    ]
    return {**world, "scores": rows}


def test_clip_shows_its_original_labels_clap_scores(scored):
    c = client_for(scored["users"]["reviewer"])
    clip0, clip1, clip2 = scored["clips"]
    body = c.get(f"/api/clips/{clip0.pk}/").json()
    got = {(s["run"], s["label"]["mid"], s["clap_score"]) for s in body["original_label_scores"]}
    run = scored["run"].pk
    assert got == {(run, label("dog").mid, 0.31), (run, label("speech").mid, 0.07)}
    rows = c.get(f"/api/clips/?dataset={scored['dataset'].pk}").json()["results"]
    by_id = {r["id"]: r["original_label_scores"] for r in rows}
    assert [s["clap_score"] for s in by_id[clip1.pk]] == [0.52]
    assert by_id[clip2.pk] == []


def test_original_label_scores_list_and_filters(scored):
    c = client_for(scored["users"]["reviewer"])
    clip0 = scored["clips"][0]
    rows = c.get(f"/api/original-label-scores/?run={scored['run'].pk}").json()["results"]
    assert len(rows) == 3
    rows = c.get(f"/api/original-label-scores/?clip={clip0.pk}&label={label('speech').mid}")
    assert rows.status_code == 200
    [row] = rows.json()["results"]
    assert (row["clip"], row["label"]["mid"], row["clap_score"]) == (
        clip0.pk, label("speech").mid, 0.07
    )
    assert c.get("/api/original-label-scores/?label=/m/nope").status_code == 400
    assert c.get("/api/original-label-scores/?run=abc").status_code == 400
    assert client_for(None).get("/api/original-label-scores/").status_code in (401, 403)
