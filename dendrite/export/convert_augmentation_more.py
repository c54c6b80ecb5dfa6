"""ONNX forms of the newer Keras 3 preprocessing layers (``layers/augmentation_crop.py``,
``augmentation_color_more.py``, ``hashing.py``, ``pipeline.py``).

RandomGrayscale, RandomInvert, RandomColorDegeneration, the colour layers of
``augmentation_color_extra.py`` and ``augmentation_color_tone.py`` (Equalization included:
Keras applies it only in training), the geometric ones of ``augmentation_geometry_extra.py``,
MixUp/CutMix and RandAugment/AugMix act only in training: at inference ``y = x``, an
Identity node; those that Keras casts to float in both modes (Solarization,
RandomSharpness, the geometric ones, CutMix, RandAugment, AugMix) give an integer input
as a Cast to float32 instead.
The others are listed as not exportable, with why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.export.common import first
from dendrite.export.convert_core import identity
from dendrite.export.graph import Value
from dendrite.export.registry import converts, not_exportable
from dendrite.layers import (
    augmentation_color_extra,
    augmentation_color_more,
    augmentation_color_tone,
    augmentation_geometry_extra,
    augmentation_mixing,
    augmentation_policies,
    max_num_bounding_boxes,
)

converts(
    augmentation_color_more.RandomGrayscale,
    augmentation_color_more.RandomInvert,
    augmentation_color_more.RandomColorDegeneration,
    augmentation_color_extra.RandomHue,
    augmentation_color_extra.RandomSaturation,
    augmentation_color_extra.RandomColorJitter,
    augmentation_color_tone.RandomPosterization,
    augmentation_color_tone.Equalization,
    augmentation_mixing.MixUp,
    max_num_bounding_boxes.MaxNumBoundingBoxes,  # on an image tensor; boxes never reach ONNX
)(identity)


@converts(
    augmentation_color_tone.Solarization,
    augmentation_color_tone.RandomSharpness,
    augmentation_geometry_extra.RandomErasing,
    augmentation_geometry_extra.RandomGaussianBlur,
    augmentation_geometry_extra.RandomShear,
    augmentation_geometry_extra.RandomPerspective,
    augmentation_geometry_extra.RandomElasticTransform,
    augmentation_mixing.CutMix,
    augmentation_policies.RandAugment,
    augmentation_policies.AugMix,
)
def float_identity(ctx: Any, layer: Any, args: dict) -> Value:
    """y = x for a float input; an integer one cast to float32."""
    x = first(args)
    if np.dtype(x.dtype).kind == "f":
        return identity(ctx, layer, args)
    return Value(ctx.b.op("Cast", [x.name], to=1), x.shape, np.float32, x.mask)


not_exportable("Hashing", "it hashes strings with FarmHash64 or SipHash; hash before ONNX Runtime.")
not_exportable(
    "HashedCrossing", "it hashes feature crosses with TensorFlow's fingerprints; cross first."
)
not_exportable("RandomCrop", "no converter yet (its inference form is a slice and a resize).")
not_exportable(
    "ContrastLimitedAdaptiveHistogramEqualization",
    "no converter yet (it acts at inference: per-tile histograms, clipped, and the four "
    "nearest tiles' lookup tables blended).",
)
not_exportable("AutoContrast", "no converter yet (per-channel min and max, then a rescale).")
not_exportable("Pipeline", "export the layers it holds inside a model instead.")
