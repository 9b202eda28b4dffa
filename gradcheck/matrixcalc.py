"""Whole-matrix activations in numbers and symbols: inv, logdet, det, trace, frobenius, transpose.

Each acts on the last two axes (leading batch axes allowed: the finite-difference engine evaluates
stacks), gives its vector-Jacobian product δ = g·∂a/∂z in closed form (matrix cookbook), and says where
its domain ends: at the base point (`problem`, a sentence) and along a stencil (`side`, a number whose
sign changes where the stencil crosses the edge). Pure numpy; activations.py holds the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import symbolic as s
from .functions import ShapeProblem, inverse

# inv refuses a matrix whose condition number is above this: its finite differences would measure
# round-off (a relative error ~ cond · ε), not a derivative.
MAX_CONDITION = 1e10


@dataclass(frozen=True)
class MatrixDomain:
    """Where a whole-matrix activation is defined: `problem(z)` at one point, `side(z)` per stack member."""

    text: str  # as messages say it: "det z > 0"
    problem: Callable  # (z) -> a sentence, or None when z is inside
    side: Callable  # (z with batch axes) -> array over the batch; the edge is where it changes sign


def square(shape):
    """The shape rule of inv: a square z keeps its shape."""
    if shape[0] != shape[1]:
        raise ShapeProblem(f"needs a square z, not {shape[0]}×{shape[1]}")
    return shape


def scalar_of_square(shape):
    """logdet, det, trace: a square z gives a 1×1 a."""
    square(shape)
    return (1, 1)


def to_scalar(shape):
    """frobenius: any z gives a 1×1 a."""
    return (1, 1)


def swapped(shape):
    """transpose: (n, m) -> (m, n)."""
    return (shape[1], shape[0])


def _t(x):
    return np.swapaxes(x, -1, -2)


# ----------------------------------------------------------------------------- δ = g·∂a/∂z (g has a's shape)


def inv_vjp(g, z, a):
    """a = z⁻¹: δ = −aᵀ g aᵀ."""
    return -_t(a) @ g @ _t(a)


def logdet_vjp(g, z, a):
    """a = log det z: δ = g · z⁻ᵀ."""
    return g * _t(inverse(z))


def adjugate(z):
    """adj(z), with adj(z) = det(z) z⁻¹ where z is invertible and defined (and smooth) where it is not:
    for z = U S Vᵀ, adj(z) = det(U) det(V) V diag(Π_{j≠i} s_j) Uᵀ."""
    if np.iscomplexobj(z):  # only the forward pass ever sees a complex step; an invertible z is the case there
        return np.linalg.det(z)[..., None, None] * inverse(z)
    u, s, vt = np.linalg.svd(z)
    n = s.shape[-1]
    others = np.stack([np.prod(np.delete(s, i, axis=-1), axis=-1) for i in range(n)], axis=-1)
    sign = (np.linalg.det(u) * np.linalg.det(vt))[..., None, None]
    return sign * (_t(vt) * others[..., None, :]) @ _t(u)


def det_vjp(g, z, a):
    """a = det z: δ = g · adj(z)ᵀ (= g · det z · z⁻ᵀ where z is invertible; defined where it is not)."""
    return g * _t(adjugate(z))


def trace_vjp(g, z, a):
    """a = tr z: δ = g · I."""
    return g * np.eye(z.shape[-1])


def frobenius_vjp(g, z, a):
    """a = ‖z‖_F: δ = g · z / ‖z‖_F."""
    return g * z / a


def transpose_vjp(g, z, a):
    """a = zᵀ: δ = gᵀ."""
    return _t(g)


# ----------------------------------------------------------------------------- the same, as symbols


def sym_inv_vjp(g, z, a, c):
    return s.neg(s.matmul(s.matmul(s.t(a), g), s.t(a)))


def sym_logdet_vjp(g, z, a, c):
    return s.mul(g, s.t(s.fn("inv", z)))


def sym_det_vjp(g, z, a, c):
    return s.mul(s.mul(g, a), s.t(s.fn("inv", z)))


def sym_trace_vjp(g, z, a, c):
    return s.mul(g, s.fn("eye", s.num(z.shape[0])))


def sym_frobenius_vjp(g, z, a, c):
    return s.div(s.mul(g, z), a)


def sym_transpose_vjp(g, z, a, c):
    return s.t(g)


# ----------------------------------------------------------------------------- domains


def _positive_det(z):
    value = float(np.linalg.det(z))
    if value > 0:
        return None
    return f"det z = {value:.6g} is not positive: logdet needs det z > 0 (a positive definite z is always inside)"


def condition_problem(z, name: str = "z"):
    """None for a well-conditioned z; else why not, with its condition number (z called `name` in the text)."""
    with np.errstate(all="ignore"):
        cond = float(np.linalg.cond(z))
    if np.isfinite(cond) and cond <= MAX_CONDITION:
        return None
    shown = f"infinite ({name} is singular)" if not np.isfinite(cond) else f"{cond:.3g}"
    return (f"{name} is singular or badly conditioned: condition number {shown}, above {MAX_CONDITION:.0e}; its "
            f"inverse (and finite differences through it) would be round-off")


_conditioned = condition_problem


def det_side(z):
    """det z over the batch: a stencil whose ends differ in sign crosses a singular matrix."""
    return np.real(np.linalg.det(z))


LOGDET_DOMAIN = MatrixDomain("det z > 0", _positive_det, det_side)
INVERTIBLE = MatrixDomain("z invertible and well conditioned", _conditioned, det_side)
SOLVABLE = MatrixDomain("A invertible and well conditioned",  # the first input of the merge solve
                        lambda a: condition_problem(a, "A (the first input of solve)"), det_side)


def _nonzero(z):
    if np.any(z != 0):
        return None
    return "z = 0, where frobenius (‖z‖_F) is not differentiable (its δ is z / ‖z‖_F)"


NONZERO = MatrixDomain("z ≠ 0", _nonzero, lambda z: np.sqrt(np.sum(np.real(z) ** 2, axis=(-2, -1))))
