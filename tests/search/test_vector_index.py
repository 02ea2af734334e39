"""The vector index on plain arrays and on stored embeddings: exact mode equals numpy's
brute force; approximate mode keeps recall@10 >= 0.95 on clustered data."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.embeddings import EmbeddingSpace
from search import vector_index as vi
from search.models import SearchIndex
from search.services import index_build_now, index_loaded, index_request_build
from search.synthetic import clustered_vectors, queries_near
from tests.factories import UserFactory


def brute_force(x16: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    s = x16 @ (q / np.linalg.norm(q))
    return list(np.lexsort((np.arange(len(s)), -s))[:k])


@pytest.mark.parametrize("kind", ["flat", "numpy"])
def test_exact_kinds_equal_numpy_brute_force(tmp_path, kind):
    x = clustered_vectors(4000, 128, clusters=40, seed=5)
    ids = np.arange(4000, dtype=np.int64) * 7 + 11
    shuffled = np.random.default_rng(0).permutation(4000)
    vi.build(tmp_path / "v1", ids[shuffled], x[shuffled], kind=kind)
    idx = vi.VectorIndex(tmp_path / "v1")
    assert idx.kind == kind and len(idx) == 4000
    x16 = np.asarray(idx.vectors, dtype=np.float32)
    assert np.array_equal(idx.clip_ids, ids)  # stored by clip id
    for q in queries_near(x, 25, seed=9):
        hits = idx.search(q, 10)
        want = brute_force(x16, q, 10)
        assert [h.clip_id for h in hits] == [int(ids[i]) for i in want]
        assert np.allclose([h.score for h in hits], (x16 @ vi.normalise(q))[want], atol=1e-5)
    # The query clip left out; the rest shift up.
    first = idx.search(x[0], 3)
    assert [h.clip_id for h in idx.search(x[0], 2, exclude={first[0].clip_id})] == \
        [h.clip_id for h in first[1:]]


def test_approximate_index_recall_at_10_is_at_least_095(tmp_path):
    x = clustered_vectors(30_000, 128, clusters=300, seed=7)
    ids = np.arange(30_000, dtype=np.int64)
    meta = vi.build(tmp_path / "v1", ids, x, kind="ivf-sq8")
    assert meta["kind"] == "ivf-sq8" and meta["params"]["nlist"] == vi.nlist_for(30_000) == 128
    idx = vi.VectorIndex(tmp_path / "v1")
    x16 = np.asarray(idx.vectors, dtype=np.float32)
    recalls = []
    for q in queries_near(x, 100, seed=2):
        got = {h.clip_id for h in idx.search(q, 10)}
        recalls.append(len(got & set(brute_force(x16, q, 10))) / 10)
    assert np.mean(recalls) >= 0.95, np.mean(recalls)


def test_kind_by_size_and_a_clear_message_without_faiss():
    assert vi.choose_kind(5000, have_faiss=True) == "flat"
    assert vi.choose_kind(2_000_000, have_faiss=True) == "ivf-sq8"
    assert vi.choose_kind(50_000, have_faiss=False) == "numpy"
    with pytest.raises(vi.FaissMissing, match="faiss-cpu is not installed"):
        vi.choose_kind(200_000, have_faiss=False)


@pytest.mark.django_db
def test_stored_embeddings_index_equals_brute_force_and_is_versioned(vec_dataset, settings):
    ds, ids, x = vec_dataset
    space = EmbeddingSpace.objects.get()
    idx = index_build_now(dataset=ds, space=space)
    assert (idx.status, idx.version, idx.kind, idx.clip_count) == ("ready", 1, "flat", 3000)
    assert (settings.SEARCH_INDEX_DIR / f"ds{ds.pk}-space{space.pk}" / "v1" / "meta.json").exists()
    loaded = index_loaded(idx)
    assert index_loaded(idx) is loaded  # once per process
    # Brute force over the vectors as stored in PostgreSQL (float16), normalised alike.
    from pipeline.embeddings import ClipEmbedding

    stored = {e.clip_id: e.as_array() for e in ClipEmbedding.objects.filter(space=space)}
    db_ids = np.array(sorted(stored))
    x16 = vi.normalise(np.stack([stored[c] for c in db_ids])).astype(np.float16).astype(np.float32)
    for q in queries_near(x, 10, seed=4):
        want = [int(db_ids[i]) for i in brute_force(x16, q, 10)]
        assert [h.clip_id for h in loaded.search(q, 10)] == want
    # Nothing new: a rebuild request queues nothing; a forced rebuild is version 2.
    assert index_request_build(dataset_id=ds.pk, space=space).status == "ready"
    idx2 = index_build_now(dataset=ds, space=space)
    assert idx2.version == 2 and not (settings.SEARCH_INDEX_DIR / f"ds{ds.pk}-space{space.pk}"
                                      / "v1").exists()
    assert index_loaded(idx2) is not loaded
    assert SearchIndex.objects.count() == 1


@pytest.mark.django_db
def test_new_embeddings_queue_a_rebuild_on_the_index_queue(vec_dataset, django_capture_on_commit_callbacks):
    from pipeline.embeddings import embeddings_save
    from pipeline.worker import all_queues
    from relabel_app.models import Clip
    from search.services import index_build
    from search.tasks import build_index_task
    from tests.search.conftest import SPEC

    assert "index" in all_queues() and build_index_task.queue_name == "index"
    ds, ids, x = vec_dataset
    space = EmbeddingSpace.objects.get()
    idx = index_build_now(dataset=ds, space=space)
    assert idx.clip_count == 3000
    new = Clip.objects.create(dataset=ds, ytid="vnew", start_s=0, end_s=10, position=3000)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        embeddings_save(spec=SPEC, vectors=[(new.pk, x[0])])
    assert len(callbacks) == 1  # the embeddings_added signal, after commit
    with django_capture_on_commit_callbacks(execute=False) as queued:
        callbacks[0]()  # the signal: the search app queues a build (once)
        callbacks[0]()
    idx.refresh_from_db()
    assert idx.status == "queued" and len(queued) == 1
    # What the task does when the worker takes it; a duplicate message does nothing.
    idx = index_build(index_id=idx.pk)
    assert (idx.status, idx.version, idx.clip_count) == ("ready", 2, 3001)
    assert index_build(index_id=idx.pk).version == 2
    assert index_loaded(idx).search(x[0], 2)[0].clip_id in (new.pk, int(ids[0]))


@pytest.mark.django_db
def test_without_faiss_search_is_exact_in_numpy_and_the_page_says_so(vec_dataset, monkeypatch, client):
    import sys

    from search import queries

    ds, ids, x = vec_dataset
    space = EmbeddingSpace.objects.get()
    flat = index_build_now(dataset=ds, space=space)
    assert flat.kind == "flat"
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now fails
    assert not vi.faiss_available()
    # A faiss index cannot be served: a clear message, not a 500.
    with pytest.raises(queries.SearchUnavailable, match="faiss-cpu is not installed"):
        queries.dataset_index(dataset=ds)
    idx = index_build_now(dataset=ds, space=space)
    assert (idx.kind, idx.status) == ("numpy", "ready")
    got = [h.clip_id for h in index_loaded(idx).search(x[5], 3)]
    assert got[0] == int(ids[5])
    client.force_login(UserFactory(username="rita", role="reviewer"))
    html = client.get(f"/datasets/{ds.pk}/search-index/").content.decode()
    assert "faiss-cpu is not installed on this server" in html
    assert "3000 clips indexed (numpy)" in html
