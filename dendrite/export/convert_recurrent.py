"""Converters of the recurrent layers: SimpleRNN, LSTM, GRU (and RNN over their cells),
Bidirectional and TimeDistributed; SpectralNormalization (its wrapped layer).

Without a mask, ONNX's own operators run the sequence (layout (T, N, F), so the input is
transposed): RNN h_t = f(x_t W + h_{t-1} U + b); LSTM with Keras' gates (i, f, c, o)
reordered into ONNX's (i, o, f, c): i, f, o = s(x W + h U + b), c_t = f c_{t-1} + i a(.),
h_t = o a(c_t); GRU with the same gate order (z, r, h) as ONNX, reset_after=True being
``linear_before_reset=1`` (B = [b_input, b_recurrent]) and reset_after=False
``linear_before_reset=0``: h_t = z h_{t-1} + (1 - z) a(x W_h + r (h U_h + b_r) + b_h).
go_backwards is direction="reverse", whose outputs are aligned with the input steps, so the
sequence is flipped back into Keras' processing order.

With a mask (or activations ONNX's operators lack) the cell runs in a Scan: the input
projection x W + b for every step at once, then per step (in processing order) the cell's
maths on h U, and Keras' masking rule: where m_t is 0 the states are carried over and the
output repeats the previous output (zeros before the first kept step, or always zeros with
zero_output_for_mask). Bidirectional: forward and backward layers, the backward sequence
flipped back, merged by concat / sum / ave / mul / a list. TimeDistributed: the batch and
time axes merged, the inner layer converted, then split again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.export import activations
from dendrite.export.common import array, as_float, batch_zeros, first
from dendrite.export.errors import onnx_module, refuse
from dendrite.export.graph import Value
from dendrite.export.registry import converts
from dendrite.layers import recurrent, rnn, rnn_cells, spectral_normalization, wrappers

ONNX_ACTIVATIONS = {
    "tanh": ("Tanh", None, None),
    "sigmoid": ("Sigmoid", None, None),
    "relu": ("Relu", None, None),
    "softsign": ("Softsign", None, None),
    "softplus": ("Softplus", None, None),
    "hard_sigmoid": ("HardSigmoid", 1.0 / 6.0, 0.5),
    "linear": ("Affine", 1.0, 0.0),
}

#: Why a stateful recurrent layer is refused.
STATEFUL_REASON = (
    "stateful layers keep states between calls; an ONNX graph does not. Export a stateless "
    "copy and pass the states as inputs."
)

_LSTM_ORDER = (0, 3, 1, 2)  # ONNX (i, o, f, c) from Keras (i, f, c, o)


def _kind(cell: Any) -> str:
    if type(cell) is rnn_cells.LSTMCell:
        return "LSTM"
    if type(cell) is rnn_cells.GRUCell:
        return "GRU"
    if type(cell) is rnn_cells.SimpleRNNCell:
        return "RNN"
    return ""


def _gates(matrix: np.ndarray, kind: str, units: int) -> np.ndarray:
    """Reorder the gate blocks of the last axis into ONNX's order."""
    if kind != "LSTM":
        return matrix
    blocks = [matrix[..., k * units : (k + 1) * units] for k in range(4)]
    return np.concatenate([blocks[k] for k in _LSTM_ORDER], axis=-1)


def _cell_activations(cell: Any) -> list[str] | None:
    names = [activations.activation_name(cell.activation)]
    if hasattr(cell, "recurrent_activation"):
        names = [activations.activation_name(cell.recurrent_activation)] + names
    return None if any(n is None for n in names) else names


def states_in(args: dict) -> list:
    """The ``initial_state`` Values the call was given (none: [])."""
    given = args.get("initial_state")
    if given is None:
        return []
    return list(given) if isinstance(given, (list, tuple)) else [given]


def _flip_time(b: Any, x: str, axis: int) -> str:
    big = np.iinfo(np.int64)
    return b.op("Slice", [x, b.ints([-1]), b.ints([big.min]), b.ints([axis]), b.ints([-1])])


