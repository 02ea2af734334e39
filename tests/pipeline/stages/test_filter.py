import json
import math
from dataclasses import asdict

import numpy as np
import pytest

from pipeline.stages.filter import (
    CLAP_TEXT_TEMPLATE,
    ClassTextEmbeddingCache,
    FilteredCandidate,
    attempt_key,
    best_of_n,
    clap_scores,
    filter_candidates,
)
from pipeline.stages.match import Candidate
from relabel_app.ontology_source import OntologyClass


def fc(mid, score, kept):
    return FilteredCandidate(mid, "exact", mid, score, kept)


def test_clap_scores_cosine_with_unnormalised_inputs():
    audio = np.array([2.0, 0.0, 0.0])
    texts = np.array([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [1.0, 1.0, 0.0], [-5.0, 0.0, 0.0]])
    np.testing.assert_allclose(
        clap_scores(audio, texts), [1.0, 0.0, math.sqrt(0.5), -1.0], atol=1e-6
    )
    assert clap_scores(audio, np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError):
        clap_scores(audio, np.ones((2, 4)))


def test_filter_candidates_stores_every_score():
    cands = [
        Candidate("/m/a", "exact", "dog", 1.0),
        Candidate("/m/b", "synonym", "rain on a roof", 0.7),
        Candidate("/m/c", "fuzzy", "guitarr", 0.92),
    ]
    out = filter_candidates(cands, {"/m/a": 0.31, "/m/b": 0.3, "/m/c": 0.05, "/m/z": 0.9}, 0.3)
    assert out == [
        FilteredCandidate("/m/a", "exact", "dog", 0.31, True),
        FilteredCandidate("/m/b", "synonym", "rain on a roof", 0.3, True),  # at threshold: kept
        FilteredCandidate("/m/c", "fuzzy", "guitarr", 0.05, False),
    ]
    json.dumps([asdict(x) for x in out])
    with pytest.raises(KeyError, match="/m/q"):
        filter_candidates([Candidate("/m/q", "exact", "q", 1.0)], {}, 0.3)
    assert filter_candidates([], {}, 0.3) == []


def test_best_of_n_mean_of_kept():
    attempts = [
        [fc("a", 0.40, True), fc("b", 0.10, False)],  # mean kept 0.40
        [fc("a", 0.50, True), fc("c", 0.30, True)],  # mean kept 0.40, two kept
        [fc("d", 0.45, True), fc("e", 0.05, False)],  # mean kept 0.45 <- best
    ]
    assert best_of_n(attempts) == 2
    assert attempt_key(attempts[2]) == (1, 0.45, 1)


def test_best_of_n_ties():
    # equal mean: more kept candidates wins
    assert best_of_n([[fc("a", 0.4, True)], [fc("a", 0.5, True), fc("b", 0.3, True)]]) == 1
    # equal mean and count: earliest wins
    assert best_of_n([[fc("a", 0.4, True)], [fc("b", 0.4, True)]]) == 0


def test_best_of_n_empty_cases():
    # an attempt with kept candidates beats a higher-scoring one with none kept
    assert best_of_n([[fc("a", 0.29, False)], [fc("b", 0.2, True)]]) == 1
    # none kept anywhere: the closest miss (mean of all scores); empty attempts last
    assert best_of_n([[], [fc("a", 0.1, False)], [fc("b", 0.2, False), fc("c", 0.0, False)]]) == 1
    assert best_of_n([[], []]) == 0
    assert attempt_key([]) == (0, -math.inf, 0)
    with pytest.raises(ValueError):
        best_of_n([])


class CountingClap:
    sample_rate = 48000

    def __init__(self, model_id="clap-a", dim=4):
        self.model_id = model_id
        self.dim = dim
        self.text_calls = 0
        self.texts_seen: list[list[str]] = []

    def embed_text(self, texts):
        self.text_calls += 1
        self.texts_seen.append(list(texts))
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i in range(len(texts)):
            rows[i, i % self.dim] = 2.0  # unnormalised on purpose
        return rows

    def embed_audio(self, batch):
        raise AssertionError("not used")


CLASSES = [
    OntologyClass(f"/m/{i}", name, "", (), (), i)
    for i, name in enumerate(["Speech", "Dog", "Rain", "Music", "Bell"])
]


def test_class_text_cache_computes_once_per_model():
    cache = ClassTextEmbeddingCache(CLASSES)
    clap = CountingClap()
    m1 = cache.matrix(clap)
    m2 = cache.matrix(clap)
    assert clap.text_calls == 1 and m1 is m2
    assert clap.texts_seen == [[CLAP_TEXT_TEMPLATE.format(name=c.name) for c in CLASSES]]
    np.testing.assert_allclose(np.linalg.norm(m1, axis=1), 1.0, atol=1e-6)
    # per clip: rows and scores come from the cached matrix, no new model calls
    for _ in range(50):
        cache.scores(clap, np.array([0.0, 1.0, 0.0, 0.0]), ["/m/1", "/m/2"])
    assert clap.text_calls == 1
    other = CountingClap("clap-b")
    cache.matrix(other)
    assert other.text_calls == 1 and clap.text_calls == 1


def test_class_text_cache_rows_and_scores():
    cache = ClassTextEmbeddingCache(CLASSES, template="{name}")
    clap = CountingClap()
    rows = cache.rows(clap, ["/m/4", "/m/1"])
    np.testing.assert_allclose(rows, [[1, 0, 0, 0], [0, 1, 0, 0]])
    assert cache.rows(clap, []).shape == (0, 4)
    scores = cache.scores(clap, np.array([0.0, 3.0, 0.0, 0.0]), ["/m/1", "/m/2", "/m/1"])
    assert scores == pytest.approx({"/m/1": 1.0, "/m/2": 0.0})
    with pytest.raises(KeyError):
        cache.rows(clap, ["/m/unknown"])
    assert clap.texts_seen[0][:2] == ["Speech", "Dog"]


def test_class_text_cache_on_disk(tmp_path):
    clap = CountingClap()
    first = ClassTextEmbeddingCache(CLASSES, cache_dir=tmp_path).matrix(clap)
    files = list(tmp_path.glob("clap-text-clap-a-*.npy"))
    assert len(files) == 1
    again = ClassTextEmbeddingCache(CLASSES, cache_dir=tmp_path).matrix(clap)  # new process
    assert clap.text_calls == 1
    np.testing.assert_array_equal(first, again)
    # a different text template is a different cache entry
    ClassTextEmbeddingCache(CLASSES, cache_dir=tmp_path, template="{name}").matrix(clap)
    assert clap.text_calls == 2 and len(list(tmp_path.glob("*.npy"))) == 2


def test_filter_end_to_end_with_cache():
    clap = CountingClap()
    cache = ClassTextEmbeddingCache(CLASSES)
    cands = [Candidate("/m/1", "exact", "dog", 1.0), Candidate("/m/2", "synonym", "rain", 0.7)]
    audio = np.array([0.0, 0.8, 0.6, 0.0])  # cos 0.8 with Dog, 0.6 with Rain
    scores = cache.scores(clap, audio, [c.mid for c in cands])
    out = filter_candidates(cands, scores, threshold=0.7)
    assert [(x.mid, x.kept) for x in out] == [("/m/1", True), ("/m/2", False)]
    assert [x.clap_score for x in out] == pytest.approx([0.8, 0.6], abs=1e-6)
