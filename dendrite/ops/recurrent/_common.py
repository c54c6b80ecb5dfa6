"""Shared by the fused recurrences: the activations they run (and their derivatives from
their outputs), the feature-major layout, and the ``Recurrence`` base (checks, the input
projection of every step, masks)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from dendrite import _native
from dendrite.core import Function
from dendrite.ops._products import OWN_PRODUCTS, own_product, product

FUSED_ACTIVATIONS = frozenset({"tanh", "sigmoid", "relu", "linear", "hard_sigmoid"})


def activate_(name: str, x: np.ndarray) -> None:
    """Apply the activation ``name`` to ``x`` in place (x may be a view)."""
    if name == "tanh":
        np.tanh(x, out=x)
    elif name == "sigmoid":
        # s(x) = (1 + tanh(x / 2)) / 2: no overflow warnings and no temporaries.
        x *= 0.5
        np.tanh(x, out=x)
        x *= 0.5
        x += 0.5
    elif name == "relu":
        np.maximum(x, 0, out=x)
    elif name == "hard_sigmoid":
        x *= 1 / 6
        x += 0.5
        np.clip(x, 0, 1, out=x)
    elif name != "linear":
        raise ValueError(f"No fused recurrence for activation {name!r}.")


def derivative(name: str, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``f'(x)`` from ``y = f(x)`` (each of ``FUSED_ACTIVATIONS`` allows this), written into
    ``out`` when given (no temporaries: these run over whole sequences)."""
    out = np.empty_like(y) if out is None else out
    if name == "tanh":
        np.multiply(y, y, out=out)
        np.subtract(1, out, out=out)
    elif name == "sigmoid":
        np.subtract(1, y, out=out)
        out *= y
    elif name == "relu":
        np.greater(y, 0, out=out)
    elif name == "hard_sigmoid":
        np.greater(y, 0, out=out)
        out *= y < 1
        out *= 1 / 6
    else:
        out[...] = 1
    return out


def sigmoid_prescaled_(x: np.ndarray) -> None:
    """``s(2 x)`` in place, for ``x`` that was already halved: ``(1 + tanh(x)) / 2``."""
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5


