"""dendrite's optimizers against torch.optim, on gradients from PyTorch autograd.

A small tanh MLP with cross-entropy, in float64. Two copies of the same initial weights:
dendrite Variables updated by our optimizer, and torch parameters updated by torch.optim;
each step computes each copy's gradients with autograd at its own weights, so the two
trajectories only stay together if the update rules agree.

Where Keras and PyTorch differ, the settings below make the rules coincide, and say so:

- Adam/AdamW: Keras adds ``epsilon`` to ``sqrt(v)`` before the bias correction, PyTorch
  after it (``sqrt(v / (1 - beta_2**t)) + eps``): compared with epsilon = eps = 0.
- Adamax: PyTorch puts ``eps`` inside the max (``max(beta_2 u, |g| + eps)``), Keras adds it
  to ``u`` in the step: compared with 0.
- RMSprop: Keras ``g / sqrt(v + eps)``, PyTorch ``g / (sqrt(v) + eps)``; and PyTorch's
  momentum buffer leaves ``lr`` out: compared with eps = 0 and a constant rate.
- Adagrad: Keras starts the accumulator at 0.1 and uses ``sqrt(s + eps)``; PyTorch starts at
  0 and uses ``sqrt(s) + eps``: compared with initial_accumulator_value=0.1 and eps = 0.
- Nadam: PyTorch's momentum cache is ``0.96**(t * momentum_decay)`` (default 0.004);
  Keras' is ``0.96**t``: compared with momentum_decay=1.0 (epsilon placement agrees).
- SGD momentum: Keras' velocity holds ``-lr * g``, PyTorch's holds ``g``; equal while the
  rate is constant (a test below shows them part when it changes).
- Adadelta: the same rule; only the defaults differ.
"""

from __future__ import annotations

import numpy as np
import pytest

from dendrite.core import Variable
from dendrite.optimizers import (
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Nadam,
    RMSprop,
)

torch = pytest.importorskip("torch")
F = torch.nn.functional

STEPS = 8


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 6))
    y = rng.integers(0, 4, size=32)
    weights = [
        rng.standard_normal((6, 8)) * 0.5,
        np.zeros(8),
        rng.standard_normal((8, 4)) * 0.5,
        np.zeros(4),
    ]
    return torch.from_numpy(x), torch.from_numpy(y), weights


def loss_fn(params, x, y):
    w1, b1, w2, b2 = params
    return F.cross_entropy(torch.tanh(x @ w1 + b1) @ w2 + b2, y)


def torch_grads(arrays, x, y):
    params = [torch.tensor(a, requires_grad=True) for a in arrays]
    loss_fn(params, x, y).backward()
    return [p.grad.numpy() for p in params]


def train_both(ours, make_theirs, clip=None, lr_changes=None):
    x, y, weights = make_data()
    variables = [Variable(w.copy(), name=f"p{i}") for i, w in enumerate(weights)]
    params = [torch.tensor(w.copy(), requires_grad=True) for w in weights]
    theirs = make_theirs(params)
    for step in range(STEPS):
        if lr_changes and step in lr_changes:
            ours.learning_rate = lr_changes[step]
            for group in theirs.param_groups:
                group["lr"] = lr_changes[step]
        ours.apply(torch_grads([v.data for v in variables], x, y), variables)
        theirs.zero_grad()
        loss_fn(params, x, y).backward()
        if clip is not None:
            clip(params)
        theirs.step()
    return [v.data for v in variables], [p.detach().numpy() for p in params], weights


def assert_same(ours, theirs, initial, atol=1e-9):
    moved = max(np.abs(a - w).max() for a, w in zip(ours, initial))
    assert moved > 1e-3, "the weights barely moved; the comparison would prove nothing"
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)


