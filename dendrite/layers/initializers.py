"""Weight initializers with Keras 3 names and defaults.

Variance scaling draws ``w`` with ``Var(w) = scale / n``, where ``n`` is ``fan_in``,
``fan_out`` or their mean. For a kernel of shape ``(..., in, out)`` the receptive field is
the product of the leading axes: ``fan_in = in * rf`` and ``fan_out = out * rf``.

- glorot_uniform (Dense's default): U(-l, l), l = sqrt(6 / (fan_in + fan_out))
- glorot_normal: truncated normal, scale 1, fan_avg;  he_*: scale 2, fan_in;
  lecun_*: scale 1, fan_in
- random_normal N(0, 0.05^2), random_uniform U(-0.05, 0.05), truncated_normal (0, 0.05)
  cut at two standard deviations, orthogonal (QR of a Gaussian), zeros, ones, constant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from dendrite import _settings, registry
from dendrite.registry import serialization


class Initializer:
    """Base class: ``initializer(shape, dtype) -> ndarray``."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Initializer:
        return cls(**config)


class _Seeded(Initializer):
    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed

    def _rng(self) -> np.random.Generator:
        # A fixed seed gives the same values at every call, as in Keras.
        return _settings.rng() if self.seed is None else np.random.default_rng(self.seed)

    def get_config(self) -> dict:
        return {"seed": self.seed}


def _dtype(dtype: Any) -> np.dtype:
    return np.dtype(dtype or _settings.floatx())


def compute_fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """(fan_in, fan_out) of a weight shape, as Keras computes them."""
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    receptive_field = math.prod(shape[:-2])
    return float(shape[-2] * receptive_field), float(shape[-1] * receptive_field)


def _truncated_normal(rng: np.random.Generator, shape: tuple, mean: float, std: float) -> Any:
    """N(mean, std^2) redrawn outside two standard deviations."""
    values = rng.standard_normal(shape)
    bad = np.abs(values) > 2
    while bad.any():
        values[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(values) > 2
    return mean + std * values


@registry.register("initializer")
class Zeros(Initializer):
    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        return np.zeros(shape, dtype=_dtype(dtype))


@registry.register("initializer")
class Ones(Initializer):
    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        return np.ones(shape, dtype=_dtype(dtype))


@registry.register("initializer")
class Constant(Initializer):
    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        return np.full(shape, self.value, dtype=_dtype(dtype))

    def get_config(self) -> dict:
        return {"value": self.value}


@registry.register("initializer", aliases=("normal",))
class RandomNormal(_Seeded):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        values = self._rng().normal(self.mean, self.stddev, shape)
        return values.astype(_dtype(dtype))

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


@registry.register("initializer", aliases=("uniform",))
class RandomUniform(_Seeded):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        values = self._rng().uniform(self.minval, self.maxval, shape)
        return values.astype(_dtype(dtype))

    def get_config(self) -> dict:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


@registry.register("initializer")
class TruncatedNormal(_Seeded):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        values = _truncated_normal(self._rng(), shape, self.mean, self.stddev)
        return values.astype(_dtype(dtype))

    def get_config(self) -> dict:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


@registry.register("initializer")
class VarianceScaling(_Seeded):
    """Draws with variance ``scale / n`` (n from ``mode``), from ``distribution``."""

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "normal")

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be positive, got {scale}.")
        if mode not in self._MODES:
            raise ValueError(f"VarianceScaling: mode must be one of {self._MODES}, got {mode!r}.")
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(
                f"VarianceScaling: distribution must be one of {self._DISTRIBUTIONS}, "
                f"got {distribution!r}."
            )
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        fan_in, fan_out = compute_fans(tuple(shape))
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            # Std of a unit normal truncated at +-2, so the variance comes out as asked.
            std = math.sqrt(variance) / 0.87962566103423978
            values = _truncated_normal(rng, tuple(shape), 0.0, std)
        elif self.distribution in ("untruncated_normal", "normal"):
            values = rng.normal(0.0, math.sqrt(variance), shape)
        else:
            limit = math.sqrt(3.0 * variance)
            values = rng.uniform(-limit, limit, shape)
        return values.astype(_dtype(dtype))

    def get_config(self) -> dict:
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
        }


