"""Keras 3's integer-category layers: CategoryEncoding (ids to one-hot, multi-hot or count
vectors) and Discretization (numbers to bin ids, or to their encodings).

**Encodings** of integer ids ``i`` in ``[0, depth)`` (Keras' ``encode_categorical_inputs``):

- ``one_hot``: a vector of ``depth`` per id, ``e_i``; a trailing axis of size 1 is dropped
  first, and a single id gives ``(1, depth)``;
- ``multi_hot``: per sample, ``1`` at every id it holds; ``count``: how many times (or the
  sum of ``count_weights``) each id occurs. A sample is the last axis of a rank-2 input
  and the whole of a rank-1 one (one vector out); Keras reduces a rank >= 3 input over its
  axis 1, and so does this.

**Bins** (Discretization): with boundaries ``b_0 < ... < b_{k-1}``, ``x`` goes to bin ``j``
where ``b_{j-1} <= x < b_j`` (0 below ``b_0``, ``k`` from ``b_{k-1}`` on). ``adapt`` draws
the boundaries as Keras does, from an approximate quantile summary with error
``epsilon``: each batch, sorted, is thinned to about ``1 / epsilon`` points, every kept
point weighing the samples it stands for; two summaries merge by sorting their points
together and recompressing, which reads the values at cumulative-weight fractions
``epsilon, 2 epsilon, ..., 1`` by linear interpolation; the ``num_bins - 1`` boundaries
are that compression at fractions ``1 / num_bins, ..., (num_bins - 1) / num_bins``.

Neither layer has weights or a gradient: their outputs are plain tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Tensor
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer

ENCODINGS = ("one_hot", "multi_hot", "count")


def _ids(values: Any) -> np.ndarray:
    return np.asarray(values.data if isinstance(values, Tensor) else values)


def encode_categorical(
    ids: np.ndarray,
    output_mode: str,
    depth: int,
    dtype: Any,
    layer: str,
    count_weights: np.ndarray | None = None,
) -> np.ndarray:
    """Integer ids in ``[0, depth)`` as ``output_mode`` encodes them (module docstring);
    an id outside raises ValueError naming ``layer``."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= depth):
        bad = ids.min() if ids.min() < 0 else ids.max()
        raise ValueError(
            f"Layer '{layer}': input values must be in the range 0 <= values < {depth} "
            f"(num_tokens); received {bad}."
        )
    ids = ids.astype(np.int64)
    if ids.ndim == 0:
        ids = ids[None]
    if output_mode == "one_hot":
        if ids.ndim > 1 and ids.shape[-1] == 1:
            ids = ids[..., 0]
        return np.eye(depth, dtype=dtype)[ids]
    weights = None
    if count_weights is not None:
        weights = np.asarray(count_weights, dtype=np.float64).reshape(ids.shape)
    # A sample's ids along the last axis: a rank-1 input is one sample, a higher one is
    # counted over its axis 1.
    if ids.ndim == 1:
        ids, weights = ids[None], None if weights is None else weights[None]
        outer: tuple = ()
    else:
        ids = np.moveaxis(ids, 1, -1)
        weights = None if weights is None else np.moveaxis(weights, 1, -1)
        outer = ids.shape[:-1]
    rows = ids.reshape(-1, ids.shape[-1])
    counts = count_rows(rows, depth, None if weights is None else weights.reshape(rows.shape))
    if output_mode == "multi_hot":
        counts = (counts > 0).astype(np.float64)
    return counts.reshape((*outer, depth) if outer else (depth,)).astype(dtype)


