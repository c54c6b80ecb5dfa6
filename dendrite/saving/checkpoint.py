"""Training checkpoints: the state ``BackupAndRestore`` needs to resume bit for bit.

One zip file, written atomically, holds the model's weights, the optimizer's variables and
``checkpoint.json`` with the epoch, the batch and the state of every random generator
(dendrite's, NumPy's global one and Python's ``random``). A process killed while writing
leaves the previous checkpoint whole. Reading checks everything (archive, JSON, headers,
every shape and dtype against the live model and optimizer) before changing anything.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.saving import compile_config
from dendrite.saving.archive import open_archive, write_archive
from dendrite.saving.errors import ModelLoadError
from dendrite.saving.model_file import OPTIMIZER, TENSOR_LIMIT, WEIGHTS
from dendrite.saving.safe_json import MAX_JSON_BYTES, loads_checked
from dendrite.saving.safetensors_io import tensors_to_bytes
from dendrite.saving.weights import check_against, load_into, variables_to_dict

FORMAT = "dendrite.checkpoint"
FORMAT_VERSION = 1
STATE = "checkpoint.json"


def random_state() -> dict[str, Any]:
    """The state of every generator a training run draws from, as JSON values."""
    legacy = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    return {
        "dendrite": _settings.rng().bit_generator.state,
        "numpy": {
            "bit_generator": legacy["bit_generator"],
            "state": {
                "key": np.asarray(legacy["state"]["key"]).tolist(),
                "pos": int(legacy["state"]["pos"]),
            },
            "has_gauss": int(legacy["has_gauss"]),
            "gauss": float(legacy["gauss"]),
        },
        "python": [version, list(internal), gauss],
    }


def set_random_state(state: Any, what: str) -> None:
    """Restore ``random_state()``'s output (checked first; nothing changes on error)."""
    try:
        generator = np.random.Generator(type(_settings.rng().bit_generator)())
        generator.bit_generator.state = state["dendrite"]
        numpy_state = dict(state["numpy"])
        numpy_state["state"] = {
            "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
            "pos": int(numpy_state["state"]["pos"]),
        }
        legacy = np.random.RandomState()
        legacy.set_state(numpy_state)
        version, internal, gauss = state["python"]
        python_state = (int(version), tuple(int(x) for x in internal), gauss)
        random.Random().setstate(python_state)
    except Exception as error:
        raise ModelLoadError(f"{what}: the random generator state is invalid: {error}") from None
    _settings.rng().bit_generator.state = state["dendrite"]
    np.random.set_state(numpy_state)
    random.setstate(python_state)


def write_checkpoint(model: Any, path: Any, state: dict[str, Any]) -> None:
    """Atomically write the model's weights, optimizer variables, ``state`` (JSON values)
    and the random generators' state to ``path``."""
    import json

    document: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state": state,
        "random": random_state(),
        "optimizer_state": None,
    }
    members = {WEIGHTS: tensors_to_bytes(variables_to_dict(model.weights))}
    optimizer_state = compile_config.encode_optimizer_state(model)
    if optimizer_state is not None:
        document["optimizer_state"], members[OPTIMIZER] = optimizer_state
    write_archive(path, {STATE: json.dumps(document).encode("utf-8"), **members})


def read_checkpoint(model: Any, path: Any, restore: bool = True) -> dict[str, Any]:
    """Check the checkpoint at ``path`` against ``model`` and (``restore``) load its
    weights, optimizer variables and random state. Returns the saved ``state``."""
    what = str(path)
    limits = {STATE: MAX_JSON_BYTES, WEIGHTS: TENSOR_LIMIT, OPTIMIZER: TENSOR_LIMIT}
    with open_archive(path, limits, required=(STATE, WEIGHTS)) as members:
        return _read_checkpoint(model, members, what, restore)


def _read_checkpoint(model: Any, members: Any, what: str, restore: bool) -> dict[str, Any]:
    document = loads_checked(members[STATE], f"{what} ({STATE})")
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelLoadError(f"{what} is not a dendrite training checkpoint.")
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(
            f"{what}: checkpoint format version {document.get('format_version')!r} is not "
            f"supported."
        )
    state = document.get("state")
    if not isinstance(state, dict):
        raise ModelLoadError(f"{what}: the checkpoint's state must be an object.")
    owner = f"model '{model.name}'"
    # The weights' header against the model before any tensor data is inflated.
    infos, _ = members.header(WEIGHTS)
    check_against(model.weights, infos, f"{what} ({WEIGHTS})", owner)
    description = document.get("optimizer_state")
    if description is not None:
        if OPTIMIZER not in members:
            raise ModelLoadError(f"{what}: the optimizer state is missing.")
        compile_config.restore_optimizer_state(
            model, description, members, OPTIMIZER, what, check_only=True
        )
    if restore:
        set_random_state(document.get("random"), what)
        load_into(model.weights, members[WEIGHTS], f"{what} ({WEIGHTS})", owner)
        if description is not None:
            compile_config.restore_optimizer_state(model, description, members, OPTIMIZER, what)
    return state


def restore_for_backup(model: Any, path: Any) -> dict[str, Any]:
    """``read_checkpoint`` for ``BackupAndRestore``: the state must name a valid epoch."""
    state = read_checkpoint(model, path, restore=False)
    epoch = state.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
        raise ModelLoadError(f"{path}: the checkpoint's epoch {epoch!r} is not valid.")
    return read_checkpoint(model, path)
