"""Top-level Keras 3 names (Loss, Metric, dtype policies, name_scope, tree, preprocessing),
custom Loss/Metric subclasses in fit/evaluate and through save/load, SwapEMAWeights with
Adam(use_ema=True), RemoteMonitor against a local http.server, get_source_inputs."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse

import numpy as np
import pytest

import dendrite as keras


@keras.saving.register_keras_serializable(package="gaps")
class ScaledMSE(keras.Loss):
    def __init__(self, scale=2.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="gaps")
class MaxAbsError(keras.Metric):
    def __init__(self, name="max_abs_error", **kwargs):
        super().__init__(name=name, **kwargs)
        self.peak = self.add_variable(shape=(), initializer="zeros", name="peak")

    def update_state(self, y_true, y_pred, sample_weight=None):
        err = np.max(np.abs(np.asarray(y_true) - keras.ops.convert_to_numpy(y_pred)))
        self.peak.assign(max(float(keras.ops.convert_to_numpy(self.peak)), float(err)))

    def result(self):
        return self.peak


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], "float32")).astype("float32")


def _model(optimizer="sgd", loss=None, metrics=None):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss=loss or ScaledMSE(), metrics=metrics or [])
    return model


def test_top_level_names_are_the_classes() -> None:
    assert keras.Loss is keras.losses.Loss and keras.Metric is keras.metrics.Metric
    assert keras.Optimizer is keras.optimizers.Optimizer
    assert keras.Initializer is keras.initializers.Initializer
    assert keras.Regularizer is keras.regularizers.Regularizer
    assert keras.InputSpec is keras.layers.InputSpec
    assert issubclass(keras.FloatDTypePolicy, keras.DTypePolicy)
    from dendrite.keras.preprocessing.sequence import pad_sequences

    assert pad_sequences is keras.utils.pad_sequences
    assert keras.preprocessing.image.load_img is keras.utils.load_img
    import dendrite.keras.tree as tree

    assert tree is keras.tree


def test_dtype_policies_round_trip_and_errors() -> None:
    dp = keras.dtype_policies
    policy = dp.get("float64")
    assert policy.compute_dtype == policy.variable_dtype == "float64"
    config = dp.serialize(keras.FloatDTypePolicy("float32"))
    assert config["class_name"] == "FloatDTypePolicy" and config["config"] == {"name": "float32"}
    back = dp.deserialize(config)
    assert type(back) is keras.FloatDTypePolicy and back.name == "float32"
    assert dp.get(config) == back and dp.get(back) is back
    with pytest.raises(ValueError, match="mixed precision"):
        dp.get("mixed_float16")
    with pytest.raises(ValueError, match="Unknown dtype policy class"):
        dp.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="Cannot interpret"):
        dp.get(3)


def test_name_scope_stacks_and_checks_names() -> None:
    from dendrite.utils.name_scope import current_path

    owner = object()
    with keras.name_scope("a"):
        with keras.name_scope("b", caller=owner):
            with keras.name_scope("b", caller=owner):  # deduplicated
                assert current_path() == "a/b"
            with keras.name_scope("c", override_parent="/x/y"):
                assert current_path() == "x/y/c"
        layer = keras.layers.Dense(2)
        layer.build((None, 3))  # harmless: dendrite's variable paths ignore scopes
        assert layer.kernel.path.startswith(layer.name)
    assert current_path() == ""
    with pytest.raises(ValueError, match="cannot contain character `/`"):
        keras.name_scope("a/b")


def test_custom_loss_and_metric_train_and_survive_save_load(tmp_path) -> None:
    x, y = _data()
    model = _model(loss=ScaledMSE(scale=3.0), metrics=[MaxAbsError()])
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)
    assert np.isclose(logs["max_abs_error"], np.max(np.abs(y - pred)), rtol=1e-5)
    assert np.isclose(logs["loss"], 3.0 * np.mean((y - pred) ** 2), rtol=1e-4)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.loss, ScaledMSE) and loaded.loss.scale == 3.0
    again = loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert np.isclose(again["loss"], logs["loss"], rtol=1e-5)
    metric = MaxAbsError()
    metric.update_state(np.zeros(3), np.array([1.0, -4.0, 2.0]))
    assert float(keras.ops.convert_to_numpy(metric.result())) == 4.0
    metric.reset_state()
    assert float(keras.ops.convert_to_numpy(metric.result())) == 0.0


def test_new_losses_and_metrics_compile_by_name_and_config() -> None:
    x, y = _data()
    model = _model(metrics=["pearson_correlation", keras.metrics.ConcordanceCorrelation()])
    logs = model.fit(x, y, epochs=1, batch_size=64, verbose=0).history
    assert {"pearson_correlation", "concordance_correlation"} <= set(logs)
    for name in ("Circle", "CategoricalGeneralizedCrossEntropy"):
        loss = keras.losses.get(name)
        rebuilt = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(rebuilt) is type(loss) and rebuilt.get_config() == loss.get_config()
    with pytest.raises(ValueError, match=r"q must be in the interval \(0, 1\)"):
        keras.losses.CategoricalGeneralizedCrossEntropy(q=1.0)
    with pytest.raises(ValueError, match="labels must be in"):
        keras.losses.categorical_generalized_cross_entropy(np.array([3]), np.ones((1, 2)), q=0.5)


def test_circle_trains_with_finite_gradients_when_a_class_is_alone() -> None:
    rng = np.random.default_rng(2)
    emb = rng.standard_normal((6, 4))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    variable = keras.Variable(emb.astype("float64"))
    loss = keras.losses.Circle()(np.array([0, 0, 1, 1, 2, 3]), variable)
    loss.backward()
    assert np.all(np.isfinite(variable.grad)) and np.any(variable.grad != 0)


def test_swap_ema_weights_evaluates_with_the_averages() -> None:
    x, y = _data()
    seen: dict = {}

    class Spy(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            seen["during"] = self.model.layers[0].kernel.numpy().copy()

    model = _model(optimizer=keras.optimizers.Adam(0.05, use_ema=True, ema_momentum=0.9))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)  # ends on the averages
    for _ in range(3):  # steps outside fit: the raw weights move away from the averages
        model.train_on_batch(x[:16], y[:16])
    opt = model.optimizer
    raw = model.layers[0].kernel.numpy().copy()
    average = opt._averages[0].numpy().copy()
    assert not np.allclose(raw, average)
    model.evaluate(x, y, verbose=0, callbacks=[keras.callbacks.SwapEMAWeights(), Spy()])
    np.testing.assert_array_equal(seen["during"], average)
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), raw)  # swapped back
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[swap])
    # fit ends on the averages, which still hold their own values after the swaps
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), opt._averages[0].numpy())
    plain = _model(optimizer="adam")
    plain.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="use_ema=True"):
        plain.evaluate(x, y, verbose=0, callbacks=[keras.callbacks.SwapEMAWeights()])


@pytest.fixture()
def collector():
    received: list = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                (self.path, self.headers["Content-Type"], self.headers.get("X-T"), body)
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()
    httpd.server_close()


def test_remote_monitor_posts_json_and_forms(collector) -> None:
    root, received = collector
    x, y = _data()
    model = _model()
    monitor = keras.callbacks.RemoteMonitor(root=root, send_as_json=True, headers={"X-T": "1"})
    model.fit(x, y, epochs=2, verbose=0, callbacks=[monitor])
    assert [r[0] for r in received] == ["/publish/epoch/end/"] * 2
    path, ctype, header, body = received[1]
    sent = json.loads(body)
    assert ctype == "application/json" and header == "1"
    assert sent["epoch"] == 1 and np.isclose(sent["loss"], model.history.history["loss"][1])
    form = keras.callbacks.RemoteMonitor(root=root, path="/p", field="payload")
    form.on_epoch_end(4, {"loss": np.float32(0.5), "acc": np.array([0.25])})
    _, ctype, _, body = received[-1]
    fields = urllib.parse.parse_qs(body.decode())
    assert ctype == "application/x-www-form-urlencoded"
    assert json.loads(fields["payload"][0]) == {"epoch": 4, "loss": 0.5, "acc": 0.25}


def test_remote_monitor_warns_when_unreachable() -> None:
    monitor = keras.callbacks.RemoteMonitor(root="http://127.0.0.1:9", timeout=2)
    with pytest.warns(UserWarning, match="Could not reach RemoteMonitor"):
        monitor.on_epoch_end(0, {"loss": 1.0})


def test_get_source_inputs_and_interactive_logging() -> None:
    a, b = keras.Input((3,)), keras.Input((3,))
    mid = keras.layers.Dense(2)(a)
    out = keras.layers.Concatenate()([mid, keras.layers.Dense(2)(b), mid])
    sources = keras.utils.get_source_inputs(out)
    assert len(sources) == 2 and sources[0] is a and sources[1] is b
    assert keras.utils.get_source_inputs(a) == [a]
    assert keras.utils.get_source_inputs(5) == 5
    try:
        keras.utils.disable_interactive_logging()
        assert not keras.utils.is_interactive_logging_enabled()
        assert not keras.config.is_interactive_logging_enabled()
    finally:
        keras.utils.enable_interactive_logging()
    assert keras.utils.is_interactive_logging_enabled()


def test_config_attribute_dict() -> None:
    cfg = keras.utils.Config(learning_rate=0.1)
    cfg.momentum = 0.9
    assert cfg["momentum"] == 0.9 and "momentum" in cfg and len(cfg) == 2
    with pytest.raises(AttributeError, match="Did you mean 'momentum'"):
        _ = cfg.momentun
    cfg.freeze()
    assert cfg.frozen
    for change in (
        lambda: cfg.update(a=1),
        lambda: cfg.pop("momentum"),
        lambda: cfg.__setitem__("a", 1),
    ):
        with pytest.raises(ValueError, match="frozen"):
            change()
    cfg.unfreeze()
    del cfg["momentum"]
    assert cfg.as_dict() == {"learning_rate": 0.1}
    with pytest.raises(AttributeError):
        cfg.freeze = 1
    with pytest.raises(TypeError):
        keras.utils.Config(f=object()).to_json()


def test_device_scope_runs_on_the_cpu_and_says_so_for_other_devices():
    """keras.device: a no-op on the CPU (as Keras' NumPy backend), a warning for an
    accelerator's name, a ValueError for a malformed one."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("cpu", "cpu:0", "CPU:1"):
            with keras.device(name):
                assert keras.ops.ones((2,)).shape == (2,)
    with pytest.warns(UserWarning, match=r"keras.device\('gpu:0'\): dendrite computes on the CPU"):
        with keras.device("gpu:0"):
            pass
    for bad in ("gpu 0", "cpu:x", 3, ""):
        with pytest.raises(ValueError, match="expected a string of the form"):
            with keras.device(bad):
                pass
