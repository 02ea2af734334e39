"""A dataset with stored synthetic embeddings (no model needed) and its built index."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.embeddings import embeddings_save
from relabel_app.models import Clip, Dataset
from search.synthetic import clustered_vectors

# A spec of a model that is never loaded: the vectors are stored directly.
SPEC = {"adapter": "transformers-clap", "model": "synthetic/clap-test"}


@pytest.fixture(autouse=True)
def _index_dir(settings, tmp_path):
    settings.SEARCH_INDEX_DIR = tmp_path / "search-index"


@pytest.fixture
def vec_dataset(db):
    """3,000 clips with clustered 64-d embeddings; returns (dataset, clip ids, vectors)."""
    ds = Dataset.objects.create(name="vecs")
    clips = Clip.objects.bulk_create([
        Clip(dataset=ds, ytid=f"v{i:07d}", start_s=0, end_s=10, position=i, audio_path=f"{i}.wav")
        for i in range(3000)])
    x = clustered_vectors(3000, 64, clusters=30, seed=3)
    ids = np.array([c.pk for c in clips])
    embeddings_save(spec=SPEC, vectors=zip(ids.tolist(), x, strict=True))
    return ds, ids, x
