"""The shared contract every registered layer meets, driven by ``LAYER_REGISTRY``.

A layer joins by being decorated with ``@register_layer`` and declaring an ``example``;
these checks then run on it with no further code:

- lazy build: no weights before the first call, weights after it, none added by a second;
- output shape: ``compute_output_shape`` gives the shape of the real output, and with a
  ``None`` batch axis it gives ``None`` there;
- gradients: a directional check in float64 (the layer built with ``dtype="float64"``) of
  the gradient with respect to every floating input and every trainable weight;
- config: ``from_config(get_config())``, through JSON, then ``set_weights`` gives identical
  outputs, and the clone's config equals the original's;
- training: inside a functional model, one SGD step on an MSE loss changes every trainable
  weight;
- a wrong-rank input raises ValueError naming the layer (never another exception), and must
  raise when the layer's ``input_spec`` rules that rank out;
- completeness: every registered dendrite layer has an ``example`` (only model classes and
  InputLayer are exempt, each with its reason in ``NO_EXAMPLE``).

The ``example`` convention (a class attribute, a dict)::

    example = {
        "kwargs": {...},            # constructor arguments (required); may instead be a
                                    # callable kwargs(dtype=None) -> dict, for arguments
                                    # that are layers (wrappers)
        "input_shape": (2, 5),      # full input shape, batch first (required); a list of
                                    # shapes for a layer called on a list of inputs
        "input_dtype": "int64",     # optional: dtype of the input(s), one name or a list
                                    # per input (default: the layer's float dtype)
        "input_range": (0, 7),      # optional: values drawn uniformly from [low, high)
                                    # (integers for integer dtypes; required for them);
                                    # one pair or a list per input (default: N(0, 1))
        "call_kwargs": {...},       # optional: keyword arguments for every call
        "positional": True,         # optional: pass several inputs as separate positional
                                    # arguments, layer(x0, x1), instead of layer([x0, x1])
    }

Layer modules are found by walking the ``dendrite.layers`` package (plus a list of the
expected family modules, skipped while they do not exist yet), so new layers are picked up
as they land. Only classes defined in ``dendrite`` are checked (test-local layers are not).
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import pkgutil
import zlib
from typing import Any

import numpy as np
import pytest

import dendrite.layers
import dendrite.models.functional  # noqa: F401 (registers Functional)
from dendrite import ops
from dendrite.core import Tensor, no_grad
from dendrite.layers.input_layer import Input
from dendrite.layers.registry import LAYER_REGISTRY
from dendrite.layers.symbolic import flatten
from dendrite.models.model import Model
from dendrite.optimizers import SGD

KNOWN_MODULES = [
    "core",
    "conv",
    "pooling",
    "reshaping",
    "normalization",
    "regularization",
    "merging",
    "embedding",
    "recurrent",
    "attention",
    "wrappers",
]


def _import_layer_modules() -> None:
    found = {m.name for m in pkgutil.iter_modules(dendrite.layers.__path__)}
    for name in sorted(found | set(KNOWN_MODULES)):
        if name not in found:
            continue  # an expected family that has not landed yet
        importlib.import_module(f"dendrite.layers.{name}")


_import_layer_modules()

# Registered classes that need no example, and why. Nothing else may be listed here.
NO_EXAMPLE = {
    "Sequential": "a model: built from other layers, tested in test_sequential/test_training",
    "Functional": "a model: built from a graph of other layers, tested in test_functional",
    "InputLayer": "the model entry point: built at construction, no weights, no call maths",
    "TextVectorization": "string inputs, no weights, not differentiable: test_layers_text",
    "SimpleRNNCell": "an RNN cell, called with (inputs, states) by RNN: test_layers_recurrent",
    "LSTMCell": "an RNN cell, called with (inputs, states) by RNN: test_layers_recurrent",
    "GRUCell": "an RNN cell, called with (inputs, states) by RNN: test_layers_recurrent",
    "StackedRNNCells": "RNN cells, called with (inputs, states) by RNN: test_layers_conv_lstm",
}

ALLOWED_KEYS = {
    "kwargs",
    "input_shape",
    "input_dtype",
    "input_range",
    "call_kwargs",
    "positional",
}


def _dendrite_layers() -> dict[str, type]:
    return {
        name: cls
        for name, cls in sorted(LAYER_REGISTRY.items())
        if cls.__module__.startswith("dendrite.")
    }


def _with_examples() -> list[str]:
    return [
        name
        for name, cls in _dendrite_layers().items()
        if name not in NO_EXAMPLE and cls.__dict__.get("example", cls.example) is not None
    ]


LAYERS = _with_examples()


# --- the example convention -----------------------------------------------------------------
class Example:
    """A layer class's ``example``, checked and normalised."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cls = LAYER_REGISTRY[name]
        raw = self.cls.example
        if not isinstance(raw, dict) or "kwargs" not in raw or "input_shape" not in raw:
            pytest.fail(f"{name}.example must be a dict with 'kwargs' and 'input_shape'.")
        unknown = set(raw) - ALLOWED_KEYS
        if unknown:
            pytest.fail(f"{name}.example has unknown keys {sorted(unknown)}; see this module.")
        self.raw = raw
        shape = raw["input_shape"]
        self.multi = isinstance(shape, list)
        self.shapes = [tuple(s) for s in shape] if self.multi else [tuple(shape)]
        for s in self.shapes:
            if not s or not all(isinstance(d, int) and d > 0 for d in s):
                pytest.fail(f"{name}.example input_shape {shape} must be concrete (batch first).")
        self.dtypes = self._per_input(raw.get("input_dtype"))
        self.ranges = self._per_input(raw.get("input_range"), pairs=True)
        self.call_kwargs = dict(raw.get("call_kwargs", {}))
        training = inspect.signature(self.cls.call).parameters.get("training")
        if training is not None and training.default is True:
            # augmentation layers augment on a direct call, as in Keras; the contract's
            # direct calls compare outputs, so they ask for the deterministic inference path
            self.call_kwargs.setdefault("training", False)
        self.positional = bool(raw.get("positional", False))

    def _per_input(self, value: Any, pairs: bool = False) -> list:
        if value is None:
            return [None] * len(self.shapes)
        single = isinstance(value, (str, np.dtype)) or (
            pairs and len(value) == 2 and not isinstance(value[0], (list, tuple))
        )
        values = [value] * len(self.shapes) if single else list(value)
        if len(values) != len(self.shapes):
            pytest.fail(f"{self.name}.example: give one entry per input ({len(self.shapes)}).")
        return values

    def make(self, dtype: str | None = None) -> Any:
        kwargs = self.raw["kwargs"]
        kwargs = kwargs(dtype=dtype) if callable(kwargs) else copy.deepcopy(kwargs)
        if dtype is not None:
            kwargs["dtype"] = dtype
        return self.cls(**kwargs)

    def input_dtypes(self, float_dtype: str) -> list[str]:
        return [np.dtype(d or float_dtype).name for d in self.dtypes]

    def arrays(self, float_dtype: str = "float32", seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng(zlib.crc32(self.name.encode()) + seed)
        result = []
        for shape, dtype, bounds in zip(self.shapes, self.input_dtypes(float_dtype), self.ranges):
            if np.dtype(dtype).kind in "iu":
                if bounds is None:
                    pytest.fail(f"{self.name}.example: integer inputs need an input_range.")
                result.append(rng.integers(bounds[0], bounds[1], size=shape).astype(dtype))
            elif bounds is not None:
                result.append(rng.uniform(bounds[0], bounds[1], size=shape).astype(dtype))
            else:
                result.append(rng.standard_normal(shape).astype(dtype))
        return result

    def call(self, layer: Any, inputs: list, **kwargs: Any) -> Any:
        kwargs = {**self.call_kwargs, **kwargs}
        if not self.multi:
            return layer(inputs[0], **kwargs)
        if self.positional:
            return layer(*inputs, **kwargs)
        return layer(list(inputs), **kwargs)


def _shapes(outputs: Any) -> Any:
    if isinstance(outputs, (list, tuple)):
        return [tuple(o.shape) for o in outputs]
    return tuple(outputs.shape)


def _normalise_shape(shape: Any) -> Any:
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [tuple(s) for s in shape]
    return tuple(shape)


# --- the contract ---------------------------------------------------------------------------
def test_every_registered_layer_has_an_example() -> None:
    missing = [
        f"{name} ({cls.__module__})"
        for name, cls in _dendrite_layers().items()
        if name not in NO_EXAMPLE and getattr(cls, "example", None) is None
    ]
    assert not missing, (
        f"Registered layers without an `example` class attribute: {missing}. Add "
        f'example = {{"kwargs": {{...}}, "input_shape": (batch, ...)}} (see this module).'
    )
    stale = sorted(set(NO_EXAMPLE) - set(LAYER_REGISTRY))
    assert not stale, f"NO_EXAMPLE lists classes that are not registered: {stale}"


@pytest.mark.parametrize("name", LAYERS)
def test_lazy_build(name: str) -> None:
    example = Example(name)
    layer = example.make()
    assert not layer.built, f"{name} is built before its first call."
    assert layer.weights == [], f"{name} created weights before its first call."
    inputs = example.arrays()
    example.call(layer, inputs)
    assert layer.built, f"{name}.built is False after a call."
    count = len(layer.weights)
    example.call(layer, inputs)
    assert len(layer.weights) == count, f"{name} created new weights on its second call."


@pytest.mark.parametrize("name", LAYERS)
def test_output_shape_matches_compute_output_shape(name: str) -> None:
    example = Example(name)
    layer = example.make()
    actual = _shapes(example.call(layer, example.arrays()))
    shape_arg = list(example.shapes) if example.multi else example.shapes[0]
    predicted = _normalise_shape(layer.compute_output_shape(shape_arg))
    assert predicted == actual, (
        f"{name}.compute_output_shape({shape_arg}) = {predicted}, but the output shape is {actual}."
    )
    unknown = [(None, *s[1:]) for s in example.shapes]
    unknown_arg = unknown if example.multi else unknown[0]
    predicted = _normalise_shape(layer.compute_output_shape(unknown_arg))
    expected = [(None, *s[1:]) for s in actual] if isinstance(actual, list) else (None, *actual[1:])
    assert predicted == expected, (
        f"{name}.compute_output_shape({unknown_arg}) = {predicted}; expected {expected}."
    )


def _symbolic_specs(example: Example, layer: Any) -> list[tuple]:
    """(shape, dtype) of each output of the layer called on Inputs with a None batch axis."""
    dtypes = example.input_dtypes(layer.dtype)
    inputs = [Input(batch_shape=(None, *s[1:]), dtype=d) for s, d in zip(example.shapes, dtypes)]
    outputs = flatten(example.call(layer, inputs))
    return [(o.shape, o.dtype) for o in outputs]


@pytest.mark.parametrize("name", LAYERS)
def test_building_from_shapes_alone_matches_running_on_placeholders(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large layers are built from ``compute_output_shape`` without running them (issue
    #12: a tiny file that upsamples to gigabytes); that path must give what running on
    placeholder zeros gives, shapes and dtypes, for every layer."""
    from dendrite.layers import symbolic

    example = Example(name)
    ran = _symbolic_specs(example, example.make())
    monkeypatch.setattr(symbolic, "PLACEHOLDER_LIMIT", 0)
    declared = _symbolic_specs(example, example.make())
    assert declared == ran, f"{name}: from shapes alone {declared}, by running {ran}."


def _objective(example: Example, layer: Any, arrays: list, upstream: list) -> float:
    with no_grad():
        outputs = flatten(example.call(layer, [Tensor(a) for a in arrays]))
    return float(sum(np.sum(u * o.data) for u, o in zip(upstream, outputs)))


@pytest.mark.parametrize("name", LAYERS)
def test_directional_gradcheck_float64(name: str) -> None:
    example = Example(name)
    layer = example.make("float64")
    arrays = example.arrays("float64")
    tensors = [Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    outputs = flatten(example.call(layer, tensors))
    for out in outputs:
        assert out.dtype == np.float64, (
            f"{name} built with dtype='float64' returned {out.dtype} (the dtype is not "
            f"propagated to its weights or computations)."
        )
    rng = np.random.default_rng(0)
    upstream = [rng.standard_normal(o.shape) for o in outputs]
    weights = layer.trainable_weights
    for w in weights:
        w.grad = None
    total = None
    for out, u in zip(outputs, upstream):
        term = ops.sum(ops.multiply(out, u))
        total = term if total is None else total + term
    if total.requires_grad:
        total.backward()
    eps, atol, rtol = 1e-6, 1e-6, 1e-5
    failures = []

    def compare(label: str, analytic: np.ndarray | None, shape: tuple, plus: Any) -> None:
        direction = rng.standard_normal(shape)
        analytic = np.zeros(shape) if analytic is None else analytic
        computed = float(np.sum(analytic * direction))
        numeric = (plus(eps * direction) - plus(-eps * direction)) / (2 * eps)
        if not abs(computed - numeric) <= atol + rtol * abs(numeric):
            failures.append(f"{label}: analytic {computed:.8g}, numeric {numeric:.8g}")

    for i, array in enumerate(arrays):
        if array.dtype.kind != "f":
            continue

        def shifted_input(step: np.ndarray, i: int = i) -> float:
            moved = list(arrays)
            moved[i] = arrays[i] + step
            return _objective(example, layer, moved, upstream)

        compare(f"input {i} {array.shape}", tensors[i].grad, array.shape, shifted_input)
    for w in weights:
        original = w.data.copy()

        def shifted_weight(step: np.ndarray, w: Any = w, original: Any = original) -> float:
            w.data[...] = original + step
            try:
                return _objective(example, layer, arrays, upstream)
            finally:
                w.data[...] = original

        compare(f"weight {w.path} {w.shape}", w.grad, w.shape, shifted_weight)
    assert not failures, f"{name} gradients (directional, float64): " + "; ".join(failures)


@pytest.mark.parametrize("name", LAYERS)
def test_config_round_trip(name: str) -> None:
    example = Example(name)
    layer = example.make()
    inputs = example.arrays()
    expected = flatten(example.call(layer, inputs))
    config = layer.get_config()
    try:
        text = json.dumps(config)
    except TypeError as error:
        pytest.fail(f"{name}.get_config() is not JSON-serialisable: {error}; config={config}")
    clone = type(layer).from_config(json.loads(text))
    example.call(clone, inputs)  # builds the clone
    clone.set_weights(layer.get_weights())
    got = flatten(example.call(clone, inputs))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a.data, b.data, err_msg=f"{name} clone differs")
    assert json.loads(json.dumps(clone.get_config())) == json.loads(text), (
        f"{name}: from_config(get_config()).get_config() differs from the original config."
    )


@pytest.mark.parametrize("name", LAYERS)
def test_one_training_step_in_a_model_changes_the_weights(name: str) -> None:
    example = Example(name)
    layer = example.make()
    symbolic = [
        Input(shape=s[1:], dtype=d) for s, d in zip(example.shapes, example.input_dtypes("float32"))
    ]
    model = Model(symbolic if example.multi else symbolic[0], example.call(layer, symbolic))
    arrays = example.arrays()
    x = arrays if example.multi else arrays[0]
    predictions = model.predict(x, verbose=0)
    rng = np.random.default_rng(1)
    if isinstance(predictions, list):
        targets: Any = [rng.standard_normal(p.shape).astype("float32") for p in predictions]
    else:
        targets = rng.standard_normal(predictions.shape).astype("float32")
    model.compile(optimizer=SGD(learning_rate=0.1), loss="mse")
    before = [w.data.copy() for w in layer.trainable_weights]
    loss = model.train_on_batch(x, targets)
    assert np.isfinite(loss), f"{name}: training loss is {loss}"
    unchanged = [
        w.path for w, b in zip(layer.trainable_weights, before) if np.array_equal(w.data, b)
    ]
    assert not unchanged, f"{name}: one training step left trainable weights {unchanged} unchanged."


@pytest.mark.parametrize("name", LAYERS)
def test_wrong_rank_raises_value_error_naming_the_layer(name: str) -> None:
    example = Example(name)
    layer = example.make()
    inputs = example.arrays()
    example.call(layer, inputs)
    first = inputs[0]
    variants = {"one axis fewer": first[..., 0], "one axis more": first[..., None].repeat(2, -1)}
    raised = []
    for label, bad in variants.items():
        if bad.ndim == 0:
            continue
        try:
            example.call(layer, [bad, *inputs[1:]])
        except ValueError as error:
            assert layer.name in str(error), (
                f"{name}: the ValueError for an input of shape {bad.shape} ({label}) does not "
                f"name the layer '{layer.name}': {error}"
            )
            raised.append(label)
        except Exception as error:  # noqa: BLE001 (the point is to catch anything else)
            pytest.fail(
                f"{name}: an input of shape {bad.shape} ({label}) raised "
                f"{type(error).__name__}: {error} -- expected a ValueError naming the layer "
                f"and the expected and received shapes (check input_spec)."
            )
        else:
            spec = layer.input_spec[0] if isinstance(layer.input_spec, list) else layer.input_spec
            if spec is not None:
                rank = bad.ndim
                forbidden = (
                    (spec.ndim is not None and rank != spec.ndim)
                    or (spec.min_ndim is not None and rank < spec.min_ndim)
                    or (spec.max_ndim is not None and rank > spec.max_ndim)
                )
                assert not forbidden, (
                    f"{name}: its input_spec rules out rank {rank}, but an input of shape "
                    f"{bad.shape} was accepted."
                )
