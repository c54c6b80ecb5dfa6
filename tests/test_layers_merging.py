"""Merging layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot) and
their functional aliases: values, gradients, shape errors, masks, configs."""

import numpy as np
import pytest

from dendrite.core import Tensor
from dendrite.layers import merging
from dendrite.layers.merging import (
    Add,
    Average,
    Concatenate,
    Dot,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)
from dendrite.testing import gradcheck

R = np.random.default_rng(0)

ELEMENTWISE = [
    (Add, lambda xs: xs[0] + xs[1] + xs[2]),
    (Multiply, lambda xs: xs[0] * xs[1] * xs[2]),
    (Average, lambda xs: (xs[0] + xs[1] + xs[2]) / 3),
    (Maximum, lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2])),
    (Minimum, lambda xs: np.minimum(np.minimum(xs[0], xs[1]), xs[2])),
]


@pytest.mark.parametrize("cls, reference", ELEMENTWISE)
def test_elementwise_values_and_gradients(cls, reference):
    xs = [R.normal(size=(3, 4)).astype("float32") for _ in range(3)]
    out = cls()(xs)
    assert out.shape == (3, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), reference(xs), rtol=1e-6)
    layer = cls(dtype="float64")
    gradcheck(lambda a, b, c: layer([a, b, c]), *[x.astype("float64") for x in xs])


def test_subtract_takes_exactly_two_inputs():
    a, b = R.normal(size=(2, 3)), R.normal(size=(2, 3))
    np.testing.assert_allclose(Subtract(dtype="float64")([a, b]).numpy(), a - b)
    gradcheck(lambda x, y: Subtract(dtype="float64")([x, y]), a, b)
    with pytest.raises(ValueError, match="exactly 2 inputs"):
        Subtract()([a, b, a])


def test_elementwise_broadcasting_follows_keras():
    a = R.normal(size=(2, 3, 4))
    b = R.normal(size=(2, 1, 4))
    np.testing.assert_allclose(Add(dtype="float64")([a, b]).numpy(), a + b)
    # A lower-rank input gets size-1 axes after the batch axis: (2, 4) -> (2, 1, 4).
    c = R.normal(size=(2, 4))
    np.testing.assert_allclose(Add(dtype="float64")([a, c]).numpy(), a + c[:, None, :])
    assert Add().compute_output_shape([(None, 3, 4), (None, 1, 4)]) == (None, 3, 4)


def test_shape_errors_name_layer_and_all_shapes():
    layer = Add(name="add_probe")
    with pytest.raises(ValueError) as info:
        layer([np.ones((2, 3), "float32"), np.ones((2, 5), "float32")])
    message = str(info.value)
    assert "add_probe" in message and "(2, 3)" in message and "(2, 5)" in message
    with pytest.raises(ValueError, match="different batch sizes"):
        Multiply()([np.ones((2, 3), "float32"), np.ones((4, 3), "float32")])
    with pytest.raises(ValueError, match="list of inputs"):
        Add()(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError, match=r"Received shapes \[\(2, 3\), \(2, 4\)\]"):
        Add().build([(2, 3), (2, 4)])


def test_concatenate_values_gradients_and_errors():
    a, b = R.normal(size=(2, 3, 4)), R.normal(size=(2, 3, 2))
    out = Concatenate(dtype="float64")([a, b])
    np.testing.assert_array_equal(out.numpy(), np.concatenate([a, b], axis=-1))
    gradcheck(lambda x, y: Concatenate(dtype="float64")([x, y]), a, b)
    c = R.normal(size=(2, 1, 4))
    np.testing.assert_array_equal(
        Concatenate(axis=1, dtype="float64")([a, c]).numpy(), np.concatenate([a, c], axis=1)
    )
    assert Concatenate(axis=1).compute_output_shape([(None, 3, 4), (None, 1, 4)]) == (
        None,
        4,
        4,
    )
    layer = Concatenate(name="cat_probe")
    with pytest.raises(ValueError) as info:
        layer([a, c])
    message = str(info.value)
    assert "cat_probe" in message and "(2, 3, 4)" in message and "(2, 1, 4)" in message
    with pytest.raises(ValueError, match="same rank"):
        Concatenate()([a, R.normal(size=(2, 4))])


