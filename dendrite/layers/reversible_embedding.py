"""ReversibleEmbedding: an Embedding that can also project back to the vocabulary (Keras
3's ``keras.layers.ReversibleEmbedding``, for language models whose output layer shares
the input embedding).

Forward (``reverse=False``): ``y[..., :] = E[i[...], :]``, as ``Embedding``.
Reverse (``reverse=True``): logits over the vocabulary from hidden states ``h`` of size
``output_dim``: ``z = h E^T`` with tied weights (the default), or ``z = h R`` with a
separate trainable ``R`` of shape ``(output_dim, input_dim)`` (``tie_weights=False``);
with ``logit_soft_cap = c``, ``z <- c tanh(z / c)``, which keeps every logit in (-c, c).
Gradients reach ``E`` from both directions when the weights are tied.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.embedding import Embedding
from dendrite.layers.registry import register_layer


@register_layer
class ReversibleEmbedding(Embedding):
    """An Embedding that ``reverse=True`` turns into the projection back to ``input_dim``
    (see the module docstring).

    Args:
        input_dim, output_dim, embeddings_initializer, embeddings_regularizer,
            embeddings_constraint, mask_zero: as ``Embedding``.
        tie_weights: reverse with ``E^T`` (True, the default) or a separate weight.
        reverse_dtype: dtype of the reverse product (default: the layer's dtype).
        logit_soft_cap: if set, reverse logits are ``c tanh(z / c)``.
    """

    example = {
        "kwargs": {"input_dim": 7, "output_dim": 3},
        "input_shape": (2, 5),
        "input_dtype": "int64",
        "input_range": (0, 7),
    }

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        tie_weights: bool = True,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        reverse_dtype: Any = None,
        logit_soft_cap: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            input_dim,
            output_dim,
            embeddings_initializer=embeddings_initializer,
            embeddings_regularizer=embeddings_regularizer,
            embeddings_constraint=embeddings_constraint,
            mask_zero=mask_zero,
            **kwargs,
        )
        self.tie_weights = bool(tie_weights)
        self.reverse_dtype = reverse_dtype
        if logit_soft_cap is not None and not float(logit_soft_cap) > 0:
            raise ValueError(
                f"Layer '{self.name}' (ReversibleEmbedding): `logit_soft_cap` must be a "
                f"positive number or None; received logit_soft_cap={logit_soft_cap!r}."
            )
        self.logit_soft_cap = logit_soft_cap

    def build(self, input_shape: Any = None) -> None:
        if self.built:
            return
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(
                (self.output_dim, self.input_dim),
                initializer=self.embeddings_initializer,
                name="reverse_embeddings",
            )
        self.built = True

    def call(self, inputs: Tensor, reverse: bool = False) -> Tensor:
        if not reverse:
            return super().call(inputs)
        if inputs.shape[-1] != self.output_dim:
            raise ValueError(
                f"Layer '{self.name}' (ReversibleEmbedding) with reverse=True expects "
                f"inputs whose last axis is output_dim={self.output_dim}; received shape "
                f"{tuple(inputs.shape)}."
            )
        kernel = ops.transpose(self.embeddings) if self.tie_weights else self.reverse_embeddings
        if self.reverse_dtype is not None:
            inputs = ops.cast(inputs, self.reverse_dtype)
            kernel = ops.cast(kernel, self.reverse_dtype)
        elif inputs.dtype.kind != "f":
            inputs = ops.cast(inputs, kernel.dtype)
        logits = ops.matmul(inputs, kernel)
        if self.logit_soft_cap is not None:
            cap = self.logit_soft_cap
            logits = ops.tanh(logits / cap) * cap
        return logits

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        # The forward call's mask of padding ids; hidden states going back (floats whose
        # last axis is output_dim) carry none out, as in Keras.
        ids = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
        if ids.dtype.kind == "f":
            return None
        return super().compute_mask(inputs, mask)

    def compute_output_shape(self, input_shape: tuple, reverse: bool = False) -> tuple:
        if reverse:
            return (*tuple(input_shape)[:-1], self.input_dim)
        return super().compute_output_shape(input_shape)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "tie_weights": self.tie_weights,
            "reverse_dtype": self.reverse_dtype,
            "logit_soft_cap": self.logit_soft_cap,
        }
