"""SIGKILL a real worker mid-run, start a new one, resume: nothing lost, nothing doubled."""

import os
import signal
import time

import pytest
from django.db.models import Count

from pipeline.models import Candidate, ClipResult, PipelineRun
from pipeline.services import run_dispatch, run_get_or_create, run_progress, run_wait

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_killed_worker_run_resumes_to_exactly_one_result_per_stage(
    demo_dataset, tiny_models, worker, small_chunks_profile
):
    run, _ = run_get_or_create(dataset=demo_dataset, profile=small_chunks_profile)
    run_dispatch(run=run)
    first = worker()
    deadline = time.monotonic() + 120
    while run_progress(run=run).finished < 3:
        assert time.monotonic() < deadline, "the first worker made no progress"
        assert first.poll() is None
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    mid = run_progress(run=run)
    assert 3 <= mid.finished < 16, "the kill must land mid-run"

    worker()
    run_dispatch(run=run)  # what `run_pipeline` (or the UI's Resume) does again
    done = run_wait(run=run, timeout_s=240, poll_s=0.3)
    assert done.finished == 16
    run.refresh_from_db()
    assert run.status == PipelineRun.Status.DONE
    assert ClipResult.objects.filter(run=run).count() == 16
    assert done.filter + done.failed == 16
    for r in ClipResult.objects.filter(run=run):
        assert r.caption_status == "done"
        assert r.error_stage in ("", "predict")
    dupes = (Candidate.objects.filter(run=run).values("clip", "label", "attempt")
             .annotate(n=Count("id")).filter(n__gt=1))
    assert not dupes.exists()
    # Every finished clip's candidates carry a CLAP score.
    assert not Candidate.objects.filter(run=run, clap_score__isnull=True).exists()
