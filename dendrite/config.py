"""``keras.config``: the global settings a Keras 3 program reads and sets.

- ``floatx`` / ``set_floatx``: the default float dtype (float32);
- ``epsilon`` / ``set_epsilon``: the fuzz factor (1e-7);
- ``image_data_format`` / ``set_image_data_format``: the layout convolution, pooling and
  reshaping layers assume without ``data_format`` ('channels_last');
- ``backend()``: "numpy" (dendrite runs on NumPy, whatever ``KERAS_BACKEND`` says);
- ``dtype_policy`` / ``set_dtype_policy``: a ``DTypePolicy`` whose compute and variable
  dtypes are both ``floatx`` -- dendrite has no mixed precision, so "mixed_float16" and
  "mixed_bfloat16" are refused with a clear error;
- ``max_epochs`` / ``set_max_epochs`` and ``max_steps_per_epoch`` /
  ``set_max_steps_per_epoch``: Keras' debugging caps on ``fit``'s epochs and on every
  epoch's steps (with Keras' "Limiting ..." warning), also read from
  ``KERAS_MAX_EPOCHS`` / ``KERAS_MAX_STEPS_PER_EPOCH`` at import;
- ``enable_flash_attention`` / ``disable_flash_attention`` /
  ``is_flash_attention_enabled``: kept as a flag (None until set, as in Keras); dendrite's
  attention is one NumPy path either way;
- ``set_backend``: only "numpy" (dendrite has one backend); ``is_nnx_enabled``: False;
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
    max_epochs,
    max_steps_per_epoch,
    set_epsilon,
    set_floatx,
    set_image_data_format,
    set_max_epochs,
    set_max_steps_per_epoch,
)
from dendrite.cpu_threads import set_num_threads, thread_info


def backend() -> str:
    """The array backend: "numpy"."""
    return "numpy"


def set_backend(backend: str) -> None:
    """Keras switches its array backend here; dendrite has one, NumPy."""
    if backend != "numpy":
        raise ValueError(
            f"dendrite runs on NumPy only; set_backend({backend!r}) cannot switch it "
            f"(use 'numpy', or run the program with Keras itself)."
        )


def is_nnx_enabled() -> bool:
    """Whether Flax NNX is enabled (a JAX-backend setting of Keras): never in dendrite."""
    return False


_FLASH_ATTENTION: bool | None = None


def enable_flash_attention() -> None:
    """Keras' flag; dendrite's attention is one NumPy path, the flag is only reported."""
    global _FLASH_ATTENTION
    _FLASH_ATTENTION = None


def disable_flash_attention() -> None:
    global _FLASH_ATTENTION
    _FLASH_ATTENTION = False


def is_flash_attention_enabled() -> bool | None:
    """None (the default: "where available") or False after ``disable_flash_attention``."""
    return _FLASH_ATTENTION


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
    "disable_flash_attention",
    "enable_flash_attention",
    "is_flash_attention_enabled",
    "is_nnx_enabled",
    "max_epochs",
    "max_steps_per_epoch",
    "set_backend",
    "set_max_epochs",
    "set_max_steps_per_epoch",
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
