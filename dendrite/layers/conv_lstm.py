"""Convolutional LSTM (Shi et al. 2015): ConvLSTM1D, ConvLSTM2D, ConvLSTM3D.

An LSTM whose products are convolutions, so the states keep the inputs' spatial layout.
At step t, with ``*`` a convolution (the input one with the layer's strides, padding and
dilation; the recurrent one with stride 1 and 'same' padding) and Keras' gate order
i, f, c, o along the last axis of ``W`` (k..., C, 4F) and ``U`` (k..., F, 4F):

    [z_i, z_f, z_c, z_o] = x_t * W + h_{t-1} * U + b        (b: 4F)
    i = s(z_i),  f = s(z_f),  o = s(z_o)
    c_t = f c_{t-1} + i a(z_c),   h_t = o a(c_t)

``s`` is the recurrent activation (sigmoid), ``a`` the activation (tanh). The states h and
c are (batch, spatial'..., F) (channels last). With dropout, each gate gets its own input
mask and recurrent mask (drawn once a sequence), as in Keras.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers import activations, constraints, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import register_layer
from dendrite.layers.rnn import RNN
from dendrite.ops.conv import conv
from dendrite.ops.windows import (
    conv_output_length,
    normalize_tuple,
    standardize_data_format,
    standardize_padding,
)


class ConvLSTMCell(Layer):
    """One ConvLSTM step (see the module's maths); the layers below own one, named
    ``conv_lstm_cell``. Arguments as ``ConvLSTM2D``'s, with ``rank`` the spatial rank."""

    def __init__(
        self,
        rank: int,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(filters, (int, np.integer)) or isinstance(filters, bool) or filters <= 0:
            raise ValueError(
                f"Invalid value for argument `filters`. Expected a strictly positive value. "
                f"Received filters={filters!r}."
            )
        self.rank = int(rank)
        self.filters = int(filters)
        self.kernel_size = normalize_tuple(kernel_size, rank, "kernel_size")
        self.strides = normalize_tuple(strides, rank, "strides")
        self.padding = standardize_padding(padding)
        self.data_format = standardize_data_format(data_format)
        self.dilation_rate = normalize_tuple(dilation_rate, rank, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                f"Specifying `strides > 1` is not compatible with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._masks: dict[str, list[np.ndarray]] = {}
        self.state_size = [self.filters, self.filters]  # channels; the states are images
        self.output_size = self.filters

    # --- shapes ---------------------------------------------------------------------------
    def _spatial(self, step_shape: tuple) -> tuple:
        return step_shape[2:] if self.data_format == "channels_first" else step_shape[1:-1]

    def state_shape(self, step_shape: tuple) -> tuple:
        """The shape of h and c for a step input of ``step_shape`` (batch first)."""
        spatial = tuple(
            conv_output_length(n, k, self.padding, s, d)
            for n, k, s, d in zip(
                self._spatial(step_shape), self.kernel_size, self.strides, self.dilation_rate
            )
        )
        if self.data_format == "channels_first":
            return (step_shape[0], self.filters, *spatial)
        return (step_shape[0], *spatial, self.filters)

    def build(self, input_shape: tuple) -> None:
        input_shape = tuple(input_shape)
        spatial = self._spatial(input_shape)
        channels = input_shape[1] if self.data_format == "channels_first" else input_shape[-1]
        if None in spatial or channels is None:
            raise ValueError(
                f"ConvLSTM layers only support static input shapes for the spatial and channel "
                f"dimensions. Received invalid input shape: input_shape={input_shape}"
            )
        out = self.state_shape(input_shape)
        if any(n is not None and n <= 0 for n in out[1:]):
            raise ValueError(
                f"The ConvLSTM layer's steps of shape {input_shape} are too small for "
                f"kernel_size={self.kernel_size} (output shape {out})."
            )
        self.spatial_dims = tuple(spatial)
        self.input_dim = int(channels)
        width = 4 * self.filters
        self.kernel = self.add_weight(
            (*self.kernel_size, self.input_dim, width),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            (*self.kernel_size, self.filters, width),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
            name="recurrent_kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                (width,),
                initializer=self._bias_init(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        self.built = True

    def _bias_init(self) -> Any:
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, f = self.bias_initializer, self.filters

        def forget_bias_one(shape: tuple, dtype: Any = None) -> np.ndarray:
            return np.concatenate([base((f,), dtype), np.ones(f, dtype), base((2 * f,), dtype)])

        return forget_bias_one

    def get_initial_state(self, batch_size: int) -> list[Tensor]:
        if self.data_format == "channels_first":
            step = (batch_size, self.input_dim, *self.spatial_dims)
        else:
            step = (batch_size, *self.spatial_dims, self.input_dim)
        shape = self.state_shape(step)
        return [Tensor._make(np.zeros(shape, dtype=self.dtype)) for _ in range(2)]

    # --- dropout --------------------------------------------------------------------------
    def _four_masks(self, key: str, shape: tuple, rate: float, training: Any) -> list | None:
        if not training or not 0.0 < rate < 1.0:
            return None
        if key not in self._masks:
            rng = self._rng if self._rng is not None else _settings.rng()
            scale = np.asarray(1.0 / (1.0 - rate), dtype=self.dtype)
            self._masks[key] = [
                (rng.random(shape) >= rate).astype(self.dtype) * scale for _ in range(4)
            ]
        return self._masks[key]

    def reset_dropout_masks(self) -> None:
        """Forget the masks, so the next sequence draws new ones (called by the layer)."""
        self._masks = {}

    # --- one step -------------------------------------------------------------------------
    def _conv(self, x: Tensor, kernel: Any, recurrent: bool) -> Tensor:
        if recurrent:
            return conv(x, kernel, strides=1, padding="same", data_format=self.data_format)
        return conv(
            x,
            kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )

    def _gates(self, x: Tensor, kernel: Any, masks: list | None, recurrent: bool) -> list:
        """The four gate pre-activations' convolutions (one convolution without masks)."""
        axis = -1 if self.data_format == "channels_last" else 1
        if masks is None:
            return ops.split(self._conv(x, kernel, recurrent), 4, axis=axis)
        kernels = ops.split(kernel, 4, axis=-1)
        return [self._conv(x * m, k, recurrent) for m, k in zip(masks, kernels)]

    def call(self, inputs: Tensor, states: Any, training: Any = None) -> tuple:
        h_prev, c_prev = states[0], states[1]
        drop = self._four_masks("input", tuple(inputs.shape), self.dropout, training)
        rdrop = self._four_masks("recurrent", tuple(h_prev.shape), self.recurrent_dropout, training)
        x_parts = self._gates(inputs, self.kernel, drop, recurrent=False)
        h_parts = self._gates(h_prev, self.recurrent_kernel, rdrop, recurrent=True)
        z = [a + b for a, b in zip(x_parts, h_parts)]
        if self.bias is not None:
            shape = (-1,) + (1,) * self.rank if self.data_format == "channels_first" else (-1,)
            biases = ops.split(self.bias, 4, axis=0)
            z = [v + ops.reshape(b, shape) for v, b in zip(z, biases)]
        z_i, z_f, z_c, z_o = z
        i, f, o = (self.recurrent_activation(v) for v in (z_i, z_f, z_o))
        c = f * c_prev + i * self.activation(z_c)
        h = o * self.activation(c)
        return h, [h, c]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }


_CELL_ARGUMENTS = (
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "unit_forget_bias",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
    "seed",
)


class ConvLSTM(RNN):
    """The ConvLSTM layers' base: ``RNN`` over a ``ConvLSTMCell`` of spatial rank ``rank``.

    Inputs (batch, time, spatial..., channels) (channels_last) or (batch, time, channels,
    spatial...) (channels_first); output h_T, or every h_t with return_sequences, then
    [h_T, c_T] with return_state. Masks, initial states, go_backwards and stateful work as
    in ``RNN``. Cell arguments (filters, kernel_size, ...) are read back as attributes.
    """

    rank = 2

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        **kwargs: Any,
    ) -> None:
        arguments = dict(locals())
        cell_kwargs = {name: arguments[name] for name in _CELL_ARGUMENTS}
        cell = ConvLSTMCell(
            self.rank, name="conv_lstm_cell", dtype=kwargs.get("dtype"), **cell_kwargs
        )
        kwargs.pop("cell", None)
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            **kwargs,
        )
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.input_spec = InputSpec(ndim=self.rank + 3)

    def __getattr__(self, name: str) -> Any:
        # The cell's arguments read as the layer's (layer.filters, layer.kernel_size, ...).
        if name in _CELL_ARGUMENTS and "cell" in self.__dict__:
            return getattr(self.__dict__["cell"], name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def build(self, sequences_shape: tuple, initial_state_shape: Any = None) -> None:
        sequences_shape = tuple(sequences_shape)
        InputSpec(ndim=self.rank + 3).check(self.name, 0, sequences_shape)
        if not self.cell.built:
            try:
                self.cell.build((sequences_shape[0], *sequences_shape[2:]))
            except ValueError as error:
                raise ValueError(f"Layer '{self.name}': {error}") from error
            self.cell.built = True
            for variable in self.cell._own_weights:
                variable.path = f"{self.name}/{variable.path}"
        axes = {i: n for i, n in enumerate(sequences_shape) if i >= 2 and n is not None}
        self.input_spec = InputSpec(ndim=self.rank + 3, axes=axes)
        self.built = True

    def _step_state_shape(self, sequences_shape: tuple) -> tuple:
        return self.cell.state_shape((sequences_shape[0], *sequences_shape[2:]))

    def compute_output_shape(self, sequences_shape: tuple, initial_state_shape: Any = None):
        state = self._step_state_shape(tuple(sequences_shape))
        output = (state[0], sequences_shape[1], *state[1:]) if self.return_sequences else state
        if self.return_state:
            return [output, state, state]
        return output

    def _initial_states(self, initial_state: Any, batch: int) -> list:
        states = (
            list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        )
        converted = []
        for state in states:
            if not isinstance(state, Tensor):
                state = Tensor._make(np.asarray(getattr(state, "data", state), dtype=self.dtype))
            elif state.dtype != self.dtype:
                state = ops.cast(state, self.dtype)
            converted.append(state)
        received = [tuple(s.shape) for s in converted]
        if batch is None and received:
            batch = received[0][0]
        expected = None
        if self.built:
            channels_first = self.cell.data_format == "channels_first"
            step_shape = (
                (batch, self.cell.input_dim, *self.cell.spatial_dims)
                if channels_first
                else (batch, *self.cell.spatial_dims, self.cell.input_dim)
            )
            expected = [self.cell.state_shape(step_shape)] * 2
        if len(received) != 2 or (expected is not None and received != expected):
            raise ValueError(
                f"Layer '{self.name}' expected 2 initial states (h, c) of shape "
                f"{expected[0] if expected else '(batch, spatial..., filters)'}, but received "
                f"initial_state with shape(s) {received}."
            )
        return converted

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("cell")
        cell_config = self.cell.get_config()
        for name in _CELL_ARGUMENTS:
            config[name] = cell_config[name]
        config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config


@register_layer
class ConvLSTM1D(ConvLSTM):
    """1-D convolutional LSTM: inputs (batch, time, length, channels); kernel (k, C, 4F),
    recurrent_kernel (k, F, 4F), bias (4F,). See ``dendrite.layers.conv_lstm``'s maths."""

    rank = 1
    example = {"kwargs": {"filters": 2, "kernel_size": 2}, "input_shape": (2, 3, 5, 2)}


@register_layer
class ConvLSTM2D(ConvLSTM):
    """2-D convolutional LSTM: inputs (batch, time, rows, cols, channels); kernel
    (kh, kw, C, 4F), recurrent_kernel (kh, kw, F, 4F), bias (4F,). See
    ``dendrite.layers.conv_lstm``'s maths."""

    rank = 2
    example = {
        "kwargs": {"filters": 2, "kernel_size": 2, "padding": "same"},
        "input_shape": (2, 3, 4, 4, 2),
    }


@register_layer
class ConvLSTM3D(ConvLSTM):
    """3-D convolutional LSTM: inputs (batch, time, depth, rows, cols, channels); kernel
    (kd, kh, kw, C, 4F), recurrent_kernel (kd, kh, kw, F, 4F), bias (4F,). See
    ``dendrite.layers.conv_lstm``'s maths."""

    rank = 3
    example = {"kwargs": {"filters": 2, "kernel_size": 2}, "input_shape": (2, 2, 3, 3, 3, 1)}
