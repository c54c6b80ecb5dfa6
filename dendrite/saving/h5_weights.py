"""``.weights.h5`` files: the weights alone in HDF5, the suffix Keras 3 requires for
``save_weights`` and ``ModelCheckpoint(save_weights_only=True)``, so that such code runs
unchanged. Needs the optional ``h5py`` (``pip install 'dendrite[h5]'``).

Layout (dendrite's, not Keras' internal one): a group ``weights`` holding one dataset per
entry of ``model.weights``, named ``0000``, ``0001``, ... in order, each with its variable
path (``dense/kernel``) as the attribute ``path``; the root carries ``format =
"dendrite.weights"``. Loading reads data only (HDF5 datasets of numbers: nothing is
executed), checks the count, every shape and dtype against the model (naming the layer)
before any weight changes, then assigns them all. Writing builds the file in memory and
replaces the target atomically.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np

from dendrite._atomic import atomic_write_bytes
from dendrite.saving.errors import WeightsLoadError
from dendrite.saving.regular_file import read_regular
from dendrite.saving.safetensors_io import TensorInfo

H5_WEIGHTS_SUFFIX = ".weights.h5"
_FORMAT = "dendrite.weights"


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "Saving or loading `.weights.h5` files needs h5py: pip install h5py (or "
            "'dendrite[h5]'); dendrite's own `.weights.safetensors` needs nothing extra."
        ) from None
    return h5py


def save_weights_h5(model: Any, path: str, overwrite: bool = True, label: Any = str) -> None:
    """Write ``model.weights`` to an HDF5 ``path`` (see the module docstring)."""
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as store:
        store.attrs["format"] = _FORMAT
        group = store.create_group("weights")
        for index, variable in enumerate(model.weights):
            dataset = group.create_dataset(f"{index:04d}", data=np.asarray(variable.data))
            dataset.attrs["path"] = label(variable)
    atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def load_weights_h5(variables: list, path: str, check: Callable[[dict], list]) -> None:
    """Assign the file's tensors to ``variables``. The file must hold only numeric datasets
    named 0000..n-1 under ``weights``; ``check(infos)`` (shapes and dtypes read from the
    metadata, before any data) returns the (variable, name) pairs to assign, or raises."""
    h5py = _h5py()
    payload = read_regular(path, path, WeightsLoadError)
    try:
        with h5py.File(io.BytesIO(payload), "r") as store:
            if store.attrs.get("format") != _FORMAT or not isinstance(
                store.get("weights"), h5py.Group
            ):
                raise WeightsLoadError(
                    f"{path} is not a dendrite weights file (no format attribute "
                    f"{_FORMAT!r} and 'weights' group); Keras' own .weights.h5 layout is "
                    f"not read."
                )
            group = store["weights"]
            names = sorted(group.keys(), key=lambda name: (len(name), name))
            if names != [f"{i:04d}" for i in range(len(names))]:
                raise WeightsLoadError(
                    f"{path}: the weight datasets are not named 0000..{len(names) - 1:04d}."
                )
            infos, datasets = {}, {}
            for index, name in enumerate(names):
                dataset = group[name]
                if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in "fiub":
                    raise WeightsLoadError(f"{path}: entry {name} is not a numeric dataset.")
                label = dataset.attrs.get("path", "")
                label = label.decode() if isinstance(label, bytes) else str(label)
                key = f"{index}:{label}"
                infos[key] = TensorInfo(key, np.dtype(dataset.dtype), tuple(dataset.shape), 0, 0)
                datasets[key] = dataset
            pairs = check(infos)
            values = [(variable, np.asarray(datasets[key][()])) for variable, key in pairs]
    except WeightsLoadError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WeightsLoadError(f"{path} is not a readable HDF5 weights file: {error}") from None
    for variable, value in values:
        variable.data[...] = value
