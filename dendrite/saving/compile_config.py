"""The compile settings and optimizer state of a saved model.

``encode_compile`` writes what ``model.compile`` was given (optimizer config, loss,
loss_weights, metrics) by name; ``decode_compile`` turns it back into compile arguments,
resolving custom names through the registry. The optimizer's state (``iterations``, the
learning rate, every slot) is saved as safetensors in ``optimizer.variables`` order, with
the indices of the model's trainable weights it was built on, so loading can rebuild it on
the same weights and continue exactly.
"""

from __future__ import annotations

import warnings
from typing import Any

from dendrite import registry
from dendrite.registry import custom_objects as registration
from dendrite.saving.errors import ModelLoadError
from dendrite.saving.safetensors_io import tensors_to_bytes
from dendrite.saving.weights import check_against, load_into, variables_to_dict


# --- saving -------------------------------------------------------------------------------
def encode_compile(model: Any) -> dict[str, Any] | None:
    """The compile arguments of ``model`` as JSON values (None if not compiled)."""
    if not getattr(model, "_compiled", False):
        return None
    compiled_loss = getattr(model, "compiled_loss", None)
    return {
        "optimizer": encode_optimizer(model.optimizer),
        "loss": _encode(getattr(model, "loss", None), "loss"),
        "loss_weights": None if compiled_loss is None else compiled_loss.loss_weights,
        "metrics": _encode(_spec(model, "compiled_metrics"), "metric"),
        "weighted_metrics": _encode(_spec(model, "compiled_weighted_metrics"), "metric"),
    }


def _spec(model: Any, attribute: str) -> Any:
    holder = getattr(model, attribute, None)
    return None if holder is None else holder.spec


def encode_optimizer(optimizer: Any) -> dict[str, Any] | None:
    if optimizer is None:
        return None
    from dendrite import optimizers

    try:
        entry = optimizers.serialize(optimizer)
    except TypeError as error:
        raise ValueError(f"Cannot save the optimizer: {error}") from None
    if registration.is_registered(type(optimizer)):
        entry["registered_name"] = registration.get_registered_name(type(optimizer))
    return entry


def _encode(spec: Any, kind: str) -> Any:
    """A loss or metric spec (name, object, function, or a list/dict of them) as JSON."""
    from dendrite import losses, metrics

    if spec is None or isinstance(spec, (str, int, float, bool)):
        return spec
    if isinstance(spec, (list, tuple)):
        return [_encode(item, kind) for item in spec]
    if isinstance(spec, dict):
        return {str(key): _encode(value, kind) for key, value in spec.items()}
    if isinstance(spec, (losses.Loss, metrics.Metric)):
        if type(spec) is metrics.MeanMetricWrapper:
            return _function_name(spec._fn, kind)
        fn = getattr(spec, "fn", None)
        if type(spec) is losses.LossFunctionWrapper and _function_name(fn, kind, False) is None:
            return _function_name(fn, kind)
        entry = {"class_name": type(spec).__name__, "config": spec.get_config()}
        if registration.is_registered(type(spec)):
            entry["registered_name"] = registration.get_registered_name(type(spec))
        return entry
    if isinstance(spec, type):
        return registration.get_registered_name(spec)
    if callable(spec):
        return _function_name(spec, kind)
    raise ValueError(f"Cannot save the {kind} {spec!r} in the compile settings.")


def _function_name(fn: Any, kind: str, fallback: bool = True) -> str | None:
    name = getattr(fn, "__name__", None)
    builtin = registry.name_of("loss", fn)
    if builtin is not None and not isinstance(fn, type):
        return builtin
    if registration.is_registered(fn):
        return registration.get_registered_name(fn)
    if not fallback:
        return None
    warnings.warn(
        f"The {kind} function {name!r} is not registered: the saved model will compile only "
        f"if it is passed in custom_objects when loading. Decorate it with "
        f"@dendrite.saving.register_keras_serializable(package='my_package').",
        stacklevel=4,
    )
    return str(name)


