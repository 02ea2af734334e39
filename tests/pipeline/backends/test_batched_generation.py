"""Batched generation on the tiny random-weight models (float32): a batch gives every
greedy request exactly what it gets alone, sampled requests draw from their own seed, and
the caption and predict stages really batch their model calls."""

import dataclasses

import pytest

from pipeline.backends.base import BackendError, Sampling
from pipeline.backends.registry import build_backend
from pipeline.stages.caption import CaptionConfig, run_caption, run_caption_batch
from pipeline.stages.predict import PredictConfig, run_predict, run_predict_best_of_n

from ._signals import noise, tone


@pytest.fixture(scope="module")
def qwen(tiny_models):
    return build_backend(
        {"adapter": "transformers-qwen2-audio", "model": str(tiny_models["qwen2_audio"]),
         "dtype": "float32", "max_new_tokens": 16}
    )


@pytest.fixture(scope="module")
def mistral(tiny_models):
    return build_backend(
        {"adapter": "transformers-causal-lm", "model": str(tiny_models["mistral"]),
         "dtype": "float32", "max_new_tokens": 8}
    )


class GenerateCounter:
    """Counts the model's generate calls and the rows each one had."""

    def __init__(self, model, monkeypatch):
        self.rows: list[int] = []
        original = model.generate

        def counted(*a, **kw):
            self.rows.append(int(kw["input_ids"].shape[0]))
            return original(*a, **kw)

        monkeypatch.setattr(model, "generate", counted)


CLIPS = [
    (noise(10, 16000, seed=1), 16000),
    (tone(440, 3.0, 16000), 16000),
    (noise(1.5, 16000, seed=2), 16000),
    (tone(220, 7.0, 48000), 48000),  # another rate: resampled per request
    (noise(4, 16000, seed=3, amp=0.5), 16000),
]
HISTORIES = [
    [{"role": "user", "content": "Describe the sound."}],
    [{"role": "user", "content": "Describe the sound in this clip in great detail please."}],
    [
        {"role": "user", "content": "Describe."},
        {"role": "assistant", "content": "A dog barks twice."},
        {"role": "user", "content": "Is there a piano?"},
    ],
    [{"role": "system", "content": "You label sounds."}, {"role": "user", "content": "Go."}],
    [{"role": "user", "content": "What do you hear?"}],
]


def test_qwen2_audio_batch_equals_one_by_one(qwen, monkeypatch):
    requests = [(a, sr, h) for (a, sr), h in zip(CLIPS, HISTORIES, strict=True)]
    alone = [qwen.chat(*r) for r in requests]
    assert len(set(alone)) > 1  # the requests really differ
    counter = GenerateCounter(qwen.model, monkeypatch)
    batched = qwen.chat_batch(requests)
    assert counter.rows == [5]  # one generate over all five, left-padded
    assert batched == alone


def test_qwen2_audio_batch_isolates_a_bad_request(qwen):
    good = (CLIPS[0][0], 16000, HISTORIES[0])
    out = qwen.chat_batch([good, (CLIPS[1][0], 16000, [])], return_exceptions=True)
    assert out[0] == qwen.chat(*good)
    assert isinstance(out[1], ValueError) and "no user turn" in str(out[1])
    with pytest.raises(ValueError):
        qwen.chat_batch([good, (CLIPS[1][0], 16000, [])])


def test_causal_lm_batch_equals_one_by_one(mistral, monkeypatch):
    requests = [
        [{"role": "user", "content": "Labels for: " + "a dog barks " * k}] for k in range(1, 7)
    ]
    alone = [mistral.chat(r) for r in requests]
    assert len(set(alone)) > 1
    counter = GenerateCounter(mistral.model, monkeypatch)
    assert mistral.chat_batch(requests) == alone
    assert counter.rows == [6]


def test_sampled_rows_follow_their_own_seed(mistral):
    msgs = [{"role": "user", "content": "Labels for: rain on a roof"}]
    greedy = mistral.chat(msgs)
    s1, s2 = Sampling(0.8, 0.9, 11), Sampling(0.8, 0.9, 12)
    alone = mistral.chat(msgs, sampling=s1)
    assert mistral.chat(msgs, sampling=s1) == alone  # reproducible
    # The same seed gives the same answer whatever shares the batch; greedy rows stay greedy.
    batch = mistral.chat_batch([msgs, msgs, msgs], [None, s1, s2])
    assert batch[0] == greedy and batch[1] == alone
    draws = {mistral.chat(msgs, sampling=Sampling(0.8, 0.9, seed)) for seed in range(6)}
    assert len(draws - {greedy}) >= 1  # sampling changes something


