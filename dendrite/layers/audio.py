"""MelSpectrogram: audio to a mel-scaled (log) power spectrogram, Keras 3's layer.

For a signal x (samples,) or a batch (batch, samples), with the short-time Fourier
transform ``X[f, k]`` (frames f of ``sequence_length`` samples every ``sequence_stride``,
Hann-windowed, zero-padded to ``fft_length``, the signal reflected by ``fft_length // 2``
at both ends; ``ops.stft``):

    S[f, k]   = |X[f, k]| ** mag_exp                         (mag_exp 2: power)
    M[f, m]   = sum_k S[f, k] W[k, m]                        (W: triangular mel filters)
    D[f, m]   = 10 log10(max(M, min_power)) - 10 log10(max(|ref_power|, min_power))
    out       = max(D, max(D) - top_db), transposed to (mel bins, frames)

``max(D)`` is over the whole call (every sample of the batch), as Keras computes it. The
mel scale is HTK's, ``mel(f) = 1127 ln(1 + f / 700)``; filter m rises from band edge m to
m + 1 and falls to m + 2 over ``num_mel_bins + 2`` edges spaced evenly in mel between
``min_freq`` and ``max_freq``, each with a peak of 1, and the 0 Hz bin takes no weight.
Every step is a dendrite op, so gradients flow to the signal.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer
from dendrite.ops.signal import stft

_MEL_BREAK_HERTZ = 700.0
_MEL_HIGH_FREQUENCY_Q = 1127.0


def hertz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """HTK's mel scale: ``1127 ln(1 + f / 700)``."""
    return _MEL_HIGH_FREQUENCY_Q * np.log(1.0 + frequencies / _MEL_BREAK_HERTZ)


def linear_to_mel_weight_matrix(
    num_mel_bins: int,
    num_spectrogram_bins: int,
    sampling_rate: float,
    lower_edge_hertz: float,
    upper_edge_hertz: float,
    dtype: Any = "float32",
) -> np.ndarray:
    """(num_spectrogram_bins, num_mel_bins): the triangular filters (see the module
    docstring) over the bins of ``[0, sampling_rate / 2]``, computed in ``dtype`` as Keras
    does."""
    dtype = np.dtype(dtype)
    nyquist = dtype.type(sampling_rate) / dtype.type(2.0)
    bins = np.linspace(dtype.type(0.0), nyquist, num_spectrogram_bins, dtype=dtype)[1:]
    bins_mel = hertz_to_mel(bins)[:, None]
    edges = np.linspace(
        hertz_to_mel(dtype.type(lower_edge_hertz)),
        hertz_to_mel(dtype.type(upper_edge_hertz)),
        num_mel_bins + 2,
        dtype=dtype,
    )
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    rising = (bins_mel - lower) / (center - lower)
    falling = (upper - bins_mel) / (upper - center)
    weights = np.maximum(dtype.type(0.0), np.minimum(rising, falling))
    return np.pad(weights, [(1, 0), (0, 0)]).astype(dtype)


