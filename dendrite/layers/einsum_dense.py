"""EinsumDense (Keras 3's): a dense layer whose product is an einsum,
``y = activation(einsum(equation, x, kernel) + bias)``.

The equation is ``"X,W->Y"``, ``"...X,W->...Y"`` or ``"X...,W->Y..."``: one letter per axis
of the input (X), of the kernel (W) and of the output (Y), with ``...`` standing for the
input's other axes. The kernel's shape comes from the letters: a kernel letter that is an
output letter takes that output axis' size (from ``output_shape``, the output's shape
without its batch axis, ``None`` where the input fixes it), otherwise the input axis'
size; a letter in neither is an error. ``bias_axes`` names the output letters the bias
spans; the bias is laid out over the output from its first such letter on (size 1 on the
others, and on the elided axes after it), so it broadcasts against the output.
"""

from __future__ import annotations

import re
from typing import Any

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers import activations, constraints, initializers, regularizers
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import register_layer

_FORMS = (
    (r"([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)", False),
    (r"0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)", True),
    (r"([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0", False),
)


def einsum_shapes(
    equation: str, bias_axes: str | None, input_shape: tuple, output_shape: Any
) -> tuple[list, list | None, list]:
    """(kernel shape, bias shape or None, full output shape) for ``input_shape`` (batch
    first); see the module docstring."""
    plain = equation.replace("...", "0")
    found = [(m, left) for m, left in ((re.fullmatch(p, plain), left) for p, left in _FORMS) if m]
    if not found:
        raise ValueError(
            f"EinsumDense: invalid equation {equation!r}; expected the form X,W->Y, "
            f"...X,W->...Y or X...,W->Y... (one letter per axis)."
        )
    match, left_elided = found[0]
    x_spec, w_spec, y_spec = match.groups()
    elided = len(input_shape) - len(x_spec)
    out = [output_shape] if isinstance(output_shape, int) else list(output_shape)
    out.insert(0, input_shape[0])
    if elided > 0 and left_elided:
        for i in range(1, elided):
            out.insert(1, input_shape[i])
    elif elided > 0:
        out.extend(input_shape[len(input_shape) - elided :])
    if left_elided:
        x_axis = {c: i + elided - len(input_shape) for i, c in enumerate(x_spec)}
        y_axis = {c: i + elided for i, c in enumerate(y_spec)}
    else:
        x_axis = {c: i for i, c in enumerate(x_spec)}
        y_axis = {c: i for i, c in enumerate(y_spec)}
    for c in x_spec:
        if c in y_axis and out[y_axis[c]] is not None:
            if out[y_axis[c]] != input_shape[x_axis[c]]:
                raise ValueError(
                    f"EinsumDense: the input and output shapes differ at the shared axis "
                    f"{c!r} of {equation!r}: {input_shape[x_axis[c]]} and {out[y_axis[c]]}."
                )
    for c in y_spec:  # None in output_shape: the input's size (Keras leaves None there)
        if c in x_axis and out[y_axis[c]] is None:
            out[y_axis[c]] = input_shape[x_axis[c]]
    for c in y_spec:
        if c not in x_spec and c not in w_spec:
            raise ValueError(
                f"EinsumDense: output axis {c!r} of {equation!r} is in neither the input "
                f"nor the kernel."
            )
    kernel = []
    for c in w_spec:
        if c in y_axis:
            kernel.append(out[y_axis[c]])
        elif c in x_axis:
            kernel.append(input_shape[x_axis[c]])
        else:
            raise ValueError(
                f"EinsumDense: kernel axis {c!r} of {equation!r} is in neither the input nor "
                f"the output, so its size is unknown."
            )
    if bias_axes is None:
        return kernel, None, out
    missing = [c for c in bias_axes if c not in y_spec]
    if missing:
        raise ValueError(f"EinsumDense: bias axes {missing} are not output axes of {equation!r}.")
    offset = elided if left_elided else 0
    size = {c: out[i + offset] for i, c in enumerate(y_spec)}
    first = min(y_spec.find(c) for c in bias_axes)
    bias = [size[c] if c in bias_axes else 1 for c in y_spec[first:]]
    if not left_elided:
        bias.extend([1] * max(elided, 0))
    return kernel, bias, out


@register_layer
class EinsumDense(Layer):
    """A dense layer with an einsum product (see the module docstring).

    Args:
        equation: the einsum of the inputs and the kernel, e.g. ``"abc,cd->abd"``.
        output_shape: the output's shape without the batch axis (an int for one axis);
            ``None`` entries are taken from the input.
        activation: name or callable (None: linear).
        bias_axes: the output letters the bias spans (None: no bias).
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint: as for ``Dense``.
    """

    example = {
        "kwargs": {"equation": "abc,cd->abd", "output_shape": (None, 4), "bias_axes": "d"},
        "input_shape": (2, 3, 5),
    }

    def __init__(
        self,
        equation: str,
        output_shape: Any,
        activation: Any = None,
        bias_axes: str | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        lora_rank: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if lora_rank:
            raise ValueError("EinsumDense: lora_rank is not supported by dendrite.")
        self.equation = equation
        shape = [output_shape] if isinstance(output_shape, int) else list(output_shape)
        self.partial_output_shape = tuple(shape)
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape: tuple) -> None:
        kernel, bias, self.full_output_shape = einsum_shapes(
            self.equation, self.bias_axes, tuple(input_shape), self.partial_output_shape
        )
        self.kernel = self.add_weight(
            tuple(kernel),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        self.bias = None
        if bias is not None:
            self.bias = self.add_weight(
                tuple(bias),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        self.input_spec = InputSpec(ndim=len(input_shape))
        self.built = True

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.data.dtype.kind != "f":
            inputs = ops.cast(inputs, self.dtype)
        out = ops.einsum(self.equation, inputs, self.kernel)
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(
            einsum_shapes(
                self.equation, self.bias_axes, tuple(input_shape), self.partial_output_shape
            )[2]
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "output_shape": list(self.partial_output_shape),
            "equation": self.equation,
            "activation": activations.serialize(self.activation),
            "bias_axes": self.bias_axes,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
        }
