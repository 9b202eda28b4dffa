"""Finite-difference derivatives of a scalar function, entry by entry, in batches, each with its error.

Knows nothing of specs. It is given an evaluator `evaluate(flat_indices, deltas) -> (ΔJ, crossed, size)`
returning, for each k, J(θ + δ_k e_{i_k}) − J(θ), whether that move crossed a non-smooth point, and
the size of what the evaluation summed (Σ|L(new)| + |L(old)| over the entries it re-evaluated), which
sets the scale of its round-off. Deltas are real, or imaginary for the complex step.

Every estimate carries an error estimate, per entry:
- round-off, from the size each perturbation really re-evaluated (never the global |J|), over the step;
- truncation, measured where it matters (`refine`): the derivative on a ladder of steps h, 2h, 4h gives
  two Richardson values whose difference bounds the error of the better one. A step search moves the
  ladder down when truncation dominates and up when round-off does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

MACHINE_EPS = np.finfo(np.float64).eps
# Central differences: truncation ~h², round-off ~ε/h, balanced at h ~ ε^(1/3) ≈ 6.06e-6.
DEFAULT_EPS = float(np.cbrt(MACHINE_EPS))
# Richardson (h and h/2, error ~h⁴ after extrapolation): balanced at h ~ ε^(1/5) ≈ 7.4e-4.
RICHARDSON_EPS = float(MACHINE_EPS ** 0.2)
# Complex step: no subtraction, so the step can be tiny; only truncation (~h²) is left.
COMPLEX_EPS = 1e-20
# The round-off of one ΔJ: a few ε per unit of what it summed (each L(new), L(old) and their sum round).
ROUNDING = 4.0 * MACHINE_EPS
LADDER = 2.0  # ratio of the ladder's steps
SEARCH = 8.0  # how far one search round moves the ladder

Evaluator = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Estimate:
    """Numeric derivatives at selected entries, each with its error estimate and one-sided slopes."""

    entries: np.ndarray  # flat indices
    values: np.ndarray  # the derivative estimate
    error: np.ndarray  # its estimated error (round-off, plus truncation where measured)
    noise: np.ndarray  # the round-off part of that error
    left: np.ndarray  # (J(θ) − J(θ − h)) / h
    right: np.ndarray  # (J(θ + h) − J(θ)) / h
    left_error: np.ndarray  # the estimated error of the left slope
    right_error: np.ndarray  # the estimated error of the right slope
    crossed: np.ndarray  # the stencil crossed a non-smooth point
    steps: np.ndarray
    measured: np.ndarray  # truncation measured on a ladder (refined), not only round-off

    def where(self, mask: np.ndarray, other: "Estimate") -> "Estimate":
        """This estimate with the entries in `mask` taken from `other` (an estimate of those entries alone)."""
        fields = {}
        for name in ("values", "error", "noise", "left", "right", "left_error", "right_error", "crossed", "steps",
                     "measured"):
            merged = getattr(self, name).copy()
            merged[mask] = getattr(other, name)
            fields[name] = merged
        return replace(self, **fields)


def default_eps(method: str) -> float:
    """The base step a method uses unless told otherwise."""
    return {"central": DEFAULT_EPS, "richardson": RICHARDSON_EPS, "complex-step": COMPLEX_EPS}[method]


def steps(theta: np.ndarray, eps: float | None = None, method: str = "central") -> np.ndarray:
    """Per-entry step h = eps·max(1, |θ|), so large entries move by a proportionate amount."""
    base = default_eps(method) if eps is None else eps
    return base * np.maximum(1.0, np.abs(theta))


def evaluations_per_entry(method: str) -> int:
    return {"central": 2, "richardson": 4, "complex-step": 1}[method]


def directional_evaluations(method: str) -> int:
    """Evaluations one `directional` derivative makes: a ladder of three ± pairs, or one complex step."""
    return 1 if method == "complex-step" else 6


def estimate(evaluate: Evaluator, theta: np.ndarray, entries: np.ndarray | None = None,
             method: str = "central", eps: float | None = None, batch: int = 4096) -> Estimate:
    """Derivative estimates at `entries` (default: all) with the method's own stencil; errors from round-off."""
    theta = np.asarray(theta, dtype=float)
    flat_theta = theta.reshape(-1)
    entries = np.arange(flat_theta.size) if entries is None else np.asarray(entries, dtype=int)
    h = steps(flat_theta[entries], eps, method)
    if method == "complex-step":
        return _complex_step(evaluate, flat_theta, entries, h, batch)
    ladder = (h / 2, h) if method == "richardson" else (h,)
    rungs = [_central(evaluate, flat_theta, entries, step, batch) for step in ladder]
    if method == "central":
        return _estimate_from(entries, h, rungs[0], value=rungs[0].value, noise=rungs[0].noise)
    narrow, wide = rungs
    return _estimate_from(entries, h, narrow, value=_extrapolate(narrow.value, wide.value),
                          noise=_extrapolated_noise(narrow.noise, wide.noise),
                          crossed=narrow.crossed | wide.crossed)


