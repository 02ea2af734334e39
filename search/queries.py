"""Reads of the search app: "clips like this", text-to-audio search and class sweeps over a
dataset's vector index, with each result's labels. Shared by the pages and the API.

Bad input raises SearchUnavailable with a message meant for the user (a 400 or a notice
on the page), never an exception that ends in a 500."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.db.models import Count

from pipeline.embeddings import ClipEmbedding, clap_model_id
from pipeline.models import Candidate
from pipeline.selectors import run_that_counts
from relabel_app.ids import id_if_in_range, looks_like_id
from relabel_app.models import Clip, ClipLabel, Dataset, Label
from review.models import Decision, Verdict

from . import vector_index
from .models import SearchIndex
from .services import index_loaded

PAGE = 50
MAX_K = 1000  # results one query may ask for (20 pages of the find page)
MAX_QUERY_CHARS = 500  # CLAP reads 77 tokens; a longer text is a mistake, not a query
SIMILAR_K = 12


class SearchUnavailable(ValueError):
    """The search cannot answer (no index yet, faiss missing, bad input): the message says
    why, in words for the user."""


@dataclass
class ResultRow:
    clip: Clip
    score: float | None
    originals: list[Label] = field(default_factory=list)
    kept: list[Label] = field(default_factory=list)
    added: list[Label] = field(default_factory=list)  # accepted added labels (decisions)
    has_class: bool | None = None
    verdict: str = ""  # the viewing reviewer's verdict on the swept class (sweeps)


@dataclass
class ResultPage:
    index: SearchIndex
    rows: list[ResultRow]
    offset: int
    has_next: bool


def parse_k(raw, *, default: int, maximum: int = MAX_K) -> int:
    if raw in (None, ""):
        return default
    try:
        k = int(str(raw).strip())
    except ValueError:
        raise SearchUnavailable(f"k must be a whole number from 1 to {maximum}") from None
    if not 1 <= k <= maximum:
        raise SearchUnavailable(f"k must be a whole number from 1 to {maximum}")
    return k


def parse_query(raw) -> str:
    q = " ".join(str(raw or "").split())
    if not q:
        raise SearchUnavailable("Type a sound description to search for, e.g. \u201cdog barking\u201d.")
    if len(q) > MAX_QUERY_CHARS:
        raise SearchUnavailable(f"The description is {len(q):,} characters long; at most "
                                f"{MAX_QUERY_CHARS} are read.")
    return q


def trainable_class_or_error(ref: str) -> Label:
    """A class by MID or id that may be a label (one of the 527 trainable classes)."""
    ref = (ref or "").strip()
    label = (Label.objects.filter(pk=id_if_in_range(ref)).first() if looks_like_id(ref)
             else Label.objects.filter(mid=ref).first())
    if label is None:
        raise SearchUnavailable(f"No class {ref!r}.")
    if label.index is None:
        kind = "an abstract class" if label.abstract else "not one of the 527 trainable classes"
        raise SearchUnavailable(f"{label.name} is {kind}, so it cannot be a label.")
    return label


def dataset_index(*, dataset: Dataset, model_id: str | None = None,
                  ready: bool = True) -> SearchIndex:
    """The index search uses for the dataset: the CLAP model of the run that counts when
    it has an index, else the index with the most clips. Raises SearchUnavailable when
    there is none to search (yet)."""
    qs = SearchIndex.objects.filter(dataset=dataset).select_related("space")
    if model_id:
        qs = qs.filter(space__model_id=model_id)
    candidates = list(qs.order_by("-clip_count", "pk"))
    if not model_id and len(candidates) > 1:
        run = run_that_counts(dataset=dataset)
        spec = (run.config.get("backends", {}).get("clap") if run else None) or None
        if spec:
            mine = clap_model_id(spec)
            candidates.sort(key=lambda i: i.space.model_id != mine)
    if not vector_index.faiss_available() and any(i.kind not in ("", "numpy") for i in candidates):
        raise SearchUnavailable("Search is unavailable: faiss-cpu is not installed on this "
                                "server (the rest of the studio works).")
    for idx in candidates:
        if not ready or idx.version:
            return idx
    if candidates and candidates[0].error:
        raise SearchUnavailable(f"The search index of {dataset.name} failed to build: "
                                f"{candidates[0].error}")
    has_embeddings = ClipEmbedding.objects.filter(clip__dataset=dataset).exists()
    if has_embeddings:
        raise SearchUnavailable(f"The search index of {dataset.name} is not built yet "
                                "(building\u2026 or run `manage.py build_search_index`).")
    raise SearchUnavailable(f"{dataset.name} has no clip embeddings to search yet: run the "
                            f"pipeline or `manage.py embed_clips --dataset {dataset.name}`.")


def index_state(*, dataset: Dataset) -> list[SearchIndex]:
    return list(SearchIndex.objects.filter(dataset=dataset).select_related("space")
                .order_by("-clip_count", "pk"))


def embedding_counts(*, dataset: Dataset) -> dict[str, int]:
    return dict(ClipEmbedding.objects.filter(clip__dataset=dataset).values_list("space__model_id")
                .annotate(n=Count("id")).values_list("space__model_id", "n"))


def _encoder(index: SearchIndex):
    from pipeline.backends.registry import build_backend
    from pipeline.stage_io import backend_spec_with_placement

    return build_backend(backend_spec_with_placement(index.space.spec))


def text_vector(*, index: SearchIndex, text: str) -> np.ndarray:
    """The CLAP text embedding of a query (the model is loaded once per process)."""
    return np.asarray(_encoder(index).embed_text([text])[0], dtype=np.float32)


def class_vector(*, index: SearchIndex, label: Label) -> np.ndarray:
    """The class's CLAP text embedding, as the filter stage scores it (cached per model)."""
    from pipeline.stage_io import class_text_cache

    return np.asarray(class_text_cache().rows(_encoder(index), [label.mid])[0], dtype=np.float32)


