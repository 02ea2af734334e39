"""Convert a laion-clap `.pt` checkpoint into the transformers `ClapModel` the pipeline runs.

A laion-clap checkpoint is a state dict (`{"state_dict": {"module.…": tensor}}` as laion's
training code saves it, or a bare state dict). Its HTSAT audio tower, RoBERTa text tower
and MLP projections are the architecture of transformers' `ClapModel`; this module maps
every key onto a `ClapModel` built from LAION's own model config (read from the laion-clap
wheel by `pipeline.tiny_models`), splits the audio blocks' fused `qkv` weights, and refuses
a checkpoint with any key left over, missing, or of the wrong shape, naming the key,
before anything is written. Keys that have no counterpart in `ClapModel` are accounted
for one by one in `_DROPPED` (with the reason), never skipped by accident.

laion-clap itself is not imported (it pins numpy<2, imports torchvision and downloads
roberta-base when constructed); tests/pipeline/backends/test_laion_convert.py proves the
result equal to laion-clap's own forward.

No Django imports here.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .base import BackendError


class ConversionError(BackendError):
    """A checkpoint that cannot be converted; the message names the key or the reason."""


# RoBERTa-base, the text tower laion-clap builds with RobertaModel.from_pretrained('roberta-base')
# (its config.json values); a laion model config may carry "text" to describe another one.
ROBERTA_BASE = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}
LAION_JOINT_DIM = 512  # laion's CLAP(joint_embed_shape=512) default

FUSION_REFUSAL = (
    "fusion checkpoints (enable_fusion=True, e.g. 630k-audioset-fusion-best.pt) are not "
    "supported: laion-clap's fusion front end (torchaudio mel + torchvision resize of clips "
    "over 10 s) cannot be run here to prove a conversion equal; use the hub's "
    "transformers-format laion/clap-htsat-fused instead"
)

# laion keys with no counterpart in ClapModel, and why dropping them changes no embedding.
_DROPPED = (
    (re.compile(r"^(text|audio)_transform\."),
     "laion's linear-probe MLP, not on the embedding path"),
    (re.compile(r"^audio_branch\.(head|tscam_conv)\."),
     "HTSAT's AudioSet classification head, not on the embedding path"),
    (re.compile(r"^audio_branch\.layers\.\d+\.blocks\.\d+\.attn_mask$"),
     "shifted-window mask, recomputed by ClapModel from the layout"),
)
# Front-end constants inside laion's HTSAT (torchlibrosa STFT basis, mel matrix): the
# feature extractor computes them from the audio config; they are checked against it.
_FRONT_END = re.compile(r"^audio_branch\.(spectrogram_extractor|logmel_extractor)\.")
# Buffers ClapModel derives from its config; older checkpoints may lack them.
_DERIVED_BUFFER = re.compile(
    r"(\.relative_position_index|\.position_ids|\.token_type_ids|\.num_batches_tracked)$"
)

_BLOCK = re.compile(r"^layers\.(\d+)\.blocks\.(\d+)\.(.+)$")
_BLOCK_RENAMES = {
    "norm1.": "layernorm_before.",
    "norm2.": "layernorm_after.",
    "attn.proj.": "attention.output.dense.",
    "attn.relative_position_bias_table": "attention.self.relative_position_bias_table",
    "attn.relative_position_index": "attention.self.relative_position_index",
    "mlp.fc1.": "intermediate.dense.",
    "mlp.fc2.": "output.dense.",
}


@dataclass
class Conversion:
    """What convert_checkpoint produced: the model and processor to save, and an account
    of every checkpoint key (mapped, dropped with its reason, or checked front end)."""

    model: object
    processor: object
    arch: str
    mapped: int = 0
    dropped: dict[str, str] = field(default_factory=dict)


def load_laion_state_dict(path: str | Path) -> dict:
    """The checkpoint's state dict, read with torch.load(weights_only=True) (no pickled code
    runs), `module.` (DataParallel) prefixes stripped."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ConversionError(f"{path}: not a loadable weights-only checkpoint ({e})") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise ConversionError(f"{path}: no state dict in the checkpoint")
    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{path}: {key!r} is not a tensor")
        out[key[len("module."):] if key.startswith("module.") else key] = value
    return out


def laion_arch(arch: str) -> dict:
    """LAION's model config `arch`: a name in the laion-clap wheel ("HTSAT-base",
    "HTSAT-tiny", ...) or a path to a JSON file in laion's model-config format, which may
    add "htsat" (create_htsat_model's layout) and "text" (the RoBERTa config) for a
    non-standard model."""
    from pipeline.tiny_models import laion_clap_architecture

    try:
        return laion_clap_architecture(arch)
    except KeyError:
        raise ConversionError(f"--arch {arch}: no such model config in laion-clap") from None
    except ValueError as e:
        raise ConversionError(f"--arch {arch}: {e}") from None


