"""The ``Loss`` base class, Keras's reductions, and ``LossFunctionWrapper``.

A loss maps ``(y_true, y_pred)`` to one value per sample, ``l_i``; the class then weighs and
reduces them to the scalar that training differentiates (Keras 3's rules):

- ``"sum_over_batch_size"`` (default) and ``"mean"``: ``sum_i w_i l_i / n``, with ``n`` the
  number of per-sample values (not the sum of the weights);
- ``"sum"``: ``sum_i w_i l_i``;
- ``"mean_with_sample_weight"``: ``sum_i w_i l_i / sum_i w_i`` (0 when the weights sum to 0);
- ``"none"`` or None: the weighted values ``w_i l_i`` themselves.

``w`` is ``sample_weight`` (1 when absent), aligned to the per-sample values (a trailing
size-1 axis is squeezed, missing trailing axes are added) and broadcast over them. Masked
entries (the ``_keras_mask`` a masking layer attached to ``y_pred``, or sparse
cross-entropy's ``ignore_class``) get weight 0, and the mean then runs over the valid
entries only (Keras's rule: the mask is scaled by ``n / valid``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dendrite import _settings, ops, registry
from dendrite.core import Tensor, as_array
from dendrite.ops.creation import as_float_tensor
from dendrite.registry import register
from dendrite.registry.naming import snake_case

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def standardize_reduction(reduction: Any) -> str | None:
    """Check a reduction name (see the module docstring)."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid reduction {reduction!r}: expected one of 'sum_over_batch_size', 'sum', "
            f"'mean', 'mean_with_sample_weight', 'none' or None."
        )
    return reduction


def targets_like(y_true: Any, y_pred: Tensor) -> Tensor:
    """``y_true`` in ``y_pred``'s dtype (the convention of every float loss)."""
    return as_float_tensor(y_true, y_pred.dtype)


def squeeze_or_expand(x1: Any, x2: Any, expand_rank_1: bool = True) -> tuple:
    """Keras's rank alignment for Tensors: when the ranks differ by one and the longer ends
    in a size-1 axis, squeeze it (or, for a rank-1 partner, expand that one instead)."""
    r1, r2 = len(x1.shape), len(x2.shape)
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = ops.expand_dims(x2, -1)
        else:
            x1 = ops.squeeze(x1, -1)
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = ops.expand_dims(x1, -1)
        else:
            x2 = ops.squeeze(x2, -1)
    return x1, x2


