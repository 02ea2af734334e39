"""The vector index of one (dataset, CLAP model): no Django here, so it can be built,
benchmarked and tested on plain arrays.

On disk, one folder per version:
    vectors.npy    float16 (n, d), L2-normalised, rows ordered by clip id (memory-mapped:
                   re-ranking and "clips like this" read a few rows, never the whole file)
    clip_ids.npy   int64 (n,), ascending: row i is clip_ids[i]
    index.faiss    the FAISS index over the rows (absent in numpy mode)
    meta.json      kind, n, d, version, build seconds, parameters

Kinds (chosen by size, `choose_kind`):
    flat     faiss.IndexFlatIP: exact inner product (= cosine on unit vectors)
    ivf-sq8  faiss IVF with 8-bit scalar quantisation (about 1 byte per dimension: 2M x
             512-d is ~1 GB in memory where flat float32 would be 4 GB and HNSW more),
             probing `nprobe` lists; the top candidates are re-ranked exactly against the
             float16 vectors, which restores the order the quantisation blurs.
    numpy    exact matrix product in numpy, when faiss is not installed (small datasets).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Below this many vectors the exact flat index is fast enough (a 100k x 512 scan is ~10 ms).
APPROX_MIN = 100_000
# Without faiss, exact search in numpy up to this many vectors.
NUMPY_MAX = 100_000
# IVF parameters: lists ~ 2*sqrt(n) (rounded to a power of two), probes per query, how many
# candidates the exact re-rank sees per result asked for.
NPROBE = 32
RERANK_FACTOR = 4
TRAIN_PER_LIST = 32
# Fewer k-means rounds than faiss's 25: the lists only route queries (every candidate is
# re-ranked exactly), and training is most of the build time on few cores.
KMEANS_ITER = 10
FORMAT_VERSION = 1


class FaissMissing(RuntimeError):
    pass


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def choose_kind(n: int, *, have_faiss: bool | None = None) -> str:
    have_faiss = faiss_available() if have_faiss is None else have_faiss
    if not have_faiss:
        if n > NUMPY_MAX:
            raise FaissMissing(
                f"faiss-cpu is not installed: search over {n:,} clips needs it "
                f"(numpy exact search is limited to {NUMPY_MAX:,})")
        return "numpy"
    return "flat" if n < APPROX_MIN else "ivf-sq8"


def nlist_for(n: int) -> int:
    # ~sqrt(n) lists (a power of two): 1,024 at 2M. Assigning every vector to its list is
    # most of the build (n x nlist x d multiply-adds), so fewer lists build faster; the
    # longer lists cost a few ms per query at NPROBE.
    return int(2 ** round(np.log2(max(16.0, np.sqrt(n)))))


def normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


@dataclass
class Hit:
    clip_id: int
    score: float


def build(folder: Path, clip_ids: np.ndarray, vectors: np.ndarray, *, kind: str | None = None,
          threads: int | None = None, seed: int = 0) -> dict:
    """Write a new index version into `folder` (created; replaced if it exists) and return
    its meta. `vectors` rows belong to `clip_ids` (any order); stored sorted by clip id."""
    t0 = time.perf_counter()
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    order = np.argsort(clip_ids, kind="stable")
    ids = np.ascontiguousarray(np.asarray(clip_ids, dtype=np.int64)[order])
    n, d = (len(ids), int(vectors.shape[1])) if len(ids) else (0, int(vectors.shape[-1] or 0))
    kind = kind or choose_kind(n)
    np.save(tmp / "clip_ids.npy", ids)
    vec16 = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=np.float16,
                                      shape=(n, d))
    step = 65536
    for i in range(0, n, step):  # in slices: never a second full float32 copy
        vec16[i:i + step] = normalise(vectors[order[i:i + step]]).astype(np.float16)
    vec16.flush()
    params: dict = {}
    if kind != "numpy":
        import faiss

        if threads:
            faiss.omp_set_num_threads(threads)
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif kind == "ivf-sq8":
            nlist = nlist_for(n)
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT)
            index.cp.niter = KMEANS_ITER
            index.cp.seed = seed
            rng = np.random.default_rng(seed)
            sample = rng.choice(n, size=min(n, nlist * TRAIN_PER_LIST), replace=False)
            sample.sort()
            index.train(np.asarray(vec16[sample], dtype=np.float32))
            params = {"nlist": nlist, "nprobe": NPROBE, "rerank_factor": RERANK_FACTOR}
        else:
            raise ValueError(f"unknown index kind {kind!r}")
        for i in range(0, n, step):
            index.add(np.asarray(vec16[i:i + step], dtype=np.float32))
        faiss.write_index(index, str(tmp / "index.faiss"))
    meta = {"format": FORMAT_VERSION, "kind": kind, "n": n, "d": d, "params": params,
            "build_s": round(time.perf_counter() - t0, 3)}
    (tmp / "meta.json").write_text(json.dumps(meta))
    del vec16
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    meta["bytes"] = folder_bytes(folder)
    return meta


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).iterdir() if f.is_file())


class VectorIndex:
    """A built index loaded for queries: the FAISS index in memory, the vectors mapped."""

    def __init__(self, folder: Path):
        folder = Path(folder)
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text())
        self.kind = self.meta["kind"]
        self.clip_ids = np.load(folder / "clip_ids.npy")
        self.vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        self.index = None
        if self.kind != "numpy":
            try:
                import faiss
            except ImportError:
                raise FaissMissing("faiss-cpu is not installed: this index needs it; "
                                   "rebuild it to search in numpy (small datasets)") from None
            # One query at a time per request: OpenMP threads gain nothing on a single
            # query and spin-wait badly on a busy machine (160 ms for a 20k flat scan
            # under load 10 on 2 cores, against a few ms with one thread).
            faiss.omp_set_num_threads(1)
            self.index = faiss.read_index(str(folder / "index.faiss"))
            if self.kind == "ivf-sq8":
                self.index.nprobe = int(self.meta["params"].get("nprobe", NPROBE))

    def __len__(self) -> int:
        return len(self.clip_ids)

    def position(self, clip_id: int) -> int | None:
        i = int(np.searchsorted(self.clip_ids, clip_id))
        return i if i < len(self.clip_ids) and self.clip_ids[i] == clip_id else None

    def vector_of(self, clip_id: int) -> np.ndarray | None:
        i = self.position(clip_id)
        return None if i is None else np.asarray(self.vectors[i], dtype=np.float32)

    def search(self, query: np.ndarray, k: int, *, exclude: set[int] | frozenset = frozenset()
               ) -> list[Hit]:
        """The k nearest clips to one query vector by cosine, best first, leaving out the
        clip ids in `exclude` (e.g. the query clip itself)."""
        n = len(self.clip_ids)
        if n == 0 or k <= 0:
            return []
        q = normalise(np.asarray(query, dtype=np.float32).reshape(1, -1))
        want = min(n, k + len(exclude))
        if self.kind == "numpy":
            scores = np.asarray(self.vectors, dtype=np.float32) @ q[0]
            top = np.argpartition(-scores, want - 1)[:want] if want < n else np.arange(n)
            pos, sc = top, scores[top]
        else:
            fetch = want if self.kind == "flat" else min(n, want * int(
                self.meta["params"].get("rerank_factor", RERANK_FACTOR)))
            sc, pos = self.index.search(q, fetch)
            pos = pos[0][pos[0] >= 0]
            if self.kind != "flat":
                # Exact cosines from the float16 rows, in one sorted (sequential) read.
                pos = np.sort(pos)
                sc = np.asarray(self.vectors[pos], dtype=np.float32) @ q[0]
            else:
                sc = sc[0][: len(pos)]
        order = np.lexsort((pos, -sc))  # best first; ties by row (= clip id) for stable pages
        hits = []
        for j in order:
            cid = int(self.clip_ids[pos[j]])
            if cid in exclude:
                continue
            hits.append(Hit(cid, float(sc[j])))
            if len(hits) == k:
                break
        return hits

    def scores_of(self, clip_ids: list[int], query: np.ndarray) -> dict[int, float]:
        """Cosine of each given (indexed) clip to the query: the class sweep's order."""
        q = normalise(np.asarray(query, dtype=np.float32).reshape(-1))
        pos = np.searchsorted(self.clip_ids, np.asarray(clip_ids, dtype=np.int64))
        pos = np.clip(pos, 0, max(0, len(self.clip_ids) - 1))
        ok = [(c, p) for c, p in zip(clip_ids, pos, strict=True)
              if len(self.clip_ids) and self.clip_ids[p] == c]
        if not ok:
            return {}
        rows = np.sort(np.fromiter((p for _, p in ok), dtype=np.int64))
        sc = np.asarray(self.vectors[rows], dtype=np.float32) @ q
        by_row = dict(zip(rows.tolist(), sc.tolist(), strict=True))
        return {c: by_row[int(p)] for c, p in ok}