def run_recurrent(ctx: Any, layer: Any, x: Value, mask: str | None, states: list) -> list:
    """[sequence or last output, *final states] of recurrent ``layer`` on ``x``."""
    cell = layer.cell
    kind = _kind(cell)
    if not kind:
        raise refuse(layer, f"its cell {type(cell).__name__} is not a built-in cell.")
    if layer.stateful:
        raise refuse(layer, STATEFUL_REASON)
    names = _cell_activations(cell)
    if names is None:
        raise refuse(layer, "its cell uses a custom activation.")
    native = mask is None and all(n in ONNX_ACTIVATIONS for n in names)
    xs = as_float(ctx.b, x)
    if native:
        outs = _native(ctx, layer, kind, names, xs, states)
    else:
        outs = _scan(ctx, layer, kind, xs, mask, states, x)
    return outs


def _native(ctx: Any, layer: Any, kind: str, names: list[str], x: str, states: list) -> list:
    b, cell, units = ctx.b, layer.cell, layer.cell.units
    k = {"LSTM": 4, "GRU": 3, "RNN": 1}[kind]
    kernel = _gates(array(cell.kernel), kind, units)
    recurrent_kernel = _gates(array(cell.recurrent_kernel), kind, units)
    w = b.const(kernel.T[None], f"{layer.name}/W")
    r = b.const(recurrent_kernel.T[None], f"{layer.name}/R")
    bias_in = np.zeros(k * units, np.float32)
    bias_rec = np.zeros(k * units, np.float32)
    attrs: dict = {}
    if cell.use_bias:
        bias = array(cell.bias)
        if kind == "GRU" and cell.reset_after:
            bias_in, bias_rec = bias[0], bias[1]
        else:
            bias_in = _gates(bias, kind, units)
    if kind == "GRU":
        attrs["linear_before_reset"] = 1 if cell.reset_after else 0
    bias_name = b.const(np.concatenate([bias_in, bias_rec])[None], f"{layer.name}/B")
    acts = [ONNX_ACTIVATIONS[n] for n in names]
    if kind == "LSTM":
        acts = [acts[0], acts[1], acts[1]]
    elif kind == "GRU":
        acts = [acts[0], acts[1]]
    attrs["activations"] = [a[0] for a in acts]
    alphas = [a[1] for a in acts if a[1] is not None]
    if alphas:
        if len(alphas) != len(acts):
            alpha_values = [a[1] if a[1] is not None else 0.0 for a in acts]
            beta_values = [a[2] if a[2] is not None else 0.0 for a in acts]
        else:
            alpha_values, beta_values = [a[1] for a in acts], [a[2] for a in acts]
        attrs["activation_alpha"] = alpha_values
        attrs["activation_beta"] = beta_values
    seq = b.op("Transpose", [x], perm=[1, 0, 2])
    inputs = [seq, w, r, bias_name, ""]
    for state in states:
        inputs.append(b.op("Unsqueeze", [state.name, b.ints([0])]))
    if kind == "LSTM" and len(inputs) == 6:
        inputs.append("")
    n_out = 3 if kind == "LSTM" else 2
    direction = "reverse" if layer.go_backwards else "forward"
    outs = b.op(
        kind,
        inputs,
        hint=layer.name,
        outputs=n_out,
        hidden_size=units,
        direction=direction,
        **attrs,
    )
    y = b.op("Transpose", [b.op("Squeeze", [outs[0], b.ints([1])])], perm=[1, 0, 2])
    if layer.go_backwards:
        y = _flip_time(b, y, 1)
    finals = [b.op("Squeeze", [o, b.ints([0])]) for o in outs[1:]]
    return [y if layer.return_sequences else finals[0], *finals]


