"""Celery entry points, one per registered stage (pipeline.chain): task `pipeline.<stage>`
on the stage's queue. Thin: take ids, run the stage over them, queue the next stage."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_ready
from django.conf import settings

from . import chain


@worker_init.connect
@worker_process_init.connect
def _limit_torch_threads(**_):
    # Two busy processes on two cores with torch's default thread count ran up to 11x slower.
    import os

    os.environ.setdefault("OMP_NUM_THREADS", str(settings.TORCH_THREADS))
    try:
        import torch

        torch.set_num_threads(settings.TORCH_THREADS)
    except ImportError:
        pass


@worker_ready.connect
def _recover_interrupted_runs(**_):
    """A worker that starts (after a crash, say) re-queues the runs whose workers are gone
    (pipeline.services.runs_recover_interrupted: once, then stopped with the reason)."""
    import logging

    from .services import runs_recover_interrupted

    try:
        done = runs_recover_interrupted()
    except Exception:  # never keep a worker from starting
        logging.getLogger(__name__).exception("recovering interrupted runs at worker start")
        return
    if done["requeued"] or done["stopped"]:
        logging.getLogger(__name__).warning("runs recovered at worker start: %s", done)


def _run_stage(stage: str, run_id: int, clip_ids: list[int]) -> int:
    from .execution import run_chunk
    from .models import ClipResult, PipelineRun, StageStatus
    from .services import run_finish_if_complete

    status = PipelineRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
    if status is None or status == PipelineRun.Status.CANCELLED:
        return 0
    run_chunk(stage, run_id, clip_ids)
    nxt = chain.following(stage)
    ready: list[int] = []
    if nxt:
        # Ask the database, not the runner: clips finished by an earlier attempt of this
        # task (one cut short by an outage) must move on too.
        ready = list(ClipResult.objects.filter(
            run_id=run_id, clip_id__in=clip_ids, error_stage="",
            **{f"{stage}_status": StageStatus.DONE, f"{nxt}_status": StageStatus.PENDING},
        ).order_by("clip_id").values_list("clip_id", flat=True))
        if ready:
            stage_task_for(nxt).delay(run_id, ready)
    if not ready:
        run_finish_if_complete(run_id=run_id)
    return len(ready)


def _transient_errors() -> tuple[type[Exception], ...]:
    from django.db import InterfaceError, OperationalError
    from kombu.exceptions import OperationalError as BrokerError

    return (OperationalError, InterfaceError, BrokerError, ConnectionError)


# A database or broker that is briefly away: retry the whole chunk with backoff (finished
# clips are skipped on the retry). Any other error is a clip's own and is recorded per clip.
COMMON = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": _transient_errors(),
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
    "max_retries": 20,
}

_TASKS: dict[str, object] = {}


def stage_task_for(stage: str):
    """The Celery task of a registered stage (made on first use for a stage registered
    after this module was imported)."""
    if stage not in _TASKS:
        cls = chain.get(stage)

        def run_stage(run_id: int, clip_ids: list[int]) -> int:
            return _run_stage(cls.name, run_id, clip_ids)

        run_stage.__name__ = run_stage.__qualname__ = f"{cls.name}_task"
        run_stage.__doc__ = f"Run stage {cls.name!r} over a chunk of clips of a run."
        _TASKS[stage] = shared_task(name=f"pipeline.{cls.name}", queue_name=cls.queue, **COMMON)(
            run_stage)
    return _TASKS[stage]


for _name in chain.names():
    stage_task_for(_name)

from . import embed_jobs  # noqa: E402,F401  (registers pipeline.embed on the clap queue)