def clap_config(arch: str):
    """ClapConfig of LAION model config `arch`: its HTSAT audio tower (the same
    ClapAudioConfig the tiny and benchmark CLAPs are built from), its RoBERTa text tower
    (roberta-base unless the config says otherwise) and joint dimension."""
    from transformers import ClapConfig, ClapTextConfig

    from pipeline.tiny_models import clap_audio_config

    cfg = laion_arch(arch)
    try:
        audio = clap_audio_config(arch)
    except ValueError as e:
        raise ConversionError(f"--arch {arch}: {e}") from None
    text = ClapTextConfig(**{**ROBERTA_BASE, **cfg.get("text", {})})
    return ClapConfig(
        text_config=text.to_dict(),
        audio_config=audio.to_dict(),
        projection_dim=int(cfg.get("joint_embed_shape", LAION_JOINT_DIM)),
    )


def map_key(key: str) -> list[str] | None:
    """Target key(s) in ClapModel's state dict for laion key `key` (three for a fused qkv,
    in query, key, value order), or None if it has no mapping."""
    if key in ("logit_scale_a", "logit_scale_t"):
        return [key]
    m = re.match(r"^(text|audio)_projection\.(0|2)\.(weight|bias)$", key)
    if m:
        return [f"{m[1]}_projection.linear{1 if m[2] == '0' else 2}.{m[3]}"]
    if key.startswith("text_branch."):
        return ["text_model." + key[len("text_branch."):]]
    if not key.startswith("audio_branch."):
        return None
    rest = key[len("audio_branch."):]
    prefix = "audio_model.audio_encoder."
    if rest.startswith("bn0."):
        return [prefix + "batch_norm." + rest[len("bn0."):]]
    m = _BLOCK.match(rest)
    if m:
        head = f"{prefix}layers.{m[1]}.blocks.{m[2]}."
        tail = m[3]
        qkv = re.match(r"^attn\.qkv\.(weight|bias)$", tail)
        if qkv:
            return [f"{head}attention.self.{part}.{qkv[1]}" for part in ("query", "key", "value")]
        for old, new in _BLOCK_RENAMES.items():
            if tail.startswith(old):
                return [head + new + tail[len(old):]]
        return None
    if re.match(r"^(patch_embed\.|layers\.\d+\.downsample\.|norm\.)", rest):
        return [prefix + rest]
    return None


def _check_front_end(key: str, value, fe) -> None:
    """The checkpoint's torchlibrosa constants must be what the saved feature extractor
    computes: same mel matrix (sample rate, bins, fmin/fmax, slaney), same STFT size."""
    import numpy as np

    v = value.detach().float().numpy()
    n_freqs = fe.fft_window_size // 2 + 1
    if key.endswith("logmel_extractor.melW"):
        want = np.asarray(fe.mel_filters_slaney, dtype=np.float32)  # (n_freqs, n_mels)
        if v.shape != want.shape:
            raise ConversionError(f"{key}: shape {tuple(v.shape)}, the audio config gives "
                                  f"{tuple(want.shape)}; wrong --arch?")
        if not np.allclose(v, want, rtol=1e-4, atol=1e-6 * float(np.abs(want).max())):
            raise ConversionError(f"{key}: mel filters differ from the audio config's "
                                  "(sample rate, fmin/fmax or mel bins); wrong --arch?")
    elif key.endswith(("conv_real.weight", "conv_imag.weight")):
        if tuple(v.shape) != (n_freqs, 1, fe.fft_window_size):
            raise ConversionError(f"{key}: shape {tuple(v.shape)}, the audio config's "
                                  f"{fe.fft_window_size}-point STFT gives "
                                  f"{(n_freqs, 1, fe.fft_window_size)}; wrong --arch?")
    else:
        raise ConversionError(f"{key}: unexpected front-end key")


_FRONT_END_REASON = "front-end constant, computed by the feature extractor (checked equal)"


