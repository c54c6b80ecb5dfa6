"""``Lambda``: wrap a function as a layer, saved by the function's registered name.

Keras saves a Lambda's Python bytecode and refuses to load it unless safe mode is off;
dendrite never stores code. The function must be registered with
``@dendrite.saving.register_keras_serializable(package=...)`` (saved as ``"package>name"``)
or be a public ``dendrite.ops`` function (saved as ``"dendrite.ops>name"``); loading looks
the name up, and a name nobody registered fails with a message that says how to register it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from dendrite import ops
from dendrite.layers.base import Layer
from dendrite.layers.registry import register_layer
from dendrite.registry import custom_objects

OPS_PACKAGE = "dendrite.ops"


def function_name(fn: Callable, layer_name: str, what: str = "function") -> str:
    """The name a Lambda's ``fn`` is saved under, or a ValueError that says how to
    register it."""
    if custom_objects.is_registered(fn):
        return custom_objects.get_registered_name(fn)
    name = getattr(fn, "__name__", None)
    if name in getattr(ops, "__all__", ()) and getattr(ops, name) is fn:
        return f"{OPS_PACKAGE}>{name}"
    shown = name or repr(fn)
    if shown == "<lambda>":
        raise ValueError(
            f"Lambda layer '{layer_name}': its {what} is an anonymous `lambda`, which cannot be "
            f"saved (dendrite never stores code in model files). Write it as a `def`, decorate "
            f"it with @dendrite.saving.register_keras_serializable(package='my_package'), and "
            f"pass that function to Lambda."
        )
    raise ValueError(
        f"Lambda layer '{layer_name}': cannot save its {what} {shown!r} by name: it is not "
        f"registered. dendrite never stores code in model files; decorate the function with "
        f"@dendrite.saving.register_keras_serializable(package='my_package') (it is then "
        f"saved as 'my_package>{shown}') and define it before loading the model."
    )


def resolve_function(name: Any, layer_name: str, what: str = "function") -> Callable:
    """The function saved as ``name`` (registered, in a custom-object scope, or a public
    dendrite op), or a ValueError that says how to register it."""
    if callable(name):
        return name
    if not isinstance(name, str):
        raise ValueError(
            f"Lambda layer '{layer_name}': its {what} must be saved as a registered name, got "
            f"{type(name).__name__}."
        )
    found = custom_objects.get_registered_object(name)
    if found is None and name.startswith(f"{OPS_PACKAGE}>"):
        short = name.split(">", 1)[1]
        if short in getattr(ops, "__all__", ()):
            found = getattr(ops, short)
    if not callable(found):
        short = name.split(">", 1)[-1]
        package = name.split(">", 1)[0] if ">" in name else "my_package"
        raise ValueError(
            f"Lambda layer '{layer_name}': unknown {what} {name!r}. dendrite never loads code "
            f"from a file: define the function in your program and register it, e.g. "
            f"@dendrite.saving.register_keras_serializable(package={package!r}) above "
            f"`def {short}`, or pass custom_objects={{{short!r}: {short}}} to load_model (or "
            f"use dendrite.saving.custom_object_scope)."
        )
    return found


@register_layer
class Lambda(Layer):
    """Applies ``function`` to the inputs: ``y = function(x, **arguments)``.

    Args:
        function: a registered function (or a public ``dendrite.ops`` function) of the
            inputs; it may take ``mask=`` and ``training=`` too.
        output_shape: the output shape without the batch axis (a tuple), or None to infer it
            by running the function on placeholder zeros.
        mask: None, or a registered function ``mask(inputs, mask)`` giving the output mask.
        arguments: extra keyword arguments for ``function`` (JSON values only).
    """

    example = {"kwargs": {"function": "dendrite.ops>square"}, "input_shape": (3, 4)}

    def __init__(
        self,
        function: Any,
        output_shape: Any = None,
        mask: Any = None,
        arguments: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.function = resolve_function(function, self.name)
        self.mask_function = None if mask is None else resolve_function(mask, self.name, "mask")
        self.supports_masking = self.mask_function is not None
        self._computes_mask = self.mask_function is not None
        if output_shape is not None and not isinstance(output_shape, (list, tuple)):
            raise ValueError(
                f"Lambda layer '{self.name}': output_shape must be a tuple (without the batch "
                f"axis) or None; got {output_shape!r}."
            )
        self.output_shape = None if output_shape is None else tuple(output_shape)
        if arguments is not None and not isinstance(arguments, dict):
            raise ValueError(
                f"Lambda layer '{self.name}': arguments must be a dict; got {arguments!r}."
            )
        self.arguments = dict(arguments or {})
        params = inspect.signature(self.function).parameters
        var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        self._fn_takes_mask = "mask" in params or var_kw
        self._fn_takes_training = "training" in params or var_kw

    def call(self, inputs: Any, mask: Any = None, training: bool | None = None) -> Any:
        kwargs = dict(self.arguments)
        if self._fn_takes_mask:
            kwargs["mask"] = mask
        if self._fn_takes_training:
            kwargs["training"] = training
        return self.function(inputs, **kwargs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if self.mask_function is None:
            return None
        return self.mask_function(inputs, mask)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self.output_shape is None:
            return super().compute_output_shape(input_shape)
        return (tuple(input_shape)[0], *self.output_shape)

    def get_config(self) -> dict:
        config = {
            **super().get_config(),
            "function": function_name(self.function, self.name),
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "arguments": self.arguments,
        }
        if self.mask_function is not None:
            config["mask"] = function_name(self.mask_function, self.name, "mask function")
        return config
