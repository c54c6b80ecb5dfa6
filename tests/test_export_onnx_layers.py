"""ONNX export, driven by the layer registry: every registered layer, built from its
``example`` inside a functional model, is exported, passes ``onnx.checker`` and runs in ONNX
Runtime at batch 1 and 7 with outputs equal to ``model.predict`` within 1e-5 (float32,
relative to the output's scale: max |onnx - dendrite| / max(1, max |dendrite|)). A layer
with no ONNX form is listed, with its reason, in ``dendrite.export.registry.NOT_EXPORTABLE``
(printed here); a newly registered layer in neither list fails the completeness test.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import dendrite as K  # noqa: E402
from dendrite.export import registry  # noqa: E402
from dendrite.export.verify import max_relative_difference, run_onnx  # noqa: E402
from dendrite.layers.registry import LAYER_REGISTRY  # noqa: E402

TOLERANCE = 1e-5
registry.load_all()


def _exportable() -> list[str]:
    return sorted(
        name
        for name, cls in LAYER_REGISTRY.items()
        if getattr(cls, "example", None)
        and name not in registry.NOT_EXPORTABLE
        and name not in registry.MODEL_CLASSES
    )


def _model_and_data(cls: type, batch: int) -> tuple:
    example = cls.example
    kwargs = example["kwargs"]
    kwargs = kwargs() if callable(kwargs) else kwargs
    layer = cls(**kwargs)
    shapes = example["input_shape"]
    several = isinstance(shapes, list)
    shapes = shapes if several else [shapes]
    dtype = example.get("input_dtype", "float32")
    inputs = [K.Input(shape=tuple(s[1:]), dtype=dtype) for s in shapes]
    model = K.Model(inputs, layer(inputs if several else inputs[0]))
    rng = np.random.default_rng(1)
    if "input_range" in example:
        low, high = example["input_range"]
        data = [rng.integers(low, high, size=(batch, *s[1:])).astype(dtype) for s in shapes]
    else:
        data = [rng.standard_normal((batch, *s[1:])).astype(dtype) for s in shapes]
    return model, data


@pytest.mark.parametrize("name", _exportable())
def test_layer_exports_and_matches_predict(name: str, tmp_path) -> None:
    cls = LAYER_REGISTRY[name]
    model, data = _model_and_data(cls, 7)
    path = tmp_path / f"{name}.onnx"
    model.export(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    for batch in (1, 7):
        batch_data = [x[:batch] for x in data]
        expected = model.predict(batch_data if len(batch_data) > 1 else batch_data[0], verbose=0)
        expected = expected if isinstance(expected, (list, tuple)) else [expected]
        got = run_onnx(path, batch_data)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert max_relative_difference(g, e) <= TOLERANCE, (name, batch)


def test_every_registered_layer_is_exportable_or_listed() -> None:
    print("\nLayers not exported to ONNX:")
    for name, reason in sorted(registry.NOT_EXPORTABLE.items()):
        print(f"  {name}: {reason}")
    unlisted = [
        name
        for name in LAYER_REGISTRY
        if name not in registry.NOT_EXPORTABLE
        and name not in registry.MODEL_CLASSES
        and LAYER_REGISTRY[name] not in registry.CONVERTERS
        and name != "InputLayer"
    ]
    assert not unlisted, f"registered layers with neither a converter nor a reason: {unlisted}"
    stale = [name for name in registry.NOT_EXPORTABLE if name not in LAYER_REGISTRY]
    assert not stale, f"NOT_EXPORTABLE names layers that are not registered: {stale}"
