"""Audio chat through a local `transformers` Qwen2-Audio class model (AudioChat)."""

from __future__ import annotations

import copy
import threading

import numpy as np

from ._generate import generate_kwargs, run_rows
from ._util import cut, resample, resolve_device, torch_dtype
from .base import BackendError, Sampling

DEFAULT_MAX_NEW_TOKENS = 256


def qwen2_audio_conversation(messages: list[dict], audio_ref: str = "clip.wav") -> list[dict]:
    """The caller's OpenAI-shaped history with the audio placed in the first user turn as a
    content part the Qwen2-Audio chat template renders as <|audio_bos|><|AUDIO|><|audio_eos|>.
    ("audio_url" is the key the hub template tests for; the url itself is never fetched.)"""
    conv: list[dict] = []
    placed = False
    for msg in messages:
        role, content = msg["role"], msg.get("content") or ""
        if role == "user" and not placed:
            parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
            conv.append(
                {"role": role, "content": [{"type": "audio", "audio_url": audio_ref}, *parts]}
            )
            placed = True
        else:
            conv.append({"role": role, "content": content})
    if not placed:
        raise ValueError("messages hold no user turn to attach the audio to")
    return conv


class Qwen2AudioChat:
    """Qwen2-Audio(-Instruct) from a hub id or a local directory; greedy decoding unless a
    request carries a Sampling.

    chat(audio, sample_rate, messages) -> the newly generated text only; chat_batch runs
    many such requests as one batched generate. Audio is resampled
    to the processor's rate (16 kHz) and cut to 30 s with a warning (the encoder's window).
    """

    max_seconds = 30.0

    def __init__(
        self,
        model_path_or_id: str,
        device: str = "cpu",
        dtype: str = "float32",
        max_new_tokens: int | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ):
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        self.model_id = str(model_path_or_id)
        self.device = resolve_device(device)
        self.processor = AutoProcessor.from_pretrained(
            self.model_id, revision=revision, trust_remote_code=trust_remote_code
        )
        self.model = Qwen2AudioForConditionalGeneration.from_pretrained(
            self.model_id,
            revision=revision,
            dtype=torch_dtype(dtype),
            trust_remote_code=trust_remote_code,
        )
        self.model.to(self.device).eval()
        fe = self.processor.feature_extractor
        self.sample_rate = int(getattr(fe, "sampling_rate", 16000) or 16000)
        gen = copy.deepcopy(self.model.generation_config)
        if max_new_tokens is None:
            max_new_tokens = gen.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
        self.max_new_tokens = int(max_new_tokens)
        # Greedy: drop sampling knobs a hub generation_config may carry.
        gen.do_sample = False
        gen.num_beams = 1
        for knob in ("temperature", "top_p", "top_k"):
            if hasattr(gen, knob):
                setattr(gen, knob, None)
        gen.max_new_tokens = self.max_new_tokens
        gen.max_length = None
        # Also the model's own: generate() fills unset fields from it (sampling knobs back).
        self.model.generation_config = self.generation_config = gen
        self._lock = threading.Lock()

    def _prompt_and_wav(self, audio: np.ndarray, sample_rate: int, messages: list[dict]):
        wav = resample(audio, sample_rate, self.sample_rate)
        wav = cut(wav, self.sample_rate, self.max_seconds, "Qwen2AudioChat")
        conv = qwen2_audio_conversation(messages)
        prompt = self.processor.apply_chat_template(
            conv, add_generation_prompt=True, tokenize=False
        )
        return prompt, wav

    def _encode(self, items: list[tuple[str, np.ndarray]]):
        # transformers 5: the keyword is `audio=` (not `audios=`). Left padding: every row's
        # prompt ends where generation starts; the attention mask hides the pads.
        inputs = self.processor(
            text=[p for p, _ in items],
            audio=[w for _, w in items],
            sampling_rate=self.sample_rate,
            return_tensors="pt",
            padding=True,
            padding_side="left",
        )
        if "input_features" not in inputs:
            raise BackendError("the processor dropped the audio (no input_features)")
        return inputs

    def build_inputs(self, audio: np.ndarray, sample_rate: int, messages: list[dict]):
        """Processor output for one clip + history (exposed for tests and debugging)."""
        return self._encode([self._prompt_and_wav(audio, sample_rate, messages)])

    def chat(
        self,
        audio: np.ndarray,
        sample_rate: int,
        messages: list[dict],
        sampling: Sampling | None = None,
    ) -> str:
        return self.chat_batch([(audio, sample_rate, messages)], [sampling])[0]

    def chat_batch(
        self,
        requests: list[tuple[np.ndarray, int, list[dict]]],
        samplings: list[Sampling | None] | None = None,
        return_exceptions: bool = False,
    ) -> list[str | Exception]:
        """One batched `generate` over every (audio, sample_rate, messages) request: prompts
        left-padded with attention masks, the clips' log-mel features stacked with their
        feature masks. Greedy rows give exactly what `chat` gives for them alone; rows with
        a Sampling draw from their own seeded generator (pipeline.backends._generate)."""
        samplings = list(samplings) if samplings is not None else [None] * len(requests)
        if len(samplings) != len(requests):
            raise ValueError("one sampling (or None) per request")

        def generate(rows: list[int], items: list) -> list[str]:
            import torch

            inputs = self._encode(items).to(self.device)
            inputs["input_features"] = inputs["input_features"].to(self.model.dtype)
            n_prompt = inputs["input_ids"].shape[1]
            with self._lock, torch.inference_mode():
                out = self.model.generate(
                    **inputs,
                    generation_config=self.generation_config,
                    **generate_kwargs([samplings[i] for i in rows]),
                )
            return [
                self.processor.tokenizer.decode(row[n_prompt:], skip_special_tokens=True).strip()
                for row in out
            ]

        return run_rows(
            len(requests),
            lambda i: self._prompt_and_wav(*requests[i]),
            generate,
            return_exceptions,
            f"Qwen2-Audio ({self.model_id})",
        )

    def __repr__(self) -> str:
        return f"Qwen2AudioChat({self.model_id!r}, device={self.device!r})"