def plan_conversion(shapes: dict[str, tuple], target: dict[str, tuple], *, arch: str):
    """Key-by-key plan from laion tensor shapes to ClapModel tensor shapes `target`:
    ({laion key: [ClapModel keys]}, {laion key: why it has no counterpart}). Raises
    ConversionError naming the first key left over, of the wrong shape, or missing.
    Works on shapes alone, so released layouts can be checked without their weights."""
    fused = next((k for k in sorted(shapes) if ".fusion_model." in k or ".mel_conv2d." in k),
                 None)
    if fused:
        raise ConversionError(f"{fused}: {FUSION_REFUSAL}")
    plan: dict[str, list[str]] = {}
    dropped: dict[str, str] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        if _FRONT_END.match(key):
            dropped[key] = _FRONT_END_REASON
            continue
        reason = next((why for pattern, why in _DROPPED if pattern.search(key)), None)
        if reason:
            dropped[key] = reason
            continue
        names = map_key(key)
        if names is None or any(n not in target for n in names):
            raise ConversionError(
                f"{key}: no counterpart in a ClapModel of {arch} (a checkpoint of another "
                "architecture? pass --arch)"
            )
        if len(names) == 3 and shape[0] % 3:
            raise ConversionError(f"{key}: fused qkv of shape {shape} does not split in three")
        part = (shape[0] // 3, *shape[1:]) if len(names) == 3 else shape
        for name in names:
            if part != tuple(target[name]):
                raise ConversionError(
                    f"{key}: shape {shape} does not fit {name} {tuple(target[name])} of "
                    f"{arch}; wrong --arch?"
                )
        plan[key] = names
    done = {n for names in plan.values() for n in names}
    missing = [n for n in target if n not in done and not _DERIVED_BUFFER.search(n)]
    if missing:
        raise ConversionError(f"{missing[0]}: missing from the checkpoint "
                              f"({len(missing)} ClapModel tensors have no laion key)")
    return plan, dropped


def convert_checkpoint(state: dict, *, arch: str, tokenizer, fusion: bool = False) -> Conversion:
    """ClapModel with every tensor of laion state dict `state` in place; raises
    ConversionError naming the first key left over, missing or of the wrong shape."""
    import torch
    from transformers import ClapModel, ClapProcessor

    from pipeline.tiny_models import clap_feature_extractor

    if fusion:
        raise ConversionError(FUSION_REFUSAL)
    # laion's audio front end (48 kHz, repeat-pad, random crop, slaney mel, dB), as
    # get_audio_features and HTSAT's torchlibrosa layers compute it.
    laion_arch(arch)  # an unknown or unreadable --arch is a clear error before any work
    fe = clap_feature_extractor(arch)
    model = ClapModel(clap_config(arch)).eval()
    target = model.state_dict()
    plan, dropped = plan_conversion(
        {k: tuple(v.shape) for k, v in state.items()},
        {k: tuple(v.shape) for k, v in target.items()},
        arch=arch,
    )
    for key, reason in dropped.items():
        if reason == _FRONT_END_REASON:
            _check_front_end(key, state[key], fe)
    new_state: dict[str, torch.Tensor] = {}
    for key, names in plan.items():
        value = state[key]
        parts = value.chunk(3, dim=0) if len(names) == 3 else (value,)
        for name, part in zip(names, parts, strict=True):
            if _DERIVED_BUFFER.search(name) and not torch.equal(part, target[name]):
                # Index buffers are the layout itself: a different one is another model.
                raise ConversionError(f"{key}: differs from the {arch} layout's {name}")
            new_state[name] = part.to(target[name].dtype).clone()
    model.load_state_dict(new_state, strict=False)
    processor = ClapProcessor(feature_extractor=fe, tokenizer=tokenizer)
    return Conversion(model=model, processor=processor, arch=arch, mapped=len(plan),
                      dropped=dropped)


def load_tokenizer(name_or_path: str):
    """The RoBERTa tokenizer laion-clap uses (a hub id from the local cache, or a folder)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except Exception as e:  # noqa: BLE001 - offline, missing folder, not a tokenizer
        raise ConversionError(
            f"cannot load tokenizer {name_or_path!r} ({type(e).__name__}); pass --tokenizer "
            "DIR, a folder holding roberta-base's tokenizer files"
        ) from None


def convert_laion_clap(
    checkpoint: str | Path,
    out: str | Path,
    *,
    arch: str = "HTSAT-base",
    fusion: bool = False,
    tokenizer: str = "roberta-base",
) -> Conversion:
    """Convert `checkpoint` and save a transformers model folder at `out` (config.json,
    model.safetensors, preprocessor and tokenizer files). Everything is checked before the
    folder appears: on any error nothing is written."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConversionError(f"{out}: exists and is not empty")
    if fusion:
        raise ConversionError(FUSION_REFUSAL)
    state = load_laion_state_dict(checkpoint)
    tok = load_tokenizer(tokenizer)
    result = convert_checkpoint(state, arch=arch, tokenizer=tok, fusion=fusion)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside `out` and renamed into place, so a failed save leaves nothing behind.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        result.model.save_pretrained(tmp, safe_serialization=True)
        result.processor.save_pretrained(tmp)
        (tmp / "laion_conversion.json").write_text(json.dumps({
            "checkpoint": Path(checkpoint).name,
            "arch": arch,
            "mapped_keys": result.mapped,
            "dropped_keys": result.dropped,
        }, indent=2, sort_keys=True))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


__all__ = [
    "ConversionError",
    "convert_checkpoint",
    "convert_laion_clap",
    "map_key",
    "plan_conversion",
]