def _carriers(*, dataset: Dataset, label: Label) -> set[int]:
    """Clips that carry the class: kept by the run that counts, original, or added by a
    reviewer (accepted)."""
    ids = set(ClipLabel.objects.filter(clip__dataset=dataset, label=label)
              .values_list("clip_id", flat=True))
    run = run_that_counts(dataset=dataset)
    if run is not None:
        ids |= set(Candidate.objects.filter(run=run, label=label, kept=True, selected=True)
                   .values_list("clip_id", flat=True))
    ids |= set(Decision.objects.filter(clip__dataset=dataset, label=label,
                                       verdict=Verdict.ACCEPT).values_list("clip_id", flat=True))
    return ids


def result_rows(*, dataset: Dataset, hits: list[tuple[int, float | None]],
                klass: Label | None = None) -> list[ResultRow]:
    """Rows for (clip id, score) hits in order, with their labels: four queries whatever
    the number of hits."""
    ids = [cid for cid, _ in hits]
    clips = Clip.objects.in_bulk(ids)
    names = {}

    def label(lid: int) -> Label:
        return names[lid]

    orig: dict[int, list[int]] = {}
    for cid, lid in ClipLabel.objects.filter(clip_id__in=ids).values_list("clip_id", "label_id"):
        orig.setdefault(cid, []).append(lid)
    kept: dict[int, list[int]] = {}
    run = run_that_counts(dataset=dataset)
    if run is not None:
        for cid, lid in Candidate.objects.filter(run=run, clip_id__in=ids, kept=True,
                                                 selected=True).values_list("clip_id", "label_id"):
            kept.setdefault(cid, []).append(lid)
    added: dict[int, list[int]] = {}
    for cid, lid in (Decision.objects.filter(clip_id__in=ids, verdict=Verdict.ACCEPT)
                     .values_list("clip_id", "label_id").distinct()):
        added.setdefault(cid, []).append(lid)
    all_ids = {lid for d in (orig, kept, added) for v in d.values() for lid in v}
    names.update(Label.objects.in_bulk(all_ids))
    rows = []
    for cid, score in hits:
        if cid not in clips:
            continue  # deleted since the index was built
        o, k = orig.get(cid, []), kept.get(cid, [])
        a = [lid for lid in added.get(cid, []) if lid not in o and lid not in k]
        rows.append(ResultRow(
            clip=clips[cid], score=score,
            originals=sorted((label(i) for i in o), key=lambda x: x.name),
            kept=sorted((label(i) for i in k), key=lambda x: x.name),
            added=sorted((label(i) for i in a), key=lambda x: x.name),
            has_class=None if klass is None else klass.pk in (*o, *k, *added.get(cid, [])),
        ))
    return rows


def similar_clips(*, clip: Clip, k: int = SIMILAR_K, model_id: str | None = None
                  ) -> ResultPage:
    """The k clips nearest the clip's own audio embedding (the clip itself left out)."""
    index = dataset_index(dataset=clip.dataset, model_id=model_id)
    vi = index_loaded(index)
    vec = vi.vector_of(clip.pk)
    if vec is None:
        row = ClipEmbedding.objects.filter(clip=clip, space=index.space).first()
        if row is None:
            raise SearchUnavailable("This clip has no embedding for the index's CLAP model yet.")
        vec = row.as_array()
    hits = vi.search(vec, k, exclude={clip.pk})
    return ResultPage(index, result_rows(dataset=clip.dataset,
                                         hits=[(h.clip_id, h.score) for h in hits]), 0, False)


def text_search(*, dataset: Dataset, q: str, k: int = PAGE, offset: int = 0,
                klass: Label | None = None, model_id: str | None = None) -> ResultPage:
    """Clips nearest the CLAP text embedding of `q`, results offset..offset+k."""
    q = parse_query(q)
    if offset < 0 or offset + k > MAX_K:
        raise SearchUnavailable(f"Results go up to the first {MAX_K}.")
    index = dataset_index(dataset=dataset, model_id=model_id)
    vi = index_loaded(index)
    hits = vi.search(text_vector(index=index, text=q), offset + k + 1)
    page = hits[offset:offset + k]
    return ResultPage(index, result_rows(dataset=dataset, klass=klass,
                                         hits=[(h.clip_id, h.score) for h in page]),
                      offset, len(hits) > offset + k)


def sweep_carrying(*, dataset: Dataset, label: Label, offset: int = 0, k: int = PAGE
                   ) -> tuple[ResultPage, int]:
    """The clips that carry the class, least similar to the class text first (the likeliest
    errors), and how many carry it."""
    index = dataset_index(dataset=dataset)
    vi = index_loaded(index)
    carriers = sorted(_carriers(dataset=dataset, label=label))
    scores = vi.scores_of(carriers, class_vector(index=index, label=label))
    # Clips not in the index (no embedding yet) last: nothing says they are wrong.
    order = sorted(carriers, key=lambda c: (c not in scores, scores.get(c, 0.0), c))
    page = order[offset:offset + k]
    rows = result_rows(dataset=dataset, klass=label, hits=[(c, scores.get(c)) for c in page])
    return ResultPage(index, rows, offset, len(order) > offset + k), len(order)


def sweep_likely_missing(*, dataset: Dataset, label: Label, k: int = PAGE) -> ResultPage:
    """Clips *not* carrying the class nearest to the class text and to the clips experts
    accepted for it (their mean embedding, weighted like the text)."""
    index = dataset_index(dataset=dataset)
    vi = index_loaded(index)
    query = vector_index.normalise(class_vector(index=index, label=label))
    accepted = list(Decision.objects.filter(clip__dataset=dataset, label=label,
                                            verdict=Verdict.ACCEPT)
                    .values_list("clip_id", flat=True).distinct()[:5000])
    vecs = [v for v in (vi.vector_of(c) for c in accepted) if v is not None]
    if vecs:
        query = vector_index.normalise(query + vector_index.normalise(np.mean(vecs, axis=0)))
    carriers = _carriers(dataset=dataset, label=label)
    # Bounded: a class on most clips (Speech) would otherwise ask for the whole index.
    hits = vi.search(query, min(len(vi), k + len(carriers), 10 * MAX_K), exclude=carriers)[:k]
    return ResultPage(index, result_rows(dataset=dataset, klass=label,
                                         hits=[(h.clip_id, h.score) for h in hits]), 0, False)
