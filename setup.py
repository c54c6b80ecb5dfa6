"""Build the one optional compiled piece, the fused optimizer kernels.

Everything else is in pyproject.toml. ``optional=True``: without a C compiler the install
still succeeds and the optimizers use their NumPy passes (same results, slower).
"""

import sys

from setuptools import Extension, setup

flags = [] if sys.platform == "win32" else ["-O3", "-fno-math-errno", "-ffp-contract=off"]

setup(
    ext_modules=[
        Extension(
            "dendrite.optimizers._kernels",
            ["dendrite/optimizers/_kernels.c"],
            extra_compile_args=flags,
            optional=True,
        )
    ]
)
