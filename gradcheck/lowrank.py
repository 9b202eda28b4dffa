"""A dense last layer's z moved by a low-rank term: what one moved row below it (and a second use of the
param in that layer) does to z, kept as its factors so that a loss can take the change without the dense copies.

Variant b of z (n, m) is  z + W[:, cols[b]] v[b]ᵀ + e_{rows[b]} w[b]ᵀ : the moved row v of the layer's input
meets one column of its weight W (rank 1), and a second use of the param as that weight adds the moved entry's
own row w. Squared error then needs only ⟨R, Δ⟩ + ½‖Δ‖² with R = z − y, O(m) a perturbation after one
product WᵀR; a softmax with cross-entropy takes the dense Δz (its columns' log-sum-exp read every entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class LowRank:
    """B variants of `base` (n, m): base + W[:, cols[b]] ⊗ v[b] (+ w[b] added to row rows[b])."""

    base: np.ndarray
    W: np.ndarray
    cols: np.ndarray
    v: np.ndarray
    rows: np.ndarray | None = None
    w: np.ndarray | None = None
    spare: bool = False  # v is this object's alone: dz() may scale it in place, after which v is spent

    def dz(self) -> np.ndarray:
        """Δz of every variant, dense (B, n, m) (once, if `spare`: it is made in v's place)."""
        if self.W.shape[0] == 1:  # one output row (a sigmoid unit): v scaled row by row, one pass
            scale = np.take(self.W[0], self.cols)[:, None]
            if self.spare and self.rows is None and np.result_type(self.v, scale) == self.v.dtype:
                out, self.v = self.v, None  # spent: a second dz() or the factors' v would fail, not mislead
                out *= scale
                return out[:, None, :]
            out = (self.v * scale)[:, None, :]
        else:
            out = self.W[:, self.cols].T[:, :, None] * self.v[:, None, :]
        if self.rows is not None:
            out[np.arange(len(self.cols)), self.rows] += self.w
        return out

    def dense(self) -> np.ndarray:
        return self.base[None] + self.dz()


@dataclass(eq=False)  # arrays: compared by identity, never entry by entry
class ColumnSpread:
    """B variants of z (n, m) whose every column moves along fixed vectors: column j of variant b is
    coef[b, j] · columns[j] ((3,) · (3, n): layer norm's gain ⊙ c, gain and bias), plus own[b, j] on row rows[b].
    `base` (m, 3) gives the base pass's coefficients. Called as fill(members, out), it writes those variants."""

    coef: np.ndarray
    columns: np.ndarray
    own: np.ndarray
    rows: np.ndarray
    base: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def __call__(self, members: slice, out=None) -> np.ndarray:
        """The members' z, written into `out` (members, m, n) (a fresh array if None) with one (m, ·, 3)·(m, 3, n)
        product, returned as its (members, n, m) view."""
        picked = self.coef[members].transpose(1, 0, 2)  # (m, members, 3)
        m, n = self.columns.shape[0], self.columns.shape[2]
        z = np.empty((picked.shape[1], m, n), dtype=np.result_type(self.coef, self.columns)) if out is None else out
        np.matmul(picked, self.columns, out=z.transpose(1, 0, 2))  # each variant's zᵀ in turn
        moved = self.rows[members]
        if moved[0] == moved[-1] and (moved == moved[0]).all():  # one row's entries (W[i, ·]): a strided add
            z[:, :, moved[0]] += self.own[members]
        else:
            z[np.arange(len(z)), :, moved] += self.own[members]
        return z.transpose(0, 2, 1)


def squared_error_change(a, y, moved: LowRank):
    """(Σ ΔL, Σ |L(new)| + |L(old)|) per variant for L = ½(a − y)², a = z moved by `moved` (real steps).

    ΔL summed is ⟨R, Δ⟩ + ½ Σ Δ²: ⟨R, u vᵀ⟩ = (WᵀR)[col]·v and ⟨R, e_r wᵀ⟩ = R[r]·w; Σ(u vᵀ)² = (u·u)(v·v).
    L ≥ 0 everywhere, so the sizes summed over every entry are 2 Σ L(old) + Σ ΔL, as the dense route finds them.
    """
    R = a - y
    u = moved.W[:, moved.cols].T  # (B, n)
    dot = np.einsum("bm,bm->b", (moved.W.T @ R)[moved.cols], moved.v)
    square = np.einsum("bn,bn->b", u, u) * np.einsum("bm,bm->b", moved.v, moved.v)
    if moved.rows is not None:
        B = np.arange(len(moved.cols))
        dot = dot + np.einsum("bm,bm->b", R[moved.rows], moved.w)
        square = square + 2 * u[B, moved.rows] * np.einsum("bm,bm->b", moved.v, moved.w) + \
            np.einsum("bm,bm->b", moved.w, moved.w)
    change = dot + 0.5 * square
    return change, np.sum(np.square(R)) + change


@dataclass(frozen=True)
class DenseChange:
    """A loss's change when a whole moved a replaces a: `base(a, y)` reads the base pass alone (once), `change(base,
    a, new)` each batch or chunk of variants; called as (a, y, new), both at once."""

    base: Callable
    change: Callable

    def __call__(self, a, y, new):
        return self.change(self.base(a, y), a, new)


def _squared_error_base(a, y):
    """(R = a − y, Σ R²): what squared error's dense change reads of the base pass."""
    R = a - y
    return R, np.sum(np.square(R))


def _squared_error_dense(base, a, new):
    """(Σ ΔL, Σ |L(new)| + |L(old)|) per variant for L = ½(a − y)² when a (n, m) becomes new (B, n, m), real steps.

    ΔL = Δa·(R + ½Δa), R = a − y: one difference and two dot products a variant instead of both losses and their
    difference; Δa and R are differences of nearby numbers (exact while within a factor 2), so the sum rounds with ΔL
    itself. L ≥ 0: the sizes are 2 Σ L(old) + Σ ΔL, as the dense route finds them. A writeable `new` (the perturbed
    run's own last array, read by nothing after its loss) is overwritten with Δa: one less pass through memory.
    """
    R, squares = base
    if not new.flags.c_contiguous:  # a view of another layout: its memory order, the bases transposed alike
        new, a, R = _memory_order(new, a, R)
    da = np.subtract(new, a, out=new if new.flags.writeable else None).reshape(len(new), -1)
    dot = da @ R.reshape(-1)
    square = np.matmul(da[:, None, :], da[:, :, None]).reshape(-1)
    change = dot + 0.5 * square
    return change, squares + change


squared_error_dense = DenseChange(_squared_error_base, _squared_error_dense)


def _memory_order(new, a, R):
    """`new` (B, n, m), a view of another layout (a ufunc over such a view with a broadcast operand iterates badly),
    as its memory lays it out with the batch axis first, and a and R (n, m) transposed alike, (1, ·, ·)."""
    order = [0] + sorted((1, 2), key=lambda k: -new.strides[k])
    moved = new.transpose(order)
    if not moved.flags.c_contiguous:
        order, moved = [0, 1, 2], np.ascontiguousarray(new)
    return moved, *(np.ascontiguousarray(x[None].transpose(order)) for x in (a, R))
