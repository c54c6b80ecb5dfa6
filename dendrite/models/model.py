"""``Model``: a Layer that trains (Keras' Model = Trainer + Layer).

``Model(inputs, outputs)`` builds a functional graph; subclassing ``Model`` and writing
``call`` gives a subclassed model. Both get compile/fit/evaluate/predict and summary.
"""

from __future__ import annotations

from typing import Any

from dendrite import saving
from dendrite.layers.base import Layer
from dendrite.training.trainer import Trainer


class Model(Trainer, Layer):
    """A trainable layer graph. See ``Sequential`` and the functional API."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Model:
        if cls is Model and (len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs):
            from dendrite.models.functional import Functional

            return object.__new__(Functional)
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or "inputs" in kwargs or "outputs" in kwargs:
            # As Keras, a subclass is functional when *its* ``super().__init__`` receives
            # inputs and outputs (a custom train_step on a functional graph), not when its
            # own constructor takes two arguments (a GAN of two models): the same class,
            # with Functional's graph behind it.
            from dendrite.models.functional import Functional

            if isinstance(self, Functional):
                raise TypeError(
                    "Model(inputs, outputs) builds a functional model; this class does not "
                    "accept inputs/outputs."
                )
            self.__class__ = _functional_subclass(type(self), Functional)
            Functional.__init__(self, *args, **kwargs)
            return
        super().__init__(**kwargs)

    def summary(
        self,
        line_length: int | None = None,
        positions: Any = None,
        print_fn: Any = None,
        expand_nested: bool = False,
        show_trainable: bool = False,
        layer_range: Any = None,
    ) -> None:
        """Print Keras' table: layer (type), output shape, parameter counts, totals."""
        from dendrite.models.summary import print_summary

        print_summary(
            self, line_length=line_length, print_fn=print_fn, show_trainable=show_trainable
        )

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or index."""
        if index is not None:
            if name is not None:
                raise ValueError("Provide only one of name or index to get_layer.")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model only has "
                    f"{len(self.layers)} layers."
                )
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"No such layer: {name}. Existing layers are: {[layer.name for layer in self.layers]}."
        )

    def build(self, input_shape: Any = None) -> None:
        """Create the weights by running ``call`` once on placeholder inputs of
        ``input_shape`` (so sub-layers build, as on the first call)."""
        if input_shape is not None and not self.built and not self.__dict__.get("_building"):
            from dendrite.layers.symbolic import infer_output_shape

            self._build_input_shape = input_shape
            # The placeholder call re-enters __call__ -> build; the flag stops the recursion.
            self._building = True
            try:
                infer_output_shape(self, input_shape)
            finally:
                self._building = False
        self.built = True

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Model:
        """Rebuild a model from ``get_config()``; a functional config (``layers``,
        ``input_layers``, ``output_layers``) rebuilds the graph."""
        if all(key in config for key in ("layers", "input_layers", "output_layers")):
            from dendrite.models.functional import Functional

            target = cls if issubclass(cls, Functional) else Functional
            return target.from_config(config, custom_objects=custom_objects)
        return cls(**config)

    def reset_states(self) -> None:
        """Forget the kept states of every stateful recurrent layer in the model."""
        for layer in self._stateful_layers():
            layer.reset_states()

    def save(self, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
        """Save architecture, weights, optimizer state and compile settings to one file."""
        saving.save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(
        self, filepath: Any, overwrite: bool = True, max_shard_size: float | None = None
    ) -> None:
        """Save the weights alone to a ``.weights.safetensors`` (or, with h5py, Keras'
        ``.weights.h5``) file; with ``max_shard_size`` (GB, as Keras), Keras' sharded
        ``.weights.json`` index and its ``.weights.h5`` shards."""
        saving.save_weights(self, filepath, overwrite=overwrite, max_shard_size=max_shard_size)

    def load_weights(self, filepath: Any, **kwargs: Any) -> None:
        """Load weights saved by ``save_weights`` (or a whole-model file's weights)."""
        saving.load_weights(self, filepath, **kwargs)

    def export(
        self,
        filepath: Any,
        format: str = "onnx",
        input_signature: Any = None,
        opset_version: int | None = None,
        **kwargs: Any,
    ) -> None:
        """Write the model for serving as ``format`` (only "onnx", Keras 3's signature): the
        batch axis dynamic, inputs and outputs named as the model's, the file written
        atomically and only once every layer has converted. Needs ``pip install
        'dendrite[onnx]'``; see ``dendrite.export``."""
        from dendrite.export import export_model

        export_model(
            self,
            filepath,
            format=format,
            input_signature=input_signature,
            opset_version=opset_version,
            **kwargs,
        )

    def find_learning_rate(
        self,
        x: Any,
        y: Any = None,
        start: float = 1e-7,
        end: float = 10.0,
        steps: int = 100,
        batch_size: int = 32,
        **kwargs: Any,
    ) -> Any:
        """Smith's learning-rate range test on a copy of this compiled model's state: the
        rate grows exponentially from ``start`` to ``end`` over ``steps`` batches, the loss
        is smoothed, the sweep stops at divergence; returns the curve (``.rates``,
        ``.losses``), ``.suggestion`` and ``.plot(path)``. The model's weights and optimizer
        state come back unchanged. See ``dendrite.explain.find_learning_rate``."""
        from dendrite.explain.lr_finder import find_learning_rate

        return find_learning_rate(
            self, x, y, start=start, end=end, steps=steps, batch_size=batch_size, **kwargs
        )

    def to_json(self, **kwargs: Any) -> str:
        """The architecture as a JSON string in Keras 3's spelling (``models.model_from_json``
        rebuilds it, and so does Keras')."""
        return saving.model_to_json(self, **kwargs)


_FUNCTIONAL_SUBCLASSES: dict[type, type] = {}


def _functional_subclass(cls: type, functional: type) -> type:
    """``cls`` with ``Functional`` after it in the method order (made once per class)."""
    combined = _FUNCTIONAL_SUBCLASSES.get(cls)
    if combined is None:
        combined = type(cls.__name__, (cls, functional), {"__module__": cls.__module__})
        combined.__qualname__ = cls.__qualname__
        _FUNCTIONAL_SUBCLASSES[cls] = combined
    return combined
