"""Keras 3's augmentation policies: RandAugment and AugMix, composed of dendrite's own
augmentation layers. Images are (batch, H, W, C) or one image (H, W, C)
(``data_format="channels_first"``: the channels before H and W), with values in
``value_range`` = (low, high) (default (0, 255)).

Both take ``factor``, the strength, by Keras' base rule within [0, 1]: a number f gives
``(lower, upper) = (0, f)``, a pair is sorted. Every step is one of the layers below, built
with that pair (upper = ``f_hi``):

==========================  ============================================================
step                        its layer, with
==========================  ============================================================
random_shear                RandomShear(x_factor = y_factor = (lower, upper))
random_translation          RandomTranslation(height_factor = width_factor = the pair)
random_rotation             RandomRotation(factor = the pair): up to ``f_hi`` turns
random_brightness           RandomBrightness(the pair): ``y = clip(x + d (high - low))``
random_color_degeneration   RandomColorDegeneration(the pair)
random_contrast             RandomContrast(the pair): a contrast in [1 - lower, 1 + upper]
random_sharpness            RandomSharpness(the pair): f = 0 blurs, 1/2 keeps
random_posterization        RandomPosterization(max(1, trunc(8 f_hi))) bits kept
solarization                Solarization(addition_factor = threshold_factor = the pair)
auto_contrast               AutoContrast (no draw)
equalization                Equalization (no draw)
==========================  ============================================================

(``interpolation`` goes to the three geometric steps, ``value_range`` to the others; see
their modules for the maths of each.) Each application of a step draws its own
parameters per image, from a generator seeded by the policy's draw.

- RandAugment: per call, ``num_ops`` indices ``i_1 .. i_n`` uniform over the 11 steps above
  (one choice for the whole batch, as Keras), and one parameter draw per step; then
  ``y = T_(i_n)( ... T_(i_1)(x))``. A step chosen twice in one call is applied twice with
  the same parameters (Keras draws each step's transformation once per call). No final
  clip (the steps keep values in ``value_range`` themselves).
- AugMix: per call (shared by the batch), chain weights ``(p_1 .. p_K) ~ Dirichlet(alpha)``
  for ``K = num_chains`` and a mixing weight ``w ~ Beta(alpha, alpha)``. Chain k is
  ``chain_depth`` slots, each a step uniform over the steps and "none" (so a chain has 0
  to ``chain_depth`` steps), each slot its own draw: ``c_k = T_(k,d)( ... T_(k,1)(x))``.
  Then ``y = clip(w x + (1 - w) sum_k p_k c_k, low, high)``: a convex mix of the input and
  its chains. ``all_ops=False`` leaves out brightness, colour degeneration, contrast and
  sharpness (the 7 steps that AugMix's paper keeps, none overlapping common test-time
  corruptions).

Both act in training only (``fit``, or a direct call: ``training`` defaults to True, as in
Keras); with ``training=False`` (``predict``, ``evaluate``) they return their input
(integer images cast to the layer's float dtype, as Keras), so their inference form, and
their ONNX form, is the identity. Gradients reach the input through the differentiable
steps (posterization and equalization pass none, as in their own layers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite import ops
from dendrite.core import Tensor
from dendrite.layers.augmentation import (
    _INTERPOLATIONS,
    RandomRotation,
    RandomTranslation,
    _check,
    _data_format,
    _RandomImageLayer,
)
from dendrite.layers.augmentation_color import (
    RandomBrightness,
    RandomContrast,
    _factor,
    _value_range,
)
from dendrite.layers.augmentation_color_more import AutoContrast, RandomColorDegeneration
from dendrite.layers.augmentation_color_tone import (
    Equalization,
    RandomPosterization,
    RandomSharpness,
    Solarization,
)
from dendrite.layers.augmentation_geometry_extra import RandomShear, _Augment
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer

# Keras' step names and orders (the order fixes which index draws which step).
RAND_AUGMENT_STEPS = (
    "random_shear",
    "random_translation",
    "random_rotation",
    "random_brightness",
    "random_color_degeneration",
    "random_contrast",
    "random_sharpness",
    "random_posterization",
    "solarization",
    "auto_contrast",
    "equalization",
)
AUG_MIX_STEPS = (
    "random_shear",
    "random_translation",
    "random_rotation",
    "random_posterization",
    "solarization",
    "auto_contrast",
    "equalization",
    "random_brightness",
    "random_color_degeneration",
    "random_contrast",
    "random_sharpness",
)
AUG_MIX_BASIC_STEPS = AUG_MIX_STEPS[:7]

_SEED_LIMIT = 2**63 - 1


def _count(value: Any, name: str, layer: str, minimum: int) -> int:
    """An integer argument at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(
            f"{layer}: `{name}` must be an integer >= {minimum}; received {name}={value!r}."
        )
    return int(value)


