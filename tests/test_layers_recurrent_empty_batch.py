"""A batch of no samples through the recurrent layers: empty outputs of the right shapes,
and weight gradients of zeros (a sum over no samples), with and without the C kernels, as
Keras and PyTorch give."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as tf
from dendrite import _native

CELLS = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}  # gates per unit


@pytest.fixture(params=[pytest.param("kernels", marks=pytest.mark.needs_kernels), "numpy"])
def path(request, monkeypatch):
    if request.param == "numpy":
        monkeypatch.setattr(_native, "kernels", None)
    return request.param


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_no_samples_give_empty_outputs_and_zero_weight_gradients(
    path, cell, return_sequences, go_backwards
):
    layer = getattr(tf.keras.layers, cell)(
        4, return_sequences=return_sequences, go_backwards=go_backwards
    )
    x = tf.Variable(np.zeros((0, 5, 3), dtype="float32"))
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.keras.ops.sum(y)
    gradients = tape.gradient(loss, [x, *layer.trainable_weights])
    assert tuple(y.shape) == ((0, 5, 4) if return_sequences else (0, 4))
    assert np.asarray(y).dtype == np.float32
    assert tuple(gradients[0].shape) == (0, 5, 3)
    for weight, gradient in zip(layer.trainable_weights, gradients[1:]):
        assert tuple(gradient.shape) == tuple(weight.shape)
        assert not np.asarray(gradient).any()


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_no_samples_with_a_mask_and_the_states(path, cell):
    layer = getattr(tf.keras.layers, cell)(4, return_sequences=True, return_state=True)
    x = np.zeros((0, 5, 3), dtype="float32")
    mask = np.zeros((0, 5), dtype=bool)
    outputs = layer(x, mask=mask)
    assert tuple(outputs[0].shape) == (0, 5, 4)
    for state in outputs[1:]:
        assert tuple(state.shape) == (0, 4)


def test_a_model_predicts_nothing_for_no_samples(path):
    model = tf.keras.Sequential(
        [tf.keras.Input(shape=(5, 3)), tf.keras.layers.LSTM(4), tf.keras.layers.Dense(2)]
    )
    assert model(np.zeros((0, 5, 3), dtype="float32")).shape == (0, 2)
