"""Learning-rate schedules against values computed by hand from Keras 3's formulas."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dendrite.core import Variable
from dendrite.optimizers import SGD, schedules
from dendrite.optimizers.schedules import (
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseTimeDecay,
    LearningRateSchedule,
    PiecewiseConstantDecay,
    PolynomialDecay,
)

# (schedule, {step: expected learning rate})
CASES = [
    (ExponentialDecay(0.1, 10, 0.5), {0: 0.1, 5: 0.1 * math.sqrt(0.5), 10: 0.05, 25: 0.1 / 2**2.5}),
    (ExponentialDecay(0.1, 10, 0.5, staircase=True), {0: 0.1, 9: 0.1, 10: 0.05, 25: 0.025}),
    (InverseTimeDecay(0.1, 10, 0.5), {0: 0.1, 5: 0.08, 10: 0.1 / 1.5, 30: 0.04}),
    (InverseTimeDecay(0.1, 10, 0.5, staircase=True), {5: 0.1, 10: 0.1 / 1.5, 19: 0.1 / 1.5}),
    (
        PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
        {0: 1.0, 10: 1.0, 11: 0.5, 20: 0.5, 21: 0.1, 1000: 0.1},
    ),
    (PiecewiseConstantDecay([3], [7, 2]), {3: 7.0, 4: 2.0}),
    (PolynomialDecay(0.1, 10, 0.01), {0: 0.1, 5: 0.055, 10: 0.01, 20: 0.01}),
    (PolynomialDecay(0.1, 10, 0.01, power=2.0), {5: 0.09 * 0.25 + 0.01, 10: 0.01}),
    (PolynomialDecay(0.1, 10), {10: 0.0001}),  # Keras' default end_learning_rate
    # cycle: decay_steps becomes decay_steps * ceil(step / decay_steps) (1 at step 0)
    (
        PolynomialDecay(0.1, 10, 0.01, cycle=True),
        {0: 0.1, 5: 0.055, 10: 0.01, 15: 0.09 * 0.25 + 0.01, 20: 0.01},
    ),
    (CosineDecay(0.1, 10), {0: 0.1, 5: 0.05, 10: 0.0, 100: 0.0}),
    (CosineDecay(0.1, 10, alpha=0.1), {0: 0.1, 5: 0.1 * (0.9 * 0.5 + 0.1), 10: 0.01, 50: 0.01}),
    # warmup: linear from initial to warmup_target over warmup_steps, then cosine decay
    (
        CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=5),
        {0: 0.0, 1: 0.02, 4: 0.08, 5: 0.1, 10: 0.05, 15: 0.0, 100: 0.0},
    ),
    (
        CosineDecay(0.01, 10, alpha=0.5, warmup_target=0.1, warmup_steps=5),
        {2: 0.09 * 0.4 + 0.01, 10: 0.1 * (0.5 * 0.5 + 0.5), 15: 0.05, 99: 0.05},
    ),
    (CosineDecay(0.2, 10, warmup_target=0.1, warmup_steps=0), {0: 0.1, 5: 0.05}),
    # restarts: t_mul=2, m_mul=0.5: periods [0, 10), [10, 30), [30, 70) ...
    (
        CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.5),
        {0: 0.1, 5: 0.05, 10: 0.05, 20: 0.025, 30: 0.025, 40: 0.025 * 0.5 * (1 + math.sqrt(0.5))},
    ),
    (CosineDecayRestarts(0.1, 10, t_mul=1.0), {0: 0.1, 5: 0.05, 10: 0.1, 15: 0.05}),
    (CosineDecayRestarts(0.1, 10, t_mul=1.0, alpha=0.2), {5: 0.1 * (0.8 * 0.5 + 0.2)}),
]


@pytest.mark.parametrize("schedule, expected", CASES, ids=lambda x: repr(x)[:60])
def test_values(schedule, expected):
    for step, value in expected.items():
        got = schedule(step)
        assert isinstance(got, float)
        assert got == pytest.approx(value, rel=1e-12, abs=1e-15), step


@pytest.mark.parametrize("schedule, expected", CASES, ids=lambda x: repr(x)[:60])
def test_array_of_steps(schedule, expected):
    steps = np.array(list(expected))
    got = schedule(steps)
    assert isinstance(got, np.ndarray) and got.shape == steps.shape
    np.testing.assert_allclose(got, list(expected.values()), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("schedule", [c[0] for c in CASES], ids=lambda x: repr(x)[:60])
def test_config_round_trip(schedule):
    config = schedule.get_config()
    clone = type(schedule).from_config(config)
    assert clone.get_config() == config
    serialized = json.loads(json.dumps(schedules.serialize(schedule)))
    assert serialized["class_name"] == type(schedule).__name__
    again = schedules.deserialize(serialized)
    assert type(again) is type(schedule) and again.get_config() == config
    for step in (0, 3, 17, 64):
        assert again(step) == schedule(step)


def test_keras_config_keys():
    assert CosineDecay(0.1, 10).get_config() == {
        "initial_learning_rate": 0.1,
        "decay_steps": 10,
        "alpha": 0.0,
        "name": "CosineDecay",
        "warmup_target": None,
        "warmup_steps": 0,
    }
    assert CosineDecayRestarts(0.1, 5).get_config()["name"] == "SGDRDecay"
    assert PiecewiseConstantDecay([1], [1.0, 0.5]).get_config()["name"] == "PiecewiseConstant"
    assert PolynomialDecay(0.1, 5).get_config()["end_learning_rate"] == 0.0001


def test_step_may_be_a_variable_or_0d_array():
    schedule = ExponentialDecay(0.1, 10, 0.5)
    counter = Variable(10, dtype="int64", trainable=False)
    assert schedule(counter) == pytest.approx(0.05)
    assert schedule(np.int64(10)) == pytest.approx(0.05)


def test_optimizer_evaluates_schedule_at_iterations():
    schedule = CosineDecay(0.0, 4, warmup_target=0.2, warmup_steps=2)
    variable = Variable(np.zeros(1))
    optimizer = SGD(learning_rate=schedule)
    applied = []
    for _ in range(8):
        before = variable.data.copy()
        optimizer.apply([np.ones(1)], [variable])
        applied.append(float(before[0] - variable.data[0]))  # lr used by this step
    np.testing.assert_allclose(applied, [schedule(s) for s in range(8)], atol=1e-15)
    assert applied[0] == 0.0 and applied[2] == pytest.approx(0.2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ExponentialDecay(0.1, 0, 0.5),
        lambda: InverseTimeDecay(0.1, -1, 0.5),
        lambda: PolynomialDecay(0.1, 0),
        lambda: CosineDecay(0.1, 0),
        lambda: CosineDecayRestarts(0.1, 0),
    ],
)
def test_decay_steps_must_be_positive(make):
    with pytest.raises(ValueError, match="decay_steps"):
        make()


def test_piecewise_argument_errors():
    with pytest.raises(ValueError, match="1 less than"):
        PiecewiseConstantDecay([1, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="increasing"):
        PiecewiseConstantDecay([2, 1], [0.3, 0.2, 0.1])


def test_warmup_steps_must_not_be_negative():
    with pytest.raises(ValueError, match="warmup_steps"):
        CosineDecay(0.1, 10, warmup_target=0.2, warmup_steps=-1)


def test_deserialize_errors():
    with pytest.raises(ValueError, match="Unknown learning rate schedule 'Nope'"):
        schedules.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="class_name"):
        schedules.deserialize("ExponentialDecay")
    with pytest.raises(TypeError):
        schedules.serialize(0.1)


def test_base_class_must_be_overridden():
    class Incomplete(LearningRateSchedule):
        pass

    with pytest.raises(NotImplementedError, match="__call__"):
        Incomplete()(0)
    with pytest.raises(NotImplementedError, match="get_config"):
        Incomplete().get_config()
