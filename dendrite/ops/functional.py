"""Function transformations and einops-style rearranging, with Keras 3's names:

- switch(index, branches, *operands): ``branches[clip(index)](*operands)`` (eager Python);
- vectorized_map(function, elements): ``function`` on each slice of ``elements`` along
  their first axis (a structure of tensors is sliced together), the results stacked;
- vectorize(pyfunc, excluded, signature): NumPy's ``vectorize``: ``pyfunc`` called on each
  element (or on each core sub-array of the generalized-ufunc ``signature``, e.g.
  ``"(n),(n)->()"``) over the broadcast loop axes, the results stacked back;
- custom_gradient(f): ``f(*args)`` returns ``(y, grad_fn)``; the decorated function
  computes y and back-propagates ``grad_fn(upstream)`` (one gradient per tensor argument,
  a tuple when there are several) instead of y's own gradient. A primitive,
  ``custom_gradient``, whose VJP is the user's function;
- rearrange(tensor, pattern, **axes_lengths): einops' ``rearrange``: names, parenthesised
  groups (split or merged axes), ``...`` and unit axes ``1`` / ``()`` on either side,
  as reshape, transpose and reshape.

All of these differentiate through the ops they run (stack, getitem, reshape, transpose).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from dendrite.core import Function, Tensor, no_grad, register
from dendrite.ops._util import raw
from dendrite.ops.indexing import getitem
from dendrite.ops.joining import stack
from dendrite.ops.movement import broadcast_to, reshape, transpose


# --- switch -------------------------------------------------------------------------------
def switch(index: Any, branches: Any, *operands: Any) -> Any:
    """``branches[index](*operands)``, index clipped to the valid range."""
    branches = list(branches)
    if not branches:
        raise ValueError("switch: branches must not be empty.")
    value = raw(index)
    if np.size(value) != 1:
        raise ValueError(f"switch: index must be a scalar; got shape {np.shape(value)}.")
    chosen = int(np.clip(int(value.reshape(())), 0, len(branches) - 1))
    return branches[chosen](*operands)


# --- vectorized_map and vectorize ----------------------------------------------------------------
def _leaves(structure: Any) -> list:
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in _leaves(item)]
    if isinstance(structure, dict):
        return [leaf for key in structure for leaf in _leaves(structure[key])]
    return [structure]


def _rebuild(structure: Any, leaves: list) -> Any:
    """``structure`` with its leaves replaced, in order, by those of ``leaves`` (consumed)."""
    if isinstance(structure, (list, tuple)):
        items = [_rebuild(item, leaves) for item in structure]
        return type(structure)(items) if isinstance(structure, list) else tuple(items)
    if isinstance(structure, dict):
        return {key: _rebuild(structure[key], leaves) for key in structure}
    return leaves.pop(0)


def _stacked(results: list) -> Any:
    """Per-call results of one structure, stacked leaf by leaf along a new first axis."""
    first = results[0]
    columns = list(zip(*[_leaves(r) for r in results]))
    return _rebuild(first, [stack(list(column), axis=0) for column in columns])


def vectorized_map(function: Callable[[Any], Any], elements: Any) -> Any:
    """``function`` applied to each slice of ``elements`` along axis 0 (every tensor of a
    structure sliced at once), the results stacked along a new axis 0."""
    leaves = _leaves(elements)
    sizes = {np.shape(raw(leaf))[0] for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(
            f"vectorized_map: all elements must share their first axis; got sizes {sizes}."
        )
    (count,) = sizes
    results = []
    for i in range(count):
        piece = _rebuild(elements, [getitem(leaf, i) for leaf in leaves])
        results.append(function(piece))
    if not results:
        raise ValueError("vectorized_map: elements have an empty first axis.")
    return _stacked(results)


_CORE = re.compile(r"\(([^()]*)\)")


def _parse_signature(signature: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    compact = signature.replace(" ", "")
    if "->" not in compact:
        raise ValueError(f"vectorize: signature {signature!r} needs '->'.")
    inputs, outputs = compact.split("->")

    def dims(text: str) -> list[tuple[str, ...]]:
        return [tuple(d for d in group.split(",") if d) for group in _CORE.findall(text)]

    return dims(inputs), dims(outputs)


def vectorize(
    pyfunc: Callable[..., Any], *, excluded: Any = None, signature: str | None = None
) -> Callable[..., Any]:
    """NumPy's ``vectorize`` over tensors (see the module docstring)."""
    excluded = set(excluded or ())

    @functools.wraps(pyfunc)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        positions = [i for i in range(len(args)) if i not in excluded and not callable(args[i])]
        tensors = [
            args[i] if isinstance(args[i], Tensor) else Tensor._make(raw(args[i]))
            for i in positions
        ]
        if signature is None:
            cores: list[tuple[str, ...]] = [()] * len(tensors)
            outputs = None
        else:
            cores, outputs = _parse_signature(signature)
            if len(cores) != len(tensors):
                raise ValueError(
                    f"vectorize: signature {signature!r} names {len(cores)} inputs, got "
                    f"{len(tensors)}."
                )
        loop_shapes = []
        for tensor, core in zip(tensors, cores):
            shape = tensor.shape
            if len(shape) < len(core):
                raise ValueError(
                    f"vectorize: an input of shape {shape} has fewer axes than its core "
                    f"dimensions {core}."
                )
            loop_shapes.append(shape[: len(shape) - len(core)])
        loop = np.broadcast_shapes(*loop_shapes) if loop_shapes else ()
        spread = [
            broadcast_to(t, loop + t.shape[len(t.shape) - len(c) :]) if c or loop else t
            for t, c in zip(tensors, cores)
        ]
        results = []
        for index in np.ndindex(*loop) if loop else [()]:
            call = list(args)
            for position, tensor in zip(positions, spread):
                call[position] = getitem(tensor, index) if index else tensor
            results.append(pyfunc(*call, **kwargs))
        if not loop:
            return results[0]
        out = _stacked(results)
        leaves = _leaves(out)
        shaped = [reshape(leaf, loop + leaf.shape[1:]) for leaf in leaves]
        del outputs
        return _rebuild(out, shaped)

    return wrapped


