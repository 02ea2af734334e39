"""convert_laion_clap against laion-clap's own forward (the reference).

laion-clap 1.1.7, torchlibrosa and their import-time dependencies are installed with
`pip install --no-deps --target` into data/cache/laion-clap-test/ on first use (they pin
numpy<2 and must never touch the app's venv), and run in a subprocess
(laion_reference.py, which says what is stood in for and why that is off the compared
path). A small HTSAT laion CLAP with seeded random weights is saved as laion's training
code saves it, converted with the command, loaded through the pipeline's own CLAP backend,
and compared on the same waveforms and texts: cosine >= 0.9999 per clip and per text.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.slow

# Pinned; everything laion-clap imports at module level that this venv lacks. numba and
# llvmlite are librosa's (torchlibrosa builds its mel matrix with librosa.filters.mel).
LAION_TEST_PACKAGES = (
    "laion-clap==1.1.7",
    "torchlibrosa==0.1.0",
    "librosa==0.11.0",
    "numba==0.68.1",
    "llvmlite==0.50.0",
    "lazy_loader==0.4",
    "decorator==5.2.1",
    "msgpack==1.1.2",
    "pooch==1.8.2",
    "wget==3.2",
    "braceexpand==0.1.7",
    "webdataset==0.2.111",
    "h5py==3.15.1",
    "pandas==2.3.3",
    "pytz==2025.2",
    "tzdata==2025.2",
    "pillow==12.0.0",
    "ftfy==6.3.1",
)
REFERENCE = Path(__file__).with_name("laion_reference.py")
MIN_COSINE = 0.9999
# laion's released non-fusion layouts: HTSAT-tiny (630k-*.pt), HTSAT-base (the paper's
# music_speech_audioset_epoch_15_esc_89.98.pt and the other larger_clap checkpoints).
RELEASED = ["HTSAT-tiny", "HTSAT-base"]
SR = 48000
TEXTS = ["a dog barking", "speech", "Male speech, man speaking", "music with a piano",
         "rain on a window, then thunder far away"]

# A small HTSAT (the HTSAT-base front end and 256x256 spectrogram image; widths 8..64,
# depths 2-1-2-1 so both plain and shifted windows run) in laion's model-config format,
# plus the "htsat" layout and the "text" RoBERTa config convert_laion_clap reads.
ARCH = {
    "embed_dim": 64,
    "joint_embed_shape": 32,
    "audio_cfg": {
        "audio_length": 1024, "clip_samples": 480000, "mel_bins": 64, "sample_rate": SR,
        "window_size": 1024, "hop_size": 480, "fmin": 50, "fmax": 14000, "class_num": 527,
        "model_type": "HTSAT", "model_name": "test",
    },
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8,
                 "layers": 12},
    "htsat": {"spec_size": 256, "patch_size": 4, "patch_stride": [4, 4], "embed_dim": 8,
              "depths": [2, 1, 2, 1], "num_heads": [2, 2, 4, 4], "window_size": 8},
}


def _laion_site() -> Path:
    """The test-only install of laion-clap, made once per package list."""
    from relabel_app.ontology_source import cache_dir

    tag = hashlib.sha256("\n".join(LAION_TEST_PACKAGES).encode()).hexdigest()[:12]
    site = cache_dir() / "laion-clap-test" / tag
    if (site / ".complete").is_file():
        return site
    tmp = site.with_name(site.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-compile", "--target", str(tmp), *LAION_TEST_PACKAGES],
        capture_output=True, text=True, timeout=1200,
    )
    if r.returncode != 0:
        pytest.fail(f"pip install --no-deps --target of laion-clap failed:\n{r.stderr[-2000:]}")
    (tmp / ".complete").write_text("\n".join(LAION_TEST_PACKAGES))
    shutil.rmtree(site, ignore_errors=True)
    tmp.rename(site)
    return site


def _waveforms(tmp: Path) -> dict[str, np.ndarray]:
    from relabel_app.demo_audio import _Synth

    synth = _Synth(sr=SR, rng=np.random.default_rng(7), tmp=tmp)
    t = np.arange(3 * SR) / SR
    speech = synth.male_speech()
    long = np.concatenate([speech, 0.2 * np.sin(2 * np.pi * 330 * np.arange(int(2.5 * SR)) / SR)])
    return {
        "tone 440 Hz, 3 s (repeat-padded)": 0.3 * np.sin(2 * np.pi * 440 * t),
        "white noise, 10 s": synth.white(0.1),
        "demo male speech, 10 s": speech,
        "demo female speech, 1.7 s (repeat-padded)": synth.female_speech()[: int(1.7 * SR)],
        "speech then tone, 12.5 s (cropped)": long,
    }


@pytest.fixture(scope="module")
def laion(tiny_models, tmp_path_factory):
    """{work, ckpt, out, waveforms, reference}: laion's checkpoint, its conversion and
    laion-clap's own embeddings."""
    from transformers import AutoTokenizer

    site = _laion_site()
    work = tmp_path_factory.mktemp("laion")
    tok = AutoTokenizer.from_pretrained(tiny_models["clap"])
    tok.save_pretrained(work / "tokenizer")
    arch = {**ARCH, "text": {
        "vocab_size": len(tok), "hidden_size": 768,  # laion's roberta projection is 768 wide
        "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
        "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
        "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "hidden_act": "gelu",
    }}
    (work / "arch.json").write_text(json.dumps(arch))
    waves = _waveforms(work)
    arrays = {f"audio_{i}": w.astype(np.float32) for i, w in enumerate(waves.values())}
    from pipeline.backends.laion_convert import ROBERTA_BASE

    np.savez(work / "inputs.npz", n_audio=len(waves), texts=np.array(TEXTS),
             released=np.array(RELEASED), roberta_base=np.array(json.dumps(ROBERTA_BASE)),
             **arrays)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "NUMBA_CACHE_DIR": str(work / "numba"), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, str(REFERENCE), str(site), str(work)],
                       capture_output=True, text=True, timeout=900, env=env)
    if r.returncode != 0:
        pytest.fail(f"laion-clap reference failed:\n{r.stdout[-1000:]}\n{r.stderr[-4000:]}")
    print(r.stdout.strip().splitlines()[-1])
    ref = np.load(work / "reference.npz")
    out = work / "converted"
    call_command("convert_laion_clap", str(work / "laion.pt"), "--out", str(out),
                 "--arch", str(work / "arch.json"), "--tokenizer", str(work / "tokenizer"))
    return {"work": work, "ckpt": work / "laion.pt", "out": out, "waveforms": waves,
            "audio": ref["audio"], "text": ref["text"]}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