# --- loading --------------------------------------------------------------------------------
def decode_compile(config: Any, custom_objects: dict[str, Any], what: str) -> dict[str, Any]:
    """Arguments for ``model.compile`` from ``encode_compile``'s output."""
    if not isinstance(config, dict):
        raise ModelLoadError(f"{what}: compile_config must be an object.")
    unknown = set(config) - {"optimizer", "loss", "loss_weights", "metrics", "weighted_metrics"}
    if unknown:
        raise ModelLoadError(f"{what}: compile_config has unknown keys {sorted(unknown)}.")
    weights = config.get("loss_weights")
    if not _numbers(weights):
        raise ModelLoadError(f"{what}: loss_weights must be numbers (a list or an object).")
    return {
        "optimizer": decode_optimizer(config.get("optimizer"), custom_objects, what),
        "loss": _decode(config.get("loss"), "loss", custom_objects, what),
        "loss_weights": weights,
        "metrics": _decode(config.get("metrics"), "metric", custom_objects, what),
        "weighted_metrics": _decode(config.get("weighted_metrics"), "metric", custom_objects, what),
    }


def _numbers(value: Any) -> bool:
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    if isinstance(value, list):
        return all(_numbers(v) and not isinstance(v, (list, dict)) for v in value)
    if isinstance(value, dict):
        return all(_numbers(v) and not isinstance(v, (list, dict)) for v in value.values())
    return False


def decode_optimizer(entry: Any, custom_objects: dict[str, Any], what: str) -> Any:
    from dendrite import optimizers

    if entry is None:
        return "rmsprop"
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise ModelLoadError(f"{what}: the optimizer must be {{'class_name', 'config'}}.")
    if not isinstance(entry.get("config", {}), dict):
        raise ModelLoadError(f"{what}: the optimizer config must be an object.")
    name = _found_name("optimizer", entry, custom_objects)
    if name is None:
        name = entry.get("registered_name") or entry["class_name"]
        raise ModelLoadError(f"{what}: {registration.how_to_register('optimizer', name)}")
    try:
        return optimizers.deserialize(
            {"class_name": name, "config": entry.get("config") or {}},
            custom_objects=custom_objects,
        )
    except Exception as error:
        raise ModelLoadError(
            f"{what}: the optimizer {entry['class_name']!r} could not be rebuilt: "
            f"{type(error).__name__}: {error}"
        ) from None


def _found_name(kind: str, entry: dict[str, Any], custom_objects: dict[str, Any]) -> Any:
    """The name under which the registry finds the class of a saved entry: its registered
    name, else its class name; None when neither resolves to a class."""
    for name in (entry.get("registered_name"), entry.get("class_name")):
        if isinstance(name, str) and isinstance(registry.find(kind, name, custom_objects), type):
            return name
    return None


def _decode(spec: Any, kind: str, custom_objects: dict[str, Any], what: str) -> Any:
    if spec is None or isinstance(spec, (int, float, bool)):
        return spec
    if isinstance(spec, list):
        return [_decode(item, kind, custom_objects, what) for item in spec]
    if isinstance(spec, str):
        found = registry.find(kind, spec, custom_objects)
        if found is None:
            raise ModelLoadError(f"{what}: {registration.how_to_register(kind, spec)}")
        # a built-in stays a name, so that compile resolves it as it did ("accuracy")
        return spec if registry.name_of(kind, found) is not None else found
    if isinstance(spec, dict) and "class_name" in spec:
        name = spec.get("registered_name") or spec["class_name"]
        if not isinstance(name, str) or not isinstance(spec.get("config", {}), dict):
            raise ModelLoadError(f"{what}: a {kind} entry is malformed.")
        found_name = _found_name(kind, spec, custom_objects)
        if found_name is None:
            raise ModelLoadError(f"{what}: {registration.how_to_register(kind, name)}")
        cls = registry.get(kind, found_name, custom_objects)
        try:
            return cls.from_config(dict(spec.get("config") or {}))
        except Exception as error:
            raise ModelLoadError(
                f"{what}: the {kind} {name!r} could not be rebuilt: {type(error).__name__}: {error}"
            ) from None
    if isinstance(spec, dict):
        return {key: _decode(value, kind, custom_objects, what) for key, value in spec.items()}
    raise ModelLoadError(f"{what}: cannot read the {kind} {spec!r}.")


