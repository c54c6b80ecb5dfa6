"""Matrix products whose sums do not depend on how many threads BLAS runs them on.

``C = A B``, ``C[i, j] = sum_k A[i, k] B[k, j]``, in floating point, is rounded in the
order the sum is taken. While a model trains, the thread governor (``cpu_threads``)
switches BLAS between one thread and all it may use, and OpenBLAS cuts the inner axis
into blocks differently on one thread and on several: its threaded driver halves the last
blocks as they come, its one-thread driver rounds the halves to its kernel's unroll. For
some shapes (float32 on this machine: K above 448 whose last half is not a multiple of 16,
K = 784, the document's input, among them) the same product then rounds differently on
one thread and on two, and a seeded training run would not reproduce. Its matrix-vector
products (one row or one column) split their sums over threads by their length and differ
too.

``product(a, b)`` is ``np.matmul`` with a *plan* per shape and memory layout (BLAS reads a
transposed operand with other kernels), found the first time it is met inside a loop whose
governor may switch threads, by computing a product of that shape on random data on one
thread and on all (large operands with fewer rows and columns, since the inner axis is
what is cut, except a matrix-vector product, probed at its own length; a vector operand
is planned as a one-row or one-column matrix):

- ``SAME``: the two agree; BLAS runs it as it is.
- a cut ``c`` (a multiple of 64): ``A[:, :c] B[:c] + A[:, c:] B[c:]`` agree on one thread
  and on all, where the whole product did not: the part before the cut has whole blocks,
  and the part after it (fewer than 64 terms) is never cut at all. It costs a second,
  small product and one addition over the output.
- ``PINNED``: neither agrees; the product runs on one BLAS thread whatever the governor
  chose.

A product OpenBLAS would share between its threads but too small to gain from it (from
``BLAS_SHARES_FROM`` to ``ONE_BLAS_THREAD_BELOW`` multiply-adds a matrix) runs on one BLAS
thread instead, always, so it needs no plan either: after a shared product OpenBLAS'
worker spins on the core the kernels' helper needs. Like a pinned product it holds
``cpu_threads``' lock while it runs, so such products from several Python threads run one
at a time (each takes at most about 0.1 ms here).

The sums are then the same whichever threads are in force, so a run reproduces exactly
(the governor's choices depend on timing and vary between runs). Outside a governed loop
(a custom training loop, a distribution's ranks, whose governors never switch) and with
the threads fixed (``DENDRITE_NUM_THREADS``, ``set_num_threads``, one core) nothing
switches and every product goes straight to ``np.matmul``; so do products with K <=
``SMALL_K``, shorter than any BLAS block, and those of dtypes NumPy multiplies itself.

``own_product(a, b)`` is dendrite's own product (csrc/small_product.c, on CPUs with AVX2
and FMA): its sums run in one order for any threads, so it needs no plan. The recurrences
whose whole sequences run in C use it for all their products (``ops/recurrent``), and
``tiled_product`` for the shapes where it was measured faster than OpenBLAS on one thread
and on two (16 to 512 float32 columns, 256 float64: a dense layer's); ``stacked_product``
for stacks of such products (Winograd's 16, ``ops/winograd.py``)."""

from __future__ import annotations

import numpy as np

from dendrite import _native, cpu_threads

SAME = 0
PINNED = -1
SMALL_K = 128
CUT = 64
PROBE_ELEMENTS = 1 << 20  # operands larger than this are probed with fewer rows/columns
BLAS_TYPES = "fdFD"  # float32, float64, complex64, complex128: what NumPy hands to BLAS

# OpenBLAS shares a product between its threads from this many multiply-adds (m n k).
BLAS_SHARES_FROM = 1 << 18
# Products of fewer multiply-adds run on one BLAS thread: after a shared product OpenBLAS'
# worker spins for about 0.1 s on the core dendrite's kernels' helper needs. The CNN's
# dense layer (128 x 1600 by 1600 x 10, 2M) put its epoch at 0.54 s with BLAS on two
# threads and 0.39 s so (docs/performance.md, twelfth session).
ONE_BLAS_THREAD_BELOW = 1 << 22

_PLANS: dict[tuple, int] = {}

# csrc/small_product.c runs on this CPU (AVX2 and FMA); an older build lacks the method.
OWN_PRODUCTS = bool(getattr(_native.kernels, "small_products_available", lambda: False)())
# The products for which small_product.c beat OpenBLAS on one thread and on two
# (docs/performance.md, seventh session): from one AVX2 tile of columns (16) to rows of b
# of 2 KiB (512 float32 or 256 float64 columns); wider, its rows of b leave the cache.
TILED_COLUMNS = 16
TILED_ROW_BYTES = 2048
# A dense kernel of this many elements or more is shared between the threads by its rows
# in all its products and its Adam update (OWNED_KERNEL_FROM in csrc/kernels.h).
OWNED_KERNEL_ELEMENTS = int(getattr(_native.kernels, "owned_kernel_from", 65536))


