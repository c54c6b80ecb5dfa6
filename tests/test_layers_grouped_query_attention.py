"""GroupQueryAttention (Keras 3's GroupQueryAttention): the same outputs and attention
scores as Keras 3 on the same weights (masks, causal, sliding window, gate, key/value head
sharing), Keras' weight layouts in .keras files both ways, gradients by finite differences,
training, and its errors."""

from __future__ import annotations

import numpy as np
import pytest

import dendrite as keras
from dendrite.layers.grouped_query_attention import GroupedQueryAttention, GroupQueryAttention
from dendrite.testing.keras_side import run_keras_side

RNG = np.random.default_rng(0)
# (id, constructor arguments, call arguments)
CASES = [
    ("plain", {"head_dim": 3, "num_query_heads": 4, "num_key_value_heads": 2}, {}),
    (
        "mqa-causal",
        {"head_dim": 2, "num_query_heads": 3, "num_key_value_heads": 1},
        {"use_causal_mask": True},
    ),
    (
        "gate-window",
        {
            "head_dim": 2,
            "num_query_heads": 4,
            "num_key_value_heads": 4,
            "use_gate": True,
            "sliding_window": 2,
        },
        {"use_causal_mask": True},
    ),
    (
        "no-bias-masked",
        {"head_dim": 3, "num_query_heads": 2, "num_key_value_heads": 1, "use_bias": False},
        {"attention_mask": True},
    ),
]


def _data(case: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(abs(hash(case)) % 1000)
    data = {
        "query": rng.standard_normal((2, 5, 6)).astype("float32"),
        "value": rng.standard_normal((2, 4, 6)).astype("float32"),
        "key": rng.standard_normal((2, 4, 3)).astype("float32"),
    }
    mask = rng.random((2, 5, 4)) < 0.7
    mask[:, :, 0] = True  # no row fully masked (Keras' backends differ there)
    data["mask"] = mask
    return data


def test_same_outputs_and_scores_as_keras(tmp_path):
    for name, kwargs, call in CASES:
        data = _data(name)
        for key, array in data.items():
            np.save(tmp_path / f"{name}.{key}.npy", array)
        layer = GroupQueryAttention(**kwargs)
        self_attention = name.startswith("mqa")
        args = (
            (data["query"], data["query"])
            if self_attention
            else (data["query"], data["value"], data["key"])
        )
        extra = {k: v for k, v in call.items() if k != "attention_mask"}
        if call.get("attention_mask"):
            extra["attention_mask"] = data["mask"]
        out, scores = layer(*args, return_attention_scores=True, **extra)
        for i, w in enumerate(layer.get_weights()):
            np.save(tmp_path / f"{name}.w{i}.npy", w)
        (tmp_path / f"{name}.n").write_text(str(len(layer.get_weights())))
        np.save(tmp_path / f"{name}.out.npy", out.data)
        np.save(tmp_path / f"{name}.scores.npy", scores.data)
    cases = [(name, kwargs, call) for name, kwargs, call in CASES]
    run_keras_side(
        f"""
import sys, pathlib, numpy as np, keras
root = pathlib.Path(sys.argv[1])
for name, kwargs, call in {cases!r}:
    load = lambda key: np.load(root / f"{{name}}.{{key}}.npy")
    layer = keras.layers.GroupQueryAttention(**kwargs)
    self_attention = name.startswith("mqa")
    args = (load("query"), load("query")) if self_attention else (
        load("query"), load("value"), load("key"))
    extra = {{k: v for k, v in call.items() if k != "attention_mask"}}
    if call.get("attention_mask"):
        extra["attention_mask"] = load("mask")
    layer(*args, **extra)
    count = int((root / f"{{name}}.n").read_text())
    layer.set_weights([np.load(root / f"{{name}}.w{{i}}.npy") for i in range(count)])
    out, scores = layer(*args, return_attention_scores=True, **extra)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), load("out"), atol=2e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scores), load("scores"), atol=2e-6)
""",
        tmp_path,
    )


def test_keras_files_both_ways(tmp_path):
    def build(k):  # noqa: ANN001, ANN202
        tokens = k.Input((5, 6))
        x = k.layers.GroupQueryAttention(
            head_dim=3, num_query_heads=4, num_key_value_heads=2, use_gate=True
        )(tokens, tokens, use_causal_mask=True)
        return k.Model(tokens, k.layers.Dense(2)(x))

    model = build(keras)
    x = RNG.standard_normal((3, 5, 6)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "ours.npy", model.predict(x, verbose=0))
    model.save(tmp_path / "ours.keras")
    run_keras_side(
        """
import sys, pathlib, numpy as np, keras
root = pathlib.Path(sys.argv[1])
x = np.load(root / "x.npy")
model = keras.models.load_model(root / "ours.keras")
np.testing.assert_allclose(model.predict(x, verbose=0), np.load(root / "ours.npy"), atol=2e-5)
tokens = keras.Input((5, 6))
y = keras.layers.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1,
                                     sliding_window=2)(tokens, tokens)
theirs = keras.Model(tokens, y)
np.save(root / "theirs.npy", theirs.predict(x, verbose=0))
theirs.save(root / "theirs.keras")
""",
        tmp_path,
    )
    loaded = keras.models.load_model(tmp_path / "theirs.keras")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), np.load(tmp_path / "theirs.npy"), atol=2e-5
    )


def test_gradients_by_finite_differences():
    from test_layers_recurrent import check_gradients

    layer = GroupQueryAttention(
        head_dim=2, num_query_heads=4, num_key_value_heads=2, use_gate=True, dtype="float64"
    )
    q, v = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 4, 4))
    mask = RNG.random((2, 3, 4)) > 0.2
    layer(q, v)
    check_gradients(lambda q, v: layer(q, v, attention_mask=mask), layer, [q, v])


def test_training_lowers_the_loss_and_dendrite_files_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 4))
    x = GroupQueryAttention(head_dim=4, num_query_heads=2, num_key_value_heads=1)(inputs, inputs)
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(x)))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    data = RNG.standard_normal((64, 6, 4)).astype("float32")
    target = data.sum(axis=(1, 2))[:, None]
    history = model.fit(data, target, epochs=40, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    model.save(tmp_path / "gqa.dendrite")
    loaded = keras.models.load_model(tmp_path / "gqa.dendrite")
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))


def test_errors_and_names():
    assert GroupedQueryAttention is GroupQueryAttention  # Keras' source name, and its public one
    with pytest.raises(ValueError, match="divisible by `num_key_value_heads`"):
        GroupQueryAttention(head_dim=2, num_query_heads=3, num_key_value_heads=2)
    with pytest.raises(ValueError, match="sliding_window"):
        GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1, sliding_window=0)
    layer = GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1)
    with pytest.raises(ValueError, match=r"expected `query` of rank 3.*\(2, 3\)"):
        layer(np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32"))
    layer(np.zeros((1, 3, 4), "float32"), np.zeros((1, 2, 4), "float32"))
    with pytest.raises(ValueError, match="built for `query` with 4 features"):
        layer(np.zeros((1, 3, 5), "float32"), np.zeros((1, 2, 4), "float32"))