def _scan(ctx: Any, layer: Any, kind: str, x: str, mask: str | None, states: list, xv: Value):
    onnx = onnx_module()
    helper = onnx.helper
    b, cell, units = ctx.b, layer.cell, layer.cell.units
    kernel = array(cell.kernel)
    bias = array(cell.bias) if cell.use_bias else None
    input_bias = bias[0] if (bias is not None and kind == "GRU" and cell.reset_after) else bias
    projected = b.op("MatMul", [x, b.const(kernel, f"{layer.name}/kernel")])
    if input_bias is not None:
        projected = b.op("Add", [projected, b.const(input_bias, f"{layer.name}/input_bias")])
    projected = b.op("Transpose", [projected], perm=[1, 0, 2])  # (T, N, k u)
    if mask is None:
        keep = b.op(
            "ConstantOfShape",
            [b.op("Slice", [b.op("Shape", [projected]), b.ints([0]), b.ints([2])])],
            value=helper.make_tensor("one", 1, [1], [1.0]),
        )
    else:
        keep = b.op("Transpose", [b.op("Cast", [mask], to=1)], perm=[1, 0])
    keep = b.op("Unsqueeze", [keep, b.ints([2])])  # (T, N, 1)
    zeros = batch_zeros(b, x, [units])
    n_states = 2 if kind == "LSTM" else 1
    init = [s.name for s in states] or [zeros] * n_states

    body = b.sub()
    h = body.name("h_prev")
    c = body.name("c_prev") if kind == "LSTM" else None
    out_prev = body.name("out_prev")
    xw = body.name("xw_t")
    m = body.name("m_t")
    z = (
        body.op(
            "Add",
            [
                xw,
                body.op("MatMul", [h, body.const(array(cell.recurrent_kernel), f"{layer.name}/U")]),
            ],
        )
        if kind != "GRU"
        else None
    )
    act = cell.activation
    if kind == "RNN":
        new = [activations.emit(body, z, act)]
    elif kind == "LSTM":
        rec = cell.recurrent_activation
        zi, zf, zc, zo = body.op("Split", [z, body.ints([units] * 4)], outputs=4, axis=-1)
        i, f, o = (activations.emit(body, v, rec) for v in (zi, zf, zo))
        c_new = body.op(
            "Add", [body.op("Mul", [f, c]), body.op("Mul", [i, activations.emit(body, zc, act)])]
        )
        h_new = body.op("Mul", [o, activations.emit(body, c_new, act)])
        new = [h_new, c_new]
    else:
        rec = cell.recurrent_activation
        u = array(cell.recurrent_kernel)
        x_z, x_r, x_h = body.op("Split", [xw, body.ints([units] * 3)], outputs=3, axis=-1)
        if cell.reset_after:
            rb = bias[1] if bias is not None else np.zeros(3 * units, np.float32)
            hu = body.op(
                "Add",
                [
                    body.op("MatMul", [h, body.const(u, f"{layer.name}/U")]),
                    body.const(rb, f"{layer.name}/rb"),
                ],
            )
            u_z, u_r, u_h = body.op("Split", [hu, body.ints([units] * 3)], outputs=3, axis=-1)
        else:
            zr = body.op("MatMul", [h, body.const(u[:, : 2 * units], f"{layer.name}/Uzr")])
            u_z, u_r = body.op("Split", [zr, body.ints([units] * 2)], outputs=2, axis=-1)
        zg = activations.emit(body, body.op("Add", [x_z, u_z]), rec)
        rg = activations.emit(body, body.op("Add", [x_r, u_r]), rec)
        if cell.reset_after:
            hh = activations.emit(body, body.op("Add", [x_h, body.op("Mul", [rg, u_h])]), act)
        else:
            rh = body.op(
                "MatMul",
                [body.op("Mul", [rg, h]), body.const(u[:, 2 * units :], f"{layer.name}/Uh")],
            )
            hh = activations.emit(body, body.op("Add", [x_h, rh]), act)
        one = body.const(np.float32(1.0))
        h_new = body.op(
            "Add", [body.op("Mul", [zg, h]), body.op("Mul", [body.op("Sub", [one, zg]), hh])]
        )
        new = [h_new]
    one = body.const(np.float32(1.0))
    drop = body.op("Sub", [one, m])
    old = [h] + ([c] if c else [])
    kept = [
        body.op("Add", [body.op("Mul", [m, n_]), body.op("Mul", [drop, o_])])
        for n_, o_ in zip(new, old)
    ]
    if layer.zero_output_for_mask:
        output = body.op("Mul", [m, new[0]])
    else:
        output = body.op("Add", [body.op("Mul", [m, new[0]]), body.op("Mul", [drop, out_prev])])
    seq_out = body.op("Identity", [output], hint="seq_out")
    f32 = onnx.TensorProto.FLOAT
    vi = helper.make_tensor_value_info
    graph_inputs = [vi(n, f32, None) for n in old + [out_prev, xw, m]]
    finals = [body.op("Identity", [k_], hint="state_out") for k_ in kept]
    out_state = body.op("Identity", [output], hint="out_state")
    graph_outputs = [vi(n, f32, None) for n in finals + [out_state, seq_out]]
    graph = body.graph(f"{layer.name}_step", graph_inputs, graph_outputs)
    direction = 1 if layer.go_backwards else 0
    results = b.op(
        "Scan",
        [*init, zeros, projected, keep],
        hint=layer.name,
        outputs=n_states + 2,
        body=graph,
        num_scan_inputs=2,
        scan_input_directions=[direction, direction],
    )
    final_states = results[:n_states]
    last, sequence = results[n_states], results[n_states + 1]
    sequence = b.op("Transpose", [sequence], perm=[1, 0, 2])
    return [sequence if layer.return_sequences else last, *final_states]