def product(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)``, rounded the same whichever threads BLAS runs on (see
    the module)."""
    if a.ndim == 0 or b.ndim == 0:
        return np.matmul(a, b, out=out)
    if a.dtype.char not in BLAS_TYPES or b.dtype.char not in BLAS_TYPES:
        return np.matmul(a, b, out=out)  # NumPy's own loops: no BLAS threads involved
    if a.ndim > 1 and b.ndim > 1 and _one_thread_product(a.shape[-2] * a.shape[-1] * b.shape[-1]):
        return _on_one_blas_thread(a, b, out)
    if a.shape[-1] <= SMALL_K:
        return np.matmul(a, b, out=out)
    ceiling = cpu_threads.switching()
    if not ceiling:
        return np.matmul(a, b, out=out)
    if a.ndim == 1 or b.ndim == 1:
        if out is not None:
            return np.matmul(a, b, out=out)  # no caller asks for both; BLAS' order then
        # A vector as a one-row (left) or one-column (right) matrix, as NumPy reads it.
        result = product(a[None, :] if a.ndim == 1 else a, b[:, None] if b.ndim == 1 else b)
        if b.ndim == 1:
            result = result[..., 0]
        if a.ndim == 1:
            result = result[..., 0, :] if b.ndim > 1 else result[..., 0]
        return result[()]
    key = (a.dtype.char, b.dtype.char, a.shape[-2], a.shape[-1], b.shape[-1])
    key += (_layout(a), _layout(b), ceiling)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _plan(a, b, ceiling)
        _PLANS[key] = plan
    if plan == SAME:
        return np.matmul(a, b, out=out)
    if plan == PINNED:
        return _on_one_blas_thread(a, b, out)
    if out is not None and (np.shares_memory(out, a) or np.shares_memory(out, b)):
        np.copyto(out, product(a, b))  # the second part must read what the first overwrote
        return out
    result = np.matmul(a[..., :plan], b[..., :plan, :], out=out)
    result += np.matmul(a[..., plan:], b[..., plan:, :])
    return result


def _on_one_blas_thread(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    with cpu_threads.blas_pinned_to(1):
        return np.matmul(a, b, out=out)


def _one_thread_product(work: int) -> bool:
    """Whether a product of ``work`` multiply-adds a matrix runs on one BLAS thread: those
    OpenBLAS would share (from ``BLAS_SHARES_FROM``) but too small to gain from it (below
    ``ONE_BLAS_THREAD_BELOW``). Whatever threads are in force, so that its sums are
    always the one-thread ones and need no plan."""
    return BLAS_SHARES_FROM <= work < ONE_BLAS_THREAD_BELOW


def own_product(
    a: np.ndarray, b: np.ndarray, owned_rows: bool = False, split_depth: bool = False
) -> np.ndarray:
    """``a @ b`` by csrc/small_product.c for 2-D operands of one float dtype, ``a``
    C-contiguous or the transpose of a C-contiguous array (a weight read in place), ``b``
    C-contiguous: each element a chain of fused multiply-adds in ascending k, shared with
    the kernels' helper thread by blocks of rows or of columns. ``owned_rows``: a dense
    layer's kernel gradient, by the blocks of rows its Adam update also uses, the caller's from the
    first and the helper's from the last, so that each core keeps about half the kernel in
    its cache (csrc/kernels.h). ``split_depth``: a dense layer's forward product, whose
    kernel ``b`` of 65,536 elements or more is cut at half its rows (rounded to 24), ``a[:,
    :c] b[:c] + a[:, c:] b[c:]`` whatever the threads and the batch, each part read by the
    core that keeps it (csrc/small_product.c). Anything else, and CPUs without AVX2 and
    FMA, go to ``product``."""
    if not (OWN_PRODUCTS and a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0]):
        return product(a, b)
    transposed = not a.flags.c_contiguous
    stored = a.T if transposed else a
    if not _native.usable(stored, b):
        return product(a, b)
    out = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    _native.kernels.small_product(
        stored, b, out, a.shape[0], a.shape[1], b.shape[1], transposed, owned_rows, split_depth
    )
    return out


def _tiles_take(columns: int, itemsize: int) -> bool:
    """Whether a product with ``columns`` columns in its right operand goes to the tiles:
    from ``TILED_COLUMNS`` to rows of ``TILED_ROW_BYTES`` (there they beat OpenBLAS)."""
    return TILED_COLUMNS <= columns and columns * itemsize <= TILED_ROW_BYTES


def tiled_product(
    a: np.ndarray, b: np.ndarray, owned_rows: bool = False, split_depth: bool = False
) -> np.ndarray:
    """``own_product`` where the tiles take ``b``'s columns (``_tiles_take``), else
    ``product``."""
    if b.ndim == 2 and _tiles_take(b.shape[1], b.itemsize):
        return own_product(a, b, owned_rows, split_depth)
    return product(a, b)


def stacked_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for stacks of matrices, ``a`` (n, m, k) and ``b`` (n, k, c) of one float
    dtype, by csrc/small_product.c's ``stacked_product``: ``a`` C-contiguous or each matrix
    the transpose of a C-contiguous one (``x.transpose(0, 2, 1)``, read in place), ``b``
    copied to C order when it is not. Its matrices (or blocks of rows of tall ones) are one
    job shared by dendrite's two threads, each element's sum one chain of fused
    multiply-adds in ascending k whichever thread computes it. Where the tiles do not take
    ``b``'s columns (``_tiles_take``), or without AVX2 and FMA, ``product`` (BLAS)."""
    if not (
        OWN_PRODUCTS
        and a.ndim == 3
        and b.ndim == 3
        and a.shape[0] == b.shape[0]
        and a.shape[2] == b.shape[1]
        and _tiles_take(b.shape[2], b.itemsize)
    ):
        return product(a, b)
    transposed = not a.flags.c_contiguous
    stored = a.transpose(0, 2, 1) if transposed else a
    b = np.ascontiguousarray(b)
    if not _native.usable(stored, b):
        return product(a, b)
    count, rows, depth = a.shape
    out = np.empty((count, rows, b.shape[2]), dtype=a.dtype)
    _native.kernels.stacked_product(stored, b, out, count, rows, depth, b.shape[2], transposed)
    return out


