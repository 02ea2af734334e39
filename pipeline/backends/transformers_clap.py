"""CLAP audio/text embeddings through `transformers` ClapModel (ClapEmbedder)."""

from __future__ import annotations

import threading

import numpy as np

from ._util import l2_normalise, resample, resolve_device, torch_dtype
from .base import BackendError


def _features(output):
    """get_*_features returns a tensor in transformers 4 but a BaseModelOutputWithPooling
    whose pooler_output holds the (projected, normalised) embeddings in transformers 5."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise BackendError(f"unexpected CLAP output type {type(output).__name__}")
    return pooled


class ClapTransformers:
    """LAION CLAP (e.g. laion/clap-htsat-unfused, laion/larger_clap_general) or a local dir.

    embed_audio(list of mono float32 arrays at `sample_rate`=48 kHz; other rates can be
    passed via `embed_audio(batch, sample_rate=...)`) and embed_text(list of str) both return
    (n, projection_dim) float32 rows, L2-normalised, in the joint space. Unfused models get
    `truncation="rand_trunc"` (a clip over 10 s is cropped at a position drawn per clip
    from `seed`), fused ones `"fusion"` (the extractor's random choices run under `seed`;
    the global numpy RNG state is restored after).
    Like the LAION reference code, audio is quantised to int16 and back first.

    `fast_features` (default on, unfused models only): the log-mel spectrogram is computed
    with torch.stft on the model's device instead of ClapFeatureExtractor's per-frame numpy
    loop, which otherwise dominates: full-size HTSAT-unfused on an H200, 512 clips of 10 s
    took 11.6 s through the extractor and 1.45 s this way (fp32; embeddings equal to 6e-8).
    Same crop/repeat-pad, periodic Hann window, slaney mel filters and dB scale; features
    agree with the extractor's to < 0.05 dB (mean ~1e-4 dB).
    """

    sample_rate = 48000

    def __init__(
        self,
        model_path_or_id: str,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 16,
        text_max_length: int = 77,
        quantize_int16: bool = True,
        seed: int = 0,
        fast_features: bool = True,
        revision: str | None = None,
    ):
        from transformers import ClapModel, ClapProcessor

        # The revision (a hub commit, or the "local-<hash>" pipeline.profiles gives a local
        # folder) is part of model_id, so embedding caches keyed on it follow the weights.
        self.model_id = str(model_path_or_id) + (f"@{revision}" if revision else "")
        self.device = resolve_device(device)
        self.path = str(model_path_or_id)
        self.processor = ClapProcessor.from_pretrained(self.path, revision=revision)
        self.model = ClapModel.from_pretrained(
            self.path, revision=revision, dtype=torch_dtype(dtype)
        )
        self.model.to(self.device).eval()
        fe = self.processor.feature_extractor
        self.sample_rate = int(fe.sampling_rate)
        self.enable_fusion = bool(getattr(self.model.config.audio_config, "enable_fusion", False))
        self.truncation = "fusion" if self.enable_fusion else "rand_trunc"
        self.batch_size = max(1, int(batch_size))
        self.text_max_length = int(text_max_length)
        self.quantize_int16 = bool(quantize_int16)
        self.seed = int(seed)
        self.dim = int(self.model.config.projection_dim)
        self.fast_features = (
            bool(fast_features)
            and not self.enable_fusion
            and all(
                hasattr(fe, a)
                for a in ("mel_filters_slaney", "fft_window_size", "hop_length", "nb_max_samples")
            )
        )
        self._mel = None  # (n_mels, n_freqs) slaney filters on the device, made on first use
        self._window = None
        self._lock = threading.Lock()

    def _prepare(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        a = resample(audio, sample_rate, self.sample_rate)
        if a.size == 0:
            raise BackendError("empty audio clip")
        if self.quantize_int16:
            a = (np.clip(a, -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32) / 32767.0
        max_len = int(getattr(self.processor.feature_extractor, "nb_max_samples", 0) or 0)
        if not self.enable_fusion and max_len and a.shape[0] > max_len:
            # rand_trunc's random crop, drawn per clip from a fixed seed: deterministic and
            # independent of the clip's batch companions.
            start = np.random.RandomState(self.seed).randint(0, a.shape[0] - max_len + 1)
            a = a[start : start + max_len]
        return a

    def audio_inputs(self, batch: list[np.ndarray], sample_rate: int | None = None):
        """ClapFeatureExtractor output for a batch (the reference the fast path matches)."""
        sr = self.sample_rate if sample_rate is None else int(sample_rate)
        wavs = [self._prepare(a, sr) for a in batch]
        state = np.random.get_state()
        np.random.seed(self.seed)
        try:
            return self.processor.feature_extractor(
                wavs,
                sampling_rate=self.sample_rate,
                truncation=self.truncation,
                padding="repeatpad",
                return_tensors="pt",
            )
        finally:
            np.random.set_state(state)

    def _fixed_length(self, wavs: list[np.ndarray]) -> np.ndarray:
        """ClapFeatureExtractor's repeatpad on (already cropped) waveforms: (n, max_len)."""
        max_len = int(self.processor.feature_extractor.nb_max_samples)
        out = np.zeros((len(wavs), max_len), dtype=np.float32)
        for i, w in enumerate(wavs):
            if w.shape[0] < max_len:
                w = np.tile(w, max_len // w.shape[0])
            out[i, : w.shape[0]] = w[:max_len]
        return out

    def _torch_features(self, wavs: list[np.ndarray]) -> dict:
        import torch

        fe = self.processor.feature_extractor
        if self._mel is None:
            self._mel = torch.as_tensor(fe.mel_filters_slaney.T, dtype=torch.float32).to(
                self.device
            )
            self._window = torch.hann_window(
                fe.fft_window_size, periodic=True, dtype=torch.float32, device=self.device
            )
        x = torch.from_numpy(self._fixed_length(wavs)).to(self.device)
        spec = torch.stft(
            x,
            n_fft=fe.fft_window_size,
            hop_length=fe.hop_length,
            win_length=fe.fft_window_size,
            window=self._window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # (n, freqs, frames)
        mel = torch.matmul(self._mel, power).clamp_(min=1e-10)
        log_mel = 10.0 * torch.log10(mel)  # dB re 1.0, as the extractor's log_mel="dB"
        return {
            "input_features": log_mel.transpose(1, 2).unsqueeze(1).contiguous(),
            "is_longer": torch.zeros((len(wavs), 1), dtype=torch.bool, device=self.device),
        }

    def embed_audio(self, batch: list[np.ndarray], sample_rate: int | None = None) -> np.ndarray:
        import torch

        batch = list(batch)
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = []
        sr = self.sample_rate if sample_rate is None else int(sample_rate)
        for start in range(0, len(batch), self.batch_size):
            chunk = batch[start : start + self.batch_size]
            with self._lock, torch.inference_mode():
                if self.fast_features:
                    feats = self._torch_features([self._prepare(a, sr) for a in chunk])
                else:
                    feats = dict(self.audio_inputs(chunk, sr).to(self.device))
                feats["input_features"] = feats["input_features"].to(self.model.dtype)
                out = self.model.get_audio_features(**feats)
            rows.append(_features(out).float().cpu().numpy())
        return l2_normalise(np.concatenate(rows, axis=0))

    def embed_text(self, texts: list[str]) -> np.ndarray:
        import torch

        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = []
        tok = self.processor.tokenizer
        for start in range(0, len(texts), self.batch_size):
            enc = tok(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.text_max_length,
                return_tensors="pt",
            ).to(self.device)
            with self._lock, torch.inference_mode():
                out = self.model.get_text_features(
                    input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
                )
            rows.append(_features(out).float().cpu().numpy())
        return l2_normalise(np.concatenate(rows, axis=0))

    def __repr__(self) -> str:
        return f"ClapTransformers({self.model_id!r}, device={self.device!r})"
