"""PyTorch counterparts of dendrite's ops for the comparison tests, resolved lazily.

PyTorch is optional: nothing here imports it until a reference is called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _torch() -> Any:
    import torch

    return torch


def t(path: str) -> Callable[..., Any]:
    """A torch function by dotted name, resolved lazily (torch is optional)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        target: Any = _torch()
        for part in path.split("."):
            target = getattr(target, part)
        return target(*args, **kwargs)

    return call


def torch_var(x: Any, axis: Any, keepdims: bool) -> Any:
    dims = tuple(range(x.ndim)) if axis is None else axis
    return t("var")(x, dim=dims, correction=0, keepdim=keepdims)


def torch_std(x: Any, axis: Any, keepdims: bool) -> Any:
    dims = tuple(range(x.ndim)) if axis is None else axis
    return t("std")(x, dim=dims, correction=0, keepdim=keepdims)


def torch_reduce(name: str) -> Callable[..., Any]:
    def call(x: Any, axis: Any, keepdims: bool) -> Any:
        dims = tuple(range(x.ndim)) if axis is None else axis
        return t(name)(x, dim=dims, keepdim=keepdims)

    return call


def torch_pad(x: Any, widths: tuple, mode: str) -> Any:
    """PyTorch pads the last two axes of a batch in these modes: add a batch axis."""
    return t("nn.functional.pad")(x[None], widths, mode=mode)[0]
