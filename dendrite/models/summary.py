"""``model.summary()``: Keras' table of layers, output shapes and parameter counts."""

from __future__ import annotations

from typing import Any


def _size(count: int, itemsize: int = 4) -> str:
    size = float(count * itemsize)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"


def format_shape(shape: Any) -> str:
    """``(None, 8)``; several shapes joined by commas."""
    if isinstance(shape, list):
        return ", ".join(format_shape(s) for s in shape)
    if isinstance(shape, dict):
        return ", ".join(f"{k}: {format_shape(v)}" for k, v in shape.items())
    return str(tuple(shape)) if isinstance(shape, tuple) else str(shape)


def print_summary(
    model: Any,
    line_length: int | None = None,
    print_fn: Any = None,
    show_trainable: bool = False,
) -> None:
    """Print (or pass each line to ``print_fn``) the summary table of ``model``."""
    emit = print_fn or print
    rows = model.summary_rows() if hasattr(model, "summary_rows") else _default_rows(model)
    connected = any(len(row) > 3 for row in rows)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected else [])
    widths = [max(len(headers[0]), *(len(r[0]) for r in rows), 28), 26, 12]
    if connected:
        widths.append(max(len(headers[3]), *(len(part) for r in rows for part in r[3].split("\n"))))
    if line_length:
        widths[0] = max(10, line_length - sum(widths[1:]))
    total_width = sum(widths) + len(widths) - 1

    def line(cells: list[str]) -> str:
        return " ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

    emit(f'Model: "{model.name}"')
    emit("_" * total_width)
    emit(line(headers))
    emit("=" * total_width)
    for i, row in enumerate(rows):
        # A cell may hold several lines (a layer fed by several calls): print them under it.
        cells = [str(cell).split("\n") for cell in row]
        for k in range(max(len(c) for c in cells)):
            emit(line([c[k] if k < len(c) else "" for c in cells]))
        if i < len(rows) - 1:
            emit("_" * total_width if not connected else "")
    emit("=" * total_width)
    trainable = sum(v.data.size for v in model.trainable_weights)
    total = sum(v.data.size for v in model.weights)
    emit(f" Total params: {total:,} ({_size(total)})")
    emit(f" Trainable params: {trainable:,} ({_size(trainable)})")
    emit(f" Non-trainable params: {total - trainable:,} ({_size(total - trainable)})")
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "variables", None):
        count = sum(v.data.size for v in optimizer.variables)
        if count:
            emit(f" Optimizer params: {count:,} ({_size(count)})")
    emit("_" * total_width)


def _default_rows(model: Any) -> list[tuple[str, str, str]]:
    layers = model.layers
    shapes = model.layer_output_shapes() if hasattr(model, "layer_output_shapes") else None
    rows = []
    for i, layer in enumerate(layers):
        shape = "?" if shapes is None else format_shape(shapes[i])
        params = sum(v.data.size for v in layer.weights) if layer.built else 0
        rows.append((f"{layer.name} ({type(layer).__name__})", shape, f"{params:,}"))
    return rows