@pytest.mark.parametrize("fast_features", [True, False], ids=["torch-stft", "extractor"])
def test_audio_embeddings_equal_laion_clap(laion, fast_features):
    from pipeline.backends.registry import build_backend

    clap = build_backend({"adapter": "transformers-clap", "model": str(laion["out"]),
                          "fast_features": fast_features})
    ours = np.stack([clap.embed_audio([w.astype(np.float32)])[0]
                     for w in laion["waveforms"].values()])
    cos = _cosines(ours, laion["audio"])
    report = {name: f"1 - {1 - float(c):.1e}"
              for name, c in zip(laion["waveforms"], cos, strict=True)}
    print(f"audio cosine vs laion-clap ({'torch stft' if fast_features else 'extractor'}): "
          f"{report}; max |difference| {np.abs(ours - laion['audio']).max():.1e}")
    assert ours.shape == laion["audio"].shape == (5, 32)
    assert (cos >= MIN_COSINE).all(), report
    # The clips differ from one another, so equality is not a constant embedding's.
    assert _cosines(ours[:1], ours[1:2])[0] < 0.999


def test_batched_audio_equals_one_by_one(laion):
    from pipeline.backends.registry import build_backend

    clap = build_backend({"adapter": "transformers-clap", "model": str(laion["out"])})
    batch = clap.embed_audio([w.astype(np.float32) for w in laion["waveforms"].values()])
    assert (_cosines(batch, laion["audio"]) >= MIN_COSINE).all()


