"""CLAP filtering throughput on the full-size architecture of the paper's LAION CLAP, HTSAT-base
(`laion/larger_clap_general`, the transformers-format release of
music_speech_audioset_epoch_15_esc_89.98.pt; layout read from
`clap_module/model_configs/HTSAT-base.json` and `htsat.py` inside the laion-clap wheel,
never installed), random weights, on this machine's CPU. Three figures, in clips/s:

- ``clap_seed_path_clips_per_s``: the original method's per-clip path. For each clip: read
  the file and resample to 48 kHz, embed that audio alone (batch of 1), embed the clip's 5
  candidate texts (a text forward per clip), cosine scores, threshold.
- ``clap_stage_clips_per_s``: the project's stage as ``pipeline.execution.filter_chunk``
  runs it, without the database: decode a chunk, one ``embed_audio`` call per chunk,
  scores from ``ClassTextEmbeddingCache`` (527 class texts embedded once per model; that
  one-off cost is ``clap_class_text_cache_s``, outside the steady-state figure),
  ``filter_candidates`` and ``best_of_n``. Chunk sizes are swept (the adapter's batch size
  set to the chunk size, so a chunk is one forward); the fastest is reported.
- ``clap_forward_only_clips_per_s``: ``model.get_audio_features`` alone on precomputed
  input features, at the fastest chunk's batch size, measured alongside each stage rep.

Both paths call the same adapter (``ClapTransformers``, loaded from disk like a real
model, with its torch.stft features), the same ``load_audio`` and the same cosine, so the
seed/stage ratio measures batching and the per-clip text forward, nothing else. Every
phase (decode, resample, features, forward, text) is timed in the measured passes
themselves and printed per clip.

The model is saved once under ``<model dir>/bench-clap`` (seeded, so always the same
weights) with a ClapProcessor whose feature extractor has LAION's HTSAT audio front end
(from HTSAT-base.json: 48 kHz, 64 mel bins, the values of the transformers releases'
preprocessor_config.json) and a RoBERTa-style byte-level BPE tokenizer trained here on the ontology's names
and descriptions (about 3.5k ids, all < the 50265-token text vocabulary), so class texts
take about as many tokens as with RoBERTa's own (~11). Clips are synthetic 10 s mono
16-bit WAV files at 16 kHz in a temp folder, each with 5 candidate labels drawn from the
527 AudioSet classes.

Usage: python bench/bench_clap.py [--quick] [--clips N] [--reps N] [--chunks 4,8,16,32]
       [--threads N] [--dtype float32|bfloat16] [--retries N] [--wait-quiet S] [--cprofile]

On a 2-core machine anything else running slows a 2-thread torch process down several
times over, so the machine's other CPU use is sampled during every measurement: a rep
during which other processes used over 0.25 cores is measured again (--retries), and one
still contended is marked CONTENDED and counted in a closing warning.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, machine, median, record  # noqa: E402
from bench.contention import Watch, wait_for_quiet  # noqa: E402

SEED = 1234
BENCH_CLAP_VERSION = 3  # 3: HTSAT-base (was HTSAT-tiny, laion/clap-htsat-unfused)
TOKENIZER_VOCAB = 8000
LABELS_PER_CLIP = 5
THRESHOLD = 0.25  # the paper profile's
CLIP_SECONDS = 10.0
CONTENDED_CORES = 0.25
PAPER_CLAP_ARCH = "HTSAT-base"  # laion/larger_clap_general


def model_root() -> Path:
    """settings.MODEL_DIR without importing Django settings (which would start a database)."""
    data = Path(os.environ.get("RELABEL_DATA_DIR", ROOT / "data"))
    return Path(os.environ.get("RELABEL_MODEL_DIR", data / "models"))


def bench_tokenizer(ontology):
    """A RoBERTa-style byte-level BPE (RoBERTa's special tokens at ids 0-4) trained here on
    the ontology's names and descriptions, so class texts split into about as many tokens
    as RoBERTa's 50k vocabulary gives (mostly a token per word); ids < 50265."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from pipeline.stages.filter import CLAP_TEXT_TEMPLATE

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB, min_frequency=2, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    corpus = [CLAP_TEXT_TEMPLATE.format(name=c.name) for c in ontology.classes]
    corpus += [c.description for c in ontology.classes if c.description]
    raw.train_from_iterator(corpus, trainer=trainer)
    raw.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=512,
    )


