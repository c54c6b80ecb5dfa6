"""``keras.applications``: ready-made image classification architectures.

Each family has its module (``vgg16``/``vgg19`` (in ``vgg``), ``resnet``/``resnet50``,
``resnet_v2``, ``mobilenet``, ``mobilenet_v2``, ``mobilenet_v3``, ``efficientnet``,
``efficientnet_v2``, ``densenet``, ``xception``, ``inception_v3``,
``inception_resnet_v2``, ``convnext``, ``nasnet``) with the model functions,
``preprocess_input`` and ``decode_predictions``; ``imagenet_utils`` holds the shared
preprocessing modes ("caffe", "tf", "torch") and decoding. Signatures, layer names and
parameter counts follow Keras 3, so that Keras-layout weights can be mapped onto these
models.

dendrite downloads nothing: ``weights="imagenet"`` raises a ValueError; pass
``weights=None`` (random initialization) or the path of a local weights file written by
dendrite's ``save_weights``. ``decode_predictions`` reads the ImageNet class index from a
local file (its ``class_index`` argument, or Keras' cache ``~/.keras/models/``).
"""

from dendrite.applications import (
    convnext,
    densenet,
    efficientnet,
    efficientnet_v2,
    imagenet_utils,
    inception_resnet_v2,
    inception_v3,
    mobilenet,
    mobilenet_v2,
    mobilenet_v3,
    nasnet,
    resnet,
    resnet50,
    resnet_v2,
    vgg16,
    vgg19,
    xception,
)
from dendrite.applications.convnext import (
    ConvNeXtBase,
    ConvNeXtLarge,
    ConvNeXtSmall,
    ConvNeXtTiny,
    ConvNeXtXLarge,
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
from dendrite.applications.efficientnet_v2 import (
    EfficientNetV2B0,
    EfficientNetV2B1,
    EfficientNetV2B2,
    EfficientNetV2B3,
    EfficientNetV2L,
    EfficientNetV2M,
    EfficientNetV2S,
)
from dendrite.applications.inception_resnet_v2 import InceptionResNetV2
from dendrite.applications.inception_v3 import InceptionV3
from dendrite.applications.mobilenet import MobileNet
from dendrite.applications.mobilenet_v2 import MobileNetV2
from dendrite.applications.mobilenet_v3 import MobileNetV3Large, MobileNetV3Small
from dendrite.applications.nasnet import NASNetLarge, NASNetMobile
from dendrite.applications.resnet import ResNet50, ResNet101, ResNet152
from dendrite.applications.resnet_v2 import ResNet50V2, ResNet101V2, ResNet152V2
from dendrite.applications.vgg import VGG16, VGG19
from dendrite.applications.xception import Xception

__all__ = [
    "ConvNeXtBase",
    "ConvNeXtLarge",
    "ConvNeXtSmall",
    "ConvNeXtTiny",
    "ConvNeXtXLarge",
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
    "EfficientNetV2B0",
    "EfficientNetV2B1",
    "EfficientNetV2B2",
    "EfficientNetV2B3",
    "EfficientNetV2L",
    "EfficientNetV2M",
    "EfficientNetV2S",
    "InceptionResNetV2",
    "InceptionV3",
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Large",
    "MobileNetV3Small",
    "NASNetLarge",
    "NASNetMobile",
    "ResNet50",
    "ResNet50V2",
    "ResNet101",
    "ResNet101V2",
    "ResNet152",
    "ResNet152V2",
    "VGG16",
    "VGG19",
    "Xception",
    "convnext",
    "densenet",
    "efficientnet",
    "efficientnet_v2",
    "imagenet_utils",
    "inception_resnet_v2",
    "inception_v3",
    "mobilenet",
    "mobilenet_v2",
    "mobilenet_v3",
    "nasnet",
    "resnet",
    "resnet50",
    "resnet_v2",
    "vgg16",
    "vgg19",
    "xception",
]