def refine(evaluate: Evaluator, theta: np.ndarray, est: Estimate, mask: np.ndarray, method: str = "central",
           eps: float | None = None, batch: int = 4096) -> Estimate:
    """The entries in `mask` again, on a ladder of three steps: Richardson values, truncation measured."""
    if method == "complex-step" or not mask.any():
        return est
    flat_theta = np.asarray(theta, dtype=float).reshape(-1)
    base = est.steps[mask] / (4.0 if method == "richardson" else 1.0)  # richardson's ladder ends at its own h
    return est.where(mask, _ladder(evaluate, flat_theta, est.entries[mask], base, batch))


def search(evaluate: Evaluator, theta: np.ndarray, est: Estimate, mask: np.ndarray, batch: int = 4096) -> Estimate:
    """For refined entries in `mask`, one ladder further down (where truncation dominates the error) or up
    (where round-off does); each entry keeps whichever ladder gives the smaller error."""
    if not mask.any():
        return est
    flat_theta = np.asarray(theta, dtype=float).reshape(-1)
    error = np.where(np.isfinite(est.error[mask]) & np.isfinite(est.values[mask]), est.error[mask], np.inf)
    truncation = ~(error <= 2.0 * est.noise[mask])  # a non-finite ladder (an edge within reach) shrinks too
    base = np.where(truncation, est.steps[mask] / SEARCH, est.steps[mask] * SEARCH)
    moved = _ladder(evaluate, flat_theta, est.entries[mask], base, batch)
    # a non-finite entry takes the moved ladder whatever it gives, so the next round moves on from there
    better = (np.isfinite(moved.values) & (moved.error < error)) | ~np.isfinite(error)
    take = mask.copy()
    take[mask] = better
    return est.where(take, _subset(moved, better))


def directional(evaluate_along: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], scale: float,
                method: str = "central", eps: float | None = None) -> tuple[float, float]:
    """(d/dt J(θ + t·v) at t = 0, its error), given evaluate_along(t_values) -> (ΔJ, size) at each t."""
    h = (default_eps(method) if eps is None else eps) * max(1.0, scale)
    if method == "complex-step":
        dJ, size = evaluate_along(np.array([1j * h]))
        value = float(np.imag(dJ[0]) / h)
        return value, float(ROUNDING * (size[0] / h + abs(value)))
    base = h / 4 if method == "richardson" else h
    ts = np.array([base, -base, LADDER * base, -LADDER * base, LADDER ** 2 * base, -LADDER ** 2 * base])
    dJ, size = evaluate_along(ts)
    d = [(dJ[2 * k] - dJ[2 * k + 1]) / (2 * ts[2 * k]) for k in range(3)]
    noise = [ROUNDING * (size[2 * k] + size[2 * k + 1]) / (2 * ts[2 * k]) for k in range(3)]
    fine, coarse = _extrapolate(d[0], d[1]), _extrapolate(d[1], d[2])
    return float(fine), float(abs(fine - coarse) + _extrapolated_noise(noise[0], noise[1]) + ROUNDING * abs(fine))


# ----------------------------------------------------------------------------- one rung, and the ladder


@dataclass(frozen=True)
class _Rung:
    """The central difference at one step, per entry, with its one-sided slopes and their round-off."""

    value: np.ndarray
    noise: np.ndarray
    left: np.ndarray
    right: np.ndarray
    side_noise: np.ndarray
    crossed: np.ndarray


