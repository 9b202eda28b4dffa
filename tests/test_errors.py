"""The numeric error estimate is honest: on functions whose derivative is known in closed form, the
estimated error covers the true error of the value gradcheck reports, after refinement and search."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import numeric


def evaluator(f):
    """(ΔJ, crossed, size) for single-entry moves of θ under J = Σ f(θ), the way the perturber reports them."""
    def evaluate_at(theta):
        def evaluate(flat, delta):
            base = theta.reshape(-1)[flat]
            with np.errstate(invalid="ignore"):  # a step beyond sqrt's domain is NaN, as in the engine
                new, old = f(base + delta), f(base)
            return new - old, np.zeros(len(flat), bool), np.abs(new) + np.abs(old)
        return evaluate
    return evaluate_at


CASES = {  # name: (f, f′, θ) — raw scale, huge values, tiny slopes, near a domain edge
    "raw scale exp": (lambda t: np.exp(1e3 * t), lambda t: 1e3 * np.exp(1e3 * t), np.linspace(-0.01, 0.01, 7)),
    "large offset": (lambda t: 1e8 + np.sin(t), np.cos, np.linspace(0.1, 2.0, 7)),
    "tiny slope": (lambda t: 1.0 + 1e-9 * t ** 2, lambda t: 2e-9 * t, np.linspace(0.5, 3.0, 7)),
    "sqrt near 0": (np.sqrt, lambda t: 0.5 / np.sqrt(t), np.array([3e-6, 1e-5, 4e-5, 1e-4])),
}


@pytest.mark.parametrize("name", CASES)
def test_the_estimated_error_covers_the_true_error(name):
    f, df, theta = CASES[name]
    evaluate = evaluator(f)(theta)
    est = numeric.estimate(evaluate, theta)
    everything = np.ones(theta.size, bool)
    est = numeric.refine(evaluate, theta, est, everything)
    for _ in range(2):
        est = numeric.search(evaluate, theta, est, everything)
    true_error = np.abs(est.values - df(theta))
    assert np.all(np.isfinite(est.values)), est.values
    assert np.all(true_error <= est.error), (true_error, est.error)


def test_the_search_makes_the_error_smaller_where_the_step_was_wrong():
    f, df, theta = CASES["raw scale exp"]
    evaluate = evaluator(f)(theta)
    first = numeric.refine(evaluate, theta, numeric.estimate(evaluate, theta), np.ones(theta.size, bool))
    searched = numeric.search(evaluate, theta, first, np.ones(theta.size, bool))
    assert np.all(searched.error <= first.error) and np.any(searched.error < first.error / 10)


def test_round_off_scales_with_what_was_re_evaluated_not_with_the_step_alone():
    f = CASES["large offset"][0]
    theta = np.array([0.5])
    big = numeric.estimate(evaluator(f)(theta), theta)
    small = numeric.estimate(evaluator(lambda t: np.sin(t))(theta), theta)
    assert big.noise[0] > 1e6 * small.noise[0]  # 1e8 re-evaluated against ~0.5
