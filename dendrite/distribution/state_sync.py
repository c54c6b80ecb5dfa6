"""Before the first step: the same model on every rank, and rank 0's state everywhere.

``check_same_model`` compares every rank's layers and weights (names, shapes, dtypes)
with rank 0's and raises, on every rank, naming the first difference, so a model that
differs across ranks fails before any step instead of hanging or diverging.
``broadcast_state`` then copies rank 0's weights (trainable and not) and optimizer state
(slots, iterations, learning rate) to every rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def describe(model: Any) -> list[tuple]:
    """What must agree across ranks: each layer's name and class, each weight's path,
    shape and dtype."""
    layers = [("layer", layer.name, type(layer).__name__) for layer in getattr(model, "layers", [])]
    weights = [
        (
            "weight",
            str(getattr(w, "path", None) or getattr(w, "name", "?")),
            tuple(w.data.shape),
            str(w.data.dtype),
        )
        for w in model.weights
    ]
    return layers + weights


def check_same_model(comm: Any, model: Any) -> None:
    mine = describe(model)
    everyone = comm.allgather_object(mine)
    reference = everyone[0]
    for rank, theirs in enumerate(everyone):
        if theirs == reference:
            continue
        for i in range(max(len(theirs), len(reference))):
            a = reference[i] if i < len(reference) else None
            b = theirs[i] if i < len(theirs) else None
            if a != b:
                raise ValueError(
                    f"The model differs across ranks: rank 0 has {_entry(a)} where rank "
                    f"{rank} has {_entry(b)} (entry {i}). Every rank must build the same "
                    "model (same layers, weights, shapes and dtypes) for data parallelism."
                )


def _entry(entry: tuple | None) -> str:
    if entry is None:
        return "nothing"
    if entry[0] == "layer":
        return f"layer {entry[1]!r} ({entry[2]})"
    return f"weight {entry[1]!r} of shape {entry[2]} and dtype {entry[3]}"


def broadcast_state(comm: Any, model: Any, optimizer: Any = None) -> None:
    """Rank 0's model weights and optimizer variables, in place on every rank."""
    variables = list(model.weights)
    if optimizer is not None:
        seen = {id(v) for v in variables}
        variables += [v for v in optimizer.variables if id(v) not in seen]
    for variable in variables:
        data = variable.data
        if data.flags.c_contiguous:
            comm.broadcast_array(data)
        else:  # pragma: no cover - weights are contiguous
            copy = np.ascontiguousarray(data)
            comm.broadcast_array(copy)
            data[...] = copy
