"""``keras.preprocessing``: Keras 3's older home of the image, sequence and file-loading
helpers, kept as aliases of ``keras.utils``' functions (``image``, ``sequence`` and the
``*_dataset_from_directory`` loaders). Exposed as ``dendrite.preprocessing``."""

from dendrite.utils.image_dataset_utils import image_dataset_from_directory
from dendrite.utils.preprocessing import image, sequence
from dendrite.utils.text_dataset_utils import text_dataset_from_directory
from dendrite.utils.timeseries_dataset_utils import timeseries_dataset_from_array

__all__ = [
    "image",
    "image_dataset_from_directory",
    "sequence",
    "text_dataset_from_directory",
    "timeseries_dataset_from_array",
]
