"""Fused recurrences: a whole SimpleRNN, LSTM or GRU layer call as one primitive each.

The primitive takes the input sequence x (batch, T, features) and every weight, projects
the inputs of all steps at once (``xw_t = x_t W + b``, batched BLAS), runs the time loop on
raw arrays (every step whole-batch) and back-propagates through time by hand, so a
sequence of T steps is one graph node instead of ~10 T. Keras' gate orders and equations,
with ``a`` the activation, ``s`` the recurrent activation, ``U`` the recurrent kernel and
``*`` the element-wise product:

- SimpleRNN: ``h_t = a(xw_t + h_{t-1} U)``
- LSTM (gates i, f, c, o): ``[z_i, z_f, z_c, z_o] = xw_t + h_{t-1} U``;
  ``c_t = s(z_f) * c_{t-1} + s(z_i) * a(z_c)``; ``h_t = s(z_o) * a(c_t)``
- GRU (gates z, r, h), reset_after=True (Keras 3's default, cuDNN's and PyTorch's form):
  ``[u_z, u_r, u_h] = h_{t-1} U + b_rec``; ``z = s(xw_z + u_z)``, ``r = s(xw_r + u_r)``,
  ``hh = a(xw_h + r * u_h)``; reset_after=False: ``hh = a(xw_h + (r * h_{t-1}) U_h)``;
  then ``h_t = z * h_{t-1} + (1 - z) * hh``

Backward, with ``g_h`` flowing back from step t+1 plus the output gradient at t, the
chain rule per step gives the pre-activation gradients ``dz_t`` (kept for every step), then
``g_{h_{t-1}} = dz_t U^T`` (plus the direct paths: ``z * g`` in the GRU, ``f * g_c`` for
the LSTM cell). The weight gradients are one GEMM each over all steps at the end:
``dL/dU = sum_t h_{t-1}^T dz_t``, ``dL/dW = sum_t x_t^T dz_t``, ``dL/db = sum_t dz_t``, and
``dL/dx_t = dz_t W^T``.

Options shared by the three:

- ``mask`` (batch, T) bool: where False, the step keeps the previous state (Keras masking);
- ``recurrent_mask`` (batch, units): a dropout mask multiplied into ``h_{t-1}`` before
  ``U`` (recurrent dropout; the state itself is not dropped);
- ``reverse``: process t = T-1 ... 0 (``go_backwards``); outputs are in processing order;
- ``activation`` / ``recurrent_activation``: one of ``FUSED_ACTIVATIONS``.

Speed: the time loop leaves only each step's one product to NumPy (BLAS). With the
default activations (tanh, and sigmoid; the GRU with reset_after=True) and the C kernels
loaded (dendrite/_native.py), the rest of a step, forward or backward, is one call to
csrc/recurrent.c: one pass over the step's gates instead of ~15 NumPy calls. The NumPy
loops (``_forward_numpy``, ``_backward_numpy``) are the reference, used for the other
activations, without the kernels and under ``DENDRITE_NO_KERNELS=1``; the float32 kernels
use their own tanh, within 2e-5 of the reference's results relative to their largest
magnitude (tests/test_kernels_recurrent.py).

Layout: ``_common`` (activations, the feature-major layout with time inside, the shared
base), then one module per primitive: ``simple_rnn``, ``lstm``, ``gru``.
"""

from dendrite.ops.recurrent._common import FUSED_ACTIVATIONS, activate_, derivative
from dendrite.ops.recurrent.gru import GRUSequence, gru_sequence
from dendrite.ops.recurrent.lstm import LSTMSequence, lstm_sequence
from dendrite.ops.recurrent.simple_rnn import SimpleRNNSequence, simple_rnn_sequence

__all__ = [
    "FUSED_ACTIVATIONS",
    "GRUSequence",
    "LSTMSequence",
    "SimpleRNNSequence",
    "activate_",
    "derivative",
    "gru_sequence",
    "lstm_sequence",
    "simple_rnn_sequence",
]
