"""Attention layers over a list ``[query, value, key]``: Attention (Luong dot-product) and
AdditiveAttention (Bahdanau), with Keras 3's arguments and weights. MultiHeadAttention is in
``dendrite.layers.multi_head_attention`` and importable from here too.

Attention scores are ``Q K^T`` (dot, optionally times a learned scale), or a sum of tanh of
``q_i + k_j`` (concat, and AdditiveAttention); then ``A = softmax(scores - 1e9 [mask is
False])`` and ``out = A V``, with masked query steps set to zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.attention_common import _bool_mask, _causal, _dropout
from dendrite.layers.base import Layer

# MultiHeadAttention has its own module; it stays importable from here.
from dendrite.layers.multi_head_attention import MultiHeadAttention as MultiHeadAttention
from dendrite.layers.registry import register_layer


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
