"""Integer bit operations with Keras 3's names: bitwise_and / or / xor / not / invert,
bitwise_left_shift / right_shift (and the aliases left_shift, right_shift), gcd and lcm.
Plain integer (or boolean) results, no gradient. A Python int operand takes the dtype of
the tensor it meets (``bitwise_and(x_int32, 3)`` stays int32), as Keras does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.ops._util import raw


def _operand(value: Any) -> Any:
    if isinstance(value, (bool, int)) and not isinstance(value, np.generic):
        return value  # weak: NumPy keeps the other operand's dtype
    return raw(value)


def _integers(op: str, *values: Any) -> None:
    for value in values:
        if not isinstance(value, (bool, int)) and np.asarray(value).dtype.kind not in "biu":
            raise TypeError(
                f"{op}: needs integer or boolean tensors, got dtype {np.asarray(value).dtype}."
            )


def _binary(ufunc: Any, name: str) -> Any:
    def op(x: Any, y: Any) -> Tensor:
        a, b = _operand(x), _operand(y)
        _integers(name, a, b)
        if isinstance(a, (bool, int)) and isinstance(b, (bool, int)):
            a = np.asarray(a, dtype=np.int32 if not isinstance(a, bool) else bool)
        return Tensor._make(np.asarray(ufunc(a, b)))

    op.__name__ = op.__qualname__ = name
    return op


bitwise_and = _binary(np.bitwise_and, "bitwise_and")
bitwise_and.__doc__ = "Element-wise AND of the bits of two integer (or boolean) tensors."
bitwise_or = _binary(np.bitwise_or, "bitwise_or")
bitwise_or.__doc__ = "Element-wise OR of the bits of two integer (or boolean) tensors."
bitwise_xor = _binary(np.bitwise_xor, "bitwise_xor")
bitwise_xor.__doc__ = "Element-wise XOR of the bits of two integer (or boolean) tensors."
bitwise_left_shift = _binary(np.left_shift, "bitwise_left_shift")
bitwise_left_shift.__doc__ = "x shifted left by y bits, element-wise (integers)."
bitwise_right_shift = _binary(np.right_shift, "bitwise_right_shift")
bitwise_right_shift.__doc__ = "x shifted right by y bits (arithmetic for signed integers)."
gcd = _binary(np.gcd, "gcd")
gcd.__doc__ = "The greatest common divisor of |x1| and |x2|, element-wise (integers)."
lcm = _binary(np.lcm, "lcm")
lcm.__doc__ = "The least common multiple of |x1| and |x2|, element-wise (integers)."


def left_shift(x: Any, y: Any) -> Tensor:
    """x shifted left by y bits, element-wise (``bitwise_left_shift``)."""
    return bitwise_left_shift(x, y)


def right_shift(x: Any, y: Any) -> Tensor:
    """x shifted right by y bits, element-wise (``bitwise_right_shift``)."""
    return bitwise_right_shift(x, y)


def bitwise_invert(x: Any) -> Tensor:
    """Every bit flipped (``~x``; NOT for booleans)."""
    a = raw(x)
    _integers("bitwise_invert", a)
    return Tensor._make(np.asarray(np.invert(a)))


def bitwise_not(x: Any) -> Tensor:
    """Every bit flipped (``bitwise_invert``)."""
    return bitwise_invert(x)
