"""The one ``snake_case``: Keras's ``keras.src.utils.naming.to_snake_case``.

Default names of layers, losses, metrics and optimizers, and the snake-case aliases the
registry accepts, all come from this rule, so ``"MeanSquaredError"`` is
``"mean_squared_error"`` everywhere and a run of capitals stays one word (``"SGDW"`` ->
``"sgdw"``, ``"AUC"`` -> ``"auc"``). Imports nothing from dendrite.
"""

from __future__ import annotations

import re

_NON_WORD = re.compile(r"\W+")
_WORD = re.compile(r"(.)([A-Z][a-z]+)")
_LOWER_UPPER = re.compile(r"([a-z])([A-Z])")


def snake_case(name: str) -> str:
    """A class name in snake case, by Keras's rule.

    Non-word characters are dropped; an underscore goes before each capitalised word
    (a capital followed by lower-case letters) that is not at the start, and between a
    lower-case letter and a capital; then everything is lower-cased::

        MeanSquaredError -> mean_squared_error      SGDW -> sgdw
        AUC -> auc                                   RMSprop -> rm_sprop (Keras too)
        Conv2DTranspose -> conv2d_transpose          AdamW -> adam_w
    """
    name = _NON_WORD.sub("", name)
    name = _WORD.sub(r"\1_\2", name)
    return _LOWER_UPPER.sub(r"\1_\2", name).lower()