def test_caption_batch_equals_one_by_one_and_batches_each_step(qwen, monkeypatch):
    # A length rule no tiny answer meets, so every clip retries: attempt 2 is a batch too.
    cfg = CaptionConfig(presence_method="read", min_chars=1, max_chars=20, max_attempts=2,
                        batch_size=8)
    alone = [dataclasses.asdict(run_caption(qwen, a, sr, cfg)) for a, sr in CLIPS]
    counter = GenerateCounter(qwen.model, monkeypatch)
    batched = run_caption_batch(qwen, CLIPS, cfg)
    assert [dataclasses.asdict(r) for r in batched] == alone
    n_requests = sum(len(a["messages"]) // 2 for r in alone for a in r["attempts"])
    assert sum(counter.rows) == n_requests
    assert counter.rows[0] == len(CLIPS)  # round 1 of every clip in one generate
    assert len(counter.rows) < n_requests / 2
    assert all(len(r["attempts"]) == 2 for r in alone)  # the retry ran, batched


def test_caption_batch_size_splits_calls(qwen, monkeypatch):
    cfg = CaptionConfig(presence_method="read", min_chars=1, max_chars=10_000,
                        max_attempts=1, batch_size=2)
    counter = GenerateCounter(qwen.model, monkeypatch)
    run_caption_batch(qwen, CLIPS, cfg)
    assert counter.rows[:3] == [2, 2, 1]  # round 1 of five clips, two per generate


SUMMARIES = [
    "Primary content: A dog barks while a man speaks.",
    "Primary content: Rain falls on a tin roof; thunder.",
    "Primary content: An acoustic guitar and a woman singing.",
    "Primary content: A car engine idles, then a door closes.",
]


def test_predict_batch_equals_one_by_one(mistral, monkeypatch):
    cfg = PredictConfig(max_attempts=2)
    alone = [dataclasses.asdict(run_predict(mistral, s, cfg)) for s in SUMMARIES]
    counter = GenerateCounter(mistral.model, monkeypatch)
    out = run_predict_best_of_n(mistral, [(s, (1, i)) for i, s in enumerate(SUMMARIES)], cfg, 1)
    assert [dataclasses.asdict(r[0]) for r in out] == alone
    assert counter.rows[0] == len(SUMMARIES)


def test_best_of_n_samples_attempts_after_the_first_and_reruns_identically(mistral):
    cfg = PredictConfig(max_attempts=2, temperature=0.8, top_p=0.9)
    clips = [(s, (7, 100 + i)) for i, s in enumerate(SUMMARIES)]
    first = run_predict_best_of_n(mistral, clips, cfg, 3)
    again = run_predict_best_of_n(mistral, clips, cfg, 3)
    as_dicts = [[dataclasses.asdict(a) for a in c] for c in first]
    assert as_dicts == [[dataclasses.asdict(a) for a in c] for c in again]  # a rerun repeats
    for (summary, _), attempts in zip(clips, first, strict=True):
        assert attempts[0].sampling is None  # attempt 1 greedy ...
        assert attempts[0].raw_answers == run_predict(mistral, summary, cfg).raw_answers
        for a in attempts[1:]:  # ... the others sampled, settings and seed stored
            assert a.sampling["temperature"] == 0.8 and a.sampling["top_p"] == 0.9
    seeds = [a.sampling["seed"] for c in first for a in c[1:]]
    assert len(set(seeds)) == len(seeds)  # one seed per (run, clip, attempt)
    differs = [any(a.raw_answers != c[0].raw_answers for a in c[1:]) for c in first]
    assert any(differs)
    # Another run draws other seeds.
    other = run_predict_best_of_n(mistral, [(s, (8, k[1])) for s, k in clips], cfg, 3)
    assert [a.sampling["seed"] for c in other for a in c[1:]] != seeds


def test_predict_batch_reports_a_failed_request_per_clip():
    class HalfBroken:
        def chat(self, messages, sampling=None):
            if "broken" in messages[-1]["content"]:
                raise BackendError("model down")
            return "dog barking, rain"

    out = run_predict_best_of_n(
        HalfBroken(), [("fine clip", (1, 1)), ("broken clip", (1, 2))], PredictConfig(), 2
    )
    assert [a.labels for a in out[0]] == [["dog barking", "rain"]] * 2
    assert isinstance(out[1], BackendError)
