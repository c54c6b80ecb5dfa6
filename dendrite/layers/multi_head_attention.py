"""MultiHeadAttention (Vaswani et al. 2017), with Keras 3's arguments and weight layouts.

Scaled dot-product attention of queries Q (T, d) over keys K (S, d) and values V (S, d_v):
``A = softmax(Q K^T / sqrt(d) + M)``, ``out = A V``, where the additive mask M is 0 where
attention is allowed and -1e9 where the boolean mask is False (Keras' large negative, so a
fully masked row becomes uniform instead of NaN). Each head runs it on its own projections
of the query, key and value; the heads' results are projected back to the output.
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


def _masked_softmax(scores: Tensor, mask: np.ndarray | None) -> Tensor:
    """softmax over the last axis after adding -1e9 where ``mask`` is False."""
    if mask is not None:
        adder = (~mask).astype(scores.dtype) * np.asarray(_LARGE_NEGATIVE, scores.dtype)
        scores = scores + adder
    return ops.softmax(scores, axis=-1)


@register_layer
class MultiHeadAttention(Layer):
    """Multi-head attention: ``concat_h(softmax(Q_h K_h^T / sqrt(key_dim) + M) V_h) W_o``.

    Each head h projects ``Q_h = query W_q[:, h] + b_q[h]`` (and likewise K from ``key``, V
    from ``value``); the heads' results are projected back by ``W_o``.

    Args:
        num_heads: number of heads N.
        key_dim: size H of each query/key head.
        value_dim: size of each value head (default key_dim).
        dropout: dropout rate on the attention probabilities (training only).
        use_bias: biases in the four projections.
        output_shape: last axes of the output (default: the query's feature size).
        attention_axes: only None (attend over all axes between batch and features).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint: for the projections.
        seed: seed of the dropout generator.

    Weights (Keras' EinsumDense layouts, in this order): query, key, value kernels
    (dim, N, H) with biases (N, H); the output kernel (N, value_dim, out) with bias (out,).

    Call arguments: ``query`` (B, T, dim), ``value`` (B, S, dim_v) (default: query),
    ``key`` (default: value), ``attention_mask`` (B, T, S) bool (True = may attend),
    ``return_attention_scores`` (also return the (B, N, T, S) probabilities),
    ``use_causal_mask``, ``training``. Keras masks on query/value/key are applied too.
    """

    example = {"kwargs": {"num_heads": 2, "key_dim": 3}, "input_shape": (2, 4, 5)}

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: Any = None,
        attention_axes: Any = None,
        flash_attention: Any = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for label, value in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(
                    f"MultiHeadAttention: `{label}` must be a positive integer, got {value!r}."
                )
        if attention_axes is not None:
            raise NotImplementedError(
                "MultiHeadAttention: only attention_axes=None (attention over every axis "
                "between the batch and the features) is supported."
            )
        self.supports_masking = True
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        if isinstance(output_shape, (int, np.integer)):
            output_shape = (int(output_shape),)
        self._output_shape = tuple(output_shape) if output_shape else None
        self.attention_axes = None
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._query_shape: tuple | None = None

    # --- weights ---------------------------------------------------------------------------
    def _projection(self, name: str, kernel_shape: tuple, bias_shape: tuple) -> tuple:
        return add_projection(self, name, kernel_shape, bias_shape)

    def _check_rank(self, label: str, shape: tuple) -> None:
        if len(shape) < 3:
            raise ValueError(
                f"Layer '{self.name}' (MultiHeadAttention) expected `{label}` of rank >= 3 "
                f"(batch, ..., features), but received {label} with shape {tuple(shape)}."
            )

    def build(self, query_shape: tuple, value_shape: Any = None, key_shape: Any = None) -> None:
        """Create the weights; without ``value_shape`` they wait for the first call."""
        query_shape = tuple(query_shape)
        self._check_rank("query", query_shape)
        self._query_shape = query_shape
        if value_shape is None:
            self.built = True
            return
        value_shape = tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        check_build_shapes(self, value_shape, key_shape)
        n, h, hv = self.num_heads, self.key_dim, self.value_dim
        out = self._output_shape or (query_shape[-1],)
        self.query_kernel, self.query_bias = self._projection(
            "query", (query_shape[-1], n, h), (n, h)
        )
        self.key_kernel, self.key_bias = self._projection("key", (key_shape[-1], n, h), (n, h))
        self.value_kernel, self.value_bias = self._projection(
            "value", (value_shape[-1], n, hv), (n, hv)
        )
        self.output_kernel, self.output_bias = self._projection(
            "attention_output", (n, hv, *out), tuple(out)
        )
        self._dims = (query_shape[-1], value_shape[-1], key_shape[-1])
        self.built = True

    @property
    def _weights_built(self) -> bool:
        return hasattr(self, "query_kernel")

    # --- computing -------------------------------------------------------------------------
    @staticmethod
    def _project(x: Tensor, kernel: Tensor, bias: Any) -> Tensor:
        """(B, L, dim) -> (B, N, L, head): the heads' projections, heads first."""
        return ops.transpose(project_heads(x, kernel, bias), (0, 2, 1, 3))

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
        if not self._weights_built:
            self.build(tuple(query.shape), tuple(value.shape), tuple(key.shape))
        self._check_call_shapes(query, value, key)
        batch = query.shape[0]
        q_axes, v_axes = tuple(query.shape[1:-1]), tuple(value.shape[1:-1])
        t, s = math.prod(q_axes), math.prod(v_axes)
        # attention over all middle axes = attention over them flattened into one
        q = ops.reshape(query, (batch, t, query.shape[-1]))
        v = ops.reshape(value, (batch, s, value.shape[-1]))
        k = ops.reshape(key, (batch, s, key.shape[-1]))
        merged = self._attention_mask(
            batch, t, s, query_mask, value_mask, key_mask, attention_mask, use_causal_mask
        )
        q = self._project(q, self.query_kernel, self.query_bias)  # (B, N, T, H)
        k = self._project(k, self.key_kernel, self.key_bias)  # (B, N, S, H)
        v = self._project(v, self.value_kernel, self.value_bias)  # (B, N, S, Hv)
        q = q * np.asarray(1.0 / math.sqrt(self.key_dim), dtype=q.dtype)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))  # (B, N, T, S)
        probs = _masked_softmax(scores, None if merged is None else merged[:, None])
        context = ops.matmul(_dropout(probs, self.dropout, self._rng, training), v)
        context = ops.reshape(
            ops.transpose(context, (0, 2, 1, 3)), (batch, t, self.num_heads * self.value_dim)
        )
        out_shape = tuple(self.output_kernel.shape[2:])
        kernel = ops.reshape(self.output_kernel, (self.num_heads * self.value_dim, -1))
        if self.output_bias is not None:
            output = dense(context, kernel, ops.reshape(self.output_bias, (-1,)))
        else:
            output = ops.matmul(context, kernel)
        output = ops.reshape(output, (batch, *q_axes, *out_shape))
        if return_attention_scores:
            scores_shape = (batch, self.num_heads, *q_axes, *v_axes)
            return output, ops.reshape(probs, scores_shape)
        return output

    def _check_call_shapes(self, query: Tensor, value: Tensor, key: Tensor) -> None:
        check_call_shapes(self, query, value, key, self._dims)

    def _attention_mask(
        self,
        batch: int,
        t: int,
        s: int,
        query_mask: Any,
        value_mask: Any,
        key_mask: Any,
        attention_mask: Any,
        causal: bool,
    ) -> np.ndarray | None:
        shape = (batch, t, s)
        return merge_masks(
            self.name, shape, query_mask, value_mask, key_mask, attention_mask, causal
        )

    def compute_output_shape(self, query_shape: tuple, value_shape: Any = None, key_shape=None):
        query_shape = tuple(query_shape)
        if self._output_shape:
            return (*query_shape[:-1], *self._output_shape)
        return query_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": list(self._output_shape) if self._output_shape else None,
            "attention_axes": None,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "seed": self.seed,
        }
