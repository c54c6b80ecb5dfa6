"""Converter of the convolutional LSTMs, ConvLSTM1D/2D/3D: the sequence unrolled step by step.

ONNX's LSTM has no convolutions, so the layer's T steps become T copies of the cell, and T
must be known at export. The maths runs in ONNX's (N, C, *spatial) layout. First the input
convolution of every step at once (batch and time merged, one Conv with the layer's strides,
padding and dilation, the bias included): xw = x * W + b, (N, T, 4F, *spatial'); then, at
each step t in processing order (from the last step with go_backwards),

    z = xw_t + h * U   (stride 1, 'same');   z_i, z_f, z_c, z_o = split(z)   (Keras' order)
    i, f, o = s(z_i), s(z_f), s(z_o);   c = f c + i a(z_c);   h = o a(c)

from h = c = 0, or from the initial states (inputs of the graph, moved to channels first).
``s`` is the recurrent activation and ``a`` the activation (an activation along the last
axis, such as softmax, runs in the layer's own layout). With a (batch, steps) mask, Keras'
rule: where m_t is false the states are carried over and the output repeats the previous
output (zeros before the first kept step, or always zeros with zero_output_for_mask).
Outputs, moved back to the layer's data_format: every step's h stacked in processing order
(return_sequences) or the last, then [h_T, c_T] with return_state. Refused: stateful layers,
an unknown sequence length, custom activations, initial states that are not tensors of the
model.
"""

from __future__ import annotations

from typing import Any

from dendrite.export import activations
from dendrite.export.common import (
    array,
    as_float,
    batch_zeros,
    first,
    to_channels_first,
    to_channels_last,
)
from dendrite.export.convert_conv import (
    conv_node,
    conv_padding,
    enter_channels_first,
    kernel_to_onnx,
)
from dendrite.export.convert_core import apply_activation
from dendrite.export.convert_recurrent import STATEFUL_REASON, mask_of, states_in
from dendrite.export.errors import refuse
from dendrite.export.graph import Value
from dendrite.export.registry import converts
from dendrite.layers import conv_lstm

_BOOL = 9  # onnx.TensorProto.BOOL


def _activate(ctx: Any, layer: Any, x: str, fn: Any, rank: int) -> str:
    """``fn(x)`` for channels-first ``x``; an activation along the last axis is applied in
    the layer's layout (the channels, for channels_last)."""
    b = ctx.b
    along_last = activations.activation_name(fn) in activations.ALONG_LAST_AXIS
    if along_last and layer.data_format == "channels_last":
        moved = apply_activation(ctx, layer, to_channels_last(b, x, rank), fn)
        return to_channels_first(b, moved, rank)
    return apply_activation(ctx, layer, x, fn)


def _initial_states(ctx: Any, layer: Any, args: dict, rank: int) -> list[str] | None:
    """The given (h, c) in the channels-first layout, or None when the call gave none."""
    given = states_in(args)
    if not given:
        return None
    if len(given) != 2 or not all(isinstance(s, Value) for s in given):
        raise refuse(
            layer,
            "its initial_state must be two tensors of the model (h, c), such as Inputs; "
            "constant initial states are not exported.",
        )
    states = [as_float(ctx.b, s) for s in given]
    if layer.data_format == "channels_last":
        states = [to_channels_first(ctx.b, s, rank) for s in states]
    return states


@converts(conv_lstm.ConvLSTM1D, conv_lstm.ConvLSTM2D, conv_lstm.ConvLSTM3D)
def conv_lstm_layer(ctx: Any, layer: Any, args: dict) -> Any:
    """See the module docstring: the input Conv for all steps, then the steps unrolled."""
    b, x, cell = ctx.b, first(args), layer.cell
    if layer.stateful:
        raise refuse(layer, STATEFUL_REASON)
    steps = x.shape[1]
    if steps is None:
        raise refuse(
            layer,
            "its sequence length is not known at export, and the steps are unrolled: give "
            "the Input a fixed number of timesteps (Input(shape=(timesteps, ...))).",
        )
    r, filters = cell.rank, cell.filters
    rank = r + 2  # of one step's tensors: (N, C, *spatial)
    state = cell.state_shape((None, *x.shape[2:]))
    spatial = state[1:-1] if layer.data_format == "channels_last" else state[2:]

    step_shape = (None, *x.shape[2:])  # batch and time merged
    merged = Value(b.op("Reshape", [x.name, b.ints([-1, *x.shape[2:]])]), step_shape, x.dtype)
    bias = cell.bias if cell.use_bias else None
    kernel = kernel_to_onnx(array(cell.kernel))
    xw = conv_node(ctx, layer, enter_channels_first(ctx, layer, merged), kernel, bias, 1)
    xw = b.op("Reshape", [xw, b.ints([-1, steps, 4 * filters, *spatial])])
    u = b.const(kernel_to_onnx(array(cell.recurrent_kernel)), f"{layer.name}/recurrent_kernel")
    ones = [1] * r
    same = conv_padding(layer, cell.kernel_size, ones, "same")

    zeros: list[str] = []

    def zero() -> str:
        if not zeros:
            zeros.append(batch_zeros(b, x.name, [filters, *spatial]))
        return zeros[0]

    h, c = _initial_states(ctx, layer, args, rank) or (zero(), zero())
    mask = mask_of(args, x)
    if mask is not None:
        mask = b.op("Cast", [mask], to=_BOOL)
    act, rec = cell.activation, cell.recurrent_activation
    outputs: list[str] = []
    order = range(steps - 1, -1, -1) if layer.go_backwards else range(steps)
    for t in order:
        index = b.ints([t])
        xw_t = b.op("Squeeze", [b.op("Gather", [xw, index], axis=1), b.ints([1])])
        hu = b.op("Conv", [h, u], strides=ones, dilations=ones, **same)
        z = b.op("Add", [xw_t, hu])
        z_i, z_f, z_c, z_o = b.op("Split", [z, b.ints([filters] * 4)], outputs=4, axis=1)
        i, f, o = (_activate(ctx, layer, v, rec, rank) for v in (z_i, z_f, z_o))
        candidate = _activate(ctx, layer, z_c, act, rank)
        c_new = b.op("Add", [b.op("Mul", [f, c]), b.op("Mul", [i, candidate])])
        h_new = b.op("Mul", [o, _activate(ctx, layer, c_new, act, rank)])
        if mask is None:
            output, h, c = h_new, h_new, c_new
        else:
            keep = b.op("Gather", [mask, index], axis=1)
            keep = b.op("Reshape", [keep, b.ints([-1] + [1] * (rank - 1))])
            previous = outputs[-1] if outputs and not layer.zero_output_for_mask else zero()
            output = b.op("Where", [keep, h_new, previous])
            h = b.op("Where", [keep, h_new, h])
            c = b.op("Where", [keep, c_new, c])
        outputs.append(output)

    moved: dict[str, str] = {}

    def keras_layout(name: str) -> str:
        if layer.data_format == "channels_first":
            return name
        if name not in moved:
            moved[name] = to_channels_last(b, name, rank)
        return moved[name]

    if layer.return_sequences:
        stacked = [b.op("Unsqueeze", [o, b.ints([1])]) for o in outputs]
        y = b.op("Concat", stacked, axis=1) if len(stacked) > 1 else stacked[0]
        if layer.data_format == "channels_last":
            y = b.op("Transpose", [y], perm=[0, 1, *range(3, rank + 1), 2])
    else:
        y = keras_layout(outputs[-1])
    if layer.return_state:
        return [y, keras_layout(h), keras_layout(c)]
    return y