O = torch.optim
CASES = {
    "sgd": (SGD(0.1), lambda p: O.SGD(p, lr=0.1)),
    "sgd-momentum": (SGD(0.1, momentum=0.9), lambda p: O.SGD(p, lr=0.1, momentum=0.9)),
    "sgd-nesterov": (
        SGD(0.1, momentum=0.9, nesterov=True),
        lambda p: O.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    ),
    # plain SGD only: decoupled decay w - lr*wd*w equals PyTorch's L2 term lr*(g + wd*w)
    "sgd-weight_decay": (
        SGD(0.1, weight_decay=0.05),
        lambda p: O.SGD(p, lr=0.1, weight_decay=0.05),
    ),
    "adam": (Adam(0.05, epsilon=0.0), lambda p: O.Adam(p, lr=0.05, eps=0.0)),
    "adam-amsgrad": (
        Adam(0.05, epsilon=0.0, amsgrad=True),
        lambda p: O.Adam(p, lr=0.05, eps=0.0, amsgrad=True),
    ),
    "adamw": (
        AdamW(0.05, weight_decay=0.1, epsilon=0.0),
        lambda p: O.AdamW(p, lr=0.05, weight_decay=0.1, eps=0.0),
    ),
    "adamax": (Adamax(0.05, epsilon=0.0), lambda p: O.Adamax(p, lr=0.05, eps=0.0)),
    "nadam": (
        Nadam(0.05, epsilon=1e-7),
        lambda p: O.NAdam(p, lr=0.05, eps=1e-7, momentum_decay=1.0),
    ),
    "rmsprop": (
        RMSprop(0.01, rho=0.9, epsilon=0.0),
        lambda p: O.RMSprop(p, lr=0.01, alpha=0.9, eps=0.0),
    ),
    "rmsprop-centered-momentum": (
        RMSprop(0.01, rho=0.9, epsilon=0.0, centered=True, momentum=0.5),
        lambda p: O.RMSprop(p, lr=0.01, alpha=0.9, eps=0.0, centered=True, momentum=0.5),
    ),
    "adagrad": (
        Adagrad(0.1, initial_accumulator_value=0.1, epsilon=0.0),
        lambda p: O.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, eps=0.0),
    ),
    # identical rule, so Keras' defaults can be passed to PyTorch as they are
    "adadelta": (
        Adadelta(1.0, rho=0.95, epsilon=1e-7),
        lambda p: O.Adadelta(p, lr=1.0, rho=0.95, eps=1e-7),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_torch_optim(case):
    ours, make_theirs = CASES[case]
    # CASES holds one instance per case; work on a fresh copy so reruns start clean
    ours = type(ours).from_config(ours.get_config())
    # PyTorch keeps NAdam's running momentum product in float32 (its default dtype)
    assert_same(*train_both(ours, make_theirs), atol=1e-7 if case == "nadam" else 1e-9)


def test_clipvalue_matches_torch_clip_grad_value():
    def clip(params):
        torch.nn.utils.clip_grad_value_(params, 0.01)

    result = train_both(SGD(0.5, clipvalue=0.01), lambda p: O.SGD(p, lr=0.5), clip=clip)
    assert_same(*result)


def test_global_clipnorm_matches_torch_clip_grad_norm():
    # PyTorch scales by max_norm / (norm + 1e-6), Keras by max_norm / norm: close, not equal
    def clip(params):
        torch.nn.utils.clip_grad_norm_(params, 0.05)

    result = train_both(SGD(0.5, global_clipnorm=0.05), lambda p: O.SGD(p, lr=0.5), clip=clip)
    assert_same(*result, atol=1e-5)


def test_keras_and_torch_sgd_momentum_part_when_the_rate_changes():
    changes = {4: 0.02}
    ours, theirs, initial = train_both(
        SGD(0.1, momentum=0.9),
        lambda p: O.SGD(p, lr=0.1, momentum=0.9),
        lr_changes=changes,
    )
    assert max(np.abs(a - b).max() for a, b in zip(ours, theirs)) > 1e-4
    # ours follows Keras: m = momentum * m - lr * g; w = w + m, with the lr of each step
    x, y, weights = make_data()
    w = [a.copy() for a in weights]
    m = [np.zeros_like(a) for a in w]
    lr = 0.1
    for step in range(STEPS):
        lr = changes.get(step, lr)
        grads = torch_grads(w, x, y)
        m = [0.9 * mi - lr * g for mi, g in zip(m, grads)]
        w = [wi + mi for wi, mi in zip(w, m)]
    for a, b in zip(ours, w):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_keras_adam_epsilon_is_epsilon_hat():
    # Keras' epsilon sits before the bias correction: it equals PyTorch's eps only after
    # scaling by sqrt(1 - beta_2**t), so with a large epsilon the two visibly differ,
    # and ours follows the Keras formula.
    eps = 1e-2
    ours, theirs, _ = train_both(Adam(0.05, epsilon=eps), lambda p: O.Adam(p, lr=0.05, eps=eps))
    assert max(np.abs(a - b).max() for a, b in zip(ours, theirs)) > 1e-4
    x, y, weights = make_data()
    w = [a.copy() for a in weights]
    m = [np.zeros_like(a) for a in w]
    v = [np.zeros_like(a) for a in w]
    for t in range(1, STEPS + 1):
        grads = torch_grads(w, x, y)
        alpha = 0.05 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
        m = [mi + (g - mi) * 0.1 for mi, g in zip(m, grads)]
        v = [vi + (g * g - vi) * 0.001 for vi, g in zip(v, grads)]
        w = [wi - alpha * mi / (np.sqrt(vi) + eps) for wi, mi, vi in zip(w, m, v)]
    for a, b in zip(ours, w):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
