import pytest

from pipeline.backends import registry


def test_same_spec_same_instance(tiny_models):
    spec = {"adapter": "transformers-clap", "model": str(tiny_models["clap"]), "batch_size": 4}
    first = registry.build_backend(spec)
    reordered = {"batch_size": 4, "model": str(tiny_models["clap"]), "adapter": "transformers-clap"}
    assert registry.build_backend(reordered) is first
    assert first.batch_size == 4
    other = registry.build_backend({**spec, "batch_size": 8})
    assert other is not first and other.batch_size == 8


def test_every_adapter_name_resolves():
    from pipeline.backends.openai_compat import OpenAIAudioChat, OpenAITextChat
    from pipeline.backends.transformers_audio import Qwen2AudioChat
    from pipeline.backends.transformers_clap import ClapTransformers
    from pipeline.backends.transformers_text import CausalLMChat, SentenceEmbedder

    expected = {
        "transformers-qwen2-audio": Qwen2AudioChat,
        "transformers-causal-lm": CausalLMChat,
        "sentence-transformers": SentenceEmbedder,
        "transformers-clap": ClapTransformers,
        "openai-chat": OpenAITextChat,
        "openai-audio-chat": OpenAIAudioChat,
    }
    assert {name: registry.adapter_class(name) for name in registry.ADAPTERS} == expected


@pytest.mark.parametrize(
    "spec",
    [
        {"adapter": "nope", "model": "x"},
        {"model": "x"},
        {"adapter": "openai-chat"},
        {"adapter": "openai-chat", "model": "m"},  # no base_url
    ],
)
def test_bad_specs(spec):
    with pytest.raises(ValueError):
        registry.build_backend(spec)


def test_openai_spec_is_built_with_base_url():
    spec = {
        "adapter": "openai-chat",
        "model": "deepseek-reasoner",
        "base_url": "http://127.0.0.1:9/v1",
        "timeout": 5,
        "max_concurrency": 3,
    }
    chat = registry.build_backend(spec)
    assert chat.base_url == "http://127.0.0.1:9/v1"
    assert chat.model == "deepseek-reasoner"
    assert chat.timeout == 5.0 and chat.max_concurrency == 3
    assert registry.build_backend(dict(spec)) is chat


def test_local_revision_from_the_profile_is_harmless(tiny_models):
    # pipeline.profiles adds a "local-<hash>" revision to specs naming a local folder.
    chat = registry.build_backend(
        {
            "adapter": "transformers-causal-lm",
            "model": str(tiny_models["mistral"]),
            "max_new_tokens": 8,
            "revision": "local-0123456789abcdef",
        }
    )
    assert chat.max_new_tokens == 8
    assert isinstance(chat.chat([{"role": "user", "content": "Hello"}]), str)


def test_concurrent_builds_of_one_spec_give_one_instance():
    import threading

    spec = {"adapter": "openai-chat", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    spec["timeout"] = 7
    barrier = threading.Barrier(8)
    got = []

    def build():
        barrier.wait()
        got.append(registry.build_backend(spec))

    threads = [threading.Thread(target=build) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(g is got[0] for g in got)


def test_revision_joins_the_embedders_model_id(tiny_models):
    clap = registry.build_backend(
        {"adapter": "transformers-clap", "model": str(tiny_models["clap"]), "revision": "local-ab"}
    )
    assert clap.model_id == f"{tiny_models['clap']}@local-ab"
    assert clap.embed_text(["x"]).shape == (1, 32)
