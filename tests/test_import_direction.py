"""Imports flow one way (DESIGN.md):

    {_settings, _atomic, _native, cpu_threads, registry} <- core <- ops
    <- {layers, losses, metrics, optimizers, datasets} <- saving <- training <- models <- cli

A module may import its own layer and the layers below it, never one above. ``utils`` sits
beside ``training`` and may import ``layers`` and below; ``testing`` may import anything and
nothing in the package imports ``testing``. The package facade ``dendrite/__init__.py`` sits
just below ``cli`` (which runs ``import dendrite as tf``), and ``__main__`` on top. Every
import counts, including those inside functions (a lazy import is still an arrow); only
imports under ``if TYPE_CHECKING:`` are ignored, since they never run. The check reads the
source with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dendrite"

# Rank of each top-level part of the package: a module may import ranks <= its own.
RANKS = {
    "_settings": 0,
    "_atomic": 0,
    "_native": 0,
    "cpu_threads": 0,  # threads in force and the governor that times steps to choose them
    "memory_reuse": 0,  # NumPy's allocator inside the loops (csrc/reuse.c)
    "registry": 0,
    "tree": 0,  # keras.tree: nested structures, pure Python
    "_kernels": 0,  # the compiled extension (csrc/), loaded by _native
    "core": 1,
    "ops": 2,
    "random": 2,  # keras.random: draws from a SeedGenerator, beside ops
    "layers": 3,
    "losses": 3,
    "metrics": 3,
    "optimizers": 3,
    "datasets": 3,
    "saving": 4,
    "distribution": 4,  # data parallelism over MPI: used by training, imports below it
    "training": 5,
    "utils": 5,
    "backend": 5,
    "config": 5,
    "dtype_policies": 5,  # keras.dtype_policies, beside config
    "mixed_precision": 5,  # keras.mixed_precision: the policy names and LossScaleOptimizer
    "models": 6,
    "applications": 6,  # keras.applications: architectures built from layers and models
    "export": 6,  # model.export: ONNX graphs from a model's layers
    "explain": 6,  # attributions, LR finder: run models and their gradients
    "__init__": 7,  # the facade: ``import dendrite`` pulls in everything but the CLI
    "cli": 8,
    "cli_errors": 8,
    "cli_run_dir": 8,
    "__main__": 9,
}
# Parts that may import less than their rank allows: part -> the highest rank it may use.
CEILINGS = {"utils": RANKS["layers"]}
ANYTHING = "testing"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _part(module: str) -> str:
    """The top-level part of ``dendrite.x.y`` (``x``), or ``__init__`` for the package."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, imported dendrite module) for every import in the file (``module``: its
    dotted name, by default found from the path)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                # ``from dendrite import ops`` imports the submodule dendrite.ops.
                candidate = f"{target}.{alias.name}"
                found.append((node.lineno, candidate if _exists(candidate) else target))
    unique = sorted(set(found))
    return [(line, name) for line, name in unique if name.split(".")[0] == "dendrite"]


# Compiled extension modules (built from csrc/ by setup.py; absent without a compiler).
COMPILED = {"dendrite._kernels"}


def _exists(module: str) -> bool:
    if module in COMPILED:
        return True
    relative = Path(*module.split("."))
    base = PACKAGE.parent / relative
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _module_name(path)
        source = _part(importer)
        for line, imported in _imports(path):
            target = _part(imported)
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            if target == source:
                continue
            if target == ANYTHING:
                problems.append(f"{where}: {importer} imports {imported} (nothing imports testing)")
                continue
            if source == ANYTHING:
                continue
            for part in (source, target):
                if part not in RANKS:
                    problems.append(
                        f"{where}: '{part}' has no place in the import order; add it to "
                        f"DESIGN.md and to RANKS in this test"
                    )
            if source not in RANKS or target not in RANKS:
                continue
            allowed = CEILINGS.get(source, RANKS[source])
            if RANKS[target] > allowed:
                problems.append(f"{where}: {importer} ({source}) imports {imported} ({target})")
    return problems


def test_imports_flow_one_way() -> None:
    problems = _violations()
    assert not problems, "Backward imports:\n" + "\n".join(problems)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import base\n"
        "def f():\n"
        "    from dendrite.models import Model\n"
        "if TYPE_CHECKING:\n"
        "    from dendrite.saving import save_model\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    found = {name: line for line, name in _imports(probe, "dendrite.layers.probe")}
    assert "dendrite.models" in found and found["dendrite.models"] == 4
    assert "dendrite.layers.base" in found
    assert not any(name.startswith("dendrite.saving") for name in found)
