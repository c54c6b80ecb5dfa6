"""keras.ops Fourier transforms and signal processing (fft, fft2, ifft2, rfft, irfft, stft,
istft, extract_sequences, the windows): values against NumPy and PyTorch, gradients
against float64 central differences, dtypes and errors. The same calls in real Keras:
tests/test_ops_keras3_more_vs_keras.py."""

from __future__ import annotations

import numpy as np
import pytest

from dendrite import ops
from dendrite.core import Tensor
from dendrite.testing import gradcheck

RNG = np.random.default_rng(4)
RE = RNG.standard_normal((2, 6))
IM = RNG.standard_normal((2, 6))
SIGNAL = RNG.standard_normal((2, 37))


def _pair(result):
    real, imag = result
    return real.data + 1j * imag.data


def test_complex_transforms_match_numpy():
    z = RE + 1j * IM
    np.testing.assert_allclose(_pair(ops.fft((Tensor(RE), Tensor(IM)))), np.fft.fft(z))
    np.testing.assert_allclose(_pair(ops.fft2((Tensor(RE), Tensor(IM)))), np.fft.fft2(z))
    np.testing.assert_allclose(_pair(ops.ifft2((Tensor(RE), Tensor(IM)))), np.fft.ifft2(z))
    batch = RNG.standard_normal((3, 2, 4))
    np.testing.assert_allclose(_pair(ops.fft2((batch, batch * 0))), np.fft.fft2(batch))


@pytest.mark.parametrize("n", [None, 4, 6, 9])
def test_rfft_and_irfft_match_numpy(n):
    np.testing.assert_allclose(_pair(ops.rfft(Tensor(RE), n)), np.fft.rfft(RE, n), atol=1e-12)
    spectrum = np.fft.rfft(RE)
    back = ops.irfft((Tensor(spectrum.real), Tensor(spectrum.imag)), n)
    np.testing.assert_allclose(back.data, np.fft.irfft(spectrum, n), atol=1e-12)
    # The imaginary parts of the zero and Nyquist bins are ignored, as NumPy ignores them.
    noisy = spectrum + 0.5j
    back = ops.irfft((Tensor(noisy.real), Tensor(noisy.imag)), n)
    np.testing.assert_allclose(back.data, np.fft.irfft(noisy, n), atol=1e-12)


@pytest.mark.parametrize(
    "name, fn",
    [
        ("fft", lambda r, i: ops.fft((r, i))),
        ("fft2", lambda r, i: ops.fft2((r, i))),
        ("ifft2", lambda r, i: ops.ifft2((r, i))),
        ("irfft", lambda r, i: (ops.irfft((r, i)), ops.irfft((r, i), 7))),
        ("irfft_odd", lambda r, i: (ops.irfft((r, i), 9), ops.irfft((r, i), 3))),
    ],
)
def test_complex_gradients(name, fn):
    weights = [RNG.standard_normal(np.shape(o.data)) for o in fn(Tensor(RE), Tensor(IM))]

    def loss(r, i):
        return sum(ops.sum(o * w) for o, w in zip(fn(r, i), weights))

    gradcheck(loss, RE, IM, mode="elementwise", name=name)


@pytest.mark.parametrize("n", [None, 4, 9])
def test_rfft_gradient(n):
    gradcheck(lambda x: ops.concatenate(ops.rfft(x, n), axis=-1), RE, mode="elementwise")


def test_fft_errors_and_dtypes():
    r32 = Tensor(RE.astype("float32"))
    out = ops.fft((r32, r32))
    assert out[0].dtype == "float32" and out[1].dtype == "float32"
    assert ops.rfft(np.arange(8)).__getitem__(0).dtype == "float32"
    with pytest.raises(ValueError, match="tuple"):
        ops.fft(Tensor(RE))
    with pytest.raises(ValueError, match="same shape"):
        ops.fft((Tensor(RE), Tensor(IM[:, :3])))
    with pytest.raises(ValueError, match="floats"):
        ops.fft((np.ones(3, "int32"), np.ones(3, "int32")))


# --- stft / istft ---------------------------------------------------------------------------
STFT = [
    (8, 4, 8, "hann", True),
    (8, 3, 16, "hamming", True),
    (8, 4, 8, None, False),
    (6, 2, 8, None, False),
    (7, 2, 10, "hann", True),
]