def ensure_bench_clap(out: Path, ontology) -> Path:
    """The full-size random-weight CLAP under ``out``, built and saved on first use."""
    marker = out / "bench_clap.json"
    want = {"version": BENCH_CLAP_VERSION, "seed": SEED, "tokenizer_vocab": TOKENIZER_VOCAB,
            "architecture": PAPER_CLAP_ARCH}
    try:
        if json.loads(marker.read_text()) == want and (out / "config.json").is_file():
            return out
    except (OSError, ValueError):
        pass
    import torch
    from transformers import ClapModel, ClapProcessor

    from pipeline.testing.tiny_models import clap_feature_extractor, full_size_clap_config

    t0 = time.perf_counter()
    tok = bench_tokenizer(ontology)
    config = full_size_clap_config(PAPER_CLAP_ARCH)
    if len(tok) > config.text_config.vocab_size:
        raise SystemExit(f"tokenizer has {len(tok)} ids, over the text vocabulary's "
                         f"{config.text_config.vocab_size}")
    torch.manual_seed(SEED)
    model = ClapModel(config).to(torch.float32).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    ClapProcessor(feature_extractor=clap_feature_extractor(PAPER_CLAP_ARCH),
                  tokenizer=tok).save_pretrained(out)
    marker.write_text(json.dumps(want))
    print(f"built and saved {out} in {time.perf_counter() - t0:.1f} s")
    return out


def make_clips(folder: Path, n: int, sr: int, classes: list) -> list[dict]:
    """n synthetic 10 s clips (tones, chirps, noise bursts), 5 candidate classes each."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(SEED)
    t = np.arange(int(CLIP_SECONDS * sr)) / sr
    clips = []
    for i in range(n):
        x = np.zeros_like(t)
        for _ in range(rng.integers(1, 4)):
            f0, f1 = rng.uniform(80, 0.4 * sr, size=2)
            x += rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * (f0 + (f1 - f0) * t / 20) * t)
        env = (rng.random(t.shape[0] // 1600 + 1) < 0.4).repeat(1600)[: t.shape[0]]
        x += rng.uniform(0.01, 0.1) * rng.standard_normal(t.shape[0]) * env
        path = folder / f"Ybench{i:05d}.wav"
        sf.write(str(path), np.clip(x, -1, 1).astype(np.float32), sr, subtype="PCM_16")
        picked = rng.choice(len(classes), size=LABELS_PER_CLIP, replace=False)
        clips.append({"path": path, "classes": [classes[j] for j in picked]})
    return clips


class Phases:
    """Seconds spent inside wrapped callables, by phase name (nested phases overlap)."""

    def __init__(self) -> None:
        self.s: dict[str, float] = defaultdict(float)

    def wrap(self, name: str, fn):
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.s[name] += time.perf_counter() - t
        return timed

    def take(self) -> dict[str, float]:
        out, self.s = dict(self.s), defaultdict(float)
        return out


def instrument(clap, phases: Phases) -> None:
    """Time the real calls in place (a few microseconds per call of overhead)."""
    import pipeline.audio as audio_mod

    audio_mod.resample = phases.wrap("decode: resample to 48 kHz", audio_mod.resample)
    audio_mod.load_audio = phases.wrap("decode total (read + resample)", audio_mod.load_audio)
    clap._prepare = phases.wrap("audio: int16 quantise + crop", clap._prepare)
    clap._torch_features = phases.wrap("audio: log-mel features", clap._torch_features)
    clap.model.get_audio_features = phases.wrap("audio: model forward",
                                                clap.model.get_audio_features)
    clap.embed_audio = phases.wrap("audio: embed_audio total", clap.embed_audio)
    clap.model.get_text_features = phases.wrap("text: model forward",
                                               clap.model.get_text_features)
    clap.embed_text = phases.wrap("text: embed_text total", clap.embed_text)


def seed_path(clap, clips: list[dict], template: str, phases: Phases) -> int:
    """The per-clip path; returns how many candidates were kept."""
    import pipeline.audio as audio_mod
    from pipeline.stages.filter import clap_scores

    kept = 0
    for c in clips:
        audio = audio_mod.load_audio(c["path"], clap.sample_rate)
        emb = clap.embed_audio([audio])
        texts = clap.embed_text([template.format(name=k.name) for k in c["classes"]])
        t = time.perf_counter()
        scores = clap_scores(emb[0], texts)
        kept += int((scores >= THRESHOLD).sum())
        phases.s["scores + filter"] += time.perf_counter() - t
    return kept


def stage_path(clap, cache, clips: list[dict], chunk: int, phases: Phases) -> None:
    """filter_chunk's model-side work for each chunk of clips, without the database."""
    import pipeline.audio as audio_mod
    from pipeline.stages.filter import best_of_n, filter_candidates
    from pipeline.stages.match import Candidate

    for start in range(0, len(clips), chunk):
        part = clips[start : start + chunk]
        audios = [audio_mod.load_audio(c["path"], clap.sample_rate) for c in part]
        cache.matrix(clap)
        emb = clap.embed_audio(audios)
        t = time.perf_counter()
        for i, c in enumerate(part):
            cands = [Candidate(mid=k.mid, tier="exact", phrase=k.name, score=1.0)
                     for k in c["classes"]]
            scores = cache.scores(clap, emb[i], [k.mid for k in cands])
            best_of_n([filter_candidates(cands, scores, THRESHOLD)])
        phases.s["scores + filter"] += time.perf_counter() - t


