"""Signal processing with Keras 3's names: the windows (hamming, hanning, blackman,
bartlett, kaiser), extract_sequences, stft and istft, as Keras' PyTorch backend computes
them, composed of gathers, ``scatter`` (overlap-add, the gather's transpose) and the FFT
ops (``ops/fourier.py``), so every result is differentiable in the signal.

- extract_sequences(x, L, s): frames ``x[..., t s : t s + L]`` for t = 0 .. (n - L) // s;
- stft: PyTorch's ``torch.stft`` (``center``: x reflect-padded by fft_length // 2 on both
  sides; frames of fft_length samples every sequence_stride; the window of
  sequence_length samples zero-padded to fft_length in the middle; rfft of each frame);
  ``window`` is "hann" or "hamming" (periodic), an array of sequence_length values, or
  None (rectangular). Returns ``(real, imag)`` of shape (..., frames, fft_length//2 + 1);
- istft: its inverse by windowed overlap-add. With ``sequence_length == fft_length``,
  ``center`` and a window it is ``torch.istft`` (the sum divided by the overlap-added
  squared window); otherwise Keras' own inverse (the window divided by the periodic sum of
  its squares, then overlap-add), trimmed as Keras trims it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor
from dendrite.ops._util import raw
from dendrite.ops.arithmetic import divide, multiply
from dendrite.ops.fourier import irfft, rfft
from dendrite.ops.indexing import getitem
from dendrite.ops.joining import pad
from dendrite.ops.movement import moveaxis, reshape
from dendrite.ops.scatter import scatter


# --- windows ----------------------------------------------------------------------------------
def _length(x: Any, op: str) -> int:
    value = raw(x)
    if value.ndim != 0 or value.dtype.kind not in "iuf":
        raise ValueError(f"{op}: x must be a scalar window length, got {value!r}.")
    return int(value)


def _number(value: Any) -> float:
    """A Python float from a number or a 0-d tensor (a Python float as it is: not through
    the float32 of dendrite's conversion policy)."""
    return float(value) if isinstance(value, (int, float)) else float(raw(value))


def _window(values: np.ndarray) -> Tensor:
    return Tensor._make(np.asarray(values).astype(_settings.floatx()))


def hamming(x: Any) -> Tensor:
    """The Hamming window of ``x`` points (symmetric, as NumPy's): floatx."""
    return _window(np.hamming(_length(x, "hamming")))


def hanning(x: Any) -> Tensor:
    """The Hann window of ``x`` points (symmetric, as NumPy's): floatx."""
    return _window(np.hanning(_length(x, "hanning")))


def blackman(x: Any) -> Tensor:
    """The Blackman window of ``x`` points (symmetric, as NumPy's): floatx."""
    return _window(np.blackman(_length(x, "blackman")))


def bartlett(x: Any) -> Tensor:
    """The Bartlett (triangular) window of ``x`` points, as NumPy's: floatx."""
    return _window(np.bartlett(_length(x, "bartlett")))


def kaiser(x: Any, beta: Any) -> Tensor:
    """The Kaiser window of ``x`` points with shape parameter ``beta``: floatx."""
    return _window(np.kaiser(_length(x, "kaiser"), _number(beta)))


# --- framing and overlap-add ------------------------------------------------------------------
def _frame_index(n: int, length: int, stride: int) -> np.ndarray:
    count = 1 + (n - length) // stride
    return np.arange(count)[:, None] * stride + np.arange(length)[None, :]


def extract_sequences(x: Any, sequence_length: int, sequence_stride: int) -> Tensor:
    """Frames of ``sequence_length`` samples every ``sequence_stride`` along the last axis:
    shape (..., frames, sequence_length)."""
    shape = np.shape(raw(x))
    if len(shape) < 1:
        raise ValueError("extract_sequences: the input must have at least 1 dimension.")
    length, stride = int(sequence_length), int(sequence_stride)
    if length < 1 or stride < 1:
        raise ValueError(
            f"extract_sequences: sequence_length and sequence_stride must be positive; got "
            f"{length} and {stride}."
        )
    if shape[-1] < length:
        raise ValueError(
            f"extract_sequences: sequence_length {length} is longer than the signal "
            f"({shape[-1]} samples)."
        )
    return getitem(x, (Ellipsis, _frame_index(shape[-1], length, stride)))


def _overlap_add(frames: Any, stride: int) -> Tensor:
    """The sum of frames (..., F, L) placed every ``stride`` samples: (..., s (F-1) + L)."""
    shape = np.shape(raw(frames))
    count, length = shape[-2], shape[-1]
    total = stride * (count - 1) + length
    index = _frame_index(total, length, stride).reshape(-1, 1)
    flat = moveaxis(reshape(frames, shape[:-2] + (count * length,)), -1, 0)
    summed = scatter(index, flat, (total,) + tuple(shape[:-2]))
    return moveaxis(summed, 0, -1)


def _periodic_window(name: str, n: int, dtype: np.dtype) -> np.ndarray:
    k = np.arange(n)
    if name == "hann":
        return (0.5 - 0.5 * np.cos(2 * np.pi * k / n)).astype(dtype)
    return (0.54 - 0.46 * np.cos(2 * np.pi * k / n)).astype(dtype)


def _window_values(window: Any, length: int, dtype: np.dtype, op: str) -> Any:
    if window is None:
        return None
    if isinstance(window, str):
        if window not in ("hann", "hamming"):
            raise ValueError(
                f'{op}: a window given by name must be "hann" or "hamming"; got {window!r}.'
            )
        return _periodic_window(window, length, dtype)
    values = window if isinstance(window, Tensor) else Tensor._make(raw(window).astype(dtype))
    if np.shape(raw(values)) != (length,):
        raise ValueError(
            f"{op}: the window must have shape ({length},) (sequence_length); got "
            f"{np.shape(raw(values))}."
        )
    return values


def _reflect_index(n: int, p: int) -> np.ndarray:
    if p >= n:
        raise ValueError(
            f"stft: reflect padding of {p} samples needs a signal longer than that; got {n}."
        )
    return np.concatenate([np.arange(p, 0, -1), np.arange(n), np.arange(n - 2, n - 2 - p, -1)])


def stft(
    x: Any,
    sequence_length: int,
    sequence_stride: int,
    fft_length: int,
    window: Any = "hann",
    center: bool = True,
) -> tuple[Tensor, Tensor]:
    """The short-time Fourier transform along the last axis; see the module docstring.
    Returns ``(real, imag)`` of shape (..., frames, fft_length // 2 + 1)."""
    data = raw(x)
    if data.dtype not in (np.float32, np.float64):
        raise TypeError(f"stft: x must be float32 or float64, got {data.dtype}.")
    length, stride, n_fft = int(sequence_length), int(sequence_stride), int(fft_length)
    if n_fft < length:
        raise ValueError(f"stft: fft_length ({n_fft}) must be at least sequence_length ({length}).")
    win = _window_values(window, length, data.dtype, "stft")
    if win is None and length < n_fft:
        win = np.ones(length, data.dtype)  # PyTorch's rectangular window, zero-padded
    if center:
        x = getitem(x, (Ellipsis, _reflect_index(data.shape[-1], n_fft // 2)))
    frames = extract_sequences(x, n_fft, stride)
    if win is not None:
        left = (n_fft - length) // 2
        widths = [(left, n_fft - length - left)]
        win = pad(win, widths) if isinstance(win, Tensor) else np.pad(win, widths)
        frames = multiply(frames, win)
    return rfft(frames, n_fft)


def istft(
    x: Any,
    sequence_length: int,
    sequence_stride: int,
    fft_length: int,
    length: int | None = None,
    window: Any = "hann",
    center: bool = True,
) -> Tensor:
    """The inverse of ``stft`` from ``(real, imag)`` of shape (..., frames, bins); see the
    module docstring."""
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError("istft: x must be a tuple (real, imag) of two float tensors.")
    dtype = raw(x[0]).dtype
    seq, stride, n_fft = int(sequence_length), int(sequence_stride), int(fft_length)
    win = _window_values(window, seq, dtype, "istft")
    frames = irfft(x, n_fft)  # (..., F, n_fft)
    count = np.shape(raw(frames))[-2]
    expected = n_fft + stride * (count - 1)
    if seq == n_fft and center and win is not None:
        frames = multiply(frames, win)
        signal = _overlap_add(frames, stride)
        squares = multiply(win, win)
        envelope = _overlap_add(reshape(squares, (1, n_fft)) * np.ones((count, 1), dtype), stride)
        start = n_fft // 2
        end = start + length if length is not None else expected - n_fft // 2
        stop = min(end, expected)
        if np.any(np.abs(raw(envelope)[start:stop]) < 1e-11):
            raise ValueError("istft: the window's overlap-added squares vanish (not NOLA).")
        out = divide(
            getitem(signal, (Ellipsis, slice(start, stop))),
            getitem(envelope, slice(start, stop)),
        )
        if end > stop:
            out = pad(out, [(0, 0)] * (np.ndim(raw(out)) - 1) + [(0, end - stop)])
        return out
    if stride > n_fft:
        raise ValueError(f"istft: sequence_stride ({stride}) must not exceed fft_length ({n_fft}).")
    if win is not None:
        left = (n_fft - seq) // 2
        widths = [(left, n_fft - seq - left)]
        win = pad(win, widths) if isinstance(win, Tensor) else np.pad(win, widths)
        overlaps = -(-n_fft // stride)
        squares = np.pad(raw(win) ** 2, (0, overlaps * stride - n_fft))
        denominator = np.tile(squares.reshape(overlaps, stride).sum(0), overlaps)[:n_fft]
        frames = multiply(frames, divide(win, denominator.astype(dtype)))
    signal = _overlap_add(frames, stride)
    start = n_fft // 2 if center else 0
    if length is not None:
        end = start + length
    elif center:
        end = expected - n_fft // 2
    else:
        end = expected
    return getitem(signal, (Ellipsis, slice(start, end)))
