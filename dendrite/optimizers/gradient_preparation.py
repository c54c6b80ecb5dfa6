"""What happens to gradients before an optimizer's update rule sees them (steps 2-3 of
``Optimizer.apply``): ``None`` gradients dropped with a warning, the rest converted to
each variable's dtype and checked against its shape before anything changes, divided by
``loss_scale_factor``, accumulated over ``gradient_accumulation_steps`` (their mean), and
clipped: ``clipvalue`` per element, ``clipnorm`` per gradient (``g <- g min(1, c / |g|)``),
``global_clipnorm`` over all of them (``g <- g min(1, c / sqrt(sum |g_i|^2))``). The
caller's arrays are never written: results go to per-variable buffers. Also the periodic
flush of subnormal slot values."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from dendrite.core import Tensor, Variable
from dendrite.optimizers._utils import clipnorm_scales, global_clipnorm_scale, variable_label

# See GradientPreparation._flush_subnormals.
FLUSH_EVERY = 64
_FLUSH_BELOW = 1e12


class GradientPreparation:
    """Mixed into ``Optimizer``: the gradient checks and transformations (see above)."""

    def _flush_subnormals(self) -> None:
        """Set slot values too small to matter to exactly 0.

        A weight whose gradient stays 0 (a pixel that is always black) has its momentum
        multiplied by beta_1 every step; after some hundred steps it becomes a subnormal
        float, and arithmetic on subnormals is about 100 times slower on x86, which made
        Adam steps 5 times slower late in an epoch. Values below ``_FLUSH_BELOW`` times the
        smallest normal float move a weight by less than 1e-20 per step, far below float32
        resolution, so zeroing them changes no result; checking every ``FLUSH_EVERY`` steps
        keeps them from decaying into the subnormal range in between (0.9^64 > 1e-3).
        """
        for slot in self.__dict__.get("_slots", ()):
            data = slot.data
            if data.dtype.kind == "f":
                threshold = np.finfo(data.dtype).tiny * _FLUSH_BELOW
                data[np.abs(data) < threshold] = 0

    def _grad_buffer(self, index: int) -> np.ndarray:
        buffer = self._grad_buffers[index]
        if buffer is None:
            buffer = self._grad_buffers[index] = np.empty_like(self._scratch[index])
        return buffer

    def _prepare_gradients(
        self, grads: list[Any], variables: list[Variable]
    ) -> tuple[list[np.ndarray], list[Variable]]:
        """Filter, convert, check, unscale and clip; nothing is written to a variable here."""
        arrays, kept, indices, missing = [], [], [], []
        for grad, variable in zip(grads, variables):
            index = self._index.get(id(variable))
            if index is None:
                raise ValueError(
                    f"Unknown variable: {variable!r}. This optimizer can only be called for the "
                    "variables it was originally built with. When working with a new set of "
                    "variables, you should recreate a new optimizer instance."
                )
            if grad is None:
                missing.append(variable_label(variable))
                continue
            array = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
            if array.shape != variable.data.shape:
                raise ValueError(
                    f"Gradient for variable {variable_label(variable)!r} has shape "
                    f"{array.shape}, but the variable has shape {variable.data.shape}."
                )
            arrays.append(array)
            kept.append(variable)
            indices.append(index)
        if not arrays:
            raise ValueError("No gradients provided for any variable.")
        if missing:
            warnings.warn(
                f"Gradients do not exist for variables {missing} when minimizing the loss.",
                stacklevel=3,
            )
        for k, (array, variable, index) in enumerate(zip(arrays, kept, indices)):
            if array.dtype != variable.data.dtype:
                buffer = self._grad_buffer(index)
                np.copyto(buffer, array, casting="same_kind")
                arrays[k] = buffer
        if self.loss_scale_factor is not None:
            self._scale(arrays, indices, [1.0 / self.loss_scale_factor] * len(arrays))
        if self.gradient_accumulation_steps and not self._accumulate(arrays, indices):
            return [], kept
        if self.clipvalue is not None:
            limit = self.clipvalue
            for k, index in enumerate(indices):
                arrays[k] = np.clip(arrays[k], -limit, limit, out=self._grad_buffer(index))
        elif self.clipnorm is not None:
            self._scale(arrays, indices, clipnorm_scales(arrays, self.clipnorm))
        elif self.global_clipnorm is not None:
            scale = global_clipnorm_scale(arrays, self.global_clipnorm)
            self._scale(arrays, indices, [scale] * len(arrays))
        return arrays, kept

    def _accumulate(self, arrays: list[np.ndarray], indices: list[int]) -> bool:
        """Add the gradients to the accumulators; on every ``gradient_accumulation_steps``-th
        step replace them by the mean since the last update (and reset the accumulators)
        and return True (as Keras: the clipping and the update then use that mean)."""
        steps = self.gradient_accumulation_steps
        update = (int(self._iterations.data) + 1) % steps == 0
        for k, index in enumerate(indices):
            accumulator = self._accumulators[index].data
            if not update:
                accumulator += arrays[k]
                continue
            mean = np.add(arrays[k], accumulator, out=self._grad_buffer(index))
            mean /= steps
            arrays[k] = mean
            accumulator[...] = 0
        return update

    def _scale(self, arrays: list[np.ndarray], indices: list[int], factors: list[float]) -> None:
        for k, (index, factor) in enumerate(zip(indices, factors)):
            if factor != 1.0:
                arrays[k] = np.multiply(arrays[k], factor, out=self._grad_buffer(index))
