"""Attention layers: MultiHeadAttention (Vaswani et al. 2017), Attention (Luong dot-product)
and AdditiveAttention (Bahdanau), with Keras 3's arguments and weight layouts.

Scaled dot-product attention of queries Q (T, d) over keys K (S, d) and values V (S, d_v):
``A = softmax(Q K^T / sqrt(d) + M)``, ``out = A V``, where the additive mask M is 0 where
attention is allowed and -1e9 where the boolean mask is False (Keras' large negative, so a
fully masked row becomes uniform instead of NaN).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers import constraints, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer
from dendrite.ops.dense import dense

_LARGE_NEGATIVE = -1e9


def _as_tensor(x: Any, dtype: str) -> Tensor:
    if isinstance(x, Tensor):
        return ops.cast(x, dtype) if x.dtype.kind == "f" and x.dtype != dtype else x
    return Tensor._make(np.asarray(x, dtype=dtype))


def _bool_mask(mask: Any) -> np.ndarray | None:
    if mask is None:
        return None
    return np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)


def _causal(t: int, s: int) -> np.ndarray:
    """(1, T, S): query i may attend to keys j <= i."""
    return np.tril(np.ones((t, s), dtype=bool))[None]


def _masked_softmax(scores: Tensor, mask: np.ndarray | None) -> Tensor:
    """softmax over the last axis after adding -1e9 where ``mask`` is False."""
    if mask is not None:
        adder = (~mask).astype(scores.dtype) * np.asarray(_LARGE_NEGATIVE, scores.dtype)
        scores = scores + adder
    return ops.softmax(scores, axis=-1)


def _dropout(x: Tensor, rate: float, rng: np.random.Generator | None, training: Any) -> Tensor:
    if not training or rate <= 0:
        return x
    rng = rng if rng is not None else _settings.rng()
    keep = rng.random(x.shape) >= rate
    return x * (keep.astype(x.dtype) * np.asarray(1.0 / (1.0 - rate), x.dtype))


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
        kernel = self.add_weight(
            kernel_shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name=f"{name}/kernel",
        )
        bias = None
        if self.use_bias:
            bias = self.add_weight(
                bias_shape,
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name=f"{name}/bias",
            )
        return kernel, bias

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
        self._check_rank("value", value_shape)
        self._check_rank("key", key_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(
                f"All dimensions of `value` and `key`, except the last one, must be equal. "
                f"Received: value_shape={value_shape} and key_shape={key_shape}"
            )
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
    def _project(self, x: Tensor, kernel: Tensor, bias: Any) -> Tensor:
        """(B, L, dim) -> (B, N, L, head): ``x W + b`` as one GEMM, then heads first."""
        batch, length, dim = x.shape
        n, head = kernel.shape[1], kernel.shape[2]
        flat = ops.reshape(kernel, (dim, n * head))
        if bias is not None:
            y = dense(x, flat, ops.reshape(bias, (n * head,)))
        else:
            y = ops.matmul(x, flat)
        return ops.transpose(ops.reshape(y, (batch, length, n, head)), (0, 2, 1, 3))

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
        if query.dtype.kind != "f":
            query = ops.cast(query, self.dtype)
        value = query if value is None else value
        key_given = key is not None and key is not value
        key = value if key is None else key
        if value_mask is None:
            value_mask = getattr(value, "_keras_mask", None)
        if key_mask is None and key_given:
            key_mask = getattr(key, "_keras_mask", None)
        value, key = _as_tensor(value, self.dtype), _as_tensor(key, self.dtype)
        if not self._weights_built:
            self.build(tuple(query.shape), tuple(value.shape), tuple(key.shape))
        self._check_call_shapes(query, value, key)
        query_mask = mask if query_mask is None else query_mask
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
        for label, x, expected in zip(("query", "value", "key"), (query, value, key), self._dims):
            self._check_rank(label, tuple(x.shape))
            if x.shape[-1] != expected:
                raise ValueError(
                    f"Layer '{self.name}' (MultiHeadAttention) was built for `{label}` with "
                    f"{expected} features (last axis), but received {label} with shape "
                    f"{tuple(x.shape)}."
                )
        if value.shape[:-1] != key.shape[:-1] or value.shape[0] != query.shape[0]:
            raise ValueError(
                f"Layer '{self.name}': `value` and `key` must agree on every axis but the last, "
                f"and share the batch size of `query`. Received query {tuple(query.shape)}, "
                f"value {tuple(value.shape)}, key {tuple(key.shape)}."
            )

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
        """Keras' merge: query (B, T, 1) & value (B, 1, S) & key & causal & attention_mask."""
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
        if (m := _bool_mask(attention_mask)) is not None:
            try:
                m = np.broadcast_to(m.reshape(m.shape[0], t, s) if m.ndim > 3 else m, (batch, t, s))
            except ValueError:
                raise ValueError(
                    f"Layer '{self.name}': attention_mask must broadcast to (batch, T, S) = "
                    f"{(batch, t, s)}, but has shape {m.shape}."
                ) from None
            merged = merge(merged, m)
        return merged

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


