"""Fused, numerically stable loss primitives: cross-entropies taken straight from logits.

Every classification step ends in one of these, so each works in a few whole-array passes
and keeps only what its backward pass needs. Written with ``z`` the logits, ``y`` the
targets, ``C`` the number of classes along ``axis`` and ``g = dL/d(loss)`` per sample:

- ``softmax_cross_entropy(y, z)``: ``l = -sum_c y_c log softmax(z)_c``
  ``= sum_c(y_c) (m + log sum_c e^(z_c - m)) - sum_c y_c z_c`` with ``m = max_c z_c``, so
  no exponential overflows and no logarithm of 0 is ever taken;
  ``dl/dz = g (softmax(z) sum_c(y_c) - y)``, ``dl/dy = -g log_softmax(z)``.
- ``sparse_softmax_cross_entropy(k, z)``: the same with ``y = onehot(k)``:
  ``l = m + log sum_c e^(z_c - m) - z_k``, ``dl/dz = g (softmax(z) - onehot(k))``.
- ``sigmoid_binary_cross_entropy(y, z)``, element-wise:
  ``l = -y log s(z) - (1 - y) log(1 - s(z)) = max(z, 0) - z y + log(1 + e^(-|z|))``,
  ``dl/dz = g (s(z) - y)``, ``dl/dy = -g z``, with ``s`` the logistic sigmoid.

Keras computes the same quantities (``tf.nn.softmax_cross_entropy_with_logits``,
``sparse_softmax_cross_entropy_with_logits``, ``sigmoid_cross_entropy_with_logits``);
PyTorch calls them ``F.cross_entropy`` and ``F.binary_cross_entropy_with_logits``.

Keras's own ops, ``binary_crossentropy``, ``categorical_crossentropy`` and
``sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1)``, take logits
or probabilities: with ``from_logits=True``, or when ``output`` came from the softmax
(sigmoid) op, whose logits it keeps (``_origin``, recorded or not), they use the fused
primitives above; otherwise they clip probabilities to ``[eps, 1 - eps]`` (``eps =
epsilon()``, 1e-7), renormalising categorical ones to sum to 1, exactly as Keras.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _native, _settings
from dendrite.core import Function, Tensor, as_array, register
from dendrite.ops._util import unbroadcast
from dendrite.ops.comparison import clip
from dendrite.ops.creation import as_float_tensor, cast
from dendrite.ops.indexing import take_along_axis
from dendrite.ops.movement import reshape
from dendrite.ops.reduce import sum as reduce_sum
from dendrite.ops.softmax import exp_shifted, rows_of, softmax_origin
from dendrite.ops.unary import log, negative

_vecdot = getattr(np, "vecdot", None)


def _dot_along(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """``sum(a * b, axis)`` without materialising the product where NumPy allows it."""
    if _vecdot is not None and a.shape == b.shape:
        return _vecdot(a, b, axis=axis)
    return np.sum(a * b, axis=axis)


def _class_axis(axis: Any, ndim: int, op: str) -> int:
    if ndim == 0:
        raise ValueError(f"{op}: logits must have at least one axis (the classes), got a scalar.")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"{op}: axis must be an int, got {axis!r}.")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for logits of rank {ndim}.")
    return int(axis) % ndim


@register("softmax_cross_entropy")
class SoftmaxCrossEntropy(Function):
    """Per-sample ``-sum(y * log_softmax(z))`` along ``axis`` (see the module docstring)."""

    def forward(self, labels: np.ndarray, logits: np.ndarray, axis: int = -1) -> np.ndarray:
        axis = _class_axis(axis, logits.ndim, "softmax_cross_entropy")
        if labels.shape != logits.shape:
            raise ValueError(
                f"softmax_cross_entropy: labels and logits must have the same shape, got "
                f"labels {labels.shape} and logits {logits.shape} (use "
                f"sparse_softmax_cross_entropy for integer labels)."
            )
        if labels.dtype != logits.dtype:
            labels = labels.astype(logits.dtype)
        shifted = logits - logits.max(axis=axis, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=axis, keepdims=True)
        log_total = np.log(total)
        label_mass = labels.sum(axis=axis)
        # -sum y (shifted - log_total) = sum(y) log_total - sum(y * shifted)
        loss = label_mass * np.squeeze(log_total, axis) - _dot_along(labels, shifted, axis)
        if self.needs_grad:
            softmax = None
            log_softmax = None
            if self.needs_grad[1]:
                exp /= total
                softmax = exp
            if self.needs_grad[0]:
                shifted -= log_total
                log_softmax = shifted
            self.saved = (labels, softmax, log_softmax, label_mass, axis)
        return loss

    def backward(self, g: np.ndarray) -> tuple:
        labels, softmax, log_softmax, label_mass, axis = self.saved
        g_col = np.expand_dims(g, axis)
        grad_labels = grad_logits = None
        if self.needs_grad[1]:
            grad_logits = softmax * np.expand_dims(g * label_mass, axis)
            grad_logits -= labels * g_col
        if self.needs_grad[0]:
            grad_labels = log_softmax * -g_col
        return grad_labels, grad_logits


def _moved_to_last(array: np.ndarray, axis: int) -> np.ndarray:
    return array if axis == array.ndim - 1 else np.moveaxis(array, axis, -1)


@register("sparse_softmax_cross_entropy")
class SparseSoftmaxCrossEntropy(Function):
    """Per-sample ``-log_softmax(z)[k]`` for integer labels ``k`` (see the module docstring).

    ``ignore_class``: labels equal to it give loss 0 and gradient 0 (Keras's option, for
    "void" pixels in segmentation). ``softmax``: (probabilities, shift, sum) of these
    logits from a recorded softmax over the last axis (``softmax_origin``), used instead
    of computing them again; the result is the same.
    """

    def forward(
        self,
        labels: np.ndarray,
        logits: np.ndarray,
        axis: int = -1,
        ignore_class: int | None = None,
        softmax: tuple | None = None,
    ) -> np.ndarray:
        op = "sparse_softmax_cross_entropy"
        axis = _class_axis(axis, logits.ndim, op)
        expected = logits.shape[:axis] + logits.shape[axis + 1 :]
        if labels.shape != expected:
            raise ValueError(
                f"{op}: labels must have the shape of the logits without the class axis "
                f"{axis}: expected {expected}, got {labels.shape} (logits {logits.shape})."
            )
        z = _moved_to_last(logits, axis)
        classes = z.shape[-1]
        wants_grad = bool(self.needs_grad and self.needs_grad[1])
        small = rows_of(z) is not None  # csrc/softmax.c takes z
        # A small batch's labels are checked and looked up by csrc/softmax.c in one call
        # (NumPy takes six); the same values either way.
        if ignore_class is None and labels.dtype.kind in "iu" and small:
            valid = None
            at_label, picked = _picked_labels(labels, z, op)
        else:
            labels, valid = check_sparse_labels(labels, classes, ignore_class, op)
            # Each sample's label as an index into the flattened logits (1-D indexing is
            # about twice as fast as a pair of index arrays, and the backward reuses it).
            at_label = np.arange(0, labels.size * classes, classes, dtype=np.intp)
            at_label += labels.reshape(-1).astype(np.intp, copy=False)  # in range: checked
            picked = z.reshape(-1)[at_label].reshape(labels.shape)
        if softmax is not None and axis == logits.ndim - 1:
            # The recorded softmax of these logits: e^(z - m) / sum, m and sum.
            probabilities, top, total = softmax
        elif small:
            exp, top, total = exp_shifted(z, normalize=wants_grad, floored=False)
            probabilities = exp if wants_grad else None
        else:
            probabilities = None
            # The ufuncs' own reductions: ndarray.max/sum add a Python wrapper (hot path).
            top = np.maximum.reduce(z, axis=-1, keepdims=True)
            exp = z - top
            np.exp(exp, out=exp)
            total = np.add.reduce(exp, axis=-1, keepdims=True)
        # -log softmax(z)_k = m + log sum e^(z - m) - z_k
        loss = np.log(total[..., 0])
        loss += top[..., 0]
        loss -= picked
        if valid is not None:
            loss *= valid
        if wants_grad:
            if probabilities is None:
                exp /= total
                probabilities = exp
            self.saved = (at_label, probabilities, valid, axis)
        return loss

    def backward(self, g: np.ndarray) -> tuple:
        at_label, softmax, valid, axis = self.saved
        if (
            valid is None
            and g.dtype == softmax.dtype
            and at_label.dtype == np.intp
            and rows_of(softmax) is not None
        ):
            # softmax * g, minus g at each label, in one call (NumPy's bits).
            grad = np.empty(softmax.shape, dtype=softmax.dtype)
            _native.kernels.sparse_grad(
                softmax, np.ascontiguousarray(g), at_label, grad, at_label.size, softmax.shape[-1]
            )
            return None, grad if axis == grad.ndim - 1 else np.moveaxis(grad, -1, axis)
        if valid is not None:
            g = g * valid
        # C order (the softmax keeps the layout of moved logits), so that reshape is a view
        grad = np.multiply(softmax, g[..., None], order="C")
        grad.reshape(-1)[at_label] -= g.reshape(-1)
        if axis != grad.ndim - 1:
            grad = np.moveaxis(grad, -1, axis)
        return None, grad


def _picked_labels(labels: np.ndarray, z: np.ndarray, op: str) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices of the labels in ``z``, ``z`` at the labels) for integer ``labels``
    and a ``z`` that ``rows_of`` takes, by csrc/softmax.c; a label outside ``[0, classes)``
    raises ``check_sparse_labels``' error."""
    indices = labels if labels.dtype == np.intp else labels.astype(np.intp)
    at_label = np.empty(labels.size, dtype=np.intp)
    picked = np.empty(labels.shape, dtype=z.dtype)
    classes = z.shape[-1]
    bad = _native.kernels.sparse_pick(
        np.ascontiguousarray(indices), z, picked, at_label, labels.size, classes
    )
    if bad >= 0:
        check_sparse_labels(labels, classes, None, op)  # raises, naming the extreme label
        raise ValueError(
            f"{op}: label {labels.reshape(-1)[bad]} is out of range for {classes} classes."
        )
    return at_label, picked