@pytest.mark.parametrize(
    "shapes, axes, spec",
    [
        ([(3, 4), (3, 4)], 1, "bi,bi->b"),
        ([(3, 5, 4), (3, 6, 4)], (2, 2), "bik,bjk->bij"),
        ([(3, 4, 5), (3, 4, 6)], 1, "bki,bkj->bij"),
        ([(3, 4), (3, 4, 6)], (1, 1), "bk,bkj->bj"),
        ([(3, 5, 4), (3, 4)], (2, 1), "bik,bk->bi"),
        ([(2, 3, 4, 5), (2, 5, 6)], (-1, 1), "bijk,bkl->bijl"),
    ],
)
def test_dot_matches_batch_dot(shapes, axes, spec):
    a, b = (R.normal(size=s) for s in shapes)
    layer = Dot(axes=axes, dtype="float64")
    out = layer([a, b]).numpy()
    expected = np.einsum(spec, a, b)
    if expected.ndim == 1:
        expected = expected[:, None]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    none_shapes = [(None, *s[1:]) for s in shapes]
    assert layer.compute_output_shape(none_shapes) == (None, *expected.shape[1:])
    gradcheck(lambda x, y: Dot(axes=axes, dtype="float64")([x, y]), a, b)


def test_dot_normalize_gives_cosine_similarity_and_errors():
    a, b = R.normal(size=(4, 3)), R.normal(size=(4, 3))
    out = Dot(axes=1, normalize=True, dtype="float64")([a, b]).numpy()
    cosine = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(out[:, 0], cosine, rtol=1e-12)
    gradcheck(lambda x, y: Dot(axes=1, normalize=True, dtype="float64")([x, y]), a, b)
    zero = Dot(axes=1, normalize=True)([np.zeros((1, 3), "float32"), np.ones((1, 3), "float32")])
    assert np.all(np.isfinite(zero.numpy()))
    layer = Dot(axes=1, name="dot_probe")
    with pytest.raises(ValueError) as info:
        layer([np.ones((2, 3), "float32"), np.ones((2, 4), "float32")])
    assert "dot_probe" in str(info.value) and "3" in str(info.value) and "(2, 4)" in str(info.value)
    with pytest.raises(ValueError, match="batch axis"):
        Dot(axes=0)([a, b])
    with pytest.raises(TypeError, match="axes"):
        Dot(axes="last")
    with pytest.raises(ValueError, match="two"):
        Dot(axes=(1, 2, 3))
    with pytest.raises(ValueError, match="exactly 2"):
        Dot(axes=1)([a, b, a])


def test_functional_aliases():
    a, b = R.normal(size=(2, 3)).astype("float32"), R.normal(size=(2, 3)).astype("float32")
    np.testing.assert_allclose(merging.add([a, b]).numpy(), a + b)
    np.testing.assert_allclose(merging.subtract([a, b]).numpy(), a - b)
    np.testing.assert_allclose(merging.multiply([a, b]).numpy(), a * b)
    np.testing.assert_allclose(merging.average([a, b]).numpy(), (a + b) / 2, rtol=1e-6)
    np.testing.assert_allclose(merging.maximum([a, b]).numpy(), np.maximum(a, b))
    np.testing.assert_allclose(merging.minimum([a, b]).numpy(), np.minimum(a, b))
    np.testing.assert_allclose(
        merging.concatenate([a, b], axis=0).numpy(), np.concatenate([a, b], axis=0)
    )
    np.testing.assert_allclose(
        merging.dot([a, b], axes=1).numpy(), np.sum(a * b, 1, keepdims=True), rtol=1e-6
    )
    assert merging.add([a, b], name="named_add").shape == (2, 3)


def masked(array, mask):
    t = Tensor(array)
    t._keras_mask = Tensor(np.asarray(mask))
    return t


def test_masks_are_combined_like_keras():
    a = masked(np.ones((2, 3, 4), "float32"), [[True, True, False], [True, False, False]])
    b = masked(np.ones((2, 3, 4), "float32"), [[True, False, False], [True, True, False]])
    out = Add()([a, b])
    np.testing.assert_array_equal(out._keras_mask.numpy(), [[1, 1, 0], [1, 1, 0]])
    # If one input has no mask, the element-wise layers drop the mask.
    plain = Tensor(np.ones((2, 3, 4), "float32"))
    assert Add()([a, plain])._keras_mask is None
    # Concatenate along the features keeps the time mask; an unmasked input counts as True.
    cat = Concatenate()([a, plain])
    np.testing.assert_array_equal(cat._keras_mask.numpy(), np.ones((2, 3), bool))
    cat = Concatenate()([a, b])
    np.testing.assert_array_equal(cat._keras_mask.numpy(), [[1, 1, 0], [1, 1, 0]])
    # Along time, the masks are joined.
    joined = Concatenate(axis=1)([a, b])
    np.testing.assert_array_equal(
        joined._keras_mask.numpy(), [[1, 1, 0, 1, 0, 0], [1, 0, 0, 1, 1, 0]]
    )
    assert Dot(axes=2)([a, b])._keras_mask is None


@pytest.mark.parametrize(
    "layer",
    [
        Add(name="m_add"),
        Subtract(),
        Multiply(),
        Average(),
        Maximum(),
        Minimum(),
        Concatenate(axis=1),
        Dot(axes=(1, 2), normalize=True),
    ],
)
def test_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
