"""``keras.tree``: nested structures of lists, tuples, namedtuples, dicts and deques.

A *structure* is a leaf or a container of structures. Containers are ``list``, ``tuple``
(namedtuples included), ``dict`` (and its subclasses: ``OrderedDict``, ``defaultdict``) and
``collections.deque``; everything else, ``None`` included, is a leaf. Pure Python, no
dependency (Keras uses optree).

Order (Keras' rule, shared by ``flatten`` and ``pack_sequence_as`` so that each undoes the
other): sequences in their order; a ``dict``'s values by sorted key, an ``OrderedDict``'s
in insertion order. A rebuilt container has the type of the one it replaces (a namedtuple
its class, a ``defaultdict`` its factory) and a dict keeps its own key order.
"""

from __future__ import annotations

import collections
import warnings
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "MAP_TO_NONE",
    "assert_same_paths",
    "assert_same_structure",
    "flatten",
    "flatten_with_path",
    "is_nested",
    "lists_to_tuples",
    "map_shape_structure",
    "map_structure",
    "map_structure_up_to",
    "pack_sequence_as",
    "traverse",
]


class MAP_TO_NONE:  # noqa: N801 (Keras' name)
    """Returned by a ``traverse`` function to put ``None`` in place of a sub-structure."""


def is_nested(structure: Any) -> bool:
    """Whether ``structure`` is a container (list, tuple, namedtuple, dict, deque)."""
    return isinstance(structure, (list, tuple, dict, collections.deque))


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _sorted_keys(mapping: dict) -> list:
    if isinstance(mapping, collections.OrderedDict):
        return list(mapping)
    try:
        return sorted(mapping)
    except TypeError:
        raise TypeError(
            f"keras.tree needs dict keys that can be sorted; got the keys {list(mapping)!r}."
        ) from None


def _children(structure: Any) -> list[tuple[Any, Any]]:
    """(path entry, child) pairs of a container, in flattening order."""
    if isinstance(structure, dict):
        return [(key, structure[key]) for key in _sorted_keys(structure)]
    return list(enumerate(structure))


def _rebuild(template: Any, values: list) -> Any:
    """A container like ``template`` holding ``values`` (given in flattening order)."""
    if isinstance(template, dict):
        by_key = dict(zip(_sorted_keys(template), values))
        items = [(key, by_key[key]) for key in template]
        if isinstance(template, collections.defaultdict):
            return collections.defaultdict(template.default_factory, items)
        return type(template)(items)
    if _is_namedtuple(template):
        return type(template)(*values)
    if isinstance(template, collections.deque):
        return collections.deque(values, maxlen=template.maxlen)
    if isinstance(template, tuple):
        return tuple(values) if type(template) is tuple else type(template)(values)
    return list(values) if type(template) is list else type(template)(values)


