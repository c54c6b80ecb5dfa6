"""Keras 3's remaining ``keras.backend`` and ``keras.config`` names: the dtype helpers
(``result_type`` on Keras' promotion lattice, checked against Keras itself for every pair
of dtypes), ``get_uid``, the debugging caps on epochs and steps, and the flags."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import dendrite as keras

DTYPES = [
    "bool",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int8",
    "int16",
    "int32",
    "int64",
    "bfloat16",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
]


def _ours(a, b):
    named = {"int": int, "float": float}
    try:
        return keras.backend.result_type(named.get(a, a), named.get(b, b))
    except ValueError:
        return "error"


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras 3 not installed")
def test_result_type_is_keras_for_every_pair_of_dtypes_and_python_types():
    script = (
        "import itertools, json, sys, keras\n"
        "names = json.loads(sys.argv[1]) + ['int', 'float']\n"
        "named = {'int': int, 'float': float}\n"
        "out = {}\n"
        "for a, b in itertools.product(names, names):\n"
        "    try:\n"
        "        out[a + ',' + b] = keras.backend.result_type(named.get(a, a), named.get(b, b))\n"
        "    except ValueError:\n"
        "        out[a + ',' + b] = 'error'\n"
        "print(json.dumps(out))\n"
    )
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(DTYPES)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    names = DTYPES + ["int", "float"]
    differ = {
        f"{a},{b}": (_ours(a, b), theirs[f"{a},{b}"])
        for a, b in itertools.product(names, names)
        if _ours(a, b) != theirs[f"{a},{b}"]
    }
    assert not differ


def test_result_type_examples_and_errors():
    r = keras.backend.result_type
    assert r() == "float32" and r(None) == "float32"
    assert r("int8", int) == "int8"  # Python's int takes the other width
    assert r("uint8", "int8") == "int16"
    assert r("float16", "bfloat16") == "float32"
    assert r(int) == "int32" and r(float) == "float32"
    with pytest.raises(ValueError, match="float8"):
        r("float8_e4m3fn", "float32")
    with pytest.raises(ValueError, match="Invalid dtype"):
        r("float", "int8")


def test_dtype_predicates_standardize_and_keras_tensor():
    backend = keras.backend
    assert backend.is_float_dtype("bfloat16") and backend.is_float_dtype(np.float64)
    assert not backend.is_float_dtype("int32")
    assert backend.is_int_dtype("uint8") and backend.is_int_dtype(int)
    assert not backend.is_int_dtype("bool")
    assert backend.standardize_dtype(float) == "float32"
    assert backend.is_keras_tensor(keras.Input((2,)))
    assert not backend.is_keras_tensor(np.ones(2))


def test_get_uid_counts_per_prefix_until_clear_session():
    keras.utils.clear_session()
    uid = keras.backend.get_uid
    assert [uid("a"), uid("a"), uid("b"), uid("a")] == [1, 2, 1, 3]
    keras.utils.clear_session()
    assert uid("a") == 1


def _model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_max_epochs_and_max_steps_per_epoch_cap_every_loop_with_keras_warnings():
    x, y = np.ones((40, 2), "float32"), np.zeros((40, 1), "float32")
    try:
        keras.config.set_max_epochs(2)
        assert keras.config.max_epochs() == 2
        with pytest.warns(UserWarning, match="Limiting epochs to 2"):
            history = _model().fit(x, y, batch_size=4, epochs=5, verbose=0)
        assert len(history.history["loss"]) == 2
        keras.config.set_max_epochs(None)
        keras.config.set_max_steps_per_epoch(3)
        seen = []
        callback = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
        with pytest.warns(UserWarning, match="Limiting steps_per_epoch to 3"):
            _model().fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[callback])
        assert seen == [0, 1, 2, 0, 1, 2]
        with pytest.warns(UserWarning, match="Limiting steps_per_epoch to 3"):
            assert len(_model().predict(x, batch_size=4, verbose=0)) == 12
    finally:
        keras.config.set_max_epochs(None)
        keras.config.set_max_steps_per_epoch(None)


def test_the_caps_are_read_from_keras_environment_variables():
    script = "import dendrite as k; print(k.config.max_epochs(), k.config.max_steps_per_epoch())"
    env = {**os.environ, "KERAS_MAX_EPOCHS": "3", "KERAS_MAX_STEPS_PER_EPOCH": "7"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3", "7"]


def test_flags_and_the_one_backend():
    config = keras.config
    assert config.is_flash_attention_enabled() is None
    config.disable_flash_attention()
    assert config.is_flash_attention_enabled() is False
    config.enable_flash_attention()
    assert config.is_flash_attention_enabled() is None
    assert config.is_nnx_enabled() is False
    config.set_backend("numpy")
    with pytest.raises(ValueError, match="NumPy only"):
        config.set_backend("jax")
