"""Activations as ONNX nodes: ``emit(b, x, name)`` for every built-in Keras activation.

Each entry is the maths dendrite computes (``dendrite/ops/activations.py``):
relu max(x, 0); relu6 min(max(x, 0), 6); leaky_relu x if x > 0 else 0.2 x; elu x if x > 0
else e^x - 1; selu scale * elu(x, alpha); gelu x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (the
exact form of Keras' activation; ops.gelu's tanh approximation
0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) is ``_gelu``); silu x s(x); sigmoid 1/(1+e^-x);
hard_sigmoid relu6(x + 3) / 6; hard_silu x hard_sigmoid(x); tanh; softplus ln(1 + e^x);
softsign x / (1 + |x|); softmax / log_softmax on the last axis; exponential e^x;
log_sigmoid -softplus(-x); mish x tanh(softplus(x)); celu max(x,0) + min(0, e^x - 1);
hard_tanh clip(x, -1, 1); tanh_shrink x - tanh(x); squareplus (x + sqrt(x^2 + 4)) / 2;
linear the identity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dendrite.export.graph import GraphBuilder
from dendrite.layers import activations as keras_activations
from dendrite.ops.activations import SELU_ALPHA, SELU_SCALE


def _c(b: GraphBuilder, value: float) -> str:
    return b.const(np.float32(value), "c")


def _softplus(b: GraphBuilder, x: str) -> str:
    return b.op("Softplus", [x])


def _gelu(b: GraphBuilder, x: str) -> str:
    cube = b.op("Mul", [b.op("Mul", [x, x]), x])
    inner = b.op("Add", [x, b.op("Mul", [cube, _c(b, 0.044715)])])
    t = b.op("Tanh", [b.op("Mul", [inner, _c(b, np.sqrt(2.0 / np.pi))])])
    return b.op("Mul", [b.op("Mul", [x, _c(b, 0.5)]), b.op("Add", [t, _c(b, 1.0)])])


def _gelu_exact(b: GraphBuilder, x: str) -> str:
    erf = b.op("Erf", [b.op("Mul", [x, _c(b, 1.0 / np.sqrt(2.0))])])
    return b.op("Mul", [b.op("Mul", [x, _c(b, 0.5)]), b.op("Add", [erf, _c(b, 1.0)])])


def _hard_sigmoid(b: GraphBuilder, x: str) -> str:
    return b.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)


EMITTERS = {
    "linear": lambda b, x: x,
    "relu": lambda b, x: b.op("Relu", [x]),
    "relu6": lambda b, x: b.op("Clip", [x, _c(b, 0.0), _c(b, 6.0)]),
    "leaky_relu": lambda b, x: b.op("LeakyRelu", [x], alpha=0.2),
    "elu": lambda b, x: b.op("Elu", [x], alpha=1.0),
    "selu": lambda b, x: b.op("Selu", [x], alpha=float(SELU_ALPHA), gamma=float(SELU_SCALE)),
    "gelu": _gelu_exact,  # the activation's form (exact); ops.gelu's default is _gelu
    "silu": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])]),
    "swish": lambda b, x: b.op("Mul", [x, b.op("Sigmoid", [x])]),
    "sigmoid": lambda b, x: b.op("Sigmoid", [x]),
    "hard_sigmoid": _hard_sigmoid,
    "hard_silu": lambda b, x: b.op("Mul", [x, _hard_sigmoid(b, x)]),
    "hard_swish": lambda b, x: b.op("Mul", [x, _hard_sigmoid(b, x)]),
    "tanh": lambda b, x: b.op("Tanh", [x]),
    "softplus": _softplus,
    "softsign": lambda b, x: b.op("Softsign", [x]),
    "softmax": lambda b, x: b.op("Softmax", [x], axis=-1),
    "log_softmax": lambda b, x: b.op("LogSoftmax", [x], axis=-1),
    "exponential": lambda b, x: b.op("Exp", [x]),
    "exp": lambda b, x: b.op("Exp", [x]),
    "log_sigmoid": lambda b, x: b.op("Neg", [_softplus(b, b.op("Neg", [x]))]),
    "mish": lambda b, x: b.op("Mul", [x, b.op("Tanh", [_softplus(b, x)])]),
    "celu": lambda b, x: b.op("Celu", [x], alpha=1.0),
    "hard_tanh": lambda b, x: b.op("Clip", [x, _c(b, -1.0), _c(b, 1.0)]),
    "tanh_shrink": lambda b, x: b.op("Sub", [x, b.op("Tanh", [x])]),
    "squareplus": lambda b, x: b.op(
        "Mul",
        [
            b.op("Add", [x, b.op("Sqrt", [b.op("Add", [b.op("Mul", [x, x]), _c(b, 4.0)])])]),
            _c(b, 0.5),
        ],
    ),
}


#: The activations that act along the last axis (not element by element): a converter that
#: moves the channels must apply them in the layer's own layout.
ALONG_LAST_AXIS = frozenset({"softmax", "log_softmax"})


def activation_name(fn: Any) -> str | None:
    """The Keras name of a built-in activation function, or None for a custom one."""
    if fn is None:
        return "linear"
    try:
        name = keras_activations.serialize(fn)
    except Exception:
        return None
    if name not in EMITTERS:
        return None
    try:
        return name if keras_activations.get(name) is fn else None
    except Exception:
        return None


def emit(b: GraphBuilder, x: str, fn: Any) -> str:
    """``fn(x)`` as ONNX nodes; raises KeyError for a custom activation."""
    name = activation_name(fn)
    if name is None:
        raise KeyError(f"the activation {getattr(fn, '__name__', fn)!r} is not a built-in one")
    return EMITTERS[name](b, x)
