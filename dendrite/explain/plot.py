"""Heat maps of attributions, saved as PNG: over images, over tokens (text), over time
steps (sequences). Drawn with matplotlib (``pip install dendrite[plot]``), on the Agg
backend, so it runs without a display.

Each sample gets one panel. An image panel shows the input (grey, or colour when it has 3
channels) under the attribution map (channels reduced by the sum of absolute values, or a
map already of the image's grid such as Grad-CAM's), with the colour scale symmetric
around 0 for signed maps. A text panel colours each token by its attribution (summed
over the embedding axis). A sequence panel draws the signal and colours each time step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "explain.plot needs matplotlib: pip install 'dendrite[plot]' (or matplotlib)."
        ) from error
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _kind(attributions: np.ndarray, tokens: Any) -> str:
    """text with tokens; sequence for one axis per sample; image otherwise (pass
    kind="sequence" for a (time, features) map)."""
    if tokens is not None:
        return "text"
    return "sequence" if attributions.ndim == 2 else "image"


def plot(
    attributions: Any,
    inputs: Any = None,
    path: Any = None,
    kind: str | None = None,
    tokens: Any = None,
    titles: Any = None,
    cmap: str | None = None,
    alpha: float = 0.6,
    max_samples: int = 8,
    dpi: int = 100,
) -> Any:
    """Draw the attributions of a batch (one panel per sample) and save them to ``path``
    (PNG) when given; returns the matplotlib Figure.

    Args:
        attributions: an array ``(n, ...)`` from any ``explain`` function.
        inputs: the explained inputs, drawn under the maps (images, sequences).
        path: where to save the PNG.
        kind: "image", "text" or "sequence" (guessed from the shapes by default).
        tokens: for text, one list of token strings per sample (or one list for all).
        titles: one title per sample.
        cmap: the colour map ("RdBu_r" for signed maps, "jet" for non-negative ones).
        alpha: the map's opacity over an image.
        max_samples: at most this many panels.
    """
    plt = _pyplot()
    attr = np.asarray(attributions, dtype=np.float64)
    if attr.ndim == 1:
        attr = attr[None]
    kind = kind or _kind(attr, tokens)
    if kind not in ("image", "text", "sequence"):
        raise ValueError(f"kind must be 'image', 'text' or 'sequence', got {kind!r}.")
    n = min(attr.shape[0], max_samples)
    signed = attr.min() < 0
    cmap = cmap or ("RdBu_r" if signed else "jet")
    if kind == "image":
        figure, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.6), squeeze=False)
    else:
        figure, axes = plt.subplots(n, 1, figsize=(8, 1.2 * n + 0.6), squeeze=False)
    for i, axis in enumerate(axes.ravel()):
        sample = attr[i]
        if kind == "image":
            _image_panel(
                axis, sample, None if inputs is None else np.asarray(inputs)[i], cmap, alpha, signed
            )
        elif kind == "text":
            words = (
                tokens[i] if tokens is not None and isinstance(tokens[0], (list, tuple)) else tokens
            )
            _text_panel(axis, sample, list(words), cmap, signed)
        else:
            _sequence_panel(
                axis, sample, None if inputs is None else np.asarray(inputs)[i], cmap, signed
            )
        if titles is not None:
            axis.set_title(str(titles[i]), fontsize=9)
    figure.tight_layout()
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, format="png", dpi=dpi)
    return figure


def _limits(values: np.ndarray, signed: bool) -> dict:
    if signed:
        bound = float(np.abs(values).max()) or 1.0
        return {"vmin": -bound, "vmax": bound}
    return {"vmin": 0.0, "vmax": float(values.max()) or 1.0}


def _image_panel(
    axis: Any, attr: np.ndarray, image: Any, cmap: str, alpha: float, signed: bool
) -> None:
    heat = np.abs(attr).sum(axis=-1) if attr.ndim == 3 else attr
    axis.axis("off")
    if image is not None:
        picture = np.asarray(image, dtype=np.float64)
        if picture.ndim == 3 and picture.shape[-1] == 1:
            picture = picture[..., 0]
        span = picture.max() - picture.min()
        picture = (picture - picture.min()) / (span if span > 0 else 1.0)
        extent = (0, picture.shape[1], picture.shape[0], 0)
        axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None, extent=extent)
        axis.imshow(
            heat,
            cmap=cmap,
            alpha=alpha,
            extent=extent,
            interpolation="bilinear",
            **_limits(heat, signed and attr.ndim != 3),
        )
    else:
        axis.imshow(heat, cmap=cmap, **_limits(heat, signed and attr.ndim != 3))


def _text_panel(axis: Any, attr: np.ndarray, words: list, cmap: str, signed: bool) -> None:
    import matplotlib
    from matplotlib.colors import Normalize

    values = attr.sum(axis=-1) if attr.ndim == 2 else attr
    values = values[-len(words) :] if len(words) <= len(values) else values
    colours = matplotlib.colormaps[cmap]
    norm = Normalize(**_limits(values, signed))
    axis.axis("off")
    x = 0.0
    for word, value in zip(words, values):
        axis.text(
            x,
            0.5,
            str(word),
            fontsize=11,
            va="center",
            bbox={"facecolor": colours(norm(value)), "edgecolor": "none", "pad": 2},
        )
        x += 0.012 * (len(str(word)) + 2)
    axis.set_xlim(0, max(1.0, x))


def _sequence_panel(axis: Any, attr: np.ndarray, signal: Any, cmap: str, signed: bool) -> None:
    values = np.abs(attr).sum(axis=-1) if attr.ndim == 2 else attr
    steps = np.arange(len(values))
    axis.imshow(
        values[None],
        aspect="auto",
        cmap=cmap,
        alpha=0.7,
        extent=(-0.5, len(values) - 0.5, 0, 1),
        **_limits(values, signed and attr.ndim == 1),
    )
    if signal is not None:
        trace = np.asarray(signal, dtype=np.float64)
        trace = trace if trace.ndim == 1 else trace[:, 0]
        span = trace.max() - trace.min()
        axis.plot(steps, (trace - trace.min()) / (span if span > 0 else 1.0), color="black", lw=1)
    axis.set_yticks([])
    axis.set_xlabel("time step")