def _scaling(scale: float, mode: str, distribution: str) -> type:
    class Preset(VarianceScaling):
        def __init__(self, seed: int | None = None) -> None:
            super().__init__(scale, mode, distribution, seed)

        def get_config(self) -> dict:
            return {"seed": self.seed}

    return Preset


@registry.register("initializer")
class GlorotUniform(_scaling(1.0, "fan_avg", "uniform")):
    """Glorot (Xavier) uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out))."""


@registry.register("initializer")
class GlorotNormal(_scaling(1.0, "fan_avg", "truncated_normal")):
    """Glorot normal: truncated normal with variance 2 / (fan_in + fan_out)."""


@registry.register("initializer")
class HeUniform(_scaling(2.0, "fan_in", "uniform")):
    """He uniform: U(-l, l), l = sqrt(6 / fan_in)."""


@registry.register("initializer")
class HeNormal(_scaling(2.0, "fan_in", "truncated_normal")):
    """He normal: truncated normal with variance 2 / fan_in."""


@registry.register("initializer")
class LecunUniform(_scaling(1.0, "fan_in", "uniform")):
    """LeCun uniform: U(-l, l), l = sqrt(3 / fan_in)."""


@registry.register("initializer")
class LecunNormal(_scaling(1.0, "fan_in", "truncated_normal")):
    """LeCun normal: truncated normal with variance 1 / fan_in."""


@registry.register("initializer")
class Orthogonal(_Seeded):
    """A (semi-)orthogonal matrix from the QR decomposition of a Gaussian one, times gain."""

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(f"Orthogonal initializer needs a shape of rank >= 2, got {shape}.")
        rows = math.prod(shape[:-1])
        cols = shape[-1]
        flat = self._rng().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        # C order: a transposed q would leave the weight Fortran-ordered, and every kernel
        # (Adam's update, the recurrent steps) then takes the slower strided path.
        return np.ascontiguousarray((self.gain * q[:rows, :cols]).reshape(shape), _dtype(dtype))

    def get_config(self) -> dict:
        return {"gain": self.gain, "seed": self.seed}


@registry.register("initializer")
class Identity(Initializer):
    """gain * I for a 2-D shape."""

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        if len(shape) != 2:
            raise ValueError(f"Identity initializer needs a 2-D shape, got {shape}.")
        return (self.gain * np.eye(*shape)).astype(_dtype(dtype))

    def get_config(self) -> dict:
        return {"gain": self.gain}


_WINDOWS = {"hann": np.hanning, "hamming": np.hamming, "blackman": np.blackman}


def _window(name: str, length: int, periodic: bool) -> np.ndarray:
    """SciPy's ``get_window(name, length, fftbins=periodic)`` for the common windows:
    hann ``0.5 - 0.5 cos(2 pi n / (M - 1))``, hamming ``0.54 - 0.46 cos(...)``, blackman
    ``0.42 - 0.5 cos(2 pi n / (M - 1)) + 0.08 cos(4 pi n / (M - 1))``, bartlett (a
    triangle reaching 0 at both ends) and boxcar (ones); periodic: the symmetric window
    of M + 1 points without its last one."""
    if name == "boxcar":
        return np.ones(length)
    make = _WINDOWS.get(name) or (np.bartlett if name == "bartlett" else None)
    if make is None:
        raise ValueError(
            f"Unknown window {name!r}: expected 'hann', 'hamming', 'blackman', 'bartlett', "
            "'boxcar', or an array of frame_length values."
        )
    return make(length + 1)[:-1] if periodic and length > 1 else make(length)


