"""Training curves: loss and accuracy per epoch, train and validation, as a PNG.

matplotlib is optional (``pip install dendrite[plot]``); it is imported only here, only
when a picture is asked for.
"""

from __future__ import annotations

from typing import Any

from dendrite._atomic import atomic_write_bytes


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot_history(history: Any, path: Any, title: str | None = None) -> bool:
    """Draw ``history`` (a History or its ``.history`` dict) to ``path``.

    One panel per quantity (loss, then each metric), train and ``val_`` curves together.
    Returns False (and draws nothing) when matplotlib is not installed.
    """
    if not matplotlib_available():
        return False
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    logs = history.history if hasattr(history, "history") else dict(history)
    names = [k for k in logs if not k.startswith("val_")]
    names.sort(key=lambda k: (k != "loss", k))
    if not names:
        raise ValueError("plot_history: the history has no values to plot.")
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names):
        values = logs[name]
        epochs = range(1, len(values) + 1)
        axis.plot(epochs, values, marker="o", label=f"train {name}")
        if f"val_{name}" in logs:
            axis.plot(epochs, logs[f"val_{name}"], marker="s", label=f"validation {name}")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return True
