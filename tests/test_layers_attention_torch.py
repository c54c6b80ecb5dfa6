"""MultiHeadAttention against PyTorch's nn.MultiheadAttention (float32, 1e-5): outputs,
per-head attention probabilities and gradients, with masks.

Keras -> PyTorch: the (dim, N, H) projection kernels reshape to (dim, N*H) = W^T (PyTorch
stacks W_q, W_k, W_v in ``in_proj_weight``); the (N, H, dim) output kernel reshapes to
(N*H, dim) = ``out_proj.weight^T``. PyTorch's boolean masks are True where attention is
*blocked*, Keras' where it is allowed.
"""

from __future__ import annotations

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers.attention import MultiHeadAttention

torch = pytest.importorskip("torch")

B, T, S, E, N = 3, 5, 7, 8, 2


@pytest.mark.parametrize("causal", [False, True])
def test_matches_torch_multihead_attention(causal: bool) -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, T, E)).astype("float32")
    v = rng.standard_normal((B, S, E)).astype("float32")
    layer = MultiHeadAttention(N, E // N)
    layer(q, v)
    for w in layer.weights:
        w.data[...] += rng.normal(0, 0.1, w.shape).astype("float32")
    keep = rng.random((B, T, S)) > 0.3
    keep[:, :, 0] = True  # no fully masked row (PyTorch returns NaN there)

    module = torch.nn.MultiheadAttention(E, N, batch_first=True)
    w = [x.data for x in layer.weights]
    with torch.no_grad():
        module.in_proj_weight.copy_(
            torch.tensor(
                np.concatenate([w[0].reshape(E, E).T, w[2].reshape(E, E).T, w[4].reshape(E, E).T])
            )
        )
        module.in_proj_bias.copy_(
            torch.tensor(np.concatenate([w[1].ravel(), w[3].ravel(), w[5].ravel()]))
        )
        module.out_proj.weight.copy_(torch.tensor(w[6].reshape(E, E).T))
        module.out_proj.bias.copy_(torch.tensor(w[7]))

    qt, vt = Tensor(q, requires_grad=True), Tensor(v, requires_grad=True)
    out, probs = layer(
        qt, vt, attention_mask=keep, use_causal_mask=causal, return_attention_scores=True
    )
    allowed = keep & np.tril(np.ones((T, S), bool)) if causal else keep
    tq = torch.tensor(q, requires_grad=True)
    tv = torch.tensor(v, requires_grad=True)
    blocked = torch.tensor(~allowed).repeat_interleave(N, dim=0)
    t_out, t_probs = module(tq, tv, tv, attn_mask=blocked, average_attn_weights=False)
    np.testing.assert_allclose(out.data, t_out.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(probs.data, t_probs.detach().numpy(), atol=1e-5)

    upstream = rng.standard_normal(out.shape).astype("float32")
    out.backward(upstream)
    t_out.backward(torch.tensor(upstream))
    np.testing.assert_allclose(qt.grad, tq.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(vt.grad, tv.grad.numpy(), atol=1e-5)
    g_in = module.in_proj_weight.grad.numpy()
    g_bias = module.in_proj_bias.grad.numpy()
    for i in range(3):
        kernel, bias = layer.weights[2 * i], layer.weights[2 * i + 1]
        np.testing.assert_allclose(
            kernel.grad.reshape(E, E), g_in[i * E : (i + 1) * E].T, atol=1e-5
        )
        np.testing.assert_allclose(bias.grad.ravel(), g_bias[i * E : (i + 1) * E], atol=1e-5)
    np.testing.assert_allclose(
        layer.weights[6].grad.reshape(E, E), module.out_proj.weight.grad.numpy().T, atol=1e-5
    )
    np.testing.assert_allclose(layer.weights[7].grad, module.out_proj.bias.grad.numpy(), atol=1e-5)