class _Policy(_Augment, _RandomImageLayer):
    """Owns the steps (channels_last layers, untracked: they hold no weights) and feeds
    each application a generator seeded from this layer's own draws."""

    def __init__(
        self,
        value_range: Any,
        factor: Any,
        interpolation: str,
        seed: int | None,
        data_format: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        name = type(self).__name__
        self.value_range = _value_range(value_range, name)
        if self.value_range[0] == self.value_range[1]:
            raise ValueError(
                f"{name}: `value_range` must have low < high; received value_range={value_range!r}."
            )
        self.factor = _factor(factor, (0.0, 1.0), name)
        self.interpolation = _check(interpolation, _INTERPOLATIONS, "interpolation", name)
        self.data_format = _data_format(data_format, name)
        self._step_seed = 0

    def _make_steps(self, names: tuple[str, ...]) -> None:
        pair = list(self.factor)
        common = {"dtype": self.dtype}
        ranged = {"value_range": list(self.value_range), **common}
        last = {"data_format": "channels_last"}
        geometric = {"interpolation": self.interpolation, **common}
        makers = {
            "random_shear": lambda: RandomShear(x_factor=pair, y_factor=pair, **geometric, **last),
            "random_translation": lambda: RandomTranslation(pair, pair, **geometric),
            "random_rotation": lambda: RandomRotation(pair, **geometric),
            "random_brightness": lambda: RandomBrightness(pair, **ranged),
            "random_color_degeneration": lambda: RandomColorDegeneration(pair, **ranged, **last),
            "random_contrast": lambda: RandomContrast(pair, **ranged),
            "random_sharpness": lambda: RandomSharpness(pair, **ranged, **last),
            "random_posterization": lambda: RandomPosterization(
                max(1, int(8 * self.factor[1])), **ranged, **last
            ),
            "solarization": lambda: Solarization(
                addition_factor=pair, threshold_factor=pair, **ranged, **last
            ),
            "auto_contrast": lambda: AutoContrast(**ranged),
            "equalization": lambda: Equalization(**ranged, **last),
        }
        # A plain dict: not tracked as sublayers (no weights, nothing to save).
        self._steps: dict[str, Layer] = {}
        for step in names:
            layer = makers[step]()
            layer.name = f"{self.name}_{step}"
            # the step draws from the generator this policy seeds for each application
            layer._generator = self._step_generator
            self._steps[step] = layer
        self._names = names

    def _step_generator(self) -> np.random.Generator:
        return np.random.default_rng(self._step_seed)

    def _apply(self, step: str, x: Tensor, seed: int) -> Tensor:
        self._step_seed = int(seed)
        return self._steps[step](x, training=True)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "data_format": self.data_format,
            "value_range": list(self.value_range),
            "factor": list(self.factor),
            "interpolation": self.interpolation,
        }


