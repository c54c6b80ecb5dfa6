"""``save_weights`` / ``load_weights``: a model's weights as one safetensors file.

Tensors are named ``<index>:<variable path>`` in ``model.weights`` order, so the file is
readable by any safetensors reader (PyTorch's too) and loading checks every name and shape
against the model before changing any weight.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.saving.atomic import atomic_write_bytes


class WeightsLoadError(ValueError):
    """A weights file that does not match the model or is not a valid safetensors file."""


def weights_to_dict(variables: list) -> dict[str, np.ndarray]:
    return {
        f"{i:04d}:{v.path or v.name}": np.ascontiguousarray(v.data) for i, v in enumerate(variables)
    }


def save_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Write ``model.weights`` to ``filepath`` (``.weights.safetensors``), atomically."""
    from safetensors.numpy import save

    path = str(filepath)
    if not path.endswith(".weights.safetensors"):
        raise ValueError(
            f"The filename must end in `.weights.safetensors`. Received: filepath={path}"
        )
    atomic_write_bytes(path, save(weights_to_dict(model.weights)), overwrite=overwrite)


def read_tensors(payload: bytes, what: str) -> dict[str, np.ndarray]:
    """Parse safetensors bytes, turning any parser failure into one clear error."""
    from safetensors.numpy import load

    try:
        return load(payload)
    except Exception as error:  # the parser raises several types for corrupt input
        raise WeightsLoadError(f"{what} is not a valid safetensors file: {error}") from None


def assign_weights(variables: list, tensors: dict[str, np.ndarray], what: str) -> None:
    """Check every tensor against ``variables`` (count, order, shapes), then assign all."""
    expected = weights_to_dict(variables)
    if len(tensors) != len(expected):
        raise WeightsLoadError(
            f"{what} holds {len(tensors)} weights but the model has {len(expected)}."
        )
    ordered = sorted(tensors, key=lambda name: name.split(":", 1)[0])
    for name, variable in zip(ordered, variables):
        array = tensors[name]
        if array.shape != variable.shape:
            raise WeightsLoadError(
                f"{what}: weight {name!r} has shape {array.shape} but layer weight "
                f"{variable.path!r} expects {variable.shape}."
            )
        if array.dtype != variable.dtype:
            raise WeightsLoadError(
                f"{what}: weight {name!r} has dtype {array.dtype} but {variable.path!r} is "
                f"{variable.dtype}."
            )
    for name, variable in zip(ordered, variables):
        variable.data[...] = tensors[name]


def load_weights(model: Any, filepath: Any, skip_mismatch: bool = False) -> None:
    """Load weights saved by ``save_weights`` into a model of the same architecture."""
    path = str(filepath)
    with open(path, "rb") as stream:
        payload = stream.read()
    if not model.built:
        raise WeightsLoadError(
            f"Model '{model.name}' has no weights yet: build it first (call it on data or "
            f"pass input_shape) before load_weights."
        )
    assign_weights(model.weights, read_tensors(payload, path), path)