def activate_into(name: str, source: np.ndarray, out: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(source, out=out)
    out[...] = source
    activate_(name, out)
    return out


# --- layout -------------------------------------------------------------------------------
# Inside the primitives every array is feature-major with time inside: a sequence is
# (rows, T, batch), in processing order, and a step's slice a[:, t] is a (rows, batch)
# matrix whose rows are contiguous (BLAS takes it as is, with its row stride). The step is
# ``z = U^T h + xw`` with h of shape (units, batch), so each gate is a (units, batch) block
# of rows. NumPy is an order of magnitude slower on gate slices such as z[:, u:2u] of a
# (batch, 4u) array, and these element-wise passes are most of the work besides the
# products. With time inside, the products over all steps (the input projection, dL/dW,
# dL/dU, dL/dx) are single GEMMs over (rows, T batch) without copies, and the state
# sequences (units, T + 1, batch) hold the initial state in column 0: the state before
# step t is column t, so ``h_{t-1}`` of every step is ``hs[:, :-1]``, a view.


def swap_axes(a: np.ndarray, start: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """``out[..., j, t, i] = a[..., i, start + t, j]``: (..., n, M, m) -> a contiguous
    (..., m, M - start, n), written into ``out`` when given. The layout changes of the
    recurrences; csrc/transpose.c's tiled copy when it can (NumPy's strided copy of these
    is two to three times slower), else NumPy's."""
    *lead, n, steps, m = a.shape
    if out is None:
        out = np.empty((*lead, m, steps - start, n), dtype=a.dtype)
    if _native.usable(a, written=(out,)):
        count = math.prod(lead)
        _native.kernels.swap_axes(a, out, count, n, steps, start, steps - start, m)
    else:
        np.copyto(out, np.swapaxes(a[..., start:, :], -1, -3))
    return out


def time_major(a: np.ndarray, reverse: bool, out: np.ndarray | None = None) -> np.ndarray:
    """A private contiguous (features, T, batch) copy of ``a`` (batch, T, features), in
    processing order, written into ``out`` (contiguous) when given."""
    if reverse:
        if out is None:
            return np.array(a.transpose(2, 1, 0)[:, ::-1], order="C", copy=True)
        np.copyto(out, a.transpose(2, 1, 0)[:, ::-1])
        return out
    return swap_axes(a, out=out)


def batch_major(a: np.ndarray, reverse: bool, start: int = 0) -> np.ndarray:
    """The contiguous (batch, T, features), input-order copy of ``a[:, start:]`` (a is
    (features, T, batch))."""
    if reverse:
        return np.ascontiguousarray(a[:, start:][:, ::-1].transpose(2, 1, 0))
    return swap_axes(a, start)


def columns(a: np.ndarray) -> np.ndarray:
    """(batch, n) -> a contiguous (n, batch) copy, and back."""
    return swap_axes(a[:, None, :])[:, 0]


def states(first: np.ndarray, steps: int, dtype: np.dtype) -> np.ndarray:
    """An empty (units, T + 1, batch) state sequence with ``first`` (units, batch) as column
    0: column t + 1 is the state after step t."""
    out = np.empty((first.shape[0], steps + 1, first.shape[1]), dtype=dtype)
    out[:, 0] = first
    return out


def flat(a: np.ndarray) -> np.ndarray:
    """(rows, T, batch) -> (rows, T batch), a view when the steps of a row are contiguous
    (also for the column slices ``hs[:, :-1]`` and ``hs[:, 1:]`` of a state sequence)."""
    return a.reshape(a.shape[0], -1)


def weight_gradient(
    inputs: np.ndarray, dz: np.ndarray, matmul: Callable[..., np.ndarray] = product
) -> np.ndarray:
    """``sum_t inputs_t dz_t^T`` for (n, T, batch) and (m, T, batch): one GEMM that reads
    both operands in place. OpenBLAS computes the transposed product ``dz inputs^T`` a
    third faster than this one (measured for the LSTM benchmark's (128, 896) by
    (896, 512)), more than the (m, n) copy back costs."""
    return columns(matmul(flat(dz), flat(inputs).T))


# Whether this CPU runs csrc/recurrent_sequence.c (AVX2 and FMA, as small_product.c);
# tests turn it off to reach the per-step path that other CPUs take.
WHOLE_SEQUENCES = OWN_PRODUCTS


def whole_sequences(*arrays: np.ndarray | None) -> bool:
    """Whether a whole sequence can run in one kernel call (csrc/recurrent_sequence.c): the
    CPU allows it and the ``arrays`` (None skipped) can go to the kernels together."""
    return WHOLE_SEQUENCES and _native.usable(*(a for a in arrays if a is not None))


def sequence_product(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``own_product`` where ``WHOLE_SEQUENCES`` allows, with a transposed ``x`` first
    copied to C order by the tiled copy (2-3 times NumPy's strided one); else ``product``.
    A recurrence whose steps run in the sequence kernels uses it for its other products
    too, so that OpenBLAS' threads, which spin for a while after each call they share, do
    not hold the second core the helper needs."""
    if not WHOLE_SEQUENCES:
        return product(a, x)
    if not x.flags.c_contiguous and x.T.flags.c_contiguous:
        x = columns(x.T)
    return own_product(a, x)


def sequence_products() -> Callable[..., np.ndarray]:
    """The products of a recurrence whose steps can run in the sequence kernels:
    ``sequence_product`` where ``WHOLE_SEQUENCES`` allows (elsewhere it would only copy the
    operands BLAS reads transposed in place), else ``product``."""
    return sequence_product if WHOLE_SEQUENCES else product


class Recurrence(Function):
    """Shared plumbing: checks, the input projection, masks. ``matmul`` computes the
    products over whole sequences (``product``, or ``sequence_product`` for a recurrence whose
    steps run in the sequence kernels)."""

    matmul: Callable[..., np.ndarray] = staticmethod(product)

    def _setup(
        self,
        x: np.ndarray,
        kernel: np.ndarray,
        bias: np.ndarray,
        h0: np.ndarray,
        mask: Any,
        reverse: bool,
        scale: Any = None,
        recurrent_kernel: Any = None,
    ) -> tuple:
        """(inputs, xw, keep): the (features, T, batch) inputs, their projections
        ``scale * (W^T x_t + b)`` (k units, T, batch), and the (1, T, batch) step mask;
        every weight's shape checked against the inputs and the initial state first."""
        batch, steps, features = x.shape
        if kernel.shape[0] != features:
            raise ValueError(
                f"{type(self).__name__}: the inputs have {features} features (shape "
                f"{x.shape}) but the kernel expects {kernel.shape[0]} (shape {kernel.shape})."
            )
        keep = None
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (batch, steps):
                raise ValueError(
                    f"{type(self).__name__}: expected a mask of shape (batch, timesteps) = "
                    f"{(batch, steps)}, but received a mask of shape {mask.shape}."
                )
            keep = time_major(mask[:, :, None], reverse)  # keep[:, t]: step t updates the state
        if h0.shape[0] != batch:
            raise ValueError(
                f"{type(self).__name__}: the initial state has batch size {h0.shape[0]} but "
                f"the inputs have batch size {batch}."
            )
        self._check_weights(kernel, bias, h0, recurrent_kernel)
        if self.matmul is sequence_product:
            inputs, xw = self._setup_with_bias_row(x, kernel, bias, reverse, scale)
            return inputs, xw, keep
        if scale is not None:
            kernel, bias = kernel * scale, bias * scale
        inputs = time_major(x, reverse)
        xw = self.matmul(columns(kernel), flat(inputs))  # one GEMM
        xw = xw.reshape(kernel.shape[1], steps, batch)
        xw += bias[:, None, None]
        return inputs, xw, keep

    def _setup_with_bias_row(
        self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, reverse: bool, scale: Any
    ) -> tuple:
        """``_setup``'s (inputs, xw) for ``sequence_product``: the inputs get a last row of ones
        and the kernel the bias as its last row, so the one product adds the bias (as the
        last multiply-add of each sum: the same bits as adding it after) and, backward,
        dL/dW's product gives dL/db as its last row (``_input_gradients``)."""
        batch, steps, features = x.shape
        width = kernel.shape[1]
        dtype = np.result_type(x, kernel, bias, *(() if scale is None else (scale,)))
        inputs = np.empty((features + 1, steps, batch), dtype=dtype)
        time_major(x, reverse, out=inputs[:features])
        inputs[features] = 1
        weights = np.empty((features + 1, width), dtype=dtype)
        if scale is None:
            weights[:features], weights[features] = kernel, bias
        else:
            np.multiply(kernel, scale, out=weights[:features])
            np.multiply(bias, scale, out=weights[features])
        xw = sequence_product(weights.T, flat(inputs))  # one product, the bias included
        return inputs, xw.reshape(width, steps, batch)

    def _check_weights(self, kernel: Any, bias: Any, h0: Any, recurrent_kernel: Any) -> None:
        """The kernel (features, k units), bias (k units,) and recurrent kernel (units,
        k units) agree with the initial state's (batch, units)."""
        units, width = h0.shape[1], kernel.shape[1]
        wrong = [
            f"{name} of shape {tuple(array.shape)}, expected {expected}"
            for name, array, expected in (
                ("the bias", bias, (width,)),
                ("the recurrent kernel", recurrent_kernel, (units, width)),
            )
            if array is not None and tuple(array.shape) != expected
        ]
        if width % units or wrong:
            raise ValueError(
                f"{type(self).__name__}: the initial state has {units} units and the kernel "
                f"{width} columns (shape {tuple(kernel.shape)}); "
                + ("; ".join(wrong) or "the columns must be a multiple of the units")
                + "."
            )

    @staticmethod
    def _keep_for_kernel(keep: Any, dtype: np.dtype) -> Any:
        """The step mask as the kernels take it: (T, batch) 0s and 1s of the arrays' dtype."""
        return None if keep is None else keep[0].astype(dtype)

    def _input_gradients(
        self, inputs: np.ndarray, kernel: np.ndarray, dz: np.ndarray, need: tuple, reverse: bool
    ) -> tuple:
        """dL/dx (batch, T, features), dL/dW, dL/db from the pre-activation gradients."""
        need_x, need_w, need_b = need
        dx = None
        if need_x:
            dx = batch_major(
                self.matmul(kernel, flat(dz)).reshape(kernel.shape[0], *dz.shape[1:]), reverse
            )
        if inputs.shape[0] > kernel.shape[0] and need_w:  # the ones row: dL/db comes along
            dw_db = weight_gradient(inputs, dz, self.matmul)
            return dx, dw_db[:-1], (dw_db[-1] if need_b else None)
        dw = weight_gradient(inputs, dz, self.matmul) if need_w else None
        db = dz.sum(axis=(1, 2)) if need_b else None
        return dx, dw, db

    @staticmethod
    def _split(grad: np.ndarray, keep: Any, k: int) -> tuple:
        """Masked steps pass the state gradient through unchanged (the carry)."""
        if keep is None:
            return grad, None
        new = grad * keep[:, k]
        return new, grad - new

    def _recurrent_gradient(self, hs: np.ndarray, rmask: Any, dz: np.ndarray) -> np.ndarray:
        """dL/dU = sum_t (h_{t-1} m) dz_t^T from the state sequence hs (units, T + 1,
        batch), the dropout mask m (or None) and dz (k units, T, batch). ``sequence_product``
        wants the states transposed: without a mask that is the first T batch rows of the
        whole sequence's contiguous transpose, a faster copy than the strided h_{t-1}'s."""
        if self.matmul is not sequence_product or rmask is not None:
            return weight_gradient(self._states_in(hs, rmask), dz, self.matmul)
        rows = dz.shape[1] * dz.shape[2]
        return columns(sequence_product(flat(dz), columns(flat(hs))[:rows]))

    @staticmethod
    def _states_in(hs: np.ndarray, rmask: Any) -> np.ndarray:
        """The states that met the recurrent kernel: ``h_{t-1}`` (times the dropout mask),
        (units, T, batch) from the (units, T + 1, batch) state sequence."""
        h_in = hs[:, :-1]
        return h_in if rmask is None else h_in * rmask[:, None]

    @staticmethod
    def _gradient_in(g: np.ndarray, sequences: bool, dtype: np.dtype) -> tuple:
        """(g, last): with sequences, the output gradient (..., batch, T, units) as a
        contiguous (..., units, T, batch) and None; without, None and the last states'
        gradient (..., batch, units) as a new contiguous (..., units, batch) of the states'
        ``dtype``, from which the carried state gradients start."""
        if sequences:
            return swap_axes(g), None
        return None, swap_axes(g.astype(dtype, copy=False)[..., None, :])[..., 0, :]

    @staticmethod
    def _kernel_takes(g: np.ndarray | None, *arrays: np.ndarray) -> bool:
        """Whether the step kernels can take the saved ``arrays`` and the gradient ``g``
        (None when only the last states have one)."""
        return _native.usable(*arrays, *(() if g is None else (g,)))
