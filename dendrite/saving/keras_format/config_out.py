"""dendrite's configs in Keras 3's spelling, so that ``keras.models.load_model`` reads
them: public Keras modules instead of dendrite's, dtype policies as Keras' dicts, op calls
as Keras' op nodes, a ``Functional`` model's registered name, and the top-level
``compile_config``."""

from __future__ import annotations

import inspect
from typing import Any

from dendrite.saving import architecture, compile_config
from dendrite.saving.architecture_checks import ACTIVATION_KEYS
from dendrite.saving.keras_format.op_names import keras_op_class, op_signature

# Keras layers whose constructors take fewer of the base options than dendrite writes.
UNTAKEN_BY_KERAS = {
    "SpatialDropout1D": ("trainable",),
    "SpatialDropout2D": ("trainable",),
    "SpatialDropout3D": ("trainable",),
}
MODEL_MODULES = {"Sequential": "keras", "Functional": "keras.src.models.functional"}


def keras_document(model: Any, include_optimizer: bool = True) -> dict[str, Any]:
    from dendrite.saving.keras_format.weight_map import keras_class_name

    entry = architecture.encode_model(model)
    entry = _keras(entry)
    kind = keras_class_name(model)
    if kind in MODEL_MODULES:
        entry["class_name"] = kind
        entry["module"] = MODEL_MODULES[kind]
        entry["registered_name"] = "Functional" if kind == "Functional" else None
    entry["build_config"] = entry.get("build_config") or {"input_shape": None}
    entry["compile_config"] = None
    own = compile_config.overrides_compile_protocol(type(model))
    if include_optimizer and getattr(model, "_compiled", False) and own:
        # Keras 3 stores what the model's get_compile_config returns and replays it with its
        # compile_from_config: a compile with its own arguments round-trips.
        entry["compile_config"] = compile_config.own_compile_config(model)
    elif include_optimizer and getattr(model, "_compiled", False):
        settings = compile_config.encode_compile(model)
        if settings is not None:
            settings["optimizer"] = _keras(settings["optimizer"])
            settings = {
                **_keras(settings),
                "run_eagerly": False,
                "steps_per_execution": 1,
                "jit_compile": False,
            }
            # After _keras: Keras writes these entries' dtypes as plain names.
            _schedule_module(settings["optimizer"])
            for key, kind in (
                ("loss", "loss"),
                ("metrics", "metric"),
                ("weighted_metrics", "metric"),
            ):
                settings[key] = _with_module(settings.get(key), kind)
        entry["compile_config"] = settings
    return entry


def _keras(node: Any) -> Any:
    if isinstance(node, list):
        return [_keras(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") == "OpLayer" and isinstance(node.get("config"), dict):
        return _op_node(node)
    config = node.get("config")
    if node.get("class_name") == "__keras_tensor__" and isinstance(config, dict):
        if config.get("dtype") == "object":  # a string tensor: Keras' dtype name
            node = {**node, "config": {**config, "dtype": "string"}}
    result = {key: _keras(value) for key, value in node.items()}
    module = result.get("module")
    if isinstance(module, str) and module.startswith("dendrite.") and "class_name" in result:
        result["module"] = _public_module(result["class_name"], module)
    config = result.get("config")
    if isinstance(config, dict) and isinstance(result.get("class_name"), str):
        for key in (*ACTIVATION_KEYS, "function"):
            if isinstance(config.get(key), str) and ">" in config[key]:
                config[key] = _function_entry(config[key])
    if isinstance(config, dict) and result.get("class_name") in UNTAKEN_BY_KERAS:
        config = {
            k: v for k, v in config.items() if k not in UNTAKEN_BY_KERAS[result["class_name"]]
        }
        result["config"] = config
    if "module" not in result and isinstance(config, dict) and _is_layer(result.get("class_name")):
        result = {"module": "keras.layers", **result, "registered_name": None}
    if "module" in result and isinstance(config, dict) and isinstance(config.get("dtype"), str):
        if result["class_name"] != "InputLayer":
            config["dtype"] = {
                "module": "keras",
                "class_name": "DTypePolicy",
                "config": {"name": config["dtype"]},
                "registered_name": None,
            }
    if (
        result.get("class_name") in MODEL_MODULES
        and isinstance(module, str)
        and module.startswith("dendrite.")
    ):
        result["module"] = MODEL_MODULES[result["class_name"]]
        if result["class_name"] == "Functional":
            result["registered_name"] = "Functional"
    return result


# The public module Keras names, in a compile config, for a built-in object of each kind.
COMPILE_MODULES = {
    "loss": "keras.losses",
    "metric": "keras.metrics",
    "schedule": "keras.optimizers.schedules",
}


def _with_module(node: Any, kind: str) -> Any:
    """``node`` (an entry, or the lists and per-output dicts of a compile config) with
    Keras' ``module`` on the entries of dendrite's built-in ``kind`` objects: Keras finds
    a class without a registered name only by its module (dendrite's compile document
    leaves it out). Custom objects keep their entries as they are."""
    if isinstance(node, list):
        return [_with_module(v, kind) for v in node]
    if not isinstance(node, dict):
        return node
    if "class_name" not in node:  # a dict by output name
        return {key: _with_module(value, kind) for key, value in node.items()}
    if "module" in node or not _builtin(kind, node["class_name"]):
        return node
    return {"module": COMPILE_MODULES[kind], **node, "registered_name": None}


def _schedule_module(optimizer: Any) -> None:
    """The optimizer's learning-rate schedule entry, if any, with Keras' module."""
    config = optimizer.get("config") if isinstance(optimizer, dict) else None
    if isinstance(config, dict) and isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = _with_module(config["learning_rate"], "schedule")
    # a MultiOptimizer: the optimizers of its OptimizerMap too
    entry = config.get("optimizer_map") if isinstance(config, dict) else None
    mapped = entry.get("config") if isinstance(entry, dict) else None
    if isinstance(mapped, dict):
        _schedule_module(mapped.get("default_optimizer"))
        if isinstance(mapped.get("optimizer_map"), dict):
            for inner in mapped["optimizer_map"].values():
                _schedule_module(inner)


def _builtin(kind: str, name: Any) -> bool:
    from dendrite import registry

    found = registry.find(kind, name, {})
    return found is not None and getattr(found, "__module__", "").startswith("dendrite.")


def _function_entry(name: str) -> dict[str, Any]:
    """A registered function as Keras serializes it (activations, Lambda functions)."""
    return {
        "module": "builtins",
        "class_name": "function",
        "config": name,
        "registered_name": "function",
    }


def _is_layer(name: Any) -> bool:
    from dendrite import registry

    return isinstance(name, str) and isinstance(registry.find("layer", name, {}), type)


def _public_module(class_name: str, module: str) -> str:
    for part, public in (
        (".layers.", "keras.layers"),
        (".optimizers", "keras.optimizers"),
        (".losses", "keras.losses"),
        (".metrics", "keras.metrics"),
        (".initializers", "keras.initializers"),
        (".regularizers", "keras.regularizers"),
        (".constraints", "keras.constraints"),
        (".schedules", "keras.optimizers.schedules"),
    ):
        if part in module + ".":
            return public
    if class_name in MODEL_MODULES:
        return MODEL_MODULES[class_name]
    return module


def _split_for_keras(
    function: Any,
    args: list,
    kwargs: dict[str, Any],
    built_with: tuple[str, ...],
    called_with: tuple[str, ...],
) -> tuple[dict[str, Any], list, dict[str, Any]]:
    """A recorded call ``function(*args, **kwargs)`` as Keras' op class takes it: the
    constructor's arguments by name, and the call's in the order of Keras' ``call``, each
    one not given taking the function's default (Keras' functions pass every one)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    named = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    given = {p.name: value for p, value in zip(named, args)}
    extra = list(args[len(named) :])  # taken by a ``*args``
    given.update(kwargs)
    settings = {k: v for k, v in given.items() if k in built_with}
    unbuilt = [p for p in parameters if p.name not in built_with and p.kind != p.VAR_KEYWORD]
    call_args: list = []
    for name in called_with:
        if name.startswith("*"):
            if name.startswith("**"):
                break
            call_args.extend(extra)
            continue
        if not unbuilt:
            break
        parameter = unbuilt.pop(0)
        if parameter.kind == parameter.VAR_POSITIONAL:
            call_args.extend(extra)
            continue
        default = None if parameter.default is parameter.empty else parameter.default
        call_args.append(given.pop(parameter.name, default))
    left = {k: v for k, v in given.items() if k not in settings}  # dendrite's own keywords
    return settings, call_args, left


def _op_node(node: dict[str, Any]) -> dict[str, Any]:
    from dendrite import ops

    config = node["config"]
    op = str(config.get("op"))
    arguments = dict(config.get("arguments") or {})
    args = list(arguments.get("args") or [])
    kwargs = dict(arguments.get("kwargs") or {})
    family, class_name = keras_op_class(op)
    signature = op_signature(family, class_name)
    if signature is None:  # not a Keras op: every keyword is kept with the node
        settings, called_with = kwargs, {}
    else:
        settings, args, called_with = _split_for_keras(
            getattr(ops, op, None), args, kwargs, *signature
        )
    inbound = node.get("inbound_nodes") or []
    tensors = []
    if inbound and isinstance(inbound[0], dict):
        called = inbound[0].get("args") or []
        tensors = called[0] if called and isinstance(called[0], list) else called

    def decode(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        if isinstance(value, dict) and "__slice__" in value:
            start, stop, step = (list(value["__slice__"]) + [None] * 3)[:3]
            return {
                "class_name": "__slice__",
                "config": {"start": decode(start), "stop": decode(stop), "step": decode(step)},
            }
        if isinstance(value, dict) and "__ellipsis__" in value:
            return {"class_name": "__ellipsis__", "config": {}}
        if isinstance(value, dict) and "__tuple__" in value:
            return [decode(v) for v in value["__tuple__"]]
        if isinstance(value, dict) and "__dict__" in value:
            return {k: decode(v) for k, v in value["__dict__"].items()}
        if isinstance(value, dict) and "__array__" in value:
            return {
                "class_name": "__numpy__",
                "config": {"value": value["__array__"], "dtype": value.get("dtype")},
            }
        if isinstance(value, list):
            return [decode(v) for v in value]
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        return value

    name = config.get("name") or node.get("name")
    return {
        "module": f"keras.src.ops.{family}",
        "class_name": class_name,
        "config": {"name": name, **{k: decode(v) for k, v in settings.items()}},
        "registered_name": class_name,
        "name": name,
        "inbound_nodes": [
            {"args": decode(args), "kwargs": {k: decode(v) for k, v in called_with.items()}}
        ],
    }


def _holds_tensor(value: Any) -> bool:
    if isinstance(value, dict):
        return "__tensor__" in value or any(_holds_tensor(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_tensor(v) for v in value)
    return False
