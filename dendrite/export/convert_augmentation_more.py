"""ONNX forms of the newer Keras 3 preprocessing layers (``layers/augmentation_crop.py``,
``augmentation_color_more.py``, ``hashing.py``, ``pipeline.py``).

RandomGrayscale, RandomInvert and RandomColorDegeneration act only in training: at
inference ``y = x``, an Identity node. The others are listed as not exportable, with why.
"""

from __future__ import annotations

from dendrite.export.convert_core import identity
from dendrite.export.registry import converts, not_exportable
from dendrite.layers import augmentation_color_more

converts(
    augmentation_color_more.RandomGrayscale,
    augmentation_color_more.RandomInvert,
    augmentation_color_more.RandomColorDegeneration,
)(identity)

not_exportable("Hashing", "it hashes strings with FarmHash64 or SipHash; hash before ONNX Runtime.")
not_exportable(
    "HashedCrossing", "it hashes feature crosses with TensorFlow's fingerprints; cross first."
)
not_exportable("RandomCrop", "no converter yet (its inference form is a slice and a resize).")
not_exportable("AutoContrast", "no converter yet (per-channel min and max, then a rescale).")
not_exportable("Pipeline", "export the layers it holds inside a model instead.")
