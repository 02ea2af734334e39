"""Batched against one-by-one generation for the caption and predict stages, on mid-size
random-weight models on this machine's CPU. Two figures (ratios of clips/s):

- ``caption_batched_over_sequential``: ``pipeline.stages.caption.run_caption_batch`` over
  the same clips with ``batch_size`` 16 (each chat step one ``generate`` over the clips
  that need it) against ``batch_size`` 1 (one ``generate`` per clip and step, what the
  stage did before), through the real ``Qwen2AudioChat`` adapter. Goal: at least 4x.
- ``predict_batched_over_sequential``: the same for ``run_predict_best_of_n`` through
  ``CausalLMChat`` (a Mistral-architecture model), 16 against 1.

The models are Qwen2-Audio (Whisper-style audio encoder + Qwen2 decoder) and Mistral
configurations of a few tens of millions of parameters (printed), seeded, saved once under
``<model dir>/bench-generation`` with the tiny models' tokenizers and processors (so the
prompts are tokenised like the tiny profile's) and loaded back through the adapters. With
random weights a model could stop at any token, so every answer is exactly
``--caption-tokens`` (48: round 1 asks for at most 50 words) or ``--predict-tokens`` (16:
two to four labels on one line) tokens long (``max_new_tokens`` and ``min_new_tokens``
both set): both modes generate the same number of tokens for the same requests. The caption stage runs
one attempt per clip (``presence_method="read"``, no length rule to retry on), so both
modes send identical requests; the answers are checked to be identical too (greedy).

``caption_clips_per_s_gpu`` (the full 7B configurations in bfloat16, batch 1 and 16)
needs a GPU and is not measured by this script on a CPU-only machine (not written).

Usage: python bench/bench_generation.py [--clips 16] [--batch 16] [--caption-tokens 48]
       [--predict-tokens 16] [--reps 2] [--threads N] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, machine, median, record  # noqa: E402
from bench.contention import Watch  # noqa: E402

SEED = 1234
BENCH_GENERATION_VERSION = 2

# Mid-size: big enough that a forward is real work, small enough for a 2-core CPU. As in
# Qwen2-Audio-7B (a 0.6 B audio encoder before a 7.7 B decoder), the encoder is a small
# part of the model; its 30 s window (1500 positions) is encoded on every chat step.
AUDIO_ENCODER = dict(num_mel_bins=128, encoder_layers=4, encoder_attention_heads=4,
                     encoder_ffn_dim=1024, d_model=256, max_source_positions=1500)
DECODER = dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=6,
               num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=4096)

SUMMARY_WORDS = ("dog", "barking", "rain", "engine", "guitar", "woman", "speech", "wind",
                 "birds", "door", "traffic", "water", "music", "drums", "crowd", "siren")


def model_root() -> Path:
    data = Path(os.environ.get("RELABEL_DATA_DIR", ROOT / "data"))
    return Path(os.environ.get("RELABEL_MODEL_DIR", data / "models"))


def ensure_models(out: Path) -> dict[str, Path]:
    """The two mid-size models under ``out``, built from the tiny models' tokenizers."""
    want = {"version": BENCH_GENERATION_VERSION, "seed": SEED,
            "audio": AUDIO_ENCODER, "decoder": DECODER}
    paths = {"qwen2_audio": out / "qwen2-audio", "mistral": out / "mistral"}
    marker = out / "bench_generation.json"
    try:
        if json.loads(marker.read_text()) == want and all(
                (p / "config.json").is_file() for p in paths.values()):
            return paths
    except (OSError, ValueError):
        pass
    import torch
    from transformers import (
        AutoProcessor,
        AutoTokenizer,
        GenerationConfig,
        MistralConfig,
        MistralForCausalLM,
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2Config,
    )

    from pipeline.testing.tiny_models import ensure_tiny_models

    tiny = ensure_tiny_models(model_root() / "tiny")
    t0 = time.perf_counter()

    processor = AutoProcessor.from_pretrained(tiny["qwen2_audio"])
    tok = processor.tokenizer
    tiny_gen = GenerationConfig.from_pretrained(tiny["qwen2_audio"])
    torch.manual_seed(SEED)
    config = Qwen2AudioConfig(
        audio_config=Qwen2AudioEncoderConfig(**AUDIO_ENCODER),
        text_config=Qwen2Config(vocab_size=len(tok), tie_word_embeddings=True,
                                bos_token_id=None, eos_token_id=tok.eos_token_id,
                                pad_token_id=tok.pad_token_id, **DECODER),
        audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
    )
    model = Qwen2AudioForConditionalGeneration(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        do_sample=False,
        suppress_tokens=tiny_gen.suppress_tokens, eos_token_id=tiny_gen.eos_token_id,
        pad_token_id=tiny_gen.pad_token_id,
    )
    paths["qwen2_audio"].mkdir(parents=True, exist_ok=True)
    model.save_pretrained(paths["qwen2_audio"])
    processor.save_pretrained(paths["qwen2_audio"])

    tok = AutoTokenizer.from_pretrained(tiny["mistral"])
    tiny_gen = GenerationConfig.from_pretrained(tiny["mistral"])
    torch.manual_seed(SEED)
    config = MistralConfig(vocab_size=len(tok), sliding_window=None, tie_word_embeddings=False,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                           pad_token_id=None, **DECODER)
    model = MistralForCausalLM(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        do_sample=False,
        suppress_tokens=tiny_gen.suppress_tokens, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id,
    )
    paths["mistral"].mkdir(parents=True, exist_ok=True)
    model.save_pretrained(paths["mistral"])
    tok.save_pretrained(paths["mistral"])
    marker.write_text(json.dumps(want))
    print(f"built and saved {out} in {time.perf_counter() - t0:.1f} s")
    return paths