def mask_of(args: dict, x: Value) -> str | None:
    """The name of the call's (batch, steps) mask: the ``mask`` argument, else ``x``'s."""
    mask = args.get("mask")
    if isinstance(mask, (list, tuple)):
        mask = mask[0] if mask else None
    if isinstance(mask, Value):
        return mask.name
    return x.mask


@converts(recurrent.SimpleRNN, recurrent.LSTM, recurrent.GRU, rnn.RNN)
def recurrent_layer(ctx: Any, layer: Any, args: dict) -> Any:
    """See the module docstring: ONNX's RNN/LSTM/GRU, or a Scan over the cell."""
    x = first(args)
    outs = run_recurrent(ctx, layer, x, mask_of(args, x), states_in(args))
    return outs if layer.return_state else outs[0]


@converts(wrappers.Bidirectional)
def bidirectional(ctx: Any, layer: Any, args: dict) -> Any:
    """y = merge(forward(x), flip_time(backward(x)))."""
    b, x = ctx.b, first(args)
    mask = mask_of(args, x)
    states = states_in(args)
    half = len(states) // 2
    fwd = run_recurrent(ctx, layer.forward_layer, x, mask, states[:half])
    bwd = run_recurrent(ctx, layer.backward_layer, x, mask, states[half:])
    y, y_rev = fwd[0], bwd[0]
    if layer.return_sequences:
        y_rev = _flip_time(b, y_rev, 1)
    mode = layer.merge_mode
    if mode == "concat":
        output = [b.op("Concat", [y, y_rev], axis=-1)]
    elif mode == "sum":
        output = [b.op("Add", [y, y_rev])]
    elif mode == "ave":
        output = [b.op("Mul", [b.op("Add", [y, y_rev]), b.const(np.float32(0.5))])]
    elif mode == "mul":
        output = [b.op("Mul", [y, y_rev])]
    else:
        output = [y, y_rev]
    if layer.return_state:
        return [*output, *fwd[1:], *bwd[1:]]
    return output if mode is None else output[0]


@converts(wrappers.TimeDistributed)
def time_distributed(ctx: Any, layer: Any, args: dict) -> str:
    """y[n, t] = layer(x[n, t]): (N, T, ...) -> (N T, ...) -> layer -> (N, T, ...)."""
    from dendrite.export.builder import convert_inner_layer

    b, x = ctx.b, first(args)
    merged = b.op("Reshape", [x.name, b.ints([-1, *x.shape[2:]])])
    inner = Value(merged, (None, *x.shape[2:]), x.dtype)
    out = convert_inner_layer(ctx, layer.layer, inner)
    out_shape = args["__out_shape__"]
    steps = b.op("Slice", [b.op("Shape", [x.name]), b.ints([0]), b.ints([2])])
    shape = b.op("Concat", [steps, b.ints(list(out_shape[2:]))], axis=0)
    return b.op("Reshape", [out, shape])


@converts(spectral_normalization.SpectralNormalization)
def spectral_normalization_layer(ctx: Any, layer: Any, args: dict) -> str:
    """At inference the wrapped layer runs with the kernel the last training step
    normalised (``W / sigma``, stored in place as Keras does): the wrapped layer's own
    conversion."""
    from dendrite.export.builder import convert_inner_layer

    return convert_inner_layer(ctx, layer.layer, first(args))
