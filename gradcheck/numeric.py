"""Central finite differences of a scalar function of one matrix, evaluated in batches.

Knows nothing of specs: it is given `f(stack) -> J` that maps a stack of perturbed matrices,
shape (B, rows, cols), to B values of the objective in one vectorized call.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

MACHINE_EPS = np.finfo(np.float64).eps
DEFAULT_EPS = float(np.cbrt(MACHINE_EPS))  # ≈ 6.06e-6: balances truncation (h²) against round-off (ε/h)


def steps(theta: np.ndarray, eps: float | None = None) -> np.ndarray:
    """Per-entry step h = eps·max(1, |θ|), so large entries are moved by a proportionate amount."""
    base = DEFAULT_EPS if eps is None else eps
    return base * np.maximum(1.0, np.abs(theta))


def central_differences(
    f: Callable[[np.ndarray], np.ndarray],
    theta: np.ndarray,
    eps: float | None = None,
    batch: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """(numeric gradient, steps) of f at theta by (f(θ+h) − f(θ−h)) / (2h), entry by entry.

    θ±h are rounded to floats, so the divisor is the distance actually travelled,
    (θ+h) − (θ−h), not the nominal 2h: this removes the representation error of the step.
    """
    theta = np.asarray(theta, dtype=float)
    h = steps(theta, eps)
    flat_theta, flat_h = theta.reshape(-1), h.reshape(-1)
    n = flat_theta.size
    out = np.empty(n)
    chunk = max(1, int(batch) // 2)
    for start in range(0, n, chunk):
        idx = np.arange(start, min(start + chunk, n))
        k = idx.size
        stack = np.repeat(flat_theta[None, :], 2 * k, axis=0)
        upper = flat_theta[idx] + flat_h[idx]
        lower = flat_theta[idx] - flat_h[idx]
        stack[np.arange(k), idx] = upper
        stack[k + np.arange(k), idx] = lower
        values = np.asarray(f(stack.reshape((2 * k,) + theta.shape)), dtype=float).reshape(2 * k)
        out[idx] = (values[:k] - values[k:]) / (upper - lower)
    return out.reshape(theta.shape), h
