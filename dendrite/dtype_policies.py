"""``keras.dtype_policies``: ``DTypePolicy``, ``FloatDTypePolicy``, ``get``, ``serialize``,
``deserialize``.

A policy names the dtype a layer computes in and the dtype of its weights. dendrite
computes in the dtype of its weights, so both are the policy's name, and mixed policies
("mixed_float16", "mixed_bfloat16") are refused with a clear error (``_settings``).
Keras' quantized policies (int8, float8, int4, GPTQ, AWQ) have no dendrite counterpart.

The dict form is Keras 3's::

    {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
     "registered_name": None}
"""

from __future__ import annotations

from typing import Any

from dendrite._settings import DTypePolicy


class FloatDTypePolicy(DTypePolicy):
    """Keras' older name of a float ``DTypePolicy`` (kept in Keras 3 as a subclass)."""

    def __repr__(self) -> str:
        return f'<FloatDTypePolicy "{self.name}">'


_CLASSES: dict[str, type[DTypePolicy]] = {
    "DTypePolicy": DTypePolicy,
    "FloatDTypePolicy": FloatDTypePolicy,
    "Policy": DTypePolicy,  # TensorFlow-Keras 2's name in old files
}


def serialize(dtype_policy: DTypePolicy) -> dict[str, Any]:
    """Keras 3's dict form of ``dtype_policy`` (see the module docstring)."""
    if not isinstance(dtype_policy, DTypePolicy):
        raise ValueError(
            f"serialize expects a DTypePolicy, got {type(dtype_policy).__name__}: {dtype_policy!r}."
        )
    return {
        "module": "keras",
        "class_name": type(dtype_policy).__name__,
        "config": dtype_policy.get_config(),
        "registered_name": None,
    }


def deserialize(config: dict[str, Any], custom_objects: Any = None) -> DTypePolicy:
    """The policy that a dict from ``serialize`` describes (``custom_objects`` is accepted
    for Keras' signature; only the built-in policy classes are known)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            f"deserialize expects a dict with 'class_name' and 'config', got {config!r}."
        )
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _CLASSES.get(name)
    if cls is None:
        raise ValueError(
            f"Unknown dtype policy class {name!r}: expected one of {sorted(_CLASSES)}."
        )
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise ValueError(f"The dtype policy config must be a dict, got {inner!r}.")
    return cls.from_config(inner)


def get(identifier: Any) -> DTypePolicy:
    """A policy from a name ("float32"), a dict from ``serialize``, or a policy (returned
    as it is). ValueError for anything else."""
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return DTypePolicy(identifier)
    raise ValueError(f"Cannot interpret `dtype_policy` argument: {identifier!r}.")


__all__ = ["DTypePolicy", "FloatDTypePolicy", "deserialize", "get", "serialize"]
