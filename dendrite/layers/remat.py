"""``keras.remat``: rematerialisation (gradient checkpointing) of a layer or a function.

``remat(f)`` returns a callable that computes ``y = f(x_1, ..., x_n)`` without keeping
``f``'s intermediate arrays for the backward pass. The graph records one node,
``Recompute``, whose inputs are the tensor arguments ``x_i`` and every variable ``w_j``
that ``y`` depends on; in the backward pass the node runs ``f`` again on the same values,
with gradients recorded, and returns ``dL/dx_i`` and ``dL/dw_j`` by the chain rule through
that fresh graph (``g = dL/dy`` seeds it). Memory: the intermediates of ``f`` live only
while ``f`` runs, in the forward pass and again in the backward one; time: ``f``'s forward
pass runs twice.

The variables are found by running ``f`` once with gradients recorded and walking the
graph it builds back to its leaves; that graph is dropped as soon as ``y`` is computed.

The second run must compute the same function as the first. So it runs with the same
``training`` flag as the first, and every random state ``f`` may draw from is put back to
what it was before the first run: dendrite's global generator and, when ``f`` is a layer,
the generators its layers own and their non-trainable variables (seed-generator states,
augmentation counters, BatchNormalization's moving statistics). Once the second run is done
each of those states is put back to what it was, so moving statistics are updated once, by
the first run. A function that draws from elsewhere (``np.random`` directly) is not
replayed. The call that builds a layer (creating states during the run, which have no
earlier value to replay) runs as a plain call and keeps its graph; later calls are
rematerialised, and a layer keeps the list of its states from then on.

Without gradients being recorded (``predict``, ``no_grad``) ``remat(f)`` is ``f``. The
output must be one tensor; ``f`` takes tensors (or arrays) as positional arguments and
anything else as keyword arguments.

``RematScope(mode)``: the layers created inside ``with RematScope(...):`` rematerialise
their calls, as Keras' do: ``"full"`` every such layer; ``"list_of_layers"`` those named in
``layer_names``; ``"larger_than"`` those whose output has more than
``output_size_threshold`` values (batch included); ``"activations"`` only the activation
function of a layer that has one (its ``activation`` attribute); ``None`` none. A layer
called on several tensors, or returning several, runs as usual.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections import namedtuple
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Function, Tensor, enable_grad, is_grad_enabled
from dendrite.core.backprop import backprop
from dendrite.layers.calling import CALL


def remat(f: Any) -> Any:
    """``f`` (a layer or a function of tensors) as a rematerialised callable (see the
    module docstring)."""
    if not callable(f):
        raise TypeError(f"remat: expected a layer or a function; received {f!r}.")
    return _rematerialise(f, owner=f, strict=True)


def _rematerialise(f: Any, owner: Any, strict: bool) -> Any:
    """``f`` rematerialised; the random states replayed are ``owner``'s (a layer, or not);
    ``strict``: a result that is not one tensor is an error (else it is returned as is,
    with its graph)."""

    @functools.wraps(f)
    def rematerialised(*args: Any, **kwargs: Any) -> Any:
        if not is_grad_enabled():
            return f(*args, **kwargs)
        inputs = [a if isinstance(a, Tensor) else Tensor(np.asarray(a)) for a in args]
        states, trusted = _states_of(owner)
        before = states.snapshot()
        training = (CALL.training, CALL.depth)
        copies = [_leaf(x) for x in inputs]
        output = f(*copies, **kwargs)
        if not isinstance(output, Tensor):
            if not strict:
                return output
            raise ValueError(
                f"remat: {_name(f)} must return one tensor to be rematerialised; it "
                f"returned {type(output).__name__}."
            )
        if not trusted and _RandomStates(owner).sizes() != states.sizes():
            # The run built (part of) the layer: states created during it have no value
            # from before it to replay, so this call keeps its graph as a plain call does.
            return output
        if not trusted:
            _remember(owner, states)
        if output._ctx is None:  # no op recorded: an input passed through, or a constant
            for copy, original in zip(copies, inputs):
                if output is copy:
                    return original
            return output
        variables = _leaves_reached(output, exclude={id(c) for c in copies})
        recompute = functools.partial(_run_again, f, kwargs, states, before, training)
        result = Recompute.apply(
            *inputs, *variables, recompute=recompute, n_inputs=len(inputs), value=output.data
        )
        result._keras_mask = getattr(output, "_keras_mask", None)
        return result

    return rematerialised


RematMode = namedtuple("RematMode", ["mode", "output_size_threshold", "layer_names"])
_MODES = ("full", "activations", "larger_than", "list_of_layers", None)


class _Scopes(threading.local):
    stack: list | None = None


_SCOPES = _Scopes()


class RematScope:
    """Rematerialise the calls of the layers created inside ``with RematScope(...):``
    (see the module docstring).

    Args:
        mode: "full", "activations", "larger_than", "list_of_layers" or None.
        output_size_threshold: for "larger_than", the output size above which a layer's
            call is rematerialised (default 1024).
        layer_names: for "list_of_layers", the names of the layers to rematerialise.
    """

    def __init__(
        self,
        mode: str | None = "full",
        output_size_threshold: int = 1024,
        layer_names: list[str] | None = None,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(
                f"Invalid mode '{mode}'. Supported modes are: 'full', 'activations', "
                "'larger_than', 'list_of_layers', or None."
            )
        self.mode = mode
        self.output_size_threshold = output_size_threshold
        self.layer_names = list(layer_names or [])

    def __enter__(self) -> RematScope:
        if _SCOPES.stack is None:
            _SCOPES.stack = []
        _SCOPES.stack.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _SCOPES.stack.pop()


def get_current_remat_mode() -> RematMode | None:
    """The innermost open ``RematScope``'s settings, or None outside any."""
    if not _SCOPES.stack:
        return None
    scope = _SCOPES.stack[-1]
    return RematMode(scope.mode, scope.output_size_threshold, scope.layer_names)


