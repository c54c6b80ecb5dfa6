"""``MultiOptimizer`` and ``OptimizerMap``: Keras 3.15's way to train different variables
with different optimizers.

An ``OptimizerMap`` chooses an optimizer for a variable from its ``path``: an exact key
wins; otherwise every key is tried as a regular expression with ``re.fullmatch`` (so
``"encoder/.*"`` covers every weight of the layer ``encoder``, while ``"encoder"`` only
matches that exact path); a path no key matches gets the default optimizer, and a path
two patterns match is an error.

A ``MultiOptimizer`` wraps such a map (or any callable taking a variable and returning an
optimizer). ``build`` asks the map for the optimizer of each variable and builds every
inner optimizer on its own variables; each ``apply`` sends every (gradient, variable)
pair to the optimizer that owns the variable, which updates it with its own rule, its
own learning rate and its own ``iterations``; then the MultiOptimizer's ``iterations``
counts the step.

The state is laid out as Keras lays it out: the MultiOptimizer's ``iteration`` and
(unused) ``learning_rate``, then each inner optimizer's variables, in the order of
``optimizers`` (the map's optimizers in insertion order, then the default one, then any
the callable returned first during ``build``). ``variables``, ``get_weights`` and
``set_weights`` follow that order, so ``.keras`` files move between dendrite and Keras.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import Any

from dendrite.core import Variable
from dendrite.optimizers._utils import check_positive_or_none, variable_label
from dendrite.optimizers.loss_scale_optimizer import LossScaleOptimizer
from dendrite.optimizers.optimizer import Optimizer
from dendrite.optimizers.rmsprop import RMSprop
from dendrite.registry import register, serialization

_MAP_MODULE = "keras.optimizers"  # where Keras writes OptimizerMap's entry


def _refuse_wrappers(owner: str, optimizer: Any, what: str) -> None:
    """A ValueError when ``optimizer`` cannot serve inside a MultiOptimizer."""
    if not isinstance(optimizer, Optimizer):
        raise ValueError(
            f"{owner}: {what} must be a dendrite Optimizer instance. Received: "
            f"{optimizer!r} ({type(optimizer).__name__})"
        )
    if isinstance(optimizer, LossScaleOptimizer):
        raise ValueError(
            f"{owner}: {what} cannot be a LossScaleOptimizer. Received: {optimizer!r}. Set "
            "`loss_scale_factor` on the MultiOptimizer instead."
        )
    if isinstance(optimizer, MultiOptimizer):
        raise ValueError(
            f"{owner}: {what} cannot be a MultiOptimizer (they do not nest). Received: "
            f"{optimizer!r}"
        )


def _deserialize_optimizer(entry: Any, custom_objects: dict[str, Any] | None) -> Any:
    if isinstance(entry, Optimizer):
        return entry
    return serialization.deserialize_keras_object(
        entry,
        custom_objects=custom_objects,
        kinds=("optimizer",),
        printable_module_name="optimizer",
    )


def _fullmatch(pattern: str, path: str) -> bool:
    """Whether the key ``pattern``, read as a regular expression, matches all of ``path``."""
    try:
        return re.fullmatch(pattern, path) is not None
    except re.error as error:
        raise ValueError(
            f"OptimizerMap: the key {pattern!r} is neither the exact path {path!r} nor a "
            f"valid regular expression ({error})."
        ) from None


@register("optimizer_map")
class OptimizerMap(MutableMapping):
    """Variable path (or regular expression) -> optimizer, with a default.

    ``optimizer_map[path]`` is the optimizer of the variable at ``path``: the value of the
    key equal to ``path`` if there is one, else that of the only key that
    ``re.fullmatch``-es it, else ``default_optimizer``. ``optimizer_map(variable)`` looks
    up ``variable.path``.

    Example::

        opt_map = OptimizerMap(SGD(momentum=0.9), {"encoder/.*": Adam()})
        opt_map["decoder/kernel"] = RMSprop()   # an exact path
        model.compile(optimizer=MultiOptimizer(opt_map), loss="mse")

    Args:
        default_optimizer: the optimizer of every variable no key matches.
        optimizer_map: optional dict of initial entries (each checked as ``__setitem__``
            checks it).

    Raises:
        TypeError: ``default_optimizer`` is not an Optimizer, or ``optimizer_map`` is not a
            dict.
        ValueError: an entry is not a ``str`` -> Optimizer pair, or its optimizer is a
            LossScaleOptimizer or a MultiOptimizer.
    """

    def __init__(
        self, default_optimizer: Optimizer, optimizer_map: dict[str, Optimizer] | None = None
    ) -> None:
        if not isinstance(default_optimizer, Optimizer):
            raise TypeError(
                "OptimizerMap: `default_optimizer` must be a dendrite Optimizer instance. "
                f"Received: default_optimizer={default_optimizer!r}"
            )
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError(
                "OptimizerMap: `optimizer_map` must be a dict of variable path (or regular "
                f"expression) -> Optimizer. Received: optimizer_map={optimizer_map!r}"
            )
        _refuse_wrappers("OptimizerMap", default_optimizer, "`default_optimizer`")
        self._default_optimizer = default_optimizer
        self._optimizer_map: dict[str, Optimizer] = {}
        for key, optimizer in (optimizer_map or {}).items():
            self[key] = optimizer

    @property
    def default_optimizer(self) -> Optimizer:
        """The optimizer of the variables that no key matches."""
        return self._default_optimizer

    def __getitem__(self, key: str) -> Optimizer:
        """The optimizer for the path ``key`` (see the class docstring).

        Raises:
            ValueError: no exact key is ``key`` and more than one pattern matches it.
        """
        if key in self._optimizer_map:
            return self._optimizer_map[key]
        matches = [pattern for pattern in self._optimizer_map if _fullmatch(pattern, key)]
        if len(matches) > 1:
            raise ValueError(
                f"OptimizerMap: Multiple optimizers assigned to variable {key!r}: the "
                f"patterns {matches} all match it. Make the patterns exclusive, or add the "
                "exact path as a key."
            )
        if matches:
            return self._optimizer_map[matches[0]]
        return self._default_optimizer

    def __setitem__(self, key: str, optimizer: Optimizer) -> None:
        """Map the path or pattern ``key`` to ``optimizer``; a key is set only once."""
        if not isinstance(key, str):
            raise ValueError(
                "OptimizerMap: a key must be a string (a variable path or a regular "
                f"expression). Received: key={key!r} ({type(key).__name__})"
            )
        if key in self._optimizer_map:
            raise ValueError(
                f"OptimizerMap: {key!r} already exists in the OptimizerMap with value "
                f"{self._optimizer_map[key]!r}. Keys cannot be assigned twice: delete the "
                "key first to replace its optimizer."
            )
        _refuse_wrappers("OptimizerMap", optimizer, f"the optimizer for {key!r}")
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key: str) -> None:
        del self._optimizer_map[key]

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is one of the map's keys (exactly; not a pattern match)."""
        return key in self._optimizer_map

    def __len__(self) -> int:
        return len(self._optimizer_map)

    def __iter__(self) -> Iterator[str]:
        return iter(self._optimizer_map)

    def __call__(self, variable: Any) -> Optimizer:
        """The optimizer of ``variable`` (looked up by its ``path``)."""
        path = getattr(variable, "path", None)
        if not isinstance(path, str):
            raise ValueError(
                "OptimizerMap: a variable must have a string `path` to be mapped. "
                f"Received: {variable!r} with path={path!r}"
            )
        return self[path]

    def __repr__(self) -> str:
        entries = ", ".join(f"{key!r}: {opt.name!r}" for key, opt in self._optimizer_map.items())
        return f"<OptimizerMap default={self._default_optimizer.name!r}, {{{entries}}}>"

    # --- config -----------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """``default_optimizer`` and ``optimizer_map`` (key -> entry), each optimizer
        serialized as ``serialize_keras_object`` writes it."""
        return {
            "default_optimizer": serialization.serialize_keras_object(self._default_optimizer),
            "optimizer_map": serialization.serialize_keras_object(self._optimizer_map),
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> OptimizerMap:
        if not isinstance(config, dict) or "default_optimizer" not in config:
            raise ValueError(
                "OptimizerMap.from_config expects a dict with 'default_optimizer' and "
                f"'optimizer_map'. Received: {config!r}"
            )
        default = _deserialize_optimizer(config["default_optimizer"], custom_objects)
        entries = config.get("optimizer_map") or {}
        if not isinstance(entries, dict):
            raise ValueError(
                "OptimizerMap.from_config: 'optimizer_map' must be a dict of key -> "
                f"serialized optimizer. Received: {entries!r}"
            )
        mapping = {key: _deserialize_optimizer(e, custom_objects) for key, e in entries.items()}
        return cls(default, mapping)


def _serialize_map(optimizer_map: Any) -> Any:
    """Keras' entry for an OptimizerMap (its public module, no registered name); any other
    callable as ``serialize_keras_object`` writes it (a registered function or class)."""
    if type(optimizer_map) is OptimizerMap:
        return {
            "module": _MAP_MODULE,
            "class_name": "OptimizerMap",
            "config": optimizer_map.get_config(),
            "registered_name": None,
        }
    return serialization.serialize_keras_object(optimizer_map)


@register("optimizer")
class MultiOptimizer(Optimizer):
    """Train each variable with the optimizer an ``OptimizerMap`` (or a callable) picks.

    Example::

        optimizer = MultiOptimizer(
            OptimizerMap(SGD(momentum=0.9), {"encoder_dense/.*": Adam()})
        )
        model.compile(optimizer=optimizer, loss="mse")

    ``optimizers`` lists the inner optimizers; read or set their learning rates, their
    ``iterations`` and their options there. ``learning_rate`` is not defined on the
    MultiOptimizer itself (each inner optimizer has its own): reading or setting it raises
    AttributeError, as in Keras. ``iterations`` counts the MultiOptimizer's steps.

    Args:
        optimizer_map: an ``OptimizerMap``, or a callable taking a variable and returning
            its optimizer (neither a LossScaleOptimizer nor a MultiOptimizer). Keras
            requires it; dendrite defaults to ``OptimizerMap(RMSprop())`` (one RMSprop,
            ``compile``'s default, for everything) so that, like every registered
            optimizer, ``optimizers.get("multioptimizer")`` builds one.
        loss_scale_factor: if set, ``scale_loss`` multiplies the loss by it and every inner
            optimizer divides its gradients by it. It replaces the inner optimizers' own
            ``loss_scale_factor`` (None included), as in Keras.
        name: the optimizer's name; default "multi_optimizer".
    """

    def __init__(
        self,
        optimizer_map: OptimizerMap | Callable[[Any], Optimizer] | None = None,
        loss_scale_factor: float | None = None,
        name: str | None = None,
    ) -> None:
        if optimizer_map is None:
            optimizer_map = OptimizerMap(RMSprop())
        if not isinstance(optimizer_map, OptimizerMap) and (
            not callable(optimizer_map) or isinstance(optimizer_map, (Optimizer, type))
        ):
            hint = (
                " Wrap a dict in OptimizerMap(default, {...})."
                if isinstance(optimizer_map, dict)
                else ""
            )
            raise TypeError(
                "MultiOptimizer: `optimizer_map` must be an OptimizerMap or a callable taking "
                f"a variable and returning its optimizer. Received: optimizer_map="
                f"{optimizer_map!r} ({type(optimizer_map).__name__}).{hint}"
            )
        self._inner_optimizers: list[Optimizer] = []
        super().__init__(learning_rate=0.0, loss_scale_factor=loss_scale_factor, name=name)
        self._optimizer_map = optimizer_map
        self._owner: dict[int, int] = {}  # id(variable) -> index in _inner_optimizers
        known: list[Optimizer] = []
        if hasattr(optimizer_map, "values"):
            known.extend(optimizer_map.values())
        default = getattr(optimizer_map, "default_optimizer", None)
        if default is not None:
            known.append(default)
        for optimizer in known:
            self._adopt(optimizer)

    def _adopt(self, optimizer: Optimizer) -> int:
        """The index of ``optimizer`` in ``optimizers``, appending it (with this
        optimizer's ``loss_scale_factor``) when it is new."""
        for index, inner in enumerate(self._inner_optimizers):
            if inner is optimizer:
                return index
        optimizer.loss_scale_factor = self.loss_scale_factor
        self._inner_optimizers.append(optimizer)
        return len(self._inner_optimizers) - 1

    # --- state ------------------------------------------------------------------------------
    def build(self, variables: Sequence[Variable]) -> None:
        """Assign each variable to the optimizer the map picks for it, then build every
        inner optimizer on its own variables (in the order given)."""
        if self.built:
            return
        variables = list(variables)
        chosen: list[Optimizer] = []
        for variable in variables:
            optimizer = self._optimizer_map(variable)
            _refuse_wrappers(
                f"MultiOptimizer {self.name!r}",
                optimizer,
                f"the optimizer chosen for variable {variable_label(variable)!r}",
            )
            chosen.append(optimizer)
        super().build(variables)  # checks the variables (floating point, no repeats)
        self._scratch = []  # the inner optimizers do the arithmetic
        self._grad_buffers = []
        groups: dict[int, list[Variable]] = {}
        for variable, optimizer in zip(variables, chosen):
            index = self._adopt(optimizer)
            self._owner[id(variable)] = index
            groups.setdefault(index, []).append(variable)
        for index, optimizer in enumerate(self._inner_optimizers):
            own = groups.get(index)
            if not own:
                continue
            if optimizer.built:
                if [id(v) for v in optimizer._trainable_variables] != [id(v) for v in own]:
                    raise ValueError(
                        f"MultiOptimizer {self.name!r}: the inner optimizer "
                        f"{optimizer.name!r} is already built on other variables "
                        f"({[variable_label(v) for v in optimizer._trainable_variables]}); "
                        f"expected {[variable_label(v) for v in own]}. Give the "
                        "MultiOptimizer fresh optimizers."
                    )
                continue
            optimizer.build(own)

    @property
    def optimizers(self) -> list[Optimizer]:
        """The inner optimizers, in the order of their state in ``variables``."""
        return list(self._inner_optimizers)

    @property
    def optimizer_map(self) -> OptimizerMap | Callable[[Any], Optimizer]:
        """The map (or callable) this optimizer was created with."""
        return self._optimizer_map

    @property
    def variables(self) -> list[Variable]:
        """This optimizer's ``iteration`` and ``learning_rate``, then each inner optimizer's
        variables (Keras' order)."""
        result = self._variables[:]
        for optimizer in self._inner_optimizers:
            result.extend(optimizer.variables)
        return result

    @property
    def learning_rate(self) -> float:
        raise AttributeError(
            "Learning rate cannot be accessed on a MultiOptimizer. Access the learning rate "
            "on the individual sub-optimizers instead (MultiOptimizer.optimizers)."
        )

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        raise AttributeError(
            "Learning rate cannot be set on a MultiOptimizer. Set the learning rate on the "
            f"individual sub-optimizers instead (MultiOptimizer.optimizers). Received: {value!r}"
        )

    @property
    def loss_scale_factor(self) -> float | None:
        """The loss scale; setting it sets every inner optimizer's too."""
        return self.__dict__.get("_loss_scale_factor")

    @loss_scale_factor.setter
    def loss_scale_factor(self, value: float | None) -> None:
        value = check_positive_or_none("loss_scale_factor", value)
        self._loss_scale_factor = value
        for optimizer in self.__dict__.get("_inner_optimizers", []):
            optimizer.loss_scale_factor = value

    # --- applying gradients -----------------------------------------------------------------
    def apply(
        self, grads: Sequence[Any], trainable_variables: Sequence[Variable] | None = None
    ) -> None:
        """Send each gradient to the optimizer of its variable, then count the step.

        ``trainable_variables`` may be omitted once the optimizer is built (the gradients
        then follow the order of the variables it was built with).
        """
        grads = list(grads)
        if not grads:
            return
        variables = self._variables_for(grads, trainable_variables)
        per_optimizer: dict[int, tuple[list[Any], list[Variable]]] = {}
        for grad, variable in zip(grads, variables):
            index = self._owner.get(id(variable))
            if index is None:
                raise ValueError(
                    f"MultiOptimizer {self.name!r} was not built on variable "
                    f"{variable_label(variable)!r}; expected one of "
                    f"{[variable_label(v) for v in self._trainable_variables]}."
                )
            sub_grads, sub_vars = per_optimizer.setdefault(index, ([], []))
            sub_grads.append(grad)
            sub_vars.append(variable)
        for index, optimizer in enumerate(self._inner_optimizers):
            if index in per_optimizer:
                optimizer.apply(*per_optimizer[index])
        self._iterations.data += 1

    def finalize_variable_values(self, var_list: Sequence[Variable]) -> None:
        """Each inner optimizer's ``finalize_variable_values`` on its own variables."""
        groups: dict[int, list[Variable]] = {}
        for variable in var_list:
            index = self._owner.get(id(variable))
            if index is not None:
                groups.setdefault(index, []).append(variable)
        for index, optimizer in enumerate(self._inner_optimizers):
            if index in groups:
                optimizer.finalize_variable_values(groups[index])

    # --- config -----------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The serialized ``optimizer_map``, ``loss_scale_factor`` and ``name`` (Keras'
        keys: none of the base optimizer's other arguments)."""
        return {
            "optimizer_map": _serialize_map(self._optimizer_map),
            "loss_scale_factor": self.loss_scale_factor,
            "name": self.name,
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> MultiOptimizer:
        config = dict(config)
        entry = config.pop("optimizer_map", None)
        if isinstance(entry, (dict, str)):
            entry = serialization.deserialize_keras_object(
                entry,
                custom_objects=custom_objects,
                module_objects={"OptimizerMap": OptimizerMap},
                printable_module_name="optimizer map",
            )
        return cls(entry, **config)

    def __repr__(self) -> str:
        inner = ", ".join(repr(optimizer) for optimizer in self._inner_optimizers)
        return (
            f"<{type(self).__name__} name={self.name!r}, iterations="
            f"{int(self._iterations.data)}, optimizers=[{inner}]>"
        )
