"""The GPU-server topology of the README over Redis: one worker on `audio,clap` (the GPU
models), one on `celery,llm,export` (text LLM, HTTP, exports). SIGKILL the audio/CLAP
worker mid-run, start a new one, resume: every clip done once, nothing lost, nothing
doubled, and each worker ran only its own queues' stages."""

import os
import re
import signal
import time

import pytest
from django.conf import settings
from django.db.models import Count

from pipeline import chain
from pipeline.models import Candidate, ClipResult, PipelineRun, StageStatus
from pipeline.services import run_dispatch, run_get_or_create, run_progress, run_wait
from pipeline.worker import all_queues

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GPU_QUEUES = ["audio", "clap"]
CPU_QUEUES = ["celery", "llm", "export", "index"]
TASK_DONE = re.compile(r"Task (pipeline\.\w+)\[[0-9a-f-]+\] succeeded")


@pytest.fixture
def redis_broker():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs a Redis broker (CELERY_BROKER_URL=redis://...)")


def stages_run(log) -> set[str]:
    return {m.group(1) for m in TASK_DONE.finditer(log.read_text(errors="replace"))}


def test_the_split_queues_cover_every_queue():
    assert sorted(GPU_QUEUES + CPU_QUEUES) == sorted(all_queues())


def test_kill_the_gpu_worker_mid_run(redis_broker, demo_dataset, tiny_models, worker,
                                     small_chunks_profile, tmp_path):
    run, _ = run_get_or_create(dataset=demo_dataset, profile=small_chunks_profile)
    run_dispatch(run=run)
    gpu = worker(queues=GPU_QUEUES, name="gpu1")
    cpu = worker(queues=CPU_QUEUES, name="cpu")
    deadline = time.monotonic() + 180
    while run_progress(run=run).finished < 3:
        assert time.monotonic() < deadline, "the workers made no progress"
        assert gpu.poll() is None and cpu.poll() is None, "a worker died"
        time.sleep(0.05)
    os.killpg(gpu.pid, signal.SIGKILL)
    gpu.wait(10)
    mid = run_progress(run=run)
    assert 3 <= mid.finished < 16, "the kill must land mid-run"

    worker(queues=GPU_QUEUES, name="gpu2")
    run_dispatch(run=run)  # what `run_pipeline` (or the UI's Resume) does again
    done = run_wait(run=run, timeout_s=300, poll_s=0.3)
    assert cpu.poll() is None, "the CPU worker must live through the other's death"

    run.refresh_from_db()
    assert run.status == PipelineRun.Status.DONE
    assert done.total == 16 and done.finished == 16 and done.stages["caption"] == 16
    results = list(ClipResult.objects.filter(run=run))
    assert len(results) == 16  # one row per clip, none lost, none added
    for r in results:
        if r.error_stage:  # random weights may say nothing parseable
            assert (r.error_stage, r.error) == ("predict", "answer parsed to no labels")
            continue
        assert [getattr(r, f) for f in chain.status_fields()] == [StageStatus.DONE] * 4
        assert set(r.timings) == set(chain.names())
    # Not doubled: one candidate per (clip, label, attempt), each scored by CLAP once the
    # clip is through, and every clip through the filter has its candidates.
    dupes = (Candidate.objects.filter(run=run).values("clip", "label", "attempt")
             .annotate(n=Count("id")).filter(n__gt=1))
    assert not dupes.exists()
    assert not Candidate.objects.filter(run=run, clap_score__isnull=True).exists()
    through = {r.clip_id for r in results if not r.error_stage}
    assert set(Candidate.objects.filter(run=run).values_list("clip_id", flat=True)) <= through

    # Each worker ran only the stages of its own queues.
    gpu_stages = {f"pipeline.{s.name}" for s in chain.stages() if s.queue in GPU_QUEUES}
    cpu_stages = {f"pipeline.{s.name}" for s in chain.stages() if s.queue in CPU_QUEUES}
    assert gpu_stages == {"pipeline.caption", "pipeline.filter"}
    gpu1, gpu2, cpu = (stages_run(tmp_path / f"{n}.log") for n in ("gpu1", "gpu2", "cpu"))
    assert gpu1 <= gpu_stages and gpu2 <= gpu_stages and cpu == cpu_stages
    assert "pipeline.filter" in gpu2, "the new worker finished the CLAP work"
