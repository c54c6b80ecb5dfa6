"""``Layer``: the unit of a network (the design document's 2.2 and 3.1).

A layer keeps its configuration from ``__init__``, creates its weights in
``build(input_shape)`` on the first call (so shapes are inferred from data), and computes
``call(inputs, training=None)`` on Tensors. ``__call__`` wraps ``call`` with what every
layer needs: converting arrays, building, checking the input against ``input_spec`` before
any work, passing the ``training`` flag down to nested layers, activity regularisation, and
symbolic (functional-API) calls.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor, Variable
from dendrite.layers import constraints, initializers, regularizers
from dendrite.layers.calling import (
    CALL,
    CALL_IDS,
    attach_mask,
    call_arguments,
    contains,
    input_mask,
    shape_of,
    training_argument,
)
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.remat import get_current_remat_mode, rematerialized_call
from dendrite.layers.symbolic import (
    FirstCall,
    FirstCallShape,
    KerasTensor,
    infer_output_shape,
    symbolic_call,
)
from dendrite.layers.weight_budget import charge
from dendrite.registry.naming import snake_case

# Weights made with add_weight(added_later=True): optional in older files (saving/weights.py).
ADDED_LATER: weakref.WeakSet = weakref.WeakSet()
# Weights whose shape changed after files of them were written (Normalization's statistics
# lost their broadcast 1s), by id: a file's tensor of the same size loads into them.
RESHAPED_LATER: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_NAME_COUNTS: dict[str, int] = {}
# Two threads building models at once must never hand out the same name.
_NAMES_LOCK = threading.Lock()


def unique_name(base: str) -> str:
    """``dense``, then ``dense_1``, ``dense_2``, ... (Keras' automatic names)."""
    with _NAMES_LOCK:
        count = _NAME_COUNTS.get(base, 0)
        _NAME_COUNTS[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


_UIDS: dict[str, int] = {}


def get_uid(prefix: str = "") -> int:
    """1, 2, 3, ... per ``prefix`` (``keras.backend.get_uid``), until ``clear_session``."""
    with _NAMES_LOCK:
        _UIDS[prefix] = _UIDS.get(prefix, 0) + 1
        return _UIDS[prefix]


def reset_names() -> None:
    """Forget automatic names and uids (``dendrite.utils.clear_session``)."""
    with _NAMES_LOCK:
        _NAME_COUNTS.clear()
        _UIDS.clear()


class Layer:
    """Base class of all layers.

    Args:
        trainable: whether the layer's weights are updated by training.
        name: unique name (default: the snake_case class name, numbered).
        dtype: the layer's float type (default ``floatx()``, float32).
        input_shape: shape of one sample (without the batch axis); lets a Sequential model
            build before seeing data.
    """

    example: dict | None = None

    def __init__(
        self,
        *,
        trainable: bool = True,
        name: str | None = None,
        dtype: Any = None,
        autocast: bool = True,
        input_shape: Sequence[int | None] | None = None,
        batch_input_shape: Sequence[int | None] | None = None,
        input_dim: int | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        self.__dict__.setdefault("_sublayers", [])
        self.__dict__.setdefault("_tracked_variables", [])
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        if isinstance(dtype, dict):
            dtype = dtype.get("config", {}).get("name")
        if dtype in ("string", "str"):  # Keras' string inputs (TextVectorization)
            dtype = "object"
        self.dtype = np.dtype(dtype or _settings.floatx()).name
        self.autocast = autocast
        self.built = False
        self.input_spec: InputSpec | list | None = None
        self.supports_masking = False
        self._own_weights: list[Variable] = []
        self._regularized: list[tuple[Variable, Any]] = []
        self._call_losses: list[Tensor] = []
        self.activity_regularizer = None
        if batch_input_shape is not None:
            self._batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (batch_size, *tuple(input_shape))
        elif input_dim is not None:
            self._batch_input_shape = (batch_size, input_dim)
        else:
            self._batch_input_shape = None
        remat_mode = get_current_remat_mode()
        if remat_mode is not None:  # created inside a RematScope (layers/remat.py)
            self.__dict__["_remat_mode"] = remat_mode

    # --- attribute tracking ---------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("__"):
            if isinstance(value, Layer) and value is not self:
                self._track_layer(value)
            elif isinstance(value, Variable):
                tracked = self.__dict__.setdefault("_tracked_variables", [])
                if all(v is not value for v in tracked):
                    tracked.append(value)
            elif isinstance(value, (list, tuple)) and value and isinstance(value[0], Layer):
                for item in value:
                    if isinstance(item, Layer):
                        self._track_layer(item)
        object.__setattr__(self, name, value)

    def _track_layer(self, layer: Layer) -> None:
        sublayers = self.__dict__.setdefault("_sublayers", [])
        if all(existing is not layer for existing in sublayers):
            sublayers.append(layer)

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for layer in self._sublayers:
            layer.trainable = value

    # --- weights --------------------------------------------------------------------------
    def add_weight(
        self,
        shape: Sequence[int] | None = None,
        initializer: Any = None,
        dtype: Any = None,
        trainable: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
        name: str | None = None,
        added_later: bool = False,
        **kwargs: Any,
    ) -> Variable:
        """Create a weight of ``shape``, initialised by ``initializer`` (a name or callable).

        ``added_later``: a weight the layer gained after files of it were written (as
        Normalization's ``count``). A file without it still loads, leaving it at its
        initial value, so it is not charged against a loading file's weight budget."""
        shape = tuple(int(s) for s in (shape or ()))
        if not added_later:
            charge(self, shape)
        dtype = np.dtype(dtype or self.dtype)
        if initializer is None:
            is_float = np.issubdtype(dtype, np.floating)
            initializer = "glorot_uniform" if is_float else "zeros"
        init = initializers.get(initializer)
        value = np.asarray(init(shape, dtype=dtype), dtype=dtype)
        name = name or f"variable_{len(self._own_weights)}"
        variable = Variable(
            value, trainable=trainable, name=name, constraint=constraints.get(constraint)
        )
        variable.path = f"{self.name}/{variable.name}"
        self._own_weights.append(variable)
        if added_later:
            ADDED_LATER.add(variable)
        regularizer = regularizers.get(regularizer)
        if regularizer is not None:
            self._regularized.append((variable, regularizer))
        return variable

    def _all_weights(self) -> list[Variable]:
        seen: set[int] = set()
        result: list[Variable] = []
        for v in [*self._own_weights, *self._tracked_variables]:
            if id(v) not in seen:
                seen.add(id(v))
                result.append(v)
        for layer in self._sublayers:
            for v in layer._all_weights():
                if id(v) not in seen:
                    seen.add(id(v))
                    result.append(v)
        return result

    @property
    def weights(self) -> list[Variable]:
        """All weights in Keras 3's order, which ``get_weights`` and ``set_weights`` use:
        the layer's own, those created trainable first, then the others (each group in
        creation order), then each sublayer's ``weights`` in turn. Freezing a layer does
        not move its weights, so a list taken before still fits after."""
        own = [*self._own_weights, *self._tracked_variables]
        result = _unique([v for v in own if v.trainable] + [v for v in own if not v.trainable])
        for layer in self._sublayers:
            result = _unique(result + layer.weights)
        return result

    @property
    def trainable_weights(self) -> list[Variable]:
        if not self.trainable:
            return []
        own = [v for v in [*self._own_weights, *self._tracked_variables] if v.trainable]
        result = _unique(own)
        for layer in self._sublayers:
            result = _unique(result + layer.trainable_weights)
        return result

    @property
    def non_trainable_weights(self) -> list[Variable]:
        trainable_ids = {id(v) for v in self.trainable_weights}
        return [v for v in self._all_weights() if id(v) not in trainable_ids]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights
    variables = weights

    @property
    def dtype_policy(self) -> Any:
        """Keras' ``DTypePolicy`` of the layer: its ``dtype`` for computations and weights
        (dendrite has no mixed precision)."""
        return _settings.DTypePolicy(dtype_name(str(self.dtype)))

    @property
    def path(self) -> str:
        """Keras' path of the layer: its name (dendrite has no name scopes); its weights'
        paths are ``<path>/<weight name>``."""
        return self.name

    def get_build_config(self) -> dict[str, Any] | None:
        """Keras': ``{"input_shape": shape}``, the shape the layer was built for (None
        before it was built). A model file keeps it; ``build_from_config`` rebuilds from it."""
        shape = getattr(self, "_build_input_shape", None)
        return None if shape is None else {"input_shape": shape}

    def build_from_config(self, config: dict[str, Any] | None) -> None:
        """Keras': build the layer from ``get_build_config``'s dict (``input_shape``, or
        ``shapes_dict`` for a build taking several shapes by name)."""
        if not config:
            return
        if "input_shape" in config:
            self._maybe_build(config["input_shape"])
        elif "shapes_dict" in config:
            self.build(**config["shapes_dict"])
            self.built = True

    def add_variable(
        self,
        shape: Sequence[int],
        initializer: Any,
        dtype: Any = None,
        trainable: bool = True,
        autocast: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
        name: str | None = None,
    ) -> Variable:
        """Keras 3's alias of ``add_weight`` (``autocast`` has no effect: dendrite computes
        in the weights' dtype)."""
        return self.add_weight(
            shape,
            initializer,
            dtype=dtype,
            trainable=trainable,
            regularizer=regularizer,
            constraint=constraint,
            name=name,
        )

    @property
    def compute_dtype(self) -> str:
        """The dtype the layer computes in (Keras' name): its ``dtype``; dendrite's
        policies never split computation and weights."""
        return self.dtype

    @property
    def variable_dtype(self) -> str:
        """The dtype of the layer's weights: its ``dtype``."""
        return self.dtype

    @property
    def input_dtype(self) -> str:
        """The dtype floating inputs are cast to on a call (with ``autocast``)."""
        return self.dtype

    def _own_variables(self) -> list[Variable]:
        """The layer's own variables (not its sublayers'), in ``weights`` order: the
        variables Keras' ``save_own_variables`` stores as ``"0"``, ``"1"``, ..."""
        inner = {id(v) for layer in self._sublayers for v in layer._all_weights()}
        own = {id(v) for v in [*self._own_weights, *self._tracked_variables]} - inner
        return [v for v in self.weights if id(v) in own]

    def save_own_variables(self, store: Any) -> None:
        """Keras 3's hook: put the layer's own variables in the dict-like ``store``
        (``"0"``, ``"1"``, ... in ``weights`` order). Override it, with
        ``load_own_variables``, to take control of what ``model.save`` writes."""
        for index, variable in enumerate(self._own_variables()):
            store[f"{index}"] = np.array(variable.data, copy=True)

    def load_own_variables(self, store: Any) -> None:
        """Keras 3's hook: assign the layer's own variables from ``store`` (what
        ``save_own_variables`` wrote), checking the count and every shape first."""
        variables = self._own_variables()
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"Layer '{self.name}' expected {len(variables)} variables, but received "
                f"{len(store.keys())} variables during loading. Expected: "
                f"{[v.name for v in variables]}"
            )
        values = [np.asarray(store[f"{index}"]) for index in range(len(variables))]
        for variable, value in zip(variables, values):
            if tuple(value.shape) != tuple(variable.data.shape):
                raise ValueError(
                    f"Layer '{self.name}' variable '{variable.name}' has shape "
                    f"{tuple(variable.data.shape)}; the store holds shape {tuple(value.shape)}."
                )
        for variable, value in zip(variables, values):
            variable.data[...] = value

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights as ndarrays, in ``weights`` order."""
        return [np.array(v.data, copy=True) for v in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the weights from ndarrays in ``weights`` order (Keras' layouts)."""
        params = self.weights
        weights = list(weights)
        if len(params) != len(weights):
            raise ValueError(
                f"Layer '{self.name}' expected {len(params)} weights, but received "
                f"{len(weights)} weights."
            )
        arrays = []
        for param, value in zip(params, weights):
            array = np.asarray(value)
            if array.shape != param.shape:
                raise ValueError(
                    f"Layer '{self.name}' weight shape {param.shape} is not compatible with "
                    f"provided weight shape {array.shape} (weight {param.path!r})."
                )
            arrays.append(array)
        for param, array in zip(params, arrays):
            param.data[...] = array

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(
                f"You tried to call count_params on layer '{self.name}', but the layer isn't "
                f"built. Call the layer on data, or build it with layer.build(input_shape), "
                f"or pass input_shape= to its constructor."
            )
        return int(sum(v.data.size for v in self.weights))

    @property
    def losses(self) -> list[Tensor]:
        """Penalties to add to the loss: weight regularizers, activity regularizers, add_loss."""
        result = list(self._call_losses)
        for variable, regularizer in self._regularized:
            result.append(regularizer(variable))
        for layer in self._sublayers:
            result.extend(layer.losses)
        return result

    def add_loss(self, loss: Any) -> None:
        """Add a scalar penalty (computed in ``call``) to the training loss."""
        self._call_losses.append(loss if isinstance(loss, Tensor) else Tensor(loss))

    # --- the layer's place in a functional graph -------------------------------------------
    # Keras' ``layer.output`` / ``layer.input``, e.g. for a feature-extraction
    # ``Model(inputs, layer.output)``.
    output = FirstCall("output", "outputs")
    input = FirstCall("input", "inputs")
    output_shape = FirstCallShape("output shape", "outputs")
    input_shape = FirstCallShape("input shape", "inputs")

    @property
    def layers(self) -> list[Layer]:
        return list(self._sublayers)

    def _descendants(self) -> list[Layer]:
        """Every layer nested in this one, at any depth, each once."""
        found: list[Layer] = []
        seen: set[int] = set()
        pending = list(self._sublayers)
        while pending:
            layer = pending.pop()
            if id(layer) not in seen:
                seen.add(id(layer))
                found.append(layer)
                pending.extend(layer.__dict__.get("_sublayers", ()))
        return found

    def _stateful_layers(self) -> list[Layer]:
        """The nested recurrent layers that keep states between calls (stateful=True)."""
        return [
            layer
            for layer in self._descendants()
            if getattr(layer, "stateful", False) and hasattr(layer, "reset_states")
        ]

    # --- building and calling -------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        """Create the weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        self.built = True

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        return inputs

    def fuse(self, following: Layer) -> Callable[[Any], Any] | None:
        """A function computing ``following(self(x))`` as one fused primitive, or None (the
        default: the two layers run one after the other). A model's execution plan asks
        this once for each call that only the next call consumes (``models/plan.py``); the
        function may still return None for inputs it cannot take."""
        return None

    def _maybe_build(self, input_shape: Any) -> None:
        if not self.built:
            # Kept so a model file can rebuild a subclassed model from its input shape.
            self._build_input_shape = input_shape
            self.build(input_shape)
            self.built = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            inputs, args = args[0], args[1:]
        else:
            inputs = kwargs.pop("inputs")
        # A plain Tensor (every layer call of a training step) is never symbolic.
        if type(inputs) is not Tensor and contains(inputs, KerasTensor):
            return symbolic_call(self, inputs, args, kwargs)
        inputs = self._convert(inputs)
        if not self.built:
            self._maybe_build(shape_of(inputs))
        if self.input_spec is not None:
            self._check_input_spec(inputs)
        takes_mask = call_arguments(type(self))[1]
        previous = CALL.training
        training = kwargs.pop("training", None)
        if training is None:
            training = previous
        if training_argument(type(self), training):
            kwargs["training"] = training
        mask = kwargs.pop("mask", None)
        if mask is None:
            mask = input_mask(inputs)
        if takes_mask and mask is not None:
            kwargs["mask"] = mask
        context = CALL
        if context.depth == 0:
            context.call_id = next(CALL_IDS)
        if self._losses_call_id != context.call_id:
            # Penalties from earlier forward passes go; a layer called twice in this pass
            # (shared) keeps both, as in Keras.
            # Straight into __dict__: these are never layers or weights to track.
            state = self.__dict__
            state["_call_losses"] = []
            state["_losses_call_id"] = context.call_id
        context.training = training
        context.depth += 1
        try:
            if self._remat_mode is None:
                outputs = self.call(inputs, *args, **kwargs)
            else:
                outputs = rematerialized_call(self, inputs, args, kwargs)
        finally:
            context.training = previous
            context.depth -= 1
        if mask is not None or self._computes_mask:
            attach_mask(outputs, self.compute_mask(inputs, mask))
        if self.activity_regularizer is not None:
            # Keras 3 adds the penalty of the whole batch (TF-Keras 2 divided by batch size).
            for out in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
                self._call_losses.append(self.activity_regularizer(out))
        return outputs

    _losses_call_id = -1
    # The RematScope this layer was created in (layers/remat.py), or None.
    _remat_mode = None

    # Layers that create a mask from their inputs (Embedding(mask_zero=True), Masking) set
    # this so compute_mask runs even when no mask came in.
    _computes_mask = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        users = not cls.__module__.startswith("dendrite.")
        # A user's layer that defines compute_mask makes masks, as in Keras 3, even when its
        # input has none (dendrite's own layers say so with _computes_mask).
        if "compute_mask" in cls.__dict__ and users:
            cls._computes_mask = True
        # A user's build need not set built nor call super().build(): as Keras does, the
        # layer counts as built once its build returns, also when the user calls build
        # directly (else the first call would build it again, over weights set meanwhile).
        if "build" in cls.__dict__ and users:
            cls.build = _marks_built(cls.__dict__["build"])

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The mask of the outputs: by default the input mask passes through layers that
        support masking and stops at the others."""
        return mask if self.supports_masking else None

    def _convert(self, inputs: Any) -> Any:
        if isinstance(inputs, Tensor):
            data = inputs.data
            if self.autocast and data.dtype.kind == "f" and data.dtype != self.dtype:
                from dendrite import ops

                return ops.cast(inputs, self.dtype)
            return inputs
        if isinstance(inputs, (list, tuple)):
            if inputs and isinstance(inputs[0], (Tensor, np.ndarray, list, tuple)):
                return [self._convert(item) for item in inputs]
        if isinstance(inputs, dict):
            return {k: self._convert(v) for k, v in inputs.items()}
        array = np.asarray(inputs)
        if array.dtype.kind == "f" and self.autocast and array.dtype != self.dtype:
            array = array.astype(self.dtype)
        return Tensor._make(array)

    def _check_input_spec(self, inputs: Any) -> None:
        spec = self.input_spec
        if isinstance(inputs, Tensor) and isinstance(spec, InputSpec):
            spec.check(self.name, 0, inputs.data.shape)  # one input, one spec: no lists
            return
        specs = spec if isinstance(spec, list) else [spec]
        items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        for index, (spec, x) in enumerate(zip(specs, items)):
            if spec is not None:
                spec.check(self.name, index, tuple(x.shape))

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Output shape for ``input_shape``, found by running the layer on placeholder data.
        Layers that know their shapes override this; building then never runs them on
        large placeholders (``symbolic.infer_output_specs``)."""
        return infer_output_shape(self, input_shape)

    compute_output_shape.runs_placeholders = True  # type: ignore[attr-defined]

    # True for layers that only move values (reshaping, padding, up-sampling): built from
    # shapes alone, their output keeps an integer input's dtype.
    keeps_input_dtype = False

    # --- configuration --------------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor arguments that rebuild this layer (weights excluded)."""
        config = {"name": self.name, "trainable": self.trainable, "dtype": dtype_name(self.dtype)}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class ShapePreservingLayer(Layer):
    """A layer whose output has its input's shape and mask (activations, noise, scaling):
    ``compute_output_shape`` is the identity and masks pass through."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)


def dtype_name(dtype: str) -> str:
    """The dtype as a config writes it: Keras' "string" for string inputs."""
    return "string" if dtype == "object" else dtype


def _marks_built(build: Callable) -> Callable:
    """``build`` that leaves the layer built, with the shape it was built for kept (a
    model file rebuilds a subclassed model from it)."""
    if getattr(build, "_marks_built", False):
        return build

    @functools.wraps(build)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = build(self, *args, **kwargs)
        shape = args[0] if args else kwargs.get("input_shape")
        if getattr(self, "_build_input_shape", None) is None and shape is not None:
            self._build_input_shape = shape
        self.built = True
        return result

    wrapped._marks_built = True  # type: ignore[attr-defined]
    return wrapped


def _unique(variables: list[Variable]) -> list[Variable]:
    seen: set[int] = set()
    result = []
    for v in variables:
        if id(v) not in seen:
            seen.add(id(v))
            result.append(v)
    return result