def _positive_int(layer: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{layer}: `{name}` must be a positive integer, got {value!r}.")
    return int(value)


@register_layer
class MelSpectrogram(Layer):
    """Audio (batch, samples) or (samples,) to (batch, num_mel_bins, frames) or
    (num_mel_bins, frames): a mel spectrogram in decibels (see the module docstring).

    Args:
        fft_length: FFT size; ``fft_length // 2 + 1`` frequency bins.
        sequence_stride: samples between frames.
        sequence_length: window length (default ``fft_length``; the window is zero-padded
            to ``fft_length``, centred).
        window: "hann", "hamming" or None.
        sampling_rate: samples per second of the signal.
        num_mel_bins: mel bands.
        min_freq, max_freq: the bands' range in hertz (``max_freq`` default: half the
            sampling rate).
        power_to_db: convert to decibels (else the mel power itself).
        top_db: the range kept below the maximum, in decibels.
        mag_exp: exponent of the magnitude (2: power, 1: amplitude).
        min_power: floor before the logarithm.
        ref_power: the power of 0 dB.
    """

    example = {
        "kwargs": {"fft_length": 16, "sequence_stride": 4, "num_mel_bins": 5, "sampling_rate": 800},
        "input_shape": (2, 40),
    }

    def __init__(
        self,
        fft_length: int = 2048,
        sequence_stride: int = 512,
        sequence_length: int | None = None,
        window: str | None = "hann",
        sampling_rate: int = 16000,
        num_mel_bins: int = 128,
        min_freq: float = 20.0,
        max_freq: float | None = None,
        power_to_db: bool = True,
        top_db: float = 80.0,
        mag_exp: float = 2.0,
        min_power: float = 1e-10,
        ref_power: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        name = "MelSpectrogram"
        self.fft_length = _positive_int(name, "fft_length", fft_length)
        self.sequence_stride = _positive_int(name, "sequence_stride", sequence_stride)
        length = self.fft_length if sequence_length is None else sequence_length
        self.sequence_length = _positive_int(name, "sequence_length", length)
        if self.sequence_length > self.fft_length:
            raise ValueError(
                f"{name}: `sequence_length` ({self.sequence_length}) must not exceed "
                f"`fft_length` ({self.fft_length})."
            )
        if window not in ("hann", "hamming", None):
            raise ValueError(f"{name}: `window` must be 'hann', 'hamming' or None, got {window!r}.")
        self.window = window
        self.sampling_rate = sampling_rate
        self.num_mel_bins = _positive_int(name, "num_mel_bins", num_mel_bins)
        self.min_freq = min_freq
        self.max_freq = max_freq or int(sampling_rate / 2)
        self.power_to_db = bool(power_to_db)
        self.top_db = top_db
        self.mag_exp = mag_exp
        self.min_power = min_power
        self.ref_power = ref_power

    def _frames(self, samples: int) -> int:
        padded = samples + 2 * (self.fft_length // 2)
        return (padded - self.fft_length) // self.sequence_stride + 1

    def call(self, inputs: Any) -> Tensor:
        x = inputs if isinstance(inputs, Tensor) else Tensor._make(np.asarray(inputs))
        if x.dtype not in (np.float32, np.float64):
            x = ops.cast(x, self.dtype if self.dtype in ("float32", "float64") else "float32")
        if len(x.shape) not in (1, 2):
            raise ValueError(
                f"Layer '{self.name}' (MelSpectrogram) expects audio of shape (samples,) or "
                f"(batch, samples), but received an input of shape {tuple(x.shape)}."
            )
        if x.shape[-1] <= self.fft_length // 2:
            raise ValueError(
                f"Layer '{self.name}' (MelSpectrogram) needs more than fft_length // 2 = "
                f"{self.fft_length // 2} samples (the signal is reflected by that much at "
                f"both ends), but received an input of shape {tuple(x.shape)}."
            )
        real, imag = stft(
            x, self.sequence_length, self.sequence_stride, self.fft_length, self.window, True
        )
        spectrum = ops.sqrt(real * real + imag * imag)
        if self.mag_exp != 1:
            spectrum = spectrum ** np.asarray(self.mag_exp, spectrum.dtype)
        out = ops.tensordot(spectrum, self._mel_weights(spectrum.shape[-1], spectrum.dtype), axes=1)
        if self.power_to_db:
            out = self._decibels(out)
        return ops.swapaxes(out, -1, -2)

    def _mel_weights(self, bins: int, dtype: np.dtype) -> np.ndarray:
        """The filters, made once per (bins, dtype) rather than at every call."""
        key = (bins, np.dtype(dtype))
        cached = getattr(self, "_mel_cache", None)
        if cached is None or cached[0] != key:
            matrix = linear_to_mel_weight_matrix(
                self.num_mel_bins, bins, self.sampling_rate, self.min_freq, self.max_freq
            ).astype(dtype)
            self._mel_cache = cached = (key, matrix)
        return cached[1]

    def _decibels(self, power: Tensor) -> Tensor:
        dtype = power.dtype
        floor = np.asarray(self.min_power, dtype)
        ten = np.asarray(10.0, dtype)
        db = ten * ops.log10(ops.maximum(power, floor))
        reference = max(abs(float(self.ref_power)), float(self.min_power))
        db = db - ten * np.log10(np.asarray(reference, dtype))
        return ops.maximum(db, ops.max(db) - np.asarray(self.top_db, dtype))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        input_shape = tuple(input_shape)
        samples = input_shape[-1]
        frames = None if samples is None else self._frames(samples)
        return (*input_shape[:-1], self.num_mel_bins, frames)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "fft_length": self.fft_length,
            "sequence_stride": self.sequence_stride,
            "sequence_length": self.sequence_length,
            "window": self.window,
            "sampling_rate": self.sampling_rate,
            "num_mel_bins": self.num_mel_bins,
            "min_freq": self.min_freq,
            "max_freq": self.max_freq,
            "power_to_db": self.power_to_db,
            "top_db": self.top_db,
            "mag_exp": self.mag_exp,
            "min_power": self.min_power,
            "ref_power": self.ref_power,
        }