def test_text_embeddings_equal_laion_clap(laion):
    from pipeline.backends.registry import build_backend

    clap = build_backend({"adapter": "transformers-clap", "model": str(laion["out"])})
    ours = clap.embed_text(TEXTS)
    cos = _cosines(ours, laion["text"])
    print(f"text cosine vs laion-clap: min 1 - {1 - float(cos.min()):.1e}, "
          f"max |difference| {np.abs(ours - laion['text']).max():.1e}")
    assert ours.shape == laion["text"].shape == (len(TEXTS), 32)
    assert (cos >= MIN_COSINE).all()
    assert _cosines(ours[:1], ours[1:2])[0] < 0.999


def test_conversion_accounts_for_every_key(laion):
    account = json.loads((laion["out"] / "laion_conversion.json").read_text())
    state = torch.load(laion["ckpt"], weights_only=True)["state_dict"]
    assert account["mapped_keys"] + len(account["dropped_keys"]) == len(state)
    dropped = account["dropped_keys"]
    assert dropped["audio_branch.logmel_extractor.melW"].startswith("front-end")
    assert any(k.startswith("audio_transform.") for k in dropped)
    assert any(k.startswith("audio_branch.head.") for k in dropped)
    assert not any(k.startswith(("text_branch.encoder", "audio_branch.layers.0.blocks.0.attn.q"))
                   for k in dropped)
    from transformers import ClapProcessor

    fe = ClapProcessor.from_pretrained(laion["out"]).feature_extractor
    assert (fe.sampling_rate, fe.feature_size, fe.fft_window_size, fe.hop_length,
            fe.frequency_min, fe.frequency_max, fe.nb_max_samples, fe.truncation,
            fe.padding) == (48000, 64, 1024, 480, 50, 14000, 480000, "rand_trunc", "repeatpad")


@pytest.mark.parametrize("name", RELEASED)
def test_released_layouts_map_key_for_key(laion, name):
    """laion-clap's own HTSAT-tiny/-base CLAP (built without weights, with a roberta-base
    text tower) maps onto our ClapModel of that --arch with every key accounted for."""
    from transformers import ClapModel

    from pipeline.backends.laion_convert import clap_config, plan_conversion

    shapes = json.loads((laion["work"] / "released_layouts.json").read_text())[name]
    with torch.device("meta"):
        target = ClapModel(clap_config(name)).state_dict()
    plan, dropped = plan_conversion(shapes, {k: tuple(v.shape) for k, v in target.items()},
                                    arch=name)
    assert len(plan) + len(dropped) == len(shapes)
    assert plan["audio_branch.layers.2.blocks.5.attn.qkv.weight"] == [
        f"audio_model.audio_encoder.layers.2.blocks.5.attention.self.{p}.weight"
        for p in ("query", "key", "value")]
    assert plan["text_projection.2.bias"] == ["text_projection.linear2.bias"]
    reasons = set(dropped.values())
    assert len(reasons) == 4  # front end, linear probe, AudioSet head, window masks
    n = sum(p.numel() for p in target.values())
    assert (150e6 if name == "HTSAT-tiny" else 190e6) < n


def _refused(laion, tmp_path, edit) -> str:
    ckpt = torch.load(laion["ckpt"], weights_only=True)
    edit(ckpt["state_dict"])
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    out = tmp_path / "out"
    with pytest.raises(CommandError) as e:
        call_command("convert_laion_clap", str(bad), "--out", str(out),
                     "--arch", str(laion["work"] / "arch.json"),
                     "--tokenizer", str(laion["work"] / "tokenizer"))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]  # no temporary folder left behind either
    assert "Nothing was written" in str(e.value)
    return str(e.value)


