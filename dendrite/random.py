"""``keras.random``: random draws under Keras 3's names, and the ``SeedGenerator`` state
that layers own.

Seeds. Every function takes ``seed``:

- ``None``: draw from dendrite's one global generator (``_settings.rng()``), so
  ``dendrite.utils.set_random_seed(s)`` makes a whole program's draws repeat;
- an int ``s``: stateless, as in Keras: the draw comes from a fresh generator seeded with
  the pair ``[s, 0]``, so the same int gives the same values at every call;
- a ``SeedGenerator``: its state ``[s, n]`` seeds the draw, then advances to ``[s, n + 1]``,
  so each call differs while the sequence repeats from the same initial seed. Its first
  draw equals the draw of the int ``s``.

The distributions (values in ``dtype``, ``floatx()`` unless given):

- normal: density ``exp(-(x - mean)^2 / (2 stddev^2)) / (stddev sqrt(2 pi))``;
- uniform on ``[minval, maxval)``; randint: integers uniform on ``[minval, maxval)``;
- truncated normal, as Keras: ``x = mean + stddev * z`` with ``z ~ N(0, 1)`` conditioned on
  ``|z| <= 2`` (out-of-range draws are redrawn). Its variance is
  ``stddev^2 (1 - 2 * 2 phi(2) / (Phi(2) - Phi(-2))) ~= 0.7737 stddev^2``;
- categorical: class ``k`` of a row with probability ``softmax(logits)_k
  = exp(l_k) / sum_j exp(l_j)``, by inverting the row's cumulative distribution;
- gamma(alpha), scale 1: mean ``alpha``, variance ``alpha``;
- binomial(n, p): successes in ``n`` trials, mean ``n p``, variance ``n p (1 - p)``;
- beta(a, b): mean ``a / (a + b)``, variance ``a b / ((a + b)^2 (a + b + 1))``;
- shuffle: one uniformly random permutation of the slices along ``axis``.

Inverted dropout: with keep probability ``q = 1 - rate`` and a mask ``m_i ~ Bernoulli(q)``
(one per element of ``noise_shape``, broadcast over the input),
``y_i = m_i x_i / q``, so ``E[y_i] = x_i`` and nothing needs rescaling at inference. It is
built from differentiable ops, so ``dL/dx_i = m_i g_i / q``: the gradient flows through the
kept units only, scaled by ``1 / (1 - rate)``.

Every function returns a ``dendrite.core.Tensor``; only ``dropout`` and ``shuffle`` (a
gather) carry gradients, the rest are constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import _settings
from dendrite.core import Tensor, Variable
from dendrite.ops import arithmetic, comparison, creation, indexing
from dendrite.ops._util import raw

__all__ = [
    "SeedGenerator",
    "beta",
    "binomial",
    "categorical",
    "dropout",
    "gamma",
    "normal",
    "randint",
    "shuffle",
    "truncated_normal",
    "uniform",
]

_SEED_LIMIT = 2**32  # seeds live in a uint32 state, as in Keras' NumPy backend
_names: dict[str, int] = {}


def _auto_name(base: str) -> str:
    count = _names.get(base, 0)
    _names[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def _check_int_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"Argument `seed` must be an integer. Received: seed={seed}")
    if not 0 <= int(seed) < _SEED_LIMIT:
        raise ValueError(f"Argument `seed` must be an integer in [0, 2**32). Received: seed={seed}")
    return int(seed)


class SeedGenerator:
    """A random state a layer owns: each ``next()`` returns a new seed.

    The state is a non-trainable uint32 ``Variable`` ``[seed, counter]``; ``next()`` returns
    a copy and increments the counter. Passed as ``seed=`` to any function of this module, it
    makes each call draw different values, reproducibly from the initial seed. Without a
    seed, the initial one is drawn from dendrite's global generator, so it too repeats
    under ``set_random_seed``.

    Args:
        seed: initial seed, an int in ``[0, 2**32)``, or None.
        name: a name for the generator (default ``seed_generator``, ``seed_generator_1``...).
    """

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs: Any) -> None:
        kwargs.pop("backend", None)  # Keras' backend override: dendrite has one backend
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
        self.name = name if name is not None else _auto_name("seed_generator")
        self._initial_seed = seed
        if seed is None:
            seed = int(_settings.rng().integers(1, 10**9))
        seed = _check_int_seed(seed)
        self.state = Variable(
            np.array([seed, 0], dtype=np.uint32),
            trainable=False,
            name=f"{self.name}/seed_generator_state",
        )

    def next(self, ordered: bool = True) -> Tensor:
        """The current state (a uint32 Tensor of shape (2,)), then advance it: the counter
        by one (``ordered``), or to ``(state + 1) * 5387 % 933199`` as Keras' unordered
        step does."""
        current = np.array(self.state.data, copy=True)
        if ordered:
            new = current + np.array([0, 1], dtype=np.uint32)
        else:
            new = ((current.astype(np.int64) + 1) * 5387 % 933199).astype(np.uint32)
        self.state.assign(new)
        return Tensor._make(current)

    def get_config(self) -> dict:
        return {"seed": self._initial_seed}

    @classmethod
    def from_config(cls, config: dict) -> SeedGenerator:
        return cls(**config)

    def __repr__(self) -> str:
        return f"<SeedGenerator name={self.name!r} state={self.state.data.tolist()}>"


def _generator(seed: Any) -> np.random.Generator:
    """The NumPy generator one draw uses (see the module docstring)."""
    if seed is None:
        return _settings.rng()
    if isinstance(seed, SeedGenerator):
        return np.random.default_rng(seed.next().data)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng([_check_int_seed(seed), 0])
    raise ValueError(
        "Argument `seed` must be either an integer or an instance of `SeedGenerator`. "
        f"Received: seed={seed} (of type {type(seed)})"
    )


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, Tensor):
        shape = shape.data.tolist()
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"`shape` must be a tuple of integers. Received: shape={shape}") from None
    if not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in dims
    ):
        raise ValueError(
            f"`shape` must be a tuple of non-negative integers. Received: shape={shape}"
        )
    return tuple(int(d) for d in dims)


def _dtype(dtype: Any, fn: str, kind: str = "float") -> np.dtype:
    try:
        resolved = np.dtype(_settings.floatx() if dtype is None else dtype)
    except TypeError:
        raise ValueError(f"Unknown dtype for `keras.random.{fn}`: {dtype!r}.") from None
    if kind == "float" and not np.issubdtype(resolved, np.floating):
        raise ValueError(
            f"`keras.random.{fn}` requires a floating point `dtype`. Received: dtype={dtype}"
        )
    if kind == "int" and not np.issubdtype(resolved, np.integer):
        raise ValueError(
            f"`keras.random.{fn}` requires an integer `dtype`. Received: dtype={dtype}"
        )
    if kind == "number" and not np.issubdtype(resolved, np.number):
        raise ValueError(f"`keras.random.{fn}` requires a numeric `dtype`. Received: dtype={dtype}")
    return resolved


def _param(value: Any) -> np.ndarray:
    """A distribution parameter (a number, an array or a Tensor) as float64."""
    return np.asarray(raw(value), dtype=np.float64)


def _positive(value: Any, name: str, fn: str) -> np.ndarray:
    array = _param(value)
    if not np.all(array > 0):
        raise ValueError(
            f"`keras.random.{fn}` requires `{name}` > 0 everywhere. Received: {name}={value}"
        )
    return array


def normal(
    shape: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = None, seed: Any = None
) -> Tensor:
    """Samples of the normal distribution N(mean, stddev^2), of ``shape``."""
    dt = _dtype(dtype, "normal")
    z = _generator(seed).standard_normal(_shape(shape))
    return Tensor._make((_param(mean) + _param(stddev) * z).astype(dt))


def uniform(
    shape: Any, minval: Any = 0.0, maxval: Any = 1.0, dtype: Any = None, seed: Any = None
) -> Tensor:
    """Samples uniform on ``[minval, maxval)``, of ``shape``; ``dtype`` must be a float."""
    dt = _dtype(dtype, "uniform")
    low, high = _param(minval), _param(maxval)
    u = _generator(seed).random(_shape(shape))
    values = (low + (high - low) * u).astype(dt)
    # rounding to a narrower float may reach maxval: keep the upper bound excluded
    values = np.where(values >= high, np.nextafter(high.astype(dt), low.astype(dt)), values)
    return Tensor._make(values.astype(dt, copy=False))


def truncated_normal(
    shape: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: Any = None, seed: Any = None
) -> Tensor:
    """Normal samples with every draw farther than two stddevs from the mean redrawn."""
    dt = _dtype(dtype, "truncated_normal")
    dims = _shape(shape)
    rng = _generator(seed)
    z = rng.standard_normal(dims)
    outside = np.abs(z) > 2.0
    while outside.any():  # each pass redraws ~4.6% of the previous remainder
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2.0
    return Tensor._make((_param(mean) + _param(stddev) * z).astype(dt))


def categorical(logits: Any, num_samples: int, dtype: Any = "int32", seed: Any = None) -> Tensor:
    """``num_samples`` class indices per row of 2-D ``logits`` (batch_size, num_classes),
    each drawn with probability ``softmax(row)``; shape (batch_size, num_samples)."""
    values = _param(logits)
    if values.ndim != 2:
        raise ValueError(
            "`logits` should be a 2-D tensor with shape [batch_size, num_classes]. "
            f"Received: logits={logits}"
        )
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)):
        raise ValueError(f"`num_samples` must be an integer. Received: num_samples={num_samples}")
    if num_samples < 0 or values.shape[1] == 0:
        raise ValueError(
            "`categorical` needs num_samples >= 0 and at least one class. Received: "
            f"num_samples={num_samples}, logits of shape {values.shape}"
        )
    dt = _dtype(dtype, "categorical", kind="int")
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    cdf = np.cumsum(shifted, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    u = _generator(seed).random((values.shape[0], int(num_samples)))
    out = np.empty(u.shape, dtype=dt)
    for row in range(values.shape[0]):
        out[row] = np.searchsorted(cdf[row], u[row], side="right")
    return Tensor._make(out)


def randint(shape: Any, minval: Any, maxval: Any, dtype: Any = "int32", seed: Any = None) -> Tensor:
    """Integers uniform on ``[minval, maxval)``, of ``shape``; ``dtype`` must be an integer."""
    dt = _dtype(dtype, "randint", kind="int")
    low, high = np.asarray(raw(minval)), np.asarray(raw(maxval))
    if not np.all(high > low):
        raise ValueError(
            "`keras.random.randint` requires maxval > minval (maxval is excluded). "
            f"Received: minval={minval}, maxval={maxval}"
        )
    return Tensor._make(_generator(seed).integers(low, high, size=_shape(shape), dtype=dt))


def shuffle(x: Any, axis: int = 0, seed: Any = None) -> Tensor:
    """x with its slices along ``axis`` in one uniformly random order (differentiable: a
    gather, whose gradient scatters back)."""
    tensor = x if isinstance(x, Tensor) else creation.convert_to_tensor(x)
    if tensor.ndim == 0:
        raise ValueError("`keras.random.shuffle` needs a tensor of rank >= 1, got a scalar.")
    if not -tensor.ndim <= axis < tensor.ndim:
        raise ValueError(
            f"`axis` {axis} is out of bounds for a tensor of rank {tensor.ndim} in shuffle."
        )
    order = _generator(seed).permutation(tensor.shape[axis])
    return indexing.take(tensor, order, axis=axis)


def dropout(inputs: Any, rate: float, noise_shape: Any = None, seed: Any = None) -> Tensor:
    """Inverted dropout: each unit zeroed with probability ``rate``, the others scaled by
    ``1 / (1 - rate)``; differentiable in ``inputs``.

    Args:
        inputs: a floating tensor (integers become ``floatx()``).
        rate: drop probability in [0, 1).
        noise_shape: the mask's shape, broadcast to ``inputs`` (None entries take the
            input's size), e.g. ``(batch, 1, features)`` to drop whole features.
        seed: None, an int or a ``SeedGenerator``.
    """
    rate = float(raw(rate))
    if not 0.0 <= rate < 1.0:
        raise ValueError(
            "Invalid value received for argument `rate`. Expected a float value in [0, 1). "
            f"Received: rate={rate}"
        )
    x = creation.as_float_tensor(inputs)
    if noise_shape is None:
        mask_shape = x.shape
    else:
        dims = list(noise_shape)
        if len(dims) != x.ndim:
            raise ValueError(
                f"`noise_shape` must have the rank of the inputs ({x.ndim}). "
                f"Received: noise_shape={noise_shape} for inputs of shape {x.shape}"
            )
        mask_shape = tuple(x.shape[i] if d is None else int(d) for i, d in enumerate(dims))
        if any(m not in (1, n) for m, n in zip(mask_shape, x.shape)):
            raise ValueError(
                f"`noise_shape` {tuple(noise_shape)} does not broadcast to the inputs' shape "
                f"{x.shape}: each entry must be 1, None or the input's size."
            )
    if rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = np.broadcast_to(_generator(seed).random(mask_shape) < keep, x.shape)
    scaled = arithmetic.multiply(x, np.asarray(1.0 / keep, dtype=x.dtype))
    return comparison.where(mask, scaled, np.zeros((), dtype=x.dtype))


def gamma(shape: Any, alpha: Any, dtype: Any = None, seed: Any = None) -> Tensor:
    """Samples of Gamma(alpha, scale 1): mean and variance ``alpha`` (> 0)."""
    dt = _dtype(dtype, "gamma")
    a = _positive(alpha, "alpha", "gamma")
    return Tensor._make(_generator(seed).gamma(a, 1.0, size=_shape(shape)).astype(dt))


def binomial(
    shape: Any, counts: Any, probabilities: Any, dtype: Any = None, seed: Any = None
) -> Tensor:
    """Successes in ``counts`` trials of probability ``probabilities`` (broadcastable to
    ``shape``), in ``dtype`` (``floatx()`` by default, as Keras)."""
    dt = _dtype(dtype, "binomial", kind="number")
    n = np.asarray(raw(counts))
    p = _param(probabilities)
    if not np.all((n >= 0) & (n == np.floor(n))):
        raise ValueError(
            "`keras.random.binomial` requires `counts` to be non-negative integers. "
            f"Received: counts={counts}"
        )
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(
            "`keras.random.binomial` requires `probabilities` in [0, 1]. "
            f"Received: probabilities={probabilities}"
        )
    draws = _generator(seed).binomial(n.astype(np.int64), p, size=_shape(shape))
    return Tensor._make(draws.astype(dt))


def beta(shape: Any, alpha: Any, beta: Any, dtype: Any = None, seed: Any = None) -> Tensor:
    """Samples of Beta(alpha, beta) on [0, 1], both parameters > 0."""
    dt = _dtype(dtype, "beta")
    a = _positive(alpha, "alpha", "beta")
    b = _positive(beta, "beta", "beta")
    return Tensor._make(_generator(seed).beta(a, b, size=_shape(shape)).astype(dt))
