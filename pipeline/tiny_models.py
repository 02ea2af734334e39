"""Random-weight miniatures of the real model architectures, built offline.

`build_tiny_models(out_dir)` writes three directories that load through the very same
adapters as the real checkpoints (`pipeline.backends`):

- ``qwen2-audio``: `Qwen2AudioForConditionalGeneration` (Whisper-style audio encoder +
  Qwen2 decoder) with a `Qwen2AudioProcessor` (128-bin `WhisperFeatureExtractor`, 16 kHz);
- ``mistral``: `MistralForCausalLM`, an "instruct" model with a `[INST]` chat template;
- ``clap``: `ClapModel` (RoBERTa-like text tower, HTSAT audio tower, unfused) with a
  `ClapProcessor` (48 kHz `ClapFeatureExtractor`, 64 mel bins): the layout of the paper's
  HTSAT-base CLAP (`laion/larger_clap_general`), read from the laion-clap wheel, with
  every width divided by 16.

Tokenizers are byte-level BPE models trained on the spot on synthetic English sentences
with the `tokenizers` library, so nothing is downloaded. Weights are random (seeded):
whatever these models say or embed means nothing. They exist for tests, benchmarks of
the plumbing and a demo on a machine without real weights.

No Django imports here.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

TINY_MODELS_VERSION = 5  # 5: the tiny CLAP mirrors HTSAT-base
TINY_CLAP_WIDTH_DIVISOR = 16
SEED = 1234
CAPTION_MAX_NEW_TOKENS = 40
CHAT_MAX_NEW_TOKENS = 40
_MARKER = "tiny_models.json"

# Names of the directories below out_dir, keyed by the names build_tiny_models returns.
TINY_MODEL_DIRS = {"qwen2_audio": "qwen2-audio", "mistral": "mistral", "clap": "clap"}

# The chat template shipped with Qwen/Qwen2-Audio-7B-Instruct, plus an explicit
# `content['type'] == 'audio'` test so {"type": "audio"} parts work without an url key.
QWEN2_AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content or content['type'] == 'audio' %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)

# Mistral-Instruct style: no system role of its own, so a system message is prepended to
# the next user turn.
MISTRAL_CHAT_TEMPLATE = (
    "{%- set ns = namespace(system='') -%}"
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- set ns.system = message['content'] + '\n\n' -%}"
    "{%- elif message['role'] == 'user' -%}"
    "{{- '[INST] ' + ns.system + message['content'] + ' [/INST]' -}}"
    "{%- set ns.system = '' -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- ' ' + message['content'] + eos_token -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
)

_SOURCES = [
    "dog",
    "cat",
    "bird",
    "car",
    "engine",
    "piano",
    "guitar",
    "violin",
    "drum",
    "man",
    "woman",
    "child",
    "baby",
    "crowd",
    "rain",
    "wind",
    "water",
    "thunder",
    "siren",
    "bell",
    "train",
    "truck",
    "motorcycle",
    "helicopter",
    "clock",
    "door",
    "telephone",
    "horse",
    "cow",
    "sheep",
    "chicken",
    "frog",
    "insect",
    "fire",
    "machine",
    "saxophone",
    "trumpet",
    "choir",
    "orchestra",
    "keyboard",
    "typewriter",
    "vacuum cleaner",
    "hair dryer",
]
_VERBS = [
    "barking",
    "meowing",
    "singing",
    "chirping",
    "running",
    "idling",
    "playing",
    "speaking",
    "laughing",
    "crying",
    "cheering",
    "falling",
    "blowing",
    "flowing",
    "rumbling",
    "wailing",
    "ringing",
    "passing by",
    "ticking",
    "slamming",
    "buzzing",
    "crackling",
    "humming",
    "whistling",
    "shouting",
    "whispering",
    "clapping",
    "knocking",
    "splashing",
    "beeping",
]
_PLACES = [
    "street",
    "kitchen",
    "park",
    "forest",
    "room",
    "studio",
    "distance",
    "background",
    "city",
    "farm",
    "station",
    "church",
    "stadium",
    "office",
    "garden",
    "car",
]
_ADJECTIVES = [
    "loud",
    "quiet",
    "distant",
    "close",
    "repeated",
    "short",
    "long",
    "muffled",
    "clear",
    "rhythmic",
    "high",
    "low",
    "sharp",
    "soft",
    "steady",
    "sudden",
]
_TEMPLATES = [
    "A {adj} {src} is {verb} in the {place}.",
    "The audio contains a {src} {verb} and a {src2}.",
    "Is there a {src} in this clip? Yes, there is a {adj} {src}.",
    "Is there a {src2} in this clip? No, I cannot hear a {src2}.",
    "You can hear {src} sounds and {src2} noises in the {place}.",
    "Describe the sound: {adj} {src} {verb}, then {src2} {verb2}.",
    "Labels: {Src}, {Src2}, Speech, Music.",
    "What is the main sound? The main sound is a {src} {verb}.",
    "{Src} and {src2} are heard for {n} seconds.",
    "The recording was made in a {place} with a {adj} {src}.",
]


def synthetic_sentences(n: int = 600, seed: int = SEED) -> list[str]:
    """English-like sentences about sounds: the corpus the tiny tokenizers learn from."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        src, src2 = rng.sample(_SOURCES, 2)
        verb, verb2 = rng.sample(_VERBS, 2)
        out.append(
            rng.choice(_TEMPLATES).format(
                adj=rng.choice(_ADJECTIVES),
                src=src,
                src2=src2,
                Src=src.capitalize(),
                Src2=src2.capitalize(),
                verb=verb,
                verb2=verb2,
                place=rng.choice(_PLACES),
                n=rng.randint(1, 10),
            )
        )
    return out


