import io

import numpy as np
import pytest
import soundfile as sf
import torch

from pipeline.backends import _util

from ._signals import tone


@pytest.mark.parametrize(
    ("sr", "target"), [(44100, 16000), (16000, 48000), (22050, 48000), (48000, 48000)]
)
def test_resample_length_and_pitch(sr, target):
    out = _util.resample(tone(1000, 2.0, sr), sr, target)
    assert out.dtype == np.float32
    assert out.shape == (2 * target,)
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * target / out.shape[0]
    assert abs(peak_hz - 1000) < 2


def test_odd_rate_is_approximated_not_exploded():
    out = _util.resample(np.zeros(47999, np.float32), 47999, 48000)
    assert abs(out.shape[0] - 48000) <= 2


def test_to_mono_handles_channels_and_ints():
    stereo = np.stack([np.ones(100), -np.ones(100) * 0.5], axis=1)  # (frames, channels)
    np.testing.assert_allclose(_util.to_mono_float32(stereo), 0.25)
    np.testing.assert_allclose(_util.to_mono_float32(stereo.T), 0.25)
    ints = np.full(10, 16384, dtype=np.int16)
    np.testing.assert_allclose(_util.to_mono_float32(ints), 0.5, atol=1e-4)
    with pytest.raises(ValueError):
        _util.to_mono_float32(np.zeros((2, 2, 2)))


def test_wav_bytes_round_trip():
    wav = _util.wav_bytes(tone(440, 0.5, 16000), 16000)
    assert wav[:4] == b"RIFF"
    data, sr = sf.read(io.BytesIO(wav), dtype="float32")
    assert sr == 16000 and data.shape == (8000,)
    np.testing.assert_allclose(data, tone(440, 0.5, 16000), atol=1e-4)


def test_l2_normalise_and_dtypes():
    x = _util.l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, [[0.6, 0.8], [0.0, 0.0]])
    assert _util.torch_dtype("bf16") is torch.bfloat16
    assert _util.torch_dtype("float32") is torch.float32
    assert _util.torch_dtype("auto") == "auto"
    with pytest.raises(ValueError):
        _util.torch_dtype("int3")
    assert _util.resolve_device("cpu") == "cpu"
    assert _util.resolve_device("auto") in ("cpu", "cuda")
