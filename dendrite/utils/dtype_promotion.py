"""Keras 3's dtype promotion (``keras.backend.result_type``) and dtype predicates.

Keras promotes dtypes on a lattice (the one JAX uses): each dtype points to the dtypes
just above it, and the result of several is their least upper bound, the lowest dtype
every one of them reaches:

    bool -> int* -> {uint8, int8, complex64};  uint8 -> {int16, uint16};
    uint16 -> {int32, uint32};  uint32 -> {int64, uint64};  uint64 -> float*;
    int8 -> int16 -> int32 -> int64 -> float*;  float* -> {bfloat16, float16};
    bfloat16, float16 -> float32 -> {float64, complex64};  float64 -> complex128;
    complex64 -> complex128

``int*`` and ``float*`` are the *weak* types of Python's ``int`` and ``float``: they take
the other operand's width (``result_type("int8", int)`` is int8). A weak result becomes
the ``floatx`` width (``float*`` -> float32 under floatx float32). Keras' JAX, PyTorch and
NumPy backends then narrow 64-bit results to 32 bits (int64 -> int32, float64 ->
float32, uint64 -> uint32, complex128 -> complex64); dendrite reports what Keras reports.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from dendrite import _settings

_WEAK_INT, _WEAK_FLOAT = "int", "float"
_ABOVE: dict[str, tuple[str, ...]] = {
    "bool": (_WEAK_INT,),
    _WEAK_INT: ("uint8", "int8", "complex64"),
    "uint8": ("int16", "uint16"),
    "uint16": ("int32", "uint32"),
    "uint32": ("int64", "uint64"),
    "uint64": (_WEAK_FLOAT,),
    "int8": ("int16",),
    "int16": ("int32",),
    "int32": ("int64",),
    "int64": (_WEAK_FLOAT,),
    _WEAK_FLOAT: ("bfloat16", "float16"),
    "bfloat16": ("float32",),
    "float16": ("float32",),
    "float32": ("float64", "complex64"),
    "float64": ("complex128",),
    "complex64": ("complex128",),
    "complex128": (),
}
_NARROWED = {"int64": "int32", "uint64": "uint32", "float64": "float32", "complex128": "complex64"}
_FLOAT8 = ("float8_e4m3fn", "float8_e5m2")


@cache
def _reaches(dtype: str) -> frozenset[str]:
    """Every dtype at or above ``dtype`` on the lattice."""
    found = {dtype}
    for above in _ABOVE[dtype]:
        found |= _reaches(above)
    return frozenset(found)


def _least_upper_bound(dtypes: set[str]) -> str:
    for dtype in dtypes:
        if dtype not in _ABOVE:
            raise ValueError(f"dtype={dtype!r} is not a valid dtype for Keras type promotion.")
    common = frozenset.intersection(*(_reaches(d) for d in dtypes))
    lowest = [c for c in common if common <= _reaches(c)]
    if len(lowest) != 1:
        raise ValueError(
            f"Input dtypes {tuple(sorted(dtypes))} have no available implicit dtype "
            "promotion path. Try explicitly casting inputs to the desired output type."
        )
    return lowest[0]


def _weak_name(dtype: str) -> str:
    return _WEAK_FLOAT if "float" in dtype else _WEAK_INT


def result_type(*dtypes: Any) -> str:
    """The dtype Keras gives an operation on ``dtypes`` (dtype names, NumPy dtypes, or
    Python's ``int``/``float``/``bool``; None is ``floatx``): see the module docstring."""
    from dendrite.utils import standardize_dtype

    if not dtypes:
        return _settings.floatx()
    if any(d in _FLOAT8 for d in dtypes):
        raise ValueError(
            "There is no implicit conversions from float8 dtypes to others. You must cast "
            f"it internally. Received: {dtypes}"
        )
    named = [(standardize_dtype(d), d is int or d is float) for d in dtypes]
    names = {name for name, _ in named}
    if len(named) == 1:
        out, weak = named[0]
    elif len(names) == 1 and not all(weak for _, weak in named):
        out, weak = named[0][0], False
    elif all(weak for _, weak in named):
        out, weak = _least_upper_bound(names), True
    else:
        out = _least_upper_bound({_weak_name(n) if w else n for n, w in named})
        weak = out in (_WEAK_INT, _WEAK_FLOAT)
    if weak and out != "bool":  # from Python's int or float only: the floatx width
        width = _settings.floatx()[-2:]
        kinds = {"i": "int", "u": "uint"}
        out = f"{kinds.get(out[0], 'float')}{width}"
    return _NARROWED.get(out, out)


def is_float_dtype(dtype: Any) -> bool:
    """Whether ``dtype`` is a float dtype (bfloat16 included)."""
    from dendrite.utils import standardize_dtype

    name = standardize_dtype(dtype)
    return name.startswith("float") or name.startswith("bfloat")


def is_int_dtype(dtype: Any) -> bool:
    """Whether ``dtype`` is a signed or unsigned integer dtype."""
    from dendrite.utils import standardize_dtype

    name = standardize_dtype(dtype)
    return name.startswith("int") or name.startswith("uint")
