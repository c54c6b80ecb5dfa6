"""``losses.CTC`` and ``losses.ctc`` (Keras 3's), and ``ops.ctc_loss`` / ``ops.ctc_decode``
against Keras 3 itself (in a subprocess, PyTorch backend, on the same arrays); the loss by
name and config, in a model that trains, and in a ``.keras`` file both frameworks load."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

import dendrite as tf
from dendrite.testing.keras_side import run_keras_side

L = tf.keras.losses
ops = tf.ops

T, FEATURES, CLASSES = 8, 4, 4


def _arrays() -> dict:
    rng = np.random.default_rng(0)
    labels = rng.integers(1, 5, (6, 3))
    labels[0] = [2, 2, 2]  # repeats: a blank between each
    labels[1, 2] = 0  # padding: two labels
    labels[2] = 0  # an empty target
    labels[3, 1:] = 0
    masked = labels.copy()  # the same labels for blank 2 (which none of them may use)
    masked[masked == 2] = 5
    return {
        "logits": (rng.standard_normal((6, 7, 6)) * 2).astype("float32"),
        "labels": labels,
        "masked": masked,
        "label_lengths": np.array([3, 2, 0, 1, 3, 3]),
        "logit_lengths": np.array([7, 7, 5, 1, 6, 4]),
        "decode_lengths": np.array([7, 7, 5, 1, 6, 0]),
        "weights": rng.random(6).astype("float32"),
    }


DECODES = {
    "greedy": {},
    "greedy_no_merge": {"merge_repeated": False},
    "greedy_blank_2": {"mask_index": 2},
    "beam": {"strategy": "beam_search", "beam_width": 4, "top_paths": 2},
    "beam_wide": {"strategy": "beam_search", "beam_width": 30, "top_paths": 3, "mask_index": 3},
}
REDUCTIONS = ["sum_over_batch_size", "sum", None, "mean_with_sample_weight"]

KERAS_SIDE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    root = sys.argv[1]
    a = dict(np.load(root + "/arrays.npz", allow_pickle=False))
    decodes = json.loads(open(root + "/decodes.json").read())
    z, y = a["logits"], a["labels"]
    out = {"ctc": np.asarray(keras.losses.ctc(y, z)).tolist()}
    for reduction in json.loads(open(root + "/reductions.json").read()):
        loss = keras.losses.CTC(reduction=reduction)
        out[f"CTC {reduction}"] = np.asarray(loss(y, z, sample_weight=a["weights"])).tolist()
    out["config"] = keras.losses.CTC(name="mine").get_config()
    with_lengths = lambda labels, blank: keras.ops.ctc_loss(
        labels, z, a["label_lengths"], a["logit_lengths"], mask_index=blank
    )
    out["ops blank 0"] = np.asarray(with_lengths(y, 0)).tolist()
    out["ops blank 2"] = np.asarray(with_lengths(a["masked"], 2)).tolist()
    for name, kwargs in decodes.items():
        decoded, scores = keras.ops.ctc_decode(z, a["decode_lengths"], **kwargs)
        out[name] = [np.asarray(decoded).tolist(), np.asarray(scores).tolist()]
    model = keras.models.load_model(root + "/model.keras")
    out["model"] = [type(model.loss).__name__, model.evaluate(a["x"], a["y"], verbose=0)]
    json.dump(out, open(root + "/keras.json", "w"))
    """
)


def _model() -> tf.keras.Model:
    return tf.keras.Sequential(
        [
            tf.keras.Input((T, FEATURES)),
            tf.keras.layers.Dense(16, activation="tanh"),
            tf.keras.layers.Dense(CLASSES),
        ]
    )


def _toy_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Each sequence shows three labels (from 1 to 3) two frames each and then blanks, as
    noisy one-hot features; the targets are the labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, CLASSES, (n, 3))
    frames = np.concatenate([np.repeat(labels, 2, axis=1), np.zeros((n, T - 6), int)], 1)
    x = np.eye(FEATURES, dtype="float32")[frames]
    x += rng.normal(0, 0.2, x.shape).astype("float32")
    return x, labels


def test_against_keras(tmp_path: Path):
    pytest.importorskip("keras")
    arrays = _arrays()
    x, y = _toy_task(16, 1)
    tf.keras.utils.set_random_seed(2)
    model = _model()
    model.compile(optimizer="adam", loss=L.CTC())
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "arrays.npz", x=x, y=y, **arrays)
    (tmp_path / "decodes.json").write_text(json.dumps(DECODES))
    (tmp_path / "reductions.json").write_text(json.dumps(REDUCTIONS))
    run_keras_side(KERAS_SIDE, tmp_path)
    keras = json.loads((tmp_path / "keras.json").read_text())
    z, labels = arrays["logits"], arrays["labels"]
    close = {"rtol": 2e-5, "atol": 2e-5}
    np.testing.assert_allclose(L.ctc(labels, z).numpy(), keras["ctc"], **close)
    for reduction in REDUCTIONS:
        got = L.CTC(reduction=reduction)(labels, z, sample_weight=arrays["weights"])
        np.testing.assert_allclose(got.numpy(), keras[f"CTC {reduction}"], **close)
    assert L.CTC(name="mine").get_config() == {
        key: value for key, value in keras["config"].items() if key != "dtype"
    }
    lengths = arrays["label_lengths"], arrays["logit_lengths"]
    np.testing.assert_allclose(
        ops.ctc_loss(labels, z, *lengths).numpy(), keras["ops blank 0"], **close
    )
    np.testing.assert_allclose(
        ops.ctc_loss(arrays["masked"], z, *lengths, mask_index=2).numpy(),
        keras["ops blank 2"],
        **close,
    )
    for name, kwargs in DECODES.items():
        decoded, scores = ops.ctc_decode(z, arrays["decode_lengths"], **kwargs)
        want_decoded, want_scores = keras[name]
        # Keras' beam search reads the first frame of a sample with no frames; here that
        # sample is the empty labelling with log-probability 0 (the last row).
        rows = slice(None, -1) if kwargs.get("strategy") == "beam_search" else slice(None)
        np.testing.assert_array_equal(
            decoded.numpy()[:, rows], np.asarray(want_decoded)[:, rows], err_msg=name
        )
        np.testing.assert_allclose(scores.numpy()[rows], np.asarray(want_scores)[rows], **close)
    loss_name, keras_loss = keras["model"]
    assert loss_name == "CTC"
    assert model.evaluate(x, y, verbose=0) == pytest.approx(keras_loss, rel=1e-5)