# --- optimizer state ------------------------------------------------------------------------
def encode_optimizer_state(model: Any) -> tuple[dict[str, Any], bytes] | None:
    """(description, safetensors bytes) of the optimizer's variables, or None."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "variables"):
        return None
    built_on: list[int] | None = None
    if getattr(optimizer, "built", False):
        positions = {id(v): i for i, v in enumerate(model.trainable_weights)}
        built_on = []
        for variable in getattr(optimizer, "_trainable_variables", []):
            if id(variable) not in positions:
                raise ValueError(
                    f"Cannot save the optimizer state: it updates {variable!r}, which is not "
                    f"a trainable weight of the model."
                )
            built_on.append(positions[id(variable)])
    payload = tensors_to_bytes(variables_to_dict(optimizer.variables))
    return {"built_on": built_on, "class_name": type(optimizer).__name__}, payload


def restore_optimizer_state(
    model: Any,
    description: Any,
    members: Any,
    member: str,
    what: str,
    check_only: bool = False,
) -> None:
    """Build the model's optimizer on the saved weights and load its variables from the
    safetensors member ``member`` of the archive ``members``. Every count, shape and dtype
    is checked against the member's header before its data is inflated or written."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return
    if not isinstance(description, dict):
        raise ModelLoadError(f"{what}: optimizer_state must be an object.")
    saved_class = description.get("class_name")
    if saved_class is not None and saved_class != type(optimizer).__name__:
        raise ModelLoadError(
            f"{what}: the optimizer state is for {saved_class!r} but the model's optimizer is "
            f"{type(optimizer).__name__!r}."
        )
    built_on = description.get("built_on")
    trainable = model.trainable_weights
    if built_on is not None:
        if not isinstance(built_on, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(trainable)
            for i in built_on
        ):
            raise ModelLoadError(
                f"{what}: optimizer_state.built_on must list indices of the model's "
                f"{len(trainable)} trainable weights."
            )
        if len(set(built_on)) != len(built_on):
            raise ModelLoadError(f"{what}: optimizer_state.built_on repeats a weight.")
    infos, _ = members.header(member)
    if built_on is not None and not optimizer.built:
        try:
            optimizer.build([trainable[i] for i in built_on])
        except Exception as error:
            raise ModelLoadError(
                f"{what}: the optimizer could not be built: {type(error).__name__}: {error}"
            ) from None
    owner = f"optimizer '{getattr(optimizer, 'name', type(optimizer).__name__)}'"
    check_against(optimizer.variables, infos, f"{what} (optimizer state)", owner)
    if not check_only:
        load_into(optimizer.variables, members[member], f"{what} (optimizer state)", owner)


# --- a model's own compile protocol (Keras 3: get_compile_config / compile_from_config) -----
def overrides_compile_protocol(cls: Any) -> bool:
    """Whether a model class defines its own ``get_compile_config`` or
    ``compile_from_config`` (its ``compile`` takes other arguments): its file then stores
    that config and loading replays it. The trainer's own methods carry ``keras_default``
    (saving sits below training, so no import of it here)."""
    if not isinstance(cls, type) or not hasattr(cls, "compile_from_config"):
        return False
    return not (
        getattr(cls.get_compile_config, "keras_default", False)
        and getattr(cls.compile_from_config, "keras_default", False)
    )


def own_compile_config(model: Any) -> Any:
    """The model's own ``get_compile_config()`` as JSON values (Keras' dict forms)."""
    from dendrite.registry.serialization import serialize_keras_object

    return serialize_keras_object(model.get_compile_config())


def replay_own_compile(model: Any, config: Any, custom: dict[str, Any], what: str) -> None:
    """``model.compile_from_config(config)`` with the file's custom objects in scope."""
    from dendrite.registry import custom_objects as registration

    if not isinstance(config, dict):
        raise ModelLoadError(f"{what}: compile_config must be an object.")
    try:
        with registration.CustomObjectScope(custom):
            model.compile_from_config(config)
    except Exception as error:
        raise ModelLoadError(
            f"{what}: {type(model).__name__}.compile_from_config failed: "
            f"{type(error).__name__}: {error}. Pass compile=False to load the model without "
            f"compiling it."
        ) from None


def compile_from_file(model: Any, arguments: dict[str, Any], what: str) -> None:
    """``model.compile(**arguments)`` with the file's saved settings, or a ModelLoadError
    naming the file and saying how to load without them."""
    try:
        model.compile(**arguments)
    except Exception as error:
        raise ModelLoadError(
            f"{what}: the saved compile settings do not work: {type(error).__name__}: "
            f"{error}. Pass compile=False to load the model without them."
        ) from None


def uses_own_protocol(entry: dict, custom: dict) -> bool:
    """``overrides_compile_protocol`` for the model class a config entry names."""
    cls = registry.find_entry("layer", entry["class_name"], entry.get("registered_name"), custom)
    return overrides_compile_protocol(cls)
