"""The table of Keras' op classes (``saving/keras_format/op_names.py``): every dendrite
op that Keras has maps to its class and back, and the table is what the installed Keras
defines (checked in a Keras process, where Keras is installed)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from dendrite import ops
from dendrite.saving.keras_format.op_names import (
    KERAS_OP_CLASSES,
    dendrite_op,
    keras_op_class,
    op_signature,
)


def test_each_keras_class_names_a_dendrite_op_that_names_it_back():
    missing = []
    for family, classes in KERAS_OP_CLASSES.items():
        for class_name in classes:
            op = dendrite_op(family, class_name)
            if not hasattr(ops, op):
                missing.append(f"{family}.{class_name} -> {op}")
                continue
            back_family, back_class = keras_op_class(op)
            assert back_family == family, (op, back_family, family)
            # aliases (Abs and Absolute) name one dendrite op each
            assert dendrite_op(back_family, back_class) == op
    # the Keras ops dendrite does not offer yet; a new one here is a regression. JVP needs
    # forward-mode differentiation; SegmentReduction is the base class of the segment ops.
    assert sorted(missing) == sorted(
        [
            "linalg.JVP -> jvp",
            "math.SegmentReduction -> segment_reduction",
        ]
    )


@pytest.mark.parametrize(
    ("op", "family", "class_name"),
    [
        ("getitem", "numpy", "GetItem"),
        ("isin", "numpy", "IsIn"),
        ("cdist", "math", "CDist"),
        ("layer_normalization", "nn", "LayerNorm"),
        ("batch_normalization", "nn", "BatchNorm"),
        ("rms_normalization", "nn", "RMSNorm"),
        ("fft2", "math", "FFT2"),
        ("svd", "linalg", "SVD"),
        ("image.rgb_to_grayscale", "image", "RGBToGrayscale"),
        ("abs", "numpy", "Abs"),
        ("absolute", "numpy", "Absolute"),
    ],
)
def test_ops_spelled_otherwise_in_keras(op, family, class_name):
    assert keras_op_class(op) == (family, class_name)
    assert dendrite_op(family, class_name) == op


def test_an_op_keras_lacks_keeps_its_capitalised_name():
    assert keras_op_class("not_a_keras_op") == ("numpy", "NotAKerasOp")
    assert op_signature("numpy", "NotAKerasOp") is None
    assert keras_op_class("image.extract_patches_3d") == ("image", "ExtractPatches3d")


def test_every_dendrite_op_is_written_under_a_class_that_reads_back_as_itself():
    """What a saved graph's op node is called must load back as the same op, whether
    Keras has its class or not (get_item is getitem's alias)."""
    aliases = {"get_item": "getitem"}
    for op in ops.__all__:
        assert dendrite_op(*keras_op_class(op)) == aliases.get(op, op), op


LISTING = """
import inspect, importlib, json
from keras.src.ops.operation import Operation
table = {}
for family in ("core", "math", "nn", "numpy", "linalg", "image"):
    module = importlib.import_module("keras.src.ops." + family)
    for name, cls in vars(module).items():
        if inspect.isclass(cls) and issubclass(cls, Operation) and cls is not Operation \\
                and cls.__module__ == module.__name__:
            star = lambda p: ("*" if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) else "") + p.name
            built = [p.name for p in inspect.signature(cls.__init__).parameters.values()
                     if p.name not in ("self", "name")
                     and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            called = [star(p) for p in inspect.signature(cls.call).parameters.values()
                      if p.name != "self"]
            table.setdefault(family, {})[name] = [built, called]
print(json.dumps(table))
"""


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras 3 not installed")
def test_the_table_is_what_keras_defines():
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "torch")}
    done = subprocess.run(
        [sys.executable, "-c", LISTING], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    ours = {
        family: {name: [list(built), list(called)] for name, (built, called) in classes.items()}
        for family, classes in KERAS_OP_CLASSES.items()
    }
    for family in ours:
        # a newer Keras may add classes; the ones listed must be as Keras has them
        for name, signature in ours[family].items():
            assert theirs.get(family, {}).get(name) == signature, (family, name)