@register_layer
class RandAugment(_Policy):
    """Applies ``num_ops`` augmentation steps chosen at random from 11 (see the module
    docstring), in training only.

    Args:
        value_range: (low, high) of the images' values (default (0, 255)).
        num_ops: how many steps each call applies, one after the other (default 2).
        factor: the steps' strength: a number f in [0, 1] (the pair (0, f)) or a pair
            (default 0.5).
        interpolation: "bilinear" (default) or "nearest", for the geometric steps.
        seed: seed of this layer's own generator (every draw comes from it).
        data_format: "channels_last" or "channels_first" (default: the configured one).
    """

    example = {
        "kwargs": {"value_range": (0, 255), "num_ops": 2, "factor": 0.4, "seed": 7},
        "input_shape": (2, 6, 5, 3),
        "input_range": (0, 255),
    }

    def __init__(
        self,
        value_range: Any = (0, 255),
        num_ops: int = 2,
        factor: Any = 0.5,
        interpolation: str = "bilinear",
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(value_range, factor, interpolation, seed, data_format, **kwargs)
        self.num_ops = _count(num_ops, "num_ops", type(self).__name__, 0)
        self._make_steps(RAND_AUGMENT_STEPS)

    def _augment(self, x: Tensor, shape: tuple) -> Tensor:
        rng = self._generator()
        chosen = rng.integers(0, len(self._names), size=self.num_ops)
        seeds = rng.integers(0, _SEED_LIMIT, size=len(self._names))
        for index in chosen:
            x = self._apply(self._names[index], x, seeds[index])
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), "num_ops": self.num_ops, "seed": self.seed}


@register_layer
class AugMix(_Policy):
    """Mixes each batch with ``num_chains`` randomly augmented copies of it (see the module
    docstring), in training only.

    Args:
        value_range: (low, high) of the images' values (default (0, 255)); the mix is
            clipped to it.
        num_chains: the number of augmented copies mixed (default 3).
        chain_depth: the number of slots per chain, each a random step or none (default 3).
        factor: the steps' strength: a number f in [0, 1] (the pair (0, f)) or a pair
            (default 0.3).
        alpha: the concentration of the Dirichlet chain weights and of the Beta mixing
            weight (default 1.0; > 0).
        all_ops: True (default) for all 11 steps; False leaves out brightness, colour
            degeneration, contrast and sharpness.
        interpolation: "bilinear" (default) or "nearest", for the geometric steps.
        seed: seed of this layer's own generator (every draw comes from it).
        data_format: "channels_last" or "channels_first" (default: the configured one).
    """

    example = {
        "kwargs": {"num_chains": 2, "chain_depth": 2, "factor": 0.3, "seed": 8},
        "input_shape": (2, 6, 5, 3),
        "input_range": (0, 255),
    }

    def __init__(
        self,
        value_range: Any = (0, 255),
        num_chains: int = 3,
        chain_depth: int = 3,
        factor: Any = 0.3,
        alpha: float = 1.0,
        all_ops: bool = True,
        interpolation: str = "bilinear",
        seed: int | None = None,
        data_format: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(value_range, factor, interpolation, seed, data_format, **kwargs)
        name = type(self).__name__
        self.num_chains = _count(num_chains, "num_chains", name, 1)
        self.chain_depth = _count(chain_depth, "chain_depth", name, 0)
        if (
            isinstance(alpha, bool)
            or not isinstance(alpha, (int, float, np.number))
            or not np.isfinite(alpha)
            or alpha <= 0
        ):
            raise ValueError(f"{name}: `alpha` must be a number > 0; received alpha={alpha!r}.")
        self.alpha = float(alpha)
        if not isinstance(all_ops, (bool, np.bool_)):
            raise ValueError(f"{name}: `all_ops` must be True or False; received {all_ops!r}.")
        self.all_ops = bool(all_ops)
        self._make_steps(AUG_MIX_STEPS if self.all_ops else AUG_MIX_BASIC_STEPS)

    def _augment(self, x: Tensor, shape: tuple) -> Tensor:
        rng = self._generator()
        chain_weights = rng.dirichlet([self.alpha] * self.num_chains)
        keep = float(rng.beta(self.alpha, self.alpha))
        mixed = None
        for k in range(self.num_chains):
            chain = x
            for _ in range(self.chain_depth):
                slot = int(rng.integers(0, len(self._names) + 1))  # the last: no step
                seed = rng.integers(0, _SEED_LIMIT)
                if slot < len(self._names):
                    chain = self._apply(self._names[slot], chain, seed)
            term = chain * float(chain_weights[k])
            mixed = term if mixed is None else mixed + term
        return ops.clip(x * keep + mixed * (1.0 - keep), *self.value_range)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_chains": self.num_chains,
            "chain_depth": self.chain_depth,
            "alpha": self.alpha,
            "all_ops": self.all_ops,
            "seed": self.seed,
        }
