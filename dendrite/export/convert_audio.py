"""Converters of the audio layers: MelSpectrogram and STFTSpectrogram, each a short-time
Fourier transform written as one strided Conv whose kernels are the windowed Fourier
bases, ``K_re[f, k] = w[k] cos(2 pi k f / n)`` and ``K_im[f, k] = -w[k] sin(2 pi k f / n)``
(the sign of the imaginary part does not change a power or a magnitude).

MelSpectrogram: the signal reflected by ``n // 2`` at both ends (Pad, mode reflect), the
frames' power ``re^2 + im^2`` raised to ``mag_exp / 2``, times the mel filters (MatMul),
then in decibels ``10 log10(max(M, min_power)) - 10 log10(max(|ref|, min_power))``
clipped below at the whole output's maximum minus ``top_db``; (batch, mel bins, frames).
STFTSpectrogram: the layer's own kernels on each channel, then its mode and layout.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.export.common import array, as_float, first
from dendrite.export.errors import refuse
from dendrite.export.registry import converts
from dendrite.layers import audio, stft_spectrogram
from dendrite.ops.signal import _window_values


def _fourier_kernels(window: np.ndarray, n_fft: int) -> np.ndarray:
    """(2 F, 1, n_fft): the real then the imaginary bases, the window centred in n_fft."""
    left = (n_fft - len(window)) // 2
    padded = np.zeros(n_fft)
    padded[left : left + len(window)] = window
    angle = 2 * np.pi * np.outer(np.arange(n_fft // 2 + 1), np.arange(n_fft)) / n_fft
    bases = np.concatenate([np.cos(angle), -np.sin(angle)]) * padded
    return bases[:, None, :].astype(np.float32)


@converts(audio.MelSpectrogram)
def mel_spectrogram(ctx: Any, layer: Any, args: dict) -> str:
    """(batch, samples) -> (batch, mel bins, frames); see the module docstring."""
    b, x = ctx.b, first(args)
    if x.rank != 2:
        raise refuse(layer, "only (batch, samples) inputs export.")
    n_fft, length = layer.fft_length, layer.sequence_length
    window = _window_values(layer.window, length, np.dtype(np.float64), layer.name)
    window = np.ones(length) if window is None else np.asarray(window, np.float64)
    half = n_fft // 2
    signal = b.op("Pad", [as_float(b, x), b.ints([0, half, 0, half])], mode="reflect")
    signal = b.op("Unsqueeze", [signal, b.ints([1])])  # (N, 1, S)
    kernels = b.const(_fourier_kernels(window, n_fft), f"{layer.name}/fourier")
    spectra = b.op("Conv", [signal, kernels], strides=[layer.sequence_stride])
    real, imag = b.op("Split", [spectra, b.ints([half + 1, half + 1])], outputs=2, axis=1)
    power = b.op("Add", [b.op("Mul", [real, real]), b.op("Mul", [imag, imag])])
    if layer.mag_exp != 2:
        power = b.op("Pow", [power, b.const(np.float32(layer.mag_exp / 2))])
    frames = b.op("Transpose", [power], perm=[0, 2, 1])  # (N, frames, F)
    weights = layer._mel_weights(half + 1, np.dtype(np.float32))
    mel = b.op("MatMul", [frames, b.const(weights, f"{layer.name}/mel")])
    if layer.power_to_db:
        floor = b.const(np.float32(layer.min_power))
        scale = b.const(np.float32(10.0 / math.log(10.0)))
        db = b.op("Mul", [b.op("Log", [b.op("Max", [mel, floor])]), scale])
        reference = max(abs(float(layer.ref_power)), float(layer.min_power))
        db = b.op("Sub", [db, b.const(np.float32(10.0 * math.log10(reference)))])
        peak = b.reduce("ReduceMax", db, [0, 1, 2], 0)
        mel = b.op("Max", [db, b.op("Sub", [peak, b.const(np.float32(layer.top_db))])])
    return b.op("Transpose", [mel], perm=[0, 2, 1])


@converts(stft_spectrogram.STFTSpectrogram)
def stft_layer(ctx: Any, layer: Any, args: dict) -> str:
    """Each channel convolved on its own with the layer's kernels, then its mode and
    layout (mode "angle" has no ONNX form: ONNX has no two-argument arctangent)."""
    b, x = ctx.b, first(args)
    if layer.mode == "angle":
        raise refuse(layer, "mode='angle' does not export (ONNX has no atan2).")
    last = layer.data_format == "channels_last"
    length = x.shape[1] if last else x.shape[2]
    channels = x.shape[2] if last else x.shape[1]
    if length is None or channels is None:
        raise refuse(layer, "the signal length and channels must be known to export.")
    signal = as_float(b, x)
    if last:
        signal = b.op("Transpose", [signal], perm=[0, 2, 1])  # (N, C, T)
    signal = b.op("Reshape", [signal, b.ints([-1, 1, length])])
    attrs: dict[str, Any] = {"strides": [layer._frame_step]}
    if layer.padding == "same":
        attrs["auto_pad"] = "SAME_UPPER"
    # each (N C, F, frames); a kernel (frame_length, 1, F) is ONNX's (F, 1, frame_length)
    outs = [
        b.op(
            "Conv", [signal, b.const(array(kernel).transpose(2, 1, 0), f"{layer.name}/k")], **attrs
        )
        for kernel in (getattr(layer, "real_kernel", None), getattr(layer, "imag_kernel", None))
        if kernel is not None
    ]
    bins = layer._fft_length // 2 + 1
    if layer.mode in ("real", "imag"):
        result = outs[0]
    elif layer.mode == "stft":
        result, bins = b.op("Concat", outs, axis=1), 2 * bins
    else:
        power = b.op("Add", [b.op("Mul", [o, o]) for o in outs])
        if layer.mode == "psd":
            inner = b.op("Slice", [power, b.ints([1]), b.ints([bins - 1]), b.ints([1])])
            result = b.op("Add", [power, b.op("Pad", [inner, b.ints([0, 1, 0, 0, 1, 0])])])
        else:
            eps = b.const(np.float32(_settings.epsilon()))
            result = b.op("Sqrt", [b.op("Max", [power, eps])])
            if layer.mode == "log":
                result = b.op("Log", [b.op("Max", [result, eps])])
    frames = (length - layer.frame_length) // layer._frame_step + 1
    if layer.padding == "same":
        frames = -(-length // layer._frame_step)
    out = b.op("Reshape", [result, b.ints([-1, channels, bins, frames])])  # (N, C, F, frames)
    if layer.expand_dims:
        return b.op("Transpose", [out], perm=[0, 3, 2, 1] if last else [0, 1, 3, 2])
    out = b.op("Reshape", [out, b.ints([0, channels * bins, -1])])
    return b.op("Transpose", [out], perm=[0, 2, 1]) if last else out
