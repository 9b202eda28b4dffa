"""The reference MLP's shortcuts (a moved W1 row through tanh, a rank-1 sigmoid unit, BCE from log1p·expm1; the
±h halves gathered once; the moved row activated, differenced and scaled in place) against a plain per-entry
central-difference loop that shares no code with the engine: its own forward pass in long double, every entry
moved by the same travelled steps ((θ ± h) − θ), J recomputed whole. Extreme cases included: saturated tanh
(|z| ≫ 1, tanh(z) = ±1 in float64), raw-scale data (x ~ 1e3, so h·x ~ 1e-2), a confident sigmoid (σ near 0 or 1).
"""

import numpy as np
import pytest

import gradcheck
from gradcheck import numeric
from gradcheck.perturb import Perturber

LD = np.longdouble
SPEC = """\
seed: {seed}
params:
  W1: {{shape: [{H}, {D}], std: {w1}}}
  b1: {{shape: [{H}, 1], std: 0.1}}
  W2: {{shape: [1, {H}], std: {w2}}}
  b2: {{shape: [1, 1], std: 0.1}}
data:
  X: {{shape: [{D}, {M}], std: {x}}}
  Y: {{shape: [1, {M}], init: binary}}
input: X
layers:
  - {{weight: W1, bias: b1, activation: tanh}}
  - {{weight: W2, bias: b2, activation: sigmoid}}
objective: {{loss: binary_cross_entropy, target: Y, reduce: mean}}
"""
CASES = {
    "plain": dict(w1=0.5, w2=0.5, x=1.0),
    "saturated tanh": dict(w1=8.0, w2=0.5, x=1.0),  # |z| up to ~60: tanh(z) rounds to ±1, 1 − t² underflows
    "raw-scale data": dict(w1=0.1, w2=0.5, x=1e3),  # h·x ~ 6e-3, z ~ 1e2
    "confident sigmoid": dict(w1=0.5, w2=30.0, x=1.0),  # output z ~ ±50: σ rounds to 0 or 1
}


def oracle_objective(p: dict, X, Y) -> LD:
    """J = mean over columns of softplus(z2) − y·z2, z2 = W2 tanh(W1 X + b1) + b2, all in long double."""
    a1 = np.tanh(p["W1"] @ X + p["b1"])
    z2 = p["W2"] @ a1 + p["b2"]
    softplus = np.maximum(z2, 0) + np.log1p(np.exp(-np.abs(z2)))
    return np.sum(softplus - Y * z2) / Y.shape[1]


def oracle_central(values: dict, name: str) -> np.ndarray:
    """(J(θ + up) − J(θ + down)) / (up − down) per entry, with gradcheck's travelled steps, in long double."""
    p = {k: values[k].astype(LD) for k in ("W1", "b1", "W2", "b2")}
    X, Y = values["X"].astype(LD), values["Y"].astype(LD)
    theta = values[name].reshape(-1)
    h = np.cbrt(np.finfo(np.float64).eps) * np.maximum(1.0, np.abs(theta))
    up, down = (theta + h) - theta, (theta - h) - theta  # the moves float64 can make, as gradcheck makes them
    out = np.empty(theta.size)
    for k in range(theta.size):
        moved = []
        for step in (up[k], down[k]):
            q = dict(p)
            q[name] = p[name].copy()
            q[name].flat[k] += LD(step)  # exact: θ + step is a float64
            moved.append(oracle_objective(q, X, Y))
        out[k] = float((moved[0] - moved[1]) / (LD(up[k]) - LD(down[k])))
    return out


def spec_for(case: str, seed: int = 1, H: int = 6, D: int = 5, M: int = 7):
    return gradcheck.loads(SPEC.format(seed=seed, H=H, D=D, M=M, **CASES[case]))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("batch", [4096, 6])  # one batch, or many small ones (each a ±h pair of 3 entries)
def test_central_differences_equal_a_long_double_loop(case, batch):
    """Every FD value within 1e-12 relative of the oracle, or within the round-off the engine itself reports."""
    spec = spec_for(case)
    values = dict(spec.values)
    for name in ("W1", "b1", "W2", "b2"):
        est = numeric.estimate(Perturber(spec.model, values, name), values[name], method="central", batch=batch)
        want = oracle_central(values, name)
        gap = np.abs(est.values - want)
        assert np.all(gap <= np.maximum(1e-12 * np.abs(want), est.noise)), (case, name, gap.max())


@pytest.mark.parametrize("case", list(CASES))
def test_paired_halves_equal_unpaired_moves(case):
    """A batch of the same entries at +h and −h (gathered once, in place) equals each move made on its own,
    for real and imaginary steps, bit for bit up to the order of sums."""
    spec = spec_for(case)
    values = dict(spec.values)
    rng = np.random.default_rng(0)
    for name in ("W1", "b1"):
        perturber = Perturber(spec.model, values, name)
        n = values[name].size
        idx = np.arange(n)
        for step in (rng.uniform(1e-6, 1e-3, n), 1e-20j * np.ones(n)):
            paired, _, paired_size = perturber(np.concatenate([idx, idx]), np.concatenate([step, -step]))
            alone = np.concatenate([perturber(idx[k:k + 1], s[k:k + 1])[0] for s in (step, -step) for k in idx])
            sizes = np.concatenate([perturber(idx[k:k + 1], s[k:k + 1])[2] for s in (step, -step) for k in idx])
            np.testing.assert_allclose(paired, alone, rtol=1e-13, atol=1e-15 * np.max(np.abs(alone)))
            np.testing.assert_allclose(paired_size, sizes, rtol=1e-13, atol=1e-15 * np.max(np.abs(sizes)))


def test_a_slip_in_one_w1_entry_is_found_there_alone():
    """The shortcut estimate still separates a gradient off by 1e-4 relative in one W1 entry, and only that entry."""
    spec = spec_for("plain")
    assert gradcheck.check(spec).status == "pass"
    wrong = spec.gradient()["W1"].copy()
    wrong[2, 3] *= 1.0 + 1e-4
    est = numeric.estimate(Perturber(spec.model, dict(spec.values), "W1"), spec.values["W1"], method="central")
    rel = np.abs(wrong.reshape(-1) - est.values) / np.abs(est.values)
    assert np.flatnonzero(rel > 1e-6).tolist() == [2 * spec.values["W1"].shape[1] + 3]
