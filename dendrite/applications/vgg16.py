"""``keras.applications.vgg16``: VGG16 and its preprocessing ("caffe"); see ``vgg``."""

from dendrite.applications.vgg import VGG16, decode_predictions, preprocess_input

__all__ = ["VGG16", "decode_predictions", "preprocess_input"]
