"""Op cases for the fused primitives: dense, convolutions, pooling, conv+pool, normalisation,
embedding lookup, the cross-entropies and the recurrences.

Each is a ``fixed``-shape ``OpCase`` with a ``reference``: the same maths unfused, in NumPy
(``_numpy_refs``), so the tests check the forward value in float64 and the gradient by
``gradcheck``, with no PyTorch needed. Integer inputs (labels, indices) are constants of the
case: the Tensors a case takes are its floating inputs.
"""

from __future__ import annotations

import numpy as np

from dendrite.ops.adaptive_pooling import AdaptivePoolAxis
from dendrite.ops.axis_windows import FoldAxis, UnfoldAxis
from dendrite.ops.conv import fused_conv, fused_conv_transpose
from dendrite.ops.conv_pool import conv_max_pool
from dendrite.ops.ctc import ctc_loss
from dendrite.ops.dense import dense
from dendrite.ops.fourier import ComplexDFT
from dendrite.ops.functional import custom_gradient
from dendrite.ops.linalg_extra import LogAbsDet, Pinv
from dendrite.ops.nn import (
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    sparse_softmax_cross_entropy,
)
from dendrite.ops.normalization import embedding_lookup, normalize, scale_shift
from dendrite.ops.numpy_more import i0
from dendrite.ops.pooling import average_pool, max_pool
from dendrite.ops.recurrent import gru_sequence, lstm_sequence, simple_rnn_sequence
from dendrite.ops.segment import segment_max, segment_min, segment_prod, segment_sum
from dendrite.testing import _numpy_refs as ref
from dendrite.testing._torch_refs import t as _t
from dendrite.testing.op_case import OpCase

SAME_3 = ((1, 1), (1, 1))  # 'same' padding of a 3x3 kernel at stride 1
VALID = ((0, 0), (0, 0))
IDS = np.array([[0, 3, 3], [1, 0, 4]])  # embedding rows, one repeated
LABELS = np.array([[2, 0, 1], [1, 1, 3]])  # sparse labels of (2, 3, 4) logits
IGNORED = np.array([[2, -1, 1], [-1, 1, 3]])  # the same, with ignore_class=-1
# CTC over (3, 6, 4) logits: a repeat needing a blank between, an empty target, fewer frames
CTC_LABELS = np.array([[1, 1, 3], [2, 0, 0], [3, 2, -1]])
CTC_LABEL_LENGTHS = np.array([3, 0, 2])
CTC_FRAMES = np.array([6, 4, 3])
SEGMENT_IDS = np.array([0, 2, 0, 1, 2, 5, -1])  # 5 and -1 dropped; of 4, segment 3 empty


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _log1pexp_with_its_gradient(x):
    """ln(1 + e^x) with its gradient sigmoid(x) given by hand (the custom-gradient case)."""
    from dendrite.ops.activations import sigmoid
    from dendrite.ops.binary_more import logaddexp

    def grad(upstream):
        return upstream * sigmoid(x)

    return logaddexp(x, 0.0), grad


_log1pexp = custom_gradient(_log1pexp_with_its_gradient)


def _adaptive_pool(x: np.ndarray, axis: int, size: int, reduce: str) -> np.ndarray:
    """PyTorch's adaptive windows ``[floor(i L / n), ceil((i + 1) L / n))`` along axis, one
    mean (or max) per window."""
    length = x.shape[axis]
    reducer = np.mean if reduce == "average" else np.max
    parts = [
        reducer(np.take(x, range(i * length // size, -(-(i + 1) * length // size)), axis), axis)
        for i in range(size)
    ]
    return np.stack(parts, axis=axis)


def _dft(inverse: bool, axes: tuple):
    def reference(real: np.ndarray, imag: np.ndarray) -> np.ndarray:
        z = real + 1j * imag
        out = np.fft.ifftn(z, axes=axes) if inverse else np.fft.fftn(z, axes=axes)
        return np.stack([out.real, out.imag])

    return reference


FUSED_CASES: tuple[OpCase, ...] = (
    # --- dense: relu?(x W + b) ------------------------------------------------------------------
    OpCase(
        "dense",
        dense,
        (((4, 3), (3, 2), (2,)), ((2, 2, 3), (3, 4), (4,)), ((1, 1), (1, 1), (1,))),
        reference=lambda x, w, b: x @ w + b,
    ),
    OpCase(
        "dense",
        lambda x, w, b: dense(x, w, b, relu=True),
        (((5, 3), (3, 4), (4,)),),
        name="dense_relu",
        reference=lambda x, w, b: _relu(x @ w + b),
    ),
    # --- convolutions ---------------------------------------------------------------------------
    OpCase(
        "conv",
        lambda x, k, b: fused_conv(x, k, b, padding="same"),
        (((2, 5, 4, 3), (3, 3, 3, 2), (2,)),),
        reference=lambda x, k, b: ref.conv2d(x, k, b, pads=SAME_3),
    ),
    OpCase(
        "conv",
        lambda x, k, b: fused_conv(x, k, b, strides=2, dilation_rate=(1, 2), relu=True),
        (((2, 7, 8, 2), (3, 2, 2, 3), (3,)),),
        name="conv_strided_dilated_relu",
        reference=lambda x, k, b: _relu(ref.conv2d(x, k, b, strides=(2, 2), dilation=(1, 2))),
    ),
    OpCase(
        "conv",
        lambda x, k, b: fused_conv(x, k, b, groups=2),
        (((1, 4, 4, 4), (2, 2, 2, 4), (4,)),),
        name="conv_grouped",
        reference=lambda x, k, b: ref.conv2d(x, k, b, groups=2),
    ),
    OpCase(
        "conv",
        lambda x, k, b: fused_conv(x, k, b, padding="causal"),
        (((2, 6, 3), (3, 3, 2), (2,)),),
        name="conv1d_causal",
        reference=lambda x, k, b: ref.conv1d(x, k, b, (2, 0)),
    ),
    OpCase(
        "conv_transpose",
        lambda x, k, b: fused_conv_transpose(x, k, b, strides=2),
        (((2, 3, 2, 3), (3, 3, 2, 3), (2,)),),
        reference=lambda x, k, b: ref.conv_transpose2d(x, k, b, (2, 2), (7, 5), (0, 0)),
    ),
    OpCase(
        "conv_transpose",
        lambda x, k, b: fused_conv_transpose(x, k, b, strides=2, padding="same"),
        (((1, 3, 3, 2), (3, 3, 2, 2), (2,)),),
        name="conv_transpose_same",
        reference=lambda x, k, b: ref.conv_transpose2d(x, k, b, (2, 2), (6, 6), (0, 0)),
    ),
    # --- windows along one axis (3-D convolutions) ----------------------------------------------
    OpCase(
        "unfold_axis",
        lambda x: UnfoldAxis.apply(x, size=3, stride=2, dilation=1, pads=(1, 2)),
        (((2, 6, 3, 2),), ((1, 5, 2, 2, 3),)),
        reference=lambda x: ref.unfold_axis(x, 3, 2, 1, (1, 2)),
    ),
    OpCase(
        "fold_axis",
        lambda u: FoldAxis.apply(u, length=5, stride=2, dilation=2, pads=(2, 1)),
        (((2, 3, 3, 2, 2),), ((1, 3, 2, 1, 2, 3),)),
        reference=lambda u: ref.fold_axis(u, 5, 2, 2, (2, 1)),
    ),
    # --- pooling and conv + pool ----------------------------------------------------------------
    OpCase(
        "max_pool",
        lambda x: max_pool(x, 2),
        (((2, 4, 6, 3),), ((1, 5, 5, 1),)),
        reference=lambda x: ref.pool2d(x, (2, 2), (2, 2), VALID, "max"),
    ),
    OpCase(
        "max_pool",
        lambda x: max_pool(x, 3, strides=1, padding="same"),
        (((2, 4, 5, 2),),),
        name="max_pool_same_overlapping",
        reference=lambda x: ref.pool2d(x, (3, 3), (1, 1), SAME_3, "max"),
    ),
    OpCase(
        "average_pool",
        lambda x: average_pool(x, 2),
        (((2, 4, 6, 3),),),
        reference=lambda x: ref.pool2d(x, (2, 2), (2, 2), VALID, "mean"),
    ),
    OpCase(
        "average_pool",
        lambda x: average_pool(x, 3, strides=1, padding="same"),
        (((2, 4, 5, 2),),),
        name="average_pool_same",
        reference=lambda x: ref.pool2d(x, (3, 3), (1, 1), SAME_3, "mean"),
    ),
    *(
        OpCase(
            "adaptive_pool_axis",
            lambda x, axis=axis, size=size, reduce=reduce: AdaptivePoolAxis.apply(
                x, axis=axis, size=size, reduce=reduce
            ),
            shapes,
            name=f"adaptive_{reduce}_pool_axis{axis}_to{size}",
            reference=lambda x, axis=axis, size=size, reduce=reduce: _adaptive_pool(
                x, axis, size, reduce
            ),
        )
        for reduce in ("average", "max")
        # uneven overlapping windows (5 -> 3), equal ones (6 -> 3), more outputs than inputs
        for axis, size, shapes in (
            (1, 3, (((2, 5, 3),), ((1, 6, 2, 2),))),
            (2, 4, (((1, 2, 3, 2),),)),
        )
    ),
    OpCase(
        "conv_max_pool",
        lambda x, k, b: conv_max_pool(x, k, b, padding="same", relu=True),
        (((2, 6, 4, 3), (3, 3, 3, 2), (2,)),),
        reference=lambda x, k, b: ref.pool2d(
            _relu(ref.conv2d(x, k, b, pads=SAME_3)), (2, 2), (2, 2), VALID, "max"
        ),
    ),
    OpCase(
        "conv_max_pool",
        lambda x, k, b: conv_max_pool(x, k, b),
        (((2, 9, 2), (3, 2, 3), (3,)),),
        name="conv_max_pool_1d",
        reference=lambda x, k, b: ref.pool2d(
            ref.conv1d(x, k, b, (0, 0))[:, None], (1, 2), (1, 2), VALID, "max"
        )[:, 0],
    ),
    # --- normalisation and lookup ---------------------------------------------------------------
    OpCase(
        "normalize",
        lambda x, g, b: normalize(x, g, b, axes=-1),
        (((3, 5), (5,), (5,)), ((2, 3, 4), (4,), (4,))),
        name="normalize_layer",
        reference=lambda x, g, b: ref.normalize(x, g, b, (x.ndim - 1,), g.shape),
    ),
    OpCase(
        "normalize",
        lambda x, g, b: normalize(x, g, b, axes=(0, 1), param_shape=(1, 1, 2)),
        (((4, 3, 2), (2,), (2,)),),
        name="normalize_batch",
        reference=lambda x, g, b: ref.normalize(x, g, b, (0, 1), (1, 1, 2)),
    ),
    OpCase(
        "scale_shift",
        scale_shift,
        (((3, 4), (4,), (4,)), ((2, 3, 4), (1, 3, 1), (4,))),
        reference=lambda x, a, b: x * a + b,
    ),
    OpCase(
        "embedding_lookup",
        lambda table: embedding_lookup(table, IDS),
        (((5, 3),), ((6, 1),)),
        reference=lambda table: table[IDS],
    ),
    # --- cross-entropies (labels and logits both differentiable, where floating) ----------------
    OpCase(
        "softmax_cross_entropy",
        softmax_cross_entropy,
        (((3, 4), (3, 4)), ((1, 1), (1, 1))),
        reference=lambda y, z: ref.softmax_cross_entropy(y, z, -1),
    ),
    OpCase(
        "softmax_cross_entropy",
        lambda y, z: softmax_cross_entropy(y, z, axis=1),
        (((2, 3, 4), (2, 3, 4)),),
        name="softmax_cross_entropy_axis1",
        reference=lambda y, z: ref.softmax_cross_entropy(y, z, 1),
    ),
    OpCase(
        "sparse_softmax_cross_entropy",
        lambda z: sparse_softmax_cross_entropy(LABELS, z),
        (((2, 3, 4),),),
        domain="wide",
        reference=lambda z: ref.sparse_softmax_cross_entropy(LABELS, z),
    ),
    OpCase(
        "sparse_softmax_cross_entropy",
        lambda z: sparse_softmax_cross_entropy(IGNORED, z, ignore_class=-1),
        (((2, 3, 4),),),
        name="sparse_softmax_cross_entropy_ignore_class",
        reference=lambda z: ref.sparse_softmax_cross_entropy(IGNORED, z, ignore_class=-1),
    ),
    OpCase(
        "sigmoid_binary_cross_entropy",
        sigmoid_binary_cross_entropy,
        (((3, 4), (3, 4)), ((4,), (3, 4)), ((1,), (1,))),
        reference=ref.sigmoid_binary_cross_entropy,
    ),
    # --- recurrences: batch 2, 3 steps, 2 features, 3 units ---------------------------------------
    OpCase(
        "simple_rnn_sequence",
        simple_rnn_sequence,
        (((2, 3, 2), (2, 3), (3,), (2, 3), (3, 3)),),
        reference=ref.simple_rnn,
    ),
    OpCase(
        "lstm_sequence",
        lstm_sequence,
        (((2, 3, 2), (2, 12), (12,), (2, 3), (2, 3), (3, 12)),),
        reference=ref.lstm,
    ),
    OpCase(
        "gru_sequence",
        gru_sequence,
        (((2, 3, 2), (2, 9), (9,), (2, 3), (3, 9), (9,)),),
        reference=ref.gru,
    ),
    # --- connectionist temporal classification ---------------------------------------------------
    OpCase(
        "ctc_loss",
        lambda z: ctc_loss(CTC_LABELS, z, CTC_LABEL_LENGTHS, CTC_FRAMES, mask_index=0),
        (((3, 6, 4),),),
        lambda z: _t("nn.functional.ctc_loss")(
            _t("log_softmax")(z, -1).transpose(0, 1),
            _t("tensor")(np.maximum(CTC_LABELS, 0)),
            _t("tensor")(CTC_FRAMES),
            _t("tensor")(CTC_LABEL_LENGTHS),
            blank=0,
            reduction="none",
        ),
        reference=lambda z: ref.ctc_loss(CTC_LABELS, CTC_LABEL_LENGTHS, CTC_FRAMES, z, 0),
    ),
    # --- keras.ops additions: segments, FFT, Bessel I0, log|det|, pinv, custom gradient -------
    *(
        OpCase(
            "segment_reduce",
            lambda d, fn=fn, n=n: fn(d, SEGMENT_IDS, num_segments=n),
            (((7, 3),), ((7,),)),
            name=f"segment_{kind}",
            domain="nonzero",
            reference=lambda d, kind=kind, n=n: ref.segment_reduce(d, SEGMENT_IDS, n, kind),
        )
        # (max and min over segments 0-2 only: an empty one would hold -inf / +inf)
        for kind, fn, n in (
            ("sum", segment_sum, 4),
            ("max", segment_max, 3),
            ("min", segment_min, 3),
            ("prod", segment_prod, 4),
        )
    ),
    OpCase(
        "complex_dft",
        lambda r, i: ComplexDFT.apply(r, i, axes=(-1,), inverse=False),
        (((5,), (5,)), ((2, 4), (2, 4))),
        name="complex_dft_fft",
        reference=_dft(False, (-1,)),
    ),
    OpCase(
        "complex_dft",
        lambda r, i: ComplexDFT.apply(r, i, axes=(-2, -1), inverse=True),
        (((3, 4), (3, 4)),),
        name="complex_dft_ifft2",
        reference=_dft(True, (-2, -1)),
    ),
    OpCase(
        "i0",
        i0,
        (((5,),), ((2, 3),)),
        lambda x: _t("i0")(x),
        domain="wide",
        reference=np.i0,
    ),
    OpCase(
        "logabsdet",
        lambda a: LogAbsDet.apply(a),
        (((3, 3),), ((2, 2, 2),)),
        lambda a: _t("linalg.slogdet")(a)[1],
        reference=lambda a: np.linalg.slogdet(a)[1],
    ),
    OpCase(
        "pinv",
        lambda a: Pinv.apply(a),
        (((3, 2),), ((2, 4),), ((2, 3, 3),)),
        lambda a: _t("linalg.pinv")(a),
        reference=np.linalg.pinv,
    ),
    OpCase(
        "custom_gradient",
        _log1pexp,
        (((4,),), ((2, 3),)),
        reference=ref.log1pexp,
    ),
)
