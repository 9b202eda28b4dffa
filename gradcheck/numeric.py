"""Finite-difference derivatives of a scalar function, entry by entry, in batches.

Knows nothing of specs. It is given an evaluator `evaluate(flat_indices, deltas) -> (ΔJ, crossed)`
returning, for each k, J(θ + δ_k e_{i_k}) − J(θ) and whether that move crossed a non-smooth point.
Deltas are real, or imaginary for the complex step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

MACHINE_EPS = np.finfo(np.float64).eps
# Central differences: truncation ~h², round-off ~ε/h, balanced at h ~ ε^(1/3) ≈ 6.06e-6.
DEFAULT_EPS = float(np.cbrt(MACHINE_EPS))
# Richardson (h and h/2, error ~h⁴ after extrapolation): balanced at h ~ ε^(1/5) ≈ 7.4e-4.
RICHARDSON_EPS = float(MACHINE_EPS ** 0.2)
# Complex step: no subtraction, so the step can be tiny; only truncation (~h²) is left.
COMPLEX_EPS = 1e-20

Evaluator = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Estimate:
    """Numeric derivatives at selected entries, with the one-sided slopes where they exist."""

    entries: np.ndarray  # flat indices
    values: np.ndarray  # the derivative estimate
    left: np.ndarray  # (J(θ) − J(θ − h)) / h
    right: np.ndarray  # (J(θ + h) − J(θ)) / h
    crossed: np.ndarray  # the stencil crossed a non-smooth point
    steps: np.ndarray


def default_eps(method: str) -> float:
    """The base step a method uses unless told otherwise."""
    return {"central": DEFAULT_EPS, "richardson": RICHARDSON_EPS, "complex-step": COMPLEX_EPS}[method]


def steps(theta: np.ndarray, eps: float | None = None, method: str = "central") -> np.ndarray:
    """Per-entry step h = eps·max(1, |θ|), so large entries move by a proportionate amount."""
    base = default_eps(method) if eps is None else eps
    return base * np.maximum(1.0, np.abs(theta))


def evaluations_per_entry(method: str) -> int:
    return {"central": 2, "richardson": 4, "complex-step": 1}[method]


def estimate(evaluate: Evaluator, theta: np.ndarray, entries: np.ndarray | None = None,
             method: str = "central", eps: float | None = None, batch: int = 4096) -> Estimate:
    """Derivative estimates at `entries` (default: all), `batch` evaluations per call."""
    theta = np.asarray(theta, dtype=float)
    flat_theta = theta.reshape(-1)
    entries = np.arange(flat_theta.size) if entries is None else np.asarray(entries, dtype=int)
    h = steps(flat_theta[entries], eps, method)
    per_call = max(1, int(batch) // evaluations_per_entry(method))
    parts = [_estimate_chunk(evaluate, flat_theta, entries[s:s + per_call], h[s:s + per_call], method)
             for s in range(0, entries.size, per_call)]
    if not parts:
        empty = np.zeros(0)
        return Estimate(entries, empty, empty, empty, np.zeros(0, bool), empty)
    values, left, right, crossed = (np.concatenate(x) for x in zip(*parts))
    return Estimate(entries, values, left, right, crossed, h)


def _estimate_chunk(evaluate: Evaluator, flat_theta, idx, h, method):
    if method == "complex-step":
        dJ, crossed = evaluate(idx, 1j * h)
        values = np.imag(dJ) / h
        return values, values, values, crossed
    up, down = _travelled(flat_theta[idx], h)
    if method == "central":
        dJ, crossed = evaluate(np.concatenate([idx, idx]), np.concatenate([up, down]))
        k = idx.size
        plus, minus = dJ[:k], dJ[k:]
        return (plus - minus) / (up - down), minus / down, plus / up, crossed[:k] | crossed[k:]
    # Richardson: D(h) = f′ + c·h² + O(h⁴), so (4·D(h/2) − D(h)) / 3 = f′ + O(h⁴).
    up2, down2 = _travelled(flat_theta[idx], h / 2)
    dJ, crossed = evaluate(np.tile(idx, 4), np.concatenate([up, down, up2, down2]))
    p, m, p2, m2 = np.split(dJ, 4)
    wide, narrow = (p - m) / (up - down), (p2 - m2) / (up2 - down2)
    c = np.split(crossed, 4)
    return narrow + (narrow - wide) / 3.0, m2 / down2, p2 / up2, c[0] | c[1] | c[2] | c[3]


def _travelled(theta, h):
    """The moves actually made after rounding θ ± h to floats: (θ + h) − θ and (θ − h) − θ."""
    return (theta + h) - theta, (theta - h) - theta


def directional(evaluate_along: Callable[[np.ndarray], np.ndarray], scale: float,
                method: str = "central", eps: float | None = None) -> float:
    """d/dt J(θ + t·v) at t = 0, given evaluate_along(t_values) -> ΔJ at each t."""
    h = (default_eps(method) if eps is None else eps) * max(1.0, scale)
    if method == "complex-step":
        return float(np.imag(evaluate_along(np.array([1j * h]))[0]) / h)
    if method == "central":
        p, m = evaluate_along(np.array([h, -h]))
        return float((p - m) / (2 * h))
    p, m, p2, m2 = evaluate_along(np.array([h, -h, h / 2, -h / 2]))
    wide, narrow = (p - m) / (2 * h), (p2 - m2) / h
    return float(narrow + (narrow - wide) / 3.0)
