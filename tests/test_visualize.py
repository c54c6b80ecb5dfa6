"""plot_model / model_to_dot (utils.model_visualization): the graph read from any model by duck
typing, DOT text with Keras' options, and a picture from Graphviz or matplotlib."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import dendrite as tf
from dendrite.utils import model_visualization as visualize


def _branching():
    inputs = tf.keras.Input((8,), name="features")
    a = tf.keras.layers.Dense(4, activation="relu", name="left")(inputs)
    b = tf.keras.layers.Dense(4, name="right")(inputs)
    out = tf.keras.layers.Add(name="join")([a, b])
    return tf.keras.Model(inputs, out)


def test_graph_of_a_functional_model():
    nodes, edges = visualize.layer_graph(_branching())
    assert [n["id"] for n in nodes] == ["features", "left", "right", "join"]
    assert set(edges) == {
        ("features", "left"),
        ("features", "right"),
        ("left", "join"),
        ("right", "join"),
    }
    join = nodes[-1]
    assert join["input_shape"] == [(None, 4), (None, 4)] and join["output_shape"] == (None, 4)


def test_dot_text_with_keras_options():
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(3, activation="relu", input_shape=(5,), name="d1"),
            tf.keras.layers.Dense(2, name="d2"),
        ]
    )
    model.layers[1].trainable = False
    text = visualize.model_to_dot(
        model,
        show_shapes=True,
        show_dtype=True,
        show_layer_activations=True,
        show_trainable=True,
        rankdir="LR",
    ).to_string()
    assert "rankdir=LR;" in text
    assert '"d1" -> "d2";' in text
    assert (
        "d1 (Dense)\\nactivation: relu\\ndtype: float32\\ninput: (None, 5)\\noutput: (None, 3)"
        in text
    )
    assert "frozen" in text
    no_names = visualize.model_to_dot(model, show_layer_names=False).to_string()
    assert "d1 (Dense)" not in no_names and 'label="Dense"' in no_names
    with pytest.raises(ValueError, match="rankdir"):
        visualize.model_to_dot(model, rankdir="BT")


def test_subclassed_model_is_drawn_as_a_chain():
    class Net(tf.keras.Model):
        def __init__(self):
            super().__init__()
            self.a = tf.keras.layers.Dense(3)
            self.b = tf.keras.layers.Dense(1)

        def call(self, x):
            return self.b(self.a(x))

    net = Net()
    net(np.zeros((1, 2), "float32"))
    nodes, edges = visualize.layer_graph(net)
    assert len(nodes) == 2 and edges == [(nodes[0]["id"], nodes[1]["id"])]


def test_expand_nested():
    inner = tf.keras.Sequential(
        [
            tf.keras.layers.Dense(4, input_shape=(8,), name="i1"),
            tf.keras.layers.Dense(4, name="i2"),
        ],
        name="block",
    )
    inputs = tf.keras.Input((8,), name="x")
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1, name="head")(inner(inputs)))
    flat_ids = [n["id"] for n in visualize.layer_graph(model)[0]]
    assert "block" in flat_ids
    nodes, edges = visualize.layer_graph(model, expand_nested=True)
    ids = [n["id"] for n in nodes]
    assert "block/i1" in ids and "block/i2" in ids and "block" not in ids
    assert ("block/i1", "block/i2") in edges and ("block/i2", "head") in edges


@pytest.mark.parametrize("renderer", ["matplotlib", "graphviz"])
def test_plot_model_writes_a_png(tmp_path, renderer):
    if renderer == "graphviz" and shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    if renderer == "matplotlib":
        pytest.importorskip("matplotlib")
    path = visualize.plot_model(
        _branching(), tmp_path / "m.png", show_shapes=True, dpi=60, renderer=renderer
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_model_dot_file_needs_no_renderer(tmp_path):
    path = visualize.plot_model(_branching(), tmp_path / "m.dot")
    assert path.read_text().startswith("digraph G {")