# --- custom_gradient ---------------------------------------------------------------------------
@register("custom_gradient")
class CustomGradient(Function):
    """y = f(*args)[0]; dL/d(args) = grad_fn(g), ``grad_fn = f(*args)[1]``."""

    def forward(self, *arrays: np.ndarray, fn: Any = None, layout: Any = None) -> np.ndarray:
        args, kwargs, positions = layout
        call = list(args)
        for position, array in zip(positions, arrays):
            call[position] = Tensor._make(array)
        with no_grad():
            result = fn(*call, **kwargs)
        if not isinstance(result, (tuple, list)) or len(result) != 2 or not callable(result[1]):
            raise ValueError(
                "custom_gradient: the decorated function must return (output, grad_fn)."
            )
        output, grad_fn = result
        self.saved = (grad_fn, [a.dtype for a in arrays])
        return np.asarray(raw(output))

    def backward(self, g: np.ndarray) -> tuple:
        grad_fn, dtypes = self.saved
        with no_grad():
            grads = grad_fn(Tensor._make(g))
        if not isinstance(grads, (tuple, list)):
            grads = (grads,)
        grads = list(grads) + [None] * (len(dtypes) - len(grads))
        return tuple(
            None if grad is None else np.asarray(raw(grad)).astype(dtype, copy=False)
            for grad, dtype in zip(grads, dtypes)
        )