@register_layer
class Attention(Layer):
    """Dot-product (Luong) attention: ``softmax(s Q K^T + M) V`` for ``[query, value, key]``.

    Scores are ``Q K^T`` (times a trainable scalar ``scale`` with use_scale) or, with
    score_mode='concat', ``c * sum(tanh(scale * (q_i + k_j)))``. Masked value steps get -1e9
    before the softmax; masked query steps output zeros.

    Args:
        use_scale: learn a scalar scale (initialised to 1).
        score_mode: 'dot' or 'concat'.
        dropout: dropout rate on the attention probabilities (training only).
        seed: seed of the dropout generator.

    Call: ``inputs=[query (B, Tq, dim), value (B, Tv, dim), key (optional)]``,
    ``mask=[query_mask, value_mask]``, ``return_attention_scores``, ``use_causal_mask``.
    """

    example = {"kwargs": {"use_scale": True}, "input_shape": [(2, 3, 4), (2, 5, 4)]}

    def __init__(
        self,
        use_scale: bool = False,
        score_mode: str = "dot",
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                f"Invalid value for argument score_mode. Expected one of {{'dot', 'concat'}}. "
                f"Received: score_mode={score_mode}"
            )
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.supports_masking = True

    def _validate(self, inputs: Any) -> None:
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
            raise ValueError(
                f"{name} layer '{self.name}' must be called on a list of inputs, namely "
                f"[query, value] or [query, value, key]. Received: inputs of type "
                f"{type(inputs).__name__}"
                + (f" and length {len(inputs)}." if isinstance(inputs, (list, tuple)) else ".")
            )
        shapes = [tuple(x.shape if hasattr(x, "shape") else x) for x in inputs]
        if any(len(s) != 3 for s in shapes):
            raise ValueError(
                f"{name} layer '{self.name}' expects inputs of rank 3 (batch, steps, dim); "
                f"received shapes {shapes}."
            )

    def build(self, input_shape: Any) -> None:
        self._validate(input_shape)
        self.scale = None
        self.concat_score_weight = None
        if self.use_scale:
            self.scale = self.add_weight((), initializer="ones", name="scale")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(
                (), initializer="ones", name="concat_score_weight"
            )
        self.built = True

    def _scores(self, query: Tensor, key: Tensor) -> Tensor:
        if self.score_mode == "dot":
            scores = ops.matmul(query, ops.transpose(key, (0, 2, 1)))
            return scores * self.scale if self.scale is not None else scores
        summed = ops.expand_dims(query, -2) + ops.expand_dims(key, -3)
        if self.scale is not None:
            summed = self.scale * summed
        return self.concat_score_weight * ops.sum(ops.tanh(summed), axis=-1)

    def call(
        self,
        inputs: list,
        mask: Any = None,
        training: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        self._validate(inputs)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        q_mask = _bool_mask(mask[0]) if mask else None
        v_mask = _bool_mask(mask[1]) if mask and len(mask) > 1 else None
        scores = self._scores(query, key)
        scores_mask = None if v_mask is None else v_mask[:, None, :]
        if use_causal_mask:
            causal = _causal(scores.shape[-2], scores.shape[-1])
            scores_mask = causal if scores_mask is None else scores_mask & causal
        if scores_mask is not None:
            penalty = (~scores_mask).astype(scores.dtype) * np.asarray(1e9, scores.dtype)
            scores = scores - penalty
        weights = ops.softmax(scores, axis=-1)
        result = ops.matmul(_dropout(weights, self.dropout, self._rng, training), value)
        if q_mask is not None:
            result = result * q_mask[..., None].astype(result.dtype)
        return (result, weights) if return_attention_scores else result

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if not mask or mask[0] is None:
            return None
        return _bool_mask(mask[0])

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (*tuple(input_shape[0])[:-1], tuple(input_shape[1])[-1])

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
            "dropout": self.dropout,
            "seed": self.seed,
        }


@register_layer
class AdditiveAttention(Attention):
    """Additive (Bahdanau) attention: scores ``sum_d scale_d tanh(q_i + k_j)_d``, then as
    ``Attention``. ``scale`` (dim,) is learned (glorot_uniform) when use_scale (default)."""

    example = {"kwargs": {}, "input_shape": [(2, 3, 4), (2, 5, 4)]}

    def __init__(self, use_scale: bool = True, dropout: float = 0.0, **kwargs: Any) -> None:
        kwargs.pop("score_mode", None)
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape: Any) -> None:
        self._validate(input_shape)
        dim = tuple(input_shape[0])[-1]
        self.scale = None
        if self.use_scale:
            self.scale = self.add_weight((dim,), initializer="glorot_uniform", name="scale")
        self.built = True

    def _scores(self, query: Tensor, key: Tensor) -> Tensor:
        summed = ops.tanh(ops.expand_dims(query, -2) + ops.expand_dims(key, -3))
        return ops.sum(summed * self.scale if self.scale is not None else summed, axis=-1)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["score_mode"]
        return config
