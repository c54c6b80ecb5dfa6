"""Keras 3's config spellings, translated to dendrite's before the checks and the build.

Keras writes options dendrite has no use for when they hold their defaults (``ragged``,
``optional`` and ``sparse`` on inputs, ``quantization_config``, LoRA settings, the axes
of variance-scaling initializers, ...); those are dropped. A dtype policy becomes its
dtype name. Any other option dendrite lacks stays in the config, so that the layer's
constructor refuses it by name: never a half-loaded model.
"""

from __future__ import annotations

from typing import Any

from dendrite.saving.errors import ModelLoadError

# option -> the values it may hold to be dropped (the Keras defaults dendrite implements)
DROPPED_WHEN = {
    "ragged": (False,),
    "optional": (False,),
    "sparse": (False,),
    "quantization_config": (None,),
    "lora_rank": (None,),
    "lora_alpha": (None,),
    "input_axes": (None,),
    "output_axes": (None,),
    "synchronized": (False,),
    "flash_attention": (None,),
    "tile_multiple": (None,),
    "use_gate": (False,),
    "sliding_window": (None,),
    "renorm": (False,),
    "renorm_clipping": (None,),
    "renorm_momentum": (0.99,),
}
DROPPED_ALWAYS = ("shared_object_id",)
# Keras options a dendrite layer may not take: dropped only when that layer does not take
# them and they hold Keras' default (what the dendrite layer does anyway).
DEFAULTS_IF_UNTAKEN = {
    "data_format": ("channels_last",),
    "crop_to_aspect_ratio": (False,),
    "pad_to_aspect_ratio": (False,),
    "antialias": (False,),
    "fill_value": (0.0,),
}
DEFAULTS_IF_UNTAKEN_BY_CLASS = {"Resizing": {"fill_mode": ("constant",)}}
# Keras' compile settings that change how it runs, not what it computes.
COMPILE_KEYS = ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics")
COMPILE_IGNORED = ("run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss")
POLICIES = ("DTypePolicy", "FloatDTypePolicy", "Policy")


def translate_entry(entry: Any, what: str) -> dict[str, Any]:
    """The model entry of a Keras ``config.json``, in dendrite's spelling; the compile
    settings are removed (see ``compile_settings``)."""
    if not isinstance(entry, dict):
        raise ModelLoadError(f"{what}: config.json must hold a JSON object.")
    entry = {
        k: v
        for k, v in entry.items()
        if k in ("module", "class_name", "registered_name", "config", "build_config")
    }
    build = entry.get("build_config")
    if isinstance(build, dict) and build == {"input_shape": None}:  # Keras' "not built"
        entry["build_config"] = None
    try:
        return translate_ops(_translate(entry, 0, what), what)
    except ModelLoadError:
        raise
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as problem:
        raise ModelLoadError(
            f"{what}: config.json is not a Keras model description dendrite can read "
            f"({type(problem).__name__}: {problem})."
        ) from None


