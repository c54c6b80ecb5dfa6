"""Public ops on symbolic tensors: ``keras.ops.add(x, 1)`` where ``x`` comes from
``keras.Input`` records a node of the functional graph instead of computing.

Every function in the ``dendrite.ops`` namespace is wrapped once (``symbolic_aware``): when
one of its positional arguments, or an item of a list/tuple given as its first argument
(``concatenate([a, b])``), is a ``SymbolicValue``, the call goes to that value's
``_apply_op(name, args, kwargs)``; otherwise the op runs as written. The check is a scan of
the positional arguments, so eager calls pay a few hundred nanoseconds at most.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from dendrite.core import SymbolicValue


def find_symbolic(args: tuple) -> SymbolicValue | None:
    """The first symbolic value among ``args`` (and the items of a list or tuple first
    argument), or None."""
    for arg in args:
        if isinstance(arg, SymbolicValue):
            return arg
    if args and type(args[0]) in (list, tuple):
        for item in args[0]:
            if isinstance(item, SymbolicValue):
                return item
    return None


def symbolic_aware(fn: Callable[..., Any], name: str | None = None) -> Callable[..., Any]:
    """``fn``, recording itself as a graph node when given a symbolic tensor."""
    op_name = name or fn.__name__

    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Any:
        symbolic = find_symbolic(args)
        if symbolic is None:
            return fn(*args, **kwargs)
        return symbolic._apply_op(op_name, args, kwargs)

    op.__wrapped__ = fn
    return op


# Names that never record a node: conversions and static queries.
NOT_RECORDED = frozenset(
    {
        "convert_to_numpy",
        "convert_to_tensor",
        "shape",
        # Python control flow and queries: they call functions or answer from the value.
        "cond",
        "fori_loop",
        "while_loop",
        "scan",
        "map",
        "is_tensor",
        "size",
        "ndim",
        # Results whose shape depends on the values (a placeholder run cannot tell it).
        "unique",
        "nonzero",
        "bincount",
    }
)
