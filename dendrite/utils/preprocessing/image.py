"""``keras.preprocessing.image``: the image helpers of ``keras.utils`` (Keras 3 keeps
these names here too). Keras' ``smart_resize`` is not provided."""

from dendrite.utils.image_utils import array_to_img, img_to_array, load_img, save_img

__all__ = ["array_to_img", "img_to_array", "load_img", "save_img"]
