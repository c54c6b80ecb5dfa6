"""What the attention layers share: their projections' weights, the checks of a call's
shapes, their boolean masks (the caller's masks as arrays, the causal mask, Keras' merge of
them) and dropout on the attention probabilities.

The causal mask lets query step i attend to key steps j <= i: ``tril(ones(T, S))``. Dropout
at rate p keeps each probability with chance 1 - p and scales it by ``1 / (1 - p)``
(training only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers.calling import mask_array
from dendrite.ops.dense import dense


def _bool_mask(mask: Any) -> np.ndarray | None:
    return None if mask is None else mask_array(mask)


def _causal(t: int, s: int) -> np.ndarray:
    """(1, T, S): query i may attend to keys j <= i."""
    return np.tril(np.ones((t, s), dtype=bool))[None]


def _dropout(x: Tensor, rate: float, rng: np.random.Generator | None, training: Any) -> Tensor:
    if not training or rate <= 0:
        return x
    rng = rng if rng is not None else _settings.rng()
    keep = rng.random(x.shape) >= rate
    return x * (keep.astype(x.dtype) * np.asarray(1.0 / (1.0 - rate), x.dtype))


def add_projection(layer: Any, name: str, kernel_shape: tuple, bias_shape: tuple) -> tuple:
    """A projection's kernel and (with ``layer.use_bias``) bias, named ``<name>/kernel`` and
    ``<name>/bias`` (Keras' sublayer names), with the layer's initializers, regularizers
    and constraints."""
    kernel = layer.add_weight(
        kernel_shape,
        initializer=layer.kernel_initializer,
        regularizer=layer.kernel_regularizer,
        constraint=layer.kernel_constraint,
        name=f"{name}/kernel",
    )
    bias = None
    if layer.use_bias:
        bias = layer.add_weight(
            bias_shape,
            initializer=layer.bias_initializer,
            regularizer=layer.bias_regularizer,
            constraint=layer.bias_constraint,
            name=f"{name}/bias",
        )
    return kernel, bias


def check_call_shapes(layer: Any, query: Any, value: Any, key: Any, dims: tuple) -> None:
    """Each input has the features (last axis) the layer was built for, and value and key
    agree with each other and with the query's batch."""
    kind = type(layer).__name__
    for label, x, expected in zip(("query", "value", "key"), (query, value, key), dims):
        layer._check_rank(label, tuple(x.shape))
        if x.shape[-1] != expected:
            raise ValueError(
                f"Layer '{layer.name}' ({kind}) was built for `{label}` with {expected} "
                f"features (last axis), but received {label} with shape {tuple(x.shape)}."
            )
    if value.shape[:-1] != key.shape[:-1] or value.shape[0] != query.shape[0]:
        raise ValueError(
            f"Layer '{layer.name}': `value` and `key` must agree on every axis but the last, "
            f"and share the batch size of `query`. Received query {tuple(query.shape)}, "
            f"value {tuple(value.shape)}, key {tuple(key.shape)}."
        )


def merge_masks(
    name: str,
    shape: tuple[int, int, int],
    query_mask: Any,
    value_mask: Any,
    key_mask: Any,
    attention_mask: Any,
    causal: bool,
    window: int | None = None,
) -> np.ndarray | None:
    """Keras' merge, (B, T, S) or None when nothing masks: the query's mask (B, T, 1) & the
    value's and key's (B, 1, S) & causal (j <= i) & a sliding window (|i - j| < window) &
    ``attention_mask`` (broadcast to (B, T, S), or (B, ..., S) flattened)."""
    batch, t, s = shape
    merged = None

    def merge(current: Any, new: np.ndarray) -> np.ndarray:
        return new if current is None else current & new

    if (m := _bool_mask(query_mask)) is not None:
        merged = merge(merged, m.reshape(batch, t, 1))
    for extra in (value_mask, key_mask):
        if (m := _bool_mask(extra)) is not None:
            merged = merge(merged, m.reshape(batch, 1, s))
    if causal:
        merged = merge(merged, _causal(t, s))
    if window is not None:
        distance = np.abs(np.arange(t)[:, None] - np.arange(s)[None, :])
        merged = merge(merged, (distance < window)[None])
    if (m := _bool_mask(attention_mask)) is not None:
        try:
            m = np.broadcast_to(m.reshape(m.shape[0], t, s) if m.ndim > 3 else m, (batch, t, s))
        except ValueError:
            raise ValueError(
                f"Layer '{name}': attention_mask must broadcast to (batch, T, S) = "
                f"{(batch, t, s)}, but has shape {m.shape}."
            ) from None
        merged = merge(merged, m)
    return merged if merged is None else np.broadcast_to(merged, (batch, t, s))


def as_tensor(x: Any, dtype: str) -> Tensor:
    """``x`` as a Tensor, floating values in ``dtype``."""
    if isinstance(x, Tensor):
        return ops.cast(x, dtype) if x.dtype.kind == "f" and x.dtype != dtype else x
    return Tensor._make(np.asarray(x, dtype=dtype))


def call_inputs(
    dtype: str, query: Any, value: Any, key: Any, masks: tuple[Any, Any, Any], mask: Any
) -> tuple[Tensor, Tensor, Tensor, tuple[Any, Any, Any]]:
    """Keras' defaults of an attention call: value = query, key = value; the value's and
    (when given apart) the key's Keras masks, and ``mask`` as the query's; floating
    tensors in ``dtype``. ``masks`` and the result's are (query, value, key) masks."""
    query_mask, value_mask, key_mask = masks
    if query.dtype.kind != "f":
        query = ops.cast(query, dtype)
    value = query if value is None else value
    key_given = key is not None and key is not value
    key = value if key is None else key
    if value_mask is None:
        value_mask = getattr(value, "_keras_mask", None)
    if key_mask is None and key_given:
        key_mask = getattr(key, "_keras_mask", None)
    query_mask = mask if query_mask is None else query_mask
    return query, as_tensor(value, dtype), as_tensor(key, dtype), (query_mask, value_mask, key_mask)


def check_build_shapes(layer: Any, value_shape: tuple, key_shape: tuple) -> None:
    """Ranks of value and key (the layer's ``_check_rank``), and Keras' rule that they
    agree on every axis but the last."""
    layer._check_rank("value", value_shape)
    layer._check_rank("key", key_shape)
    if value_shape[1:-1] != key_shape[1:-1]:
        raise ValueError(
            f"All dimensions of `value` and `key`, except the last one, must be equal. "
            f"Received: value_shape={value_shape} and key_shape={key_shape}"
        )


def project_heads(x: Tensor, kernel: Tensor, bias: Any) -> Tensor:
    """(B, L, dim) -> (B, L, heads, H): ``x W + b`` for a kernel (dim, heads, H), as one
    product."""
    batch, length, dim = x.shape
    heads, size = kernel.shape[1], kernel.shape[2]
    flat = ops.reshape(kernel, (dim, heads * size))
    if bias is not None:
        y = dense(x, flat, ops.reshape(bias, (heads * size,)))
    else:
        y = ops.matmul(x, flat)
    return ops.reshape(y, (batch, length, heads, size))
