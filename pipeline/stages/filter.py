"""Stage 4: CLAP filtering of candidates, and best-of-N selection over attempts.

A candidate is kept when the cosine similarity between the clip's CLAP audio embedding
and its class's CLAP text embedding is at or above the threshold. Every score is stored,
kept or not, so reviewers and audits see the rejected ones too.

Class text embeddings come from :class:`ClassTextEmbeddingCache`: the 527 class texts are
embedded once per CLAP model (keyed by ``model_id``), in memory and optionally on disk,
never per clip.

best_of_n (the original re-ran stages 2 to 4 several times): see :func:`best_of_n`.

Original labels: the same audio embedding is also scored against the class text of every
original label of the clip (:func:`original_label_scores`): evidence for reviewers and
audits, never a candidate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.backends.base import ClapEmbedder
from pipeline.stages.embcache import cached_embeddings, unit_rows

CLAP_TEXT_TEMPLATE = "This is a sound of {name}."


@dataclass
class FilterConfig:
    """The profile's ``filter`` section; its defaults are the only ones (a run stores them
    resolved, see pipeline.profiles)."""

    threshold: float = 0.25
    # Stages 2 to 4 are tried N times (predict asks N times) and the filter keeps the attempt
    # with the best CLAP scores: N belongs to the stage that chooses.
    best_of_n: int = 1


def run_threshold(config: dict | None) -> float | None:
    """A resolved run config's CLAP threshold; None for a run that has none (an external
    label set) or whose value is not a number."""
    value = ((config or {}).get("filter") or {}).get("threshold")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


@dataclass
class FilteredCandidate:
    mid: str
    tier: str
    phrase: str
    clap_score: float
    kept: bool


def clap_scores(audio_emb: np.ndarray, text_embs: np.ndarray) -> np.ndarray:
    """Cosine similarity of one audio embedding (d,) with each text row (n, d) -> (n,).
    Both sides are normalised here, so unnormalised inputs are fine."""
    a = unit_rows(np.asarray(audio_emb, dtype=np.float32).reshape(1, -1))[0]
    t = unit_rows(np.asarray(text_embs, dtype=np.float32))
    if t.shape[1] != a.shape[0]:
        raise ValueError(f"dimension mismatch: audio {a.shape[0]} vs text {t.shape[1]}")
    return t @ a


def filter_candidates(
    candidates: Iterable, scores_by_mid: Mapping[str, float], threshold: float
) -> list[FilteredCandidate]:
    """One FilteredCandidate per candidate (anything with mid, tier, phrase), in order,
    ``kept = score >= threshold``. A candidate with no score raises KeyError: scoring every
    candidate is the caller's job (see ClassTextEmbeddingCache.scores)."""
    out = []
    for c in candidates:
        if c.mid not in scores_by_mid:
            raise KeyError(f"no CLAP score for {c.mid}")
        score = float(scores_by_mid[c.mid])
        out.append(FilteredCandidate(c.mid, c.tier, c.phrase, round(score, 6), score >= threshold))
    return out


def attempt_key(attempt: Sequence[FilteredCandidate]) -> tuple[int, float, int]:
    """Sort key of one attempt (higher is better): (has kept candidates, mean CLAP score of
    the kept ones, or of all scored ones when none is kept (-inf when empty), number kept)."""
    kept = [c.clap_score for c in attempt if c.kept]
    if kept:
        return 1, math.fsum(kept) / len(kept), len(kept)
    scored = [c.clap_score for c in attempt]
    return 0, (math.fsum(scored) / len(scored)) if scored else -math.inf, 0


def best_of_n(attempts: Sequence[Sequence[FilteredCandidate]]) -> int:
    """Index of the best attempt.

    - An attempt with at least one kept candidate beats any attempt with none.
    - Among those: the highest mean CLAP score of the kept candidates; a tie (scores equal
      to 1e-9) goes to the attempt with more kept candidates, then to the earliest.
    - When no attempt keeps anything: the highest mean score over all its candidates (the
      closest miss, so reviewers see the best the chain did), an empty attempt last; ties
      go to the earliest.
    - No attempts at all: ValueError.
    """
    if not attempts:
        raise ValueError("best_of_n needs at least one attempt")
    best = 0
    best_key = attempt_key(attempts[0])
    for i in range(1, len(attempts)):
        key = attempt_key(attempts[i])
        if key[0] != best_key[0]:
            better = key[0] > best_key[0]
        elif not math.isclose(key[1], best_key[1], rel_tol=0.0, abs_tol=1e-9):
            better = key[1] > best_key[1]
        else:
            better = key[2] > best_key[2]
        if better:
            best, best_key = i, key
    return best


class ClassTextEmbeddingCache:
    """CLAP text embeddings of the class names, once per model.

    ``classes``: the trainable classes (objects with ``mid`` and ``name``), e.g.
    ``ontology.trainable``. The text of a class is ``template.format(name=...)``. The
    matrix is computed with one ``embed_text`` call the first time a model_id is seen, kept
    in memory, and stored as .npy under ``cache_dir`` when given (read back by later
    processes)."""

    def __init__(
        self,
        classes: Iterable,
        cache_dir: str | os.PathLike | None = None,
        template: str = CLAP_TEXT_TEMPLATE,
    ):
        self.classes = list(classes)
        self.mids = [c.mid for c in self.classes]
        self.row_of = {m: i for i, m in enumerate(self.mids)}
        self.texts = [template.format(name=c.name) for c in self.classes]
        self.cache_dir = cache_dir
        self._matrices: dict[str, np.ndarray] = {}

    def matrix(self, embedder: ClapEmbedder) -> np.ndarray:
        """(classes, d) row-normalised, rows in ``self.mids`` order."""
        m = self._matrices.get(embedder.model_id)
        if m is None:
            m = cached_embeddings(
                embedder, self.texts, self.cache_dir, kind="clap-text", embed=embedder.embed_text
            )
            self._matrices[embedder.model_id] = m
        return m

    def rows(self, embedder: ClapEmbedder, mids: Sequence[str]) -> np.ndarray:
        """(len(mids), d); KeyError for a MID not among the classes."""
        m = self.matrix(embedder)
        return m[[self.row_of[mid] for mid in mids]] if mids else m[:0]

    def known(self, mids: Iterable[str]) -> list[str]:
        """The given MIDs that are among the classes (in order, without repeats)."""
        return [m for m in dict.fromkeys(mids) if m in self.row_of]

    def scores(
        self, embedder: ClapEmbedder, audio_emb: np.ndarray, mids: Iterable[str]
    ) -> dict[str, float]:
        """{mid: CLAP cosine} for one clip's audio embedding and the given MIDs."""
        mids = list(dict.fromkeys(mids))
        if not mids:
            return {}
        s = clap_scores(audio_emb, self.rows(embedder, mids))
        return {mid: float(v) for mid, v in zip(mids, s, strict=True)}


def original_label_scores(
    cache: ClassTextEmbeddingCache,
    embedder: ClapEmbedder,
    audio_emb: np.ndarray,
    original_mids: Iterable[str],
) -> dict[str, float]:
    """{mid: CLAP cosine rounded to 6 places} for a clip's original labels, from the audio
    embedding already computed for its candidates and the cached class texts. An original
    label outside the cached classes (not trainable) has no class text here and is left
    out."""
    mids = cache.known(original_mids)
    return {m: round(v, 6) for m, v in cache.scores(embedder, audio_emb, mids).items()}
