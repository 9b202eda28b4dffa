"""The comparison rule: analytic against numeric gradients, entry by entry, kinks set apart.

Error metric, per entry i of a param (analytic a, numeric n):

    err_i = |a_i − n_i| / max(|a_i|, |n_i|, atol / rtol)

and a comparison passes when max_i err_i <= rtol. Equivalently |a − n| <= max(rtol·max(|a|,|n|), atol):
relative where the gradient is large, absolute where both sides are ~0 (where a relative error is
meaningless). atol defaults to the round-off floor of a central difference, which grows with |J|.

Entries whose stencil crossed a non-smooth point (relu/abs at 0, a max tie) and whose one-sided
slopes disagree are kinks: the central value means nothing there. Such an entry is a `kink`
(not a failure) when the analytic value lies between the one-sided slopes, and fails otherwise.
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
    kinks: tuple[Kink, ...] = ()
    worst_entry: tuple[tuple[str, int], ...] | None = None  # e.g. (("filter", 1), ("channel", 0), ...)
    checked: int = 0  # entries (or directions, in fast mode) compared

    @property
    def kink_count(self) -> int:
        return sum(k.status == "kink" for k in self.kinks)


def relative_errors(analytic: np.ndarray, numeric_values: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """The per-entry error metric of the module docstring."""
    diff = np.abs(analytic - numeric_values)
    floor = atol / rtol if rtol > 0 else np.inf
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric_values)), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(diff == 0, 0.0, diff / scale)


def compare(analytic: np.ndarray, numeric_grad: np.ndarray, rtol: float, atol: float) -> Comparison:
    """Every entry of analytic against numeric, worst entry side by side."""
    rel = relative_errors(analytic, numeric_grad, rtol, atol)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
    max_rel = float(rel[worst])
    return Comparison(max_rel, float(np.abs(analytic - numeric_grad).max()), tuple(int(i) for i in worst),
                      float(analytic[worst]), float(numeric_grad[worst]), bool(max_rel <= rtol),
                      checked=int(rel.size))


def judge(analytic: np.ndarray, est: numeric.Estimate, rtol: float, atol: float) -> Comparison:
    """Compare at the estimated entries, setting kinks apart from ordinary entries."""
    shape = analytic.shape
    a = analytic.reshape(-1)[est.entries]
    kinks, at_kink = _kinks(a, est, shape, rtol, atol)
    ordinary = ~at_kink
    if not ordinary.any():
        ok = all(k.status == "kink" for k in kinks)
        return Comparison(0.0, 0.0, None, None, None, ok, None, kinks=kinks, checked=int(a.size))
    rel = np.where(ordinary, relative_errors(a, est.values, rtol, atol), -1.0)
    worst = int(np.argmax(rel))
    max_rel = float(rel[worst])
    passed = max_rel <= rtol and all(k.status == "kink" for k in kinks)
    abs_err = float(np.abs(a - est.values)[ordinary].max())
    index = tuple(int(i) for i in np.unravel_index(int(est.entries[worst]), shape))
    return Comparison(max_rel, abs_err, index, float(a[worst]), float(est.values[worst]), bool(passed),
                      _kink_message(kinks), kinks=kinks, checked=int(a.size))


def _kinks(a: np.ndarray, est: numeric.Estimate, shape, rtol: float, atol: float):
    """The kinks among the estimated entries, and a mask of where they are."""
    lo, hi = np.minimum(est.left, est.right), np.maximum(est.left, est.right)
    # One-sided slopes differ by ~h·f″ on smooth ground; a real kink separates them by far more.
    disagree = relative_errors(est.left, est.right, 1e-3, atol) > 1e-3
    at_kink = est.crossed & disagree
    slack = atol + rtol * np.maximum(np.abs(lo), np.abs(hi))
    inside = (a >= lo - slack) & (a <= hi + slack)
    kinks = tuple(
        Kink(tuple(int(i) for i in np.unravel_index(int(est.entries[k]), shape)), float(a[k]),
             float(est.left[k]), float(est.right[k]), "kink" if inside[k] else "fail")
        for k in np.flatnonzero(at_kink))
    return kinks, at_kink


def _kink_message(kinks: tuple[Kink, ...]) -> str | None:
    """Why a comparison failed at a kink: the analytic value outside the one-sided slopes."""
    failed = [k for k in kinks if k.status == "fail"]
    if not failed:
        return None
    k = failed[0]
    return (f"at the kink {list(k.index)} the analytic value {k.analytic:.10g} lies outside the one-sided "
            f"slopes [{min(k.left, k.right):.10g}, {max(k.left, k.right):.10g}]")
