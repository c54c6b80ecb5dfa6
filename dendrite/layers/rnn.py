"""The recurrent layer base, ``RNN``: runs any cell over the time axis, with Keras 3's
arguments (masks, initial and kept states, going backwards), and the (de)serialisation of
its cell.

A recurrent layer reads a sequence ``x`` of shape (batch, timesteps, features) one step at
a time, carrying a state: ``(output_t, states_t) = cell(x_t, states_{t-1})``. It returns the
last output (batch, units), or every output (batch, timesteps, units) with
``return_sequences=True``, followed by the final states with ``return_state=True``.

Masking (Keras' rules): where ``mask[b, t]`` is False the states are carried over
unchanged and the output repeats the previous step's output (zeros before the first
unmasked step, or zeros everywhere masked with ``zero_output_for_mask=True``).

A stateful layer keeps its final states (as arrays) and starts its next call from them,
until ``reset_states()``. The helpers ``_fused_inputs`` and ``_fused_outputs`` serve the
layers of ``dendrite.layers.recurrent`` that run their sequence as one fused primitive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import get_layer_class, register_layer
from dendrite.layers.rnn_cells import CELLS, SimpleRNNCell
from dendrite.layers.rnn_stacked import StackedRNNCells, flatten_states, pack_states


def deserialize_layer(config: Any, custom_objects: dict | None = None) -> Any:
    """A layer (or cell) from ``{"class_name": ..., "config": {...}}``; objects pass through."""
    if not isinstance(config, dict):
        return config
    name = config.get("class_name")
    known = {**CELLS, "StackedRNNCells": StackedRNNCells}
    cls = known.get(name) if not (custom_objects and name in custom_objects) else None
    cls = cls or get_layer_class(name, custom_objects)
    return cls.from_config(dict(config.get("config", {})))


def serialize_layer(layer: Any) -> dict:
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


@register_layer
class RNN(Layer):
    """Base recurrent layer: runs ``cell`` over the time axis.

    Args:
        cell: a cell (a Layer with ``call(x_t, states, training)`` returning
            ``(output, new_states)``, and ``state_size``), or its config dict, or a list of
            cells (run as ``StackedRNNCells``, whose states nest one list per cell).
        return_sequences: return every step's output, not only the last.
        return_state: also return the final states (after the output).
        go_backwards: process the sequence backwards; with return_sequences the outputs
            are in that reversed order (as in Keras).
        stateful: carry the final states of each call over as the initial states of the
            next (sample i of a batch continues sample i of the previous batch), until
            ``reset_states()``; the batch size must then stay the same.
        unroll: accepted for compatibility and ignored.
        zero_output_for_mask: output zeros at masked steps instead of repeating the
            previous output.

    Call arguments: ``sequences`` (batch, timesteps, features); ``initial_state``: a tensor
    or list of tensors (batch, state_size) (default zeros); ``mask`` (batch, timesteps),
    True where a step is used; ``training`` (turns dropout on).
    """

    example = {
        "kwargs": lambda dtype=None: {"cell": SimpleRNNCell(3, dtype=dtype)},
        "input_shape": (2, 4, 3),
    }

    def __init__(
        self,
        cell: Any,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs: Any,
    ) -> None:
        cell = deserialize_layer(cell)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(list(cell))
        if not callable(getattr(cell, "call", None)) or not hasattr(cell, "state_size"):
            raise ValueError(
                f"Argument `cell` of RNN should have a `call` method and a `state_size` "
                f"attribute. Received: cell={cell!r}"
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self._kept_states: list[np.ndarray] | None = None
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.input_spec = InputSpec(ndim=3)

    @property
    def state_size(self) -> list:
        size = self.cell.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    @property
    def _flat_state_size(self) -> list[int]:
        """Every state's size, the nested lists of stacked cells flattened."""
        return flatten_states(self.state_size)

    def _nested(self, states: list) -> list:
        """Flat states arranged as the cell's ``state_size`` nests them (Keras' structure)."""
        return pack_states(list(states), self.state_size)

    def build(self, sequences_shape: tuple, initial_state_shape: Any = None) -> None:
        sequences_shape = tuple(sequences_shape)
        InputSpec(ndim=3).check(self.name, 0, sequences_shape)
        if isinstance(self.cell, Layer) and not self.cell.built:
            self.cell.build((sequences_shape[0], *sequences_shape[2:]))
            self.cell.built = True
            for variable in self.cell._own_weights:
                variable.path = f"{self.name}/{variable.path}"
        self.input_spec = InputSpec(ndim=3, axes={-1: sequences_shape[-1]})
        self.built = True

    def compute_output_shape(self, sequences_shape: tuple, initial_state_shape: Any = None):
        batch, steps = sequences_shape[0], sequences_shape[1]
        units = getattr(self.cell, "output_size", None) or self.state_size[0]
        output = (batch, steps, units) if self.return_sequences else (batch, units)
        if self.return_state:
            return [output, *self._nested([(batch, size) for size in self._flat_state_size])]
        return output

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.state_size)
        return output_mask

    # --- calling ---------------------------------------------------------------------------
    def call(
        self,
        sequences: Tensor,
        initial_state: Any = None,
        mask: Any = None,
        training: Any = None,
    ) -> Any:
        if sequences.dtype.kind != "f":
            sequences = ops.cast(sequences, self.dtype)
        batch = sequences.shape[0]
        given = initial_state is not None
        states = self._initial_states(initial_state, batch) if given else None
        if states is None and self._kept_states is not None:
            states, given = self._carried_states(batch), True
        if states is None:
            states = self._zero_states(batch)
        mask = self._mask_array(mask, sequences.shape)
        try:
            sequence, last, states = self._inner_loop(sequences, states, mask, training, given)
        finally:
            reset = getattr(self.cell, "reset_dropout_masks", None)
            if reset is not None:
                reset()
        if self.stateful:
            self._kept_states = [np.array(state.data, copy=True) for state in states]
        output = sequence if self.return_sequences else last
        if self.return_state:
            return (output, *self._nested(states))
        return output

    # --- stateful layers ---------------------------------------------------------------
    @property
    def states(self) -> list[np.ndarray] | None:
        """A stateful layer's kept states (batch, state_size) each, or None before its
        first call and after ``reset_states()``."""
        return self._kept_states

    def reset_states(self, states: Any = None) -> None:
        """Forget the kept states (the next call starts from zeros), or set them to
        ``states`` (arrays of shape (batch, state_size), one per state)."""
        if not self.stateful:
            raise AttributeError(
                f"Layer '{self.name}' is not stateful: pass stateful=True to keep states "
                f"between calls."
            )
        if states is None:
            self._kept_states = None
            return
        items = flatten_states(states)
        arrays = [np.array(getattr(s, "data", s), dtype=self.dtype) for s in items]
        batch = arrays[0].shape[0] if arrays and arrays[0].ndim == 2 else None
        self._initial_states(arrays, batch)  # checks the count and the shapes
        self._kept_states = arrays

    reset_state = reset_states

    def _carried_states(self, batch: int) -> list:
        kept = self._kept_states
        if kept[0].shape[0] != batch:
            raise ValueError(
                f"Layer '{self.name}' is stateful: its states hold a batch of "
                f"{kept[0].shape[0]} sequences, but it received a batch of {batch}. Keep the "
                f"batch size fixed (and the number of samples a multiple of it), or call "
                f"reset_states() first."
            )
        return [Tensor._make(state.copy()) for state in kept]

    def _zero_states(self, batch: int) -> list:
        get_initial = getattr(self.cell, "get_initial_state", None)
        if get_initial is not None:
            return flatten_states(get_initial(batch_size=batch))
        return [Tensor._make(np.zeros((batch, s), dtype=self.dtype)) for s in self._flat_state_size]

    def _initial_states(self, initial_state: Any, batch: int) -> list:
        states = flatten_states(initial_state)
        expected = [(batch, size) for size in self._flat_state_size]
        converted = []
        for state in states:
            if not isinstance(state, Tensor):
                state = Tensor._make(np.asarray(state, dtype=self.dtype))
            elif state.dtype != self.dtype:
                state = ops.cast(state, self.dtype)
            converted.append(state)
        received = [tuple(s.shape) for s in converted]
        if received != expected:
            raise ValueError(
                f"Layer '{self.name}' expected {len(expected)} initial state(s) of shape(s) "
                f"{expected} (batch, state_size), but received initial_state with shape(s) "
                f"{received}."
            )
        return converted

    def _mask_array(self, mask: Any, shape: tuple) -> np.ndarray | None:
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if mask is None:
            return None
        array = np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool)
        if array.shape != tuple(shape[:2]):
            raise ValueError(
                f"Layer '{self.name}': the mask must have shape (batch, timesteps) = "
                f"{tuple(shape[:2])} to match the inputs of shape {tuple(shape)}, but has "
                f"shape {array.shape}."
            )
        return array

    def _inner_loop(
        self, sequences: Tensor, states: list, mask: Any, training: Any, given: bool
    ) -> tuple:
        """Call the cell at every step (any cell); returns (outputs or None, last, states)."""
        steps = sequences.shape[1]
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        single = not isinstance(self.cell.state_size, (list, tuple))
        outputs: list[Tensor] = []
        for t in order:
            x_t = sequences[:, t]
            given_states = states[0] if single else self._nested(states)
            output, new_states = self.cell(x_t, given_states, training=training)
            new_states = flatten_states(new_states)
            if mask is not None:
                keep = mask[:, t].reshape((-1,) + (1,) * (output.ndim - 1))
                if outputs and not self.zero_output_for_mask:
                    previous = outputs[-1]
                else:
                    previous = Tensor._make(np.zeros(output.shape, dtype=output.dtype))
                output = ops.where(keep, output, previous)
                new_states = [
                    ops.where(keep.reshape((-1,) + (1,) * (n.ndim - 1)), n, s)
                    for n, s in zip(new_states, states)
                ]
            outputs.append(output)
            states = new_states
        sequence = ops.stack(outputs, axis=1) if self.return_sequences else None
        return sequence, outputs[-1], states

    def _fused_outputs(self, hidden: Tensor, mask: Any, given: bool) -> tuple:
        """Keras' masked outputs from the carried hidden states (processing order):
        ``hidden`` is (batch, T, units), or the last states (batch, units) when the layer
        returns no sequences."""
        last_state = hidden[:, -1] if self.return_sequences else hidden
        sequence = hidden if self.return_sequences else None
        last = last_state
        if mask is not None:
            keep = mask[:, ::-1] if self.go_backwards else mask
            if self.zero_output_for_mask:
                factor = keep
            elif given:
                # The carried state is the initial state until the first used step, where
                # Keras outputs zeros.
                factor = np.logical_or.accumulate(keep, axis=1)
            else:
                factor = None
            if factor is not None and not factor.all():
                factor = factor.astype(hidden.dtype)[:, :, None]
                if sequence is not None:
                    sequence = sequence * factor
                last = last_state * factor[:, -1]
        return sequence, last, last_state

    def _fused_inputs(self, sequences: Tensor, training: Any) -> tuple:
        """The inputs after dropout, the input kernel and bias, and the recurrent dropout
        mask, for the fused primitives."""
        cell = self.cell
        batch, _, features = sequences.shape
        drop = cell.dropout_mask(batch, features, training)
        x = sequences * drop[:, None, :] if drop is not None else sequences
        bias = cell.input_bias()
        if bias is None:
            bias = np.zeros(cell.kernel.shape[1], dtype=self.dtype)
        return (x, cell.kernel, bias), cell.recurrent_dropout_mask(batch, training)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "cell": serialize_layer(self.cell),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }
