"""Each optimizer against a plain-NumPy transcription of Keras 3's update rule.

The reference below is written the way keras/src/optimizers/*.py write it (out of place, one
formula per line), so it shares no code, buffer trick or operation order with dendrite's
in-place updates. Both run several steps on several shapes, in float32 and float64, with
every option.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dendrite.core import Tensor, Variable
from dendrite.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lamb,
    Lion,
    Nadam,
    RMSprop,
    schedules,
)

SHAPES = [(3,), (4, 5), (2, 3, 4), ()]
STEPS = 6
CLASSES = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "adamax": Adamax,
    "nadam": Nadam,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "lion": Lion,
    "lamb": Lamb,
}
# Keras defaults of the rule-specific hyperparameters (what the reference uses when a case
# does not set them).
DEFAULTS = {
    "sgd": {"momentum": 0.0, "nesterov": False},
    "adam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
    "adamw": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
    "adamax": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "nadam": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "rmsprop": {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
    "adagrad": {"initial_accumulator_value": 0.1, "epsilon": 1e-7},
    "adadelta": {"rho": 0.95, "epsilon": 1e-7},
    "lion": {"beta_1": 0.9, "beta_2": 0.99},
    "lamb": {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
}


# --- the reference: Keras' rules, transcribed -----------------------------------------------
def keras_reference(
    name,
    weights,
    grad_steps,
    learning_rate,
    weight_decay=None,
    clipnorm=None,
    clipvalue=None,
    global_clipnorm=None,
    **hyper,
):
    """Run Keras' ``apply`` + ``update_step`` on copies of ``weights``; ``learning_rate`` is
    a float or a function of the 0-based iteration."""
    hp = {**DEFAULTS[name], **hyper}
    if name == "adamw" and weight_decay is None:
        weight_decay = 0.004
    w = [x.copy() for x in weights]
    m, v, vhat, a = ([np.zeros_like(x) for x in w] for _ in range(4))
    if name == "adagrad":
        v = [np.full_like(x, hp["initial_accumulator_value"]) for x in w]
    u_product = 1.0
    for iteration, grads in enumerate(grad_steps):
        lr = learning_rate(iteration) if callable(learning_rate) else learning_rate
        grads = [g.astype(x.dtype) for g, x in zip(grads, w)]
        # BaseOptimizer._clip_gradients
        if clipnorm:
            norms = [np.sqrt(np.sum(np.square(g))) for g in grads]
            grads = [g * clipnorm / np.maximum(n, clipnorm) for g, n in zip(grads, norms)]
        elif global_clipnorm:
            norm = np.sqrt(sum(np.sum(np.square(g)) for g in grads))
            scale = global_clipnorm * min(1.0 / norm, 1.0 / global_clipnorm)
            grads = [g * scale for g in grads]
        elif clipvalue:
            grads = [np.clip(g, -clipvalue, clipvalue) for g in grads]
        # BaseOptimizer._apply_weight_decay
        if weight_decay is not None:
            w = [x - x * weight_decay * lr for x in w]
        t = iteration + 1
        if name == "nadam":
            u_product = u_product * hp["beta_1"] * (1.0 - 0.5 * 0.96**t)
        for i, g in enumerate(grads):
            w[i] = _keras_rule(name, hp, w[i], g, lr, t, i, m, v, vhat, a, u_product)
    return w


def _keras_rule(name, hp, w, g, lr, t, i, m, v, vhat, a, u_product):
    if name == "sgd":
        if hp["momentum"] == 0:
            return w - g * lr
        m[i] = m[i] * hp["momentum"] - g * lr
        if hp["nesterov"]:
            return w + (m[i] * hp["momentum"] - g * lr)
        return w + m[i]
    if name in ("adam", "adamw"):
        b1, b2 = hp["beta_1"], hp["beta_2"]
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        m[i] = m[i] + (g - m[i]) * (1 - b1)
        v[i] = v[i] + (np.square(g) - v[i]) * (1 - b2)
        vv = v[i]
        if hp["amsgrad"]:
            vhat[i] = np.maximum(vhat[i], v[i])
            vv = vhat[i]
        return w - (m[i] * alpha) / (np.sqrt(vv) + hp["epsilon"])
    if name == "adamax":
        b1 = hp["beta_1"]
        m[i] = m[i] + (g - m[i]) * (1 - b1)
        v[i] = np.maximum(hp["beta_2"] * v[i], np.abs(g))
        return w - (lr * m[i]) / ((1 - b1**t) * (v[i] + hp["epsilon"]))
    if name == "nadam":
        b1, b2 = hp["beta_1"], hp["beta_2"]
        u_t = b1 * (1.0 - 0.5 * 0.96**t)
        u_t_1 = b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
        u_product_t_1 = u_product * u_t_1
        m[i] = m[i] + (g - m[i]) * (1 - b1)
        v[i] = v[i] + (np.square(g) - v[i]) * (1 - b2)
        m_hat = u_t_1 * m[i] / (1 - u_product_t_1) + (1 - u_t) * g / (1 - u_product)
        v_hat = v[i] / (1 - b2**t)
        return w - (m_hat * lr) / (np.sqrt(v_hat) + hp["epsilon"])
    if name == "rmsprop":
        rho = hp["rho"]
        v[i] = rho * v[i] + (1 - rho) * np.square(g)
        if hp["centered"]:
            a[i] = rho * a[i] + (1 - rho) * g
            denominator = v[i] - np.square(a[i]) + hp["epsilon"]
        else:
            denominator = v[i] + hp["epsilon"]
        increment = (lr * g) / np.sqrt(denominator)
        if hp["momentum"] > 0:
            m[i] = hp["momentum"] * m[i] + increment
            return w - m[i]
        return w - increment
    if name == "adagrad":
        v[i] = v[i] + np.square(g)
        return w - (lr * g) / np.sqrt(v[i] + hp["epsilon"])
    if name == "adadelta":
        rho, eps = hp["rho"], hp["epsilon"]
        v[i] = rho * v[i] + (1 - rho) * np.square(g)
        delta = -(np.sqrt(m[i] + eps) * g) / np.sqrt(v[i] + eps)
        m[i] = rho * m[i] + (1 - rho) * np.square(delta)
        return w + lr * delta
    if name == "lion":
        b1, b2 = hp["beta_1"], hp["beta_2"]
        w = w - lr * np.sign(m[i] * b1 + g * (1.0 - b1))
        m[i] = m[i] * b2 + g * (1.0 - b2)
        return w
    if name == "lamb":
        b1, b2 = hp["beta_1"], hp["beta_2"]
        m[i] = m[i] + (g - m[i]) * (1 - b1)
        v[i] = v[i] + (np.square(g) - v[i]) * (1 - b2)
        update = (m[i] / (1.0 - b1**t)) / (np.sqrt(v[i] / (1.0 - b2**t)) + hp["epsilon"])
        w_norm = np.sqrt(np.sum(np.power(w, 2)))
        g_norm = np.sqrt(np.sum(np.power(update, 2)))
        ratio = w_norm / g_norm if w_norm > 0 and g_norm > 0 else 1.0
        return w - ratio * lr * update
    raise AssertionError(name)


# --- helpers ----------------------------------------------------------------------------------
def make_problem(dtype, seed=0, scale=1.0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[(scale * rng.standard_normal(s)).astype(dtype) for s in shapes] for _ in range(STEPS)]
    return weights, grads


def run_dendrite(optimizer, weights, grad_steps):
    variables = [Variable(w, name=f"w{i}") for i, w in enumerate(weights)]
    buffers = [v.data for v in variables]
    for grads in grad_steps:
        optimizer.apply_gradients(zip(grads, variables))
    assert all(v.data is b for v, b in zip(variables, buffers)), "updates must be in place"
    assert int(optimizer.iterations) == len(grad_steps)
    return [v.data for v in variables]


def tolerance(dtype):
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-12}


def assert_matches(actual, expected, dtype):
    for got, want in zip(actual, expected):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tolerance(dtype))


# (optimizer, its options, learning rate) -- each option of each rule at least once
RULE_CASES = [
    ("sgd", {}, 0.1),
    ("sgd", {"momentum": 0.9}, 0.1),
    ("sgd", {"momentum": 0.9, "nesterov": True}, 0.1),
    ("sgd", {"momentum": 0.5, "nesterov": True}, 0.05),
    ("adam", {}, 0.01),
    ("adam", {"amsgrad": True}, 0.01),
    ("adam", {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3}, 0.01),
    ("adamw", {}, 0.01),
    ("adamw", {"weight_decay": 0.1, "amsgrad": True}, 0.01),
    ("adamax", {}, 0.01),
    ("adamax", {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3}, 0.01),
    ("nadam", {}, 0.01),
    ("nadam", {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3}, 0.01),
    ("rmsprop", {}, 0.01),
    ("rmsprop", {"centered": True}, 0.01),
    ("rmsprop", {"momentum": 0.5}, 0.01),
    ("rmsprop", {"centered": True, "momentum": 0.9, "rho": 0.8}, 0.01),
    ("adagrad", {}, 0.1),
    ("adagrad", {"initial_accumulator_value": 0.5, "epsilon": 1e-3}, 0.1),
    ("adadelta", {}, 1.0),
    ("adadelta", {"rho": 0.8, "epsilon": 1e-4}, 1.0),
    ("lion", {}, 0.001),
    ("lion", {"beta_1": 0.5, "beta_2": 0.9}, 0.01),
    ("lamb", {}, 0.01),
    ("lamb", {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3}, 0.01),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "name, options, lr",
    RULE_CASES,
    ids=[f"{n}-{'-'.join(o) or 'default'}" for n, o, _ in RULE_CASES],
)
def test_update_rule_matches_keras(name, options, lr, dtype):
    weights, grads = make_problem(dtype)
    expected = keras_reference(name, weights, grads, lr, **options)
    optimizer = CLASSES[name](learning_rate=lr, **options)
    assert_matches(run_dendrite(optimizer, weights, grads), expected, dtype)


# the base optimizer's options, on every rule
BASE_OPTIONS = {
    "weight_decay": {"weight_decay": 0.05},
    "clipnorm": {"clipnorm": 1.5},
    "clipvalue": {"clipvalue": 0.4},
    "global_clipnorm": {"global_clipnorm": 2.0},
}


@pytest.mark.parametrize("option", sorted(BASE_OPTIONS))
@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_base_options_match_keras(name, option, dtype):
    # gradients scaled up so that every clip actually clips
    weights, grads = make_problem(dtype, seed=1, scale=3.0)
    lr = {"sgd": 0.1, "adagrad": 0.1, "adadelta": 1.0}.get(name, 0.01)
    options = BASE_OPTIONS[option]
    expected = keras_reference(name, weights, grads, lr, **options)
    optimizer = CLASSES[name](learning_rate=lr, **options)
    assert_matches(run_dendrite(optimizer, weights, grads), expected, dtype)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_schedule_as_learning_rate_matches_keras(name):
    base = {"sgd": 0.1, "adagrad": 0.1, "adadelta": 1.0}.get(name, 0.01)
    schedule = schedules.ExponentialDecay(base, decay_steps=2, decay_rate=0.5)
    weights, grads = make_problem(np.float64, seed=2)
    # the schedule sees iterations before the increment: 0 on the first update
    expected = keras_reference(name, weights, grads, lambda step: base * 0.5 ** (step / 2))
    optimizer = CLASSES[name](learning_rate=schedule)
    assert_matches(run_dendrite(optimizer, weights, grads), expected, np.float64)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_options_combined_with_momentum_and_schedule(name):
    options = {"sgd": {"momentum": 0.9, "nesterov": True}, "rmsprop": {"centered": True}}.get(
        name, {"amsgrad": True}
    )
    schedule = schedules.PiecewiseConstantDecay([1, 3], [0.1, 0.05, 0.01])
    weights, grads = make_problem(np.float32, seed=3, scale=3.0)
    expected = keras_reference(
        name,
        weights,
        grads,
        lambda step: 0.1 if step <= 1 else 0.05 if step <= 3 else 0.01,
        weight_decay=0.01,
        clipnorm=1.0,
        **options,
    )
    optimizer = CLASSES[name](learning_rate=schedule, weight_decay=0.01, clipnorm=1.0, **options)
    assert_matches(run_dendrite(optimizer, weights, grads), expected, np.float32)


# --- gradient inputs ------------------------------------------------------------------------
def test_gradients_may_be_tensors_arrays_lists_or_other_dtypes():
    weights, grads = make_problem(np.float32, seed=4, shapes=[(2, 3)])
    expected = keras_reference("adam", weights, grads, 0.01)
    variable = Variable(weights[0])
    optimizer = Adam(0.01)
    kinds = [
        lambda g: Tensor(g),
        lambda g: g,
        lambda g: g.tolist(),
        lambda g: g.astype(np.float64),
        lambda g: np.asfortranarray(g),
        lambda g: Tensor(g.astype(np.float64)),
    ]
    for kind, step in zip(kinds, grads):
        optimizer.apply([kind(step[0])], [variable])
    assert variable.data.dtype == np.float32
    np.testing.assert_allclose(variable.data, expected[0], rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("option", sorted(BASE_OPTIONS))
def test_caller_gradients_are_never_modified(option):
    weights, grads = make_problem(np.float32, seed=5, scale=3.0)
    copies = [[g.copy() for g in step] for step in grads]
    run_dendrite(Adam(0.01, **BASE_OPTIONS[option]), weights, grads)
    for step, copy in zip(grads, copies):
        for g, c in zip(step, copy):
            np.testing.assert_array_equal(g, c)


def test_none_gradients_are_skipped_with_a_warning():
    weights, grads = make_problem(np.float64, seed=6, shapes=[(3,), (2,)])
    variables = [Variable(w, name=n) for w, n in zip(weights, ["kernel", "bias"])]
    optimizer = SGD(0.1, momentum=0.9)
    with pytest.warns(UserWarning, match="bias"):
        optimizer.apply([grads[0][0], None], variables)
    np.testing.assert_array_equal(variables[1].data, weights[1])
    expected = keras_reference("sgd", weights[:1], [grads[0][:1]], 0.1, momentum=0.9)
    np.testing.assert_allclose(variables[0].data, expected[0])
    assert int(optimizer.iterations) == 1


def test_weight_decay_spares_excluded_variables():
    weights, grads = make_problem(np.float64, seed=7, shapes=[(3,), (2,), (4,)])
    variables = [Variable(w, name=n) for w, n in zip(weights, ["dense/kernel", "dense/bias", "x"])]
    optimizer = AdamW(0.01, weight_decay=0.1)
    optimizer.exclude_from_weight_decay(var_list=[variables[2]], var_names=["bias"])
    for step in grads:
        optimizer.apply(step, variables)
    decayed = keras_reference("adamw", weights[:1], [s[:1] for s in grads], 0.01, weight_decay=0.1)
    plain = keras_reference("adam", weights[1:], [s[1:] for s in grads], 0.01)
    np.testing.assert_allclose(variables[0].data, decayed[0], rtol=1e-11)
    np.testing.assert_allclose(variables[1].data, plain[0], rtol=1e-11)
    np.testing.assert_allclose(variables[2].data, plain[1], rtol=1e-11)


def test_loss_scale_factor_unscales_gradients():
    weights, grads = make_problem(np.float64, seed=8)
    expected = keras_reference("sgd", weights, grads, 0.1)
    scaled = [[g * 128.0 for g in step] for step in grads]
    optimizer = SGD(0.1, loss_scale_factor=128.0)
    assert optimizer.scale_loss(2.0) == 256.0
    assert_matches(run_dendrite(optimizer, weights, scaled), expected, np.float64)


def test_global_clipnorm_leaves_small_gradients_alone():
    weights, grads = make_problem(np.float64, seed=9, scale=1e-3)
    expected = keras_reference("sgd", weights, grads, 0.1)
    assert_matches(
        run_dendrite(SGD(0.1, global_clipnorm=1.0), weights, grads), expected, np.float64
    )


def test_exponential_moving_average():
    weights, grads = make_problem(np.float64, seed=10, shapes=[(3,), (2, 2)])
    variables = [Variable(w) for w in weights]
    optimizer = SGD(0.1, use_ema=True, ema_momentum=0.9)
    averages = None
    for step in grads:
        optimizer.apply(step, variables)
        if averages is None:  # Keras: momentum 0 on the first step, so average = w
            averages = [v.data.copy() for v in variables]
        else:
            averages = [0.9 * a + 0.1 * v.data for a, v in zip(averages, variables)]
    expected = keras_reference("sgd", weights, grads, 0.1)
    assert_matches([v.data for v in variables], expected, np.float64)
    # the averages are state (after iterations and learning rate)
    for got, want in zip(optimizer.variables[2:4], averages):
        np.testing.assert_allclose(got.data, want)
    optimizer.finalize_variable_values(variables)
    for v, want in zip(variables, averages):
        np.testing.assert_allclose(v.data, want)


def test_ema_overwrite_frequency():
    variable = Variable(np.array([1.0, 2.0]))
    optimizer = SGD(0.5, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=2)
    grad = np.array([1.0, 1.0])
    optimizer.apply([grad], [variable])  # w = [0.5, 1.5]; average = w
    np.testing.assert_allclose(variable.data, [0.5, 1.5])
    optimizer.apply([grad], [variable])  # w = [0, 1]; average = [0.25, 1.25]; overwrite
    np.testing.assert_allclose(variable.data, [0.25, 1.25])


def test_update_step_can_be_called_directly():
    variable = Variable(np.array([1.0, -1.0]))
    optimizer = SGD(momentum=0.5)
    optimizer.build([variable])
    optimizer.update_step(np.array([1.0, 2.0]), variable, 0.1)
    np.testing.assert_allclose(variable.data, [0.9, -1.2])
    np.testing.assert_allclose(optimizer.variables[2].data, [-0.1, -0.2])


def test_float32_updates_stay_float32():
    weights, grads = make_problem(np.float32, seed=11)
    for name, cls in CLASSES.items():
        optimizer = cls(learning_rate=np.float64(0.01), weight_decay=0.01, clipnorm=1.0)
        for out in run_dendrite(optimizer, weights, grads):
            assert out.dtype == np.float32, name
        for state in optimizer.variables[2:]:
            assert state.data.dtype in (np.float32, np.float64), name
        assert math.isfinite(optimizer.learning_rate)
