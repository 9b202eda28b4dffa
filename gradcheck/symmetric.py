"""Symmetric params (`symmetric: true`): J restricted to symmetric matrices, and the two conventions for its gradient.

On symmetric X only n(n+1)/2 entries are free; moving the free entry (i, j) moves X[i, j] and X[j, i]
together, so the finite difference measures d/dt J(X + t(E_ij + E_ji)) = G_ij + G_ji (G_ii on the
diagonal), where G is the unconstrained gradient (every entry independent: what backprop gives). That is
the symmetric-space gradient G + Gᵀ − diag(G). The analytic sides, backprop and `expect`, are read as an
unconstrained G and mapped to the symmetric space before they are compared; any G with the same G + Gᵀ
passes (for tr(AX), both Aᵀ and (A + Aᵀ)/2). An `expect` already written in the symmetric space comes
out with its off-diagonal entries doubled: the factor-2 slip the diagnosis names.
"""

from __future__ import annotations

import numpy as np


CONVENTION = ("symmetric: checked on symmetric matrices, (i, j) and (j, i) moved together; backprop and expect are "
              "read as the unconstrained gradient G and compared as G + Gᵀ − diag(G)")


def to_space(g: np.ndarray) -> np.ndarray:
    """G + Gᵀ − diag(G): the derivative of J along each free entry of a symmetric matrix."""
    g = np.asarray(g)
    return g + np.swapaxes(g, -1, -2) - g * np.eye(g.shape[-1])


def direction(v: np.ndarray) -> np.ndarray:
    """A random direction made symmetric (fast mode): ⟨G, v⟩ is then the derivative along it."""
    return (v + v.T) / 2


def weights(v: np.ndarray) -> np.ndarray:
    """w with ⟨G + Gᵀ − diag(G), w⟩ = ⟨G, v⟩ for a symmetric v: v with its off-diagonal entries halved."""
    return (v + v * np.eye(v.shape[-1])) / 2


class Moves:
    """The perturber of a symmetric param: each move of entry (i, j) moves (j, i) by the same step (its memory per
    move, a dense copy of the param through every layer, is counted in perturb_memory)."""

    def __init__(self, perturber):
        self.inner = perturber

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, flat: np.ndarray, delta: np.ndarray):
        """(ΔJ, crossed, size) per move, as Perturber.__call__, with both mirrored entries moved."""
        shape = self.inner.shape
        rows, cols = np.unravel_index(np.asarray(flat), shape)
        base = self.inner.values[self.inner.name]
        stack = np.repeat(base[None].astype(np.result_type(delta, float)), len(rows), axis=0)
        members = np.arange(len(rows))
        stack[members, rows, cols] += delta
        off = rows != cols
        stack[members[off], cols[off], rows[off]] += delta[off]
        return self.inner.along(stack)
