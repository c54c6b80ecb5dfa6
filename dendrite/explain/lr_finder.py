"""The learning-rate range test (Smith, 2017, "Cyclical learning rates"; the design
document's 9.2: the rate is found "by experiment").

A short run of ``steps`` training steps whose learning rate grows exponentially from
``start`` to ``end``:

    lr_k = start * (end / start) ^ (k / (steps - 1)),   k = 0 .. steps - 1.

Each step's loss is smoothed by a bias-corrected exponential moving average,

    m_k = beta m_{k-1} + (1 - beta) L_k,      S_k = m_k / (1 - beta^(k+1)),

and the sweep stops once ``S`` exceeds ``diverge`` times its best value (or is not
finite): past that point the rate is too large to train. The moving average lags behind
the rates (with ``beta = 0.98`` by some 50 steps), so the curve returned and read for the
suggestion is a *centred* moving average of the raw losses (``window`` steps, shrinking at
the ends), which has no lag. The suggested rate is the one where that curve falls fastest
against ``log(lr)`` (the steepest negative slope by ``log10(lr)``, looked for before the
curve's minimum, its first tenth trimmed): large enough to make progress, small enough
to be stable. ``min_loss_rate`` (the rate of the lowest point, divided by 10) is the other
common rule and is reported too.

The run uses a fresh optimizer of the compiled one's class and configuration; the model's
weights (non-trainable ones included, such as batch-normalization statistics) and its own
optimizer, with its state, are exactly as before when the test returns (tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class LRFinderResult:
    """The range test's curve: ``rates``, smoothed ``losses`` and the ``raw_losses`` per
    step (as long as the sweep went), with the ``suggestion`` (steepest descent) and
    ``min_loss_rate`` (the rate of the lowest smoothed loss)."""

    rates: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    min_loss_rate: float
    diverged: bool = False
    notes: list = field(default_factory=list)

    def plot(self, path: Any = None, dpi: int = 100) -> Any:
        """The smoothed loss against the rate (log axis) with the suggestion marked; saved
        as PNG at ``path`` when given. Needs matplotlib (``dendrite[plot]``)."""
        try:
            import matplotlib
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                "LRFinderResult.plot needs matplotlib: pip install 'dendrite[plot]'."
            ) from error
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 4))
        axis.plot(self.rates, self.raw_losses, color="0.75", lw=1, label="loss per step")
        axis.plot(self.rates, self.losses, color="C0", lw=2, label="smoothed")
        axis.axvline(
            self.suggestion, color="C3", ls="--", label=f"suggestion {self.suggestion:.2g}"
        )
        axis.set_xscale("log")
        axis.set_xlabel("learning rate")
        axis.set_ylabel("loss")
        finite = self.losses[np.isfinite(self.losses)]
        if finite.size:
            axis.set_ylim(finite.min() * 0.9, min(finite.max(), finite[0] * 2.0) * 1.05)
        axis.legend()
        figure.tight_layout()
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(path, format="png", dpi=dpi)
        return figure


def centred_average(values: np.ndarray, window: int) -> np.ndarray:
    """The mean of each point's ``window`` neighbours (fewer at the ends): no lag."""
    values = np.asarray(values, dtype=np.float64)
    half = max(window, 1) // 2
    kernel = np.ones(2 * half + 1)
    sums = np.convolve(values, kernel, mode="same")
    counts = np.convolve(np.ones_like(values), kernel, mode="same")
    return sums / counts


def suggest(rates: np.ndarray, losses: np.ndarray, trim: float = 0.1) -> tuple[float, float]:
    """``(steepest-descent rate, min-loss rate / 10)`` from a smoothed curve."""
    rates, losses = np.asarray(rates, float), np.asarray(losses, float)
    finite = np.isfinite(losses)
    rates, losses = rates[finite], losses[finite]
    if len(rates) < 3:
        raise ValueError("The learning-rate sweep is too short to suggest a rate (< 3 steps).")
    lowest = int(np.argmin(losses))
    min_rate = float(rates[lowest] / 10)
    head = max(1, int(trim * len(rates)))
    stop = max(lowest + 1, head + 2)
    slopes = np.gradient(losses[:stop], np.log10(rates[:stop]))
    window = slopes[head:stop] if stop - head >= 2 else slopes
    offset = head if stop - head >= 2 else 0
    return float(rates[offset + int(np.argmin(window))]), min_rate


def find_learning_rate(
    model: Any,
    x: Any,
    y: Any = None,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    batch_size: int = 32,
    beta: float = 0.98,
    diverge: float = 4.0,
    seed: int | None = 0,
    sample_weight: Any = None,
    window: int | None = None,
) -> LRFinderResult:
    """Run the range test on a compiled ``model`` and return its curve and suggestion.

    Args:
        x, y: training data (arrays); batches of ``batch_size`` are drawn from one shuffled
            pass, cycling if ``steps`` batches need more than one.
        start, end: the first and the largest rate tried.
        steps: the number of training steps (rates) of the sweep.
        beta: the moving average's weight, for detecting divergence (0: none).
        window: the centred average's width in steps (default: a tenth of ``steps``).
        diverge: stop when the smoothed loss exceeds this multiple of its best.
        seed: the shuffling's seed (None: unseeded).
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError("find_learning_rate needs a compiled model: call model.compile first.")
    if not 0 < start < end:
        raise ValueError(f"find_learning_rate needs 0 < start < end, got {start} and {end}.")
    if steps < 3:
        raise ValueError(f"find_learning_rate needs steps >= 3, got {steps}.")
    x = np.asarray(x)
    count = len(x)
    rng = np.random.default_rng(seed)
    order = np.concatenate(
        [rng.permutation(count) for _ in range(int(np.ceil(steps * batch_size / count)) + 1)]
    )
    rates = start * (end / start) ** (np.arange(steps) / (steps - 1))

    saved_weights = model.get_weights()
    saved_optimizer = model.optimizer
    saved_stop = getattr(model, "stop_training", False)
    sweep = type(saved_optimizer).from_config(saved_optimizer.get_config())
    raw, average, best, diverged = [], 0.0, np.inf, False
    try:
        model.optimizer = sweep
        for k, rate in enumerate(rates):
            sweep.learning_rate = float(rate)
            rows = order[k * batch_size : (k + 1) * batch_size]
            logs = model.train_on_batch(
                x[rows],
                None if y is None else np.asarray(y)[rows],
                None if sample_weight is None else np.asarray(sample_weight)[rows],
                return_dict=True,
            )
            loss = float(logs["loss"])
            average = beta * average + (1 - beta) * loss
            smoothed = average / (1 - beta ** (k + 1))
            raw.append(loss)
            if not np.isfinite(smoothed) or (k > 0 and smoothed > diverge * best):
                diverged = True
                break
            best = min(best, smoothed)
    finally:
        model.optimizer = saved_optimizer
        model.set_weights(saved_weights)
        model.stop_training = saved_stop
        if hasattr(model, "reset_metrics"):
            model.reset_metrics()
    done = len(raw)
    curve_rates = rates[:done]
    keep = done - 1 if diverged and done > 3 else done  # the diverged point is past the curve
    curve = centred_average(np.asarray(raw[:keep]), window or max(3, steps // 10))
    curve = np.concatenate([curve, np.asarray(raw[keep:], dtype=np.float64)])
    suggestion, min_rate = suggest(curve_rates[:keep], curve[:keep])
    return LRFinderResult(
        rates=curve_rates,
        losses=curve,
        raw_losses=np.asarray(raw),
        suggestion=suggestion,
        min_loss_rate=min_rate,
        diverged=diverged,
    )