def clips(n: int):
    """n synthetic 10 s clips at 16 kHz: noise bursts and tones, each different."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    t = np.arange(160000) / 16000
    out = []
    for i in range(n):
        tone = 0.2 * np.sin(2 * np.pi * (110 + 37 * i) * t)
        out.append(((tone + 0.05 * rng.standard_normal(t.size)).astype("float32"), 16000))
    return out


def summaries(n: int) -> list[str]:
    return [
        "Primary content: " + " ".join(SUMMARY_WORDS[(i + k) % len(SUMMARY_WORDS)]
                                       for k in range(8 + i % 5)) + "."
        for i in range(n)
    ]


def timed(fn, reps: int) -> tuple[float, object, float]:
    """Median seconds of `reps` calls, the last result, and the most other cores seen."""
    times, out, others = [], None, 0.0
    for _ in range(reps):
        w = Watch()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        others = max(others, w.other_cores())
    return median(times), out, others


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=16, help="clips (and summaries) per pass")
    ap.add_argument("--batch", type=int, default=16, help="the batched mode's batch size")
    ap.add_argument("--caption-tokens", type=int, default=48,
                    help="tokens per caption answer (max_new_tokens = min_new_tokens; "
                    "round 1 asks for at most 50 words)")
    ap.add_argument("--predict-tokens", type=int, default=16,
                    help="tokens per predict answer (2 to 4 labels on one line)")
    ap.add_argument("--reps", type=int, default=2, help="passes per mode (median)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads")
    ap.add_argument("--no-record", action="store_true", help="do not write bench/results.json")
    ap.add_argument("--quick", action="store_true",
                    help="8 clips, batch 8, one pass each; figures recorded with a _quick suffix")
    args = ap.parse_args()
    if args.quick:
        args.clips, args.batch, args.reps = 8, 8, 1

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from pipeline.backends.transformers_audio import Qwen2AudioChat
    from pipeline.backends.transformers_text import CausalLMChat
    from pipeline.stages.caption import CaptionConfig, run_caption_batch
    from pipeline.stages.predict import PredictConfig, run_predict_best_of_n

    t_start = time.perf_counter()
    print(f"machine: {machine()}")
    print(f"torch {torch.__version__}, {args.threads} threads; {args.clips} clips, "
          f"{args.caption_tokens} / {args.predict_tokens} new tokens per caption / predict "
          f"answer, batch {args.batch} against 1, {args.reps} passes each")
    paths = ensure_models(model_root() / "bench-generation")
    audio = Qwen2AudioChat(str(paths["qwen2_audio"]), device="cpu", dtype="float32",
                           max_new_tokens=args.caption_tokens)
    text = CausalLMChat(str(paths["mistral"]), device="cpu", dtype="float32",
                        max_new_tokens=args.predict_tokens)
    # Random weights could stop at any token: every answer is exactly max_new_tokens long.
    for chat in (audio, text):
        chat.generation_config.min_new_tokens = chat.max_new_tokens
    for name, m in (("Qwen2-Audio", audio.model), ("Mistral", text.model)):
        print(f"{name}: {sum(p.numel() for p in m.parameters()) / 1e6:.1f} M parameters "
              "(random weights)")

    data = clips(args.clips)
    texts = summaries(args.clips)
    figures, details = {}, {}
    contended = 0
    for stage in ("caption", "predict"):
        rates, answers = {}, {}
        for batch in (1, args.batch):
            if stage == "caption":
                cfg = CaptionConfig(presence_method="read", max_attempts=1, min_chars=0,
                                    max_chars=10**6, batch_size=batch)

                def fn(cfg=cfg):
                    return run_caption_batch(audio, data, cfg)
            else:
                cfg = PredictConfig(max_attempts=1, batch_size=batch)

                def fn(cfg=cfg):
                    return run_predict_best_of_n(text, [(s, (0, i)) for i, s in
                                                        enumerate(texts)], cfg, 1)
            fn()  # warm-up (allocator, first-call costs)
            secs, out, others = timed(fn, args.reps)
            if any(isinstance(o, Exception) for o in out):
                raise SystemExit(f"{stage}: a request failed: {out}")
            answers[batch] = [
                [a.messages for a in o.attempts] if stage == "caption"
                else [a.raw_answers for a in o]
                for o in out
            ]
            rates[batch] = args.clips / secs
            flag = " CONTENDED" if others > 0.5 else ""
            contended += bool(flag)
            print(f"{stage} batch {batch:>2}: {secs:7.2f} s for {args.clips} clips = "
                  f"{rates[batch]:6.3f} clips/s (others used {others:.2f} cores){flag}")
        same = answers[1] == answers[args.batch]
        ratio = rates[args.batch] / rates[1]
        print(f"{stage}: batched over sequential {ratio:.2f}x; answers identical: {same}")
        if not same:
            raise SystemExit(f"{stage}: batched answers differ from one-by-one answers")
        figures[f"{stage}_batched_over_sequential{'_quick' if args.quick else ''}"] = (ratio, "x")
        details[stage] = {f"clips_per_s_batch{b}": round(r, 3) for b, r in rates.items()}

    print("caption_clips_per_s_gpu: not measured (needs a GPU and the 7B configurations; "
          "none in this session)")
    print(f"total time {time.perf_counter() - t_start:.0f} s")
    if contended:
        print(f"WARNING: {contended} measurement(s) ran while other processes used over 0.5 "
              "cores: rerun on a quiet machine for figures to compare.")
    if not args.no_record:
        record(figures, extra={"bench_generation": {
            **details, "clips": args.clips, "batch": args.batch,
            "caption_new_tokens": args.caption_tokens,
            "predict_new_tokens": args.predict_tokens, "reps": args.reps,
            "threads": args.threads,
            "audio_encoder": AUDIO_ENCODER, "decoder": DECODER,
            "contended_measurements": contended,
            "caption_clips_per_s_gpu": "not measured: no GPU in this session",
        }})
    return 0


if __name__ == "__main__":
    sys.exit(main())
