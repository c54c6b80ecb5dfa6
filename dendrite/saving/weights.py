"""``save_weights`` / ``load_weights``: a model's weights as one safetensors file.

Tensors are named ``<index>:<variable path>`` in ``model.weights`` order, so the file is
readable by any safetensors reader (PyTorch's too). Loading matches tensors to weights by
index, checks the count, every shape and dtype (naming the layer and both shapes) before
changing any weight, then assigns them all.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np

from dendrite._atomic import atomic_write_bytes
from dendrite.saving.errors import ModelLoadError, WeightsLoadError
from dendrite.saving.h5_weights import H5_WEIGHTS_SUFFIX, load_weights_h5
from dendrite.saving.regular_file import read_regular
from dendrite.saving.safetensors_io import TensorInfo, parse_header, read_tensors, tensors_to_bytes

WEIGHTS_SUFFIX = ".weights.safetensors"
MODEL_SUFFIXES = (".dendrite", ".keras")
_NAME = re.compile(r"^(\d{1,9}):(.*)$", re.DOTALL)


def variable_label(variable: Any) -> str:
    return str(getattr(variable, "path", None) or getattr(variable, "name", None) or "variable")


def variables_to_dict(variables: list) -> dict[str, np.ndarray]:
    """``{"0000:dense/kernel": array, ...}`` in the order of ``variables``."""
    return {f"{i:04d}:{variable_label(v)}": v.data for i, v in enumerate(variables)}


def ordered_names(infos: dict[str, TensorInfo], what: str) -> list[str]:
    """Tensor names sorted by their index prefix, which must be exactly 0..n-1."""
    indexed = {}
    for name in infos:
        match = _NAME.match(name)
        if match is None:
            raise ModelLoadError(
                f"{what}: tensor name {name!r} is not of the form '<index>:<path>' written by "
                f"dendrite."
            )
        index = int(match.group(1))
        if index in indexed:
            raise ModelLoadError(
                f"{what}: tensors {indexed[index]!r} and {name!r} have the same index {index}."
            )
        indexed[index] = name
    if sorted(indexed) != list(range(len(indexed))):
        raise ModelLoadError(f"{what}: the tensor indices are not 0..{len(indexed) - 1}.")
    return [indexed[i] for i in range(len(indexed))]


def _layer_and_weight(variable: Any) -> tuple[str, str]:
    label = variable_label(variable)
    if "/" in label:
        layer, weight = label.rsplit("/", 1)
        return layer, weight
    return "?", label


def check_against(
    variables: list,
    infos: dict[str, TensorInfo],
    what: str,
    owner: str = "the model",
    skip_mismatch: bool = False,
) -> list[tuple[Any, str]]:
    """Pair ``variables`` with the tensors of a checked header; raise on any mismatch.

    Returns ``(variable, tensor name)`` pairs to assign (mismatched ones dropped, with a
    warning, when ``skip_mismatch``).
    """
    names = ordered_names(infos, what)
    if len(names) != len(variables):
        # A file written before a layer gained a weight (Normalization's count) lacks it:
        # those weights keep their initial values when everything else pairs up.
        from dendrite.layers.base import ADDED_LATER

        required = [v for v in variables if v not in ADDED_LATER]
        if len(required) == len(names) < len(variables):
            variables = required
    if len(names) != len(variables):
        listed = ", ".join(variable_label(v) for v in variables[:12])
        raise WeightsLoadError(
            f"{what} holds {len(names)} weights but {owner} has {len(variables)}"
            f"{' (' + listed + (', ...' if len(variables) > 12 else '') + ')' if variables else ''}"
            f": the architecture does not match."
        )
    pairs = []
    for name, variable in zip(names, variables):
        info = infos[name]
        layer, weight = _layer_and_weight(variable)
        if info.shape != tuple(variable.data.shape) and not _reshaped_later(variable, info):
            message = (
                f"{what}: layer '{layer}' weight '{weight}' expects shape "
                f"{tuple(variable.data.shape)}, but the file's tensor {name!r} has shape "
                f"{info.shape}."
            )
            if skip_mismatch:
                warnings.warn(f"Skipping: {message}", stacklevel=3)
                continue
            raise WeightsLoadError(message)
        if info.dtype != variable.data.dtype:
            message = (
                f"{what}: layer '{layer}' weight '{weight}' is {variable.data.dtype}, but the "
                f"file's tensor {name!r} is {info.dtype}."
            )
            if skip_mismatch:
                warnings.warn(f"Skipping: {message}", stacklevel=3)
                continue
            raise WeightsLoadError(message)
        pairs.append((variable, name))
    return pairs


def _reshaped_later(variable: Any, info: TensorInfo) -> bool:
    """Whether the file holds, in an older shape of the same size, a weight whose shape
    changed since (``layers.base.RESHAPED_LATER``)."""
    from dendrite.layers.base import RESHAPED_LATER

    marked = RESHAPED_LATER.get(id(variable)) is variable
    return marked and math.prod(info.shape) == variable.data.size


def load_into(
    variables: list, payload: bytes, what: str, owner: str = "the model", skip_mismatch=False
):
    """Check safetensors ``payload`` against ``variables``, then assign every tensor."""
    infos, _ = parse_header(payload, what)
    pairs = check_against(variables, infos, what, owner, skip_mismatch)
    tensors, _ = read_tensors(payload, what)
    for variable, name in pairs:
        variable.data[...] = tensors[name].reshape(variable.data.shape)


def save_weights(
    model: Any, filepath: Any, overwrite: bool = True, max_shard_size: float | None = None
) -> None:
    """Write ``model.weights`` to ``filepath`` (``.weights.safetensors``, or ``.weights.h5``
    in Keras 3's layout with h5py installed), atomically. With ``max_shard_size``
    (gigabytes, as Keras): Keras 3's sharded weights, an index ``<name>.weights.json`` and
    shards ``<name>_00000.weights.h5``, ... beside it (a ``.weights.h5`` path becomes
    ``.weights.json``, with a warning, as in Keras)."""
    path = str(filepath)
    if max_shard_size is not None:
        from dendrite.saving.keras_format.model_io import save_keras_weights
        from dendrite.saving.keras_format.sharded import INDEX_SUFFIX

        if path.endswith(H5_WEIGHTS_SUFFIX):
            renamed = path[: -len(H5_WEIGHTS_SUFFIX)] + INDEX_SUFFIX
            warnings.warn(
                f"Saving sharded weights requires `*.json` as the extension. The original "
                f"path: {path} will be renamed to {renamed}.",
                stacklevel=2,
            )
            path = renamed
        save_keras_weights(model, path, overwrite, max_shard_size)
        return
    if path.endswith(H5_WEIGHTS_SUFFIX):
        from dendrite.saving.keras_format.model_io import save_keras_weights

        save_keras_weights(model, path, overwrite)
        return
    if not path.endswith(WEIGHTS_SUFFIX):
        raise ValueError(
            f"The filename must end in `{WEIGHTS_SUFFIX}` (or `{H5_WEIGHTS_SUFFIX}`). "
            f"Received: filepath={path}"
        )
    payload = tensors_to_bytes(variables_to_dict(model.weights), {"format": "dendrite.weights"})
    atomic_write_bytes(path, payload, overwrite=overwrite)


def load_weights(model: Any, filepath: Any, skip_mismatch: bool = False) -> None:
    """Load weights saved by ``save_weights`` (or the weights of a ``.dendrite`` model file)
    into a built model of the same architecture. Nothing changes unless all match."""
    path = str(filepath)
    if not model.built:
        raise WeightsLoadError(
            f"Model '{model.name}' has no weights yet: build it first (call it on data or "
            f"pass input_shape) before load_weights."
        )
    if path.endswith(H5_WEIGHTS_SUFFIX):
        from dendrite.saving.keras_format import layout
        from dendrite.saving.keras_format.model_io import load_keras_weights

        payload = read_regular(path, path, WeightsLoadError)
        if not layout.is_dendrite_h5(payload):
            load_keras_weights(model, path, payload, skip_mismatch)
            return
        owner = f"model '{model.name}'"

        def check(infos: dict) -> list:
            return check_against(model.weights, infos, path, owner, skip_mismatch)

        load_weights_h5(model.weights, path, check)
        return
    if path.endswith(".weights.json"):
        from dendrite.saving.keras_format.model_io import load_sharded_weights

        load_sharded_weights(model, path, skip_mismatch)
        return
    owner = f"model '{model.name}'"
    if path.endswith(".keras"):
        from dendrite.saving.keras_format import layout
        from dendrite.saving.keras_format.model_io import load_keras_weights

        if layout.is_keras_zip(path):
            with layout.open_keras_zip(path) as members:
                payload = members[layout.WEIGHTS] if layout.WEIGHTS in members else b""
            load_keras_weights(model, path, payload, skip_mismatch)
            return
    if path.endswith(MODEL_SUFFIXES):
        from dendrite.saving.model_file import WEIGHTS, open_model_file

        with open_model_file(path) as members:
            # The header against the model first: no data is inflated for a mismatch.
            check_against(model.weights, members.header(WEIGHTS)[0], path, owner, skip_mismatch)
            payload = members[WEIGHTS]
    else:
        payload = read_regular(path, path, WeightsLoadError)
    load_into(model.weights, payload, path, owner, skip_mismatch)
