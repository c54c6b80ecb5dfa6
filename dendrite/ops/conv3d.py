"""3-D convolution and transposed convolution, channels_last, as 2-D ones over windows of
the depth axis (so every path of the 2-D primitives, im2col + BLAS and the C kernels,
serves the 3-D layers too, and the gradients come from their VJPs).

**Convolution.** For ``x`` (N, D, H, W, C) zero-padded to ``xp``, a Keras kernel ``K`` of
shape (kd, kh, kw, C / g, F) with ``g`` groups, strides ``s`` and dilation ``d``:

    y[n, p, q, r, f] = b[f] + sum_{i, j, l, c} xp[n, p s_d + i d_d, q s_h + j d_h,
                                                  r s_w + l d_w, c] K[i, j, l, c, f]

(c running over the input channels of f's group). Unfold the depth axis
(``dendrite.ops.axis_windows``): ``u[n, p, h, w, i, c] = xp[n, p s_d + i d_d, h, w, c]``,
with the channels ordered (group, i, c); then ``y[n, p]`` is the 2-D convolution of
``u[n, p]`` (N OD images of kd C channels) with the kernel
``K'[j, l, i C/g + c, f] = K[i, j, l, c, f]`` of shape (kh, kw, kd C / g, F), in ``g``
groups, with the height and width padding, bias and fused ReLU of the 2-D primitive.

**Transposed convolution** (Keras kernel (kd, kh, kw, F, C)): the adjoint of the above.
The 2-D transposed convolution of each depth slice ``x[n, p]`` with the kernel
``K''[j, l, i F + f, c] = K[i, j, l, f, c]`` gives ``z[n, p, h', w', i, f]``, every depth tap
``i`` as its own channels; folding the depth axis adds tap ``i`` of slice ``p`` to output
depth ``p s_d + i d_d`` and crops the padding; then ``+ b`` and the ReLU. Output sizes and
padding are Keras' (``windows.transpose_output_length``), as in 1-D and 2-D.
"""

from __future__ import annotations

from typing import Any

from dendrite.core import Tensor
from dendrite.ops.activations import relu as relu_op
from dendrite.ops.arithmetic import add
from dendrite.ops.axis_windows import FoldAxis, UnfoldAxis
from dendrite.ops.conv import fused_conv
from dendrite.ops.conv_transposed import ConvTranspose
from dendrite.ops.movement import reshape, transpose
from dendrite.ops.windows import (
    explicit_padding,
    normalize_tuple,
    standardize_padding,
    transpose_output_length,
)


def _rank5(x: Any, kernel: Any, op: str) -> None:
    if len(x.shape) != 5 or len(kernel.shape) != 5:
        raise ValueError(
            f"{op}: expected a channels_last input of rank 5 (batch, depth, height, width, "
            f"channels) and a kernel of rank 5, got input {tuple(x.shape)} and kernel "
            f"{tuple(kernel.shape)}."
        )


def fused_conv3d(
    x: Any,
    kernel: Any,
    bias: Any = None,
    strides: Any = 1,
    padding: Any = "valid",
    dilation_rate: Any = 1,
    groups: int = 1,
    relu: bool = False,
) -> Tensor:
    """``relu?(conv3d(x, kernel) + bias)`` for channels_last ``x`` (see the module docstring).

    Args:
        x: (batch, depth, height, width, channels).
        kernel: (kd, kh, kw, channels / groups, filters), Keras' layout.
        bias: (filters,) or None.
        strides, dilation_rate: an int or 3 ints.
        padding: 'valid', 'same' or three explicit (before, after) pairs.
        groups: number of channel groups.
        relu: apply max(., 0) (fused into the 2-D primitive).
    """
    _rank5(x, kernel, "conv3d")
    n, depth, h, w, c = x.shape
    kd, kh, kw, cg, f = kernel.shape
    groups = int(groups)
    if cg * groups != c or f % groups:
        raise ValueError(
            f"conv3d: the input has {c} channels, but the kernel of shape "
            f"{tuple(kernel.shape)} with groups={groups} expects {cg * groups} (and filters "
            f"divisible by groups)."
        )
    strides = normalize_tuple(strides, 3, "strides")
    dilation = normalize_tuple(dilation_rate, 3, "dilation_rate")
    pads = explicit_padding(padding, (depth, h, w), (kd, kh, kw), strides, dilation)
    # (N, D, H, W, g, C/g) -> (N, OD, H, W, g, kd, C/g): channels ordered (group, i, c)
    grouped = reshape(x, (n, depth, h, w, groups, cg))
    windows = UnfoldAxis.apply(
        grouped, size=kd, stride=strides[0], dilation=dilation[0], pads=pads[0]
    )
    out_depth = windows.shape[1]
    images = reshape(windows, (n * out_depth, h, w, groups * kd * cg))
    flat_kernel = reshape(transpose(kernel, (1, 2, 0, 3, 4)), (kh, kw, kd * cg, f))
    y = fused_conv(
        images,
        flat_kernel,
        bias,
        strides=strides[1:],
        padding=pads[1:],
        dilation_rate=dilation[1:],
        groups=groups,
        relu=relu,
    )
    return reshape(y, (n, out_depth, *y.shape[1:]))


def fused_conv3d_transpose(
    x: Any,
    kernel: Any,
    bias: Any = None,
    strides: Any = 1,
    padding: str = "valid",
    output_padding: Any = None,
    dilation_rate: Any = 1,
    relu: bool = False,
) -> Tensor:
    """``relu?(conv3d_transpose(x, kernel) + bias)`` (see the module docstring).

    Args:
        x: (batch, depth, height, width, channels), channels_last.
        kernel: (kd, kh, kw, filters, channels), Keras' layout.
        bias: (filters,) or None.
        strides, dilation_rate: an int or 3 ints.
        padding: 'valid' or 'same'.
        output_padding: None, an int or 3 ints: the extra rows at the end of each axis.
        relu: apply max(., 0).
    """
    _rank5(x, kernel, "conv3d_transpose")
    n, depth, h, w, c = x.shape
    kd, kh, kw, f, kc = kernel.shape
    if kc != c:
        raise ValueError(
            f"conv3d_transpose: the input has {c} channels, but the kernel of shape "
            f"{tuple(kernel.shape)} (kd, kh, kw, filters, in_channels) expects {kc}."
        )
    strides = normalize_tuple(strides, 3, "strides")
    dilation = normalize_tuple(dilation_rate, 3, "dilation_rate")
    padding = standardize_padding(padding)
    extra = (None,) * 3
    if output_padding is not None:
        extra = normalize_tuple(output_padding, 3, "output_padding", allow_zero=True)
    sizes, pads = [], []
    for axis, (size, k, s, d) in enumerate(zip((depth, h, w), kernel.shape[:3], strides, dilation)):
        out = transpose_output_length(size, k, padding, s, extra[axis], d)
        total = max((size - 1) * s + (k - 1) * d + 1 - out, 0) if padding == "same" else 0
        sizes.append(out)
        pads.append((total // 2, total - total // 2))
    if min(sizes) <= 0:
        raise ValueError(
            f"conv3d_transpose: the output size {tuple(sizes)} of input {tuple(x.shape)} and "
            f"kernel {tuple(kernel.shape)} is not positive."
        )
    slices = reshape(x, (n * depth, h, w, c))
    flat_kernel = reshape(transpose(kernel, (1, 2, 0, 3, 4)), (kh, kw, kd * f, c))
    taps = ConvTranspose.apply(
        slices,
        flat_kernel,
        strides=strides[1:],
        padding=tuple(pads[1:]),
        output_size=tuple(sizes[1:]),
        dilation=dilation[1:],
    )
    taps = reshape(taps, (n, depth, sizes[1], sizes[2], kd, f))
    y = FoldAxis.apply(taps, length=sizes[0], stride=strides[0], dilation=dilation[0], pads=pads[0])
    if bias is not None:
        y = add(y, bias)
    return relu_op(y) if relu else y