def _leaves(structure: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if not is_nested(structure):
        yield path, structure
        return
    for key, child in _children(structure):
        yield from _leaves(child, (*path, key))


def flatten(structure: Any) -> list:
    """The leaves of ``structure`` in order (a leaf gives ``[leaf]``, ``None`` is a leaf)."""
    return [leaf for _, leaf in _leaves(structure)]


def flatten_with_path(structure: Any) -> list[tuple[tuple, Any]]:
    """``(path, leaf)`` pairs; a path is the tuple of indices and keys leading to the leaf."""
    return list(_leaves(structure))


def _kind(x: Any) -> Any:
    """What must agree between two structures at one level: dicts of any kind match."""
    if isinstance(x, dict):
        return dict
    return type(x)


def _check_same(a: Any, b: Any, path: tuple) -> None:
    nested_a, nested_b = is_nested(a), is_nested(b)
    where = f" at path {path}" if path else ""
    if nested_a != nested_b:
        raise ValueError(
            f"The two structures don't have the same nested structure{where}: "
            f"{_describe(a)} vs. {_describe(b)}."
        )
    if not nested_a:
        return
    if _kind(a) is not _kind(b):
        raise ValueError(
            f"The two structures don't have the same nested structure{where}: a "
            f"{type(a).__name__} vs. a {type(b).__name__}."
        )
    if isinstance(a, dict):
        if set(a) != set(b):
            raise ValueError(
                f"The two structures don't have the same nested structure{where}: dict keys "
                f"{sorted(map(str, a))} vs. {sorted(map(str, b))}."
            )
        for key in a:
            _check_same(a[key], b[key], (*path, key))
        return
    if len(a) != len(b):
        raise ValueError(
            f"The two structures don't have the same nested structure{where}: "
            f"{len(a)} vs. {len(b)} elements."
        )
    for i, (x, y) in enumerate(zip(a, b)):
        _check_same(x, y, (*path, i))


def _describe(x: Any) -> str:
    return f"a {type(x).__name__}" if is_nested(x) else f"the leaf {x!r}"


def assert_same_structure(a: Any, b: Any, check_types: Any = None) -> None:
    """Raise ValueError unless ``a`` and ``b`` nest alike: at each level the same kind of
    container (any dicts match each other; list, tuple, deque and each namedtuple class
    are all different) with the same length or keys. ``check_types`` is deprecated and
    ignored, as in Keras."""
    if check_types is not None:
        warnings.warn(
            "The `check_types` argument is deprecated and no longer has any effect; use "
            "keras.tree.assert_same_paths for a check that ignores container types.",
            DeprecationWarning,
            stacklevel=2,
        )
    _check_same(a, b, ())


def assert_same_paths(a: Any, b: Any) -> None:
    """Raise ValueError unless ``a`` and ``b`` have the same leaf paths (container types
    are not compared)."""
    paths_a = {path for path, _ in _leaves(a)}
    paths_b = {path for path, _ in _leaves(b)}
    if paths_a != paths_b:
        only_a = sorted(map(str, paths_a - paths_b))
        only_b = sorted(map(str, paths_b - paths_a))
        raise ValueError(
            f"The two structures don't have the same paths: only in the first {only_a}, only "
            f"in the second {only_b}."
        )


def map_structure(func: Callable, *structures: Any, none_is_leaf: bool = True) -> Any:
    """``func`` applied to the leaves at each position of ``structures`` (which must nest
    alike, see ``assert_same_structure``), in the first one's layout. With
    ``none_is_leaf=False`` a ``None`` of the first structure stays ``None``."""
    if not callable(func):
        raise TypeError(f"`func` must be callable, got {func!r}.")
    if not structures:
        raise TypeError("map_structure needs at least one structure.")
    for other in structures[1:]:
        assert_same_structure(structures[0], other)

    def walk(*parts: Any) -> Any:
        first = parts[0]
        if not is_nested(first):
            if first is None and not none_is_leaf:
                return None
            return func(*parts)
        columns = [[child for _, child in _children(p)] for p in parts]
        return _rebuild(first, [walk(*row) for row in zip(*columns)])

    return walk(*structures)


def map_structure_up_to(shallow_structure: Any, func: Callable, *structures: Any) -> Any:
    """``map_structure`` down to the leaves of ``shallow_structure`` only: whatever lies
    deeper in ``structures`` is handed to ``func`` whole. The result has the layout of
    ``shallow_structure``."""
    if not callable(func):
        raise TypeError(f"`func` must be callable, got {func!r}.")
    if not structures:
        raise TypeError("map_structure_up_to needs at least one structure.")

    def walk(shallow: Any, parts: tuple, path: tuple) -> Any:
        if not is_nested(shallow):
            return func(*parts)
        children = _children(shallow)
        rows = []
        for part in parts:
            if not is_nested(part) or _kind(part) is not _kind(shallow):
                raise ValueError(
                    f"The structure is shallower than shallow_structure at path {path}: "
                    f"expected a {type(shallow).__name__}, got {_describe(part)}."
                )
            if isinstance(shallow, dict):
                missing = [key for key, _ in children if key not in part]
                if missing:
                    raise ValueError(f"The structure lacks the keys {missing} at path {path}.")
                rows.append([part[key] for key, _ in children])
            else:
                if len(part) != len(shallow):
                    raise ValueError(
                        f"The structure has {len(part)} elements at path {path}, "
                        f"shallow_structure {len(shallow)}."
                    )
                rows.append(list(part))
        values = [
            walk(child, tuple(row[i] for row in rows), (*path, key))
            for i, (key, child) in enumerate(children)
        ]
        return _rebuild(shallow, values)

    return walk(shallow_structure, structures, ())


def pack_sequence_as(structure: Any, flat_sequence: Any) -> Any:
    """The values of ``flat_sequence`` put back into the layout of ``structure`` (the
    inverse of ``flatten``). ValueError when the counts differ; TypeError when
    ``flat_sequence`` is not a sequence."""
    if not isinstance(flat_sequence, (list, tuple, collections.deque)):
        if isinstance(flat_sequence, (str, bytes)) or not hasattr(flat_sequence, "__iter__"):
            raise TypeError(
                f"flat_sequence must be a list or tuple of values, got {type(flat_sequence)}."
            )
        flat_sequence = list(flat_sequence)
    expected = len(flatten(structure))
    if len(flat_sequence) != expected:
        raise ValueError(
            f"The flat sequence has {len(flat_sequence)} values but the structure has "
            f"{expected} leaves."
        )
    values = iter(flat_sequence)

    def walk(template: Any) -> Any:
        if not is_nested(template):
            return next(values)
        return _rebuild(template, [walk(child) for _, child in _children(template)])

    return walk(structure)


def lists_to_tuples(structure: Any) -> Any:
    """The same structure with every list (not other sequences) made a tuple."""

    def walk(x: Any) -> Any:
        if not is_nested(x):
            return x
        values = [walk(child) for _, child in _children(x)]
        if isinstance(x, list):
            return tuple(values)
        return _rebuild(x, values)

    return walk(structure)


def _is_shape(x: Any) -> bool:
    return isinstance(x, (list, tuple)) and all(
        d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in x
    )


def map_shape_structure(func: Callable, structure: Any) -> Any:
    """``map_structure`` where a tuple or list of ints and Nones (a shape) is a leaf."""

    def walk(x: Any) -> Any:
        if _is_shape(x) or not is_nested(x):
            return func(x)
        return _rebuild(x, [walk(child) for _, child in _children(x)])

    return walk(structure)


def traverse(func: Callable, structure: Any, top_down: bool = True) -> Any:
    """Visit every sub-structure (containers and leaves), depth first.

    Top down: ``func`` sees a parent before its children; a result other than None
    replaces that sub-structure and its children are not visited. Bottom up: children
    first; a result other than None replaces the sub-structure. Either way,
    ``MAP_TO_NONE`` puts ``None`` in place.
    """
    if not callable(func):
        raise TypeError(f"`func` must be callable, got {func!r}.")

    def settle(result: Any) -> Any:
        return None if result is MAP_TO_NONE else result

    def down(x: Any) -> Any:
        result = func(x)
        if result is not None:
            return settle(result)
        if not is_nested(x):
            return x
        return _rebuild(x, [down(child) for _, child in _children(x)])

    def up(x: Any) -> Any:
        if is_nested(x):
            x = _rebuild(x, [up(child) for _, child in _children(x)])
        result = func(x)
        return x if result is None else settle(result)

    return down(structure) if top_down else up(structure)
