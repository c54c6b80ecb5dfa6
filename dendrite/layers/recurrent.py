"""Recurrent layers with their own cell: SimpleRNN, LSTM and GRU, with Keras 3's flat
arguments. The base ``RNN`` (any cell, masks, stateful layers) and the (de)serialisation of
cells are in ``dendrite.layers.rnn`` and importable from here too.

SimpleRNN, LSTM and GRU run their whole sequence as one fused primitive
(``dendrite.ops.recurrent``: the input projection of all steps at once, then the time loop
and its hand-written backward pass on arrays) when their activations are among the fused
ones (tanh, sigmoid, relu, hard_sigmoid, linear); otherwise, and for ``RNN(cell)`` with any
cell, the cell is called step by step on Tensors.
"""

from __future__ import annotations

from typing import Any

from dendrite.layers.registry import register_layer
from dendrite.layers.rnn import RNN

# The cell (de)serialisation lives beside RNN; it stays importable from here.
from dendrite.layers.rnn import deserialize_layer as deserialize_layer
from dendrite.layers.rnn import serialize_layer as serialize_layer
from dendrite.layers.rnn_cells import GRUCell, LSTMCell, SimpleRNNCell
from dendrite.ops.recurrent import gru_sequence, lstm_sequence, simple_rnn_sequence

_RNN_ARGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll")
_LAYER_ARGS = ("name", "trainable", "dtype", "input_shape", "batch_input_shape")
_LAYER_ARGS += ("input_dim", "batch_size", "autocast", "zero_output_for_mask")


class _CellLayer(RNN):
    """A recurrent layer that builds its own cell from Keras' flat arguments."""

    cell_class: type = SimpleRNNCell
    cell_name = "simple_rnn_cell"

    def __init__(self, units: int, **kwargs: Any) -> None:
        kwargs.pop("use_cudnn", None)
        kwargs.pop("cell", None)
        activity_regularizer = kwargs.pop("activity_regularizer", None)
        rnn_kwargs = {k: kwargs.pop(k) for k in _RNN_ARGS + _LAYER_ARGS if k in kwargs}
        cell = self.cell_class(
            units,
            name=self.cell_name,
            dtype=rnn_kwargs.get("dtype"),
            trainable=rnn_kwargs.get("trainable", True),
            **kwargs,
        )
        super().__init__(cell, **rnn_kwargs)
        from dendrite.layers import regularizers

        self.activity_regularizer = regularizers.get(activity_regularizer)

    def __getattr__(self, name: str) -> Any:
        # Keras exposes the cell's arguments on the layer (lstm.units, lstm.dropout, ...).
        cell = self.__dict__.get("cell")
        if cell is not None and not name.startswith("_") and hasattr(cell, name):
            return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_config(self) -> dict:
        from dendrite.layers import regularizers

        config = {**super().get_config(), **self.cell.get_config()}
        del config["cell"]
        config["name"] = self.name
        config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    def _inner_loop(self, sequences, states, mask, training, given):  # noqa: ANN001, ANN202
        names = self.cell.fused_activations()
        if names is None:
            return super()._inner_loop(sequences, states, mask, training, given)
        inputs, rmask = self._fused_inputs(sequences, training)
        return self._run_fused(inputs, states, mask, rmask, names, given)


@register_layer
class SimpleRNN(_CellLayer):
    """Fully-connected RNN: ``h_t = activation(x_t W + h_{t-1} U + b)``; output ``h``.

    Weights: kernel (features, units), recurrent_kernel (units, units), bias (units,).
    Arguments: those of ``SimpleRNNCell`` (units, activation='tanh', use_bias, the
    initializers, regularizers and constraints, dropout, recurrent_dropout, seed) and of
    ``RNN`` (return_sequences, return_state, go_backwards, stateful, unroll).
    """

    example = {"kwargs": {"units": 3, "return_sequences": True}, "input_shape": (2, 4, 3)}
    cell_class = SimpleRNNCell
    cell_name = "simple_rnn_cell"

    def _run_fused(self, inputs, states, mask, rmask, names, given):  # noqa: ANN001, ANN202
        hidden = simple_rnn_sequence(
            *inputs,
            states[0],
            self.cell.recurrent_kernel,
            mask=mask,
            recurrent_mask=rmask,
            activation=names[0],
            reverse=self.go_backwards,
            sequences=self.return_sequences,
        )
        sequence, last, h = self._fused_outputs(hidden, mask, given)
        return sequence, last, [h]


