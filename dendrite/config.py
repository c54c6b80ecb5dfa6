"""``keras.config``: the global settings a Keras 3 program reads and sets.

- ``floatx`` / ``set_floatx``: the default float dtype (float32);
- ``epsilon`` / ``set_epsilon``: the fuzz factor (1e-7);
- ``image_data_format`` / ``set_image_data_format``: the layout convolution, pooling and
  reshaping layers assume without ``data_format`` ('channels_last');
- ``backend()``: "numpy" (dendrite runs on NumPy, whatever ``KERAS_BACKEND`` says);
- ``dtype_policy`` / ``set_dtype_policy``: a ``DTypePolicy`` whose compute and variable
  dtypes are both ``floatx`` -- dendrite has no mixed precision, so "mixed_float16" and
  "mixed_bfloat16" are refused with a clear error;
- ``enable_unsafe_deserialization``: refused -- dendrite never runs code from a file, so
  there is nothing to enable; it warns and changes nothing;
- ``enable_traceback_filtering`` / ``disable_traceback_filtering`` /
  ``is_traceback_filtering_enabled``: kept as a flag (dendrite's tracebacks are never
  filtered: every frame is shown);
- ``enable_interactive_logging`` / ``disable_interactive_logging`` /
  ``is_interactive_logging_enabled``: progress bars on stdout, or lines sent to Python's
  ``logging`` at INFO level.

dendrite's own, beside Keras' names: ``thread_info()`` (the threads in force, the most
dendrite may use and why, and what the thread governor measured) and
``set_num_threads(n)`` (exactly n threads from now on, as ``torch.set_num_threads``); see
``dendrite.cpu_threads``.
"""

from __future__ import annotations

import warnings

from dendrite import _settings
from dendrite._settings import (
    POLICY_NAMES,
    DTypePolicy,
    epsilon,
    floatx,
    image_data_format,
    is_interactive_logging_enabled,
    set_epsilon,
    set_floatx,
    set_image_data_format,
)
from dendrite.cpu_threads import set_num_threads, thread_info


def backend() -> str:
    """The array backend: "numpy"."""
    return "numpy"


def dtype_policy() -> DTypePolicy:
    """The global dtype policy: ``floatx`` for computations and weights."""
    return DTypePolicy(floatx())


def set_dtype_policy(policy: str | DTypePolicy) -> None:
    """Set the global dtype policy (a float policy name or a ``DTypePolicy``); it sets
    ``floatx``. Mixed policies are refused (dendrite has no mixed precision)."""
    if not isinstance(policy, DTypePolicy):
        if not isinstance(policy, str):
            raise ValueError(
                f"Invalid `policy` argument: expected a string or a DTypePolicy, got {policy!r}."
            )
        policy = DTypePolicy(policy)
    if policy.name not in POLICY_NAMES[:3]:
        raise ValueError(
            f"Invalid global dtype policy {policy.name!r}: expected 'float16', 'float32' or "
            f"'float64'."
        )
    set_floatx(policy.name)


def enable_unsafe_deserialization() -> None:
    """Refused: dendrite never runs code from a file (no lambda bytecode, no pickle), so
    there is no unsafe mode to enable. Warns and changes nothing; register your functions
    and classes (``register_keras_serializable``) so that files can name them."""
    warnings.warn(
        "keras.config.enable_unsafe_deserialization() has no effect in dendrite: loading "
        "never runs code from a file. Define Lambda functions and custom objects in your "
        "program and register them (keras.saving.register_keras_serializable) or pass "
        "custom_objects=.",
        UserWarning,
        stacklevel=2,
    )


_TRACEBACK_FILTERING = True


def enable_traceback_filtering() -> None:
    """Keras hides its own frames from tracebacks; dendrite shows every frame, so this
    only sets the flag ``is_traceback_filtering_enabled`` reports."""
    global _TRACEBACK_FILTERING
    _TRACEBACK_FILTERING = True


def disable_traceback_filtering() -> None:
    """Clear the traceback-filtering flag (dendrite never filters tracebacks)."""
    global _TRACEBACK_FILTERING
    _TRACEBACK_FILTERING = False


def is_traceback_filtering_enabled() -> bool:
    return _TRACEBACK_FILTERING


def enable_interactive_logging() -> None:
    """Progress bars and epoch lines go to stdout (the default)."""
    _settings.set_interactive_logging(True)


def disable_interactive_logging() -> None:
    """Progress bars are replaced by lines sent to Python's ``logging`` (INFO level)."""
    _settings.set_interactive_logging(False)


__all__ = [
    "DTypePolicy",
    "backend",
    "disable_interactive_logging",
    "disable_traceback_filtering",
    "dtype_policy",
    "enable_interactive_logging",
    "enable_traceback_filtering",
    "enable_unsafe_deserialization",
    "epsilon",
    "floatx",
    "image_data_format",
    "is_interactive_logging_enabled",
    "is_traceback_filtering_enabled",
    "set_dtype_policy",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
    "set_num_threads",
    "thread_info",
]
