"""ΔJ of a batch of variants whose columns of z each move along two numbers (lowrank.ColumnSpread: layer norm's
s = 1/σ' and t = −(d/n)/σ'), read off a polynomial in (s, t) fitted column by column through a few exact columns,
instead of activating every entry of every variant.

Column j's loss is F_j(s, t) = Σ_k L(f(s·A_kj + t·g_k + b_k), y_kj) apart from the moved row, a smooth function of
two numbers when f has no kink, and every variant of a batch lies in one small box of (s, t) per column. The fit is
the tensor Chebyshev interpolant of degree DEGREE through (DEGREE + 1)² exact evaluations of F_j − F_j(base) in that
box (f and L at other points: no derivative of either is read). Its coefficients fall off geometrically with the
box's size over F's distance to a singularity, so the highest ones bound what the fit leaves out (`tail`); the moved
row's own entry is evaluated exactly, variant by variant. At a batch of ~1,000 variants this activates 25 columns
where the exact route activates 1,000, and the two agree to rounding (tests/test_column_fit.py).
"""

from __future__ import annotations

import numpy as np

from .lowrank import ColumnSpread

DEGREE = 4
_K = np.arange(DEGREE + 1)
_ANGLES = np.pi * (_K + 0.5) / (DEGREE + 1)
NODES = np.cos(_ANGLES)  # Chebyshev points of the first kind on [−1, 1]
FIT = (2.0 / (DEGREE + 1)) * np.cos(np.outer(_K, _ANGLES))  # values at NODES → coefficients of T_0 … T_DEGREE
FIT[0] /= 2.0
MIN_VARIANTS = 8 * (DEGREE + 1) ** 2  # below it the fit's columns cost about what the variants' own would


def fitted_change(spread: ColumnSpread, f, entry, a: np.ndarray, y, allowed: float) \
        -> tuple[np.ndarray, float] | None:
    """(Σ ΔL per variant, tail) for `spread`'s variants activated by the elementwise f and summed by the loss entry(a, y)
    (a, y: the base pass's (n, m); y may be None). `tail` bounds, for every variant at once, what the polynomials
    leave out (`rim`), to be within `allowed`; None when it is not, or an exact column is not finite."""
    S, T = spread.coef[:, :, 0].T, spread.coef[:, :, 1].T  # (m, B): a column's variants side by side
    (cs, hs), (ct, ht) = _box(S, spread.base[:, 0]), _box(T, spread.base[:, 1])
    coefs = _fit(spread, f, entry, a.T, None if y is None else y.T, (cs, hs), (ct, ht))
    if coefs is None:
        return None
    tail = rim(coefs)
    if not tail <= allowed:
        return None
    across = np.matmul(coefs.transpose(0, 2, 1), _basis(S, cs, hs))  # (m, l, B): Σ_k C[j, k, l] T_k(ŝ)
    across *= _basis(T, ct, ht)
    fitted = across.reshape(-1, across.shape[-1]).sum(axis=0)
    return fitted + _own_rows(spread, S, T, f, entry, y), tail


def rim(coefs: np.ndarray) -> float:
    """What the fit leaves out, bounded by its highest coefficients (degree DEGREE in s or in t) summed in size over
    the columns: they fall off geometrically, so the next ones are smaller still, and round-off shows up here too."""
    return float(np.abs(coefs[:, -1, :]).sum() + np.abs(coefs[:, :-1, -1]).sum())


def _box(v: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, half width) per column of the smallest interval holding every variant's v (m, B) and the base's."""
    lo, hi = np.minimum(v.min(axis=1), base), np.maximum(v.max(axis=1), base)
    return 0.5 * (lo + hi), 0.5 * (hi - lo)


def _fit(spread, f, entry, aT, yT, s_box, t_box) -> np.ndarray | None:
    """(m, P, P) Chebyshev coefficients per column of F_j − F_j(base) over its box, from P × P exact columns."""
    P, m = DEGREE + 1, len(aT)
    grid = np.empty((m, P, P, 3))
    grid[..., 0] = s_box[0][:, None, None] + s_box[1][:, None, None] * NODES[:, None]
    grid[..., 1] = t_box[0][:, None, None] + t_box[1][:, None, None] * NODES[None, :]
    grid[..., 2] = spread.base[:, 2, None, None]
    z = f(np.matmul(grid.reshape(m, P * P, 3), spread.columns))  # (m, P², n): each node's column j, activated
    change = np.sum(entry(z, None if yT is None else yT[:, None, :]) - entry(aT, yT)[:, None, :], axis=-1)
    if not np.all(np.isfinite(change)):
        return None
    return FIT @ change.reshape(m, P, P) @ FIT.T


def _basis(v: np.ndarray, centre: np.ndarray, half: np.ndarray) -> np.ndarray:
    """(m, P, B): T_0 … T_DEGREE at each variant's v (m, B) mapped onto its column's box [−1, 1] (a box of width
    0: 0)."""
    x = (v - centre[:, None]) / np.where(half > 0, half, 1.0)[:, None]
    out = np.empty((x.shape[0], DEGREE + 1, x.shape[1]))
    out[:, 0], out[:, 1] = 1.0, x
    x2 = x + x
    for k in range(2, DEGREE + 1):
        np.multiply(x2, out[:, k - 1], out=out[:, k])
        out[:, k] -= out[:, k - 2]
    return out


def _own_rows(spread: ColumnSpread, S, T, f, entry, y) -> np.ndarray:
    """Per variant, Σ over columns of L at the moved row with its own change minus L there without it (the fit
    holds the latter): two activations a variant and column, exact. S, T: (m, B), each column's s and t."""
    picked = spread.columns[:, :, spread.rows]  # (m, 3, B): each column's entries on the variants' moved rows
    bare = S * picked[:, 0] + T * picked[:, 1] + picked[:, 2]  # (m, B)
    target = None if y is None else np.broadcast_to(y, (y.shape[0], bare.shape[0]))[spread.rows].T
    return np.sum(entry(f(bare + spread.own.T), target) - entry(f(bare), target), axis=0)
