"""Build the one optional compiled piece, dendrite._kernels (csrc/).

Everything else is in pyproject.toml. ``optional=True``: without a C compiler the install
still succeeds, and dendrite uses its NumPy paths (the same results, slower).
"""

import sys

from setuptools import Extension, setup

try:  # NumPy's headers, for csrc/reuse.c (pyproject.toml's build requirements bring them)
    import numpy

    numpy_include = [numpy.get_include()]
except ImportError:  # then the build fails and, being optional, leaves the NumPy paths
    numpy_include = []

flags = (
    []
    if sys.platform == "win32"
    else ["-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off"]
)

setup(
    ext_modules=[
        Extension(
            "dendrite._kernels",
            sources=[
                "csrc/module.c",
                "csrc/parallel.c",
                "csrc/adam.c",
                "csrc/batchnorm.c",
                "csrc/pooling.c",
                "csrc/col2im.c",
                "csrc/buffers.c",
                "csrc/blocks.c",
                "csrc/depthwise.c",
                "csrc/narrow.c",
                "csrc/recurrent.c",
                "csrc/recurrent_sequence.c",
                "csrc/relu.c",
                "csrc/shallow.c",
                "csrc/small_product.c",
                "csrc/softmax.c",
                "csrc/reuse.c",
                "csrc/transpose.c",
                "csrc/winograd.c",
            ],
            depends=["csrc/kernels.h"],
            include_dirs=["csrc", *numpy_include],
            extra_compile_args=flags,
            optional=True,
        )
    ]
)
