"""Recurrent cells: one time step of SimpleRNN, LSTM and GRU (Keras 3's equations and
weight layouts).

A cell maps ``(x_t, states_{t-1})`` to ``(output_t, states_t)``. The recurrent layers in
``layers/recurrent.py`` own a cell: they run the whole sequence through the fused
primitives of ``dendrite.ops.recurrent`` when the activations allow it, and call the cell step by
step otherwise (or for user-written cells). Weights, with ``k`` gates (1, 4 or 3):

- ``kernel`` (input_dim, k units): applied to the inputs, gates side by side;
- ``recurrent_kernel`` (units, k units): applied to the previous state;
- ``bias`` (k units,), or (2, 3 units) for GRU(reset_after=True): input and recurrent bias.

Dropout (training only) multiplies the inputs by one mask per sequence, and recurrent
dropout the previous state before ``recurrent_kernel`` (one mask shared by the gates: the
simple form of Keras' per-gate masks).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers import activations, constraints, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer
from dendrite.ops.dense import dense
from dendrite.ops.recurrent import FUSED_ACTIVATIONS


def _activation_name(fn: Any) -> str | None:
    """The Keras name of a built-in activation (None for custom callables)."""
    try:
        name = activations.serialize(fn)
    except ValueError:
        return None
    try:
        return name if activations.get(name) is fn else None
    except ValueError:
        return None


class RecurrentCell(Layer):
    """Shared by the cells: Keras' arguments, the three weights, dropout masks.

    Args:
        units: size of the state and of the output.
        activation: for the candidate state and the output (default tanh).
        use_bias: add biases.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras defaults
            glorot_uniform, orthogonal and zeros.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: weight penalties.
        kernel_constraint, recurrent_constraint, bias_constraint: applied after updates.
        dropout: fraction of the inputs dropped (training only).
        recurrent_dropout: fraction of the previous state dropped before the recurrent
            kernel (training only).
        seed: seed of the dropout masks' generator.
    """

    gates = 1

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
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
        kwargs.pop("implementation", None)
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(
                f"Received an invalid value for argument `units` of {type(self).__name__}, "
                f"expected a positive integer, got {units!r}."
            )
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
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
        self.state_size: Any = self.units
        self.output_size = self.units
        self._masks: dict[str, np.ndarray] = {}

    # --- weights ---------------------------------------------------------------------------
    def bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def bias_init(self) -> Any:
        return self.bias_initializer

    def build(self, input_shape: tuple) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last dimension of the inputs to {type(self).__name__} '{self.name}' "
                f"must be defined; received input shape {tuple(input_shape)}."
            )
        width = self.gates * self.units
        self.kernel = self.add_weight(
            (input_dim, width),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            (self.units, width),
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
            name="recurrent_kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                self.bias_shape(),
                initializer=self.bias_init(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        self.built = True

    def input_bias(self) -> Any:
        return self.bias

    def project(self, inputs: Tensor) -> Tensor:
        """``x W + b`` over the last axis (every time step at once for a sequence)."""
        bias = self.input_bias()
        if bias is None:
            return ops.matmul(inputs, self.kernel)
        return dense(inputs, self.kernel, bias)

    # --- dropout ---------------------------------------------------------------------------
    def _draw(self, shape: tuple, rate: float) -> np.ndarray:
        rng = self._rng if self._rng is not None else _settings.rng()
        keep = rng.random(shape) >= rate
        return keep.astype(self.dtype) * np.asarray(1.0 / (1.0 - rate), dtype=self.dtype)

    def dropout_mask(self, batch: int, input_dim: int, training: Any) -> np.ndarray | None:
        """The input dropout mask (batch, input_dim), the same for every step of a sequence."""
        if not training or not 0.0 < self.dropout < 1.0:
            return None
        if "input" not in self._masks:
            self._masks["input"] = self._draw((batch, input_dim), self.dropout)
        return self._masks["input"]

    def recurrent_dropout_mask(self, batch: int, training: Any) -> np.ndarray | None:
        """The recurrent dropout mask (batch, units), the same for every step."""
        if not training or not 0.0 < self.recurrent_dropout < 1.0:
            return None
        if "recurrent" not in self._masks:
            self._masks["recurrent"] = self._draw((batch, self.units), self.recurrent_dropout)
        return self._masks["recurrent"]

    def reset_dropout_masks(self) -> None:
        """Forget the masks, so the next sequence draws new ones (called by the layer)."""
        self._masks = {}

    def _step_inputs(self, inputs: Tensor, h: Tensor, training: Any) -> tuple:
        """The step's inputs and previous state after dropout."""
        mask = self.dropout_mask(inputs.shape[0], inputs.shape[-1], training)
        if mask is not None:
            inputs = inputs * mask
        rmask = self.recurrent_dropout_mask(h.shape[0], training)
        return inputs, (h * rmask if rmask is not None else h)

    # --- fusing ----------------------------------------------------------------------------
    def fused_activations(self) -> tuple[str, str] | None:
        """(activation, recurrent_activation) names when the fused primitive can run them."""
        names = (
            _activation_name(self.activation),
            _activation_name(getattr(self, "recurrent_activation", self.activation)),
        )
        return names if all(n in FUSED_ACTIVATIONS for n in names) else None

    def get_initial_state(self, batch_size: int) -> list[Tensor]:
        sizes = self.state_size if isinstance(self.state_size, list) else [self.state_size]
        return [Tensor._make(np.zeros((batch_size, size), dtype=self.dtype)) for size in sizes]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }


def _first(states: Any) -> Tensor:
    return states[0] if isinstance(states, (list, tuple)) else states


@register_layer
class SimpleRNNCell(RecurrentCell):
    """One step of a fully-connected RNN: ``h_t = a(x_t W + h_{t-1} U + b)``."""

    def call(self, inputs: Tensor, states: Any, training: Any = None) -> tuple:
        prev = _first(states)
        x, h_in = self._step_inputs(inputs, prev, training)
        h = self.activation(self.project(x) + ops.matmul(h_in, self.recurrent_kernel))
        return h, ([h] if isinstance(states, (list, tuple)) else h)


@register_layer
class LSTMCell(RecurrentCell):
    """One LSTM step (Hochreiter & Schmidhuber 1997), Keras' gate order i, f, c, o:

    ``[z_i, z_f, z_c, z_o] = x_t W + h_{t-1} U + b``; ``i = s(z_i)``, ``f = s(z_f)``,
    ``o = s(z_o)``; ``c_t = f * c_{t-1} + i * a(z_c)``; ``h_t = o * a(c_t)``, with ``s``
    the recurrent activation (sigmoid) and ``a`` the activation (tanh). States [h, c].

    Args (besides RecurrentCell's):
        recurrent_activation: for the gates (default sigmoid).
        unit_forget_bias: initialise the forget-gate bias to 1 (and the others with
            bias_initializer), as Jozefowicz et al. (2015) recommend.
    """

    gates = 4

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        unit_forget_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def bias_init(self) -> Any:
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, units = self.bias_initializer, self.units

        def forget_bias_one(shape: tuple, dtype: Any = None) -> np.ndarray:
            return np.concatenate(
                [base((units,), dtype), np.ones(units, dtype), base((2 * units,), dtype)]
            )

        return forget_bias_one

    def call(self, inputs: Tensor, states: Any, training: Any = None) -> tuple:
        h_prev, c_prev = states[0], states[1]
        x, h_in = self._step_inputs(inputs, h_prev, training)
        z = self.project(x) + ops.matmul(h_in, self.recurrent_kernel)
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i, f, o = (self.recurrent_activation(v) for v in (z_i, z_f, z_o))
        c = f * c_prev + i * self.activation(z_c)
        h = o * self.activation(c)
        return h, [h, c]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }


@register_layer
class GRUCell(RecurrentCell):
    """One GRU step (Cho et al. 2014), Keras' gate order z (update), r (reset), h:

    ``z = s(x W_z + h U_z + b)``, ``r = s(x W_r + h U_r + b)``,
    ``hh = a(x W_h + r * (h U_h + b_rec))`` (reset_after=True, Keras 3's default, equal to
    PyTorch's GRU) or ``hh = a(x W_h + (r * h) U_h + b)`` (reset_after=False);
    ``h_t = z * h_{t-1} + (1 - z) * hh``.

    Args (besides RecurrentCell's):
        recurrent_activation: for the gates (default sigmoid).
        reset_after: apply the reset gate after the recurrent product; the bias then has
            shape (2, 3 units): the input bias, then the recurrent bias.
    """

    gates = 3

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        reset_after: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = bool(reset_after)

    def bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self) -> Any:
        if self.bias is None or not self.reset_after:
            return self.bias
        return self.bias[0]

    def recurrent_bias(self) -> Any:
        """The bias added to ``h U`` (zeros when there is none)."""
        if self.bias is not None and self.reset_after:
            return self.bias[1]
        return np.zeros(3 * self.units, dtype=self.dtype)

    def call(self, inputs: Tensor, states: Any, training: Any = None) -> tuple:
        h_prev = _first(states)
        x, h_in = self._step_inputs(inputs, h_prev, training)
        u = self.units
        x_z, x_r, x_h = ops.split(self.project(x), 3, axis=-1)
        if self.reset_after:
            hu = ops.matmul(h_in, self.recurrent_kernel) + self.recurrent_bias()
            u_z, u_r, u_h = ops.split(hu, 3, axis=-1)
        else:
            u_z, u_r = ops.split(ops.matmul(h_in, self.recurrent_kernel[:, : 2 * u]), 2, axis=-1)
        z = self.recurrent_activation(x_z + u_z)
        r = self.recurrent_activation(x_r + u_r)
        if self.reset_after:
            hh = self.activation(x_h + r * u_h)
        else:
            hh = self.activation(x_h + ops.matmul(r * h_in, self.recurrent_kernel[:, 2 * u :]))
        h = z * h_prev + (1 - z) * hh
        return h, ([h] if isinstance(states, (list, tuple)) else h)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "reset_after": self.reset_after,
        }


CELLS: dict[str, type] = {cls.__name__: cls for cls in (SimpleRNNCell, LSTMCell, GRUCell)}
