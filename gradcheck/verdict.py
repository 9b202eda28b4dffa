"""The comparison rule: analytic against numeric gradients, entry by entry, kinks set apart.

Every numeric derivative n comes with an estimate e of its own error (gradcheck.numeric: round-off from
what the perturbation re-evaluated, truncation measured on a ladder of steps). Per entry, with the
user's relative tolerance rtol (and an absolute floor atol, none unless given):

    err_i = |a_i − n_i| / max(|a_i|, |n_i|, max(e_i + b_i, atol) / rtol)

and a comparison passes when max_i err_i <= rtol. Equivalently |a − n| <= max(rtol·max(|a|, |n|), e + b, atol):
the relative error a user accepts, except where the finite difference itself cannot tell that finely,
and there the floor is its own measured error, not a fraction of |J|. b_i is backprop's own round-off at
the entry (gradcheck.roundoff: measured once per spec, and only where a comparison fails without it; the same
for an `expect`, 0 where none is given):
where saturated units make an entry tiny beside the sums it came from, backprop cannot tell it finely
either, and a complex step that can must not fail it for that.

Entries whose stencil crossed a non-smooth point (relu/abs at 0, a max tie) and whose one-sided
slopes disagree by more than their own errors are kinks: the central value means nothing there.
Such an entry is a `kink` (not a failure) when the analytic value lies between the one-sided slopes,
widened by their error estimates, and fails otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import numeric


@dataclass(frozen=True)
class Kink:
    """An entry whose stencil crossed a non-smooth point, with the one-sided slopes there."""

    index: tuple[int, ...]
    analytic: float
    left: float
    right: float
    status: str  # "kink" (analytic between the slopes) | "fail"


@dataclass(frozen=True)
class Comparison:
    """One side (backprop or expect) against the numeric gradient."""

    max_rel_error: float | None
    max_abs_error: float | None
    worst_index: tuple[int, ...] | None
    analytic: float | None
    numeric: float | None
    passed: bool
    message: str | None = None
    numeric_error: float | None = None  # the estimated error of the numeric value at the worst entry
    kinks: tuple[Kink, ...] = ()
    analytic_error: float | None = None  # backprop's estimated round-off at the worst entry (part of the floor)
    worst_entry: tuple[tuple[str, int], ...] | None = None  # e.g. (("filter", 1), ("channel", 0), ...)
    checked: int = 0  # entries (or directions, in fast mode) compared

    @property
    def kink_count(self) -> int:
        return sum(k.status == "kink" for k in self.kinks)


def relative_errors(analytic: np.ndarray, numeric_values: np.ndarray, rtol: float, floor=0.0) -> np.ndarray:
    """The per-entry error metric of the module docstring; `floor` is max(e, atol) per entry."""
    diff = np.abs(analytic - numeric_values)
    with np.errstate(invalid="ignore", divide="ignore"):
        below = np.asarray(floor, dtype=float) / rtol if rtol > 0 else np.inf
        scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric_values)), below)
        return np.where(diff == 0, 0.0, diff / scale)


def tolerance(analytic, numeric_values, error, rtol: float, atol: float):
    """Per entry, the largest |a − n| the rule allows: max(rtol·max(|a|, |n|), e, atol) (e: the whole floor)."""
    return np.maximum(rtol * np.maximum(np.abs(analytic), np.abs(numeric_values)), np.maximum(error, atol))


def compare(analytic: np.ndarray, numeric_grad: np.ndarray, rtol: float, atol: float,
            error: np.ndarray | float = 0.0, analytic_error=None) -> Comparison:
    """Every entry of analytic against numeric (with its error estimate, and the analytic side's own round-off
    when given: an array, or a function making it, called only where the comparison fails without it), worst
    entry side by side."""
    if callable(analytic_error):
        strict = compare(analytic, numeric_grad, rtol, atol, error)
        return strict if strict.passed else compare(analytic, numeric_grad, rtol, atol, error, analytic_error())
    error = np.broadcast_to(np.asarray(error, dtype=float), np.shape(numeric_grad))
    b = np.zeros(np.shape(numeric_grad)) if analytic_error is None else np.asarray(analytic_error, dtype=float)
    rel = relative_errors(analytic, numeric_grad, rtol, np.maximum(error + b, atol))
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
    max_rel = float(rel[worst])
    return Comparison(max_rel, float(np.abs(analytic - numeric_grad).max()), tuple(int(i) for i in worst),
                      float(analytic[worst]), float(numeric_grad[worst]), bool(max_rel <= rtol),
                      checked=int(rel.size), numeric_error=float(error[worst]),
                      analytic_error=None if analytic_error is None else float(b[worst]))


def judge(analytic: np.ndarray, est: numeric.Estimate, rtol: float, atol: float, analytic_error=None) -> Comparison:
    """Compare at the estimated entries, setting kinks apart from ordinary entries; `analytic_error` (the analytic
    side's shape) is b, the analytic side's own round-off, added to the floor: an array, or a function making it,
    called only where the comparison fails without it (measuring b costs backward passes; most entries never
    need it), and then the comparison's analytic_error says it was used."""
    if callable(analytic_error):
        strict = judge(analytic, est, rtol, atol)
        return strict if strict.passed else judge(analytic, est, rtol, atol, analytic_error())
    shape = analytic.shape
    a = analytic.reshape(-1)[est.entries]
    b = np.zeros(a.shape) if analytic_error is None else np.asarray(analytic_error, float).reshape(-1)[est.entries]
    at_kink = kink_mask(est, rtol, atol)
    kinks = _kinks(a, est, at_kink, shape, rtol, atol)
    ordinary = ~at_kink
    if not ordinary.any():
        ok = all(k.status == "kink" for k in kinks)
        return Comparison(None, None, None, None, None, ok, _kink_message(kinks), kinks=kinks, checked=int(a.size))
    rel = np.where(ordinary, relative_errors(a, est.values, rtol, np.maximum(est.error + b, atol)), -1.0)
    worst = int(np.argmax(rel))
    max_rel = float(rel[worst])
    passed = max_rel <= rtol and all(k.status == "kink" for k in kinks)
    abs_err = float(np.abs(a - est.values)[ordinary].max())
    index = tuple(int(i) for i in np.unravel_index(int(est.entries[worst]), shape))
    return Comparison(max_rel, abs_err, index, float(a[worst]), float(est.values[worst]), bool(passed),
                      _kink_message(kinks), kinks=kinks, checked=int(a.size), numeric_error=float(est.error[worst]),
                      analytic_error=None if analytic_error is None else float(b[worst]))


def kink_mask(est: numeric.Estimate, rtol: float, atol: float) -> np.ndarray:
    """Entries whose stencil crossed a non-smooth point and whose one-sided slopes disagree beyond their errors."""
    if not est.crossed.any():  # a smooth run (most): no slopes to compare over every entry
        return np.zeros(est.crossed.shape, bool)
    gap = np.abs(est.left - est.right)
    # the side away from the kink is an honest one-sided derivative: its error is the measure of disagreement
    steady = np.minimum(est.left_error, est.right_error)
    allowed = np.maximum(2.0 * steady, np.maximum(rtol * np.maximum(np.abs(est.left), np.abs(est.right)), atol))
    return est.crossed & (gap > allowed)


def _kinks(a: np.ndarray, est: numeric.Estimate, at_kink: np.ndarray, shape, rtol: float, atol: float):
    """The kinks among the estimated entries: the analytic value between the slopes, widened by their errors."""
    at = np.flatnonzero(at_kink)  # only those entries: the rest never reach a Kink
    a, left, right = a[at], est.left[at], est.right[at]
    left_low = left <= right
    lo, hi = np.where(left_low, left, right), np.where(left_low, right, left)
    lo_error = np.where(left_low, est.left_error[at], est.right_error[at])
    hi_error = np.where(left_low, est.right_error[at], est.left_error[at])
    relative = rtol * np.maximum(np.abs(lo), np.abs(hi))
    inside = (a >= lo - np.maximum(np.maximum(lo_error, atol), relative)) & \
             (a <= hi + np.maximum(np.maximum(hi_error, atol), relative))
    return tuple(
        Kink(tuple(int(i) for i in np.unravel_index(int(est.entries[k]), shape)), float(a[n]),
             float(left[n]), float(right[n]), "kink" if inside[n] else "fail")
        for n, k in enumerate(at))


def _kink_message(kinks: tuple[Kink, ...]) -> str | None:
    """Why a comparison failed at a kink: the analytic value outside the one-sided slopes."""
    failed = [k for k in kinks if k.status == "fail"]
    if not failed:
        return None
    k = failed[0]
    return (f"at the kink {list(k.index)} the analytic value {k.analytic:.10g} lies outside the one-sided "
            f"slopes [{min(k.left, k.right):.10g}, {max(k.left, k.right):.10g}]")