def _translate(node: Any, depth: int, what: str) -> Any:
    if depth > 200:
        raise ModelLoadError(f"{what}: the config is nested too deeply.")
    if isinstance(node, list):
        return [_translate(v, depth + 1, what) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") == "__lambda__":
        raise ModelLoadError(
            f"{what}: a Lambda layer holds Python bytecode ('__lambda__'); dendrite never "
            f"runs code from a file (Keras too refuses it with safe_mode=True). Define the "
            f"function in your program, register it with "
            f"@dendrite.saving.register_keras_serializable() and save it by name."
        )
    if node.get("class_name") == "function" and isinstance(node.get("config"), str):
        return node["config"]  # a function by its (registered) name: activations, Lambda
    if node.get("class_name") in POLICIES and isinstance(node.get("config"), dict):
        name = node["config"].get("name")
        return name if isinstance(name, str) else node
    if isinstance(node.get("class_name"), str) and isinstance(node.get("config"), dict):
        node = {**node, "config": _untaken_defaults(node["class_name"], node["config"], what)}
    result = {}
    for key, value in node.items():
        if key in DROPPED_ALWAYS:
            continue
        if key in DROPPED_WHEN and _is_default(value, DROPPED_WHEN[key]):
            continue
        result[key] = _translate(value, depth + 1, what)
    return result


def _untaken_defaults(class_name: str, config: dict[str, Any], what: str) -> dict[str, Any]:
    table = {**DEFAULTS_IF_UNTAKEN, **DEFAULTS_IF_UNTAKEN_BY_CLASS.get(class_name, {})}
    present = [key for key in config if key in table and _is_default(config[key], table[key])]
    if not present:
        return config
    taken = _taken_arguments(class_name)
    if taken is None:
        return config
    return {k: v for k, v in config.items() if k not in present or k in taken}


def _taken_arguments(class_name: str) -> set[str] | None:
    """The keyword arguments the dendrite layer ``class_name`` names in its constructors."""
    import inspect

    from dendrite import registry

    cls = registry.find("layer", class_name, {})
    if not isinstance(cls, type):
        return None
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            names |= set(inspect.signature(init).parameters)
        except (TypeError, ValueError):
            continue
    return names


def _is_default(value: Any, defaults: tuple) -> bool:
    return any(value is d or (type(value) is type(d) and value == d) for d in defaults)


def compile_settings(entry: Any, what: str) -> dict[str, Any] | None:
    """Keras' top-level ``compile_config`` as dendrite's compile document (None when the
    model was not compiled)."""
    config = entry.get("compile_config") if isinstance(entry, dict) else None
    if not config:
        return None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{what}: compile_config must be an object.")
    unknown = set(config) - set(COMPILE_KEYS) - set(COMPILE_IGNORED)
    if unknown:
        raise ModelLoadError(
            f"{what}: compile_config has settings dendrite does not know: {sorted(unknown)}."
        )
    try:
        return _translate({k: config.get(k) for k in COMPILE_KEYS}, 0, what)
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as problem:
        raise ModelLoadError(f"{what}: compile_config cannot be read ({problem}).") from None


# --- Keras' op nodes (a keras.ops call in a functional model) -> dendrite's OpLayer ---------
def translate_ops(entry: dict[str, Any], what: str) -> dict[str, Any]:
    """Rewrite every op node of a functional config (``module`` ``keras.src.ops.*``) as
    dendrite's ``OpLayer``: the op's constructor options and constant arguments become its
    ``arguments``, its tensor arguments its one inbound call."""
    config = entry.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        return entry
    layers = []
    for layer in config["layers"]:
        if isinstance(layer, dict) and layer.get("class_name") == "MultiHeadAttention":
            layer = _attention_axes(layer)
        if isinstance(layer, dict) and isinstance(layer.get("inbound_nodes"), list):
            layer = {
                **layer,
                "inbound_nodes": [_without_training(n) for n in layer["inbound_nodes"]],
            }
        if isinstance(layer, dict) and str(layer.get("module", "")).startswith("keras.src.ops"):
            import dendrite.layers.op_layer  # noqa: F401 -- registers OpLayer

            layer = _op_layer(layer, what)
        elif isinstance(layer, dict):
            layer = translate_ops(layer, what)
        layers.append(layer)
    return {**entry, "config": {**config, "layers": layers}}


def _op_layer(node: dict[str, Any], what: str) -> dict[str, Any]:
    from dendrite.saving.keras_format.op_names import dendrite_op

    name = node.get("name") or (node.get("config") or {}).get("name")
    options = {k: v for k, v in (node.get("config") or {}).items() if k != "name"}
    inbound = node.get("inbound_nodes") or []
    if len(inbound) != 1 or not isinstance(inbound[0], dict):
        raise ModelLoadError(f"{what}: the op node {name!r} must be called exactly once.")
    tensors: list[Any] = []

    def encode(value: Any) -> Any:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            tensors.append(value)
            return {"__tensor__": len(tensors) - 1}
        inner = value.get("config") if isinstance(value, dict) else None
        if isinstance(value, dict) and value.get("class_name") == "__slice__":
            inner = inner if isinstance(inner, dict) else {}
            return {"__slice__": [encode(inner.get(k)) for k in ("start", "stop", "step")]}
        if isinstance(value, dict) and value.get("class_name") == "__ellipsis__":
            return {"__ellipsis__": True}
        if isinstance(value, dict) and value.get("class_name") in ("__numpy__", "__tensor__"):
            inner = inner if isinstance(inner, dict) else {}
            return {"__array__": inner.get("value"), "dtype": inner.get("dtype")}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if isinstance(value, dict):
            return {"__dict__": {k: encode(v) for k, v in value.items()}}
        return value

    args = encode(inbound[0].get("args") or [])
    call_kwargs = inbound[0].get("kwargs") or {}
    if not isinstance(call_kwargs, dict):
        raise ModelLoadError(f"{what}: the op node {name!r} has malformed keyword arguments.")
    kwargs = {k: encode(v) for k, v in call_kwargs.items()}
    options = {k: encode(v) for k, v in options.items()}
    family = str(node.get("module", "")).rpartition(".")[2]
    op = dendrite_op(family, str(node.get("class_name", "")))
    if op == "getitem" and isinstance(args, list) and len(args) == 2 and isinstance(args[1], list):
        args = [args[0], {"__tuple__": args[1]}]  # JSON made Keras' index tuple a list
    return {
        "module": "dendrite.layers.op_layer",
        "class_name": "OpLayer",
        "registered_name": None,
        "name": name,
        "config": {
            "name": name,
            "op": op,
            "arguments": {"args": args, "kwargs": {**options, **kwargs}},
        },
        "inbound_nodes": [{"args": [tensors], "kwargs": {}}],
    }


def _without_training(node: Any) -> Any:
    """Keras records the ``training`` flag a layer saw while the graph was built, and
    replaces it by the caller's at run time; dendrite would keep a recorded one."""
    if (
        isinstance(node, dict)
        and isinstance(node.get("kwargs"), dict)
        and "training" in node["kwargs"]
    ):
        kwargs = {k: v for k, v in node["kwargs"].items() if k != "training"}
        return {**node, "kwargs": kwargs}
    return node


def _attention_axes(node: dict[str, Any]) -> dict[str, Any]:
    """Keras writes the axes it attends over (``[1]`` for a sequence); dendrite spells
    "every axis between the batch and the features" as None."""
    config = node.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("attention_axes"), list):
        return node
    shape = _first_tensor_shape(node.get("inbound_nodes"))
    if shape is not None and config["attention_axes"] == list(range(1, len(shape) - 1)):
        return {**node, "config": {**config, "attention_axes": None}}
    return node


def _first_tensor_shape(value: Any) -> list | None:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            shape = (value.get("config") or {}).get("shape")
            return shape if isinstance(shape, list) else None
        values = list(value.values())
    elif isinstance(value, list):
        values = value
    else:
        return None
    for item in values:
        found = _first_tensor_shape(item)
        if found is not None:
            return found
    return None
