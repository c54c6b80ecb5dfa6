"""dendrite's own ``.weights.h5`` layout, written before ``save_weights`` switched to Keras
3's (``keras_format``); files in it stay readable (``load_weights`` tells the two apart
by the root ``format`` attribute). Needs the optional ``h5py`` (``pip install
'dendrite[h5]'``).

Layout: a group ``weights`` holding one dataset per
entry of ``model.weights``, named ``0000``, ``0001``, ... in order, each with its variable
path (``dense/kernel``) as the attribute ``path``; the root carries ``format =
"dendrite.weights"``. Loading reads data only (HDF5 datasets of numbers: nothing is
executed) and only from the file itself: every link must be an ordinary one (no external
or soft links), and no dataset may use external storage, be virtual, or need a filter HDF5
would load as a plugin. It then checks the count, every shape and dtype against the model
(naming the layer) before any weight changes, and assigns them all. Writing builds the
file in memory and replaces the target atomically.
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
            _check_hard_link(h5py, store, "weights", path)
            if store.attrs.get("format") != _FORMAT or not isinstance(
                store.get("weights"), h5py.Group
            ):
                raise WeightsLoadError(
                    f"{path} is not a dendrite weights file (no format attribute "
                    f"{_FORMAT!r} and 'weights' group)."
                )
            group = store["weights"]
            names = sorted(group.keys(), key=lambda name: (len(name), name))
            if names != [f"{i:04d}" for i in range(len(names))]:
                raise WeightsLoadError(
                    f"{path}: the weight datasets are not named 0000..{len(names) - 1:04d}."
                )
            infos, datasets = {}, {}
            for index, name in enumerate(names):
                _check_hard_link(h5py, group, name, path)
                dataset = group[name]
                if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in "fiub":
                    raise WeightsLoadError(f"{path}: entry {name} is not a numeric dataset.")
                _check_self_contained(h5py, dataset, name, path)
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


# The filters HDF5 implements itself; any other id makes HDF5 search its plugin path for a
# shared library to load, which is code chosen by the file.
_BUILTIN_FILTERS = frozenset(range(1, 7))  # deflate, shuffle, fletcher32, szip, nbit, scaleoffset


def _check_hard_link(h5py: Any, group: Any, name: str, path: str) -> None:
    """Refuse ``group[name]`` unless it is an ordinary (hard) link: an external link opens
    another file, and a soft link can point anywhere in this one."""
    link = group.get(name, getlink=True)
    if link is not None and not isinstance(link, h5py.HardLink):
        target = getattr(link, "filename", None) or getattr(link, "path", "")
        raise WeightsLoadError(
            f"{path}: entry {name!r} is {type(link).__name__.lower().replace('link', ' link')}"
            f" to {target!r}; only data stored in the file itself is read."
        )


def _check_self_contained(h5py: Any, dataset: Any, name: str, path: str) -> None:
    """Refuse a dataset whose bytes live outside the file (external storage, a virtual
    dataset) or that needs a filter HDF5 would load as a plugin."""
    plist = dataset.id.get_create_plist()
    if plist.get_external_count() or dataset.external:
        files = sorted({str(entry[0]) for entry in dataset.external or ()})
        raise WeightsLoadError(
            f"{path}: dataset {name} is stored in other files ({', '.join(files)}); only "
            f"data stored in the file itself is read."
        )
    if dataset.is_virtual or plist.get_layout() == h5py.h5d.VIRTUAL:
        raise WeightsLoadError(
            f"{path}: dataset {name} is a virtual dataset (its data come from other "
            f"datasets or files); only data stored in the file itself is read."
        )
    for index in range(plist.get_nfilters()):
        code = plist.get_filter(index)[0]
        if code not in _BUILTIN_FILTERS:
            raise WeightsLoadError(
                f"{path}: dataset {name} uses HDF5 filter {code}, which is not built into "
                f"HDF5 (it would be loaded as a plugin); only built-in filters are read."
            )