def times_kernel_transposed(g: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``g @ kernel.T`` (a dense layer's input gradient), for a 2-D ``g`` of at least
    ``TILED_COLUMNS`` rows and a kernel of ``OWNED_KERNEL_ELEMENTS`` or more, computed as
    ``(kernel @ g.T).T`` by ``own_product``, shared by the kernel's rows as its other
    products are, so that each core reads the rows it keeps; else ``product``. BLAS would
    read the kernel transposed in place, but its threaded product leaves a worker spinning
    on the core the kernels' helper needs (a 784-512-512-10 MLP's epoch took 1.39 s so,
    0.78 s with BLAS on one thread). Costs two copies of ``g``'s size."""
    if not (
        OWN_PRODUCTS
        and g.ndim == 2
        and kernel.ndim == 2
        and kernel.size >= OWNED_KERNEL_ELEMENTS
        and _tiles_take(g.shape[0], g.itemsize)  # g^T is the right operand
    ):
        return product(g, kernel.T)
    return np.ascontiguousarray(own_product(kernel, np.ascontiguousarray(g.T), owned_rows=True).T)


def _layout(operand: np.ndarray) -> str:
    """How BLAS reads the last two axes: "F" (transposed) when the rows are the nearer."""
    return "F" if operand.strides[-2] < operand.strides[-1] else "C"


def _plan(a: np.ndarray, b: np.ndarray, ceiling: int) -> int:
    """SAME, a cut, or PINNED for products of ``a``'s and ``b``'s (last two axes') shapes
    and layouts."""
    m, k = a.shape[-2:]
    n = b.shape[-1]
    # The inner axis is what BLAS cuts into blocks; fewer rows or columns leave that alone
    # (at least 64 of each keep the product large enough for BLAS to thread it). Not so
    # for a matrix-vector product (one row or column), whose split over threads depends on
    # the other side's length: it is probed at its own size, no larger than its operands.
    if m > 1 and n > 1:
        m = min(m, max(64, PROBE_ELEMENTS // k))
        n = min(n, max(64, PROBE_ELEMENTS // k))
    rng = np.random.default_rng(k)
    pa = _draw(rng, (m, k), a)
    pb = _draw(rng, (k, n), b)
    if _agrees(pa, pb, ceiling):
        return SAME
    cut = k - k % CUT
    if cut and cut < k and _agrees(pa[:, :cut], pb[:cut], ceiling):
        return cut
    return PINNED


def _draw(rng: np.random.Generator, shape: tuple, operand: np.ndarray) -> np.ndarray:
    """Values in [-0.5, 0.5) of ``shape`` in ``operand``'s dtype and layout (BLAS reads a
    transposed operand with other kernels)."""
    values = rng.random(shape, dtype=np.float32 if operand.dtype == np.float32 else np.float64)
    values -= 0.5
    return np.asarray(values, dtype=operand.dtype, order=_layout(operand))


def _agrees(a: np.ndarray, b: np.ndarray, ceiling: int) -> bool:
    """Whether ``a b`` rounds the same on one BLAS thread and on ``ceiling`` (each product
    holds cpu_threads' lock, so probes in two Python threads cannot mix their settings)."""
    with cpu_threads.blas_pinned_to(1):
        one = np.matmul(a, b)
    with cpu_threads.blas_pinned_to(ceiling):
        every = np.matmul(a, b)
    return bool(np.array_equal(one, every))


def forget_plans() -> None:
    """Drop every plan (for tests: the next product of each shape probes again)."""
    _PLANS.clear()
