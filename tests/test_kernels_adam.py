"""The Adam kernel (csrc/adam.c) against the NumPy passes it replaces.

The kernel must give bit-identical weights and slots; every case it cannot take (AMSGrad,
float16, a non-contiguous gradient, the kernels switched off) must fall back to NumPy and
still update correctly. Tests marked ``needs_kernels`` are skipped when the kernels are not
loaded (``tests/conftest.py``); the others check the NumPy path either way.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import dendrite as dn
from dendrite import _native as native
from dendrite.optimizers import adam as adam_module


def _train(make_optimizer, dtype, kernels, monkeypatch, steps: int = 25, grads=None):
    """Run ``steps`` updates on two variables from a fixed gradient stream, with
    ``native.kernels`` set to ``kernels`` (None: the NumPy passes)."""
    monkeypatch.setattr(native, "kernels", kernels)
    rng = np.random.default_rng(0)
    kernel = dn.Variable(rng.standard_normal((13, 7)).astype(dtype), name="kernel")
    bias = dn.Variable(rng.standard_normal((7,)).astype(dtype), name="bias")
    optimizer = make_optimizer()
    for _ in range(steps):
        g_kernel = rng.standard_normal((13, 7)).astype(dtype) * 10.0 ** rng.uniform(-6, 1)
        g_bias = rng.standard_normal((7,)).astype(dtype)
        if grads is not None:
            g_kernel = grads(g_kernel)
        optimizer.apply([g_kernel, g_bias], [kernel, bias])
    monkeypatch.undo()
    return [kernel.data.copy(), bias.data.copy()] + [v.data.copy() for v in optimizer.variables]


@pytest.mark.skipif(
    bool(os.environ.get("DENDRITE_NO_KERNELS")),
    reason="DENDRITE_NO_KERNELS is set: this run tests the NumPy paths",
)
def test_the_kernels_are_built_here():
    # setup.py builds the kernels with optional=True: a broken build still installs, and
    # every needs_kernels test would then skip. CI installs with a C compiler, so a missing
    # kernel module fails here instead of going unnoticed.
    assert native.kernels is not None, (
        "dendrite._kernels was not built (see the build output of `pip install -e .`; a C "
        "compiler is needed); set DENDRITE_NO_KERNELS=1 to test only the NumPy paths"
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make",
    [
        lambda: dn.optimizers.Adam(),
        lambda: dn.optimizers.Adam(learning_rate=0.05, beta_1=0.5, beta_2=0.9, epsilon=1e-3),
        lambda: dn.optimizers.AdamW(learning_rate=0.01),
        lambda: dn.optimizers.Adam(
            learning_rate=dn.optimizers.schedules.ExponentialDecay(0.01, 5, 0.5),
            global_clipnorm=1.0,
        ),
    ],
    ids=["defaults", "hyperparameters", "adamw", "schedule+clipping"],
)
@pytest.mark.needs_kernels
def test_adam_kernel_is_bit_identical_to_numpy(make, dtype, monkeypatch):
    fast = _train(make, dtype, native.kernels, monkeypatch)
    reference = _train(make, dtype, None, monkeypatch)
    for a, b in zip(fast, reference):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.needs_kernels
def test_the_kernel_is_used_for_float32(monkeypatch):
    calls = []
    real = native.kernels

    class Spy:
        def adam(self, updates, *args):
            calls.extend(update[0].shape for update in updates)
            return real.adam(updates, *args)

    monkeypatch.setattr(native, "kernels", Spy())
    variable = dn.Variable(np.ones((3, 2), np.float32))
    dn.optimizers.Adam().apply([np.ones((3, 2), np.float32)], [variable])
    assert calls == [(3, 2)]
    assert np.all(variable.data < 1.0)


@pytest.mark.parametrize(
    "case",
    # the non-contiguous case's bias goes to the (real) kernel; the other two never reach it
    [
        "amsgrad",
        "float16",
        pytest.param("non_contiguous_gradient", marks=pytest.mark.needs_kernels),
    ],
)
def test_cases_the_kernel_cannot_take_fall_back_to_numpy(case, monkeypatch):
    calls = []
    real = native.kernels

    class Spy:
        def adam(self, updates, *args):
            calls.extend(1 for _ in updates)
            return real.adam(updates, *args)

    dtype = np.float16 if case == "float16" else np.float32
    amsgrad = case == "amsgrad"
    grads = (lambda g: np.asfortranarray(g)) if case == "non_contiguous_gradient" else None

    def make():
        return dn.optimizers.Adam(learning_rate=0.01, amsgrad=amsgrad)

    with_spy = _train(make, dtype, Spy(), monkeypatch, steps=5, grads=grads)
    reference = _train(make, dtype, None, monkeypatch, steps=5, grads=grads)
    for a, b in zip(with_spy, reference):
        np.testing.assert_array_equal(a, b)
    # Only the contiguous float32 bias of the non-contiguous case may use the kernel.
    assert len(calls) == (5 if case == "non_contiguous_gradient" else 0)


@pytest.mark.needs_kernels
def test_kernel_rejects_mismatched_buffers_before_writing_any():
    kernels = native.kernels
    args = (0.1, 0.1, 1e-7, 1.0)
    w = np.zeros(4, np.float32)

    def update(w=w, g=None, m=None, v=None):
        return (
            w,
            np.zeros(4, np.float32) if g is None else g,
            m if m is not None else w.copy(),
            v if v is not None else w.copy(),
        )

    with pytest.raises(ValueError, match="float32 or float64"):
        kernels.adam([update(g=np.zeros(4, np.float64))], *args)
    with pytest.raises(ValueError, match="float32 or float64"):
        kernels.adam([update(g=np.zeros(5, np.float32))], *args)
    with pytest.raises(ValueError, match="float32 or float64"):
        z = np.zeros(4, np.int32)
        kernels.adam([(z, z.copy(), z.copy(), z.copy())], *args)
    with pytest.raises((TypeError, BufferError, ValueError)):
        read_only = np.zeros(4, np.float32)
        read_only.flags.writeable = False
        kernels.adam([update(w=read_only)], *args)
    with pytest.raises(TypeError):
        kernels.adam([(w, w)], *args)
    # A bad second update leaves the first one unwritten.
    first = np.ones(4, np.float32)
    with pytest.raises(ValueError):
        kernels.adam(
            [update(w=first, g=np.ones(4, np.float32)), update(g=np.zeros(3, np.float32))], *args
        )
    np.testing.assert_array_equal(first, np.ones(4, np.float32))


def test_the_kernels_can_be_switched_off_by_environment():
    code = "from dendrite import _native; print(_native.kernels is None)"
    env = {**os.environ, "DENDRITE_NO_KERNELS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr


@pytest.mark.parametrize("path", ["numpy", pytest.param("kernel", marks=pytest.mark.needs_kernels)])
def test_adam_update_matches_the_formula(path, monkeypatch):
    """One step from zero slots: m = (1-b1) g, v = (1-b2) g^2, and the weight moves by
    alpha * m / (sqrt(v) + eps) with alpha = lr sqrt(1-b2) / (1-b1)."""
    if path == "numpy":
        monkeypatch.setattr(native, "kernels", None)
    g = np.array([0.5, -2.0, 0.0, 3.0], np.float64)
    w = dn.Variable(np.zeros(4, np.float64))
    optimizer = adam_module.Adam(learning_rate=0.1)
    optimizer.apply([g], [w])
    m = 0.1 * g
    v = 0.001 * g * g
    alpha = 0.1 * np.sqrt(0.001) / 0.1
    np.testing.assert_allclose(w.data, -alpha * m / (np.sqrt(v) + 1e-7), rtol=1e-12)


def _numpy_adam_step(w, g, m, v, c1, c2, eps, alpha):
    """The NumPy passes of Adam.update_step, on copies."""
    w, m, v = w.copy(), m.copy(), v.copy()
    buf = g - m
    buf *= c1
    m += buf
    buf = g * g
    buf -= v
    buf *= c2
    v += buf
    buf = np.sqrt(v)
    buf += eps
    buf = m / buf
    buf *= alpha
    w -= buf
    return w, m, v


def _random_state(n, dtype, seed):
    rng = np.random.default_rng(seed)
    w, g, m = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    v = rng.random(n).astype(dtype)
    return w, g, m, v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [262_144, 300_001])  # at the split threshold; odd chunks
@pytest.mark.needs_kernels
def test_large_updates_shared_with_the_helper_thread_are_bit_identical(dtype, n):
    w, g, m, v = _random_state(n, dtype, n)
    args = (dtype(0.1).item(), dtype(0.001).item(), 1e-7, 3e-4)
    expected = _numpy_adam_step(w, g, m, v, *args)
    for _ in range(3):  # the helper is reused from one call to the next
        got = [a.copy() for a in (w, m, v)]
        native.kernels.adam([(got[0], g, got[1], got[2])], *args)
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "rows, cols",
    [
        (784, 128),  # the document's kernel: 11 chunks of 72 rows (OWNED_ROW_BLOCK)
        (47, 1500),  # 24 rows and 23
        (24, 4000),  # one block of rows: the usual chunks
        (100, 300),  # under 65,536 elements: the usual chunks
    ],
)
@pytest.mark.needs_kernels
def test_kernel_updates_by_blocks_of_rows_are_bit_identical(dtype, rows, cols):
    """A dense kernel's update given its row length (``(w, g, m, v, cols)``) is an owned
    job by blocks of rows, claimed from both ends (csrc/kernels.h): the same bits as the
    NumPy passes with the helper off and on."""
    from dendrite.testing import assert_same_on_any_kernel_threads

    w, g, m, v = (a.reshape(rows, cols) for a in _random_state(rows * cols, dtype, rows))
    args = (dtype(0.1).item(), dtype(0.001).item(), 1e-7, 3e-4)
    expected = _numpy_adam_step(w, g, m, v, *args)

    def run():
        for _ in range(2):  # the second call finds the helper watching for it
            got = [a.copy() for a in (w, m, v)]
            native.kernels.adam([(got[0], g, got[1], got[2], cols)], *args)
        return got

    assert_same_on_any_kernel_threads(run)
    for a, b in zip(run(), expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.needs_kernels
def test_a_row_length_that_does_not_divide_the_update_is_ignored():
    w, g, m, v = _random_state(70_001, np.float32, 9)
    args = (0.1, 0.001, 1e-7, 1e-3)
    expected = _numpy_adam_step(w, g, m, v, *args)
    for cols in (128, 0, -5):
        got = [a.copy() for a in (w, m, v)]
        native.kernels.adam([(got[0], g, got[1], got[2], cols)], *args)
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "shape, cols",
    [((300_000,), None), ((784, 128), 128)],  # chunks either thread takes; owned rows
)
@pytest.mark.needs_kernels
def test_concurrent_callers_each_get_their_own_update(shape, cols):
    """The kernel runs without the GIL: callers from several threads at once must not mix
    their jobs (one of them shares the helper, the others run alone), plain or owned (the
    chunks claimed from both ends)."""
    from concurrent.futures import ThreadPoolExecutor

    size = int(np.prod(shape))
    states = [
        tuple(a.reshape(shape) for a in _random_state(size, np.float32, seed)) for seed in range(6)
    ]
    args = (0.1, 0.001, 1e-7, 1e-3)
    expected = [_numpy_adam_step(*state, *args) for state in states]
    extra = () if cols is None else (cols,)

    def run(state):
        w, g, m, v = state
        for _ in range(3):  # the later calls find the helper watching after an owned job
            got = [a.copy() for a in (w, m, v)]
            native.kernels.adam([(got[0], g, got[1], got[2], *extra)], *args)
        return got

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(run, states))
    for got, want in zip(results, expected):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
@pytest.mark.needs_kernels
def test_a_forked_child_starts_its_own_helper():
    import multiprocessing

    w, g, m, v = _random_state(300_000, np.float32, 1)
    args = (0.1, 0.001, 1e-7, 1e-3)
    native.kernels.adam([(w.copy(), g, m.copy(), v.copy())], *args)  # the parent's helper runs
    expected = _numpy_adam_step(w, g, m, v, *args)[0]
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        got = pool.apply(_update_in_child, (w, g, m, v, args))
    np.testing.assert_array_equal(got, expected)


def _update_in_child(w, g, m, v, args):
    native.kernels.adam([(w, g, m, v)], *args)
    return w


def test_a_subclass_that_overrides_update_step_is_not_bypassed():
    seen = []

    class Custom(dn.optimizers.Adam):
        def update_step(self, gradient, variable, learning_rate):
            seen.append(variable.name)
            super().update_step(gradient, variable, learning_rate)

    kernel = dn.Variable(np.ones((3, 2), np.float32), name="kernel")
    bias = dn.Variable(np.ones(2, np.float32), name="bias")
    Custom().apply([np.ones((3, 2), np.float32), np.ones(2, np.float32)], [kernel, bias])
    assert seen == ["kernel", "bias"]
    assert np.all(kernel.data < 1.0)


@pytest.mark.needs_kernels
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
@pytest.mark.parametrize("limit, helper_expected", [(None, True), ("1", False)])
def test_the_helper_thread_respects_a_one_thread_limit(limit, helper_expected):
    code = (
        "import os, numpy as np\n"
        "from dendrite import _native\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "w, g, m, v = (np.ones(600_000, np.float32) for _ in range(4))\n"
        "_native.kernels.adam([(w, g, m, v)], 0.1, 0.001, 1e-7, 1e-3)\n"
        "print(len(os.listdir('/proc/self/task')) - before, float(w[0]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DENDRITE_NUM_THREADS"}
    if limit is not None:
        env["DENDRITE_NUM_THREADS"] = limit
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    added, weight = out.stdout.split()
    assert float(weight) < 1.0, out.stderr
    limited = any(os.environ.get(k) == "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))
    if (os.cpu_count() or 1) > 1 and not limited:
        assert (int(added) == 1) is helper_expected
    else:
        assert int(added) == 0