def test_renamed_key_is_refused_naming_it(laion, tmp_path):
    key = "module.audio_branch.layers.2.blocks.1.mlp.fc1.weight"

    def rename(state):
        state["module.audio_branch.layers.2.blocks.1.mlp.fc9.weight"] = state.pop(key)

    msg = _refused(laion, tmp_path, rename)
    assert msg.startswith("audio_branch.layers.2.blocks.1.mlp.fc9.weight: no counterpart")


def test_wrong_shape_is_refused_naming_it(laion, tmp_path):
    def reshape(state):
        k = "module.text_branch.encoder.layer.1.intermediate.dense.weight"
        state[k] = torch.zeros(64, 768)

    msg = _refused(laion, tmp_path, reshape)
    assert msg.startswith("text_branch.encoder.layer.1.intermediate.dense.weight: shape (64, 768)")


def test_missing_key_is_refused_naming_it(laion, tmp_path):
    msg = _refused(laion, tmp_path, lambda s: s.pop("module.audio_projection.2.bias"))
    assert msg.startswith("audio_projection.linear2.bias: missing from the checkpoint")


def test_other_architecture_is_refused(laion, tmp_path):
    # The small checkpoint against the real HTSAT-base layout (from the laion-clap wheel).
    out = tmp_path / "out"
    with pytest.raises(CommandError, match=r"shape .* wrong --arch"):
        call_command("convert_laion_clap", str(laion["ckpt"]), "--out", str(out),
                     "--arch", "HTSAT-base", "--tokenizer", str(laion["work"] / "tokenizer"))
    assert not out.exists()


def test_fusion_is_refused_with_a_message(laion, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(CommandError, match="fusion checkpoints .* are not supported"):
        call_command("convert_laion_clap", str(laion["ckpt"]), "--out", str(out), "--fusion",
                     "--arch", str(laion["work"] / "arch.json"),
                     "--tokenizer", str(laion["work"] / "tokenizer"))
    assert not out.exists()

    def add_fusion_block(state):
        state["module.audio_branch.patch_embed.fusion_model.local_att.0.weight"] = torch.zeros(1)

    msg = _refused(laion, tmp_path, add_fusion_block)
    assert msg.startswith("audio_branch.patch_embed.fusion_model.local_att.0.weight: fusion")


def test_bad_file_and_existing_out_are_refused(laion, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CommandError, match="not a loadable weights-only checkpoint"):
        call_command("convert_laion_clap", str(junk), "--out", str(tmp_path / "o"))
    with pytest.raises(CommandError, match="--arch HTSAT-nope: no such model config"):
        call_command("convert_laion_clap", str(laion["ckpt"]), "--out", str(tmp_path / "o"),
                     "--arch", "HTSAT-nope", "--tokenizer", str(laion["work"] / "tokenizer"))
    assert not (tmp_path / "o").exists()
    with pytest.raises(CommandError, match="exists and is not empty"):
        call_command("convert_laion_clap", str(laion["ckpt"]), "--out", str(laion["work"]))


def test_profile_clap_model_may_name_the_converted_folder(laion, tmp_path, settings):
    from pipeline.profiles import resolve_profile

    profile = json.loads((Path(settings.BASE_DIR) / "pipeline/profiles/tiny.json").read_text())
    profile["backends"]["clap"] = {"adapter": "transformers-clap", "model": str(laion["out"])}
    path = tmp_path / "converted.json"
    path.write_text(json.dumps(profile))
    resolved = resolve_profile(str(path), model_dir=settings.MODEL_DIR)
    assert resolved["backends"]["clap"]["model"] == str(laion["out"])
    assert resolved["model_fingerprints"]["clap"].startswith("local-")
