import hashlib
import time

import torch

from pipeline.testing import tiny_models as tm


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_three_models_with_expected_files_and_small(tiny_models):
    assert set(tiny_models) == {"qwen2_audio", "mistral", "clap"}
    for _name, path in tiny_models.items():
        assert (path / "config.json").is_file()
        assert (path / "model.safetensors").is_file()
        assert (path / "tokenizer.json").is_file()
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        assert 0 < size < 20 * 1024 * 1024
    assert (tiny_models["qwen2_audio"] / "processor_config.json").is_file()
    assert (tiny_models["clap"] / "processor_config.json").is_file()
    assert (tiny_models["mistral"] / "chat_template.jinja").is_file()


def test_real_architectures(tiny_models):
    from transformers import AutoConfig

    qwen = AutoConfig.from_pretrained(tiny_models["qwen2_audio"])
    assert qwen.model_type == "qwen2_audio"
    assert qwen.architectures == ["Qwen2AudioForConditionalGeneration"]
    assert qwen.audio_config.num_mel_bins == 128
    assert qwen.text_config.model_type == "qwen2"
    mistral = AutoConfig.from_pretrained(tiny_models["mistral"])
    assert mistral.model_type == "mistral"
    assert mistral.architectures == ["MistralForCausalLM"]
    clap = AutoConfig.from_pretrained(tiny_models["clap"])
    assert clap.model_type == "clap"
    assert clap.audio_config.enable_fusion is False
    assert clap.audio_config.num_mel_bins == 64
    assert clap.audio_config.spec_size == 256


def test_build_is_reproducible_and_fast(tiny_models, tmp_path):
    start = time.perf_counter()
    again = tm.build_tiny_models(tmp_path / "again")
    assert time.perf_counter() - start < 60
    for key, path in tiny_models.items():
        for fname in ("model.safetensors", "tokenizer.json", "config.json"):
            assert _digest(path / fname) == _digest(again[key] / fname), (key, fname)


def test_ensure_reuses_a_complete_build(tiny_models, tmp_path):
    first = tm.ensure_tiny_models(tmp_path / "t")
    stamp = (first["clap"] / "model.safetensors").stat().st_mtime_ns
    second = tm.ensure_tiny_models(tmp_path / "t")
    assert second == first
    assert (second["clap"] / "model.safetensors").stat().st_mtime_ns == stamp


def test_tokenizers_were_trained_with_the_special_tokens(tiny_models):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models["qwen2_audio"])
    for special in (
        "<|audio_bos|>",
        "<|AUDIO|>",
        "<|audio_eos|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
    ):
        ids = tok(special, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, special
    text = "A dog is barking in the park."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) < len(text) / 2  # learned merges, not raw bytes
    assert tok.decode(ids) == text
    clap_tok = AutoTokenizer.from_pretrained(tiny_models["clap"])
    enc = clap_tok("dog barking")["input_ids"]
    assert enc[0] == 0 and enc[-1] == 2  # RoBERTa <s> ... </s>
    assert clap_tok.pad_token_id == 1


def test_full_size_clap_config_is_the_papers_htsat_base_from_the_laion_wheel():
    from transformers import ClapModel

    arch = tm.laion_clap_architecture("HTSAT-base")  # read out of the laion-clap wheel
    assert arch["audio_cfg"]["model_name"] == "base" and arch["embed_dim"] == 1024
    assert arch["htsat"]["depths"] == [2, 2, 12, 2] and arch["htsat"]["embed_dim"] == 128
    cfg = tm.full_size_clap_config()
    assert cfg.audio_config.enable_fusion is False
    assert list(cfg.audio_config.depths) == [2, 2, 12, 2]
    assert list(cfg.audio_config.num_attention_heads) == [4, 8, 16, 32]
    assert cfg.audio_config.patch_embeds_hidden_size == 128
    assert cfg.audio_config.hidden_size == 1024
    assert cfg.text_config.hidden_size == 768
    assert cfg.text_config.vocab_size == 50265
    assert cfg.projection_dim == 512
    with torch.device("meta"):
        model = ClapModel(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert 190e6 < n < 197e6  # laion/larger_clap_general has ~194 M parameters
    # The older HTSAT-tiny (laion/clap-htsat-unfused) from the same wheel, for comparison.
    tiny = tm.full_size_clap_config("HTSAT-tiny")
    assert list(tiny.audio_config.depths) == [2, 2, 6, 2]
    with torch.device("meta"):
        n_tiny = sum(p.numel() for p in ClapModel(tiny).parameters())
    assert 150e6 < n_tiny < 157e6  # laion/clap-htsat-unfused has ~153.5 M parameters


def test_tiny_clap_mirrors_the_htsat_base_layout(tiny_models):
    from transformers import AutoConfig

    tiny = AutoConfig.from_pretrained(tiny_models["clap"]).audio_config
    full = tm.full_size_clap_config().audio_config
    def norm(v):
        return list(v) if isinstance(v, list | tuple) else v

    for key in ("depths", "spec_size", "patch_size", "patch_stride", "window_size",
                "num_mel_bins"):
        assert norm(getattr(tiny, key)) == norm(getattr(full, key)), key
    assert tiny.hidden_size * tm.TINY_CLAP_WIDTH_DIVISOR == full.hidden_size
    assert tiny.patch_embeds_hidden_size * tm.TINY_CLAP_WIDTH_DIVISOR == full.patch_embeds_hidden_size
