"""The fused dense primitive: ``y = f(x W + b)`` for f in {identity, relu}.

The design document's neuron (4.1), ``y = f(sum_i w_i x_i + b)``, for a whole batch at
once. Fusing the matrix multiply, the bias and the ReLU into one node saves two graph nodes
and two temporaries per layer and step. With ``z = x W + b`` over the last axis of ``x``
and ``g = dL/dy``:

- ``g_z = g * 1[z > 0]`` for relu (``g`` otherwise)
- ``dL/dW = x^T g_z``, ``dL/db = sum_batch g_z``, ``dL/dx = g_z W^T``
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, register
from dendrite.ops._products import tiled_product, times_kernel_transposed
from dendrite.ops._util import bias_relu_, relu_grad, sum_rows


@register("dense")
class Dense(Function):
    def forward(
        self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, relu: bool = False
    ) -> np.ndarray:
        if x.shape[-1] != kernel.shape[0]:
            raise ValueError(
                f"dense: incompatible shapes {x.shape} and {kernel.shape}: the last axis of "
                f"the input must equal the kernel's first axis."
            )
        flat = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        out = tiled_product(flat, kernel, split_depth=True)
        bias_relu_(out, bias, relu)
        self.saved = (flat, kernel, out, relu, x.shape)
        return out.reshape(*x.shape[:-1], kernel.shape[1]) if x.ndim != 2 else out

    def backward(self, g: np.ndarray) -> tuple:
        flat, kernel, out, relu, x_shape = self.saved
        g = g.reshape(out.shape)
        if relu:
            g = relu_grad(g, out)
        needs_x, needs_kernel, needs_bias = self.needs_grad
        gx = times_kernel_transposed(g, kernel).reshape(x_shape) if needs_x else None
        gk = tiled_product(flat.T, g, owned_rows=True) if needs_kernel else None
        gb = sum_rows(g) if needs_bias else None
        return gx, gk, gb


def dense(x: Any, kernel: Any, bias: Any, relu: bool = False) -> Tensor:
    """``x @ kernel + bias`` over the last axis of ``x``, then ReLU when ``relu``."""
    return Dense.apply(x, kernel, bias, relu=relu)