def _train_bpe(special_tokens: list[str], vocab_size: int = 1000):
    """A byte-level BPE tokenizer (like GPT-2/RoBERTa/Qwen2) trained on synthetic text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(synthetic_sentences(), trainer=trainer)
    return tok


def _unprintable_ids(tok) -> list[int]:
    """Ids of tokens that decode to non-ASCII or control bytes (half UTF-8 sequences): the
    tiny generators are told never to emit them, so their nonsense is at least clean text."""
    bad = []
    for token, idx in tok.get_vocab().items():
        if token in tok.all_special_tokens:
            continue
        text = tok.decode([idx])
        if any(not (ch.isascii() and (ch.isprintable() or ch == "\n")) for ch in text):
            bad.append(idx)
    return sorted(bad)


def _non_word_ids(tok) -> list[int]:
    """Ids of every token except whole lowercase words and the comma. The tiny label
    predictor may emit only those, so its (random) answers parse as label lists of real
    sound words ("dog siren, bark") and the demo's matcher has something to match. The
    weights stay random: which words come out means nothing."""
    keep = re.compile(r"^ [a-z]{3,}$|^,$")
    bad = []
    for token, idx in tok.get_vocab().items():
        if token in tok.all_special_tokens:
            continue
        if not keep.match(tok.decode([idx])):
            bad.append(idx)
    return sorted(bad)


def _seed(seed: int = SEED) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_tiny_qwen2_audio(out: Path) -> Path:
    import torch
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
        WhisperFeatureExtractor,
    )

    specials = [
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|audio_bos|>",
        "<|AUDIO|>",
        "<|audio_eos|>",
    ]
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_train_bpe(specials),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
    )
    ids = {t: tok.convert_tokens_to_ids(t) for t in specials}
    feature_extractor = WhisperFeatureExtractor(
        feature_size=128,
        sampling_rate=16000,
        hop_length=160,
        chunk_length=30,
        n_fft=400,
        padding_value=0.0,
        return_attention_mask=True,
    )
    processor = Qwen2AudioProcessor(
        feature_extractor=feature_extractor,
        tokenizer=tok,
        chat_template=QWEN2_AUDIO_CHAT_TEMPLATE,
    )

    _seed()
    config = Qwen2AudioConfig(
        audio_config=Qwen2AudioEncoderConfig(
            num_mel_bins=128,
            encoder_layers=2,
            encoder_attention_heads=4,
            encoder_ffn_dim=128,
            d_model=64,
            max_source_positions=1500,
        ),
        text_config=Qwen2Config(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            tie_word_embeddings=True,
            bos_token_id=None,
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        audio_token_index=ids["<|AUDIO|>"],
    )
    model = Qwen2AudioForConditionalGeneration(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        max_new_tokens=CAPTION_MAX_NEW_TOKENS,
        do_sample=False,
        suppress_tokens=_unprintable_ids(tok),
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_mistral(out: Path) -> Path:
    import torch
    from transformers import (
        GenerationConfig,
        MistralConfig,
        MistralForCausalLM,
        PreTrainedTokenizerFast,
    )

    specials = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"]
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_train_bpe(specials),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=32768,
    )
    tok.chat_template = MISTRAL_CHAT_TEMPLATE
    bos, eos = tok.convert_tokens_to_ids("<s>"), tok.convert_tokens_to_ids("</s>")

    _seed()
    config = MistralConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        sliding_window=None,
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=None,
    )
    model = MistralForCausalLM(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        max_new_tokens=CHAT_MAX_NEW_TOKENS,
        do_sample=False,
        suppress_tokens=_non_word_ids(tok),
        min_new_tokens=2,  # with so few allowed tokens, random weights would end at once
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


# --- LAION CLAP's own architecture files, read out of the laion-clap wheel ------------------
#
# The paper filters with LAION-CLAP `music_speech_audioset_epoch_15_esc_89.98.pt`, an
# HTSAT-base model; its transformers-format release is `laion/larger_clap_general`. The
# architecture is taken from LAION's own package: `clap_module/model_configs/HTSAT-base.json`
# (audio front end, final audio width) and the HTSAT branch of `create_htsat_model` in
# `clap_module/htsat.py` (patch width, depths, heads, window). The wheel is fetched with
# `pip download --no-deps` into the data cache and read with zipfile, as
# relabel_app.ontology_source reads the ontology wheel; it is never installed (it would
# pull torchlibrosa, wget, braceexpand, webdataset, ...).

LAION_CLAP_WHEEL = "laion-clap"
LAION_CLAP_VERSION = "1.1.7"
PAPER_CLAP_ARCH = "HTSAT-base"  # the architecture of laion/larger_clap_general
JOINT_DIM = 512  # CLAP's joint_embed_shape (the projections' output), LAION's default


def laion_clap_wheel(download: bool = True) -> Path:
    """Path of the cached laion-clap wheel, downloaded with pip on first use."""
    from relabel_app.ontology_source import downloaded_wheel

    return downloaded_wheel(LAION_CLAP_WHEEL, LAION_CLAP_VERSION, download=download)


def _wheel_text(member: str) -> str:
    import zipfile

    with zipfile.ZipFile(laion_clap_wheel()) as zf:
        return zf.read(f"laion_clap/clap_module/{member}").decode()


def _htsat_layout(model_name: str) -> dict:
    """The keyword arguments `create_htsat_model` passes to HTSAT_Swin_Transformer for
    `model_name` ("tiny", "base", "large"), read from the wheel's htsat.py with `ast`
    (literal values only; nothing of the package is imported or run)."""
    import ast

    tree = ast.parse(_wheel_text("htsat.py"))
    fn = next(n for n in ast.walk(tree)
              if isinstance(n, ast.FunctionDef) and n.name == "create_htsat_model")
    for node in ast.walk(fn):
        if not isinstance(node, ast.If):
            continue
        test = node.test
        if (isinstance(test, ast.Compare) and isinstance(test.comparators[0], ast.Constant)
                and test.comparators[0].value == model_name):
            call = next(n for n in ast.walk(node.body[0]) if isinstance(n, ast.Call))
            out = {}
            for kw in call.keywords:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    continue  # config=audio_cfg and the like
            return out
    raise ValueError(f"htsat.py has no HTSAT model named {model_name!r}")


def laion_clap_architecture(name: str = PAPER_CLAP_ARCH) -> dict:
    """LAION's model config `name` (e.g. "HTSAT-base") out of the laion-clap wheel:
    {"embed_dim", "audio_cfg", "text_cfg", "htsat": create_htsat_model's keywords}.
    `name` may also be a path to a .json in laion's model-config format (as laion's
    add_model_config takes), which may carry its own "htsat" layout."""
    if name.endswith(".json"):
        try:
            cfg = json.loads(Path(name).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read model config: {e}") from None
    else:
        cfg = json.loads(_wheel_text(f"model_configs/{name}.json"))
    audio = cfg.get("audio_cfg") or {}
    if audio.get("model_type") != "HTSAT":
        raise ValueError(f"{name} is not an HTSAT model")
    if not cfg.get("htsat"):
        cfg["htsat"] = _htsat_layout(audio["model_name"])
    return cfg


def clap_feature_extractor(name: str = PAPER_CLAP_ARCH):
    """ClapFeatureExtractor with LAION's audio front end for `name` (48 kHz, 64 mel bins,
    1024-point window, hop 480, 50 Hz to 14 kHz, 10 s clips): the values of the
    transformers-format releases' preprocessor_config.json (HTSAT-tiny and -base share them)."""
    from transformers import ClapFeatureExtractor

    a = laion_clap_architecture(name)["audio_cfg"]
    return ClapFeatureExtractor(
        feature_size=a["mel_bins"],
        sampling_rate=a["sample_rate"],
        hop_length=a["hop_size"],
        max_length_s=int(a["clip_samples"] // a["sample_rate"]),
        fft_window_size=a["window_size"],
        padding_value=0.0,
        return_attention_mask=False,
        frequency_min=a["fmin"],
        frequency_max=a["fmax"],
        truncation="rand_trunc",
        padding="repeatpad",
    )


def _clap_feature_extractor():
    """The paper CLAP's feature extractor (kept under its old name for bench_clap.py)."""
    return clap_feature_extractor(PAPER_CLAP_ARCH)


def clap_audio_config(name: str = PAPER_CLAP_ARCH, width_divisor: int = 1, **overrides):
    """ClapAudioConfig of LAION's HTSAT model `name`, read from the laion-clap wheel.
    `width_divisor` shrinks every width (patch channels, final width) and the heads by the
    same factor while keeping the layout (spectrogram geometry, depths, windows): the tiny
    mirror uses it."""
    from transformers import ClapAudioConfig

    cfg = laion_clap_architecture(name)
    h, a = cfg["htsat"], cfg["audio_cfg"]
    patch = h["embed_dim"] // width_divisor
    final = cfg["embed_dim"] // width_divisor
    if patch * 2 ** (len(h["depths"]) - 1) != final:
        raise ValueError(f"{name}: final audio width {final} is not patch width {patch} "
                         f"doubled per stage")
    heads = [max(1, n // width_divisor) for n in h["num_heads"]]
    values = dict(
        window_size=h["window_size"],
        num_mel_bins=a["mel_bins"],
        spec_size=h["spec_size"],
        patch_size=h["patch_size"],
        patch_stride=list(h["patch_stride"]),
        num_classes=a["class_num"],
        hidden_size=final,
        depths=list(h["depths"]),
        num_attention_heads=heads,
        patch_embeds_hidden_size=patch,
        enable_fusion=False,
    )
    values.update(overrides)
    return ClapAudioConfig(**values)


def full_size_clap_config(name: str = PAPER_CLAP_ARCH):
    """ClapConfig of the paper's LAION CLAP (default "HTSAT-base", the architecture of
    `laion/larger_clap_general`, LAION's conversion of music_speech_audioset_epoch_15_esc_89.98.pt;
    ~194 M parameters): RoBERTa-base text tower (LAION's default text model), HTSAT-base
    audio tower (Swin, depths 2-2-12-2, 128 patch channels, 1024 final width) on a 256x256
    "image" of 64 mel bins, 512-d joint space; the audio side read from the laion-clap
    wheel. "HTSAT-tiny" gives laion/clap-htsat-unfused's. For benchmarks with random weights."""
    from transformers import ClapConfig, ClapTextConfig

    text = ClapTextConfig(
        vocab_size=50265,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    return ClapConfig(
        text_config=text,
        audio_config=clap_audio_config(name),
        projection_dim=JOINT_DIM,
        logit_scale_init_value=1 / 0.07,
    )


def build_tiny_clap(out: Path) -> Path:
    import torch
    from tokenizers import processors
    from transformers import (
        ClapConfig,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
        PreTrainedTokenizerFast,
    )

    # RoBERTa's special tokens at RoBERTa's ids (0..4), as ClapTextConfig expects.
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    raw = _train_bpe(specials)
    raw.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=512,
    )
    processor = ClapProcessor(feature_extractor=clap_feature_extractor(), tokenizer=tok)

    _seed()
    # The paper CLAP's HTSAT-base layout, read from the laion-clap wheel (64 mel bins ->
    # 256x256 spectrogram image, 4x4 patches, 8x8 windows, depths 2-2-12-2, heads
    # 4-8-16-32), every width divided by 16: 8 patch channels, 64 final width.
    audio = clap_audio_config(PAPER_CLAP_ARCH, width_divisor=TINY_CLAP_WIDTH_DIVISOR)
    text = ClapTextConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    config = ClapConfig(text_config=text, audio_config=audio, projection_dim=32)
    model = ClapModel(config).to(torch.float32).eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_models(out_dir: Path) -> dict[str, Path]:
    """Build all three miniatures under out_dir; returns {"qwen2_audio", "mistral", "clap"}
    -> directory. Reproducible: the same seed gives the same weights and tokenizers."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "qwen2_audio": build_tiny_qwen2_audio(out_dir / TINY_MODEL_DIRS["qwen2_audio"]),
        "mistral": build_tiny_mistral(out_dir / TINY_MODEL_DIRS["mistral"]),
        "clap": build_tiny_clap(out_dir / TINY_MODEL_DIRS["clap"]),
    }
    marker = {"version": TINY_MODELS_VERSION, "seed": SEED, "dirs": TINY_MODEL_DIRS}
    (out_dir / _MARKER).write_text(json.dumps(marker, indent=2))
    return paths


def ensure_tiny_models(out_dir: Path) -> dict[str, Path]:
    """Like build_tiny_models, but reuses a complete earlier build of the same version."""
    out_dir = Path(out_dir)
    try:
        marker = json.loads((out_dir / _MARKER).read_text())
    except (OSError, ValueError):
        marker = None
    paths = {key: out_dir / name for key, name in TINY_MODEL_DIRS.items()}
    if (
        marker
        and marker.get("version") == TINY_MODELS_VERSION
        and all((p / "config.json").is_file() for p in paths.values())
    ):
        return paths
    return build_tiny_models(out_dir)


__all__ = [
    "CAPTION_MAX_NEW_TOKENS",
    "TINY_MODEL_DIRS",
    "build_tiny_models",
    "ensure_tiny_models",
    "clap_audio_config",
    "clap_feature_extractor",
    "full_size_clap_config",
    "laion_clap_architecture",
    "synthetic_sentences",
]
