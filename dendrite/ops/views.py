"""Complex numbers from real parts and back, and NumPy's bitwise dtype view, with Keras 3's
names:

- polar(abs_, angle) = ``abs_ cos(angle) + i abs_ sin(angle)`` (``torch.polar``);
- view_as_complex(x) = ``x[..., 0] + i x[..., 1]`` for a last axis of 2, in complex64 (as
  Keras casts it);
- view_as_real(z) = ``stack([real(z), imag(z)], axis=-1)``: shape ``z.shape + (2,)``;
- view(x, dtype): the same bytes read as ``dtype`` (NumPy's ``ndarray.view``): with an item
  size ``k`` times smaller the last axis is ``k`` times longer, ``k`` times larger shorter.

dendrite's gradients are real (see ``numpy_more``: complex arrays are plain results), so
polar, view_as_complex and the complex input of view_as_real carry no gradient. view to the
same dtype (or ``dtype=None``) is the identity, and differentiable; a view to another dtype
reinterprets bits and is a plain result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.ops._util import raw
from dendrite.ops.movement import reshape


def _plain(array: np.ndarray) -> Tensor:
    return Tensor._make(np.asarray(array))


def _float_parts(value: Any) -> np.ndarray:
    data = raw(value)
    if data.dtype.kind == "c":
        raise ValueError(f"polar: abs_ and angle must be real; got dtype {data.dtype}.")
    return data


def polar(abs_: Any, angle: Any) -> Tensor:
    """The complex numbers of modulus ``abs_`` and argument ``angle`` (radians):
    ``abs_ (cos(angle) + i sin(angle))``, broadcast; complex128 when either input is float64,
    else complex64. A plain result (no gradient)."""
    r, theta = _float_parts(abs_), _float_parts(angle)
    wide = np.float64 in (r.dtype, theta.dtype)
    real_dtype = np.float64 if wide else np.float32
    r, theta = r.astype(real_dtype, copy=False), theta.astype(real_dtype, copy=False)
    try:
        real = r * np.cos(theta)
        imag = r * np.sin(theta)
    except ValueError:
        raise ValueError(
            f"polar: abs_ of shape {r.shape} and angle of shape {theta.shape} cannot be "
            f"broadcast together."
        ) from None
    out = np.empty(real.shape, np.complex128 if wide else np.complex64)
    out.real, out.imag = real, imag
    return _plain(out)


def view_as_complex(x: Any) -> Tensor:
    """``x[..., 0] + i x[..., 1]`` for real ``x`` with a last axis of size 2, in complex64
    (Keras casts both parts to complex64 whatever their precision). A plain result."""
    data = raw(x)
    if data.ndim < 1 or data.shape[-1] != 2:
        raise ValueError(
            "view_as_complex: the last dimension of the input must be of size 2 (real and "
            f"imaginary parts). Received shape: {data.shape}"
        )
    if data.dtype.kind == "c":
        raise ValueError(f"view_as_complex: the input must be real; got dtype {data.dtype}.")
    out = np.empty(data.shape[:-1], np.complex64)
    out.real, out.imag = data[..., 0], data[..., 1]
    return _plain(out)


def view_as_real(x: Any) -> Tensor:
    """The real and imaginary parts of ``x`` stacked on a new last axis of size 2
    (float32 for complex64, float64 for complex128; a real ``x`` gets zero imaginary
    parts). A plain result for a complex ``x``."""
    data = raw(x)
    if data.dtype.kind != "c":
        from dendrite.ops.creation import zeros_like
        from dendrite.ops.joining import stack

        return stack([x, zeros_like(x)], axis=-1)
    return _plain(np.stack([data.real, data.imag], axis=-1))


def _view_dtype(dtype: Any) -> np.dtype:
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"view: unknown dtype {dtype!r}.") from None


def view(x: Any, dtype: Any = None) -> Tensor:
    """The bytes of ``x`` read as ``dtype`` (``None``: x's own dtype), NumPy's
    ``ndarray.view``: the last axis scales by the ratio of the item sizes (see the module
    docstring)."""
    data = raw(x)
    target = data.dtype if dtype is None else _view_dtype(dtype)
    if target == data.dtype:
        return reshape(x, data.shape)
    old, new = data.dtype.itemsize, target.itemsize
    if old != new:
        if data.ndim == 0:
            raise ValueError(
                "view: cannot view a scalar as a different dtype if item sizes are different "
                f"(x.dtype={data.dtype}, dtype={target})."
            )
        if (data.shape[-1] * old) % new:
            raise ValueError(
                f"view: cannot view an array of shape {data.shape} and dtype {data.dtype} as "
                f"dtype {target} because the total number of bytes of its last axis "
                f"({data.shape[-1] * old}) is not divisible by the new item size ({new})."
            )
    return _plain(np.ascontiguousarray(data).view(target))
