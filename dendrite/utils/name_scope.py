"""``keras.name_scope``: a context manager that opens a sub-namespace for names.

Keras 3 prefixes the paths of variables created inside ``with keras.name_scope("block"):``
with ``block/``. dendrite names a variable by its layer's path (``dense/kernel``), set when
the layer is tracked, and does not read name scopes; the scope is kept, per thread, so that
code which opens scopes runs unchanged and ``current_path()`` answers as Keras' does.
"""

from __future__ import annotations

import threading
from typing import Any

_STACK = threading.local()


def _stack() -> list[name_scope]:
    if not hasattr(_STACK, "scopes"):
        _STACK.scopes = []
    return _STACK.scopes


class name_scope:  # noqa: N801 (Keras' name)
    """A sub-namespace ``name`` for variable paths (see the module docstring).

    Args:
        name: the scope's name; a string without "/".
        caller: an optional owner object; with ``deduplicate``, entering a scope of the same
            name and caller as the innermost open one opens nothing new.
        deduplicate: see ``caller``.
        override_parent: an absolute path that replaces the enclosing scopes' path.
    """

    def __init__(
        self,
        name: str,
        caller: Any = None,
        deduplicate: bool = True,
        override_parent: str | None = None,
    ) -> None:
        if not isinstance(name, str) or "/" in name:
            raise ValueError(
                f"Argument `name` must be a string and cannot contain character `/`. "
                f"Received: name={name!r}"
            )
        self.name = name
        self.caller = caller
        self.deduplicate = deduplicate
        if override_parent is None and deduplicate:
            override_parent = getattr(caller, "_parent_path", None)
        self.override_parent = override_parent
        self._pushed = False

    def __enter__(self) -> name_scope:
        stack = _stack()
        if self.deduplicate and stack and self.caller is not None:
            top = stack[-1]
            if top.caller is self.caller and top.name == self.name:
                return self
        stack.append(self)
        self._pushed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pushed:
            stack = _stack()
            if stack and stack[-1] is self:
                stack.pop()
            self._pushed = False


def current_path() -> str:
    """The "/"-joined names of the open scopes of this thread ("" outside any)."""
    parts: list[str] = []
    for scope in _stack():
        if scope.override_parent is not None:
            parts = [p for p in scope.override_parent.split("/") if p]
        parts.append(scope.name)
    return "/".join(parts)