def forward_only(clap, batches: list[dict]) -> None:
    import torch

    with torch.inference_mode():
        for feats in batches:
            clap.model.get_audio_features(**feats)


def timed(fn) -> tuple[float, float, float]:
    """(wall seconds, this process's CPU cores, other processes' CPU cores) over fn()."""
    w = Watch()
    fn()
    wall = time.perf_counter() - w.wall
    return wall, (time.process_time() - w.own) / wall, w.other_cores()


def clean_median(xs: list[tuple[float, bool]]) -> tuple[float, str]:
    """Median of the reps no other process disturbed (of all reps when every one was)."""
    clean = [v for v, bad in xs if not bad]
    use = clean or [v for v, _ in xs]
    note = f"median of {len(use)}"
    if not clean:
        note += ", all contended"
    elif len(clean) < len(xs):
        note += f"; {len(xs) - len(clean)} contended rep(s) left out"
    return median(use), note


def busy_note(others: float) -> str:
    return f"others {others:.2f} cores" + (" CONTENDED" if others > LIMIT["cores"] else "")


# Others may use the cores torch leaves free, plus CONTENDED_CORES (set in main()).
LIMIT = {"cores": CONTENDED_CORES}


PHASE_ORDER = [
    "decode total (read + resample)",
    "decode: resample to 48 kHz",
    "audio: embed_audio total",
    "audio: int16 quantise + crop",
    "audio: log-mel features",
    "audio: model forward",
    "text: embed_text total",
    "text: model forward",
    "scores + filter",
    "other (not in a phase)",
    "wall total",
]
TOP_LEVEL = ["decode total (read + resample)", "audio: embed_audio total", "text: embed_text total",
             "scores + filter"]


