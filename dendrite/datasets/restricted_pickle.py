"""A restricted reader of the pickles inside CIFAR archives and object-dtype ``.npy`` files.

dendrite never runs ``pickle``: this is a small interpreter of the pickle opcodes those
files use, which builds only dicts, lists, tuples, strings, bytes, numbers and NumPy arrays.
The only callables it knows are NumPy's array and dtype reconstruction and
``_codecs.encode`` (Python 3's protocol-2 form of bytes), each replaced by its own safe
equivalent; any other global, opcode or structure is refused with ``PickleFormatError``.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

__all__ = ["PickleFormatError", "load_npy", "loads"]


class PickleFormatError(ValueError):
    """A pickle uses something the restricted reader does not accept."""


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",
    ("numpy.core.numeric", "_frombuffer"): "frombuffer",
    ("numpy._core.numeric", "_frombuffer"): "frombuffer",
}


class _Array:
    """An array under construction (``_reconstruct``, then ``BUILD`` with its state)."""

    value: Any = None


class _Dtype:
    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.value = np.dtype(spec)


class _Mark:
    pass


def _resolve(item: Any) -> Any:
    return item.value if isinstance(item, (_Array, _Dtype)) else item


def loads(data: bytes, max_items: int = 10_000_000) -> Any:
    """The object pickled in ``data``, built only from the types listed above."""
    view = memoryview(data)
    pos = 0
    stack: list = []
    memo: dict[int, Any] = {}
    mark = _Mark()
    count = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(view):
            raise PickleFormatError("truncated pickle")
        chunk = bytes(view[pos : pos + n])
        pos += n
        return chunk

    def pop_mark() -> list:
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is mark:
                items = stack[i + 1 :]
                del stack[i:]
                return items
        raise PickleFormatError("no MARK on the stack")

    def line() -> str:
        nonlocal pos
        end = data.find(b"\n", pos)
        if end < 0:
            raise PickleFormatError("truncated pickle")
        text = data[pos:end].decode("ascii")
        pos = end + 1
        return text

    def glob(module: str, name: str) -> str:
        key = _ALLOWED.get((module, name))
        if key is None:
            raise PickleFormatError(f"refused global {module}.{name}: not a plain array or list")
        return key

    while True:
        count += 1
        if count > max_items:
            raise PickleFormatError("pickle too large")
        op = take(1)
        if op == b"\x80":  # PROTO
            take(1)
        elif op == b"\x95":  # FRAME
            take(8)
        elif op == b".":  # STOP
            if len(stack) != 1:
                raise PickleFormatError("malformed pickle")
            return _resolve(stack.pop())
        elif op == b"(":
            stack.append(mark)
        elif op == b"}":
            stack.append({})
        elif op == b"]":
            stack.append([])
        elif op == b")":
            stack.append(())
        elif op == b"t":
            stack.append(tuple(_resolve(v) for v in pop_mark()))
        elif op in (b"\x85", b"\x86", b"\x87"):
            n = op[0] - 0x84
            if len(stack) < n:
                raise PickleFormatError("malformed pickle")
            items = tuple(_resolve(v) for v in stack[len(stack) - n :])
            del stack[len(stack) - n :]
            stack.append(items)
        elif op == b"q":
            memo[take(1)[0]] = stack[-1]
        elif op == b"r":
            memo[struct.unpack("<I", take(4))[0]] = stack[-1]
        elif op == b"\x94":  # MEMOIZE
            memo[len(memo)] = stack[-1]
        elif op in (b"h", b"j"):
            key = take(1)[0] if op == b"h" else struct.unpack("<I", take(4))[0]
            if key not in memo:
                raise PickleFormatError("memo key missing")
            stack.append(memo[key])
        elif op in (b"U", b"C"):  # SHORT_BINSTRING (py2 str), SHORT_BINBYTES
            stack.append(take(take(1)[0]))
        elif op in (b"T", b"B"):
            stack.append(take(struct.unpack("<I", take(4))[0]))
        elif op == b"\x96":  # BYTEARRAY8 (protocol 5, in band)
            stack.append(take(struct.unpack("<Q", take(8))[0]))
        elif op == b"\x8e":
            stack.append(take(struct.unpack("<Q", take(8))[0]))
        elif op == b"X":
            stack.append(take(struct.unpack("<I", take(4))[0]).decode("utf-8"))
        elif op == b"\x8c":
            stack.append(take(take(1)[0]).decode("utf-8"))
        elif op == b"\x8d":
            stack.append(take(struct.unpack("<Q", take(8))[0]).decode("utf-8"))
        elif op == b"J":
            stack.append(struct.unpack("<i", take(4))[0])
        elif op == b"K":
            stack.append(take(1)[0])
        elif op == b"M":
            stack.append(struct.unpack("<H", take(2))[0])
        elif op == b"\x8a":  # LONG1
            stack.append(int.from_bytes(take(take(1)[0]), "little", signed=True))
        elif op == b"G":
            stack.append(struct.unpack(">d", take(8))[0])
        elif op == b"N":
            stack.append(None)
        elif op == b"\x88":
            stack.append(True)
        elif op == b"\x89":
            stack.append(False)
        elif op == b"a":
            value = _resolve(stack.pop())
            stack[-1].append(value)
        elif op == b"e":
            items = [_resolve(v) for v in pop_mark()]
            if not isinstance(stack[-1], list):
                raise PickleFormatError("APPENDS to a non-list")
            stack[-1].extend(items)
        elif op in (b"s", b"u"):
            items = [
                _resolve(v)
                for v in ([stack.pop(), stack.pop()][::-1] if op == b"s" else pop_mark())
            ]
            target = stack[-1]
            if not isinstance(target, dict):
                raise PickleFormatError("SETITEMS on a non-dict")
            for key, value in zip(items[::2], items[1::2]):
                target[key] = value
        elif op == b"c":
            stack.append(glob(line(), line()))
        elif op == b"\x93":
            name, module = stack.pop(), stack.pop()
            stack.append(glob(module, name))
        elif op == b"R":
            args, func = stack.pop(), stack.pop()
            if func == "reconstruct":
                stack.append(_Array())
            elif func == "dtype":
                stack.append(_Dtype(args[0]))
            elif func == "frombuffer" and len(args) == 4:
                raw, dtype, shape, order = args
                stack.append(_array(tuple(shape), _resolve(dtype), order == "F", raw))
            elif func == "encode" and len(args) == 2 and args[1] == "latin1":
                stack.append(args[0].encode("latin1"))
            else:
                raise PickleFormatError(f"refused call of {func!r}")
        elif op == b"b":
            state = stack.pop()
            target = stack[-1]
            if isinstance(target, _Dtype):
                order = state[1] if isinstance(state, tuple) and len(state) > 1 else "|"
                if order in ("<", ">"):
                    target.value = target.value.newbyteorder(order)
            elif isinstance(target, _Array) and isinstance(state, tuple) and len(state) == 5:
                _, shape, dtype, fortran, raw = state
                target.value = _array(shape, _resolve(dtype), fortran, raw)
            else:
                raise PickleFormatError("refused BUILD of a non-array object")
        else:
            raise PickleFormatError(f"refused pickle opcode {op!r} at byte {pos - 1}")


def _array(shape: Any, dtype: Any, fortran: bool, raw: Any) -> np.ndarray:
    if not isinstance(dtype, np.dtype) or not isinstance(shape, tuple):
        raise PickleFormatError("malformed array state")
    order = "F" if fortran else "C"
    if dtype.hasobject:
        if not isinstance(raw, list):
            raise PickleFormatError("malformed object array")
        out = np.empty(len(raw), dtype=object)
        out[:] = raw
        return out.reshape(shape, order=order)
    if isinstance(raw, str):
        raw = raw.encode("latin1")
    if not isinstance(raw, bytes) or len(raw) != dtype.itemsize * int(np.prod(shape)):
        raise PickleFormatError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order=order).copy()


def load_npy(stream: Any) -> np.ndarray:
    """An array from an ``.npy`` stream; object arrays through the restricted reader."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    if dtype.hasobject:
        array = loads(stream.read())
        if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
            raise PickleFormatError("the object array does not match its header")
        return array
    count = int(np.prod(shape))
    raw = stream.read(count * dtype.itemsize)
    if len(raw) != count * dtype.itemsize:
        raise PickleFormatError("truncated .npy")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()
