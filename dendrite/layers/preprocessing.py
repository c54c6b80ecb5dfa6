"""Preprocessing layers with Keras 3's arguments: Rescaling, Normalization (with
``adapt``), UnitNormalization, Identity, and the lookups StringLookup and IntegerLookup.

- ``Rescaling(scale, offset=0)``: ``y = x scale + offset`` (integer images become floats);
- ``Normalization(axis=-1)``: ``y = (x - mean) / max(sqrt(var), eps)`` per feature along
  ``axis`` (``invert=True``: ``y = mean + x max(sqrt(var), eps)``), with ``eps`` the
  backend's ``epsilon()`` (1e-7 unless set); ``mean`` and
  ``variance`` are given, or learnt from data by ``adapt(data)``, which averages over every
  other axis. Adapted statistics are non-trainable weights, saved with the model;
- ``UnitNormalization(axis=-1)``: ``y = x / sqrt(max(sum_axis x^2, 1e-12))``;
- ``Identity``: ``y = x``;
- ``StringLookup`` / ``IntegerLookup``: tokens to indices in Keras' vocabulary layout
  (``[mask] + [OOV] * num_oov_indices + tokens``), or one-hot, multi-hot, count and tf-idf
  rows; ``adapt`` ranks tokens as Keras does. Their vocabulary travels in the config; a
  Keras file's ``assets/.../vocabulary.txt`` is read by ``load_assets``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers.base import RESHAPED_LATER, Layer, ShapePreservingLayer
from dendrite.layers.calling import contains
from dendrite.layers.categorical import count_rows
from dendrite.layers.registry import register_layer
from dendrite.layers.symbolic import PLACEHOLDER_RUN, KerasTensor


@register_layer
class Rescaling(ShapePreservingLayer):
    """``y = x * scale + offset`` (see the module docstring)."""

    example = {"kwargs": {"scale": 1.0 / 255, "offset": -0.5}, "input_shape": (2, 4, 4, 3)}

    def __init__(self, scale: Any, offset: Any = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs if inputs.dtype == np.dtype(self.dtype) else ops.cast(inputs, self.dtype)
        scale = np.asarray(self.scale, dtype=self.dtype)
        offset = np.asarray(self.offset, dtype=self.dtype)
        return x * Tensor._make(scale) + Tensor._make(offset)

    def get_config(self) -> dict:
        def plain(value: Any) -> Any:
            return np.asarray(value).tolist() if isinstance(value, np.ndarray) else value

        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}


@register_layer
class Normalization(ShapePreservingLayer):
    """Feature-wise standardisation with given or adapted statistics (see the module
    docstring).

    Args:
        axis: the feature axis or axes (kept); the statistics average over the others.
            None: one mean and variance for everything.
        mean, variance: the statistics (broadcastable to the kept axes); both or neither.
        invert: undo the normalisation instead.
    """

    example = {
        "kwargs": {"mean": [0.5, -1.0, 2.0], "variance": [1.0, 4.0, 0.25]},
        "input_shape": (4, 3),
    }

    def __init__(
        self,
        axis: Any = -1,
        mean: Any = None,
        variance: Any = None,
        invert: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if axis is None:
            self.axis: tuple = ()
        elif isinstance(axis, int):
            self.axis = (axis,)
        else:
            self.axis = tuple(int(a) for a in axis)
        if (mean is None) != (variance is None):
            raise ValueError(
                f"When setting values directly, both `mean` and `variance` must be set. "
                f"Received: mean={mean} and variance={variance}"
            )
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self._stats: tuple | None = None

    def _kept_axes(self, ndim: int) -> tuple:
        axes = tuple(a % ndim for a in self.axis)
        if any(a == 0 for a in axes) and ndim > 1:
            raise ValueError(
                f"Layer '{self.name}' (Normalization): axis {self.axis} includes the batch "
                f"axis; the statistics are per feature, with the batch averaged over."
            )
        return axes

    def _stat_shape(self, input_shape: tuple) -> tuple:
        ndim = len(input_shape)
        kept = self._kept_axes(ndim)
        for a in kept:
            if input_shape[a] is None:
                raise ValueError(
                    f"Layer '{self.name}' (Normalization) needs the size of axis {a} to be "
                    f"known; received input shape {tuple(input_shape)}."
                )
        return tuple(input_shape[a] if a in kept else 1 for a in range(ndim))

    def build(self, input_shape: tuple) -> None:
        shape = self._stat_shape(tuple(input_shape))
        self._broadcast_shape = shape
        if self.input_mean is not None:
            mean = np.broadcast_to(np.asarray(self.input_mean, self.dtype), shape)
            variance = np.broadcast_to(np.asarray(self.input_variance, self.dtype), shape)
            self._stats = (np.array(mean), np.array(variance))
        else:
            # Keras' shape: the kept axes' sizes only ((features,) for axis=-1), so that
            # get_weights and set_weights carry over; broadcast when used.
            kept = tuple(shape[a] for a in sorted(self._kept_axes(len(shape))))
            self.mean = self.add_weight(kept, initializer="zeros", trainable=False, name="mean")
            self.variance = self.add_weight(
                kept, initializer="ones", trainable=False, name="variance"
            )
            # Files written before the statistics took Keras' shape hold them with the
            # broadcast 1s: those load too (saving/weights.py).
            for statistic in (self.mean, self.variance):
                RESHAPED_LATER[id(statistic)] = statistic
            # Keras' third statistic: how many samples adapt saw (files written before it
            # existed still load).
            self.count = self.add_weight(
                (), "zeros", "int32", trainable=False, name="count", added_later=True
            )
        self.built = True

    def adapt(self, data: Any, batch_size: Any = None, steps: Any = None) -> None:
        """Set the mean and variance from ``data`` (an array of samples, batch first):
        averaged over every axis but the kept ones."""
        if self.input_mean is not None:
            raise ValueError(
                f"Layer '{self.name}' (Normalization) was given its mean and variance; it "
                f"cannot adapt."
            )
        array = np.asarray(data.data if isinstance(data, Tensor) else data, dtype=np.float64)
        if array.ndim == 0 or array.shape[0] == 0:
            raise ValueError(
                f"Layer '{self.name}' (Normalization).adapt needs a non-empty batch of "
                f"samples; received data of shape {array.shape}."
            )
        if not self.built:
            self._maybe_build((None, *array.shape[1:]))
        shape = self._broadcast_shape
        if array.ndim != len(shape) or any(
            s != 1 and s != d for s, d in zip(shape[1:], array.shape[1:])
        ):
            raise ValueError(
                f"Layer '{self.name}' (Normalization) was built for inputs of shape "
                f"{shape} per kept axis; adapt received data of shape {array.shape}."
            )
        kept = self._kept_axes(array.ndim)
        reduce = tuple(a for a in range(array.ndim) if a not in kept)
        self.mean.assign(array.mean(axis=reduce).astype(self.dtype))
        self.variance.assign(array.var(axis=reduce).astype(self.dtype))
        self.count.assign(np.asarray(array.shape[0], dtype=np.int32))

    def _statistics(self) -> tuple:
        if self._stats is not None:
            return self._stats
        shape = self._broadcast_shape
        return self.mean.data.reshape(shape), self.variance.data.reshape(shape)

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs if inputs.dtype == np.dtype(self.dtype) else ops.cast(inputs, self.dtype)
        mean, variance = self._statistics()
        if len(x.shape) != mean.ndim or any(
            m != 1 and m != d for m, d in zip(mean.shape[1:], x.shape[1:])
        ):
            raise ValueError(
                f"Input 0 of layer '{self.name}' is incompatible with the layer: its "
                f"statistics have shape {mean.shape} (1 on the averaged axes), but it "
                f"received an input of shape {tuple(x.shape)}."
            )
        scale = np.maximum(np.sqrt(variance), np.asarray(_settings.epsilon(), variance.dtype))
        if self.invert:
            return Tensor._make(mean) + x * Tensor._make(scale)
        return (x - Tensor._make(mean)) / Tensor._make(scale)

    def get_config(self) -> dict:
        def plain(value: Any) -> Any:
            return np.asarray(value).tolist() if value is not None else None

        return {
            **super().get_config(),
            "axis": self.axis[0] if len(self.axis) == 1 else (list(self.axis) or None),
            "mean": plain(self.input_mean),
            "variance": plain(self.input_variance),
            "invert": self.invert,
        }


@register_layer
class UnitNormalization(ShapePreservingLayer):
    """Scales each slice along ``axis`` to unit L2 norm."""

    example = {"kwargs": {"axis": -1}, "input_shape": (3, 4)}

    def __init__(self, axis: Any = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis

    def call(self, inputs: Tensor) -> Tensor:
        x = inputs if inputs.dtype == np.dtype(self.dtype) else ops.cast(inputs, self.dtype)
        square_sum = ops.sum(ops.square(x), axis=self.axis, keepdims=True)
        return x * ops.rsqrt(ops.maximum(square_sum, 1e-12))

    def get_config(self) -> dict:
        axis = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        return {**super().get_config(), "axis": axis}


@register_layer
class Identity(ShapePreservingLayer):
    """Returns its input unchanged (a placeholder in a stack)."""

    example = {"kwargs": {}, "input_shape": (3, 4)}

    def call(self, inputs: Tensor) -> Tensor:
        return inputs


class VocabularyLayer(Layer):
    """A layer whose vocabulary may arrive after its graph is built: a Keras file keeps
    an adapted vocabulary in ``assets/``, read by ``load_assets`` once the model exists.
    A symbolic call (building the model) runs ``call`` on placeholders, which are no
    tokens: ``_on_placeholders()`` tells ``call`` so, and it then gives outputs of the
    right shape and dtype without a vocabulary, or with tokens it does not know; a call on
    data still raises."""

    def _has_vocabulary(self) -> bool:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        inputs = args[0] if args else kwargs.get("inputs")
        if not contains(inputs, KerasTensor):
            return super().__call__(*args, **kwargs)
        self.__dict__["_placeholder_call"] = True
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self.__dict__["_placeholder_call"] = False

    def _on_placeholders(self) -> bool:
        return bool(self.__dict__.get("_placeholder_call")) or PLACEHOLDER_RUN.depth > 0

    def _missing_vocabulary(self) -> ValueError:
        return ValueError(
            f"Layer '{self.name}' ({type(self).__name__}) has no vocabulary: call "
            f"adapt(data) or pass vocabulary= first."
        )


class _IndexLookup(VocabularyLayer):
    """Keras 3's ``IndexLookup``: tokens to indices (or back, ``invert=True``), one-hot
    rows, multi-hot rows, counts or tf-idf, with the vocabulary laid out as Keras does:
    ``[mask_token] (int mode only) + [oov_token] * num_oov_indices + tokens``.

    The vocabulary (and the idf weights) are part of the config, as for TextVectorization,
    so a saved model keeps them; a Keras file whose vocabulary came from ``adapt`` keeps it
    in ``assets/<layer path>/vocabulary.txt`` (and tf-idf weights in the layer's own
    variables), which ``load_assets`` / ``load_own_variables`` read.
    """

    _string = True
    _modes = ("int", "one_hot", "multi_hot", "count", "tf_idf")

    def __init__(
        self,
        max_tokens: int | None,
        num_oov_indices: int,
        mask_token: Any,
        oov_token: Any,
        vocabulary: Any = None,
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        sparse: bool = False,
        pad_to_max_tokens: bool = False,
        oov_method: str = "floormod",
        salt: Any = None,
        **kwargs: Any,
    ) -> None:
        declared = kwargs.pop("vocabulary_size", None)
        self._declared_size = declared if isinstance(declared, int) and declared > 0 else None
        kwargs.pop("has_input_vocabulary", None)
        kwargs.setdefault("dtype", "int64" if output_mode == "int" else "float32")
        super().__init__(**kwargs)
        name = type(self).__name__
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(
                f"If set, `max_tokens` must be greater than 1. Received: max_tokens={max_tokens}"
            )
        if num_oov_indices < 0:
            raise ValueError(
                f"`num_oov_indices` must be greater than or equal to 0. Received: "
                f"num_oov_indices={num_oov_indices}"
            )
        if output_mode not in self._modes:
            raise ValueError(
                f"Invalid value for argument `output_mode`: {output_mode!r}. Expected one of "
                f"{', '.join(self._modes)}."
            )
        if invert and output_mode != "int":
            raise ValueError(
                f"`output_mode` must be `'int'` when `invert` is true. Received: "
                f"output_mode={output_mode}"
            )
        if sparse:
            raise ValueError(
                f"{name}(sparse=True) is not supported by dendrite: no sparse tensors."
            )
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(
                f"`idf_weights` should only be set if `output_mode` is `'tf_idf'`. Received: "
                f"idf_weights={idf_weights} and output_mode={output_mode}"
            )
        if self._string and num_oov_indices > 1:
            raise ValueError(
                f"{name}(num_oov_indices={num_oov_indices}) is not supported by dendrite: "
                f"Keras hashes out-of-vocabulary strings into several buckets with "
                f"TensorFlow's fingerprint, which dendrite does not reproduce; use one."
            )
        if oov_method != "floormod" or salt is not None:
            raise ValueError(
                f"{name}(oov_method={oov_method!r}, salt={salt!r}) is not supported by "
                f"dendrite: only the default 'floormod' bucketing is."
            )
        self.max_tokens = max_tokens
        self.num_oov_indices = int(num_oov_indices)
        self.mask_token = mask_token
        self.oov_token = oov_token
        self.invert = bool(invert)
        self.output_mode = output_mode
        self.sparse = False
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self._tokens: list[Any] = []
        self._index: dict[Any, int] = {}
        self._idf: np.ndarray | None = None
        self._pending_idf: np.ndarray | None = None
        if output_mode == "tf_idf" and vocabulary is not None and idf_weights is None:
            raise ValueError(
                "When specifying the `vocabulary` argument, in TF-IDF output mode, the "
                "`idf_weights` argument must also be provided."
            )
        if vocabulary is not None:
            if isinstance(vocabulary, str):
                raise ValueError(
                    f"{name}: a vocabulary file path is not read (dendrite never opens files "
                    f"named in a config); pass the tokens as a list."
                )
            self.set_vocabulary(vocabulary, idf_weights)

    # --- the vocabulary -------------------------------------------------------------------
    def _token(self, value: Any) -> Any:
        if self._string:
            return value.decode("utf-8") if isinstance(value, bytes) else str(value)
        return int(value)

    def _oov_start_index(self) -> int:
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start_index(self) -> int:
        return self._oov_start_index() + self.num_oov_indices

    def _special_tokens(self) -> list[Any]:
        return [self.mask_token] * self._oov_start_index() + [self.oov_token] * (
            self.num_oov_indices
        )

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Use ``vocabulary`` (with or without the special tokens at its start, as Keras)."""
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError("`idf_weights` must be set if output_mode is 'tf_idf'.")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(
                f"`idf_weights` should only be set if output_mode is `'tf_idf'`. Received: "
                f"output_mode={self.output_mode} and idf_weights={idf_weights}"
            )
        values = [self._token(v) for v in np.asarray(vocabulary, dtype=object).ravel()]
        if not values:
            raise ValueError(f"Cannot set an empty vocabulary. Received: vocabulary={values}")
        special = [None if s is None else self._token(s) for s in self._special_tokens()]
        start = self._token_start_index()
        found_special = values[:start] == special
        tokens = values[start:] if found_special else values
        if len(set(tokens)) != len(tokens):
            repeated = sorted({t for t in tokens if tokens.count(t) > 1}, key=str)
            raise ValueError(
                f"The passed vocabulary has at least one repeated term. Please uniquify your "
                f"dataset. The repeated terms are: {repeated}"
            )
        mask = None if self.mask_token is None else self._token(self.mask_token)
        if mask is not None and mask in tokens:
            raise ValueError(
                f"Found reserved mask token at unexpected location in `vocabulary`. Received: "
                f"mask_token={self.mask_token}"
            )
        if self.max_tokens is not None and start + len(tokens) > self.max_tokens:
            raise ValueError(
                f"Attempted to set a vocabulary larger than the maximum vocab size. Received "
                f"vocabulary size is {start + len(tokens)}; `max_tokens` is {self.max_tokens}."
            )
        self._tokens = tokens
        self._index = {token: start + i for i, token in enumerate(tokens)}
        if self.output_mode == "tf_idf":
            weights = np.asarray(idf_weights, dtype=np.float64).ravel()
            if len(weights) != len(values):
                raise ValueError(
                    f"`idf_weights` must be the same length as vocabulary. len(idf_weights) "
                    f"is {len(weights)}; len(vocabulary) is {len(values)}"
                )
            if not found_special:
                mean = float(weights.mean()) if len(weights) else 0.0
                weights = np.concatenate([np.full(start, mean), weights])
            if self.pad_to_max_tokens and self.max_tokens is not None:
                weights = np.pad(weights, (0, max(self.max_tokens - len(weights), 0)))
            self._idf = weights

    def get_vocabulary(self, include_special_tokens: bool = True) -> list[Any]:
        """The vocabulary; with the special tokens, a token's position is its index."""
        tokens = list(self._tokens)
        if include_special_tokens:
            return self._special_tokens() + tokens
        return tokens

    def vocabulary_size(self) -> int:
        """The vocabulary's size, the mask and OOV entries included."""
        return self._token_start_index() + len(self._tokens)

    def adapt(self, data: Any, batch_size: Any = None, steps: Any = None) -> None:
        """Build the vocabulary from ``data``: the most frequent tokens first (ties: the
        later token in sorted order first, as Keras), at most ``max_tokens`` entries."""
        array = np.asarray(data.data if isinstance(data, Tensor) else data, dtype=object)
        if array.ndim == 0:
            array = array.reshape(1, 1)
        elif array.ndim == 1:
            array = array[:, None]
        rows = [[self._token(v) for v in row.ravel()] for row in array]
        special = {self._token(s) for s in (self.mask_token, self.oov_token) if s is not None}
        counts: dict[Any, int] = {}
        documents: dict[Any, int] = {}
        for row in rows:
            for token in row:
                counts[token] = counts.get(token, 0) + 1
            for token in set(row):
                documents[token] = documents.get(token, 0) + 1
        ranked = sorted(
            ((c, t) for t, c in counts.items() if t not in special),
            key=lambda item: (item[0], item[1]),
            reverse=True,
        )
        room = None if not self.max_tokens else self.max_tokens - self._token_start_index()
        tokens = [t for _, t in ranked[:room]]
        idf = None
        if self.output_mode == "tf_idf":
            idf = [math.log(1 + len(rows) / (1 + documents[t])) for t in tokens]
        if not tokens:
            raise ValueError(f"Layer '{self.name}': adapt found no tokens in the data.")
        self.set_vocabulary(tokens, idf)

    # --- calling --------------------------------------------------------------------------
    def _depth(self) -> int | None:
        if self.pad_to_max_tokens and self.max_tokens is not None:
            return self.max_tokens
        if not self._tokens:
            return self._declared_size
        return self.vocabulary_size()

    def _lookup(self, values: np.ndarray) -> np.ndarray:
        flat = values.ravel()
        out = np.empty(flat.shape, dtype=np.int64)
        mask = None if self.mask_token is None else self._token(self.mask_token)
        oov_start = self._oov_start_index()
        dropped = -2  # masked entries, dropped from counts (Keras maps them past the depth)
        for i, value in enumerate(flat):
            token = self._token(value)
            if mask is not None and token == mask:
                out[i] = 0 if self.output_mode == "int" else dropped
                continue
            index = self._index.get(token)
            if index is None:
                if self.num_oov_indices:
                    oov = int(token) % self.num_oov_indices if not self._string else 0
                    index = oov_start + oov
                elif self._on_placeholders():
                    index = self._token_start_index()  # a placeholder, not a token
                else:
                    raise ValueError(
                        f"Layer '{self.name}': when `num_oov_indices=0` an input should be "
                        f"in vocabulary; received {value!r}."
                    )
            out[i] = index
        return out.reshape(values.shape)

    def _inverse(self, values: np.ndarray) -> np.ndarray:
        vocabulary = self.get_vocabulary()
        if self.mask_token is not None and self.output_mode == "int":
            vocabulary[0] = self.mask_token
        flat = values.ravel().astype(np.int64)
        out = [vocabulary[i] if 0 <= i < len(vocabulary) else self.oov_token for i in flat]
        dtype = object if self._string else np.int64
        return np.asarray(out, dtype=dtype).reshape(values.shape)

    def _has_vocabulary(self) -> bool:
        return bool(self._tokens)

    def call(self, inputs: Any) -> Tensor:
        raw = np.asarray(inputs.data if isinstance(inputs, Tensor) else inputs)
        if not self._string and not self.invert and raw.dtype.kind not in "iubf":
            # Keras casts numbers to the vocabulary's integers; text is an error.
            raise ValueError(
                f"Layer '{self.name}' ({type(self).__name__}) expects integer input; "
                f"received dtype {raw.dtype}."
            )
        values = raw.astype(object)
        if not self._tokens:
            if not self._on_placeholders() or (self.output_mode != "int" and self._depth() is None):
                raise self._missing_vocabulary()
            shape = self.compute_output_shape(values.shape)
            shape = tuple(1 if d is None else d for d in shape)
            if self.invert:
                return Tensor._make(np.zeros(shape, object if self._string else np.int64))
            dtype = np.int64 if self.output_mode == "int" else self.dtype
            return Tensor._make(np.zeros(shape, dtype))
        if self.invert:
            return Tensor._make(self._inverse(values))
        indices = self._lookup(values)
        if self.output_mode == "int":
            return Tensor._make(indices)
        depth = self._depth()
        if self.output_mode == "one_hot":
            if indices.ndim > 1 and indices.shape[-1] == 1:
                indices = indices[..., 0]
            rows = indices.reshape(-1)
            out = np.zeros((len(rows), depth), dtype=np.float64)
            keep = (rows >= 0) & (rows < depth)
            out[np.nonzero(keep)[0], rows[keep]] = 1.0
            return Tensor._make(out.reshape((*indices.shape, depth)).astype(self.dtype))
        if indices.ndim == 1:
            indices = indices[:, None]
        out = count_rows(indices.reshape(-1, indices.shape[-1]), depth)
        if self.output_mode == "multi_hot":
            out = (out > 0).astype(np.float64)
        elif self.output_mode == "tf_idf":
            out *= (
                self._idf[:depth]
                if len(self._idf) >= depth
                else np.pad(self._idf, (0, depth - len(self._idf)))
            )
        return Tensor._make(out.reshape((*indices.shape[:-1], depth)).astype(self.dtype))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        input_shape = tuple(input_shape)
        if self.output_mode == "int":
            return input_shape
        depth = self._depth()
        if self.output_mode == "one_hot":
            if len(input_shape) > 1 and input_shape[-1] == 1:
                return (*input_shape[:-1], depth)
            return (*input_shape, depth)
        if len(input_shape) == 1:
            return (input_shape[0], depth)
        return (*input_shape[:-1], depth)

    # --- saving (Keras 3's hooks) ---------------------------------------------------------
    def save_own_variables(self, store: Any) -> None:
        """Keras' layout: tf-idf weights (the special tokens' included) as ``idf_weights``."""
        if self.output_mode == "tf_idf" and self._idf is not None:
            store["idf_weights"] = np.asarray(self._idf, dtype=np.float32)

    def load_own_variables(self, store: Any) -> None:
        """Keras' layout: tf-idf weights, applied with the vocabulary (config or assets)."""
        if self.output_mode == "tf_idf" and "idf_weights" in store:
            weights = np.asarray(store["idf_weights"], dtype=np.float64).ravel()
            if weights.size > MAX_VOCABULARY:
                raise ValueError(f"Layer '{self.name}': {weights.size} idf weights, too many.")
            if self._tokens:
                if len(weights) < self.vocabulary_size():
                    raise ValueError(
                        f"Layer '{self.name}': {len(weights)} idf weights for a vocabulary "
                        f"of {self.vocabulary_size()}."
                    )
                self._idf = weights
            else:
                self._pending_idf = weights

    def load_assets(self, dir_path: str) -> None:
        """Read Keras' ``vocabulary.txt`` when the config did not carry the vocabulary."""
        if self._tokens:
            return  # the config's vocabulary (Keras does the same)
        lines = read_vocabulary(dir_path, self.name)
        values = [line if self._string else _integer(line, self.name) for line in lines]
        idf = self._pending_idf
        if self.output_mode == "tf_idf":
            if idf is None:
                raise ValueError(f"Layer '{self.name}': tf-idf vocabulary without idf_weights.")
            idf = idf[: len(values)]
        self.set_vocabulary(values, idf)
        self._pending_idf = None

    def _config_vocabulary(self) -> list | None:
        return list(self._tokens) or None

    def get_config(self) -> dict:
        idf = None
        if self._idf is not None:
            start = self._token_start_index()
            idf = self._idf[start : start + len(self._tokens)].tolist()
        return {
            **super().get_config(),
            "invert": self.invert,
            "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices,
            "oov_token": self.oov_token,
            "mask_token": self.mask_token,
            "output_mode": self.output_mode,
            "sparse": False,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "idf_weights": idf,
            "vocabulary": self._config_vocabulary(),
            "vocabulary_size": self.vocabulary_size() if self._tokens else self._declared_size,
            "oov_method": "floormod",
            "salt": None,
        }