def _aligned_weight(values: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    values, weight = squeeze_or_expand(values, weight)
    extra = values.ndim - weight.ndim
    if extra > 0 and weight.ndim > 0:
        # per-sample weights over per-element losses: weigh every element of the sample
        weight = ops.reshape(weight, tuple(weight.shape) + (1,) * extra)
    return values, weight


def reduce_weighted_values(
    values: Tensor,
    sample_weight: Any = None,
    mask: np.ndarray | None = None,
    reduction: str | None = "sum_over_batch_size",
) -> Tensor:
    """Weigh per-sample ``values`` and reduce them (see the module docstring)."""
    reduction = standardize_reduction(reduction)
    weight = None
    if sample_weight is not None:
        weight = as_float_tensor(sample_weight, values.dtype)
    if mask is not None:
        keep = np.asarray(mask, dtype=values.dtype)
        if reduction in ("mean", "sum_over_batch_size"):
            valid = keep.sum()
            keep = keep * (keep.size / valid if valid else 0.0)
        keep_t = Tensor._make(keep.astype(values.dtype, copy=False))
        if weight is None:
            weight = keep_t
        else:
            keep_t, weight = squeeze_or_expand(keep_t, weight)
            weight = weight * keep_t
    if weight is not None:
        values, weight = _aligned_weight(values, weight)
        try:
            values = values * weight
        except ValueError:
            raise ValueError(
                f"sample_weight of shape {tuple(weight.shape)} does not match the per-sample "
                f"losses of shape {tuple(values.shape)}."
            ) from None
    if reduction in (None, "none") or values.shape in ((), (0,)):
        return values
    if reduction == "sum":
        return ops.sum(values)
    if reduction == "mean_with_sample_weight" and weight is not None:
        divisor = float(np.sum(np.broadcast_to(weight.data, values.shape)))
        total = ops.sum(values)
        return total / divisor if divisor else total * 0.0
    # sum / number of values: one graph node
    return ops.mean(values) if values.size else ops.sum(values)


class Loss:
    """Base class of losses: ``loss(y_true, y_pred, sample_weight=None)`` -> scalar Tensor.

    Subclasses implement ``call(y_true, y_pred)`` returning per-sample values; ``__call__``
    converts the inputs (``y_pred`` to a float Tensor, ``y_true`` to ``y_pred``'s dtype,
    except for losses with integer labels) and applies the reduction.

    Args:
        name: the loss's name (default: the snake-cased class name).
        reduction: "sum_over_batch_size" (default), "sum", "mean",
            "mean_with_sample_weight", "none" or None (see the module docstring).
        dtype: compute dtype; by default ``floatx()`` for arrays (as Keras casts them) and a
            Tensor's own float dtype (a float64 model, or a float64 gradient check, stays
            float64).
    """

    #: whether ``y_true`` holds integer class labels (left integer, not cast to float)
    integer_targets = False

    def __init__(
        self,
        name: str | None = None,
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        self.name = name or snake_case(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self.dtype = None if dtype is None else np.dtype(dtype)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Tensor:
        in_mask = getattr(y_pred, "_keras_mask", None)  # from a masking layer (Keras)
        dtype = self.dtype
        if dtype is None and not isinstance(y_pred, Tensor):
            dtype = np.dtype(_settings.floatx())  # arrays: Keras' floatx, as Keras casts
        y_pred = as_float_tensor(y_pred, dtype)
        if not self.integer_targets:
            y_true = targets_like(y_true, y_pred)
        values = self.call(y_true, y_pred)
        values = as_float_tensor(values, y_pred.dtype)
        mask = self.loss_mask(y_true, values)
        if in_mask is not None:
            in_mask = as_array(in_mask).astype(bool, copy=False)
            mask = in_mask if mask is None else in_mask & mask
        return reduce_weighted_values(values, sample_weight, mask, self.reduction)

    def call(self, y_true: Any, y_pred: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred).")

    def loss_mask(self, y_true: Any, values: Tensor) -> np.ndarray | None:
        """Entries of ``values`` to leave out of the mean (None: keep all)."""
        return None

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name, "reduction": self.reduction}
        if self.dtype is not None:
            config["dtype"] = self.dtype.name
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} reduction={self.reduction!r}>"


@register("loss")
class LossFunctionWrapper(Loss):
    """A ``Loss`` around a function ``fn(y_true, y_pred, **kwargs)`` of per-sample values.

    The ranks of ``y_true`` and ``y_pred`` are aligned first (a trailing size-1 axis is
    squeezed or added), so ``(n,)`` labels meet ``(n, 1)`` predictions element by element.

    Args:
        fn: the per-sample loss; any composition of dendrite ops (gradients come free).
        reduction, name, dtype: as for ``Loss`` (``name`` defaults to ``fn.__name__``).
        **kwargs: passed on to ``fn``.
    """

    def __init__(
        self,
        fn: Callable,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"LossFunctionWrapper needs a callable, got {fn!r}.")
        super().__init__(
            name=name or getattr(fn, "__name__", None), reduction=reduction, dtype=dtype
        )
        self.fn = fn
        if getattr(fn, "integer_targets", False):
            self.integer_targets = True
        self._fn_kwargs = kwargs

    def call(self, y_true: Any, y_pred: Tensor) -> Tensor:
        if isinstance(y_true, Tensor):
            y_true, y_pred = squeeze_or_expand(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["fn"] = getattr(self.fn, "__name__", repr(self.fn))
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        config = dict(config)
        fn = config.pop("fn", None)
        if cls is not LossFunctionWrapper:
            return cls(**config)
        if isinstance(fn, str):
            name, fn = fn, registry.get("loss", fn)
            if isinstance(fn, type):
                raise ValueError(
                    f"LossFunctionWrapper.from_config: fn={name!r} names a loss class; expected "
                    f"the name of a loss function such as 'mean_squared_error'."
                )
        return cls(fn, **config)

    def __repr__(self) -> str:
        fn = getattr(self.fn, "__name__", self.fn)
        return f"<{type(self).__name__}({fn}, kwargs={self._fn_kwargs}, name={self.name!r})>"
