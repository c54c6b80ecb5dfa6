"""Matrix products whose sums do not depend on how many threads BLAS runs them on.

``C = A B``, ``C[i, j] = sum_k A[i, k] B[k, j]``, in floating point, is rounded in the
order the sum is taken. While a model trains, the thread governor (``cpu_threads``)
switches BLAS between one thread and all it may use, and OpenBLAS cuts the inner axis
into blocks differently on one thread and on several: its threaded driver halves the last
blocks as they come, its one-thread driver rounds the halves to its kernel's unroll. For
some shapes (float32 on this machine: K above 448 whose last half is not a multiple of 16,
K = 784, the document's input, among them) the same product then rounds differently on
one thread and on two, and a seeded training run would not reproduce. Its vector-matrix
products (one row) differ the same way for wide outputs.

``product(a, b)`` is ``np.matmul`` with a *plan* per shape, found the first time a shape
is met while the governor may switch threads, by computing a product of that shape on
random data on one thread and on all:

- ``SAME``: the two agree; BLAS runs it as it is.
- a cut ``c`` (a multiple of 64): ``A[:, :c] B[:c] + A[:, c:] B[c:]`` agree on one thread
  and on all, where the whole product did not: the part before the cut has whole blocks,
  and the part after it (fewer than 64 terms) is never cut at all. It costs a second,
  small product and one addition over the output.
- ``PINNED``: neither agrees; the product runs on one BLAS thread whatever the governor
  chose.

The sums are then the same whichever threads are in force, so a run reproduces exactly
(the governor's choices depend on timing and vary between runs). With the threads fixed
(``DENDRITE_NUM_THREADS``, ``set_num_threads``, one core) nothing switches and every
product goes straight to ``np.matmul``; so do products with K <= ``SMALL_K``, shorter
than any BLAS block.
"""

from __future__ import annotations

import threading

import numpy as np

from dendrite import cpu_threads

SAME = 0
PINNED = -1
SMALL_K = 128
CUT = 64
PROBE_ELEMENTS = 1 << 20  # operands larger than this are probed with fewer rows/columns

_PLANS: dict[tuple, int] = {}
_PROBE_LOCK = threading.Lock()


def product(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)``, rounded the same whichever threads BLAS runs on (see
    the module)."""
    k = a.shape[-1]
    if k <= SMALL_K or a.ndim < 2 or b.ndim < 2:
        return np.matmul(a, b, out=out)
    ceiling = cpu_threads.switching()
    if not ceiling:
        return np.matmul(a, b, out=out)
    key = (a.dtype.char, b.dtype.char, a.shape[-2], k, b.shape[-1], ceiling)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _plan(a, b, ceiling)
        _PLANS[key] = plan
    if plan == SAME:
        return np.matmul(a, b, out=out)
    if plan == PINNED:
        with cpu_threads.blas_pinned_to_one():
            return np.matmul(a, b, out=out)
    result = np.matmul(a[..., :plan], b[..., :plan, :], out=out)
    result += np.matmul(a[..., plan:], b[..., plan:, :])
    return result


def _plan(a: np.ndarray, b: np.ndarray, ceiling: int) -> int:
    """SAME, a cut, or PINNED for products of ``a``'s and ``b``'s (last two axes') shapes."""
    m, k = a.shape[-2:]
    n = b.shape[-1]
    # The inner axis is what BLAS cuts into blocks; fewer rows or columns leave that alone
    # (at least 64 of each keep the product large enough for BLAS to thread it).
    m = min(m, max(64, PROBE_ELEMENTS // k))
    n = min(n, max(64, PROBE_ELEMENTS // k))
    rng = np.random.default_rng(k)
    pa = _draw(rng, (m, k), a)
    pb = _draw(rng, (k, n), b)
    with _PROBE_LOCK:
        if _agrees(pa, pb, ceiling):
            return SAME
        cut = k - k % CUT
        if cut and cut < k and _agrees(pa[:, :cut], pb[:cut], ceiling):
            return cut
        return PINNED


def _draw(rng: np.random.Generator, shape: tuple, operand: np.ndarray) -> np.ndarray:
    """Values in [-0.5, 0.5) of ``shape`` in ``operand``'s dtype and memory order (BLAS
    reads a transposed operand with other kernels)."""
    values = rng.random(shape, dtype=np.float32 if operand.dtype == np.float32 else np.float64)
    values -= 0.5
    order = "F" if operand.flags.f_contiguous and not operand.flags.c_contiguous else "C"
    return np.asarray(values, dtype=operand.dtype, order=order)


def _agrees(a: np.ndarray, b: np.ndarray, ceiling: int) -> bool:
    with cpu_threads.blas_pinned_to_one():
        one = np.matmul(a, b)
    with cpu_threads.blas_pinned_to(ceiling):
        every = np.matmul(a, b)
    return bool(np.array_equal(one, every))


def forget_plans() -> None:
    """Drop every plan (for tests: the next product of each shape probes again)."""
    _PLANS.clear()