MAX_VOCABULARY = 50_000_000
VOCABULARY_FILE = "vocabulary.txt"


def read_vocabulary(dir_path: str, name: str) -> list[str]:
    """The lines of Keras' ``vocabulary.txt`` in ``dir_path`` (trailing empty lines
    dropped, as Keras)."""
    path = os.path.join(dir_path, VOCABULARY_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"Layer '{name}': the file's assets hold no {VOCABULARY_FILE}.")
    with open(path, encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    while lines and lines[-1] == "":
        lines.pop()
    if len(lines) > MAX_VOCABULARY:
        raise ValueError(f"Layer '{name}': {VOCABULARY_FILE} holds {len(lines)} tokens.")
    return lines


def _integer(line: str, name: str) -> int:
    try:
        return int(line)
    except ValueError:
        raise ValueError(
            f"Layer '{name}': {VOCABULARY_FILE} holds {line[:40]!r}, not an integer."
        ) from None


@register_layer
class StringLookup(_IndexLookup):
    """Strings to indices with Keras 3's arguments (see ``_IndexLookup``): ``oov_token``
    ``"[UNK]"``, no mask token by default; ``encoding`` is accepted (UTF-8 only). Inputs of
    any shape; numbers are looked up as their decimal strings."""

    example = {
        "kwargs": {"vocabulary": ["1", "2", "3"], "output_mode": "count"},
        "input_shape": (2, 4),
        "input_dtype": "int64",
        "input_range": (0, 5),
    }

    def __init__(
        self,
        max_tokens: int | None = None,
        num_oov_indices: int = 1,
        mask_token: Any = None,
        oov_token: str = "[UNK]",
        vocabulary: Any = None,
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        pad_to_max_tokens: bool = False,
        sparse: bool = False,
        encoding: str = "utf-8",
        **kwargs: Any,
    ) -> None:
        if str(encoding).lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise ValueError(f"StringLookup(encoding={encoding!r}): dendrite reads UTF-8 only.")
        kwargs.pop("vocabulary_dtype", None)
        super().__init__(
            max_tokens,
            num_oov_indices,
            mask_token,
            oov_token,
            vocabulary=vocabulary,
            idf_weights=idf_weights,
            invert=invert,
            output_mode=output_mode,
            sparse=sparse,
            pad_to_max_tokens=pad_to_max_tokens,
            **kwargs,
        )
        self.encoding = "utf-8"

    def get_config(self) -> dict:
        return {**super().get_config(), "encoding": self.encoding}


@register_layer
class IntegerLookup(_IndexLookup):
    """Integers to indices with Keras 3's arguments (see ``_IndexLookup``): ``oov_token``
    -1, no mask token by default; several OOV indices bucket by ``value % n``."""

    _string = False
    example = {
        "kwargs": {"vocabulary": [3, 5, 7], "num_oov_indices": 2, "output_mode": "multi_hot"},
        "input_shape": (2, 4),
        "input_dtype": "int64",
        "input_range": (0, 9),
    }

    def __init__(
        self,
        max_tokens: int | None = None,
        num_oov_indices: int = 1,
        mask_token: Any = None,
        oov_token: int = -1,
        output_mode: str = "int",
        sparse: bool = False,
        vocabulary: Any = None,
        vocabulary_dtype: str = "int64",
        idf_weights: Any = None,
        invert: bool = False,
        pad_to_max_tokens: bool = False,
        **kwargs: Any,
    ) -> None:
        if vocabulary_dtype not in ("int64", "int32"):
            raise ValueError(
                f"IntegerLookup(vocabulary_dtype={vocabulary_dtype!r}): expected 'int64' or "
                f"'int32'."
            )
        super().__init__(
            max_tokens,
            num_oov_indices,
            mask_token,
            oov_token,
            vocabulary=vocabulary,
            idf_weights=idf_weights,
            invert=invert,
            output_mode=output_mode,
            sparse=sparse,
            pad_to_max_tokens=pad_to_max_tokens,
            **kwargs,
        )
        self.vocabulary_dtype = vocabulary_dtype

    def get_config(self) -> dict:
        return {**super().get_config(), "vocabulary_dtype": self.vocabulary_dtype}
