"""Drive one registered stage (`pipeline.chain`) over a chunk of clips: load the rows the
stage still owes, let the stage prepare them, make its one batched model call, and let it
write each clip's outcome. Idempotent: a clip whose stage is already done (or failed) is
not loaded, and every write is a conditional UPDATE on the stage still being pending, so
a duplicate message or a rerun changes nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext

from django.db import transaction
from django.utils import timezone

from relabel_app.models import Clip, Label

from . import chain
from .models import Candidate, ClipResult, PipelineRun, StageStatus

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


def backend_spec_with_placement(spec: dict) -> dict:
    """The spec with device and dtype from settings (RELABEL_MODEL_DEVICE/_DTYPE) unless
    the profile names them: local model adapters only; HTTP adapters have no placement."""
    from django.conf import settings

    spec = dict(spec)
    adapter = spec.get("adapter", "")
    if adapter.startswith("transformers-") or adapter == "sentence-transformers":
        spec.setdefault("device", settings.MODEL_DEVICE)
    if adapter.startswith("transformers-"):
        spec.setdefault("dtype", settings.MODEL_DTYPE)
    return spec


def _backend(run: PipelineRun, role: str):
    from .backends.registry import build_backend

    spec = run.config["backends"].get(role)
    if not spec:
        return None
    return build_backend(backend_spec_with_placement(spec))


def _results(run_id: int, clip_ids: list[int], stage: str, prev: str | None):
    qs = ClipResult.objects.filter(run_id=run_id, clip_id__in=clip_ids, error_stage="")
    qs = qs.filter(**{f"{stage}_status": StageStatus.PENDING})
    if prev:
        qs = qs.filter(**{f"{prev}_status": StageStatus.DONE})
    # No stage reads an earlier stage's raw record (the caption rounds, the predict
    # answers): the largest JSON documents of the row stay in the database.
    return list(qs.select_related("clip", "clip__dataset").defer("caption", "predict")
                .order_by("clip_id"))


def _save(result: ClipResult, stage: str, fields: dict,
          candidates: list[Candidate] | None = None, replace_candidates: bool = False) -> bool:
    """Write a stage's outcome if that stage is still pending; False if someone else did.

    The check and the write are one conditional UPDATE: no lock to take first, no
    transaction of its own unless candidates are written with it (then all or nothing)."""
    with transaction.atomic() if (candidates or replace_candidates) else nullcontext():
        written = ClipResult.objects.filter(
            pk=result.pk, error_stage="", **{f"{stage}_status": StageStatus.PENDING}
        ).update(**fields, updated_at=timezone.now())
        if not written:
            return False
        if replace_candidates:
            Candidate.objects.filter(run_id=result.run_id, clip_id=result.clip_id).delete()
        if candidates:
            Candidate.objects.bulk_create(candidates)
        return True


def _fail(result: ClipResult, stage: str, err: Exception | str, **fields) -> None:
    """Mark the clip failed in `stage` with the reason (and any raw output in `fields`)."""
    msg = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    _save(result, stage, {**fields, f"{stage}_status": StageStatus.FAILED, "error_stage": stage,
                          "error": msg[:2000]})


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


def audio_path(clip: Clip):
    if not clip.audio_path:
        raise FileNotFoundError(f"no local audio file for {clip.ytid} ({clip.audio_status})")
    root = clip.dataset.resolved_audio_root().resolve()
    path = (root / clip.audio_path).resolve()
    # The same containment rule as the audio view: never read outside the audio root.
    if not path.is_relative_to(root):
        raise PermissionError(f"audio path {clip.audio_path!r} is outside the audio root")
    return path


def load_clip_audio(clip: Clip, sample_rate: int):
    from .audio import load_audio

    return load_audio(audio_path(clip), sample_rate)


_INDEXES: dict[str | None, object] = {}


def label_index(embedder):
    """The matcher's index of the 527 classes, built once per process and embedder; the
    synonym tier's class-text embeddings are also kept on disk, so a new worker reads them
    instead of embedding 1,200 texts again."""
    from django.conf import settings

    from relabel_app.ontology_source import OntologyClass

    from .stages.match import LabelIndex

    key = embedder.model_id if embedder is not None else None
    if key not in _INDEXES:
        classes = [
            OntologyClass(mid=m, name=n, description=d, child_ids=(), restrictions=(), index=i)
            for m, n, d, i in Label.objects.filter(index__isnull=False).order_by("index")
            .values_list("mid", "name", "description", "index")
        ]
        _INDEXES[key] = LabelIndex.build(
            classes, embedder, cache_dir=str(settings.MODEL_DIR / "cache")
        )
    return _INDEXES[key]


def trainable_ids_by_mid() -> dict[str, int]:
    return dict(Label.objects.filter(index__isnull=False).values_list("mid", "id"))


_TEXT_CACHE = None


def class_text_cache():
    """CLAP text embeddings of the 527 classes: once per model per process (and on disk)."""
    global _TEXT_CACHE
    from django.conf import settings

    from .stages.filter import ClassTextEmbeddingCache

    if _TEXT_CACHE is None:
        classes = list(Label.objects.filter(index__isnull=False).order_by("index"))
        _TEXT_CACHE = ClassTextEmbeddingCache(classes, cache_dir=settings.MODEL_DIR / "cache")
    return _TEXT_CACHE