def count_rows(ids: np.ndarray, depth: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(n, k) ids -> (n, depth) float64: how often (or the summed ``weights`` with which)
    each id in ``[0, depth)`` occurs in each row; ids outside are left out. One bincount
    over ``row * depth + id``, never an (n, k, depth) one-hot."""
    n = ids.shape[0]
    keep = (ids >= 0) & (ids < depth)
    flat = (np.arange(n, dtype=np.int64)[:, None] * depth + ids)[keep]
    kept = None if weights is None else weights[keep]
    return np.bincount(flat, weights=kept, minlength=n * depth).reshape(n, depth).astype(np.float64)


def encoded_shape(input_shape: tuple, output_mode: str, depth: int) -> tuple:
    """The shape ``encode_categorical`` gives for inputs of ``input_shape``."""
    shape = tuple(input_shape)
    if not shape:
        return (1, depth) if output_mode == "one_hot" else (depth,)
    if output_mode == "one_hot":
        if len(shape) > 1 and shape[-1] == 1:
            return (*shape[:-1], depth)
        return (*shape, depth)
    if len(shape) == 1:
        return (depth,)
    return (shape[0], *shape[2:], depth)


@register_layer
class CategoryEncoding(Layer):
    """Integer ids as one-hot, multi-hot or count vectors of ``num_tokens`` (see the module
    docstring); ``count_weights`` (shaped like the ids) weigh each id's count.

    Args:
        num_tokens: how many categories; the ids must be in ``[0, num_tokens)``.
        output_mode: "multi_hot" (the default; "binary" is its old name), "one_hot" or
            "count".
        sparse: False (dendrite's outputs are dense).
    """

    example = {
        "kwargs": {"num_tokens": 5},
        "input_shape": (3, 2),
        "input_dtype": "int64",
        "input_range": (0, 5),
    }

    def __init__(
        self,
        num_tokens: int | None = None,
        output_mode: str = "multi_hot",
        sparse: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode not in ENCODINGS:
            raise ValueError(
                f"CategoryEncoding: unknown output_mode {output_mode!r}; expected one of "
                f"{', '.join(ENCODINGS)}."
            )
        if num_tokens is None or int(num_tokens) < 1:
            raise ValueError(
                f"CategoryEncoding: num_tokens must be set to an integer >= 1 (for tokens "
                f"not known beforehand use IntegerLookup); received num_tokens={num_tokens}."
            )
        if sparse:
            raise ValueError("CategoryEncoding: sparse=True is not supported; dendrite is dense.")
        self.num_tokens = int(num_tokens)
        self.output_mode = output_mode
        self.sparse = False

    def call(self, inputs: Any, count_weights: Any = None) -> Tensor:
        if count_weights is not None and self.output_mode != "count":
            raise ValueError(
                f"Layer '{self.name}': count_weights are used only with output_mode='count'; "
                f"this layer's is {self.output_mode!r}."
            )
        weights = None if count_weights is None else _ids(count_weights)
        out = encode_categorical(
            _ids(inputs), self.output_mode, self.num_tokens, self.dtype, self.name, weights
        )
        return Tensor._make(out)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return encoded_shape(input_shape, self.output_mode, self.num_tokens)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_tokens": self.num_tokens,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }


def _summary(values: np.ndarray, epsilon: float) -> np.ndarray:
    """(2, m): about ``1 / epsilon`` of the sorted values and the samples each stands for."""
    ordered = np.sort(values.reshape(-1).astype(np.float32))
    step = max(ordered.size * epsilon, 1.0)
    kept = ordered[int(step - 1) :: int(step)]
    # float32 throughout, as Keras keeps it: the boundaries then agree to the last bit.
    return np.stack([kept, np.full(kept.shape, step, dtype=np.float32)])


def _compressed(summary: np.ndarray, epsilon: float) -> np.ndarray:
    """The values at cumulative-weight fractions ``epsilon, 2 epsilon, ..., 1`` and the
    weight between consecutive ones; a summary already that small stays as it is."""
    if summary.shape[1] * epsilon < 1:
        return summary
    fractions = epsilon + np.arange(0.0, 1.0, epsilon)
    cumulative = summary[1].cumsum()
    share = cumulative / cumulative[-1]
    points = np.interp(fractions, share, summary[0])
    weights = np.diff(np.interp(fractions, share, cumulative), prepend=0.0)
    return np.stack([points, weights]).astype(np.float32)


@register_layer
class Discretization(Layer):
    """Numbers to bin ids (``output_mode="int"``) or to those ids' encodings (see the module
    docstring), with ``bin_boundaries`` given or learnt by ``adapt`` for ``num_bins``.

    Args:
        bin_boundaries: increasing boundaries (bins = boundaries + 1), or None to adapt.
        num_bins: how many bins ``adapt`` makes (exclusive with ``bin_boundaries``).
        epsilon: the quantile summary's error tolerance.
        output_mode: "int" (int32 ids), "one_hot", "multi_hot" or "count".
        sparse: False (dendrite's outputs are dense).
    """

    example = {
        "kwargs": {"bin_boundaries": [0.0, 1.0], "output_mode": "count"},
        "input_shape": (3, 2),
    }

    def __init__(
        self,
        bin_boundaries: Any = None,
        num_bins: int | None = None,
        epsilon: float = 0.01,
        output_mode: str = "int",
        sparse: bool = False,
        dtype: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dtype=dtype, name=name, **kwargs)
        if output_mode not in ("int", *ENCODINGS):
            raise ValueError(
                f"Discretization: unknown output_mode {output_mode!r}; expected one of int, "
                f"{', '.join(ENCODINGS)}."
            )
        if sparse:
            raise ValueError("Discretization: sparse=True is not supported; dendrite is dense.")
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"Discretization: num_bins must be >= 0; received {num_bins}.")
        if (num_bins is None) == (bin_boundaries is None):
            raise ValueError(
                "Discretization: set exactly one of num_bins (then adapt) and bin_boundaries; "
                f"received num_bins={num_bins} and bin_boundaries={bin_boundaries}."
            )
        self.bin_boundaries = None if bin_boundaries is None else [float(b) for b in bin_boundaries]
        self.num_bins = num_bins
        self.epsilon = float(epsilon)
        self.output_mode = output_mode
        self.sparse = False
        self._summary = None if bin_boundaries is not None else np.zeros((2, 0), np.float32)

    def adapt(self, data: Any, batch_size: Any = None, steps: Any = None) -> None:
        """Learn ``num_bins`` bins from ``data`` (an array, or an iterable of batches)."""
        if self.num_bins is None:
            raise ValueError(
                f"Layer '{self.name}' (Discretization) was given bin_boundaries; to adapt, "
                f"create it with num_bins instead."
            )
        batches = [data] if isinstance(data, (np.ndarray, Tensor)) else list(data)
        if steps is not None:
            batches = batches[: int(steps)]
        summary = np.zeros((2, 0), np.float32)
        for batch in batches:
            values = _ids(batch).astype(np.float32)
            merged = np.concatenate([summary, _summary(values, self.epsilon)], axis=1)
            summary = _compressed(merged[:, np.argsort(merged[0], kind="stable")], self.epsilon)
        self._summary = summary
        self.bin_boundaries = _compressed(summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def _depth(self) -> int:
        return len(self.bin_boundaries) + 1

    def call(self, inputs: Any) -> Tensor:
        if self.bin_boundaries is None:
            raise ValueError(
                f"Layer '{self.name}' (Discretization) has no bins yet: pass bin_boundaries "
                f"or call adapt(data) first."
            )
        ids = np.digitize(_ids(inputs), np.asarray(self.bin_boundaries, dtype=np.float64))
        if self.output_mode == "int":
            return Tensor._make(ids.astype(np.int32))
        return Tensor._make(
            encode_categorical(ids, self.output_mode, self._depth(), self.dtype, self.name)
        )

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if self.output_mode == "int":
            return tuple(input_shape)
        depth = self._depth() if self.bin_boundaries is not None else self.num_bins
        return encoded_shape(input_shape, self.output_mode, depth)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "bin_boundaries": self.bin_boundaries,
            "num_bins": self.num_bins,
            "epsilon": self.epsilon,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
        }

    @classmethod
    def from_config(cls, config: dict) -> Discretization:
        config = dict(config)
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            config["num_bins"] = None  # an adapted layer: its bins are what counts
        return cls(**config)
