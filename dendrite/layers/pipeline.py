"""Keras 3's Pipeline: layers applied in order, ``y = f_k(... f_2(f_1(x)))``, each given
the ``training`` flag when its ``call`` takes one (and it was passed) and the mask the
previous layer produced. Unlike Sequential it is a plain layer (no model, no optimizer),
meant for preprocessing chains such as augmentation; its config lists the layers' own.
"""

from __future__ import annotations

from typing import Any

from dendrite.layers.augmentation import RandomFlip
from dendrite.layers.base import Layer
from dendrite.layers.calling import call_arguments
from dendrite.layers.registry import register_layer
from dendrite.layers.rnn import deserialize_layer, serialize_layer


def _keras_entry(layer: Layer) -> dict:
    """A layer as Keras' ``serialize_keras_object`` writes one (its module named, so that
    Keras' deserializer finds a built-in class)."""
    return {"module": "keras.layers", **serialize_layer(layer), "registered_name": None}


@register_layer
class Pipeline(Layer):
    """Applies ``layers`` one after another (see the module docstring).

    Args:
        layers: a list of layers (or their serialized configs).
        name: the layer's name.
    """

    example = {
        "kwargs": lambda dtype=None: {"layers": [RandomFlip("horizontal", seed=1, dtype=dtype)]},
        "input_shape": (2, 4, 5, 3),
    }

    def __init__(self, layers: Any, name: str | None = None, **kwargs: Any) -> None:
        if not isinstance(layers, (list, tuple)):
            raise ValueError(f"`Pipeline` expects a list of layers. Received: layers={layers!r}.")
        built = [deserialize_layer(layer) for layer in layers]
        bad = [layer for layer in built if not isinstance(layer, Layer)]
        if bad:
            raise ValueError(f"`Pipeline` expects layers; received {bad[0]!r}.")
        super().__init__(name=name, **kwargs)
        self._pipeline_layers = list(built)

    @property
    def layers(self) -> list:
        return self._pipeline_layers

    def call(self, inputs: Any, training: Any = True, mask: Any = None) -> Any:
        outputs = inputs
        for layer in self._pipeline_layers:
            takes_training, takes_mask = call_arguments(type(layer))
            kwargs: dict[str, Any] = {}
            if takes_mask and mask is not None:
                kwargs["mask"] = mask
            if takes_training and training is not None:
                kwargs["training"] = training
            outputs = layer(outputs, **kwargs)
            mask = getattr(outputs, "_keras_mask", None)
        return outputs

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = input_shape
        for layer in self._pipeline_layers:
            shape = layer.compute_output_shape(shape)
        return shape

    @classmethod
    def from_config(cls, config: dict) -> Pipeline:
        layers = config.get("layers")
        if not isinstance(layers, (list, tuple)):
            raise ValueError(
                "`Pipeline` config must contain a `layers` key mapping to a list of "
                f"serialized layers. Received config with layers={layers}."
            )
        return cls(**config)

    def get_config(self) -> dict:
        # Keras' own keys only: its Pipeline takes (layers, name) and nothing else.
        return {
            "layers": [_keras_entry(layer) for layer in self._pipeline_layers],
            "name": self.name,
        }
