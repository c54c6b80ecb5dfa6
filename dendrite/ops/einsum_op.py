"""``einsum``: Einstein summation over explicit subscripts, as a primitive.

For ``out = einsum("ab,bc->ac", A, B)`` the vector-Jacobian product for each operand is
again an einsum: the gradient of the output with the other operands, summed back to the
operand's own subscripts, ``dL/dA = einsum("ac,bc->ab", g, B)``. A subscript summed within
one operand alone (``"ij->j"``) gets the gradient broadcast along it. A subscript repeated
within one operand (a diagonal, as in ``"ii->i"``) has no gradient here and is refused with a
clear error. ``...`` is supported by naming the broadcast axes.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from dendrite import cpu_threads
from dendrite.core import Function, Tensor, register
from dendrite.ops._util import unbroadcast


def _contract(spec: str, *operands: np.ndarray) -> np.ndarray:
    """``np.einsum`` with BLAS for its pairwise contractions, on one BLAS thread while the
    thread governor may switch threads: BLAS rounds some products differently on one thread
    and on several (see ``ops._products``), and a seeded run must reproduce."""
    if cpu_threads.switching():
        with cpu_threads.blas_pinned_to(1):
            return np.einsum(spec, *operands, optimize=True)
    return np.einsum(spec, *operands, optimize=True)


def _explicit(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """Operand and output subscripts with ``...`` replaced by letters and ``->`` made
    explicit (NumPy's implicit output: the letters seen once, sorted)."""
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: {subscripts!r} names {len(terms)} operands, but {len(shapes)} were given."
        )
    used = set(spec.replace(".", "").replace(",", "").replace("-", "").replace(">", ""))
    spare = [c for c in string.ascii_letters if c not in used]
    widest = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes)), default=0)
    fill = "".join(spare[:widest])
    resolved = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            count = len(shape) - len(term.replace("...", ""))
            term = term.replace("...", fill[widest - count :])
        resolved.append(term)
    if not arrow:
        counts = {c: "".join(resolved).count(c) for c in set("".join(resolved))}
        output = fill + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in fill))
    else:
        output = output.replace("...", fill)
    return resolved, output


@register("einsum")
class Einsum(Function):
    def forward(self, *operands: np.ndarray, subscripts: str = "") -> np.ndarray:
        terms, output = _explicit(subscripts, [op.shape for op in operands])
        self.saved = (terms, output, operands)
        return _contract(",".join(terms) + "->" + output, *operands)

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, ...]:
        terms, output, operands = self.saved
        grads = []
        for i, (term, operand) in enumerate(zip(terms, operands)):
            if len(set(term)) != len(term):
                raise ValueError(
                    f"einsum: no gradient for the repeated subscript in operand {i} ({term!r})."
                )
            others = [t for j, t in enumerate(terms) if j != i]
            known = set(output).union(*others)
            kept = "".join(c for c in term if c in known)
            spec = ",".join([output, *others]) + "->" + kept
            rest = [op for j, op in enumerate(operands) if j != i]
            grad = _contract(spec, g, *rest)
            # A subscript summed within this operand alone: every element along it had the
            # same effect, so the gradient is broadcast back along that axis.
            missing = [axis for axis, c in enumerate(term) if c not in known]
            if missing:
                grad = np.broadcast_to(np.expand_dims(grad, tuple(missing)), operand.shape)
            grads.append(unbroadcast(np.array(grad), operand.shape).astype(g.dtype, copy=False))
        return tuple(grads)


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """Einstein summation (``np.einsum`` semantics, explicit or implicit output)."""
    return Einsum.apply(*operands, subscripts=subscripts)