def _torch_window(window, length):
    torch = pytest.importorskip("torch")
    if window is None:
        return torch.ones(length, dtype=torch.float64)
    if isinstance(window, str):
        make = torch.hann_window if window == "hann" else torch.hamming_window
        return make(length, periodic=True, dtype=torch.float64)
    return torch.tensor(window)


@pytest.mark.parametrize("length, stride, n_fft, window, center", STFT)
def test_stft_matches_torch(length, stride, n_fft, window, center):
    torch = pytest.importorskip("torch")
    real, imag = ops.stft(Tensor(SIGNAL), length, stride, n_fft, window, center)
    expected = torch.stft(
        torch.tensor(SIGNAL),
        n_fft=n_fft,
        hop_length=stride,
        win_length=length,
        window=_torch_window(window, length),
        center=center,
        return_complex=True,
    ).transpose(-2, -1)
    np.testing.assert_allclose(real.data, expected.real.numpy(), atol=1e-11)
    np.testing.assert_allclose(imag.data, expected.imag.numpy(), atol=1e-11)


def test_stft_istft_round_trip_and_torch_istft():
    torch = pytest.importorskip("torch")
    spectrum = ops.stft(Tensor(SIGNAL), 8, 2, 8)
    back = ops.istft(spectrum, 8, 2, 8)
    np.testing.assert_allclose(back.data, SIGNAL[:, : back.shape[-1]], atol=1e-12)
    back = ops.istft(spectrum, 8, 2, 8, length=40)
    complex_input = torch.complex(
        torch.tensor(spectrum[0].data), torch.tensor(spectrum[1].data)
    ).transpose(-2, -1)
    expected = torch.istft(
        complex_input, 8, 2, 8, window=torch.hann_window(8, dtype=torch.float64), length=40
    )
    np.testing.assert_allclose(back.data, expected.numpy(), atol=1e-12)
    custom = np.linspace(0.2, 1.0, 8)
    spectrum = ops.stft(Tensor(SIGNAL), 8, 4, 8, window=custom)
    back = ops.istft(spectrum, 8, 4, 8, window=custom)
    np.testing.assert_allclose(back.data, SIGNAL[:, : back.shape[-1]], atol=1e-12)


def test_stft_and_istft_gradients():
    short = SIGNAL[:, :16]
    gradcheck(lambda x: ops.concatenate(ops.stft(x, 6, 3, 8), -1), short, mode="elementwise")
    spectrum = ops.stft(Tensor(SIGNAL[:1, :20]), 8, 4, 8)
    gradcheck(lambda r, i: ops.istft((r, i), 8, 4, 8), spectrum[0].data, spectrum[1].data)
    spectrum = ops.stft(Tensor(SIGNAL[:1, :20]), 6, 3, 8, window="hamming")
    gradcheck(
        lambda r, i: ops.istft((r, i), 6, 3, 8, window="hamming"),
        spectrum[0].data,
        spectrum[1].data,
    )


def test_stft_errors():
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.stft(np.arange(20), 4, 2, 4)
    with pytest.raises(ValueError, match="fft_length"):
        ops.stft(Tensor(SIGNAL), 8, 2, 4)
    with pytest.raises(ValueError, match='"hann" or "hamming"'):
        ops.stft(Tensor(SIGNAL), 8, 2, 8, window="blackman")
    with pytest.raises(ValueError, match="window must have shape"):
        ops.stft(Tensor(SIGNAL), 8, 2, 8, window=np.ones(5))


def test_extract_sequences():
    frames = ops.extract_sequences(Tensor(SIGNAL), 5, 3)
    expected = np.stack([SIGNAL[:, i : i + 5] for i in range(0, 33, 3)], axis=1)
    np.testing.assert_array_equal(frames.data, expected)
    gradcheck(lambda x: ops.extract_sequences(x, 4, 2), SIGNAL[:, :9], mode="elementwise")
    with pytest.raises(ValueError, match="longer than the signal"):
        ops.extract_sequences(Tensor(SIGNAL), 40, 1)


@pytest.mark.parametrize("name", ["hamming", "hanning", "blackman", "bartlett"])
def test_windows(name):
    for n in (1, 5, 8):
        out = getattr(ops, name)(n)
        assert out.dtype == "float32"
        np.testing.assert_allclose(out.data, getattr(np, name)(n), atol=1e-7)
    np.testing.assert_allclose(ops.kaiser(9, 3.0).data, np.kaiser(9, 3.0), rtol=1e-6)