def test_label_lengths_are_the_non_zero_counts_and_every_frame_is_used():
    arrays = _arrays()
    z, labels = arrays["logits"], arrays["labels"]
    counts = (labels != 0).sum(-1)
    np.testing.assert_array_equal(
        L.ctc(labels, z).numpy(), ops.ctc_loss(labels, z, counts, np.full(6, 7)).numpy()
    )
    loss = L.CTC()
    assert loss(labels, z).numpy() == pytest.approx(float(np.mean(L.ctc(labels, z).numpy())))
    assert L.CTC(reduction=None)(labels, z.astype("float64")).dtype == np.float32  # floatx
    float64 = L.CTC(reduction=None)(labels, tf.convert_to_tensor(z.astype("float64")))
    assert float64.dtype == np.float64  # a Tensor keeps its own float dtype


def test_errors_name_the_loss_and_the_shapes():
    z = np.zeros((2, 5, 4), "float32")
    with pytest.raises(ValueError, match=r"y_true .*\(batch_size, max_length\).*\(2, 3, 1\)"):
        L.ctc(np.ones((2, 3, 1), int), z)
    with pytest.raises(ValueError, match=r"y_pred .*num_classes\).*\(2, 5\)"):
        L.CTC()(np.ones((2, 3), int), z[..., 0])
    with pytest.raises(ValueError, match=r"same batch size.*\(3, 3\).*\(2, 5, 4\)"):
        L.ctc(np.ones((3, 3), int), z)
    with pytest.raises(ValueError, match=r"ctc_loss: target holds the label -1"):
        L.ctc(np.array([[1, -1, -1], [2, 3, -1]]), z)  # -1 is no padding: 0 is


def test_names_configs_and_registration():
    loss = L.CTC(reduction="sum", name="mine")
    config = loss.get_config()
    assert config == {"name": "mine", "reduction": "sum"}
    assert type(L.deserialize(L.serialize(loss))) is L.CTC
    assert L.CTC.from_config(config).get_config() == config
    assert L.get("ctc") is L.ctc and type(L.get("CTC")) is L.CTC
    assert tf.registry.get("op", "ctc_loss").__name__ == "CTCLoss"
    assert L.CTC().integer_targets and L.LossFunctionWrapper(L.ctc).integer_targets


@pytest.mark.parametrize("activation", ["softmax", "linear"])
def test_train_and_evaluate_report_the_same_loss(activation):
    """As tests/test_train_eval_agree.py checks for the losses of (batch, classes) outputs."""
    tf.utils.set_random_seed(3)
    x, y = _toy_task(12, 4)
    model = tf.Sequential([tf.Input((T, FEATURES)), tf.layers.Dense(CLASSES, activation)])
    model.compile(optimizer=tf.optimizers.SGD(learning_rate=0.0), loss=L.CTC())
    trained = model.train_on_batch(x * 30, y)
    tested = model.test_on_batch(x * 30, y)
    evaluated = model.evaluate(x * 30, y, batch_size=len(x), verbose=0)
    assert np.isfinite(trained)
    np.testing.assert_allclose([tested, evaluated], [trained, trained], rtol=1e-6)


def test_a_model_trains_and_decodes_and_survives_saving(tmp_path: Path):
    tf.keras.utils.set_random_seed(0)
    x, y = _toy_task(96, 0)
    model = tf.keras.Sequential(
        [
            tf.keras.Input((T, FEATURES)),
            tf.keras.layers.LSTM(16, return_sequences=True),
            tf.keras.layers.Dense(CLASSES),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(0.03), loss=L.CTC())
    history = model.fit(x, y, epochs=12, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    decoded, _ = ops.ctc_decode(model.predict(x, verbose=0), np.full(len(x), T))
    assert np.mean(np.all(decoded.numpy()[0, :, :3] == y, axis=1)) > 0.5
    path = tmp_path / "ctc.keras"
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    assert type(loaded.loss) is L.CTC
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0))
    loaded.fit(x, y, epochs=1, batch_size=32, verbose=0)  # the compiled loss still trains
    by_name = _model()
    by_name.compile(optimizer="adam", loss="ctc")  # the function, by name
    assert np.isfinite(by_name.evaluate(x, y, verbose=0))
