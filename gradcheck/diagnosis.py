"""What a wrong hand derivation looks like: the first slip pattern that explains a failing expect.

A pattern FITS when its predicted values match `expect` within `tolerance` at every entry (the
checker's own allowance, used as it is: no slack), when the prediction differs from the true gradient
by more than twice the tolerance somewhere (so the pattern explains a real failure, not rounding),
and when it is not trivial (factor 1, a truth that is ~0 everywhere, a symmetric truth for transpose).
Right rather than broad: a pattern that fits only roughly says nothing.

Pure numpy; the checker builds the `Use` list and calls `diagnose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Use:
    """One use of the param in the network and its contribution to the gradient."""

    label: str  # how reports name the use, e.g. 'layer 2 (W.T, tanh)' or 'the input of term 1'
    role: str  # 'weight' | 'bias' | 'input' | 'argument' | 'target' | 'coef' | 'kernel' | ...
    contribution: np.ndarray  # this use's part of the gradient, param-shaped; the uses sum to the gradient
    signal: np.ndarray | None = None  # for role == 'bias': the error signal δ (n, m) it was summed from


@dataclass(frozen=True)
class Case:
    """One failing param: the arrays every pattern reads."""

    expect: np.ndarray
    truth: np.ndarray
    tol: np.ndarray
    uses: tuple[Use, ...]
    columns: int | None
    symmetric: bool = False  # the param is declared symmetric: truth and expect are in the symmetric space

    def fits(self, predicted: np.ndarray) -> bool:
        """Does `predicted` match expect within tolerance at every entry?"""
        return bool(np.all(np.abs(predicted - self.expect) <= self.tol))

    def distinct(self, predicted: np.ndarray) -> bool:
        """Does `predicted` differ from the truth by more than twice the tolerance somewhere?"""
        # twice: expect lies within tol of the prediction, so it then misses the truth by > tol there
        return bool(np.any(np.abs(predicted - self.truth) > 2 * self.tol))

    def explains(self, predicted: np.ndarray) -> bool:
        """A prediction that fits expect and is not the truth itself."""
        return predicted.shape == self.expect.shape and self.fits(predicted) and self.distinct(predicted)


# ----------------------------------------------------------------------------- the patterns

def transpose(case: Case) -> str | None:
    """expect ≈ truthᵀ for a square param whose gradient is not symmetric."""
    t = case.truth
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 2:
        return None
    # explains() needs truthᵀ ≠ truth beyond 2·tol somewhere: a symmetric truth never fits
    return "expect is the transpose of the gradient" if case.explains(t.T) else None


def symmetric_factor(case: Case) -> str | None:
    """The off-diagonal entries 2× (or ½×) the gradient, the diagonal right: the two gradient conventions mixed."""
    t = case.truth
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 2:
        return None
    off = ~np.eye(t.shape[0], dtype=bool)
    if not np.any(np.abs(t[off]) > 2 * case.tol[off]):
        return None  # an off-diagonal truth ~0 fits any factor
    for value, times in ((2.0, "2"), (0.5, "1/2")):
        if not case.explains(np.where(off, value * t, t)):
            continue
        said = f"the off-diagonal entries are {times} × the gradient and the diagonal is right"
        if value == 0.5:
            return f"{said}: an off-diagonal entry of the symmetric-space gradient counts G_ij + G_ji, not one of them"
        if case.symmetric:
            return (f"{said}: expect is written in the symmetric space (G + Gᵀ − diag(G)) but symmetric: true reads it "
                    f"as the unconstrained gradient G and maps it there itself: write G")
        return (f"{said}: expect is the symmetric-space gradient G + Gᵀ − diag(G) of a param checked entry by entry, "
                f"whose gradient is the unconstrained G (declare symmetric: true to check on symmetric matrices)")
    return None


def _informative(case: Case) -> int:
    """How many entries of the truth are distinguishable from 0 (a factor of ~0 says nothing)."""
    return int(np.count_nonzero(np.abs(case.truth) > 2 * case.tol))


def _named_factors(columns: int | None) -> list[tuple[float, str]]:
    """The factors a slip usually makes, each with its sentence, in the order they are tried."""
    named = [(2.0, "expect is 2 × the gradient"), (0.5, "expect is 1/2 × the gradient"),
             (-1.0, "expect has the wrong sign (−1 × the gradient)"), (-2.0, "expect is −2 × the gradient")]
    if columns is not None and columns > 2:  # m = 1 is no factor, m = 2 is already "2 ×"
        m = float(columns)
        named += [(m, f"expect is m × the gradient (m = {columns} columns): a missing 1/m?"),
                  (1 / m, f"expect is 1/m × the gradient (m = {columns}): an extra 1/m?")]
    return named


def _fitted_factor(case: Case) -> float | None:
    """c minimising Σ ((expect − c·truth) / tol)², or None when the truth is all 0."""
    w = 1.0 / np.maximum(case.tol, np.finfo(float).tiny) ** 2  # weight each entry by its allowance
    den = float(np.sum(w * case.truth ** 2))
    return float(np.sum(w * case.expect * case.truth)) / den if den > 0 and np.isfinite(den) else None


def _shortest(c: float, case: Case) -> str | None:
    """c printed with the fewest digits (at least 3 significant) whose value still fits."""
    for digits in range(3, 18):
        text = f"{c:.{digits}g}"
        if case.explains(float(text) * case.truth):
            return "−" + text[1:] if text.startswith("-") else text  # a minus sign, as the other sentences
    return None


def factor(case: Case) -> str | None:
    """expect ≈ c·truth for one constant c clearly ≠ 1 (and ≠ 0)."""
    if not _informative(case) or case.fits(np.zeros_like(case.truth)):
        return None  # a truth ~0 fits any c; an expect ~0 is no factor slip
    for value, sentence in _named_factors(case.columns):
        if case.explains(value * case.truth):
            return sentence
    c = _fitted_factor(case)
    if c is None or not np.isfinite(c) or _informative(case) < 2:
        return None  # with one informative entry any expect is "c × the gradient": no news
    text = _shortest(c, case)
    return f"expect is {text} × the gradient" if text is not None else None


def _index(flat: int, shape: tuple[int, ...]) -> str:
    """A flat index written as reports write entries, e.g. [0, 2]."""
    return "[" + ", ".join(str(i) for i in np.unravel_index(flat, shape)) + "]"


def _flipped(e: np.ndarray, t: np.ndarray, tol: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """Where e ≈ −t (and whether e ≈ +t somewhere else), when e ≈ ±t at every entry; else None."""
    right, flipped = np.abs(e - t) <= tol, np.abs(e + t) <= tol
    if not np.all(right | flipped):
        return None
    # where |t| <= tol, +t and −t are within 2·tol of each other: such entries count neither way
    counted = np.abs(t) > tol
    wrong = counted & flipped
    return (wrong, bool((counted & right).any())) if wrong.any() else None


def _where(wrong: np.ndarray, t: np.ndarray) -> str:
    """'at 3 of 12 entries, e.g. [0, 2]', the example being the clearest (largest |t|) of them."""
    flat = np.flatnonzero(wrong.ravel())
    worst = int(flat[np.argmax(np.abs(t.ravel()[flat]))])
    return f"at {flat.size} of {t.size} entries, e.g. {_index(worst, t.shape)}"


def sign_subset(case: Case) -> str | None:
    """expect ≈ ±truth entry by entry with the sign wrong on a proper subset, or the same in one use."""
    found = _flipped(case.expect, case.truth, case.tol)
    if found is not None and found[1]:  # all of them wrong is the factor −1, tried before
        return f"expect has the wrong sign {_where(found[0], case.truth)}"
    if len(case.uses) < 2 or not _sum_of_uses(case):
        return None
    for use in case.uses:
        part = np.asarray(use.contribution, float)
        found = _flipped(case.expect - (case.truth - part), part, case.tol)  # the others taken as right
        if found is not None:
            where = f" {_where(found[0], part)}" if found[1] else ""
            return f"the contribution of {_named_use(use.label)} has the wrong sign{where}"
    return None


def _sum_of_uses(case: Case) -> bool:
    """Do the contributions add up to the truth? (Otherwise the uses cannot be trusted.)"""
    if not case.uses or any(np.shape(u.contribution) != case.truth.shape for u in case.uses):
        return False
    total = sum(np.asarray(u.contribution, float) for u in case.uses)
    return bool(np.all(np.abs(total - case.truth) <= case.tol))


def _named_use(label: str) -> str:
    """'the use in layer 2 (...)' for a layer, else the label as given."""
    return f"the use in {label}" if label.startswith("layer") else label


def missing_use(case: Case) -> str | None:
    """expect ≈ truth − one use's contribution, or ≈ that contribution alone."""
    if len(case.uses) < 2 or not _sum_of_uses(case):
        return None
    parts = [np.asarray(u.contribution, float) for u in case.uses]
    for use, part in zip(case.uses, parts):
        if case.explains(case.truth - part):  # explains(): the contribution is not ~0
            return f"the contribution of {_named_use(use.label)} is missing"
    for use, part in zip(case.uses, parts):
        if case.explains(part):  # explains(): the other uses add something
            return f"only {_named_use(use.label)} is counted; the others are missing"
    return None


