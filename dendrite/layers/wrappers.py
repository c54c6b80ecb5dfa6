"""Layer wrappers: the ``Wrapper`` base (a layer holding another layer), Bidirectional (an
RNN read both ways) and TimeDistributed (a layer applied to every time step).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.calling import call_arguments
from dendrite.layers.core import Dense
from dendrite.layers.recurrent import LSTM, deserialize_layer, serialize_layer
from dendrite.layers.registry import register_layer

_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _renamed_copy(layer: Layer, prefix: str, **overrides: Any) -> Layer:
    """A fresh layer with ``layer``'s config (no weights), named ``prefix + name``."""
    config = layer.get_config()
    name = config.get("name", layer.name)
    config["name"] = prefix + (name[len(prefix) :] if name.startswith(prefix) else name)
    config.update(overrides)
    return type(layer).from_config(config)


@register_layer
class Wrapper(Layer):
    """The base of layers that hold another layer and change how it runs.

    ``y = wrapper(x)`` is defined by the subclass in terms of ``layer(x)``; on its own this
    base is the identity wrapper, ``y = layer(x)`` (Keras' ``Wrapper`` is abstract and
    cannot be called: dendrite calls the wrapped layer, so a subclass only overrides what
    it changes). Its config holds the wrapped layer's, and ``from_config`` rebuilds it;
    weights are the wrapper's own, then the wrapped layer's (Keras' order).

    Args:
        layer: the layer to wrap (a ``Layer``, or its config dict).
    """

    example = {
        "kwargs": lambda dtype=None: {"layer": Dense(2, dtype=dtype)},
        "input_shape": (2, 3),
    }
    # Bidirectional keeps the layer it was given only as a template (its weights live in
    # copies), so it does not track it.
    _tracks_wrapped_layer = True

    def __init__(self, layer: Any, **kwargs: Any) -> None:
        layer = deserialize_layer(layer)
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Layer {layer!r} supplied to {type(self).__name__} isn't a supported layer "
                f"type. Please ensure the wrapped layer is a valid Keras layer."
            )
        kwargs.setdefault("dtype", layer.dtype)  # compute in the wrapped layer's dtype
        super().__init__(**kwargs)
        if self._tracks_wrapped_layer:
            self.layer = layer
        else:
            object.__setattr__(self, "layer", layer)

    def build(self, input_shape: Any = None) -> None:
        if not self.layer.built:
            try:
                self.layer.build(input_shape)
            except ValueError as error:
                raise ValueError(
                    f"Layer '{self.name}' ({type(self).__name__}) cannot build its wrapped "
                    f"layer for inputs of shape {input_shape}: {error}"
                ) from error
            self.layer.built = True
        self.built = True

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        kwargs: dict[str, Any] = {"training": training}
        if mask is not None and call_arguments(type(self.layer))[1]:
            kwargs["mask"] = mask
        try:
            return self.layer(inputs, **kwargs)
        except ValueError as error:
            if self.name in str(error):
                raise
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) received inputs of shape "
                f"{tuple(getattr(inputs, 'shape', ()))}: {error}"
            ) from error

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self.layer.compute_mask(inputs, mask)

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": serialize_layer(self.layer)}


