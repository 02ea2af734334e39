"""Search at AudioSet scale: 2,000,000 synthetic clustered 512-d CLAP-like embeddings
(search.synthetic) in the index the app serves (search.vector_index: IVF-SQ8 with an exact
re-rank at this size), five figures into bench/results.json:

  search_index_build_2m_s    building the index from the vectors (train, add, write)
  search_index_mb_2m         what a web process holds in memory: the FAISS index and the
                             clip-id map (the float16 vectors stay memory-mapped on disk;
                             their size and the measured RSS growth are in _details)
  search_recall_at_10_2m     recall@10 against exact brute force on the same vectors
  similar_query_p95_ms_2m    "clips like this" (search.queries.similar_clips: index warm,
                             one process, including the result rows' labels from PostgreSQL)
  text_search_p95_ms_2m      GET /api/search/?q=... over HTTP, one gunicorn worker with one
                             thread: the paper-size CLAP text encoder (HTSAT-base
                             architecture, random weights, CPU) plus the index plus the rows

The dataset's 2M clips are rows in the benchmark database (generate_series), so the HTTP
answer carries real clip rows. The embeddings go straight from the generator into the
index (the app would read them from ClipEmbedding; that read is not measured here).
Usage: python bench/bench_search.py [--quick] (200k vectors; figures not recorded)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, ensure_bench_database, loadavg, pct, record  # noqa: E402

DATASET = "search_bench"
D = 512
CLUSTERS = 2000
QUERIES = {"similar": 200, "text": 60, "recall": 100}


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relabel_app.settings.dev")
    import django

    django.setup()


def ensure_clips(n: int):
    """The benchmark dataset with exactly n clips (ids contiguous, by position)."""
    from django.db import connection

    from relabel_app.models import Clip, Dataset

    ds, _ = Dataset.objects.get_or_create(name=f"{DATASET}-{n}")
    have = Clip.objects.filter(dataset=ds).count()
    if have != n:
        Clip.objects.filter(dataset=ds).delete()
        t0 = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(
                "INSERT INTO relabel_app_clip (dataset_id, ytid, start_s, end_s, position, "
                "audio_path, audio_status, audio_error) SELECT %s, 'sb' || lpad(g::text, 9, '0'), "
                "0, 10, g, '', 'missing', '' FROM generate_series(0, %s - 1) g ORDER BY g",
                [ds.pk, n])
        print(f"  {n:,} clip rows in {time.perf_counter() - t0:.1f} s")
    ids = np.array(Clip.objects.filter(dataset=ds).order_by("id").values_list("id", flat=True),
                   dtype=np.int64)
    return ds, ids


def vectors_file(n: int, out: Path) -> np.ndarray:
    """The n synthetic vectors as float16 on disk (generated once, in slices)."""
    path = out / f"vectors-{n}-{D}-{CLUSTERS}.npy"
    if path.exists():
        return np.load(path, mmap_mode="r")
    tmp = path.with_suffix(".tmp.npy")
    mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n, D))
    # One generator call for the whole set (same centres); written in slices.
    step = 250_000
    for i in range(0, n, step):
        m = min(step, n - i)
        mm[i:i + m] = _slice(i, m).astype(np.float16)
    mm.flush()
    del mm
    tmp.rename(path)
    return np.load(path, mmap_mode="r")


_CENTRES: np.ndarray | None = None


def _slice(i: int, m: int) -> np.ndarray:
    """Rows i..i+m of the set: shared centres, noise seeded per slice."""
    global _CENTRES
    if _CENTRES is None:
        rng = np.random.default_rng(0)
        c = rng.standard_normal((CLUSTERS, D)).astype(np.float32)
        _CENTRES = c / np.linalg.norm(c, axis=1, keepdims=True)
    rng = np.random.default_rng(1000 + i)
    x = _CENTRES[rng.integers(0, CLUSTERS, m)]
    x += rng.standard_normal((m, D), dtype=np.float32) * (0.8 / np.sqrt(D))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force_top10(vectors16: np.ndarray, queries: np.ndarray) -> np.ndarray:
    best_s = np.full((len(queries), 10), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 10), dtype=np.int64)
    step = 200_000
    for i in range(0, len(vectors16), step):
        s = np.asarray(vectors16[i:i + step], dtype=np.float32) @ queries.T  # (m, q)
        top = np.argpartition(-s, 9, axis=0)[:10]  # (10, q)
        cand_s = np.take_along_axis(s, top, axis=0).T
        cand_i = top.T + i
        all_s = np.concatenate([best_s, cand_s], axis=1)
        all_i = np.concatenate([best_i, cand_i], axis=1)
        o = np.argsort(-all_s, axis=1)[:, :10]
        best_s = np.take_along_axis(all_s, o, axis=1)
        best_i = np.take_along_axis(all_i, o, axis=1)
    return best_i


def _session(user) -> str:
    """A logged-in session made in the database, naming the backend that loads users
    (bench_review_http.new_session names AUTHENTICATION_BACKENDS[0], now the lockout
    backend, which cannot)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    s = SessionStore()
    s[SESSION_KEY] = str(user.pk)
    s[BACKEND_SESSION_KEY] = "relabel_app.roles.RoleLoadingBackend"
    s[HASH_SESSION_KEY] = user.get_session_auth_hash()
    s.create()
    return s.session_key


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="200k vectors, not recorded")
    ap.add_argument("--n", type=int, help="number of vectors (default 2,000,000)")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--reuse-index", action="store_true",
                    help="measure the queries on the index an earlier run built (its recorded "
                    "build time is reported again)")
    args = ap.parse_args()
    n = args.n or (200_000 if args.quick else 2_000_000)
    recording = not (args.quick or args.no_record or args.n)
    out = ROOT / "bench" / "out" / "search"
    out.mkdir(parents=True, exist_ok=True)
    ensure_bench_database()
    os.environ["RELABEL_SEARCH_INDEX_DIR"] = str(out / "indexes")
    setup_django()

    from bench.bench_clap import ensure_bench_clap, model_root
    from pipeline.embeddings import EmbeddingSpace
    from relabel_app.ontology_source import load_ontology
    from search import queries as sq
    from search import vector_index as vi
    from search.models import SearchIndex
    from search.services import index_folder, index_loaded

    print(f"load before: {loadavg()}; {n:,} vectors of {D} dimensions, {CLUSTERS} clusters")
    clap_dir = ensure_bench_clap(model_root() / "bench-clap", load_ontology())
    spec = {"adapter": "transformers-clap", "model": str(clap_dir)}
    space, _ = EmbeddingSpace.objects.update_or_create(
        model_id=str(clap_dir), defaults={"spec": spec, "dim": D, "random_weights": True})
    ds, clip_ids = ensure_clips(n)
    t0 = time.perf_counter()
    vec16 = vectors_file(n, out)
    print(f"  vectors ready in {time.perf_counter() - t0:.1f} s")

    idx, _ = SearchIndex.objects.get_or_create(dataset=ds, space=space)
    rss0 = rss_mb()
    if args.reuse_index and idx.version and index_folder(idx, idx.version).is_dir():
        folder = index_folder(idx, idx.version)
        meta = json.loads((folder / "meta.json").read_text())
        build_s = idx.build_seconds
        print(f"  reusing v{idx.version} ({meta['kind']}, built in {build_s:.1f} s)")
    else:
        version = idx.version + 1
        folder = index_folder(idx, version)
        t0 = time.perf_counter()
        meta = vi.build(folder, clip_ids, vec16, threads=os.cpu_count())
        build_s = time.perf_counter() - t0
        print(f"  build: {build_s:.1f} s, {meta['kind']} {meta['params']}, load {loadavg()}")
        SearchIndex.objects.filter(pk=idx.pk).update(
            status="ready", version=version, kind=meta["kind"], clip_count=n,
            size_bytes=meta["bytes"], build_seconds=build_s)
        for old in index_folder(idx).glob("v*"):
            if old.name != f"v{version}":
                import shutil

                shutil.rmtree(old, ignore_errors=True)
        idx.refresh_from_db()
    sizes = {f.name: f.stat().st_size for f in folder.iterdir()}
    in_memory_mb = (sizes.get("index.faiss", 0) + sizes["clip_ids.npy"]) / 2**20

    # Recall@10 against exact search on the very vectors indexed.
    rss_before_load = rss_mb()
    loaded = index_loaded(idx)
    rng = np.random.default_rng(7)
    qrows = rng.integers(0, n, QUERIES["recall"])
    qs = np.asarray(vec16[qrows], dtype=np.float32)
    qs += rng.standard_normal(qs.shape, dtype=np.float32) * (0.5 / np.sqrt(D))
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    t0 = time.perf_counter()
    exact = brute_force_top10(loaded.vectors, qs)
    print(f"  brute force for {len(qs)} queries: {time.perf_counter() - t0:.1f} s")
    recalls = []
    for q, want in zip(qs, exact, strict=True):
        got = {h.clip_id for h in loaded.search(q, 10)}
        recalls.append(len(got & set(int(clip_ids[i]) for i in want)) / 10)
    recall = float(np.mean(recalls))
    print(f"  recall@10: {recall:.3f}")

    # "Clips like this": the query as the page runs it, index warm.
    from relabel_app.models import Clip

    probe = [int(clip_ids[i]) for i in rng.integers(0, n, QUERIES["similar"] + 20)]
    clips = Clip.objects.select_related("dataset").in_bulk(probe)
    times = []
    for j, cid in enumerate(probe):
        t0 = time.perf_counter()
        page = sq.similar_clips(clip=clips[cid], k=sq.SIMILAR_K)
        dt = (time.perf_counter() - t0) * 1000
        assert len(page.rows) == sq.SIMILAR_K
        if j >= 20:  # warm-up: first page-ins of the mapped vectors
            times.append(dt)
    similar_p95 = pct(times, 95)
    rss_after = rss_mb()
    print(f"  similar: p50 {pct(times, 50):.1f} ms, p95 {similar_p95:.1f} ms; "
          f"RSS +{rss_after - rss_before_load:.0f} MB after loading; load {loadavg()}")

    # Text search over HTTP, one gunicorn worker, one thread.
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from bench.bench_review_http import start_server
    from relabel_app.roles import ensure_role_groups

    ensure_role_groups()
    user, _ = get_user_model().objects.get_or_create(username="search-bench")
    user.groups.add(Group.objects.get(name="reviewer"))
    session_key = _session(user)
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    # The first request loads the text encoder: more than gunicorn's default 30 s on a busy
    # machine (the warm-up requests are not counted).
    os.environ["GUNICORN_CMD_ARGS"] = "--timeout 600"
    server = start_server(1, 1, 60, tmp)
    texts = ["dog barking", "a siren far away", "rain on a tin roof", "male speech",
             "ukulele strumming", "engine idling", "birds singing at dawn", "glass breaking",
             "crowd cheering in a stadium", "typing on a keyboard"]
    ttimes = []
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        headers = {"Cookie": f"sessionid={session_key}", "Accept": "application/json"}
        for j in range(QUERIES["text"] + 5):
            q = texts[j % len(texts)] + (f" {j}" if j >= len(texts) else "")
            from urllib.parse import urlencode

            path = "/api/search/?" + urlencode({"dataset": ds.pk, "q": q, "k": 50})
            t0 = time.perf_counter()
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            body = r.read()
            dt = (time.perf_counter() - t0) * 1000
            if r.status != 200:
                raise SystemExit(f"GET {path}: {r.status} {body[:500]!r}")
            assert len(json.loads(body)["results"]) == 50
            if j >= 5:  # warm-up: the model load and the first page-ins
                ttimes.append(dt)
        conn.close()
    finally:
        server.stop()
    text_p95 = pct(ttimes, 95)
    print(f"  text search over HTTP: p50 {pct(ttimes, 50):.1f} ms, p95 {text_p95:.1f} ms; "
          f"load {loadavg()}")

    figures = {
        "search_index_build_2m_s": (build_s, "s"),
        "search_index_mb_2m": (in_memory_mb, "MB"),
        "search_recall_at_10_2m": (recall, "ratio"),
        "similar_query_p95_ms_2m": (similar_p95, "ms"),
        "text_search_p95_ms_2m": (text_p95, "ms"),
    }
    for k, (v, u) in figures.items():
        print(f"{k:28s} {v:10.3f} {u}")
    details = {"bench_search": {
        "n": n, "d": D, "clusters": CLUSTERS, "kind": meta["kind"], "params": meta["params"],
        "files_mb": {k: round(v / 2**20, 1) for k, v in sizes.items()},
        "rss_growth_after_load_and_queries_mb": round(rss_after - rss_before_load, 1),
        "rss_mb_before_build": round(rss0, 1),
        "similar_p50_ms": round(pct(times, 50), 2), "text_p50_ms": round(pct(ttimes, 50), 2),
        "loadavg_end": loadavg(), "text_encoder": f"{clap_dir} (HTSAT-base, random weights)",
    }}
    if recording:
        record(figures, details)
        print("recorded in bench/results.json")
    else:
        print(json.dumps(details, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
