"""Connectionist temporal classification (Graves et al., 2006): the loss, as ``keras.ops``.

For one sample with logits ``z`` (T frames, C classes, ``y_t = softmax(z_t)``), a label
sequence ``l = (l_1 .. l_L)`` and the blank ``b`` (``mask_index``), the extended sequence
``l' = (b, l_1, b, l_2, .., b, l_L, b)`` has ``S = 2L + 1`` states. A path through it emits
``y_t(l'_s)`` at frame t from state s and then stays (s), steps (s + 1) or skips a blank
(s + 2, allowed only into a label different from the one before it: ``l'_s != l'_{s-2}``).
Repeated labels therefore need a blank between them, so ``l`` fits in T frames only when
``T >= L + (number of i with l_i = l_{i-1})``.

Forward (alpha) recursion, in log space (``lse`` = log-sum-exp):

    alpha_0(0) = log y_0(b),   alpha_0(1) = log y_0(l_1),   alpha_0(s) = -inf otherwise
    alpha_t(s) = log y_t(l'_s) + lse(alpha_{t-1}(s), alpha_{t-1}(s-1), [alpha_{t-1}(s-2)])
    log p(l | z) = lse(alpha_{T-1}(S-1), alpha_{T-1}(S-2))           loss = -log p(l | z)

Backward (beta) recursion, the probability of finishing from state s after frame t:

    beta_{T-1}(S-1) = beta_{T-1}(S-2) = 0,   beta_{T-1}(s) = -inf otherwise
    beta_t(s) = lse over s' in {s, s+1, [s+2]} of beta_{t+1}(s') + log y_{t+1}(l'_{s'})

so ``gamma_t(s) = exp(alpha_t(s) + beta_t(s) - log p)`` is the posterior probability of
being in state s at frame t, and (the softmax's Jacobian folded in)

    dloss/dz_t(c) = y_t(c) - sum_{s : l'_s = c} gamma_t(s)

Each sample uses its own ``output_length`` frames and ``target_length`` labels; frames after
its ``output_length`` get a zero gradient. Everything is vectorised over the batch and the
states; only time is a Python loop.

What Keras (its PyTorch backend, ``torch.nn.functional.ctc_loss`` with ``zero_infinity=False``)
returns is kept where no alignment exists (``output_length`` too short for the labels and
their repeats): the loss is ``+inf`` and the gradient of that sample is NaN over its frames.
An empty target costs ``-sum_t log y_t(b)``; an empty target over zero frames costs 0.
``output`` of float16 is computed and returned in float32, as Keras does; float32 and
float64 stay as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, as_array, register
from dendrite.ops.creation import as_float_tensor, cast

_NEG_INF = -np.inf


def _logsumexp3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``log(e^a + e^b + e^c)`` element-wise, -inf where all three are -inf."""
    top = np.maximum(np.maximum(a, b), c)
    top[np.isneginf(top)] = 0.0  # all -inf: exp(-inf - 0) = 0, log 0 = -inf below
    total = np.exp(a - top)
    total += np.exp(b - top)
    total += np.exp(c - top)
    with np.errstate(divide="ignore"):
        np.log(total, out=total)
    total += top
    return total


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - np.max(z, axis=-1, keepdims=True)
    shifted -= np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    return shifted


@register("ctc_loss")
class CTCLoss(Function):
    """Per-sample CTC negative log-likelihood of logits (see the module docstring).

    Input: ``logits`` (batch, T, C). Options: ``labels`` (batch, L) integers (checked by
    ``ctc_loss``), ``label_lengths`` and ``logit_lengths`` (batch,), ``blank`` in [0, C).
    """

    def forward(
        self,
        logits: np.ndarray,
        labels: np.ndarray,
        label_lengths: np.ndarray,
        logit_lengths: np.ndarray,
        blank: int = 0,
    ) -> np.ndarray:
        n, frames, _ = logits.shape
        dtype = logits.dtype
        log_probs = _log_softmax(logits)
        ext, skip = _extended(labels, label_lengths, blank)
        states = ext.shape[1]
        # emit[t, i, s] = log y_t(l'_s) for sample i; time first, so each step is contiguous
        emit = np.take_along_axis(log_probs, ext[:, None, :], axis=2).transpose(1, 0, 2).copy()
        alpha = np.full((max(frames, 1), n, states), _NEG_INF, dtype=dtype)
        if frames:
            alpha[0, :, :2] = emit[0, :, :2]
        # 0 where the skip s - 2 -> s is allowed, -inf where not
        skip_bias = np.where(skip, 0.0, _NEG_INF).astype(dtype)
        step = np.full((n, states), _NEG_INF, dtype=dtype)
        jump = step.copy()
        for t in range(1, frames):
            previous = alpha[t - 1]
            step[:, 1:] = previous[:, :-1]
            np.add(previous[:, :-2], skip_bias[:, 2:], out=jump[:, 2:])
            alpha[t] = _logsumexp3(previous, step, jump)
            alpha[t] += emit[t]
        rows = np.arange(n)
        last = np.maximum(logit_lengths - 1, 0)
        end = 2 * label_lengths
        final = alpha[last, rows]
        before_end = np.where(end >= 1, final[rows, np.maximum(end - 1, 0)], _NEG_INF)
        log_p = np.logaddexp(final[rows, end], before_end)
        # no frames: the empty labelling has probability 1, any other 0
        log_p = np.where(logit_lengths == 0, np.where(label_lengths == 0, 0.0, _NEG_INF), log_p)
        log_p = log_p.astype(dtype, copy=False)
        loss = -log_p
        if self.needs_grad:
            self.saved = (
                log_probs,
                emit,
                alpha,
                ext,
                skip_bias,
                log_p,
                label_lengths,
                logit_lengths,
            )
        return loss

    def backward(self, g: np.ndarray) -> np.ndarray:
        log_probs, emit, alpha, ext, skip_bias, log_p, label_lengths, logit_lengths = self.saved
        n, frames, classes = log_probs.shape
        if frames == 0:
            return np.zeros_like(log_probs)
        states = ext.shape[1]
        end = _end_states(label_lengths, states, alpha.dtype)
        beta = np.full((max(frames, 1), n, states), _NEG_INF, dtype=alpha.dtype)
        ahead = np.full((n, states), _NEG_INF, dtype=alpha.dtype)
        ahead2 = ahead.copy()
        last = logit_lengths - 1
        for t in range(frames - 1, -1, -1):
            ends_here = last == t
            if t < frames - 1:
                following = beta[t + 1] + emit[t + 1]
                ahead[:, :-1] = following[:, 1:]
                # s -> s + 2 exists when s + 2 may be entered by a skip
                np.add(following[:, 2:], skip_bias[:, 2:], out=ahead2[:, :-2])
                beta[t] = _logsumexp3(following, ahead, ahead2)
                beta[t][last < t] = _NEG_INF
            beta[t][ends_here] = end[ends_here]
        with np.errstate(invalid="ignore"):
            # -inf - -inf = NaN for a sample without any alignment, as PyTorch gives
            gamma = np.exp(alpha + beta - log_p[None, :, None])  # (T, n, S)
        gamma = gamma.transpose(1, 0, 2)  # (n, T, S)
        onehot = np.zeros((n, states, classes), dtype=alpha.dtype)
        np.put_along_axis(onehot, ext[:, :, None], 1.0, axis=2)
        occupancy = np.matmul(gamma, onehot)  # sum of gamma over the states of each class
        grad = np.exp(log_probs)
        grad -= occupancy
        outside = np.arange(frames)[None, :] >= logit_lengths[:, None]
        grad[outside] = 0.0
        grad *= g.astype(grad.dtype, copy=False)[:, None, None]
        return grad


def _extended(
    labels: np.ndarray, label_lengths: np.ndarray, blank: int
) -> tuple[np.ndarray, np.ndarray]:
    """``l'`` (blank, l_1, blank, .., l_L, blank) per sample, padded with blanks after each
    sample's own ``2 L_i + 1`` states, and where a skip (s - 2 -> s) is allowed."""
    n, width = labels.shape
    inside = np.arange(width)[None, :] < label_lengths[:, None]
    used = np.where(inside, labels, blank)
    ext = np.full((n, 2 * width + 1), blank, dtype=np.intp)
    ext[:, 1::2] = used
    skip = np.zeros(ext.shape, dtype=bool)
    # as PyTorch: a label state other than the first, whose label differs from the last one
    skip[:, 3::2] = (used[:, 1:] != used[:, :-1]) & inside[:, 1:]
    return ext, skip


def _end_states(label_lengths: np.ndarray, states: int, dtype: np.dtype) -> np.ndarray:
    """beta at each sample's last frame: 0 on its states 2L and 2L - 1 (just 0 when L = 0)."""
    n = label_lengths.shape[0]
    end = np.full((n, states), _NEG_INF, dtype=dtype)
    rows = np.arange(n)
    end[rows, 2 * label_lengths] = 0.0
    has_label = label_lengths > 0
    end[rows[has_label], 2 * label_lengths[has_label] - 1] = 0.0
    return end


def ctc_loss(
    target: Any, output: Any, target_length: Any, output_length: Any, mask_index: int = 0
) -> Tensor:
    """CTC loss per sample, as ``keras.ops.ctc_loss`` (see the module docstring).

    Args:
        target: integer labels, (batch, max_label_length); only the first
            ``target_length[i]`` of row i are read, so any padding value works.
        output: logits, (batch, T, classes); ``log_softmax`` is applied inside.
        target_length: (batch,) label counts, in [0, max_label_length].
        output_length: (batch,) frame counts, in [0, T].
        mask_index: the blank class, in [0, classes) (a negative index counts from the end,
            as TensorFlow's ``blank_index``).

    Returns:
        The negative log-likelihood of each target, (batch,): ``+inf`` where the target
        cannot be aligned in ``output_length`` frames.
    """
    op = "ctc_loss"
    output = as_float_tensor(output)
    if output.dtype == np.float16:
        output = cast(output, "float32")  # Keras' result_type(float16, float32)
    if output.ndim != 3:
        raise ValueError(
            f"{op}: output must be logits of shape (batch, time, classes); received output "
            f"with shape {tuple(output.shape)}."
        )
    n, frames, classes = output.shape
    labels = _integers(target, "target", op)
    if labels.ndim != 2 or labels.shape[0] != n:
        raise ValueError(
            f"{op}: target must be integer labels of shape (batch, max_label_length) = "
            f"({n}, L) for output of shape {tuple(output.shape)}; received target with shape "
            f"{labels.shape}."
        )
    label_lengths = _lengths(target_length, "target_length", n, labels.shape[1], op)
    logit_lengths = _lengths(output_length, "output_length", n, frames, op)
    blank = _blank(mask_index, classes, op)
    inside = np.arange(labels.shape[1])[None, :] < label_lengths[:, None]
    used = labels[inside]
    if used.size and (used.min() < 0 or used.max() >= classes):
        bad = int(used.min()) if used.min() < 0 else int(used.max())
        raise ValueError(
            f"{op}: target holds the label {bad}, outside [0, {classes}) for output with "
            f"{classes} classes (within each row's target_length; pad after it)."
        )
    return CTCLoss.apply(
        output,
        labels=labels.astype(np.intp, copy=False),
        label_lengths=label_lengths,
        logit_lengths=logit_lengths,
        blank=blank,
    )


def _integers(value: Any, name: str, op: str) -> np.ndarray:
    array = as_array(value)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(f"{op}: {name} must hold integers; received non-integer values.")
        return array.astype(np.intp)
    if array.dtype.kind not in "iub":
        raise TypeError(f"{op}: {name} must be integers; received dtype {array.dtype}.")
    return array.astype(np.intp, copy=False)


def _lengths(value: Any, name: str, batch: int, most: int, op: str) -> np.ndarray:
    lengths = _integers(value, name, op)
    if lengths.shape != (batch,):
        raise ValueError(
            f"{op}: {name} must have shape (batch,) = ({batch},); received {name} with shape "
            f"{lengths.shape}."
        )
    if lengths.size and (lengths.min() < 0 or lengths.max() > most):
        bad = int(lengths.min()) if lengths.min() < 0 else int(lengths.max())
        raise ValueError(f"{op}: {name} must be in [0, {most}]; received {bad}.")
    return lengths


def _blank(mask_index: Any, classes: int, op: str) -> int:
    if isinstance(mask_index, bool) or not isinstance(mask_index, (int, np.integer)):
        raise TypeError(f"{op}: mask_index must be an int; received {mask_index!r}.")
    if not -classes <= mask_index < classes:
        raise ValueError(
            f"{op}: mask_index must be in [0, {classes}) for {classes} classes; received "
            f"{mask_index}."
        )
    return int(mask_index) % classes
