"""``keras.applications``: ready-made image classification architectures.

Each family has its module (``vgg16``/``vgg19`` (in ``vgg``), ``resnet``/``resnet50``,
``resnet_v2``, ``mobilenet_v2``, ``mobilenet_v3``, ``efficientnet``, ``densenet``,
``xception``) with the model functions, ``preprocess_input`` and
``decode_predictions``; ``imagenet_utils`` holds the shared preprocessing modes ("caffe",
"tf", "torch") and decoding. Signatures, layer names and parameter counts follow Keras 3,
so that Keras-layout weights can be mapped onto these models.

dendrite downloads nothing: ``weights="imagenet"`` raises a ValueError; pass
``weights=None`` (random initialization) or the path of a local weights file written by
dendrite's ``save_weights``. ``decode_predictions`` reads the ImageNet class index from a
local file (its ``class_index`` argument, or Keras' cache ``~/.keras/models/``).
"""

from dendrite.applications import (
    densenet,
    efficientnet,
    imagenet_utils,
    mobilenet_v2,
    mobilenet_v3,
    resnet,
    resnet50,
    resnet_v2,
    vgg16,
    vgg19,
    xception,
)
from dendrite.applications.densenet import DenseNet121, DenseNet169, DenseNet201
from dendrite.applications.efficientnet import (
    EfficientNetB0,
    EfficientNetB1,
    EfficientNetB2,
    EfficientNetB3,
    EfficientNetB4,
    EfficientNetB5,
    EfficientNetB6,
    EfficientNetB7,
)
from dendrite.applications.mobilenet_v2 import MobileNetV2
from dendrite.applications.mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
from dendrite.applications.resnet import ResNet50, ResNet101, ResNet152
from dendrite.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
from dendrite.applications.vgg import VGG16, VGG19
from dendrite.applications.xception import Xception

__all__ = [
    "DenseNet121",
    "DenseNet169",
    "DenseNet201",
    "EfficientNetB0",
    "EfficientNetB1",
    "EfficientNetB2",
    "EfficientNetB3",
    "EfficientNetB4",
    "EfficientNetB5",
    "EfficientNetB6",
    "EfficientNetB7",
    "MobileNetV2",
    "MobileNetV3Large",
    "MobileNetV3Small",
    "ResNet50",
    "ResNet50V2",
    "ResNet101",
    "ResNet101V2",
    "ResNet152",
    "ResNet152V2",
    "VGG16",
    "VGG19",
    "Xception",
    "densenet",
    "efficientnet",
    "imagenet_utils",
    "mobilenet_v2",
    "mobilenet_v3",
    "resnet",
    "resnet50",
    "resnet_v2",
    "vgg16",
    "vgg19",
    "xception",
]