def check_sparse_labels(
    labels: np.ndarray, classes: int, ignore_class: int | None, op: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer labels in ``[0, classes)`` (ignored ones replaced by 0) and the valid mask."""
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"{op}: labels contain NaN or infinity.")
        labels = labels.astype(np.intp)
    elif labels.dtype.kind not in "iub":
        raise TypeError(f"{op}: labels must be integers, got dtype {labels.dtype}.")
    valid = None
    if ignore_class is not None:
        keep = labels != ignore_class
        labels = np.where(keep, labels, 0)
        valid = keep
    if labels.size:
        low, high = np.minimum.reduce(labels, axis=None), np.maximum.reduce(labels, axis=None)
        if low < 0 or high >= classes:
            bad = int(low) if low < 0 else int(high)
            raise ValueError(
                f"{op}: label {bad} is out of range for {classes} classes (labels must be in "
                f"[0, {classes - 1}]); check that the last layer has one unit per class."
            )
    return labels, valid


@register("sigmoid_binary_cross_entropy")
class SigmoidBinaryCrossEntropy(Function):
    """Element-wise ``max(z, 0) - z y + log1p(exp(-|z|))`` (see the module docstring)."""

    def forward(self, labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
        if labels.dtype != logits.dtype:
            labels = labels.astype(logits.dtype)
        try:
            zy = np.asarray(logits * labels)  # a 0-d array, not a scalar: written in place below
        except ValueError:
            raise ValueError(
                f"sigmoid_binary_cross_entropy: labels {labels.shape} and logits "
                f"{logits.shape} cannot be broadcast together."
            ) from None
        decay = np.asarray(np.abs(logits))
        np.negative(decay, out=decay)
        np.exp(decay, out=decay)  # e^(-|z|), in (0, 1]: never overflows
        loss = np.subtract(np.maximum(logits, 0), zy, out=zy)
        loss += np.log1p(decay)
        if self.needs_grad:
            self.saved = (labels, logits, decay)
        return loss

    def backward(self, g: np.ndarray) -> tuple:
        labels, logits, decay = self.saved
        grad_labels = grad_logits = None
        if self.needs_grad[1]:
            # s(z) = 1 / (1 + e^-z) for z >= 0, e^z / (1 + e^z) otherwise: both use e^(-|z|)
            sig = np.where(logits >= 0, 1.0, decay).astype(logits.dtype, copy=False)
            sig /= 1.0 + decay
            grad_logits = unbroadcast(g * (sig - labels), logits.shape)
        if self.needs_grad[0]:
            grad_labels = unbroadcast(-g * logits, labels.shape)
        return grad_labels, grad_logits


def softmax_cross_entropy(labels: Any, logits: Any, axis: int = -1) -> Tensor:
    """Cross-entropy of ``softmax(logits)`` against a target distribution, per sample.

    Args:
        labels: one-hot or soft targets (label smoothing: pass smoothed targets), shaped
            like ``logits``.
        logits: unnormalised scores.
        axis: the class axis.

    Returns:
        ``-sum(labels * log_softmax(logits), axis)``: ``logits``' shape without ``axis``.
    """
    return SoftmaxCrossEntropy.apply(labels, logits, axis=axis)


def sparse_softmax_cross_entropy(
    labels: Any, logits: Any, axis: int = -1, ignore_class: int | None = None
) -> Tensor:
    """Cross-entropy of ``softmax(logits)`` against integer class labels, per sample.

    Args:
        labels: integers in ``[0, classes)``, shaped like ``logits`` without ``axis``
            (anything else raises ValueError naming the bad label).
        logits: unnormalised scores.
        axis: the class axis.
        ignore_class: a label value that contributes neither loss nor gradient.

    Returns:
        ``-log_softmax(logits)[labels]``: ``logits``' shape without ``axis``.
    """
    return SparseSoftmaxCrossEntropy.apply(labels, logits, axis=axis, ignore_class=ignore_class)


def sigmoid_binary_cross_entropy(labels: Any, logits: Any) -> Tensor:
    """Binary cross-entropy of ``sigmoid(logits)`` against targets in [0, 1], element-wise.

    Args:
        labels: targets (0/1, or smoothed values in between), broadcastable to ``logits``.
        logits: unnormalised scores.

    Returns:
        ``max(z, 0) - z * y + log1p(exp(-|z|))`` element by element.
    """
    return SigmoidBinaryCrossEntropy.apply(labels, logits)


# --- Keras's ``keras.ops`` cross-entropies: logits or probabilities ----------------------------
def softmax_logits(output: Any, axis: int = -1) -> Tensor | None:
    """The logits ``z`` when ``output = softmax(z)`` over ``axis`` (see ``softmax_origin``)."""
    found = softmax_origin(output, axis)
    return None if found is None else found.logits


def sigmoid_logits(output: Any) -> Tensor | None:
    """The logits ``z`` when ``output = sigmoid(z)``, recorded or not (``_origin``)."""
    origin = getattr(output, "_origin", None)
    return origin[1] if origin is not None and origin[0] == "sigmoid" else None


def clip_probabilities(p: Tensor) -> Tensor:
    """``p`` clipped to ``[eps, 1 - eps]`` with Keras' ``epsilon()`` (1e-7 by default)."""
    eps = _settings.epsilon()
    return clip(p, eps, 1.0 - eps)


def _target_like(target: Any, output: Tensor) -> Tensor:
    if isinstance(target, Tensor):
        return target if target.dtype == output.dtype else cast(target, output.dtype)
    return Tensor._make(as_array(target).astype(output.dtype, copy=False))


def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Tensor:
    """Element-wise binary cross-entropy ``-(y log p + (1 - y) log(1 - p))`` (Keras's op).

    With logits (``from_logits=True``, or ``output`` from the sigmoid op) the fused stable
    ``sigmoid_binary_cross_entropy``; otherwise ``p`` is clipped to ``[eps, 1 - eps]``.
    """
    output = as_float_tensor(output)
    target = _target_like(target, output)
    logits = output if from_logits else sigmoid_logits(output)
    if logits is not None:
        return sigmoid_binary_cross_entropy(target, logits)
    p = clip_probabilities(output)
    return negative(target * log(p) + (1.0 - target) * log(1.0 - p))


def categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> Tensor:
    """Cross-entropy ``-sum(y log p)`` over the class ``axis`` (Keras's op).

    With logits (``from_logits=True``, or ``output`` from the softmax op over ``axis``) the
    fused ``softmax_cross_entropy``; otherwise ``p`` is renormalised to sum to 1 and clipped
    to ``[eps, 1 - eps]``, as Keras.
    """
    output = as_float_tensor(output)
    axis = _class_axis(axis, output.ndim, "categorical_crossentropy")
    target = _target_like(target, output)
    if target.shape != output.shape:
        raise ValueError(
            f"categorical_crossentropy: target and output must have the same shape, got "
            f"{target.shape} and {output.shape} (integer labels need "
            f"sparse_categorical_crossentropy)."
        )
    logits = output if from_logits else softmax_logits(output, axis)
    if logits is not None:
        return softmax_cross_entropy(target, logits, axis=axis)
    p = clip_probabilities(output / reduce_sum(output, axis=axis, keepdims=True))
    return negative(reduce_sum(target * log(p), axis=axis))


def sparse_categorical_crossentropy(
    target: Any,
    output: Any,
    from_logits: bool = False,
    axis: int = -1,
    ignore_class: int | None = None,
) -> Tensor:
    """Cross-entropy ``-log p[label]`` for integer labels (Keras's op).

    ``target`` has ``output``'s shape without ``axis`` (a trailing size-1 axis is
    accepted); labels outside ``[0, classes)`` raise ValueError. With logits (or a softmax
    softmax) the fused ``sparse_softmax_cross_entropy``; otherwise ``p`` renormalised and
    clipped as in ``categorical_crossentropy``. ``ignore_class``: loss 0 for that label.
    """
    op = "sparse_categorical_crossentropy"
    output = as_float_tensor(output)
    axis = _class_axis(axis, output.ndim, op)
    labels = as_array(target)
    if labels.ndim == output.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]
    expected = output.shape[:axis] + output.shape[axis + 1 :]
    if labels.shape != expected:
        raise ValueError(
            f"{op}: the target must hold one integer label per sample, shaped like the "
            f"output without its class axis: expected {expected} (or with a trailing 1), "
            f"got {labels.shape} for an output of shape {output.shape}."
        )
    if from_logits:
        return sparse_softmax_cross_entropy(labels, output, axis=axis, ignore_class=ignore_class)
    found = softmax_origin(output, axis)
    if found is not None:
        # A recorded softmax's own probabilities, shift and sum: the values the fused op
        # would compute again from the logits (it does, when the softmax was not recorded).
        kept = None if found.shift is None else (found.probabilities, found.shift, found.total)
        return SparseSoftmaxCrossEntropy.apply(
            labels, found.logits, axis=axis, ignore_class=ignore_class, softmax=kept
        )
    labels, valid = check_sparse_labels(labels, output.shape[axis], ignore_class, op)
    p = clip_probabilities(output / reduce_sum(output, axis=axis, keepdims=True))
    picked = take_along_axis(p, np.expand_dims(labels, axis), axis=axis)
    values = negative(log(reshape(picked, labels.shape)))
    if valid is not None:
        values = values * Tensor._make(valid.astype(values.dtype))
    return values
