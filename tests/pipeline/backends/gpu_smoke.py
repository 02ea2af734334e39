"""Manual device check (not collected by pytest): the adapters on CUDA, fp32 and bf16, the
tiny models against CPU, and a throughput reading of the full-size CLAP with random weights.

    python -m tests.pipeline.backends.gpu_smoke [cuda|cpu] [n_clips]
"""

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main() -> None:
    device = sys.argv[1] if len(sys.argv) > 1 else "cuda"
    n_clips = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    import transformers

    from pipeline.backends.transformers_audio import Qwen2AudioChat
    from pipeline.backends.transformers_clap import ClapTransformers
    from pipeline.backends.transformers_text import CausalLMChat
    from pipeline.testing.tiny_models import build_tiny_models, full_size_clap_config

    print("torch", torch.__version__, "transformers", transformers.__version__, flush=True)
    if device == "cuda":
        print("gpu", torch.cuda.get_device_name(0), flush=True)
    out = Path(tempfile.mkdtemp())
    t = time.perf_counter()
    paths = build_tiny_models(out / "tiny")
    print(f"tiny build {time.perf_counter() - t:.1f} s", flush=True)

    rng = np.random.RandomState(0)
    clip16 = (0.1 * rng.randn(160000)).astype(np.float32)
    clips48 = [(0.1 * rng.randn(480000)).astype(np.float32) for _ in range(4)]
    msgs = [{"role": "user", "content": "Describe the sound."}]
    texts = ["dog barking", "Piano", "rain on a roof"]

    ref = {
        "qwen": Qwen2AudioChat(str(paths["qwen2_audio"])).chat(clip16, 16000, msgs),
        "mistral": CausalLMChat(str(paths["mistral"])).chat(msgs),
    }
    cpu_clap = ClapTransformers(str(paths["clap"]))
    ref["clap_a"], ref["clap_t"] = cpu_clap.embed_audio(clips48), cpu_clap.embed_text(texts)

    for dtype in ("float32", "bfloat16"):
        q = Qwen2AudioChat(str(paths["qwen2_audio"]), device=device, dtype=dtype)
        m = CausalLMChat(str(paths["mistral"]), device=device, dtype=dtype)
        c = ClapTransformers(str(paths["clap"]), device=device, dtype=dtype)
        t = time.perf_counter()
        qa = q.chat(clip16, 16000, msgs)
        tq = time.perf_counter() - t
        ma = m.chat(msgs)
        ea, et = c.embed_audio(clips48), c.embed_text(texts)
        for name, e in (("audio", ea), ("text", et)):
            assert e.dtype == np.float32, e.dtype
            assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4), name
        da = float(np.abs(ea - ref["clap_a"]).max())
        dt = float(np.abs(et - ref["clap_t"]).max())
        print(
            f"[{device} {dtype}] qwen {tq:.2f}s same-as-cpu={qa == ref['qwen']} | "
            f"mistral same-as-cpu={ma == ref['mistral']} | clap max|diff| vs cpu "
            f"audio {da:.2e} text {dt:.2e}",
            flush=True,
        )
        assert isinstance(qa, str) and isinstance(ma, str)
        if dtype == "float32":
            assert da < 1e-3 and dt < 1e-3, (da, dt)

    # Full-size LAION CLAP HTSAT-unfused architecture, random weights.
    from transformers import ClapModel

    torch.manual_seed(0)
    big_dir = out / "clap-full"
    ClapModel(full_size_clap_config()).save_pretrained(big_dir)
    cpu_clap.processor.save_pretrained(big_dir)
    clips = [(0.1 * rng.randn(480000)).astype(np.float32) for _ in range(n_clips)]

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    for dtype in ("float32", "bfloat16"):
        big = ClapTransformers(str(big_dir), device=device, dtype=dtype, batch_size=32)
        big.embed_audio(clips[:2])  # warm-up
        timings, embs = {}, {}
        for fast in (False, True):
            big.fast_features = fast
            sync()
            t = time.perf_counter()
            embs[fast] = big.embed_audio(clips)
            sync()
            timings[fast] = time.perf_counter() - t
        t = time.perf_counter()
        temb = big.embed_text([f"label number {i}" for i in range(527)])
        t_txt = time.perf_counter() - t
        assert embs[True].shape == (n_clips, 512) and temb.shape == (527, 512)
        agree = float(np.abs(embs[True] - embs[False]).max())
        print(
            f"[{device} {dtype}] full CLAP, {n_clips} x 10 s clips: extractor path "
            f"{timings[False]:.2f} s ({n_clips / timings[False]:.1f} clips/s), torch.stft path "
            f"{timings[True]:.2f} s ({n_clips / timings[True]:.1f} clips/s), max|diff| "
            f"{agree:.1e}; 527 label texts in {t_txt:.2f} s",
            flush=True,
        )
        if dtype == "float32":
            assert agree < 1e-3, agree
        del big
    print("GPU SMOKE OK", flush=True)


if __name__ == "__main__":
    main()
