"""``ops.ctc_loss``: against PyTorch's ``ctc_loss`` (values and gradients, float32 and
float64, any blank, repeats, empty targets, impossible alignments), against a brute-force
sum over every alignment, by finite differences in float64, and its errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import dendrite as tf
from dendrite.core import Tensor
from dendrite.testing import gradcheck

ops = tf.ops


def _case(seed: int, blank: int, dtype: str = "float64", n: int = 6, frames: int = 9):
    """Random logits and labels that avoid ``blank``, with a run of repeats in row 0, an
    empty target, a shortened output and one output too short for its labels."""
    rng = np.random.default_rng(seed)
    classes, width = 6, 4
    logits = (rng.standard_normal((n, frames, classes)) * 2).astype(dtype)
    labels = rng.integers(0, classes - 1, (n, width))
    labels[labels >= blank] += 1
    labels[0, :3] = labels[0, 0]  # a a a: needs two blanks between
    label_lengths = np.array([4, 3, 0, 2, 4, 1])[:n]
    logit_lengths = np.array([frames, frames - 2, 5, 3, 3, 1])[:n]
    return logits, labels, label_lengths, logit_lengths


def _torch_loss(logits, labels, label_lengths, logit_lengths, blank, upstream):
    torch = pytest.importorskip("torch")
    z = torch.tensor(logits, requires_grad=True)
    log_probs = torch.nn.functional.log_softmax(z, -1).transpose(0, 1)
    loss = torch.nn.functional.ctc_loss(
        log_probs,
        torch.tensor(labels),
        torch.tensor(logit_lengths),
        torch.tensor(label_lengths),
        blank=blank,
        reduction="none",
    )
    loss.backward(torch.tensor(upstream))
    return loss.detach().numpy(), z.grad.numpy()


def _ours(logits, labels, label_lengths, logit_lengths, blank, upstream):
    z = Tensor(logits, requires_grad=True)
    loss = ops.ctc_loss(labels, z, label_lengths, logit_lengths, mask_index=blank)
    loss.backward(upstream)
    return loss.numpy(), z.grad


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("blank", [0, 2, 5])
@pytest.mark.parametrize("seed", [0, 1])
def test_values_and_gradients_match_torch(seed, blank, dtype):
    logits, labels, label_lengths, logit_lengths = _case(seed, blank, dtype)
    upstream = np.random.default_rng(seed + 7).standard_normal(len(labels)).astype(dtype)
    value, grad = _ours(logits, labels, label_lengths, logit_lengths, blank, upstream)
    want, want_grad = _torch_loss(logits, labels, label_lengths, logit_lengths, blank, upstream)
    assert value.dtype == grad.dtype == np.dtype(dtype)
    # Row 4 (4 labels in 3 frames) has no alignment: +inf, and a NaN gradient over its
    # frames, as PyTorch (zero_infinity=False) and Keras return.
    assert np.isinf(value[4]) and value[4] > 0
    np.testing.assert_array_equal(np.isnan(grad), np.isnan(want_grad))
    assert np.isnan(grad[4, :3]).all() and (grad[4, 3:] == 0).all()
    tol = {"float32": (2e-5, 2e-5), "float64": (1e-11, 1e-12)}[dtype]
    np.testing.assert_allclose(value, want, rtol=tol[0], atol=tol[1])
    np.testing.assert_allclose(np.nan_to_num(grad), np.nan_to_num(want_grad), *tol)


def test_zero_output_length_and_empty_targets():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((3, 4, 3))
    labels = np.array([[0, 0], [1, 0], [2, 2]])  # row 0 is empty: its padding is ignored
    value, grad = _ours(logits, labels, [0, 1, 0], [0, 0, 4], 0, np.ones(3))
    assert value[0] == 0.0 and np.isposinf(value[1])  # nothing in no frames; a label cannot
    assert (grad[:2] == 0).all()  # no frames, no gradient
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(value[2], -log_probs[2, :, 0].sum(), rtol=1e-12)
    want, want_grad = _torch_loss(logits, labels, [0, 1, 0], [0, 0, 4], 0, np.ones(3))
    np.testing.assert_allclose(value, want)
    np.testing.assert_allclose(grad, want_grad, atol=1e-12)


def test_a_blank_inside_the_target_length_is_read_as_pytorch_reads_it():
    # keras.losses.ctc counts the non-zero labels, so [1, 0, 2] is read as [1, 0]: a blank
    # as a label, which PyTorch (Keras' torch backend) accepts. The values agree; PyTorch's
    # gradient does not match its own finite differences when the last label is the blank
    # (row 2, last frame), so the gradient is checked by finite differences here.
    logits = np.random.default_rng(1).standard_normal((3, 6, 4))
    labels, lengths = np.array([[1, 0, 2], [0, 0, 1], [2, 0, 0]]), [3, 3, 2]
    value, _ = _ours(logits, labels, lengths, [6, 6, 6], 0, np.ones(3))
    want, _ = _torch_loss(logits, labels, lengths, [6, 6, 6], 0, np.ones(3))
    np.testing.assert_allclose(value, want, rtol=1e-12)
    gradcheck(lambda z: ops.ctc_loss(labels, z, lengths, [6, 6, 6]), logits, mode="elementwise")


def _collapse(path, blank):
    merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
    return tuple(c for c in merged if c != blank)


def brute_force(logits: np.ndarray, blank: int) -> dict:
    """p(labelling) for one sample's (T, C) logits: every path summed into its collapse."""
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    frames, classes = probs.shape
    found: dict = {}
    for path in itertools.product(range(classes), repeat=frames):
        p = np.prod(probs[np.arange(frames), path])
        key = _collapse(path, blank)
        found[key] = found.get(key, 0.0) + p
    return found


