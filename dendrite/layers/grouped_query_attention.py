"""GroupQueryAttention (Ainslie et al. 2023): grouped-query attention, Keras 3's
``keras.layers.GroupQueryAttention`` (``GroupedQueryAttention`` in its source).

U query heads share V key/value heads (U a multiple of V; V = 1 is multi-query attention,
V = U multi-head attention). With ``q = x_q W_q + b_q`` (B, T, U, H), ``k = x_k W_k + b_k``
and ``v = x_v W_v + b_v`` (B, S, V, H), each key/value head is repeated R = U / V times
(query head u reads key/value head ``u // R``), and per query head

    A_u = softmax(q_u k_u^T / sqrt(H) + M),   o_u = A_u v_u,

with M = 0 where attention is allowed and -1e9 where the merged boolean mask is False (a
fully masked row becomes uniform). The output is ``sum_{u,h} o[b, t, u, h] W_o[u, h, m] +
b_o[m]``, after ``o <- o * sigmoid(x_q W_g + b_g)`` when ``use_gate``. The mask merges the
query's (B, T, 1), the value's and key's (B, 1, S) Keras masks, the causal mask (i >= j),
the sliding window (|i - j| < w) and ``attention_mask`` (B, T, S).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers import constraints, initializers, regularizers
from dendrite.layers.attention_common import (
    _dropout,
    add_projection,
    call_inputs,
    check_build_shapes,
    check_call_shapes,
    merge_masks,
    project_heads,
)
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer
from dendrite.ops.dense import dense

_LARGE_NEGATIVE = -1e9


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(
            f"GroupQueryAttention: `{name}` must be a positive integer, got {value!r}."
        )
    return int(value)


@register_layer
class GroupQueryAttention(Layer):
    """Grouped-query attention (see the module docstring).

    Args:
        head_dim: size H of every head.
        num_query_heads: query heads U.
        num_key_value_heads: key/value heads V (U must be a multiple of V).
        dropout: dropout rate on the attention probabilities (training only).
        use_bias: biases in the projections.
        sliding_window: None, or w: a query position attends to keys less than w away.
        flash_attention: accepted for Keras' signature (dendrite computes the same thing).
        use_gate: gate the heads' outputs by ``sigmoid(query W_g + b_g)``.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint: for the projections.
        seed: seed of the dropout generator.

    Weights, in Keras' order and layouts: query kernel (dim, U, H) and bias (U, H); key
    (dim_k, V, H), (V, H); gate (dim, U, H), (U, H) with ``use_gate``; value (dim_v, V, H),
    (V, H); output kernel (U, H, dim) and bias (dim,).

    Call arguments: ``query`` (B, T, dim), ``value`` (B, S, dim_v), ``key`` (default:
    value), ``query_mask``/``value_mask``/``key_mask`` (default: the inputs' Keras masks),
    ``attention_mask`` (B, T, S) bool (True = may attend), ``return_attention_scores``
    (also return the (B, U, T, S) probabilities), ``use_causal_mask``, ``training``.
    """

    example = {
        "kwargs": {"head_dim": 2, "num_query_heads": 4, "num_key_value_heads": 2},
        "input_shape": (2, 3, 5),
    }

    def __init__(
        self,
        head_dim: int,
        num_query_heads: int,
        num_key_value_heads: int,
        dropout: float = 0.0,
        use_bias: bool = True,
        sliding_window: int | None = None,
        flash_attention: Any = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        use_gate: bool = False,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.head_dim = _positive("head_dim", head_dim)
        self.num_query_heads = _positive("num_query_heads", num_query_heads)
        self.num_key_value_heads = _positive("num_key_value_heads", num_key_value_heads)
        if self.num_query_heads % self.num_key_value_heads:
            raise ValueError("`num_query_heads` must be divisible by `num_key_value_heads`.")
        if sliding_window is not None and (
            isinstance(sliding_window, bool)
            or not isinstance(sliding_window, (int, np.integer))
            or sliding_window <= 0
        ):
            raise ValueError(
                "`sliding_window` must be `None` or a positive integer. "
                f"Received: sliding_window={sliding_window}"
            )
        self.supports_masking = True
        self.num_repeats = self.num_query_heads // self.num_key_value_heads
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        self.use_gate = bool(use_gate)
        self.sliding_window = None if sliding_window is None else int(sliding_window)
        self.flash_attention = flash_attention
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    # --- weights ---------------------------------------------------------------------------
    def _projection(self, name: str, kernel_shape: tuple, bias_shape: tuple) -> tuple:
        return add_projection(self, name, kernel_shape, bias_shape)

    def _check_rank(self, label: str, shape: tuple) -> None:
        if len(shape) != 3:
            raise ValueError(
                f"Layer '{self.name}' (GroupQueryAttention) expected `{label}` of rank 3 "
                f"(batch, length, features), but received {label} with shape {tuple(shape)}."
            )

    def build(self, query_shape: tuple, value_shape: Any = None, key_shape: Any = None) -> None:
        """Create the weights; without ``value_shape`` they wait for the first call (a
        layer called on its query alone is built before the value and key are seen)."""
        query_shape = tuple(query_shape)
        self._check_rank("query", query_shape)
        if value_shape is None:
            self.built = True
            return
        value_shape = tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        check_build_shapes(self, value_shape, key_shape)
        u, v, h, dim = (
            self.num_query_heads,
            self.num_key_value_heads,
            self.head_dim,
            query_shape[-1],
        )
        self.query_kernel, self.query_bias = self._projection("query", (dim, u, h), (u, h))
        self.key_kernel, self.key_bias = self._projection("key", (key_shape[-1], v, h), (v, h))
        if self.use_gate:
            self.gate_kernel, self.gate_bias = self._projection("gate", (dim, u, h), (u, h))
        self.value_kernel, self.value_bias = self._projection(
            "value", (value_shape[-1], v, h), (v, h)
        )
        self.output_kernel, self.output_bias = self._projection(
            "attention_output", (u, h, dim), (dim,)
        )
        self._dims = (dim, value_shape[-1], key_shape[-1])
        self.built = True

    # --- computing -------------------------------------------------------------------------
    def call(
        self,
        query: Tensor,
        value: Any = None,
        key: Any = None,
        query_mask: Any = None,
        value_mask: Any = None,
        key_mask: Any = None,
        attention_mask: Any = None,
        return_attention_scores: bool = False,
        training: Any = None,
        use_causal_mask: bool = False,
        mask: Any = None,
    ) -> Any:
        query, value, key, masks = call_inputs(
            self.dtype, query, value, key, (query_mask, value_mask, key_mask), mask
        )
        query_mask, value_mask, key_mask = masks
        if not hasattr(self, "query_kernel"):
            self.build(tuple(query.shape), tuple(value.shape), tuple(key.shape))
        check_call_shapes(self, query, value, key, self._dims)
        batch, t, s = query.shape[0], query.shape[1], value.shape[1]
        merged = merge_masks(
            self.name,
            (batch, t, s),
            query_mask,
            value_mask,
            key_mask,
            attention_mask,
            use_causal_mask,
            self.sliding_window,
        )
        q = project_heads(query, self.query_kernel, self.query_bias)  # (B, T, U, H)
        k = project_heads(key, self.key_kernel, self.key_bias)  # (B, S, V, H)
        v = project_heads(value, self.value_kernel, self.value_bias)
        # query head u reads key/value head u // R
        k = ops.repeat(k, self.num_repeats, axis=2)
        v = ops.repeat(v, self.num_repeats, axis=2)
        q = q * np.asarray(1.0 / math.sqrt(self.head_dim), dtype=q.dtype)
        q, k, v = (ops.transpose(x, (0, 2, 1, 3)) for x in (q, k, v))  # (B, U, L, H)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))  # (B, U, T, S)
        if merged is not None:
            adder = (~merged[:, None]).astype(scores.dtype) * np.asarray(
                _LARGE_NEGATIVE, scores.dtype
            )
            scores = scores + adder
        probs = ops.softmax(scores, axis=-1)
        context = ops.matmul(_dropout(probs, self.dropout, self._rng, training), v)
        context = ops.transpose(context, (0, 2, 1, 3))  # (B, T, U, H)
        if self.use_gate:
            gate = ops.sigmoid(project_heads(query, self.gate_kernel, self.gate_bias))
            context = context * gate
        u, h = self.num_query_heads, self.head_dim
        flat = ops.reshape(context, (batch, t, u * h))
        kernel = ops.reshape(self.output_kernel, (u * h, -1))
        if self.output_bias is not None:
            output = dense(flat, kernel, self.output_bias)
        else:
            output = ops.matmul(flat, kernel)
        if return_attention_scores:
            return output, probs
        return output

    def compute_output_shape(self, query_shape: tuple, value_shape: Any = None, key_shape=None):
        return tuple(query_shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "head_dim": self.head_dim,
            "num_query_heads": self.num_query_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "use_bias": self.use_bias,
            "use_gate": self.use_gate,
            "sliding_window": self.sliding_window,
            "dropout": self.dropout,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "seed": self.seed,
        }


# Keras' class name in its source; files and keras.layers name it GroupQueryAttention
GroupedQueryAttention = GroupQueryAttention