def custom_gradient(f: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: ``f(*args)`` returns ``(y, grad_fn)``; the result computes y, and its
    gradient with respect to the tensor arguments is ``grad_fn(upstream)``."""

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Tensor:
        positions = [i for i, a in enumerate(args) if isinstance(a, (Tensor, np.ndarray))]
        inputs = [
            args[i] if isinstance(args[i], Tensor) else Tensor._make(args[i]) for i in positions
        ]
        layout = (args, kwargs, positions)
        return CustomGradient.apply(*inputs, fn=f, layout=layout)

    return wrapped


# --- rearrange ---------------------------------------------------------------------------------
_TOKEN = re.compile(r"\.\.\.|\(|\)|[A-Za-z_][A-Za-z0-9_]*|\d+")


def _parse_side(text: str, side: str) -> list:
    """Items of one side: a name, "...", or a list (a group) of names and "..."; a unit
    axis ``1`` or ``()`` is an empty group."""
    items: list = []
    group: list | None = None
    position = 0
    for match in _TOKEN.finditer(text):
        between = text[position : match.start()]
        if between.strip():
            raise ValueError(f"rearrange: cannot read {between.strip()!r} in {side} side.")
        position = match.end()
        token = match.group()
        if token == "(":
            if group is not None:
                raise ValueError("rearrange: groups cannot be nested.")
            group = []
        elif token == ")":
            if group is None:
                raise ValueError("rearrange: unbalanced ')'.")
            items.append(group)
            group = None
        elif token.isdigit():
            if token != "1":
                raise ValueError(f"rearrange: only 1 may stand as a number, got {token}.")
            if group is None:
                items.append([])  # a unit axis: an empty group
        else:
            (group if group is not None else items).append(token)
    if text[position:].strip():
        raise ValueError(f"rearrange: cannot read {text[position:].strip()!r}.")
    if group is not None:
        raise ValueError("rearrange: unbalanced '('.")
    return items


def _names(items: list) -> list[str]:
    out = []
    for item in items:
        out.extend(item if isinstance(item, list) else [item])
    return out


def rearrange(tensor: Any, pattern: str, **axes_lengths: Any) -> Tensor:
    """einops' ``rearrange``: e.g. ``"b h w c -> b (h w) c"``, ``"b (h p) w -> b h p w"``
    with ``p=2``, ``"... c -> c ..."``."""
    if "->" not in pattern:
        raise ValueError(f"rearrange: pattern {pattern!r} needs '->'.")
    left_text, right_text = pattern.split("->")
    left, right = _parse_side(left_text, "the left"), _parse_side(right_text, "the right")
    shape = tuple(np.shape(raw(tensor)))
    left_names, right_names = _names(left), _names(right)
    for names, side in ((left_names, "left"), (right_names, "right")):
        plain = [n for n in names if n != "..."]
        if len(plain) != len(set(plain)) or names.count("...") > 1:
            raise ValueError(f"rearrange: a name repeats on the {side} side of {pattern!r}.")
    if set(left_names) != set(right_names):
        raise ValueError(
            f"rearrange: both sides must name the same axes; {pattern!r} differs in "
            f"{sorted(set(left_names) ^ set(right_names))}."
        )
    ellipsis = "..." in left_names
    fixed = len(left) - (1 if "..." in left else 0)
    if "..." in [item for item in left if isinstance(item, list) for item in item]:
        raise ValueError("rearrange: '...' cannot stand inside a group on the left.")
    if (ellipsis and len(shape) < fixed) or (not ellipsis and len(shape) != len(left)):
        raise ValueError(
            f"rearrange: pattern {pattern!r} does not match a tensor of rank {len(shape)}."
        )
    extra = len(shape) - fixed
    ellipsis_names = [f"...{i}" for i in range(extra)]
    sizes: dict[str, int] = {k: int(v) for k, v in axes_lengths.items()}
    elementary: list[str] = []
    dim = 0
    for item in left:
        if item == "...":
            for name in ellipsis_names:
                sizes[name] = shape[dim]
                elementary.append(name)
                dim += 1
            continue
        members = item if isinstance(item, list) else [item]
        length = shape[dim]
        dim += 1
        unknown = [m for m in members if m not in sizes]
        known = math.prod(sizes[m] for m in members if m in sizes)
        if len(unknown) > 1:
            raise ValueError(f"rearrange: cannot infer the sizes of {unknown} in {pattern!r}.")
        if unknown:
            if known == 0 or length % known:
                raise ValueError(
                    f"rearrange: axis of size {length} cannot split into {members} "
                    f"({axes_lengths})."
                )
            sizes[unknown[0]] = length // known
        elif known != length:
            raise ValueError(
                f"rearrange: axis of size {length} does not equal {members} = {known}."
            )
        elementary.extend(members)
    expanded = reshape(tensor, tuple(sizes[n] for n in elementary))
    order: list[str] = []
    out_shape: list[int] = []
    for item in right:
        if item == "...":
            order.extend(ellipsis_names)
            out_shape.extend(sizes[n] for n in ellipsis_names)
            continue
        members = item if isinstance(item, list) else [item]
        flat: list[str] = []
        for member in members:
            flat.extend(ellipsis_names if member == "..." else [member])
        order.extend(flat)
        out_shape.append(math.prod(sizes[n] for n in flat))
    moved = transpose(expanded, tuple(elementary.index(n) for n in order))
    return reshape(moved, tuple(out_shape))