def phase_table(rows: dict[str, tuple[dict, int]]) -> None:
    """Per-clip milliseconds of each phase, one column per measured path."""
    print(f"  {'phase (ms per clip)':<32}" + "".join(f"{col:>20}" for col in rows))
    for ph, _ in rows.values():
        top = sum(ph.get(k, 0.0) for k in TOP_LEVEL) or ph.get("audio: model forward", 0.0)
        ph["other (not in a phase)"] = ph["wall total"] - top
    for name in PHASE_ORDER:
        cells = [f"{1000 * ph[name] / n:>20.1f}" if name in ph else f"{'-':>20}"
                 for ph, n in rows.values()]
        print(f"  {name:<32}" + "".join(cells))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer clips, chunk sizes and reps")
    ap.add_argument("--clips", type=int, help="clips written (default 64, quick 16)")
    ap.add_argument("--reps", type=int, help="repetitions of each measurement (5, quick 3)")
    ap.add_argument("--seed-clips", type=int, help="clips per seed-path rep (8, quick 4)")
    ap.add_argument("--stage-clips", type=int, help="clips per stage rep (32, quick 16)")
    ap.add_argument("--chunks", help="chunk sizes to sweep (4,8,16,32; quick 8,16)")
    ap.add_argument("--batch-size", type=int,
                    help="the adapter's batch size (default: the chunk size, one forward a chunk)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    ap.add_argument("--dtype", default="float32", help="model dtype (float32, bfloat16)")
    ap.add_argument("--sample-rate", type=int, default=16000, help="sample rate of the WAVs")
    ap.add_argument("--wait-quiet", type=float, default=60.0,
                    help="wait up to this many seconds for other processes to go quiet")
    ap.add_argument("--retries", type=int, default=2,
                    help="measure a rep again up to this many times while others compete")
    ap.add_argument("--retry-budget", type=float, default=240.0,
                    help="no more retries once the script has run this many seconds")
    ap.add_argument("--time-limit", type=float, default=330.0,
                    help="start no new rep after this many seconds (each measurement keeps "
                    "at least one)")
    ap.add_argument("--cprofile", action="store_true",
                    help="also cProfile one stage pass and print the top functions")
    ap.add_argument("--no-record", action="store_true", help="do not write bench/results.json")
    args = ap.parse_args()
    q = args.quick
    n_clips = args.clips or (16 if q else 64)
    reps = args.reps or (3 if q else 5)
    seed_n = args.seed_clips or (4 if q else 8)
    stage_n = min(n_clips, args.stage_clips or (16 if q else 32))
    chunks = [int(c) for c in (args.chunks or ("8,16" if q else "4,8,16,32")).split(",")]
    LIMIT["cores"] = max(0, (os.cpu_count() or 1) - args.threads) + CONTENDED_CORES

    def batch(chunk: int) -> int:
        return args.batch_size or chunk

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from pipeline.backends.transformers_clap import ClapTransformers
    from pipeline.stages.filter import CLAP_TEXT_TEMPLATE, ClassTextEmbeddingCache
    from relabel_app.ontology_source import load_ontology

    t_start = time.perf_counter()
    print(f"machine: {machine()}")
    print(f"torch {torch.__version__}: torch.set_num_threads({args.threads}) for all three "
          f"figures (machine cores: {os.cpu_count()}); dtype {args.dtype}")
    ontology = load_ontology()
    classes = ontology.trainable
    path = ensure_bench_clap(model_root() / "bench-clap", ontology)
    t0 = time.perf_counter()
    clap = ClapTransformers(str(path), device="cpu", dtype=args.dtype)
    print(f"model: {path} (full-size {PAPER_CLAP_ARCH}, the paper's laion/larger_clap_general, "
          f"{sum(p.numel() for p in clap.model.parameters()) / 1e6:.1f} M parameters, random "
          f"weights), loaded through ClapTransformers in {time.perf_counter() - t0:.1f} s; "
          f"fast_features={clap.fast_features}")
    tmp = tempfile.TemporaryDirectory(prefix="bench_clap_")
    clips = make_clips(Path(tmp.name), n_clips, args.sample_rate, classes)
    print(f"clips: {n_clips} synthetic {CLIP_SECONDS:g} s mono 16-bit WAVs at "
          f"{args.sample_rate} Hz in {tmp.name}, {LABELS_PER_CLIP} candidate classes each")
    tok = clap.processor.tokenizer
    lens = [len(tok(CLAP_TEXT_TEMPLATE.format(name=k.name))["input_ids"]) for k in classes]
    print(f"class texts: {len(classes)} ('{CLAP_TEXT_TEMPLATE}'), {np.mean(lens):.1f} tokens "
          f"on average (max {max(lens)}) with the bench tokenizer ({len(tok)} ids)")
    quiet = wait_for_quiet(args.wait_quiet)
    print(f"other processes: {quiet:.2f} cores busy before the start (load average "
          f"{os.getloadavg()[0]:.2f}); a rep marked CONTENDED had others using over "
          f"{LIMIT['cores']:.2f} cores: with {args.threads} threads on {os.cpu_count()} cores "
          "that can slow torch down many times over")
    contended = 0

    phases = Phases()
    instrument(clap, phases)

    def measure(fn, label: str) -> tuple[float, float, float, dict]:
        """fn() timed; measured again (up to --retries times) while others competed."""
        nonlocal contended
        for attempt in range(args.retries + 1):
            wall, cpu, others = timed(fn)
            ph = phases.take()
            late = time.perf_counter() - t_start > args.retry_budget
            if others <= LIMIT["cores"] or attempt == args.retries or late:
                break
            print(f"    ({label}: {wall:.1f} s with others using {others:.2f} cores; "
                  "measuring again)")
        contended += others > LIMIT["cores"]
        ph["wall total"] = wall
        return wall, cpu, others, ph

    def out_of_time(what: str, done: int) -> bool:
        if time.perf_counter() - t_start < args.time_limit:
            return False
        print(f"  (time limit of {args.time_limit:g} s reached: {what} stops after {done} "
              f"rep(s))")
        return True

    def add(reps_ph: list, ph: dict, others: float) -> None:
        reps_ph.append((ph, others > LIMIT["cores"]))

    def phase_sum(reps_ph: list, clips_per_rep: int) -> tuple[dict, int]:
        """Summed phase seconds of the undisturbed reps (all when none was), and clips."""
        use = [ph for ph, bad in reps_ph if not bad] or [ph for ph, _ in reps_ph]
        total: dict[str, float] = defaultdict(float)
        for ph in use:
            for k, v in ph.items():
                total[k] += v
        return total, len(use) * clips_per_rep

    caches = []

    def build_cache() -> None:
        caches.append(ClassTextEmbeddingCache(classes, cache_dir=None))
        caches[-1].matrix(clap)

    cache_s, _, others, _ = measure(build_cache, "class text cache")
    cache = caches[-1]
    print(f"\nclap_class_text_cache_s = {cache_s:.2f} s (527 class texts, once per model; "
          f"embed_text batches of {clap.batch_size}; excluded from the stage figure; "
          f"{busy_note(others)})")

    def subset(k: int, rep: int) -> list[dict]:
        start = (rep * k) % n_clips
        return [clips[(start + i) % n_clips] for i in range(k)]

    def features(part: list[dict]) -> dict:
        wavs = [clap._prepare(clap_load(c["path"], clap.sample_rate), clap.sample_rate)
                for c in part]
        feats = clap._torch_features(wavs)
        feats["input_features"] = feats["input_features"].to(clap.model.dtype)
        return feats

    # Warm-up: a seed-path clip, one stage chunk, and one forward of each batch size.
    t0 = time.perf_counter()
    seed_path(clap, subset(1, 0), CLAP_TEXT_TEMPLATE, phases)
    clap.batch_size = batch(chunks[0])
    stage_path(clap, cache, subset(chunks[0], 0), chunks[0], phases)
    feats_all = features(subset(stage_n, 0))
    fwd_batches = {c: [{k: v[i : i + batch(c)] for k, v in feats_all.items()}
                       for i in range(0, stage_n, batch(c))] for c in chunks}
    for c in chunks:
        forward_only(clap, fwd_batches[c][:1])
    phases.take()
    print(f"warm-up: {time.perf_counter() - t0:.1f} s")

    # 1. The seed path, one clip at a time.
    print(f"\nseed path: {reps} reps x {seed_n} clips, one clip at a time")
    seed_rates, seed_ph = [], []
    for rep in range(reps):
        if rep and out_of_time("seed path", rep):
            break
        part = subset(seed_n, rep)
        wall, cpu, others, ph = measure(
            lambda p=part: seed_path(clap, p, CLAP_TEXT_TEMPLATE, phases), "seed path")
        add(seed_ph, ph, others)
        seed_rates.append((len(part) / wall, others > LIMIT["cores"]))
        print(f"  rep {rep + 1}: {len(part) / wall:.3f} clips/s ({wall:.1f} s; this process "
              f"{cpu:.2f} cores, {busy_note(others)})")
    seed, seed_note = clean_median(seed_rates)

    # 2. The stage at each chunk size and the forward alone at that batch size, reps
    # interleaved so that a change of load hits every configuration alike.
    bs_note = f"adapter batch size {args.batch_size}" if args.batch_size else \
        "adapter batch size = chunk size"
    print(f"\nstage and forward-only: chunk sizes {chunks} ({bs_note}; "
          f"forward-only on features precomputed for the same clips), {reps} reps x "
          f"{stage_n} clips, interleaved")
    stage_rates: dict[int, list[float]] = {c: [] for c in chunks}
    fwd_rates: dict[int, list[float]] = {c: [] for c in chunks}
    stage_ph: dict[int, list] = {c: [] for c in chunks}
    fwd_ph: dict[int, list] = {c: [] for c in chunks}
    for rep in range(reps):
        if rep and out_of_time("stage and forward-only", rep):
            break
        for c in chunks:
            clap.batch_size = batch(c)
            part = subset(stage_n, rep)
            wall, cpu, others, ph = measure(
                lambda p=part, c=c: stage_path(clap, cache, p, c, phases), f"stage {c}")
            add(stage_ph[c], ph, others)
            stage_rates[c].append((len(part) / wall, others > LIMIT["cores"]))
            fwall, fcpu, fothers, ph = measure(
                lambda c=c: forward_only(clap, fwd_batches[c]), f"forward {c}")
            add(fwd_ph[c], ph, fothers)
            fwd_rates[c].append((stage_n / fwall, fothers > LIMIT["cores"]))
            print(f"  rep {rep + 1} chunk {c:>3}: stage {len(part) / wall:6.3f} clips/s "
                  f"({cpu:.2f} cores, {busy_note(others)}); forward-only "
                  f"{stage_n / fwall:6.3f} clips/s ({fcpu:.2f} cores, {busy_note(fothers)})")
    for c in chunks:
        (sv, sn), (fv, fn) = clean_median(stage_rates[c]), clean_median(fwd_rates[c])
        print(f"  chunk {c:>3}: stage {sv:.3f} clips/s ({sn}), forward-only {fv:.3f} clips/s "
              f"({fn})")
    best = max(chunks, key=lambda c: clean_median(stage_rates[c])[0])
    clap.batch_size = batch(best)
    print(f"  best chunk size: {best}")
    stage, stage_note = clean_median(stage_rates[best])
    fwd, fwd_note = clean_median(fwd_rates[best])

    if args.cprofile:
        prof = cProfile.Profile()
        prof.enable()
        stage_path(clap, cache, subset(stage_n, 0), best, phases)
        prof.disable()
        phases.take()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
        print("\ncProfile of one stage pass (top 15 by own time):")
        print("\n".join(buf.getvalue().splitlines()[4:]))

    # Reference: what transformers' ClapFeatureExtractor (numpy) path costs per clip.
    ref_audio = [clap_load(c["path"], clap.sample_rate) for c in subset(min(4, n_clips), 0)]
    t0 = time.perf_counter()
    for a in ref_audio:
        clap.audio_inputs([a])
    ref_ms = 1000 * (time.perf_counter() - t0) / len(ref_audio)
    phases.take()

    print("\nwhere the time goes (mean ms per clip over the undisturbed reps; the rows after "
          "a 'total' row are part of it):")
    seed_sum, seed_total = phase_sum(seed_ph, seed_n)
    stage_sum, stage_total = phase_sum(stage_ph[best], stage_n)
    phase_table({"seed path": (seed_sum, seed_total),
                 f"stage (chunk {best})": (stage_sum, stage_total),
                 f"forward-only ({batch(best)})": phase_sum(fwd_ph[best], stage_n)})
    print(f"  (features through transformers' ClapFeatureExtractor instead of the adapter's "
          f"torch.stft path: {ref_ms:.1f} ms per clip)")

    ratio_seed = stage / seed
    ratio_fwd = stage / fwd
    ms = {k: 1000 * v / stage_total for k, v in stage_sum.items()}
    sms = {k: 1000 * v / seed_total for k, v in seed_sum.items()}
    print(f"\nclap_seed_path_clips_per_s    = {seed:.3f} ({seed_note})")
    print(f"clap_stage_clips_per_s        = {stage:.3f} ({stage_note}; chunk {best})")
    print(f"clap_forward_only_clips_per_s = {fwd:.3f} ({fwd_note}; batch {batch(best)})")
    print(f"clap_class_text_cache_s       = {cache_s:.2f}")
    print(f"stage / seed path    = {ratio_seed:.2f}x  (target >= 5x: "
          f"{'met' if ratio_seed >= 5.0 else 'MISSED'})")
    print(f"stage / forward-only = {100 * ratio_fwd:.1f}%  (target >= 80%: "
          f"{'met' if ratio_fwd >= 0.80 else 'MISSED'})")
    fwd_b = ms["audio: model forward"]
    fwd_1 = sms["audio: model forward"]
    text_1 = sms["text: embed_text total"]
    print(f"\nwhat bounds the ratios (phase times above): the stage spends {fwd_b:.0f} of its "
          f"{ms['wall total']:.0f} ms per clip ({100 * fwd_b / ms['wall total']:.0f}%) in the "
          f"batched audio forward; decoding, resampling, features and scoring take the rest. "
          f"The seed path spends {fwd_1:.0f} ms in a batch-of-1 audio forward and {text_1:.0f} "
          f"ms in its per-clip text forward, of {sms['wall total']:.0f} ms. The stage's gain "
          f"splits into batching ({fwd_1:.0f} -> {fwd_b:.0f} ms of forward per clip at batch "
          f"{batch(best)}: {fwd_1 / fwd_b:.2f}x on this machine) and the text forward it no "
          f"longer runs; a stage doing nothing but its forward would reach "
          f"{sms['wall total'] / fwd_b:.2f}x the seed path here.")
    if contended:
        print(f"WARNING: {contended} measurement(s) ran while other processes used over "
              f"{LIMIT['cores']:.2f} cores; rerun on a quiet machine for figures to compare.")
    print(f"total time {time.perf_counter() - t_start:.0f} s")

    if not args.no_record:
        sfx = "_quick" if q else ""
        if args.dtype not in ("float32", "fp32"):
            sfx += f"_{args.dtype}"
        if args.threads != os.cpu_count():
            sfx += f"_{args.threads}threads"
        if args.batch_size:
            sfx += f"_batch{args.batch_size}"
        record({
            f"clap_seed_path_clips_per_s{sfx}": (seed, "clips/s"),
            f"clap_stage_clips_per_s{sfx}": (stage, "clips/s"),
            f"clap_forward_only_clips_per_s{sfx}": (fwd, "clips/s"),
            f"clap_class_text_cache_s{sfx}": (cache_s, "s"),
            f"clap_stage_over_seed{sfx}": (ratio_seed, "x"),
            f"clap_stage_over_forward_only{sfx}": (100 * ratio_fwd, "%"),
        }, extra={f"bench_clap{sfx}": {
            "threads": args.threads, "dtype": args.dtype, "clips": n_clips,
            "sample_rate": args.sample_rate, "best_chunk": best, "batch_size": batch(best),
            "architecture": PAPER_CLAP_ARCH, "reps": reps, "chunks": chunks,
            "chunk_sweep_stage_clips_per_s": {str(c): round(clean_median(v)[0], 3)
                                              for c, v in stage_rates.items()},
            "chunk_sweep_forward_only_clips_per_s": {str(c): round(clean_median(v)[0], 3)
                                                     for c, v in fwd_rates.items()},
            "seed_ms_per_clip": {k: round(v, 1) for k, v in sms.items()},
            "stage_ms_per_clip": {k: round(v, 1) for k, v in ms.items()},
            "contended_measurements": contended,
        }})
    tmp.cleanup()
    return 0


def clap_load(path, sr):
    from pipeline.audio import load_audio

    return load_audio(path, sr)


if __name__ == "__main__":
    sys.exit(main())