def _axis_slips(signal: np.ndarray, shape: tuple[int, ...]) -> list[tuple[np.ndarray, str]]:
    """The wrong sums of δ (n, m) that fit a (n, 1) bias, with what each sums over."""
    n, m = signal.shape
    slips = []
    if n == m:  # only then does the sum over units have the bias's length
        slips.append((signal.sum(axis=0).reshape(shape), "axis=0, over units"))
    slips.append((np.full(shape, signal.sum()), "both axes, over units and examples"))
    return slips


def bias_axis(case: Case) -> str | None:
    """A bias gradient summed over the units (or over everything) instead of over the examples."""
    shape = case.truth.shape
    if len(shape) != 2 or shape[1] != 1 or not _sum_of_uses(case):
        return None
    for use in case.uses:
        signal = None if use.signal is None else np.asarray(use.signal, float)
        if use.role != "bias" or signal is None or signal.ndim != 2 or signal.shape[0] != shape[0]:
            continue
        rest = case.truth - np.asarray(use.contribution, float)  # other uses of the param stay as they are
        for wrong_sum, over in _axis_slips(signal, shape):
            if case.explains(rest + wrong_sum):
                return (f"the bias gradient is summed over the wrong axis "
                        f"({over}, instead of axis=1, over examples)")
    return None


