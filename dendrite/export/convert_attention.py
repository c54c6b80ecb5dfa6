"""Converters of the attention layers: Attention (dot or concat scores), AdditiveAttention
MultiHeadAttention and GroupQueryAttention, masks included.

Attention: s_ij = scale q_i . k_j (dot) or w sum_d tanh(scale (q_i + k_j))_d (concat);
AdditiveAttention: s_ij = sum_d scale_d tanh(q_i + k_j)_d; then s - 1e9 where the value
mask (and the causal mask) is False, A = softmax(s), out = A V, times the query mask.
MultiHeadAttention: Q_h = q W_q[:, h] + b_q[h] (K, V likewise), A_h = softmax(Q_h K_h^T /
sqrt(key_dim) + M) with M = -1e9 where the merged mask (query (B, T, 1) & value / key
(B, 1, S) & causal & attention_mask) is False, out = concat_h(A_h V_h) W_o + b_o; with
return_attention_scores the probabilities A (B, heads, T, S) are a second output.
GroupQueryAttention is the same with each key/value head's projection repeated for the
query heads that share it, ``out_h <- out_h * sigmoid(x_q W_g + b_g)_h`` with ``use_gate``,
and M also -1e9 where |i - j| >= sliding_window.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dendrite.export.common import array, as_float
from dendrite.export.errors import refuse
from dendrite.export.graph import Value
from dendrite.export.registry import converts
from dendrite.layers import attention, grouped_query_attention, multi_head_attention


def _penalty(b: Any, keep: str) -> str:
    """-1e9 where ``keep`` (float 0/1) is 0."""
    return b.op("Mul", [b.op("Sub", [b.const(np.float32(1.0)), keep]), b.const(np.float32(-1e9))])


def _causal(b: Any, layer: Any, t: Any, s: Any) -> str:
    if t is None or s is None:
        raise refuse(layer, "use_causal_mask needs known sequence lengths to export.")
    return b.const(np.tril(np.ones((t, s), np.float32)), "causal")


def _mask_name(v: Any) -> str | None:
    return v.name if isinstance(v, Value) else None


@converts(attention.Attention, attention.AdditiveAttention)
def dot_attention(ctx: Any, layer: Any, args: dict) -> Any:
    """out = softmax(scores - 1e9 [masked]) V, times the query mask."""
    b = ctx.b
    values = args["inputs"]
    q, v = values[0], values[1]
    k = values[2] if len(values) > 2 else v
    mask = args.get("mask")
    if isinstance(mask, (list, tuple)):
        q_mask = _mask_name(mask[0]) if mask else None
        v_mask = _mask_name(mask[1]) if len(mask) > 1 else None
    else:
        q_mask, v_mask = q.mask, v.mask
    qn, kn, vn = (as_float(b, x) for x in (q, k, v))
    if isinstance(layer, attention.AdditiveAttention) or layer.score_mode == "concat":
        summed = b.op(
            "Add", [b.op("Unsqueeze", [qn, b.ints([2])]), b.op("Unsqueeze", [kn, b.ints([1])])]
        )
        if isinstance(layer, attention.AdditiveAttention):
            t = b.op("Tanh", [summed])
            if layer.scale is not None:
                t = b.op("Mul", [t, b.const(array(layer.scale), f"{layer.name}/scale")])
            scores = b.reduce("ReduceSum", t, [-1], 0)
        else:
            if layer.scale is not None:
                summed = b.op("Mul", [summed, b.const(array(layer.scale), f"{layer.name}/scale")])
            total = b.reduce("ReduceSum", b.op("Tanh", [summed]), [-1], 0)
            scores = b.op("Mul", [total, b.const(array(layer.concat_score_weight), "w")])
    else:
        scores = b.op("MatMul", [qn, b.op("Transpose", [kn], perm=[0, 2, 1])])
        if layer.scale is not None:
            scores = b.op("Mul", [scores, b.const(array(layer.scale), f"{layer.name}/scale")])
    keep = None
    if v_mask is not None:
        keep = b.op("Unsqueeze", [b.op("Cast", [v_mask], to=1), b.ints([1])])
    if args.get("use_causal_mask"):
        causal = _causal(b, layer, q.shape[1], k.shape[1])
        keep = causal if keep is None else b.op("Mul", [keep, causal])
    if keep is not None:
        scores = b.op("Add", [scores, _penalty(b, keep)])
    weights = b.op("Softmax", [scores], axis=-1)
    result = b.op("MatMul", [weights, vn])
    if q_mask is not None:
        result = b.op(
            "Mul", [result, b.op("Unsqueeze", [b.op("Cast", [q_mask], to=1), b.ints([-1])])]
        )
    if args.get("return_attention_scores"):
        return [result, weights]
    return result


def _project(b: Any, x: str, kernel: Any, bias: Any, name: str) -> str:
    """(B, L, dim) -> (B, heads, L, head)."""
    w = array(kernel)
    dim, n, head = w.shape
    y = b.op("MatMul", [x, b.const(w.reshape(dim, n * head), f"{name}/kernel")])
    if bias is not None:
        y = b.op("Add", [y, b.const(array(bias).reshape(-1), f"{name}/bias")])
    y = b.op("Reshape", [y, b.ints([0, 0, n, head])])
    return b.op("Transpose", [y], perm=[0, 2, 1, 3])


def _heads(array_or_none: Any, repeats: int = 1) -> Any:
    """A (dim, heads, head) kernel or (heads, head) bias, each head repeated ``repeats``
    times in a row (a key/value head shared by ``repeats`` query heads)."""
    if array_or_none is None:
        return None
    values = array(array_or_none)
    return np.repeat(values, repeats, axis=-2) if repeats > 1 else values


def _multi_head(ctx: Any, layer: Any, args: dict, weights: dict, window: int | None) -> Any:
    """out = concat_h(softmax(Q_h K_h^T / sqrt(d) + M) V_h [* gate_h]) W_o + b_o, for
    ``weights`` {"query", "key", "value", "gate", "output": (kernel, bias)} with as many
    key/value heads as query heads."""
    b = ctx.b
    q = args["inputs"]
    v = args.get("value") if isinstance(args.get("value"), Value) else q
    key_given = isinstance(args.get("key"), Value) and args["key"] is not v
    k = args["key"] if key_given else v
    if q.rank != 3 or v.rank != 3 or k.rank != 3:
        raise refuse(layer, "only (batch, steps, features) inputs export (attention_axes=None).")
    query_mask = _mask_name(args.get("query_mask")) or _mask_name(args.get("mask")) or q.mask
    value_mask = _mask_name(args.get("value_mask")) or v.mask
    key_mask = _mask_name(args.get("key_mask")) or (k.mask if key_given else None)
    query_kernel = weights["query"][0]
    heads, key_dim = query_kernel.shape[1], query_kernel.shape[2]
    value_dim = weights["value"][0].shape[2]
    qn = b.op(
        "Mul",
        [
            _project(b, as_float(b, q), *weights["query"], f"{layer.name}/query"),
            b.const(np.float32(1.0 / math.sqrt(key_dim))),
        ],
    )
    kn = _project(b, as_float(b, k), *weights["key"], f"{layer.name}/key")
    vn = _project(b, as_float(b, v), *weights["value"], f"{layer.name}/value")
    scores = b.op("MatMul", [qn, b.op("Transpose", [kn], perm=[0, 1, 3, 2])])
    keep = None

    def merge(current: Any, new: str) -> str:
        return new if current is None else b.op("Mul", [current, new])

    if query_mask is not None:
        keep = merge(keep, b.op("Unsqueeze", [b.op("Cast", [query_mask], to=1), b.ints([2])]))
    for extra in (value_mask, key_mask):
        if extra is not None:
            keep = merge(keep, b.op("Unsqueeze", [b.op("Cast", [extra], to=1), b.ints([1])]))
    if args.get("use_causal_mask"):
        causal = _causal(b, layer, q.shape[1], v.shape[1])
        keep = merge(keep, b.op("Unsqueeze", [causal, b.ints([0])]))  # (1, T, S)
    if window is not None:
        t, s = q.shape[1], v.shape[1]
        if t is None or s is None:
            raise refuse(layer, "sliding_window needs known sequence lengths to export.")
        distance = np.abs(np.arange(t)[:, None] - np.arange(s)[None, :])
        band = b.const((distance < window).astype(np.float32)[None], "window")
        keep = merge(keep, band)
    attention_mask = args.get("attention_mask")
    if isinstance(attention_mask, Value):
        keep = merge(keep, b.op("Cast", [attention_mask.name], to=1))
    if keep is not None:
        scores = b.op("Add", [scores, b.op("Unsqueeze", [_penalty(b, keep), b.ints([1])])])
    probs = b.op("Softmax", [scores], axis=-1)
    context = b.op("Transpose", [b.op("MatMul", [probs, vn])], perm=[0, 2, 1, 3])
    if weights.get("gate") is not None:
        gate = _project(b, as_float(b, q), *weights["gate"], f"{layer.name}/gate")
        gate = b.op("Transpose", [b.op("Sigmoid", [gate])], perm=[0, 2, 1, 3])
        context = b.op("Mul", [context, gate])
    context = b.op("Reshape", [context, b.ints([0, 0, heads * value_dim])])
    out_kernel, out_bias = weights["output"]
    out_kernel = array(out_kernel)
    out_shape = list(out_kernel.shape[2:])
    y = b.op(
        "MatMul",
        [
            context,
            b.const(out_kernel.reshape(heads * value_dim, -1), f"{layer.name}/output/kernel"),
        ],
    )
    if out_bias is not None:
        y = b.op("Add", [y, b.const(array(out_bias).reshape(-1), f"{layer.name}/output/bias")])
    if len(out_shape) != 1:
        y = b.op("Reshape", [y, b.ints([0, 0, *out_shape])])
    if args.get("return_attention_scores"):
        return [y, probs]
    return y


@converts(multi_head_attention.MultiHeadAttention)
def multi_head(ctx: Any, layer: Any, args: dict) -> Any:
    """MultiHeadAttention: every head its own query, key and value projections."""
    weights = {
        part: (array(getattr(layer, f"{part}_kernel")), getattr(layer, f"{part}_bias"))
        for part in ("query", "key", "value", "output")
    }
    return _multi_head(ctx, layer, args, weights, None)


@converts(grouped_query_attention.GroupQueryAttention)
def group_query(ctx: Any, layer: Any, args: dict) -> Any:
    """GroupQueryAttention as multi-head attention whose key and value projections repeat
    each key/value head for the query heads that share it; the gate and the sliding
    window as the layer applies them."""
    repeats = layer.num_repeats
    weights = {
        "query": (array(layer.query_kernel), layer.query_bias),
        "key": (_heads(layer.key_kernel, repeats), _heads(layer.key_bias, repeats)),
        "value": (_heads(layer.value_kernel, repeats), _heads(layer.value_bias, repeats)),
        "output": (array(layer.output_kernel), layer.output_bias),
        "gate": (array(layer.gate_kernel), layer.gate_bias) if layer.use_gate else None,
    }
    return _multi_head(ctx, layer, args, weights, layer.sliding_window)
