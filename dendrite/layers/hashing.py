"""Keras 3's hashing layers, bin for bin: Hashing (values to ``num_bins`` buckets) and
HashedCrossing (a bucket per combination of several features).

**Hashing.** Every value becomes a byte string first: strings as UTF-8, integers as their
decimal digits, floats truncated to integers first (TensorFlow's ``as_string`` of the
int64 cast). The bucket is ``h(s) mod B``, where ``h`` is FarmHash64 (``salt=None``) or
SipHash-2-4 keyed by ``salt = (k0, k1)`` (an integer ``k`` means ``(k, k)``); these are
``tf.strings.to_hash_bucket_fast`` and ``to_hash_bucket_strong``, which Keras calls on
every backend. With a ``mask_value`` (and ``num_bins > 1``), ``B = num_bins - 1``, a value
equal to the mask goes to 0 and every other bucket moves up by one. ``output_mode``
"one_hot", "multi_hot" or "count" then encodes the buckets as CategoryEncoding does.

**HashedCrossing.** For one row of features ``f_1, ..., f_k`` (strings hashed by FarmHash64,
integers taken as their own 64-bit two's complement), the bucket is
``C(...C(C(s, h_1), h_2)..., h_k) mod num_bins`` with TensorFlow's ``FingerprintCat64`` as
``C`` and its default cross key ``s = 0xDECAFCAFFE`` (``tf.sparse.cross_hashed``).

The hashes are in ``string_hashes.py``. Neither layer has weights or a gradient; each
distinct value is hashed once per call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.categorical import encode_categorical, encoded_shape
from dendrite.layers.registry import register_layer
from dendrite.layers.string_hashes import (
    CROSS_SEED,
    MASK,
    farmhash64,
    fingerprint_cat64,
    siphash64,
)

_MODES = ("int", "one_hot", "multi_hot", "count")


def _array(values: Any) -> np.ndarray:
    if isinstance(values, Tensor):
        return np.asarray(values.data)
    if isinstance(values, (str, bytes)):
        return np.asarray(values, dtype=object)
    return np.asarray(values)


def _as_bytes(value: Any) -> bytes:
    """A value as TensorFlow's ``as_string`` writes it (floats truncated to integers)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bool, np.bool_)):
        return b"true" if value else b"false"
    if isinstance(value, (float, np.floating)):
        value = int(value)
    return str(int(value)).encode("ascii")


def _hashed(values: np.ndarray, hash_fn: Any) -> np.ndarray:
    """``hash_fn(bytes)`` of every element, each distinct value hashed once (uint64)."""
    flat = values.ravel().tolist()
    seen: dict[Any, int] = {}
    out = np.empty(len(flat), dtype=np.uint64)
    for i, value in enumerate(flat):
        h = seen.get(value)
        if h is None:
            h = seen[value] = hash_fn(_as_bytes(value))
        out[i] = h
    return out.reshape(values.shape)


def _check_mode(mode: str, allowed: tuple, layer: str) -> str:
    if mode not in allowed:
        raise ValueError(
            f"Invalid value for argument `output_mode` of {layer}. Expected one of {allowed}. "
            f"Received: output_mode={mode!r}"
        )
    return mode


def _check_dtype(layer: Layer, mode: str, dtype: Any) -> None:
    if mode == "int" and np.dtype(layer.dtype).name not in ("int32", "int64"):
        raise ValueError(
            f'{type(layer).__name__}: when `output_mode="int"`, `dtype` should be an integer '
            f"type, 'int32' or 'int64'. Received: dtype={dtype}"
        )


@register_layer
class Hashing(Layer):
    """Hashes strings or integers into ``num_bins`` buckets (see the module docstring).

    Args:
        num_bins: the number of buckets, the mask's bucket 0 included.
        mask_value: a value mapped to bucket 0 (None: no mask bucket).
        salt: None (FarmHash64), an integer k or a pair (k0, k1): SipHash-2-4's key.
        output_mode: "int" (the default), "one_hot", "multi_hot" or "count".
        sparse: False only (dendrite's outputs are dense).
    """

    example = {
        "kwargs": {"num_bins": 5, "output_mode": "multi_hot"},
        "input_shape": (3, 4),
        "input_dtype": "int64",
        "input_range": (0, 50),
    }

    def __init__(
        self,
        num_bins: int,
        mask_value: Any = None,
        salt: Any = None,
        output_mode: str = "int",
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "int64" if output_mode == "int" else None
        super().__init__(**kwargs)
        if num_bins is None or isinstance(num_bins, bool) or num_bins <= 0:
            raise ValueError(
                "The `num_bins` for `Hashing` cannot be `None` or non-positive values. "
                f"Received: num_bins={num_bins}."
            )
        self.output_mode = _check_mode(output_mode, _MODES, "Hashing")
        _check_dtype(self, output_mode, kwargs.get("dtype"))
        if sparse and output_mode == "int":
            raise ValueError(
                '`sparse` may only be true if `output_mode` is "one_hot", "multi_hot", or '
                f'"count". Received: sparse={sparse} and output_mode={output_mode}'
            )
        if sparse:
            raise ValueError("Hashing: sparse=True is not supported; dendrite is dense.")
        self.num_bins = int(num_bins)
        self.mask_value = mask_value
        self.sparse = False
        self.salt = None
        if salt is not None:
            if isinstance(salt, (tuple, list)) and len(salt) == 2:
                self.salt = [int(s) for s in salt]
            elif isinstance(salt, (int, np.integer)) and not isinstance(salt, bool):
                self.salt = [int(salt), int(salt)]
            else:
                raise ValueError(
                    "The `salt` argument for `Hashing` can only be a tuple of size 2 "
                    f"integers, or a single integer. Received: salt={salt}."
                )
        self.strong_hash = self.salt is not None
        self.autocast = False  # floats are hashed as Keras does (truncated), never cast first

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, (list, tuple, str, bytes)):
            inputs = Tensor._make(_array(inputs if not isinstance(inputs, list) else inputs))
        return super().__call__(inputs, *args, **kwargs)

    def _buckets(self, values: np.ndarray) -> np.ndarray:
        bins = self.num_bins
        mask = None
        if self.mask_value is not None and bins > 1:
            bins -= 1
            mask = values == self.mask_value
        if self.strong_hash:
            key = (self.salt[0] & MASK, self.salt[1] & MASK)
            hashes = _hashed(values, lambda s: siphash64(key, s))
        else:
            hashes = _hashed(values, farmhash64)
        buckets = (hashes % np.uint64(bins)).astype(np.int64)
        if mask is not None:
            buckets = np.where(mask, 0, buckets + 1)
        return buckets

    def call(self, inputs: Any) -> Tensor:
        values = _array(inputs)
        if values.dtype.kind == "U":
            values = values.astype(object)
        buckets = self._buckets(values)
        if self.output_mode == "int":
            return Tensor._make(buckets.astype(self.dtype))
        encoded = encode_categorical(
            buckets, self.output_mode, self.num_bins, self.dtype, self.name
        )
        return Tensor._make(encoded)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if self.output_mode == "int":
            return tuple(input_shape)
        return encoded_shape(tuple(input_shape), self.output_mode, self.num_bins)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "salt": self.salt,
            "mask_value": self.mask_value,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }


@register_layer
class HashedCrossing(Layer):
    """The bucket of each row's combination of two or more features (see the module
    docstring). Inputs: a list of equal-shaped tensors of shape (), (batch,) or (batch, 1),
    each of integers or strings.

    Args:
        num_bins: the number of buckets.
        output_mode: "int" (the default) or "one_hot".
        sparse: False only (dendrite's outputs are dense).
    """

    example = {
        "kwargs": {"num_bins": 7, "output_mode": "one_hot"},
        "input_shape": [(4, 1), (4, 1)],
        "input_dtype": "int64",
        "input_range": (0, 100),
    }

    def __init__(
        self, num_bins: int, output_mode: str = "int", sparse: bool = False, **kwargs: Any
    ) -> None:
        if kwargs.get("dtype") is None and output_mode == "int":
            kwargs["dtype"] = "int64"
        super().__init__(**kwargs)
        if sparse:
            raise ValueError("`sparse=True` can only be used with the TensorFlow backend.")
        self.output_mode = _check_mode(output_mode, ("int", "one_hot"), "HashedCrossing")
        if num_bins is None or isinstance(num_bins, bool) or int(num_bins) <= 0:
            raise ValueError(
                f"HashedCrossing: `num_bins` must be a positive integer. Received: "
                f"num_bins={num_bins}."
            )
        self.num_bins = int(num_bins)
        self.sparse = False
        self.autocast = False  # a float input is an error, as in Keras, never cast

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, (list, tuple)):
            inputs = [
                x if isinstance(x, Tensor) or hasattr(x, "shape") else _array(x) for x in inputs
            ]
            inputs = [Tensor._make(x) if isinstance(x, np.ndarray) else x for x in inputs]
        return super().__call__(inputs, *args, **kwargs)

    def _check(self, arrays: list[np.ndarray]) -> None:
        name = f"Layer '{self.name}' (HashedCrossing)"
        if len(arrays) < 2:
            raise ValueError(f"{name} should be called on at least two inputs.")
        shape = arrays[0].shape
        if len(shape) > 2 or (len(shape) == 2 and shape[-1] != 1):
            raise ValueError(
                f"{name}: all inputs should have shape (), (batch_size) or (batch_size, 1). "
                f"Received shape {shape}."
            )
        if any(a.shape != shape for a in arrays[1:]):
            raise ValueError(
                f"{name}: all inputs should have equal shape. Received shapes "
                f"{[a.shape for a in arrays]}."
            )
        if any(a.dtype.kind not in "iuUSO" for a in arrays):
            raise ValueError(
                f"{name}: all inputs should have an integer or string dtype. Received dtypes "
                f"{[str(a.dtype) for a in arrays]}."
            )

    def call(self, inputs: Any) -> Tensor:
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(
                f"Layer '{self.name}' (HashedCrossing) should be called on a list or tuple "
                f"of inputs. Received a single input of shape {tuple(_array(inputs).shape)}."
            )
        arrays = [_array(x) for x in inputs]
        self._check(arrays)
        shape = arrays[0].shape
        crossed = np.full(arrays[0].size, CROSS_SEED, dtype=np.uint64)
        for a in arrays:
            if a.dtype.kind in "iu":
                features = a.ravel().astype(np.int64).view(np.uint64)
            else:
                features = _hashed(a.astype(object).ravel(), farmhash64)
            crossed = np.asarray(
                [fingerprint_cat64(int(c), int(f)) for c, f in zip(crossed, features)],
                dtype=np.uint64,
            )
        buckets = (crossed % np.uint64(self.num_bins)).astype(np.int64).reshape(shape)
        if self.output_mode == "int":
            return Tensor._make(buckets.astype(self.dtype))
        return Tensor._make(
            encode_categorical(buckets, "one_hot", self.num_bins, self.dtype, self.name)
        )

    def compute_output_shape(self, input_shape: Any) -> tuple:
        first = tuple(input_shape[0])
        if self.output_mode == "int":
            return first
        return encoded_shape(first, "one_hot", self.num_bins)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }
