"""``InputSpec``: what a layer accepts, checked on every call with Keras' error wording."""

from __future__ import annotations

from typing import Any


class InputSpec:
    """Constraints on a layer input: rank (``ndim``, ``min_ndim``, ``max_ndim``) and the
    sizes of given axes (``axes={-1: 784}``)."""

    def __init__(
        self,
        ndim: int | None = None,
        min_ndim: int | None = None,
        max_ndim: int | None = None,
        axes: dict[int, int] | None = None,
        dtype: Any = None,
    ) -> None:
        self.ndim = ndim
        self.min_ndim = min_ndim
        self.max_ndim = max_ndim
        self.axes = dict(axes or {})
        self.dtype = dtype

    def check(self, layer_name: str, index: int, shape: tuple) -> None:
        """Raise ValueError (naming the layer, expected and received shape) on a mismatch."""
        rank = len(shape)
        if self.ndim is not None and rank != self.ndim:
            _fail(layer_name, index, f"expected ndim={self.ndim}, found ndim={rank}", shape)
        if self.min_ndim is not None and rank < self.min_ndim:
            _fail(layer_name, index, f"expected min_ndim={self.min_ndim}, found ndim={rank}", shape)
        if self.max_ndim is not None and rank > self.max_ndim:
            _fail(layer_name, index, f"expected max_ndim={self.max_ndim}, found ndim={rank}", shape)
        for axis, value in self.axes.items():
            if value is None:
                continue
            if not -rank <= axis < rank or shape[axis] not in (value, None):
                raise ValueError(
                    f"Input {index} of layer '{layer_name}' is incompatible with the layer: "
                    f"expected axis {axis} of input shape to have value {value}, "
                    f"but received input with shape {shape}"
                )


def _fail(layer_name: str, index: int, problem: str, shape: tuple) -> None:
    # The message is built only on failure: check() runs on every layer call.
    raise ValueError(
        f"Input {index} of layer '{layer_name}' is incompatible with the layer: "
        f"{problem}. Full shape received: {shape}"
    )
