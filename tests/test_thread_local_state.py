"""Process-global state that a web server would trip over: grad mode and the layer call
context are per thread (as PyTorch's grad mode), and importing dendrite leaves the host
program's allocator alone (mallopt only when training starts)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np

import dendrite as tf
from dendrite.core import Tensor, is_grad_enabled, no_grad


def _in_thread(function):
    found = {}

    def run():
        found["value"] = function()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return found["value"]


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    inside = threading.Event()
    release = threading.Event()

    def inference():
        with no_grad():
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=inference)
    worker.start()
    inside.wait(5)
    try:
        assert is_grad_enabled()
        w = Tensor(np.ones(3), requires_grad=True)
        (w * 2.0).sum().backward()
        np.testing.assert_array_equal(w.grad, [2.0, 2.0, 2.0])
    finally:
        release.set()
        worker.join()


def test_a_new_thread_records_even_when_its_creator_is_under_no_grad():
    with no_grad():
        assert _in_thread(is_grad_enabled) is True
        assert not is_grad_enabled()


def test_the_training_flag_of_one_thread_is_not_seen_by_another():
    seen = {}
    entered = threading.Event()
    release = threading.Event()

    class Probe(tf.layers.Layer):
        def call(self, inputs, training=None):
            seen.setdefault(threading.current_thread().name, []).append(training)
            if threading.current_thread().name == "trainer":
                entered.set()
                release.wait(5)
            return inputs

    probe = Probe()
    outer = tf.Sequential([tf.Input((2,)), probe])
    trainer = threading.Thread(
        target=lambda: outer(np.ones((1, 2), "float32"), training=True), name="trainer"
    )
    trainer.start()
    entered.wait(5)
    try:
        probe(np.ones((1, 2), "float32"))  # an outermost call here: training stays None
    finally:
        release.set()
        trainer.join()
    assert seen["trainer"] == [True]
    assert seen[threading.current_thread().name][-1] is None


def test_importing_dendrite_leaves_the_allocator_alone():
    code = (
        "import dendrite, numpy as np\n"
        "from dendrite import _settings\n"
        "assert _settings._KEEPS_FREED_MEMORY is None, 'mallopt ran at import'\n"
        "m = dendrite.Sequential([dendrite.Input((2,)), dendrite.layers.Dense(1)])\n"
        "m.compile(optimizer='sgd', loss='mse')\n"
        "m.predict(np.ones((2, 2), 'float32'), verbose=0)\n"
        "assert _settings._KEEPS_FREED_MEMORY is None, 'mallopt ran for predict'\n"
        "m.fit(np.ones((2, 2), 'float32'), np.ones((2, 1), 'float32'), verbose=0)\n"
        "assert _settings._KEEPS_FREED_MEMORY is not None, 'fit did not ask for it'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _seeded_model():
    tf.utils.set_random_seed(5)
    model = tf.Sequential(
        [tf.Input((6,)), tf.layers.Dense(16, activation="relu"), tf.layers.Dense(3)]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def test_concurrent_predicts_are_bit_identical_to_serial_ones():
    model = _seeded_model()
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((8, 6)).astype("float32") for _ in range(4)]
    expected = [model.predict(b, verbose=0) for b in batches]
    wrong = []

    def worker(index):
        for _ in range(250):
            got = model.predict(batches[index], verbose=0)
            if not np.array_equal(got, expected[index]):
                wrong.append(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert is_grad_enabled()  # no thread left recording switched off


def test_fit_beside_predict_trains_to_the_weights_of_fit_alone():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 6)).astype("float32")
    y = rng.standard_normal((64, 3)).astype("float32")
    alone = _seeded_model()
    tf.utils.set_random_seed(9)
    alone.fit(x, y, epochs=25, batch_size=8, verbose=0)  # 200 steps
    other = _seeded_model()
    beside = _seeded_model()
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            other.predict(x[:8], verbose=0)

    server = threading.Thread(target=serve)
    server.start()
    try:
        tf.utils.set_random_seed(9)
        beside.fit(x, y, epochs=25, batch_size=8, verbose=0)
    finally:
        stop.set()
        server.join()
    for a, b in zip(alone.get_weights(), beside.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_models_built_in_threads_get_distinct_names():
    names = []

    def build():
        for _ in range(100):
            names.append(tf.layers.Dense(1).name)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(names) == len(set(names)) == 400


def test_load_model_beside_a_thread_building_models(tmp_path):
    saved = _seeded_model()
    path = tmp_path / "m.dendrite"
    saved.save(path)
    x = np.ones((2, 6), "float32")
    expected = saved.predict(x, verbose=0)
    stop = threading.Event()
    errors = []

    def build():
        try:
            while not stop.is_set():
                tf.Sequential([tf.Input((4,)), tf.layers.Dense(2), tf.layers.Dense(1)])
                # A pure-Python loop holding the GIL would starve the loader's file reads
                # (each syscall hands the GIL over for a whole switch interval).
                time.sleep(0.0005)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    builder = threading.Thread(target=build)
    builder.start()
    try:
        for _ in range(200):
            loaded = tf.models.load_model(path)
            assert np.array_equal(loaded.predict(x, verbose=0), expected)
    finally:
        stop.set()
        builder.join()
    assert errors == []


def test_a_model_served_from_a_threaded_web_server_answers_right():
    """The issue's case: a model behind ``http.server.ThreadingHTTPServer`` (a thread per
    request), 200 requests from 8 client threads at once, each answer equal to predict's."""
    import json
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    model = _seeded_model()
    rng = np.random.default_rng(3)
    requests = [rng.standard_normal((1 + i % 5, 6)).astype("float32") for i in range(200)]
    expected = [model.predict(r, verbose=0) for r in requests]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            x = np.asarray(json.loads(body), dtype="float32")
            answer = json.dumps(model.predict(x, verbose=0).tolist()).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    def ask(x):
        data = json.dumps(x.tolist()).encode()
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=60) as r:
            return np.asarray(json.loads(r.read()), dtype="float32")

    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, requests))
    finally:
        server.shutdown()
        server.server_close()
    for got, want in zip(answers, expected):
        np.testing.assert_array_equal(got, want)
    assert is_grad_enabled()