@register_layer
class Bidirectional(Wrapper):
    """Runs a recurrent layer forwards and a copy backwards, and merges their outputs.

    ``y = merge(forward(x), reverse_time(backward(x)))``: with return_sequences the backward
    outputs are flipped back so step t of both halves refers to input step t.

    Args:
        layer: the recurrent layer (RNN, LSTM, GRU, ...), or its config dict. It is copied
            from its config (fresh weights) into ``forward_layer``.
        merge_mode: 'concat' (default; last axis), 'sum', 'mul', 'ave', or None (a list).
        backward_layer: optional layer for the backward direction (go_backwards must
            differ from ``layer``'s; return_sequences and return_state must match).

    With ``return_state`` the result is ``[output, *forward_states, *backward_states]``;
    ``initial_state`` is split in two halves the same way. As in Keras, masked steps of
    returned sequences are zeros.
    """

    example = {
        "kwargs": lambda dtype=None: {"layer": LSTM(3, return_sequences=True, dtype=dtype)},
        "input_shape": (2, 4, 3),
    }
    _tracks_wrapped_layer = False

    def __init__(
        self,
        layer: Any,
        merge_mode: str | None = "concat",
        weights: Any = None,
        backward_layer: Any = None,
        **kwargs: Any,
    ) -> None:
        layer = deserialize_layer(layer)
        backward_layer = deserialize_layer(backward_layer)
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Please initialize `Bidirectional` layer with a `Layer` instance. "
                f"Received: {layer!r}"
            )
        if merge_mode not in _MERGE_MODES:
            raise ValueError(
                f"Invalid merge mode. Received: {merge_mode!r}. Merge mode should be one of "
                f'{{"sum", "mul", "ave", "concat", None}}'
            )
        super().__init__(layer, **kwargs)
        self.forward_layer = _renamed_copy(layer, "forward_")
        if backward_layer is None:
            go_back = not getattr(layer, "go_backwards", False)
            self.backward_layer = _renamed_copy(layer, "backward_", go_backwards=go_back)
        else:
            self.backward_layer = backward_layer
        self._verify()
        for sub in (self.forward_layer, self.backward_layer):
            if hasattr(sub, "zero_output_for_mask"):
                sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        self.stateful = getattr(layer, "stateful", False)
        self.supports_masking = True
        self.input_spec = layer.input_spec
        self._initial_weights = weights

    def _verify(self) -> None:
        forward, backward = self.forward_layer, self.backward_layer
        if forward.go_backwards == backward.go_backwards:
            raise ValueError(
                f"Forward layer and backward layer should have different `go_backwards` "
                f"value. Received: forward_layer.go_backwards={forward.go_backwards}, "
                f"backward_layer.go_backwards={backward.go_backwards}"
            )
        for attribute in ("stateful", "return_sequences", "return_state"):
            a, b = getattr(forward, attribute), getattr(backward, attribute)
            if a != b:
                raise ValueError(
                    f"Forward layer and backward layer are expected to have the same value "
                    f'for attribute "{attribute}", got "{a}" for forward layer and "{b}" for '
                    f"backward layer"
                )

    def build(self, sequences_shape: tuple, initial_state_shape: Any = None) -> None:
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                try:
                    sub.build(sequences_shape)
                except ValueError as error:
                    raise ValueError(
                        f"Layer '{self.name}' (Bidirectional) cannot be built for inputs of "
                        f"shape {tuple(sequences_shape)}: {error}"
                    ) from error
                sub.built = True
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def call(
        self,
        sequences: Tensor,
        initial_state: Any = None,
        mask: Any = None,
        training: Any = None,
    ) -> Any:
        kwargs: dict[str, Any] = {"training": training}
        if mask is not None:
            kwargs["mask"] = mask
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        try:
            y = self.forward_layer(sequences, initial_state=forward_state, **kwargs)
            y_rev = self.backward_layer(sequences, initial_state=backward_state, **kwargs)
        except ValueError as error:
            raise ValueError(
                f"Layer '{self.name}' (Bidirectional) received inputs of shape "
                f"{tuple(sequences.shape)}: {error}"
            ) from error
        states: tuple = ()
        if self.return_state:
            states = tuple(y[1:]) + tuple(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]
        if self.merge_mode == "concat":
            output: Any = ops.concatenate([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            output = y + y_rev
        elif self.merge_mode == "ave":
            output = (y + y_rev) * 0.5
        elif self.merge_mode == "mul":
            output = y * y_rev
        else:
            output = [y, y_rev]
        if self.return_state:
            return (*output, *states) if self.merge_mode is None else (output, *states)
        return output

    def compute_output_shape(self, sequences_shape: tuple, initial_state_shape: Any = None):
        shape = self.forward_layer.compute_output_shape(sequences_shape)
        states: list = []
        if self.return_state:
            shape, states = shape[0], list(shape[1:])
        shape = tuple(shape)
        if self.merge_mode == "concat":
            shape = (*shape[:-1], None if shape[-1] is None else 2 * shape[-1])
        outputs = [shape, shape] if self.merge_mode is None else [shape]
        if self.return_state:
            return [*outputs, *states, *states]
        return outputs if self.merge_mode is None else shape

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        masks = [output_mask, output_mask] if self.merge_mode is None else [output_mask]
        if self.return_state:
            count = len(getattr(self.forward_layer, "state_size", [None]))
            return masks + [None] * (2 * count)
        return masks if self.merge_mode is None else output_mask

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "merge_mode": self.merge_mode,
            "layer": serialize_layer(self.forward_layer),
            "backward_layer": serialize_layer(self.backward_layer),
        }


@register_layer
class TimeDistributed(Wrapper):
    """Applies ``layer`` to every time step: ``y[:, t] = layer(x[:, t])``.

    The time axis is folded into the batch, so the wrapped layer runs once on
    (batch * timesteps, ...) rather than once per step; this equals Keras' per-step loop for
    every layer that treats samples independently (Dense, Conv, Dropout, ...), not for
    layers with batch statistics in training (BatchNormalization).

    Args:
        layer: the layer to apply (or its config dict).
    """

    example = {
        "kwargs": lambda dtype=None: {"layer": Dense(2, dtype=dtype)},
        "input_shape": (2, 4, 3),
    }

    def __init__(self, layer: Any, **kwargs: Any) -> None:
        layer = deserialize_layer(layer)
        if not isinstance(layer, Layer):
            raise ValueError(
                f"Please initialize `TimeDistributed` layer with a `Layer` instance. "
                f"Received: {layer!r}"
            )
        super().__init__(layer, **kwargs)
        self.supports_masking = True

    def _child_shape(self, input_shape: Any) -> tuple:
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 3:
            raise ValueError(
                f"`TimeDistributed` Layer '{self.name}' should be passed an `input_shape` "
                f"with at least 3 dimensions (batch, timesteps, ...), received: {input_shape}"
            )
        return (input_shape[0], *input_shape[2:])

    def build(self, input_shape: tuple) -> None:
        child = self._child_shape(tuple(input_shape))
        if not self.layer.built:
            try:
                self.layer.build(child)
            except ValueError as error:
                raise ValueError(
                    f"Layer '{self.name}' (TimeDistributed) cannot build its wrapped layer for "
                    f"inputs of shape {tuple(input_shape)} (steps of shape {child}): {error}"
                ) from error
            self.layer.built = True
        self.built = True

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        child = self._child_shape(tuple(input_shape))
        out = tuple(self.layer.compute_output_shape(child))
        return (out[0], input_shape[1], *out[1:])

    def call(self, inputs: Tensor, training: Any = None, mask: Any = None) -> Tensor:
        shape = tuple(inputs.shape)
        self._child_shape(shape)
        batch, steps = shape[0], shape[1]
        kwargs: dict[str, Any] = {}
        if mask is not None:
            mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
            if mask.shape[:2] != (batch, steps):
                raise ValueError(
                    f"`TimeDistributed` Layer should be passed a `mask` of shape "
                    f"({batch}, {steps}, ...), received: mask.shape={mask.shape}"
                )
            # A (batch, steps) mask says which steps exist, not how to read inside one; a
            # mask with more axes is passed on to the wrapped layer, step by step.
            if mask.ndim > 2 and call_arguments(type(self.layer))[1]:
                kwargs["mask"] = mask.reshape(batch * steps, *mask.shape[2:])
        flat = ops.reshape(inputs, (batch * steps, *shape[2:]))
        try:
            out = self.layer(flat, training=training, **kwargs)
        except ValueError as error:
            raise ValueError(
                f"Layer '{self.name}' (TimeDistributed) received inputs of shape {shape}; the "
                f"wrapped layer, called on each of the {steps} steps as {tuple(flat.shape)}, "
                f"failed: {error}"
            ) from error
        return ops.reshape(out, (batch, steps, *out.shape[1:]))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask
