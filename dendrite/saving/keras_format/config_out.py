"""dendrite's configs in Keras 3's spelling, so that ``keras.models.load_model`` reads
them: public Keras modules instead of dendrite's, dtype policies as Keras' dicts, op calls
as Keras' op nodes, a ``Functional`` model's registered name, and the top-level
``compile_config``."""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.saving import architecture, compile_config
from dendrite.saving.architecture_checks import ACTIVATION_KEYS

# Keras layers whose constructors take fewer of the base options than dendrite writes.
UNTAKEN_BY_KERAS = {
    "SpatialDropout1D": ("trainable",),
    "SpatialDropout2D": ("trainable",),
    "SpatialDropout3D": ("trainable",),
}
MODEL_MODULES = {"Sequential": "keras", "Functional": "keras.src.models.functional"}
NN_OPS = {
    "relu",
    "relu6",
    "sigmoid",
    "softplus",
    "softsign",
    "silu",
    "gelu",
    "elu",
    "selu",
    "leaky_relu",
    "softmax",
    "log_softmax",
    "one_hot",
    "hard_sigmoid",
    "log_sigmoid",
}
MATH_OPS = {"logsumexp", "rsqrt", "top_k", "erf", "erfinv"}
CORE_OPS = {"cast", "convert_to_tensor", "stop_gradient", "slice", "scatter"}


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
    if include_optimizer and getattr(model, "_compiled", False):
        settings = compile_config.encode_compile(model)
        if settings is not None:
            settings["optimizer"] = _keras(settings["optimizer"])
            settings = {
                **_keras(settings),
                "run_eagerly": False,
                "steps_per_execution": 1,
                "jit_compile": False,
            }
        entry["compile_config"] = settings
    return entry


def _keras(node: Any) -> Any:
    if isinstance(node, list):
        return [_keras(v) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") == "OpLayer" and isinstance(node.get("config"), dict):
        return _op_node(node)
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
    if result.get("class_name") == "LayerNormalization" and isinstance(config, dict):
        if config.get("rms_scaling"):
            raise ValueError(
                f"LayerNormalization '{config.get('name')}' uses rms_scaling=True: Keras' "
                f"rms_scaling (deprecated) scales by the variance, not the root mean square, "
                f"so Keras would not compute what dendrite computes. Save it as .dendrite."
            )
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


def _op_node(node: dict[str, Any]) -> dict[str, Any]:
    config = node["config"]
    op = str(config.get("op"))
    arguments = config.get("arguments") or {}
    inbound = node.get("inbound_nodes") or []
    tensors = []
    if inbound and isinstance(inbound[0], dict):
        args = inbound[0].get("args") or []
        tensors = args[0] if args and isinstance(args[0], list) else args

    def decode(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        if isinstance(value, list):
            return [decode(v) for v in value]
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        return value

    class_name = "".join(part.capitalize() for part in op.split("_"))
    family = (
        "nn"
        if op in NN_OPS
        else "math"
        if op in MATH_OPS
        else "core"
        if op in CORE_OPS
        else "numpy"
    )
    name = config.get("name") or node.get("name")
    return {
        "module": f"keras.src.ops.{family}",
        "class_name": class_name,
        "config": {"name": name, **(arguments.get("kwargs") or {})},
        "registered_name": class_name,
        "name": name,
        "inbound_nodes": [{"args": decode(arguments.get("args") or []), "kwargs": {}}],
    }


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.dtype):
        return value.name
    raise TypeError(f"Cannot save a value of type {type(value).__name__} in a Keras config.")