def rematerialized_call(layer: Any, inputs: Any, args: tuple, kwargs: dict) -> Any:
    """``layer.call(inputs, *args, **kwargs)`` as the layer's remat mode says."""
    mode = layer._remat_mode
    call = functools.partial(_call_with, layer, args, kwargs)
    if mode.mode is None or not isinstance(inputs, Tensor):
        return call(inputs)
    if mode.mode == "activations":
        activation = getattr(layer, "activation", None)
        if activation is None:
            return call(inputs)
        layer.__dict__["activation"] = _rematerialise(activation, owner=None, strict=False)
        try:
            return call(inputs)
        finally:
            layer.__dict__["activation"] = activation
    if mode.mode == "list_of_layers" and layer.name not in mode.layer_names:
        return call(inputs)
    if mode.mode == "larger_than" and not _larger_than(layer, inputs, mode):
        return call(inputs)
    return _rematerialise(call, owner=layer, strict=False)(inputs)


def _call_with(layer: Any, args: tuple, kwargs: dict, inputs: Tensor) -> Any:
    return layer.call(inputs, *args, **kwargs)


def _larger_than(layer: Any, inputs: Tensor, mode: RematMode) -> bool:
    try:
        shape = layer.compute_output_shape(tuple(inputs.shape))
        size = int(np.prod([d or 1 for d in shape]))
    except Exception:  # noqa: BLE001 (a layer without a static output shape runs as usual)
        warnings.warn(
            f"RematScope('larger_than'): layer '{layer.name}' has no output shape to "
            "compare with the threshold; its call is not rematerialised.",
            stacklevel=4,
        )
        return False
    return size > mode.output_size_threshold


class Recompute(Function):
    """y = f(x, w) computed already (``value``); backward: f run again on x and w, then
    (dL/dx, dL/dw) by the chain rule through that run (see the module docstring)."""

    __slots__ = ()

    def forward(self, *arrays: np.ndarray, recompute: Any, n_inputs: int, value: Any) -> Any:
        self.saved = (recompute, n_inputs)
        return value

    def backward(self, grad: np.ndarray) -> tuple:
        recompute, n_inputs = self.saved
        inputs = [_leaf(x, needed) for x, needed in zip(self.inputs[:n_inputs], self.needs_grad)]
        variables = self.inputs[n_inputs:]
        output = recompute(inputs)
        found = backprop(output, grad)
        return tuple(found[id(t)][1] if id(t) in found else None for t in [*inputs, *variables])


