"""Drive one registered stage (`pipeline.chain`) over a chunk of clips: load the rows the
stage still owes, let the stage prepare them, make its one batched model call, and let it
write each clip's outcome. Idempotent: a clip whose stage is already done (or failed) is
not loaded, and every write is a conditional UPDATE on the stage still being pending, so
a duplicate message or a rerun changes nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from . import chain
from .models import ClipResult, PipelineRun, StageStatus

log = logging.getLogger(__name__)


class ModelTimer:
    """Adds up the seconds spent inside model calls (for the overhead benchmark)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable) -> Callable:
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds += time.perf_counter() - t
        return timed


def _results(run_id: int, clip_ids: list[int], stage: str, prev: str | None):
    qs = ClipResult.objects.filter(run_id=run_id, clip_id__in=clip_ids, error_stage="")
    qs = qs.filter(**{f"{stage}_status": StageStatus.PENDING})
    if prev:
        qs = qs.filter(**{f"{prev}_status": StageStatus.DONE})
    # No stage reads an earlier stage's raw record (the caption rounds, the predict
    # answers): the largest JSON documents of the row stay in the database.
    return list(qs.select_related("clip", "clip__dataset").defer("caption", "predict")
                .order_by("clip_id"))


def run_chunk(stage_name: str, run_id: int, clip_ids: list[int]) -> None:
    """One chunk through one stage: prepare, one batched call, write. A clip's own failure
    (unreadable audio, an Exception in place of its output) is recorded and the others go
    on; a call that raises fails every clip of the chunk with that reason."""
    cls = chain.get(stage_name)
    rows = _results(run_id, clip_ids, stage_name, chain.previous(stage_name))
    if not rows:
        return
    t0 = time.perf_counter()
    stage = cls(PipelineRun.objects.get(pk=run_id))
    stage.setup()
    t1 = time.perf_counter()
    items = stage.prepare(rows)
    if not items:
        return
    timer = ModelTimer()
    try:
        outputs = timer.wrap(stage.call)(items)
        if len(outputs) != len(items):
            raise RuntimeError(f"stage {stage_name} returned {len(outputs)} outputs "
                               f"for {len(items)} clips")
    except Exception as e:  # the whole batch failed: every clip of it is marked, the run goes on
        log.exception("stage %s failed for a chunk of run %s", stage_name, run_id)
        for item in items:
            stage.fail(item.row, e)
        return
    # Shared work (prepare, the batched call) is shared out evenly over the chunk's clips.
    stage.per_clip = ((time.perf_counter() - t1) / len(items), timer.seconds / len(items))
    log.debug("stage %s setup %.3f s", stage_name, t1 - t0)
    ok = []
    for item, out in zip(items, outputs, strict=True):
        if isinstance(out, Exception):
            stage.fail(item.row, out)
        else:
            ok.append((item, out))
    if ok:
        stage.write(ok)


