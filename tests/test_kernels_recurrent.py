"""The recurrent step kernels (csrc/recurrent.c) against the NumPy paths they replace
(dendrite/ops/recurrent/): forward outputs and every gradient of the fused LSTM, GRU and
SimpleRNN sequences, with masks, go_backwards, recurrent dropout masks, float32 and
float64, batch 1 and odd sizes.

The kernels are not bit-identical to NumPy: float32 uses a rational approximation of tanh
(at most about 3e-7 from the true value), float64 libm's tanh. The stated tolerances,
relative to the largest magnitude of the NumPy result (at least 1):

- float32: ``|kernel - numpy| <= 2e-5 * scale`` for states and gradients;
- float64: ``|kernel - numpy| <= 1e-11 * scale``;
- float32 with saturated gates (|pre-activation| up to ~50): ``1e-4 * scale``, as the
  derivatives ``1 - y^2`` cancel there (see ``test_kernel_saturated_float32``).

The NumPy paths themselves are checked elsewhere (finite differences in
tests/test_layers_recurrent*.py, PyTorch parity in tests/test_layers_recurrent_torch.py);
those tests also run through the kernels when they are loaded. Without the kernels
(``DENDRITE_NO_KERNELS=1``) the tests here are skipped (``tests/conftest.py``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dendrite import _native
from dendrite.core import Tensor
from dendrite.ops.recurrent import gru_sequence, lstm_sequence, simple_rnn_sequence

pytestmark = pytest.mark.needs_kernels

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-11}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def _arguments(cell: str, dtype, batch: int, steps: int, features: int, units: int, gain: float):
    """Positional inputs of the cell's primitive, weights scaled like Glorot's (times gain)."""
    rng = np.random.default_rng(batch * 100 + steps * 10 + units)
    width = GATES[cell] * units

    def normal(*shape, scale=1.0):
        return (rng.normal(size=shape) * scale).astype(dtype)

    x = normal(batch, steps, features)
    kernel = normal(features, width, scale=gain / np.sqrt(features))
    bias = normal(width, scale=0.5)
    h0 = normal(batch, units, scale=0.5)
    recurrent = normal(units, width, scale=gain / np.sqrt(units))
    if cell == "lstm":
        return [x, kernel, bias, h0, normal(batch, units, scale=0.5), recurrent]
    if cell == "gru":
        return [x, kernel, bias, h0, recurrent, normal(width, scale=0.5)]
    return [x, kernel, bias, h0, recurrent]


def _run(cell: str, arrays: list, options: dict, upstream: np.ndarray) -> list:
    """The forward output and the gradient of every input."""
    function = {"lstm": lstm_sequence, "gru": gru_sequence, "rnn": simple_rnn_sequence}[cell]
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    out = function(*tensors, **options)
    if upstream is not None:
        out.backward(upstream)
    return [out.data] + [t.grad for t in tensors]


def _both(monkeypatch, cell: str, arrays: list, options: dict) -> tuple[list, list]:
    assert _native.kernels is not None, "the kernels must be built for these tests"
    probe = _run(cell, arrays, options, None)[0]
    upstream = np.random.default_rng(7).normal(size=probe.shape).astype(probe.dtype)
    fast = _run(cell, arrays, options, upstream)
    monkeypatch.setattr(_native, "kernels", None)
    reference = _run(cell, arrays, options, upstream)
    monkeypatch.undo()
    return fast, reference


def _assert_close(fast: list, reference: list, dtype, tolerance: float | None = None) -> None:
    names = ["output", "x", "kernel", "bias", "h0", "5th", "6th"]
    tolerance = TOLERANCE[dtype] if tolerance is None else tolerance
    for name, a, b in zip(names, fast, reference):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape, name
        scale = max(1.0, float(np.max(np.abs(b))))
        np.testing.assert_allclose(a, b, rtol=0, atol=tolerance * scale, err_msg=name)


CASES = list(
    itertools.product(
        ["lstm", "gru", "rnn"],
        [np.float32, np.float64],
        [False, True],  # mask
        [False, True],  # go_backwards
    )
)


@pytest.mark.parametrize("cell, dtype, masked, reverse", CASES)
@pytest.mark.parametrize("batch, steps, units", [(1, 5, 4), (7, 9, 13), (32, 28, 16)])
@pytest.mark.parametrize("sequences", [True, False], ids=["sequences", "last"])
def test_kernel_matches_numpy(
    monkeypatch, cell, dtype, masked, reverse, batch, steps, units, sequences
):
    arrays = _arguments(cell, dtype, batch, steps, 3, units, gain=1.0)
    mask = None
    if masked:
        mask = np.random.default_rng(steps).random((batch, steps)) > 0.3
        mask[0, :2] = False  # a sample whose first steps are all padding
    options = {"mask": mask, "reverse": reverse, "sequences": sequences}
    fast, reference = _both(monkeypatch, cell, arrays, options)
    _assert_close(fast, reference, dtype)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_with_recurrent_dropout(monkeypatch, cell, dtype):
    batch, units = 5, 6
    arrays = _arguments(cell, dtype, batch, 6, 3, units, gain=1.0)
    keep = np.random.default_rng(3).random((batch, units)) > 0.4
    options = {"recurrent_mask": (keep / 0.6).astype(dtype), "mask": np.eye(batch, 6) == 0}
    fast, reference = _both(monkeypatch, cell, arrays, options)
    _assert_close(fast, reference, dtype)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_kernel_saturated_float32(monkeypatch, cell):
    """Large pre-activations (past the approximation's clamp at |x| = 7.9). Saturated
    gates' derivatives ``y (1 - y)``, ``1 - y^2`` cancel in float32 (one ulp of y moves
    them by 1e-7 absolute, a large part of their value), in the NumPy path as much as in
    the kernel: 1e-4 * scale here."""
    arrays = _arguments(cell, np.float32, 6, 7, 3, 5, gain=12.0)
    fast, reference = _both(monkeypatch, cell, arrays, {})
    _assert_close(fast, reference, np.float32, tolerance=1e-4)


def test_other_activations_keep_the_numpy_path(monkeypatch):
    """relu, hard_sigmoid and GRU reset_after=False have no kernel: both runs are NumPy's
    and give the same bits."""
    arrays = _arguments("lstm", np.float32, 3, 4, 2, 3, gain=1.0)
    options = {"activation": "relu", "recurrent_activation": "hard_sigmoid"}
    fast, reference = _both(monkeypatch, "lstm", arrays, options)
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)
    arrays = _arguments("gru", np.float32, 3, 4, 2, 3, gain=1.0)
    fast, reference = _both(monkeypatch, "gru", arrays, {"reset_after": False})
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


def test_float32_tanh_approximation():
    """The SimpleRNN step with no recurrence left (U = 0, h0 = 0) is tanh itself."""
    x = np.linspace(-12, 12, 24001, dtype=np.float32).reshape(1, -1, 1)
    out = _run(
        "rnn",
        [
            x,
            np.ones((1, 1), np.float32),
            np.zeros(1, np.float32),
            np.zeros((1, 1), np.float32),
            np.zeros((1, 1), np.float32),
        ],
        {},
        np.ones((1, x.shape[1], 1), np.float32),
    )[0]
    np.testing.assert_allclose(out.ravel(), np.tanh(x.astype(np.float64)).ravel(), atol=4e-7)
    assert np.all(np.abs(out) <= 1)


def test_argument_checks():
    kernels = _native.kernels
    u, batch, steps = 3, 2, 4
    gates = np.zeros((4 * u, steps, batch), np.float32)
    rec = np.zeros((4 * u, batch), np.float32)
    hs = np.zeros((u, steps + 1, batch), np.float32)
    act = np.zeros((u, steps, batch), np.float32)
    ok = (gates, rec, hs, hs.copy(), act, None)
    kernels.lstm_forward(*ok, u, batch, steps, steps - 1)
    with pytest.raises(ValueError):  # step out of range
        kernels.lstm_forward(*ok, u, batch, steps, steps)
    with pytest.raises(ValueError):  # wrong size
        kernels.lstm_forward(gates, rec[:-1], *ok[2:], u, batch, steps, 0)
    with pytest.raises(ValueError):  # the states without their initial column
        kernels.lstm_forward(gates, rec, act, act.copy(), act.copy(), None, u, batch, steps, 0)
    with pytest.raises(ValueError):  # mixed dtypes
        kernels.lstm_forward(gates, rec.astype(np.float64), *ok[2:], u, batch, steps, 0)
    with pytest.raises(ValueError):  # a bool mask (the kernels take 0s and 1s as floats)
        kernels.lstm_forward(*ok[:5], np.ones((steps, batch), bool), u, batch, steps, 0)
    with pytest.raises((ValueError, BufferError, TypeError)):  # not contiguous
        kernels.lstm_forward(
            gates, np.zeros((batch, 4 * u), np.float32).T, *ok[2:], u, batch, steps, 0
        )
    with pytest.raises((ValueError, BufferError, TypeError)):  # read-only output
        frozen = hs.copy()
        frozen.flags.writeable = False
        kernels.rnn_forward(act, rec[:u], frozen, None, u, batch, steps, 0)
