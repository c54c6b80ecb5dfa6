"""The optimizer's variables in Keras' order (``optimizer/vars/<i>``).

Both keep ``iterations`` and the learning rate (when it is a number) first. dendrite then
keeps one block per kind of slot (every ``momentum``, then every ``velocity``); Keras
interleaves the kinds it creates in one ``add_optimizer_variables`` call, variable by
variable (Adam: ``m0, v0, m1, v1, ...``, then AMSGrad's ``velocity_hat`` block). The
optimizer is built on the model's trainable weights, in order, as Keras builds it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dendrite.saving.errors import ModelLoadError

# Keras' add_optimizer_variables calls, per optimizer: the kinds each call interleaves.
KERAS_CALLS = {
    "Adam": (("momentum", "velocity"), ("velocity_hat",)),
    "AdamW": (("momentum", "velocity"), ("velocity_hat",)),
    "Nadam": (("momentum", "velocity"),),
    "Adamax": (("momentum", "norm"),),
    "Lamb": (("momentum", "velocity"),),
    "Adadelta": (("accumulated_grad", "accumulated_delta_var"),),
    "Ftrl": (("accumulator", "linear"),),
    # per variable: its row and column factors (0-d int32 placeholders below rank 2), then
    # its velocity
    "Adafactor": (("factored_row", "factored_column", "velocity"),),
    "ScheduleFreeAdamW": (("momentum", "velocity"),),
}
KINDS = (
    "gradient_accumulator",  # before "accumulator", which it ends with
    "velocity_hat",
    "average_gradient",
    "accumulated_delta_var",
    "accumulated_grad",
    "momentum",
    "velocity",
    "accumulator",
    "linear",
    "norm",
    "factored_row",
    "factored_column",
)
BASE_NAMES = ("iteration", "iterations", "learning_rate")


def keras_ordered(optimizer: Any, trainable: list) -> list[Any]:
    """``optimizer.variables`` in Keras' order; the optimizer must be built on
    ``trainable`` (the model's trainable weights)."""
    nested = _nested(optimizer)
    if nested is not None:  # MultiOptimizer: its own variables, then each inner one's
        own = list(optimizer.variables)[
            : len(optimizer.variables) - sum(len(o.variables) for o in nested)
        ]
        for inner in nested:
            own += keras_ordered(inner, list(inner._trainable_variables) if inner.built else [])
        return own
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is not None:  # LossScaleOptimizer: its own variables, then the inner one's
        variables = list(optimizer.variables)
        own = variables[: len(variables) - len(inner.variables)]
        return own + keras_ordered(inner, trainable)
    if getattr(optimizer, "variables_in_keras_order", False):
        return list(optimizer.variables)  # built in Keras' order (Muon: ragged slots)
    variables = list(optimizer.variables)
    base = 0
    while base < len(variables) and _short_name(variables[base]) in BASE_NAMES:
        base += 1
    end = len(variables)
    while end > base and _kind(variables[end - 1], None) not in KINDS:
        end -= 1  # trailing scalars (Nadam's u_product) stay last, as in Keras
    slots, tail = variables[base:end], variables[end:]
    count = len(trainable)
    if not slots:
        return variables
    if count == 0 or len(slots) % count:
        raise ValueError(
            f"The optimizer {type(optimizer).__name__} has {len(slots)} slot variables for "
            f"{count} trainable weights: its state cannot be laid out as Keras does."
        )
    kinds = len(slots) // count
    blocks = [slots[k * count : (k + 1) * count] for k in range(kinds)]
    names = [_kind(block[0], trainable[0]) for block in blocks]
    calls = KERAS_CALLS.get(type(optimizer).__name__)
    groups: list[list[int]] = []
    if calls is not None:
        for call in calls:
            members = [names.index(kind) for kind in call if kind in names]
            if members:
                groups.append(members)
    placed = {k for group in groups for k in group}
    groups += [[k] for k in range(kinds) if k not in placed]
    # Keras creates the base class' blocks (EMA averages, gradient accumulators) first
    groups.sort(key=min)
    ordered = variables[:base]
    for group in groups:
        for i in range(count):
            ordered.extend(blocks[k][i] for k in group)
    return ordered + tail


def _nested(optimizer: Any) -> list | None:
    """A MultiOptimizer's inner optimizers (its ``optimizers`` list), else None."""
    inner = getattr(type(optimizer), "optimizers", None)
    return list(optimizer.optimizers) if isinstance(inner, property) else None


def _short_name(variable: Any) -> str:
    return str(getattr(variable, "name", "")).rsplit("/", 1)[-1]


def _kind(slot: Any, first: Any) -> str:
    name = _short_name(slot)
    for kind in KINDS:
        if name.endswith(kind):
            return kind
    return name


def build_on(model: Any) -> list:
    optimizer = model.optimizer
    trainable = list(model.trainable_weights)
    if not getattr(optimizer, "built", False):
        optimizer.build(trainable)
    return trainable


def restore(model: Any, store: Any, what: str, strict: bool = True) -> bool:
    """Load ``optimizer/vars`` of a Keras store into the model's optimizer; every shape is
    checked before any value changes. Returns whether the state was loaded."""
    group = store.groups.get("optimizer/vars")
    optimizer = getattr(model, "optimizer", None)
    if group is None or optimizer is None:
        return False
    try:
        if not getattr(optimizer, "built", False) and len(group) == len(optimizer.variables):
            ordered = list(optimizer.variables)  # saved before any step: no slots yet
        else:
            ordered = keras_ordered(optimizer, build_on(model))
    except Exception as error:
        raise ModelLoadError(
            f"{what}: the optimizer could not be built: {type(error).__name__}: {error}"
        ) from None
    problem = None
    if sorted(group) != list(range(len(ordered))):
        problem = (
            f"the file holds {len(group)} optimizer variables but "
            f"{type(optimizer).__name__} '{optimizer.name}' has {len(ordered)} on this model"
        )
    else:
        for index, variable in enumerate(ordered):
            shape, dtype = (
                store.shape("optimizer/vars", index),
                store.dtype("optimizer/vars", index),
            )
            want = np.dtype(variable.data.dtype)
            if shape != tuple(variable.data.shape) or dtype.kind != want.kind:
                problem = (
                    f"optimizer variable {index} ({_short_name(variable)}) is {dtype}{shape} "
                    f"in the file but {want}{tuple(variable.data.shape)} in dendrite"
                )
                break
    if problem is not None:
        if strict:
            raise ModelLoadError(
                f"{what}: {problem}. Pass compile=False to load the model without its optimizer."
            )
        warnings.warn(f"Skipping the optimizer state of {what}: {problem}.", stacklevel=3)
        return False
    values = [store.read("optimizer/vars", i) for i in range(len(ordered))]
    for variable, value in zip(ordered, values):
        variable.data[...] = value.astype(variable.data.dtype)
    return True


def arrays(model: Any) -> list[np.ndarray] | None:
    """The optimizer's variables in Keras' order (None without an optimizer)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "variables"):
        return None
    trainable = list(model.trainable_weights)
    if getattr(optimizer, "built", False):
        built = list(getattr(optimizer, "_trainable_variables", trainable))
        if [id(v) for v in built] != [id(v) for v in trainable]:
            trainable = built
    ordered = (
        keras_ordered(optimizer, trainable)
        if getattr(optimizer, "built", False)
        else list(optimizer.variables)
    )
    return _saved(ordered)


def _saved(ordered: list) -> list[np.ndarray]:
    result = []
    for variable in ordered:
        value = np.asarray(variable.data)
        if _short_name(variable) in ("iteration", "iterations"):
            value = value.astype("int32")
        result.append(value)
    return result


def nested_groups(model: Any) -> dict[str, tuple[str, list[np.ndarray]]]:
    """A MultiOptimizer's inner optimizers' groups, as Keras also writes them:
    ``optimizer/optimizers/<class name in snake case, _1, _2 for repeats>`` -> (name,
    variables in Keras' order); empty for any other optimizer."""
    from dendrite.registry.naming import snake_case

    nested = _nested(getattr(model, "optimizer", None))
    groups: dict[str, tuple[str, list[np.ndarray]]] = {}
    used: dict[str, int] = {}
    for inner in nested or []:
        name = snake_case(type(inner).__name__)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        ordered = (
            keras_ordered(inner, list(inner._trainable_variables))
            if inner.built
            else list(inner.variables)
        )
        groups[f"optimizer/optimizers/{name}"] = (str(inner.name), _saved(ordered))
    return groups