def _central(evaluate: Evaluator, flat_theta, entries, h, batch) -> _Rung:
    """(J(θ+h) − J(θ−h)) / 2h at every entry, in chunks of `batch` evaluations (a chunk's entries at +h and −h
    together); the quotients and their round-off are formed once over every entry, after the last chunk."""
    per_call = max(1, int(batch) // 2)
    up, down = _travelled(flat_theta[entries], h)
    chunks = []
    for s in range(0, entries.size, per_call):
        idx = entries[s:s + per_call]
        k = idx.size
        dJ, crossed, size = evaluate(np.concatenate([idx, idx]), np.concatenate([up[s:s + k], down[s:s + k]]))
        chunks.append((dJ[:k], dJ[k:], size[:k], size[k:], crossed[:k] | crossed[k:]))
    if not chunks:
        empty = np.zeros(0)
        return _Rung(empty, empty, empty, empty, empty, np.zeros(0, bool))
    plus, minus, size_up, size_down, crossed = (np.concatenate(x) for x in zip(*chunks))
    span = up - down
    value = (plus - minus) / span
    noise = ROUNDING * (size_up + size_down) / np.abs(span) + ROUNDING * np.abs(value)
    side_noise = ROUNDING * np.maximum(size_up / np.abs(up), size_down / np.abs(down))
    return _Rung(value, noise, minus / down, plus / up, side_noise, crossed)


def _ladder(evaluate: Evaluator, flat_theta, entries, base, batch) -> Estimate:
    """Central differences at base, 2·base, 4·base: the better Richardson value, and the gap to the other."""
    rungs = [_central(evaluate, flat_theta, entries, base * LADDER ** k, batch) for k in range(3)]
    fine, coarse = _extrapolate(rungs[0].value, rungs[1].value), _extrapolate(rungs[1].value, rungs[2].value)
    noise = _extrapolated_noise(rungs[0].noise, rungs[1].noise)
    error = np.abs(fine - coarse) + noise
    # one-sided slopes: truncation ~h·f″/2, which the next rung doubles (on the side a kink is not)
    left_error = np.abs(rungs[0].left - rungs[1].left) + rungs[0].side_noise
    right_error = np.abs(rungs[0].right - rungs[1].right) + rungs[0].side_noise
    crossed = rungs[0].crossed | rungs[1].crossed | rungs[2].crossed
    return Estimate(entries, fine, error, noise, rungs[0].left, rungs[0].right, left_error, right_error, crossed,
                    base, np.ones(entries.size, bool))


def _estimate_from(entries, h, rung: _Rung, value, noise, crossed=None) -> Estimate:
    """A first-pass estimate: errors are round-off only (truncation is not measured yet)."""
    return Estimate(entries, value, noise, noise, rung.left, rung.right, rung.side_noise, rung.side_noise,
                    rung.crossed if crossed is None else crossed, h, np.zeros(entries.size, bool))


def _complex_step(evaluate: Evaluator, flat_theta, entries, h, batch) -> Estimate:
    """Im J(θ + ih) / h: no subtraction, so the error is a few ε of what the imaginary part summed."""
    per_call = max(1, int(batch))
    values, crossed, error = [], [], []
    for s in range(0, entries.size, per_call):
        idx, step = entries[s:s + per_call], h[s:s + per_call]
        dJ, cross, size = evaluate(idx, 1j * step)
        value = np.imag(dJ) / step
        values.append(value)
        crossed.append(cross)
        error.append(ROUNDING * (size / step + np.abs(value)))
    value = np.concatenate(values) if values else np.zeros(0)
    err = np.concatenate(error) if error else np.zeros(0)
    cross = np.concatenate(crossed) if crossed else np.zeros(0, bool)
    return Estimate(entries, value, err, err, value, value, err, err, cross, h, np.ones(entries.size, bool))


def _extrapolate(narrow, wide):
    """Richardson: D(h) = f′ + c·h² + O(h⁴), so (4·D(h) − D(2h)) / 3 = f′ + O(h⁴)."""
    return narrow + (narrow - wide) / 3.0


def _extrapolated_noise(narrow_noise, wide_noise):
    """The round-off of (4·D(h) − D(2h)) / 3."""
    return (4.0 * narrow_noise + wide_noise) / 3.0


def _subset(est: Estimate, mask) -> Estimate:
    """The estimate of the entries in `mask` alone."""
    return Estimate(est.entries[mask], est.values[mask], est.error[mask], est.noise[mask], est.left[mask],
                    est.right[mask], est.left_error[mask], est.right_error[mask], est.crossed[mask], est.steps[mask],
                    est.measured[mask])


def _travelled(theta, h):
    """The moves actually made after rounding θ ± h to floats: (θ + h) − θ and (θ − h) − θ."""
    return (theta + h) - theta, (theta - h) - theta