def confined(case: Case) -> str | None:
    """The error lives in one row, one column or the diagonal only (a region smaller than the param)."""
    t = case.truth
    if t.ndim != 2 or t.size < 2:
        return None
    bad = np.abs(case.expect - t) > case.tol
    rows, cols = np.flatnonzero(bad.any(axis=1)), np.flatnonzero(bad.any(axis=0))
    if rows.size == 1 and t.shape[0] > 1:  # the only row of a row vector is the whole param
        return f"the error is confined to row {rows[0]}"
    if cols.size == 1 and t.shape[1] > 1:
        return f"the error is confined to column {cols[0]}"
    if t.shape[0] == t.shape[1] and bad.any() and not (bad & ~np.eye(t.shape[0], dtype=bool)).any():
        return "the error is confined to the diagonal"
    return None


Pattern = Callable[[Case], "str | None"]

# In the order they are tried: the first that fits is the diagnosis.
PATTERNS: tuple[tuple[str, Pattern], ...] = (
    ("transpose", transpose),
    ("symmetric factor", symmetric_factor),
    ("factor", factor),
    ("sign", sign_subset),
    ("missing use", missing_use),
    ("bias axis", bias_axis),
    ("confined", confined),
)


def diagnose(expect: np.ndarray, truth: np.ndarray, tolerance: np.ndarray, uses: Sequence[Use] = (),
             columns: int | None = None, symmetric: bool = False) -> str | None:
    """The first slip pattern that explains expect against the true gradient within tolerance, as one line."""
    case = _case(expect, truth, tolerance, uses, columns, symmetric)
    if case is None or case.fits(case.truth):
        return None  # wrong shape, non-finite, or nothing to explain
    for _, pattern in PATTERNS:
        sentence = pattern(case)
        if sentence is not None:
            return sentence
    return None


def _case(expect, truth, tolerance, uses, columns, symmetric=False) -> Case | None:
    """The arrays as float, or None when they cannot be compared entry by entry."""
    e, t = np.asarray(expect, dtype=float), np.asarray(truth, dtype=float)
    if e.shape != t.shape or e.size == 0:
        return None
    try:
        tol = np.broadcast_to(np.asarray(tolerance, dtype=float), t.shape)
    except ValueError:
        return None
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(t)) and np.all(np.isfinite(tol))) or np.any(tol < 0):
        return None
    return Case(e, t, tol, tuple(uses), columns, symmetric)
