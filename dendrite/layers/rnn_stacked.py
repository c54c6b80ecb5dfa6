"""``StackedRNNCells``: several recurrent cells run as one, each step feeding the next.

At step t, with cells ``c_1 .. c_n`` and their states ``s_k``:
``y^(0)_t = x_t``; ``(y^(k)_t, s_k,t) = c_k(y^(k-1)_t, s_k,t-1)``; the stack's output is
``y^(n)_t`` and its state the list ``[s_1,t, ..., s_n,t]`` (each cell's own structure).
``RNN(StackedRNNCells([...]))`` (or ``RNN([...])``) runs the stack over the time axis.
"""

from __future__ import annotations

from typing import Any

from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import get_layer_class, register_layer
from dendrite.layers.rnn_cells import CELLS, GRUCell


def flatten_states(states: Any) -> list:
    """The leaves of a nested list of states (or of state sizes), in order."""
    if not isinstance(states, (list, tuple)):
        return [states]
    return [leaf for item in states for leaf in flatten_states(item)]


def pack_states(flat: list, structure: Any) -> Any:
    """``flat`` (consumed from the front) arranged like ``structure`` (nested sizes)."""
    if not isinstance(structure, (list, tuple)):
        return flat.pop(0)
    return [pack_states(flat, item) for item in structure]


def _cell_from_config(config: Any) -> Any:
    if not isinstance(config, dict):
        return config
    name = config.get("class_name")
    cls = CELLS.get(name) or get_layer_class(name)
    return cls.from_config(dict(config.get("config", {})))


def _output_size(cell: Any) -> int:
    size = getattr(cell, "output_size", None)
    if size is not None:
        return size
    state = cell.state_size
    return state[0] if isinstance(state, (list, tuple)) else state


@register_layer
class StackedRNNCells(Layer):
    """A stack of recurrent cells that behaves as one cell (see the module's maths).

    Args:
        cells: the cells, first to last (Layers with ``call(inputs, states, training)``
            and ``state_size``), or their config dicts.

    ``state_size`` is the list of the cells' state sizes; ``output_size`` the last cell's.
    Called on its own (outside ``RNN``), ``states`` defaults to the cells' zero states.
    """

    # One single-state cell: the call then returns a flat (output, state) pair, which the
    # shared contract checks read; nested stacks are tested in test_layers_rnn_stacked.
    example = {
        "kwargs": lambda dtype=None: {"cells": [GRUCell(3, dtype=dtype)]},
        "input_shape": (2, 4),
    }

    def __init__(self, cells: Any, **kwargs: Any) -> None:
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(
                f"StackedRNNCells expects a non-empty list of RNN cells. Received: cells={cells!r}"
            )
        cells = [_cell_from_config(cell) for cell in cells]
        for cell in cells:
            if not callable(getattr(cell, "call", None)):
                raise ValueError(
                    f"All cells must have a `call` method. Received cell without a `call` "
                    f"method: {cell!r}"
                )
            if not hasattr(cell, "state_size"):
                raise ValueError(
                    f"All cells must have a `state_size` attribute. Received cell without "
                    f"a `state_size`: {cell!r}"
                )
        kwargs.setdefault("dtype", getattr(cells[0], "dtype", None))  # the cells' precision
        super().__init__(**kwargs)
        self.cells = list(cells)
        self.input_spec = InputSpec(ndim=2)

    @property
    def state_size(self) -> list:
        return [cell.state_size for cell in self.cells]

    @property
    def output_size(self) -> int:
        return _output_size(self.cells[-1])

    def build(self, input_shape: tuple) -> None:
        input_shape = tuple(input_shape)
        InputSpec(ndim=2).check(self.name, 0, input_shape)
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell.build(input_shape)
                cell.built = True
            input_shape = (input_shape[0], _output_size(cell))
        self.built = True

    def get_initial_state(self, batch_size: int) -> list:
        states = []
        for cell in self.cells:
            sizes = cell.state_size
            initial = cell.get_initial_state(batch_size=batch_size)
            if isinstance(sizes, (list, tuple)):
                states.append(list(initial))
            else:
                states.append(initial[0] if isinstance(initial, (list, tuple)) else initial)
        return states

    def reset_dropout_masks(self) -> None:
        """Forget every cell's dropout masks (called by RNN after each sequence)."""
        for cell in self.cells:
            reset = getattr(cell, "reset_dropout_masks", None)
            if reset is not None:
                reset()

    def call(self, inputs: Tensor, states: Any = None, training: Any = None) -> tuple:
        if states is None:
            states = self.get_initial_state(inputs.shape[0])
        if len(states) != len(self.cells):
            raise ValueError(
                f"Layer '{self.name}' (StackedRNNCells) expected states for its "
                f"{len(self.cells)} cells, but received {len(states)}."
            )
        new_states = []
        for cell, state in zip(self.cells, states):
            was_list = isinstance(state, (list, tuple))
            given = list(state) if was_list else [state]
            inputs, state = cell(inputs, given, training=training)
            state = list(state) if isinstance(state, (list, tuple)) else [state]
            new_states.append(state if was_list or len(state) != 1 else state[0])
        if len(new_states) == 1:
            return inputs, new_states[0]
        return inputs, new_states

    def compute_output_shape(self, input_shape: tuple, states_shape: Any = None) -> Any:
        batch = input_shape[0]
        states = [
            [(batch, s) for s in size] if isinstance(size, (list, tuple)) else (batch, size)
            for size in self.state_size
        ]
        return (batch, self.output_size), (states[0] if len(states) == 1 else states)

    def get_config(self) -> dict:
        cells = [{"class_name": type(c).__name__, "config": c.get_config()} for c in self.cells]
        return {**super().get_config(), "cells": cells}