@pytest.mark.parametrize("blank", [0, 2])
def test_every_labelling_against_the_sum_over_alignments(blank):
    logits = np.random.default_rng(4).standard_normal((5, 3))
    exact = brute_force(logits, blank)
    assert sum(exact.values()) == pytest.approx(1.0, abs=1e-12)
    width = max(len(k) for k in exact)
    keys = sorted(exact)
    labels = np.zeros((len(keys), width), int)
    for i, key in enumerate(keys):
        labels[i, : len(key)] = key
    batch = np.broadcast_to(logits, (len(keys), 5, 3))
    lengths = np.array([len(k) for k in keys])
    value = ops.ctc_loss(labels, batch, lengths, np.full(len(keys), 5), mask_index=blank)
    np.testing.assert_allclose(np.exp(-value.numpy()), [exact[k] for k in keys], rtol=1e-12)
    # a a a needs 5 frames (a - a - a): in 4 no path gives it
    short = ops.ctc_loss([[1, 1, 1]], logits[None, :4], [3], [4], mask_index=blank)
    assert np.isposinf(short.numpy()[0])


def test_gradients_by_finite_differences():
    logits, labels, label_lengths, logit_lengths = _case(5, 0, n=4, frames=6)
    gradcheck(
        lambda z: ops.ctc_loss(labels, z, label_lengths, logit_lengths), logits, name="ctc_loss"
    )
    gradcheck(
        lambda z: ops.ctc_loss(labels[:2, :2], z, [2, 1], [3, 2], mask_index=3),
        logits[:2, :3],
        mode="elementwise",
        name="ctc_loss blank 3",
    )


def test_a_second_backward_gives_the_same_gradient_and_float16_computes_in_float32():
    logits, labels, label_lengths, logit_lengths = _case(6, 0, "float32", n=3)
    z = Tensor(logits, requires_grad=True)
    loss = ops.sum(ops.ctc_loss(labels, z, label_lengths, logit_lengths))
    loss.backward(retain_graph=True)
    once = z.grad.copy()
    z.grad = None
    loss.backward()
    np.testing.assert_array_equal(z.grad, once)
    half = ops.ctc_loss(labels, logits.astype("float16"), label_lengths, logit_lengths)
    assert half.dtype == np.float32
    full = ops.ctc_loss(labels, logits, label_lengths, logit_lengths)
    np.testing.assert_allclose(half.numpy(), full.numpy(), rtol=2e-3)
    # integer lengths and labels given as floats of whole numbers are accepted
    again = ops.ctc_loss(labels.astype("float32"), logits, label_lengths * 1.0, logit_lengths)
    np.testing.assert_array_equal(again.numpy(), full.numpy())


def test_clear_errors():
    z = np.zeros((2, 5, 4), "float32")
    labels = np.array([[1, 2], [3, 0]])
    with pytest.raises(ValueError, match=r"ctc_loss: output .*\(batch, time, classes\).*\(2, 5\)"):
        ops.ctc_loss(labels, z[..., 0], [2, 1], [5, 5])
    with pytest.raises(ValueError, match=r"ctc_loss: target .*\(2, L\).*received .*\(2,\)"):
        ops.ctc_loss(labels[:, 0], z, [2, 1], [5, 5])
    with pytest.raises(ValueError, match=r"ctc_loss: target .*\(3, 2\)"):
        ops.ctc_loss(np.ones((3, 2), int), z, [2, 1], [5, 5])
    with pytest.raises(ValueError, match=r"target_length must have shape \(batch,\) = \(2,\)"):
        ops.ctc_loss(labels, z, [2, 1, 1], [5, 5])
    with pytest.raises(ValueError, match=r"target_length must be in \[0, 2\]; received 3"):
        ops.ctc_loss(labels, z, [3, 1], [5, 5])
    with pytest.raises(ValueError, match=r"output_length must be in \[0, 5\]; received 6"):
        ops.ctc_loss(labels, z, [2, 1], [6, 5])
    with pytest.raises(ValueError, match=r"output_length must be in \[0, 5\]; received -1"):
        ops.ctc_loss(labels, z, [2, 1], [-1, 5])
    with pytest.raises(ValueError, match=r"label 4, outside \[0, 4\)"):
        ops.ctc_loss([[1, 4], [3, 0]], z, [2, 1], [5, 5])
    with pytest.raises(ValueError, match=r"mask_index must be in \[0, 4\)"):
        ops.ctc_loss(labels, z, [2, 1], [5, 5], mask_index=4)
    with pytest.raises(ValueError, match="target must hold integers"):
        ops.ctc_loss(labels + 0.5, z, [2, 1], [5, 5])
    # padding past a row's length may be anything, -1 included
    ops.ctc_loss([[1, 2], [3, -1]], z, [2, 1], [5, 5])
    # a negative mask_index counts from the end, as TensorFlow's blank_index
    np.testing.assert_array_equal(
        ops.ctc_loss(labels, z, [2, 1], [5, 5], mask_index=-4).numpy(),
        ops.ctc_loss(labels, z, [2, 1], [5, 5], mask_index=0).numpy(),
    )