@register_layer
class LSTM(_CellLayer):
    """Long Short-Term Memory (Hochreiter & Schmidhuber 1997), gates i, f, c, o:

    ``c_t = s(z_f) * c_{t-1} + s(z_i) * a(z_c)``, ``h_t = s(z_o) * a(c_t)`` with
    ``[z_i, z_f, z_c, z_o] = x_t W + h_{t-1} U + b`` (``s`` = recurrent_activation,
    sigmoid; ``a`` = activation, tanh). States [h, c]; output h.

    Weights: kernel (features, 4 units), recurrent_kernel (units, 4 units), bias
    (4 units,), the forget-gate part initialised to 1 (unit_forget_bias=True). PyTorch's
    nn.LSTM has the same gate order (its ``weight_ih`` is ``kernel.T``, and its two biases
    sum to ``bias``). Arguments: those of ``LSTMCell`` and of ``RNN``.
    """

    example = {"kwargs": {"units": 3}, "input_shape": (2, 4, 3)}
    cell_class = LSTMCell
    cell_name = "lstm_cell"

    def _run_fused(self, inputs, states, mask, rmask, names, given):  # noqa: ANN001, ANN202
        packed = lstm_sequence(
            *inputs,
            states[0],
            states[1],
            self.cell.recurrent_kernel,
            mask=mask,
            recurrent_mask=rmask,
            activation=names[0],
            recurrent_activation=names[1],
            reverse=self.go_backwards,
            sequences=self.return_sequences,
        )
        sequence, last, h = self._fused_outputs(packed[0], mask, given)
        if not (self.return_state or self.stateful):
            return sequence, last, [h]
        return sequence, last, [h, packed[1, :, -1] if self.return_sequences else packed[1]]


@register_layer
class GRU(_CellLayer):
    """Gated Recurrent Unit (Cho et al. 2014), gates z, r, h:

    ``z = s(x W_z + h U_z + b_z)``, ``r = s(x W_r + h U_r + b_r)``,
    ``hh = a(x W_h + r * (h U_h + b_rec_h))`` (reset_after=True, Keras 3's default) or
    ``a(x W_h + (r * h) U_h + b_h)`` (reset_after=False); ``h_t = z * h + (1 - z) * hh``.

    Weights: kernel (features, 3 units), recurrent_kernel (units, 3 units), bias
    (2, 3 units) with reset_after=True (input bias, recurrent bias) or (3 units,).
    PyTorch's nn.GRU equals reset_after=True with its gates in the order r, z, n.
    Arguments: those of ``GRUCell`` (with reset_after) and of ``RNN``.
    """

    example = {"kwargs": {"units": 3}, "input_shape": (2, 4, 3)}
    cell_class = GRUCell
    cell_name = "gru_cell"

    def _run_fused(self, inputs, states, mask, rmask, names, given):  # noqa: ANN001, ANN202
        cell = self.cell
        hidden = gru_sequence(
            *inputs,
            states[0],
            cell.recurrent_kernel,
            cell.recurrent_bias(),
            mask=mask,
            recurrent_mask=rmask,
            activation=names[0],
            recurrent_activation=names[1],
            reset_after=cell.reset_after,
            reverse=self.go_backwards,
            sequences=self.return_sequences,
        )
        sequence, last, h = self._fused_outputs(hidden, mask, given)
        return sequence, last, [h]
