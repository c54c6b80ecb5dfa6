"""STFTSpectrogram: spectrograms of 1-D signals by a short-time Fourier transform written
as a strided 1-D convolution (Keras 3's ``keras.layers.STFTSpectrogram``), so that its
Fourier kernels can be trained like any other weight.

Each channel of a signal ``x`` (batch, time, channels) is convolved, on its own, with the
``STFT`` initializer's kernels ``K_re, K_im`` of shape ``(frame_length, 1, F)``,
``F = fft_length / 2 + 1``, at stride ``frame_step``:
``re[t, f] = sum_k x[t s + k] K_re[k, f]`` and likewise ``im``. Then, by ``mode``:

- "real", "imag": ``re``, ``im``;  "stft": both, concatenated along the frequencies;
- "angle": ``atan2(im, re)``;
- "psd": ``p = re^2 + im^2`` with every bin but the first and last counted twice
  (``p[f] + p[f]`` for ``0 < f < F - 1``, the one-sided power spectral density);
- "magnitude": ``m = sqrt(max(re^2 + im^2, eps))``;  "log": ``log(max(m, eps))``.

Channels last: the output is (batch, frames, channels * F), or (batch, frames, F,
channels) with ``expand_dims`` (an image for image models); channels first: (batch,
channels * F, frames), or (batch, channels, frames, F).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from dendrite import _settings, ops
from dendrite.core import Tensor
from dendrite.layers import initializers
from dendrite.layers.base import Layer
from dendrite.layers.input_spec import InputSpec
from dendrite.layers.registry import register_layer

_MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")


@register_layer
class STFTSpectrogram(Layer):
    """Spectrograms of signals (batch, time, channels) by a short-time Fourier transform
    (see the module docstring).

    Args:
        mode: "log" (default), "magnitude", "psd", "real", "imag", "angle" or "stft".
        frame_length: samples in a frame (default 256).
        frame_step: hop between frames (default ``frame_length // 2``).
        fft_length: FFT size, at least ``frame_length`` (default: the smallest power of
            two at or above ``frame_length``).
        window: "hann" (default), "hamming", "blackman", "bartlett", "boxcar", an array of
            ``frame_length`` values, or None.
        periodic: use the periodic form of a named window (default False).
        scaling: "density" (default), "spectrum" or None (see ``initializers.STFT``).
        padding: "valid" (default) or "same".
        expand_dims: give the frequencies their own axis (an image).
        data_format: "channels_last" (default) or "channels_first".
    """

    example = {
        "kwargs": {"mode": "magnitude", "frame_length": 8, "frame_step": 4},
        "input_shape": (2, 32, 1),
    }

    def __init__(
        self,
        mode: str = "log",
        frame_length: int = 256,
        frame_step: int | None = None,
        fft_length: int | None = None,
        window: Any = "hann",
        periodic: bool = False,
        scaling: str | None = "density",
        padding: str = "valid",
        expand_dims: bool = False,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        if frame_step is not None and (frame_step > frame_length or frame_step < 1):
            raise ValueError(
                "`frame_step` should be a positive integer not greater than `frame_length`. "
                f"Received frame_step={frame_step}, frame_length={frame_length}"
            )
        if fft_length is not None and fft_length < frame_length:
            raise ValueError(
                "`fft_length` should be not less than `frame_length`. "
                f"Received fft_length={fft_length}, frame_length={frame_length}"
            )
        if fft_length is not None and (fft_length & -fft_length) != fft_length:
            warnings.warn(
                f"`fft_length` is recommended to be a power of two. Received fft_length="
                f"{fft_length}",
                stacklevel=2,
            )
        if mode not in _MODES:
            raise ValueError(
                f"Output mode is invalid, it must be one of {', '.join(_MODES)}. "
                f"Received: mode={mode}"
            )
        if padding not in ("valid", "same"):
            raise ValueError(
                f"Padding is invalid, it should be 'valid', 'same'. Received: padding={padding}"
            )
        # checks the window and the scaling, with the initializer's messages
        initializers.STFT("real", window, scaling, periodic)
        super().__init__(**kwargs)
        self.mode = mode
        self.frame_length = int(frame_length)
        self.frame_step = frame_step
        self._frame_step = frame_step or self.frame_length // 2
        self.fft_length = fft_length
        self._fft_length = fft_length or 2 ** math.ceil(math.log2(frame_length))
        self.window = window
        self.periodic = periodic
        self.scaling = scaling
        self.padding = padding
        self.expand_dims = expand_dims
        if data_format is None:
            data_format = _settings.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                "The `data_format` argument must be one of 'channels_first', "
                f"'channels_last'. Received: data_format={data_format!r}"
            )
        self.data_format = data_format
        self.input_spec = InputSpec(ndim=3)

    def build(self, input_shape: Any) -> None:
        shape = (self.frame_length, 1, self._fft_length // 2 + 1)
        for side in ("real", "imag"):
            if self.mode != ("imag" if side == "real" else "real"):
                kernel = self.add_weight(
                    shape,
                    initializer=initializers.STFT(side, self.window, self.scaling, self.periodic),
                    name=f"{side}_kernel",
                )
                setattr(self, f"{side}_kernel", kernel)
        self.built = True

    def _convolve(self, signal: Tensor, kernel: Tensor) -> Tensor:
        """Each channel on its own: (batch, channels, F, frames)."""
        if self.data_format == "channels_last":
            _, time, channels = signal.shape
            single = ops.reshape(ops.transpose(signal, (0, 2, 1)), (-1, time, 1))
        else:
            _, channels, time = signal.shape
            single = ops.reshape(signal, (-1, 1, time))
        out = ops.conv(
            single,
            ops.cast(kernel, signal.dtype),
            strides=self._frame_step,
            padding=self.padding,
            data_format=self.data_format,
        )
        if self.data_format == "channels_last":
            out = ops.transpose(out, (0, 2, 1))
        return ops.reshape(out, (-1, channels, out.shape[1], out.shape[2]))

    def _layout(self, out: Tensor) -> Tensor:
        _, channels, bins, frames = out.shape
        if self.expand_dims:
            order = (0, 3, 2, 1) if self.data_format == "channels_last" else (0, 1, 3, 2)
            return ops.transpose(out, order)
        out = ops.reshape(out, (-1, channels * bins, frames))
        return ops.transpose(out, (0, 2, 1)) if self.data_format == "channels_last" else out

    def call(self, inputs: Tensor) -> Tensor:
        if inputs.dtype.name not in ("float16", "float32", "float64"):
            raise TypeError(
                f"Layer '{self.name}' (STFTSpectrogram): invalid input type. Expected "
                f"`float16`, `float32` or `float64`. Received: input type={inputs.dtype}"
            )
        length = inputs.shape[1] if self.data_format == "channels_last" else inputs.shape[2]
        if self.padding == "valid" and length < self.frame_length:
            raise ValueError(
                f"Layer '{self.name}' (STFTSpectrogram): a signal of {length} samples is "
                f"shorter than one frame (frame_length={self.frame_length}) with "
                f"padding='valid'; received input shape {tuple(inputs.shape)}."
            )
        real = self._convolve(inputs, self.real_kernel) if self.mode != "imag" else None
        imag = self._convolve(inputs, self.imag_kernel) if self.mode != "real" else None
        if self.mode in ("real", "imag"):
            return self._layout(real if self.mode == "real" else imag)
        if self.mode == "angle":
            return self._layout(ops.arctan2(imag, real))
        if self.mode == "stft":
            return self._layout(ops.concatenate([real, imag], axis=2))
        power = ops.square(real) + ops.square(imag)
        if self.mode == "psd":
            inner = ops.pad(power[:, :, 1:-1, :], ((0, 0), (0, 0), (1, 1), (0, 0)))
            return self._layout(power + inner)
        eps = _settings.epsilon()
        magnitude = self._layout(ops.sqrt(ops.maximum(power, eps)))
        if self.mode == "magnitude":
            return magnitude
        return ops.log(ops.maximum(magnitude, eps))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        batch = input_shape[0]
        if self.data_format == "channels_last":
            time, channels = input_shape[1], input_shape[2]
        else:
            channels, time = input_shape[1], input_shape[2]
        bins = self._fft_length // 2 + 1
        if self.mode == "stft":
            bins *= 2
        if time is None:
            frames = None
        elif self.padding == "same":
            frames = -(-time // self._frame_step)
        else:
            frames = (time - self.frame_length) // self._frame_step + 1
        if self.expand_dims:
            if self.data_format == "channels_last":
                return (batch, frames, bins, channels)
            return (batch, channels, frames, bins)
        features = None if channels is None else channels * bins
        if self.data_format == "channels_last":
            return (batch, frames, features)
        return (batch, features, frames)

    def get_config(self) -> dict:
        window = self.window
        if hasattr(window, "tolist"):
            window = window.tolist()
        return {
            **super().get_config(),
            "mode": self.mode,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "fft_length": self.fft_length,
            "window": window,
            "periodic": self.periodic,
            "scaling": self.scaling,
            "padding": self.padding,
            "data_format": self.data_format,
            "expand_dims": self.expand_dims,
        }
