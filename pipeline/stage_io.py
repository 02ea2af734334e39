"""The Django side of a stage (pipeline.chain): its backends built from the run's profile,
clip audio, the class indexes, and the conditional writes of a clip's outcome. The stages
reach these through Stage's helpers; pipeline.execution drives the stages. Nothing here
imports the registry, so the registry and the driver do not import each other."""

from __future__ import annotations

from contextlib import nullcontext

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from relabel_app.models import Clip, Label
from relabel_app.ontology_source import OntologyClass

from .backends.registry import build_backend
from .models import Candidate, ClipResult, PipelineRun, StageStatus
from .stages.filter import ClassTextEmbeddingCache
from .stages.match import LabelIndex


def backend_spec_with_placement(spec: dict) -> dict:
    """The spec with device and dtype from settings (RELABEL_MODEL_DEVICE/_DTYPE) unless
    the profile names them: local model adapters only; HTTP adapters have no placement."""
    spec = dict(spec)
    adapter = spec.get("adapter", "")
    if adapter.startswith("transformers-") or adapter == "sentence-transformers":
        spec.setdefault("device", settings.MODEL_DEVICE)
    if adapter.startswith("transformers-"):
        spec.setdefault("dtype", settings.MODEL_DTYPE)
    return spec


def stage_backend(run: PipelineRun, role: str):
    """The profile's backend for `role`, placed per settings; None when it names none."""
    spec = run.config["backends"].get(role)
    if not spec:
        return None
    return build_backend(backend_spec_with_placement(spec))


def stage_result_save(result: ClipResult, stage: str, fields: dict,
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


def stage_result_fail(result: ClipResult, stage: str, err: Exception | str, **fields) -> None:
    """Mark the clip failed in `stage` with the reason (and any raw output in `fields`)."""
    msg = err if isinstance(err, str) else f"{type(err).__name__}: {err}"
    stage_result_save(result, stage, {**fields, f"{stage}_status": StageStatus.FAILED, "error_stage": stage,
                          "error": msg[:2000]})


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
    # scipy and soundfile load with the first clip a worker reads, not in every process.
    from .audio import load_audio

    return load_audio(audio_path(clip), sample_rate)


_INDEXES: dict[str | None, object] = {}


def label_index(embedder):
    """The matcher's index of the 527 classes, built once per process and embedder; the
    synonym tier's class-text embeddings are also kept on disk, so a new worker reads them
    instead of embedding 1,200 texts again."""
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
    if _TEXT_CACHE is None:
        classes = list(Label.objects.filter(index__isnull=False).order_by("index"))
        _TEXT_CACHE = ClassTextEmbeddingCache(classes, cache_dir=settings.MODEL_DIR / "cache")
    return _TEXT_CACHE
