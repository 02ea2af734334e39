"""The tiny profile's chain run in-process on the test database (no worker): best-of-N
attempts after the first are sampled with stored, reproducible seeds, and the filter stage
stores CLAP evidence for every original label without making it a candidate."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import execution, stage_io
from pipeline.backends.base import derive_seed
from pipeline.models import Candidate, ClipResult, OriginalLabelScore, StageStatus
from pipeline.services import run_get_or_create
from relabel_app.models import Clip, ClipLabel

pytestmark = pytest.mark.django_db

STAGES = ("caption", "predict", "match", "filter")


def run_stage(stage: str, run_id: int, clip_ids: list[int]) -> None:
    execution.run_chunk(stage, run_id, clip_ids)


def reset_from(run, stage: str) -> None:
    """Mark `stage` and the later ones pending again (a rerun of those stages)."""
    later = STAGES[STAGES.index(stage):]
    ClipResult.objects.filter(run=run).update(
        error_stage="", error="", **{f"{s}_status": StageStatus.PENDING for s in later}
    )


@pytest.fixture
def chain(demo_dataset, tiny_models):
    clip_ids = list(Clip.objects.filter(dataset=demo_dataset).order_by("position")
                    .values_list("id", flat=True)[:4])
    run, _ = run_get_or_create(dataset=demo_dataset, profile="tiny", clip_ids=clip_ids)
    run.config["filter"]["best_of_n"] = 3
    run.save(update_fields=["config"])
    for stage in STAGES:
        run_stage(stage, run.pk, clip_ids)
    return run, clip_ids


def test_best_of_n_attempts_are_sampled_seeded_and_reproducible(chain):
    run, clip_ids = chain
    results = {r.clip_id: r for r in ClipResult.objects.filter(run=run)}
    assert set(results) == set(clip_ids)
    differs = []
    for clip_id, r in results.items():
        attempts = r.predict["attempts"]
        assert len(attempts) == 3
        assert attempts[0]["sampling"] is None  # attempt 1: greedy
        for a, attempt in enumerate(attempts[1:], start=1):
            assert attempt["sampling"] == {
                "temperature": 0.8, "top_p": 0.9, "seed": derive_seed(run.pk, clip_id, a)
            }
        differs.append(any(a["raw_answers"] != attempts[0]["raw_answers"] for a in attempts[1:]))
    assert any(differs), "sampled attempts all repeated the greedy one"
    before = {cid: r.predict for cid, r in results.items()}

    reset_from(run, "predict")
    run_stage("predict", run.pk, clip_ids)
    after = {r.clip_id: r.predict for r in ClipResult.objects.filter(run=run)}
    assert after == before  # the same seeds draw the same attempts


def test_filter_scores_every_original_label_once_and_not_as_a_candidate(chain):
    run, clip_ids = chain
    filtered = list(ClipResult.objects.filter(run=run, filter_status=StageStatus.DONE)
                    .values_list("clip_id", flat=True))
    assert filtered
    originals = {}
    for clip_id, label_id, index in ClipLabel.objects.filter(clip_id__in=filtered).values_list(
        "clip_id", "label_id", "label__index"
    ):
        if index is not None:
            originals.setdefault(clip_id, set()).add(label_id)
    assert originals, "the demo clips come with original labels"
    rows = list(OriginalLabelScore.objects.filter(run=run))
    got = {}
    for row in rows:
        got.setdefault(row.clip_id, set()).add(row.label_id)
        assert -1.0 <= row.clap_score <= 1.0
    assert got == originals

    # The same cosine as the candidates': one audio embedding, the cached class texts.
    cands = {(c.clip_id, c.label_id): c.clap_score for c in Candidate.objects.filter(run=run)}
    clap = stage_io.stage_backend(run, "clap")
    cache = stage_io.class_text_cache()
    for row in rows[:6]:
        clip = Clip.objects.select_related("dataset").get(pk=row.clip_id)
        from pipeline.audio import load_audio

        audio = load_audio(stage_io.audio_path(clip), clap.sample_rate)
        emb = clap.embed_audio([audio])[0]
        mid = row.label.mid
        expected = cache.scores(clap, emb, [mid])[mid]
        assert row.clap_score == pytest.approx(expected, abs=1e-4)
        if (row.clip_id, row.label_id) in cands:
            assert row.clap_score == pytest.approx(cands[(row.clip_id, row.label_id)], abs=1e-6)

    # Originals are not candidates: the candidate rows are the matcher's, nothing added.
    cand_before = sorted(Candidate.objects.filter(run=run).values_list("id", "label_id"))
    # Idempotent: the filter again (a rerun, a redelivered message) writes no second row.
    n = len(rows)
    reset_from(run, "filter")
    run_stage("filter", run.pk, clip_ids)
    assert OriginalLabelScore.objects.filter(run=run).count() == n
    assert sorted(Candidate.objects.filter(run=run).values_list("id", "label_id")) == cand_before
    again = {(r.clip_id, r.label_id): r.clap_score for r in OriginalLabelScore.objects.filter(run=run)}
    assert again == {(r.clip_id, r.label_id): r.clap_score for r in rows}
    assert np.isfinite(list(again.values())).all()
