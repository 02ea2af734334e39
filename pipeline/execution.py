"""Run one stage over a chunk of clips: load rows, call the pure stage logic, persist each
clip's result in its own transaction. Idempotent: a clip whose stage is already done (or
failed) is skipped, and the row is re-checked under a lock before writing, so a duplicate
message or a rerun changes nothing."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext

from django.db import transaction
from django.utils import timezone

from relabel_app.models import Clip, ClipLabel, Label

from .models import Candidate, ClipResult, OriginalLabelScore, PipelineRun, StageStatus

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


def _fail(result: ClipResult, stage: str, err: Exception | str) -> None:
    msg = str(err) if isinstance(err, str) else f"{type(err).__name__}: {err}"
    _save(result, stage, {f"{stage}_status": StageStatus.FAILED, "error_stage": stage,
                             "error": msg[:2000]})


def _timings(result: ClipResult, stage: str, wall: float, model: float) -> dict:
    t = dict(result.timings or {})
    t[stage] = {"wall_s": round(wall, 6), "model_s": round(model, 6)}
    return t


def _audio_path(clip: Clip):
    if not clip.audio_path:
        raise FileNotFoundError(f"no local audio file for {clip.ytid} ({clip.audio_status})")
    root = clip.dataset.resolved_audio_root().resolve()
    path = (root / clip.audio_path).resolve()
    # The same containment rule as the audio view: never read outside the audio root.
    if not path.is_relative_to(root):
        raise PermissionError(f"audio path {clip.audio_path!r} is outside the audio root")
    return path


def caption_chunk(run_id: int, clip_ids: list[int]) -> list[int]:
    from .audio import load_audio
    from .stages.caption import CaptionConfig, run_caption_batch

    run = PipelineRun.objects.get(pk=run_id)
    cfg = CaptionConfig(**_known(CaptionConfig, run.config["caption"]))
    chat = _backend(run, "audio_chat")
    t0 = time.perf_counter()
    loaded, audios = [], []
    for result in _results(run_id, clip_ids, "caption", None):
        try:
            audios.append((load_audio(_audio_path(result.clip), 16000), 16000))
            loaded.append(result)
        except Exception as e:  # a clip's failure is recorded; the run goes on
            _fail(result, "caption", e)
    if not loaded:
        return []
    timer = ModelTimer()
    # One batched model call per chat step over the chunk's clips (stages.caption).
    outs = timer.wrap(run_caption_batch)(chat, audios, cfg)
    wall = (time.perf_counter() - t0) / len(loaded)
    ready = []
    for result, out in zip(loaded, outs, strict=True):
        if isinstance(out, Exception):
            _fail(result, "caption", out)
            continue
        fields = {
            "caption": dataclasses.asdict(out),
            "summary": out.summary,
            "summary_ok": out.summary_ok,
            "caption_status": StageStatus.DONE,
            "timings": _timings(result, "caption", wall, timer.seconds / len(loaded)),
        }
        if _save(result, "caption", fields):
            ready.append(result.clip_id)
    return ready


def predict_chunk(run_id: int, clip_ids: list[int]) -> list[int]:
    from .stages.predict import PredictConfig, run_predict_best_of_n

    run = PipelineRun.objects.get(pk=run_id)
    cfg = PredictConfig(**_known(PredictConfig, run.config["predict"]))
    chat = _backend(run, "text_chat")
    n = max(1, int(run.config["filter"].get("best_of_n", 1)))
    results = _results(run_id, clip_ids, "predict", "caption")
    if not results:
        return []
    t0 = time.perf_counter()
    timer = ModelTimer()
    # Every clip's n attempts in batched calls; attempts 2..n sampled, seeded by
    # (run, clip, attempt) so a rerun draws the same (stages.predict).
    outs = timer.wrap(run_predict_best_of_n)(
        chat, [(r.summary, (run_id, r.clip_id)) for r in results], cfg, n
    )
    wall = (time.perf_counter() - t0) / len(results)
    ready = []
    for result, out in zip(results, outs, strict=True):
        if isinstance(out, Exception):
            _fail(result, "predict", out)
            continue
        attempts = [dataclasses.asdict(a) for a in out]
        usable = [a for a in attempts if a["ok"]]
        if not usable:
            # Keep the raw answers with the failure, so a reviewer can see what was said.
            _save(result, "predict", {
                "predict": {"attempts": attempts}, "predict_status": StageStatus.FAILED,
                "error_stage": "predict",
                "error": attempts[-1].get("error") or "answer parsed to no labels",
            })
            continue
        fields = {
            "predict": {"attempts": attempts},
            "free_labels": [a["labels"] for a in attempts],
            "predict_status": StageStatus.DONE,
            "timings": _timings(result, "predict", wall, timer.seconds / len(results)),
        }
        if _save(result, "predict", fields):
            ready.append(result.clip_id)
    return ready


_INDEXES: dict[str | None, object] = {}


def _label_index(embedder):
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


def _mid_ids() -> dict[str, int]:
    return dict(Label.objects.filter(index__isnull=False).values_list("mid", "id"))


def match_chunk(run_id: int, clip_ids: list[int]) -> list[int]:
    from .stages.match import MatchConfig, build_llm_match_messages, match_labels, parse_llm_matches

    run = PipelineRun.objects.get(pk=run_id)
    cfg = MatchConfig(**_known(MatchConfig, run.config["match"]))
    embedder = _backend(run, "text_embedder") if cfg.use_synonym else None
    index = _label_index(embedder)
    llm = _backend(run, "match_llm") if run.config["match"].get("use_llm") else None
    mid_ids = _mid_ids()
    ready = []
    for result in _results(run_id, clip_ids, "match", "predict"):
        t0 = time.perf_counter()
        timer = ModelTimer()
        cands: list[Candidate] = []
        try:
            for attempt, phrases in enumerate(result.free_labels or []):
                if llm is not None:
                    answer = timer.wrap(llm.chat)(build_llm_match_messages(phrases, index.classes))
                    matched = parse_llm_matches(answer, index)
                else:
                    matched = timer.wrap(match_labels)(phrases, index, cfg)
                for m in matched:
                    cands.append(Candidate(
                        run_id=run_id, clip_id=result.clip_id, label_id=mid_ids[m.mid],
                        attempt=attempt, tier=m.tier, phrase=(m.phrase or "")[:200],
                        match_score=m.score, selected=(attempt == 0),
                    ))
        except Exception as e:
            _fail(result, "match", e)
            continue
        fields = {
            "match_status": StageStatus.DONE,
            "timings": _timings(result, "match", time.perf_counter() - t0, timer.seconds),
        }
        if _save(result, "match", fields, cands, replace_candidates=True):
            ready.append(result.clip_id)
    return ready


_TEXT_CACHE = None


def _class_text_cache():
    """CLAP text embeddings of the 527 classes: once per model per process (and on disk)."""
    global _TEXT_CACHE
    from django.conf import settings

    from .stages.filter import ClassTextEmbeddingCache

    if _TEXT_CACHE is None:
        classes = list(Label.objects.filter(index__isnull=False).order_by("index"))
        _TEXT_CACHE = ClassTextEmbeddingCache(classes, cache_dir=settings.MODEL_DIR / "cache")
    return _TEXT_CACHE


def filter_chunk(run_id: int, clip_ids: list[int]) -> list[int]:
    from .audio import load_audio
    from .stages.filter import best_of_n, filter_candidates, original_label_scores

    run = PipelineRun.objects.get(pk=run_id)
    clap = _backend(run, "clap")
    threshold = float(run.config["filter"].get("threshold", 0.25))
    results = _results(run_id, clip_ids, "filter", "match")
    if not results:
        return []
    t0 = time.perf_counter()
    timer = ModelTimer()
    # Decode every clip first, then embed all audio of the chunk in one batch.
    audios, ok = [], []
    for result in results:
        try:
            audios.append(load_audio(_audio_path(result.clip), clap.sample_rate))
            ok.append(result)
        except Exception as e:
            _fail(result, "filter", e)
    if not ok:
        return []
    cache = _class_text_cache()
    try:
        timer.wrap(cache.matrix)(clap)
        audio_emb = timer.wrap(clap.embed_audio)(audios)
    except Exception as e:
        for result in ok:
            _fail(result, "filter", e)
        return []
    mid_of = dict(Label.objects.filter(index__isnull=False).values_list("id", "mid"))
    label_id_of = {m: i for i, m in mid_of.items()}
    ok_ids = [r.clip_id for r in ok]
    all_cands = list(Candidate.objects.filter(run_id=run_id, clip_id__in=ok_ids))
    by_clip: dict[int, list[Candidate]] = {}
    for c in all_cands:
        by_clip.setdefault(c.clip_id, []).append(c)
    originals: dict[int, list[str]] = {}
    for clip_id, label_id in ClipLabel.objects.filter(clip_id__in=ok_ids).values_list(
        "clip_id", "label_id"
    ):
        if label_id in mid_of:
            originals.setdefault(clip_id, []).append(mid_of[label_id])
    per_clip = (time.perf_counter() - t0) / len(ok)
    ready = []
    for i, result in enumerate(ok):
        t1 = time.perf_counter()
        cands = by_clip.get(result.clip_id, [])
        scores = cache.scores(clap, audio_emb[i], [mid_of[c.label_id] for c in cands])
        # The clip's original labels, scored against the same audio embedding.
        orig = original_label_scores(cache, clap, audio_emb[i], originals.get(result.clip_id, []))
        by_attempt: dict[int, list[Candidate]] = {}
        for c in cands:
            c.clap_score = round(scores[mid_of[c.label_id]], 6)
            c.kept = c.clap_score >= threshold
            by_attempt.setdefault(c.attempt, []).append(c)
        n_attempts = len(result.free_labels or []) or 1
        attempts = [
            filter_candidates([_as_stage_candidate(c, mid_of) for c in by_attempt.get(a, [])],
                              scores, threshold)
            for a in range(n_attempts)
        ]
        best = best_of_n(attempts)
        for c in cands:
            c.selected = c.attempt == best
        fields = {
            "filter_status": StageStatus.DONE,
            "best_attempt": best,
            "timings": _timings(result, "filter", per_clip + time.perf_counter() - t1,
                                timer.seconds / len(ok)),
        }
        with transaction.atomic():
            if _save(result, "filter", fields):
                if cands:
                    Candidate.objects.bulk_update(cands, ["clap_score", "kept", "selected"])
                _save_original_scores(run_id, result.clip_id, orig, label_id_of)
            ready.append(result.clip_id)
    return ready


def _save_original_scores(run_id: int, clip_id: int, scores: dict[str, float],
                          label_id_of: dict[str, int]) -> None:
    """One OriginalLabelScore row per scored original label; a row that exists already
    (a redelivered message, a rerun) gets the new score: INSERT ... ON CONFLICT DO UPDATE."""
    if not scores:
        return
    OriginalLabelScore.objects.bulk_create(
        [OriginalLabelScore(run_id=run_id, clip_id=clip_id, label_id=label_id_of[m],
                            clap_score=v) for m, v in scores.items()],
        update_conflicts=True, unique_fields=["run", "clip", "label"],
        update_fields=["clap_score"],
    )


def _as_stage_candidate(c: Candidate, mid_of: dict[int, str]):
    from .stages.match import Candidate as StageCandidate

    return StageCandidate(mid=mid_of[c.label_id], tier=c.tier, phrase=c.phrase,
                          score=c.match_score)


def _known(cls, values: dict) -> dict:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}


STAGE_RUNNERS = {
    "caption": caption_chunk,
    "predict": predict_chunk,
    "match": match_chunk,
    "filter": filter_chunk,
}
NEXT_STAGE = {"caption": "predict", "predict": "match", "match": "filter", "filter": None}