@registry.register("initializer")
class STFT(Initializer):
    """The kernels of a short-time Fourier transform as a 1-D convolution (Keras 3's
    ``STFT`` initializer, used by ``STFTSpectrogram``), shape ``(T, 1, F)``: for tap
    ``t`` of a frame of ``T`` samples and frequency bin ``f`` of ``F = n_fft / 2 + 1``,

        real: ``cos(-2 pi t f / n_fft) w[t] / s``,  imag: ``sin(-2 pi t f / n_fft) w[t] / s``

    with ``n_fft = 2 (F - 1)``, ``w`` the window (SciPy's names, or an array of ``T``
    values; None: no window, ``s = 1``), and ``s = sqrt(sum w^2)`` ("density"),
    ``sum |w|`` ("spectrum") or 1 (None)."""

    def __init__(
        self,
        side: str = "real",
        window: Any = "hann",
        scaling: str | None = "density",
        periodic: bool = False,
    ) -> None:
        if side not in ("real", "imag"):
            raise ValueError(f"side should be 'real' or 'imag', not {side}")
        if isinstance(window, str):
            _window(window, 1, False)
        if scaling is not None and scaling not in ("density", "spectrum"):
            raise ValueError(
                "Scaling is invalid, it must be `None`, 'density' or 'spectrum'. "
                f"Received scaling={scaling}"
            )
        self.side, self.window, self.scaling, self.periodic = side, window, scaling, periodic

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> np.ndarray:
        dtype = _dtype(dtype)
        if len(shape) != 3:
            raise ValueError(
                f"The STFT initializer needs a shape (frame_length, 1, fft_bins); got {shape}."
            )
        frame_length, _, bins = shape
        n_fft = (bins - 1) * 2
        angle = -2.0 * np.arange(frame_length)[:, None, None] * np.arange(bins) / n_fft * np.pi
        kernel = np.cos(angle) if self.side == "real" else np.sin(angle)
        if self.window is not None:
            if isinstance(self.window, str):
                window = _window(self.window, frame_length, self.periodic)
            else:
                window = np.asarray(self.window, dtype=np.float64)
            if window.ndim != 1 or window.shape[-1] != frame_length:
                raise ValueError(
                    "The shape of `window` must be equal to [frame_length]."
                    f"Received: window shape={window.shape}"
                )
            scale = 1.0
            if self.scaling == "density":
                scale = np.sqrt(np.sum(window**2))
            elif self.scaling == "spectrum":
                scale = np.sum(np.abs(window))
            kernel = kernel * window[:, None, None] / scale
        return kernel.astype(dtype)

    def get_config(self) -> dict:
        window = self.window
        if isinstance(window, np.ndarray):
            window = window.tolist()
        return {
            "side": self.side,
            "window": window,
            "periodic": self.periodic,
            "scaling": self.scaling,
        }


# Keras 3 exports every class under its snake_case name too, and two under longer ones:
# ``keras.initializers.he_normal(seed=1)`` is ``HeNormal(seed=1)``.
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling = VarianceScaling
glorot_uniform, glorot_normal = GlorotUniform, GlorotNormal
he_uniform, he_normal = HeUniform, HeNormal
lecun_uniform, lecun_normal = LecunUniform, LecunNormal
orthogonal, OrthogonalInitializer = Orthogonal, Orthogonal
identity, IdentityInitializer = Identity, Identity
stft, STFTInitializer = STFT, STFT

#: Every name ``get`` accepts (class names, their snake_case, Keras's "uniform" and
#: "normal") -> class: a live, read-only view of the registry's "initializer" kind.
INITIALIZERS: Mapping[str, type[Initializer]] = registry.table("initializer", aliases=True)


def get(identifier: Any) -> Initializer:
    """An initializer from a name ('glorot_uniform', 'GlorotUniform', any case), a config
    dict, a class or an instance; a callable ``fn(shape, dtype)`` is returned as it is.

    Names and config class names are found by ``dendrite.registry.get("initializer", ...)``
    (custom-object scopes and registered classes first)."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        found = registry.get("initializer", identifier)
        return found() if isinstance(found, type) else found
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret initializer: {identifier!r}.")


def serialize(initializer: Initializer) -> dict:
    """Keras 3's dict of an initializer: ``{"module", "class_name", "config",
    "registered_name"}`` (the inverse of ``get`` / ``deserialize``)."""
    return _serialize(initializer)


_serialize, deserialize = serialization.for_kind("initializer")
