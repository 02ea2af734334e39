"""Clip embeddings: the filter stage stores one per clip per CLAP model (never twice), and
`embed_clips` computes them with the profile's CLAP alone on a real worker, resuming after
a killed worker without duplicates."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from pipeline import execution
from pipeline.embed_jobs import embed_dispatch, embed_profile_spec, embed_progress, embed_wait
from pipeline.embeddings import ClipEmbedding, EmbeddingSpace, clap_model_id
from pipeline.models import ClipResult, StageStatus
from pipeline.services import run_get_or_create
from relabel_app.models import Clip

STAGES = ("caption", "predict", "match", "filter")


@pytest.mark.django_db
def test_filter_stage_writes_one_embedding_per_clip_and_model_never_twice(demo_dataset, tiny_models):
    clip_ids = list(Clip.objects.filter(dataset=demo_dataset).order_by("position")
                    .values_list("id", flat=True)[:4])
    run, _ = run_get_or_create(dataset=demo_dataset, profile="tiny", clip_ids=clip_ids)
    for stage in STAGES:
        execution.run_chunk(stage, run.pk, clip_ids)
    done = set(ClipResult.objects.filter(run=run, filter_status=StageStatus.DONE)
               .values_list("clip_id", flat=True))
    assert done, "no clip reached the filter stage"
    model_id = clap_model_id(run.config["backends"]["clap"])
    rows = list(ClipEmbedding.objects.filter(space__model_id=model_id))
    assert {r.clip_id for r in rows} == done
    space = EmbeddingSpace.objects.get(model_id=model_id)
    assert space.random_weights is True and space.spec["model"].endswith("tiny/clap")
    for r in rows:
        v = r.as_array()
        assert v.shape == (space.dim,)
        assert abs(float(np.linalg.norm(v)) - 1.0) < 2e-3  # float16 of a unit vector
    before = {r.clip_id: bytes(r.vector) for r in rows}
    # A rerun of the filter stage: the rows stay, one per clip.
    ClipResult.objects.filter(run=run).update(filter_status=StageStatus.PENDING, error_stage="")
    execution.run_chunk("filter", run.pk, clip_ids)
    after = ClipEmbedding.objects.filter(space__model_id=model_id)
    assert after.count() == len(done)
    assert {r.clip_id: bytes(r.vector) for r in after} == before
    # The audio embedding equals what embed_clips computes for the same clip.
    from pipeline.embed_jobs import embed_chunk

    ClipEmbedding.objects.filter(clip_id=rows[0].clip_id).delete()
    assert embed_chunk(run.config["backends"]["clap"], [rows[0].clip_id]) == 1
    again = ClipEmbedding.objects.get(clip_id=rows[0].clip_id).as_array()
    assert float(again @ rows[0].as_array()) > 0.999


@pytest.mark.django_db
def test_embed_clips_bad_input_is_one_clear_line(demo_dataset):
    with pytest.raises(CommandError, match="no dataset 'nope'"):
        call_command("embed_clips", "--dataset", "nope", "--profile", "tiny")
    with pytest.raises(CommandError, match="no profile 'missing'"):
        call_command("embed_clips", "--dataset", "demo", "--profile", "missing")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_embed_clips_resumes_after_a_killed_worker_without_duplicates(
    demo_dataset, tiny_models, worker
):
    spec, rw = embed_profile_spec("tiny")
    total = embed_progress(dataset=demo_dataset, spec=spec).total
    assert total == 16
    assert embed_dispatch(dataset=demo_dataset, spec=spec, random_weights=rw, chunk_size=1) == 16
    first = worker(queues=["clap"])
    deadline = time.monotonic() + 120
    while embed_progress(dataset=demo_dataset, spec=spec).embedded < 3:
        assert time.monotonic() < deadline, "the first worker made no progress"
        assert first.poll() is None
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    mid = embed_progress(dataset=demo_dataset, spec=spec).embedded
    assert 3 <= mid < 16, "the kill must land mid-way"

    worker(queues=["clap"])
    # What `embed_clips` does when run again: queue what is still missing, then wait.
    call_command("embed_clips", "--dataset", "demo", "--profile", "tiny", "--chunk-size", "1",
                 "--wait", "--no-worker", "--timeout", "180")
    done = embed_wait(dataset=demo_dataset, spec=spec, timeout_s=60, poll_s=0.3)
    assert (done.embedded, done.missing) == (16, 0)
    time.sleep(1.0)  # any duplicate messages still in flight land now
    assert ClipEmbedding.objects.count() == 16
    assert not (ClipEmbedding.objects.values("clip", "space").annotate(n=Count("id"))
                .filter(n__gt=1).exists())