def _run_again(
    f: Any, kwargs: dict, states: _RandomStates, before: list, training: tuple, inputs: list
) -> Tensor:
    """f on ``inputs`` as it ran in the forward pass: the same training flag and random
    states; every state is put back afterwards."""
    now = states.snapshot()
    saved_call = (CALL.training, CALL.depth)
    states.restore(before)
    CALL.training, CALL.depth = training
    try:
        with enable_grad():
            return f(*inputs, **kwargs)
    finally:
        CALL.training, CALL.depth = saved_call
        states.restore(now)


def _states_of(owner: Any) -> tuple[_RandomStates, bool]:
    """``owner``'s states, and whether they were found in an earlier complete call (a
    layer keeps them: walking its layers is done once, not every batch)."""
    found = getattr(owner, "__dict__", {}).get("_remat_states")
    if found is not None:
        return found, True
    return _RandomStates(owner), False


def _remember(owner: Any, states: _RandomStates) -> None:
    if callable(getattr(owner, "_descendants", None)):  # a layer (a function keeps none)
        owner.__dict__["_remat_states"] = states


class _RandomStates:
    """The states a run of ``f`` may change: the global generator, and a layer's own
    generators and non-trainable variables (its nested layers' included)."""

    def __init__(self, owner: Any) -> None:
        descendants = getattr(owner, "_descendants", None)
        layers = [owner, *descendants()] if callable(descendants) else []
        self.generators = [
            value
            for layer in layers
            for value in vars(layer).values()
            if isinstance(value, np.random.Generator)
        ]
        self.variables = [v for layer in layers for v in getattr(layer, "_own_variables", list)()]
        self.variables = [v for v in self.variables if not v.trainable]

    def sizes(self) -> tuple[int, int]:
        return len(self.generators), len(self.variables)

    def snapshot(self) -> list:
        return [
            _settings.rng().bit_generator.state,
            [g.bit_generator.state for g in self.generators],
            [v.data.copy() for v in self.variables],
        ]

    def restore(self, snapshot: list) -> None:
        global_state, generator_states, values = snapshot
        _settings.rng().bit_generator.state = global_state
        for generator, state in zip(self.generators, generator_states):
            generator.bit_generator.state = state
        for variable, value in zip(self.variables, values):
            variable.assign(value)


def _leaf(x: Tensor, needed: bool | None = None) -> Tensor:
    """A new leaf holding ``x``'s values, recording gradients where ``x`` does."""
    requires = x.requires_grad if needed is None else needed
    leaf = Tensor(x.data, requires_grad=bool(requires) and x.data.dtype.kind == "f")
    leaf._keras_mask = getattr(x, "_keras_mask", None)
    return leaf


def _leaves_reached(output: Tensor, exclude: set[int]) -> list[Tensor]:
    """The tensors that need gradients, computed by no recorded op, that ``output``
    depends on (the variables ``f`` used), in the order first met, minus ``exclude``."""
    found: list[Tensor] = []
    seen_nodes: set[int] = set()
    seen_leaves = set(exclude)
    pending = [output._ctx] if output._ctx is not None else []
    while pending:
        node = pending.pop()
        if id(node) in seen_nodes or node.inputs is None:
            continue
        seen_nodes.add(id(node))
        for tensor in node.inputs:
            if tensor._ctx is not None:
                pending.append(tensor._ctx)
            elif tensor.requires_grad and id(tensor) not in seen_leaves:
                seen_leaves.add(id(tensor))
                found.append(tensor)
    return found


def _name(f: Any) -> str:
    name = getattr(f, "name", None) or getattr(f, "__name__", None)
    return f"'{name}'" if name else repr(f)
