"""Fourier transforms with Keras 3's names: fft, fft2, ifft2, rfft, irfft.

Keras' FFT ops take and return complex numbers as ``(real, imag)`` pairs of float tensors,
so no complex tensors are needed. One primitive, ``complex_dft``: the complex discrete
Fourier transform of ``z = real + i imag`` over some axes, forward
(``Z_k = sum_j z_j e^{-2 pi i jk/n}``) or inverse (``e^{+...} / n``), returning its real and
imaginary parts stacked on a new first axis. It is linear, ``Z = W z``, and for a real loss
of (Re Z, Im Z) with upstream G = g_re + i g_im the gradient is ``W^H G`` split into real
and imaginary parts: ``n ifft(G)`` for the forward transform, ``fft(G) / n`` for the inverse.

On it:

- rfft(x, n) = the first n//2 + 1 bins of fft(x, 0) (x cut or zero-padded to n first);
- irfft(X, n) = Re ifft of the Hermitian extension of the n//2 + 1 bins
  ``[X_0, ..., X_{n//2}, conj(X_{(n-1)//2}), ..., conj(X_1)]``, which is exactly NumPy's
  and PyTorch's irfft (they ignore the imaginary parts of X_0 and of the Nyquist bin; so
  does the real part of this inverse).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._util import raw
from dendrite.ops.indexing import getitem
from dendrite.ops.joining import concatenate, pad
from dendrite.ops.unary import negative


@register("complex_dft")
class ComplexDFT(Function):
    """(Re, Im) of the n-dimensional DFT of real + i imag over ``axes``, stacked on axis 0."""

    def forward(
        self, real: np.ndarray, imag: np.ndarray, axes: tuple = (-1,), inverse: bool = False
    ) -> np.ndarray:
        z = real + 1j * imag.astype(real.dtype, copy=False)
        out = np.fft.ifftn(z, axes=axes) if inverse else np.fft.fftn(z, axes=axes)
        self.saved = (axes, inverse, real.dtype, imag.dtype)
        return np.stack([out.real, out.imag]).astype(real.dtype, copy=False)

    def backward(self, g: np.ndarray) -> tuple:
        axes, inverse, real_dtype, imag_dtype = self.saved
        upstream = g[0] + 1j * g[1]
        n = int(np.prod([g.shape[1:][a] for a in axes]))
        if inverse:
            grad = np.fft.fftn(upstream, axes=axes) / n
        else:
            grad = np.fft.ifftn(upstream, axes=axes) * n
        return grad.real.astype(real_dtype), grad.imag.astype(imag_dtype)


def _pair(x: Any, op: str) -> tuple[Any, Any]:
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise ValueError(
            f"{op}: x must be a tuple (real, imag) of two float tensors; got {type(x).__name__}."
        )
    real, imag = x
    r, i = raw(real), raw(imag)
    if r.shape != i.shape:
        raise ValueError(
            f"{op}: the real and imaginary parts must have the same shape; got {r.shape} "
            f"and {i.shape}."
        )
    if r.dtype.kind != "f" or i.dtype.kind != "f":
        raise ValueError(f"{op}: the real and imaginary parts must be floats; got {r.dtype}.")
    return real, imag


def _dft(real: Any, imag: Any, axes: tuple, inverse: bool) -> tuple[Tensor, Tensor]:
    out = ComplexDFT.apply(real, imag, axes=axes, inverse=inverse)
    return getitem(out, 0), getitem(out, 1)


def _check_rank(x: Any, rank: int, op: str) -> None:
    if np.ndim(raw(x)) < rank:
        raise ValueError(f"{op}: the input must have at least {rank} dimension(s).")


def fft(x: Any) -> tuple[Tensor, Tensor]:
    """The discrete Fourier transform along the last axis of ``x = (real, imag)``; returns
    ``(real, imag)``."""
    real, imag = _pair(x, "fft")
    _check_rank(real, 1, "fft")
    return _dft(real, imag, (-1,), False)


def fft2(x: Any) -> tuple[Tensor, Tensor]:
    """The 2-D discrete Fourier transform over the last two axes of ``(real, imag)``."""
    real, imag = _pair(x, "fft2")
    _check_rank(real, 2, "fft2")
    return _dft(real, imag, (-2, -1), False)


def ifft2(x: Any) -> tuple[Tensor, Tensor]:
    """The inverse 2-D discrete Fourier transform over the last two axes of
    ``(real, imag)``."""
    real, imag = _pair(x, "ifft2")
    _check_rank(real, 2, "ifft2")
    return _dft(real, imag, (-2, -1), True)


def _fit_last(x: Any, n: int) -> Any:
    """x cut or zero-padded to length n on its last axis."""
    length = np.shape(raw(x))[-1]
    if length > n:
        return getitem(x, (Ellipsis, slice(0, n)))
    if length < n:
        widths = [(0, 0)] * (np.ndim(raw(x)) - 1) + [(0, n - length)]
        return pad(x, widths)
    return x


def rfft(x: Any, fft_length: int | None = None) -> tuple[Tensor, Tensor]:
    """The discrete Fourier transform of real ``x`` along its last axis, the n//2 + 1
    non-negative frequencies (``n = fft_length``, x cut or zero-padded to it; x's length
    when None); returns ``(real, imag)``."""
    data = raw(x)
    if data.ndim < 1:
        raise ValueError("rfft: the input must have at least 1 dimension.")
    if data.dtype.kind != "f":
        from dendrite.ops.nan_reductions import _float_result

        x = _float_result(x)
        data = raw(x)
    n = data.shape[-1] if fft_length is None else int(fft_length)
    x = _fit_last(x, n)
    zeros = np.zeros(raw(x).shape, raw(x).dtype)
    real, imag = _dft(x, zeros, (-1,), False)
    bins = (Ellipsis, slice(0, n // 2 + 1))
    return getitem(real, bins), getitem(imag, bins)


def irfft(x: Any, fft_length: int | None = None) -> Tensor:
    """The inverse of ``rfft``: a real signal of length n (``fft_length``, or
    ``2 (bins - 1)`` when None) from the non-negative frequencies ``(real, imag)``."""
    real, imag = _pair(x, "irfft")
    _check_rank(real, 1, "irfft")
    bins = np.shape(raw(real))[-1]
    n = 2 * (bins - 1) if fft_length is None else int(fft_length)
    if n < 1:
        raise ValueError(f"irfft: the output length must be at least 1, got {n}.")
    half = n // 2 + 1
    real, imag = _fit_last(real, half), _fit_last(imag, half)
    mirrored = (Ellipsis, slice((n - 1) // 2, 0, -1))  # X_{(n-1)//2} ... X_1
    full_real = concatenate([real, getitem(real, mirrored)], axis=-1)
    full_imag = concatenate([imag, negative(getitem(imag, mirrored))], axis=-1)
    out_real, _ = _dft(full_real, full_imag, (-1,), True)
    return out_real
