"""column_fit: layer norm at the last layer, each batch's ΔJ read off a polynomial in the two numbers each column moves
by. Oracles: the network written out in plain numpy (each variant's J evaluated whole), in mpmath at 40 digits for
the precision claims, and the exact chunked route it replaces."""

import numpy as np
import pytest

import gradcheck
from gradcheck import column_fit, numeric, spread_tail
from gradcheck.perturb import Perturber

mpmath = pytest.importorskip("mpmath")

D, M = 24, 12  # W has 576 entries: one batch of 1,152 variants, past MIN_VARIANTS


def _spec(activation="tanh", x_std=1.0, w_std=0.3, gain_std=0.2, bias_mean=0.0):
    return gradcheck.loads(f"""seed: 5
params:
  W: {{shape: [{D}, {D}], std: {w_std}}}
data:
  X: {{shape: [{D}, {M}], std: {x_std}}}
  Y: {{shape: [{D}, {M}], std: 0.5}}
  g: {{shape: [{D}, 1], mean: 1, std: {gain_std}}}
  b: {{shape: [{D}, 1], mean: {bias_mean}, std: 0.2}}
input: X
layers:
  - {{weight: W}}
  - {{layernorm: {{gain: g, bias: b, eps: 1e-5}}, activation: {activation}}}
objective: {{loss: squared_error, target: Y}}
""")


def _net(W, v, f=np.tanh, eps=1e-5):
    """J of W X → layer norm (gain g, bias b) → f → ½‖a − Y‖², in plain numpy."""
    h = W @ v["X"]
    c = h - h.mean(axis=0, keepdims=True)
    z = v["g"] * c / np.sqrt((c * c).mean(axis=0, keepdims=True) + eps) + v["b"]
    return 0.5 * np.sum((f(z) - v["Y"]) ** 2)


def _net_mp(W, v, k, delta, f=mpmath.tanh):
    """J(W + δ e_k) − J(W) at 40 digits: the truth both routes are held to."""
    with mpmath.workdps(40):
        X, Y, g, b = (mpmath.matrix(v[key].tolist()) for key in ("X", "Y", "g", "b"))
        total = mpmath.mpf(0)
        for moved in (True, False):
            Wm = mpmath.matrix(W.tolist())
            if moved:
                Wm[k // D, k % D] += mpmath.mpf(float(delta))
            H = Wm * X
            J = mpmath.mpf(0)
            for j in range(M):
                col = [H[i, j] for i in range(D)]
                mu = mpmath.fsum(col) / D
                var = mpmath.fsum((x - mu) ** 2 for x in col) / D
                s = mpmath.sqrt(var + mpmath.mpf("1e-5"))
                J += mpmath.fsum((f(g[i] * (col[i] - mu) / s + b[i]) - Y[i, j]) ** 2 for i in range(D)) / 2
            total += J if moved else -J
        return float(total)


def _exact(spec, entries, deltas, monkeypatch):
    """(ΔJ, crossed, size) of W's entries moved by `deltas` by the exact chunks alone (the fit's batch out of reach)."""
    with monkeypatch.context() as patched:
        patched.setattr(spread_tail, "MIN_VARIANTS", 10**12)
        return Perturber(spec.model, dict(spec.values), "W")(entries, deltas)


@pytest.fixture
def spy(monkeypatch):
    """The fit's outcome per batch it was tried on: True where it settled the batch, False where it gave it back."""
    taken = []
    real = column_fit.fitted_change

    def fitted(*args):
        out = real(*args)
        taken.append(out is not None)
        return out
    monkeypatch.setattr(spread_tail, "fitted_change", fitted)
    return taken


ACTIVATIONS = {"tanh": np.tanh, "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)), "softplus": lambda z: np.logaddexp(0, z)}


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("eps", [numeric.DEFAULT_EPS, -2e-5, 4 * numeric.RICHARDSON_EPS])
def test_the_fit_equals_the_network_written_out(eps, activation, spy):
    """Every variant's ΔJ (the central, negative and Richardson's widest steps) equals J(W + δ e_k) − J(W) evaluated
    whole in plain numpy, within the rounding of those two sums; tanh (a ufunc), sigmoid and softplus (not)."""
    spec = _spec(activation)
    n = spec.values["W"].size
    delta = np.full(n, eps)
    change, crossed, size = Perturber(spec.model, dict(spec.values), "W")(np.arange(n), delta)
    assert spy and all(spy)
    W, v = np.array(spec.values["W"]), {k: np.asarray(spec.values[k]) for k in ("X", "Y", "g", "b")}
    f = ACTIVATIONS[activation]
    base = _net(W, v, f)
    want = np.array([_net(W + eps * np.eye(n)[k].reshape(W.shape), v, f) - base for k in range(n)])
    assert not crossed.any()
    assert np.all(np.abs(change - want) <= 2 * numeric.ROUNDING * size), np.max(np.abs(change - want) / size)


@pytest.mark.slow
def test_the_fit_is_as_close_to_the_truth_as_the_chunks(monkeypatch, spy):
    """At 40 digits on a sample of entries (raw-scale X, entries ~1e3): the fit's error is within a small share of the
    round-off term the verdict gives it, and no more than a few times the exact chunks' own."""
    spec = _spec(x_std=1e3)
    n = spec.values["W"].size
    h = numeric.steps(np.ravel(spec.values["W"]))
    fit = Perturber(spec.model, dict(spec.values), "W")(np.arange(n), h)
    assert spy and all(spy)
    exact = _exact(spec, np.arange(n), h, monkeypatch)
    W, v = np.array(spec.values["W"]), {k: np.asarray(spec.values[k]) for k in ("X", "Y", "g", "b")}
    sample = np.random.default_rng(0).choice(n, 12, replace=False)
    truth = np.array([_net_mp(W, v, k, h[k]) for k in sample])
    fit_error, exact_error = np.abs(fit[0][sample] - truth), np.abs(exact[0][sample] - truth)
    term = numeric.ROUNDING * fit[2][sample]
    assert np.all(fit_error <= 0.05 * term), fit_error / term
    assert np.max(fit_error) <= 4 * np.max(exact_error) + 1e-3 * numeric.ROUNDING * np.min(fit[2])


@pytest.mark.parametrize("eps", [numeric.DEFAULT_EPS, 4 * numeric.RICHARDSON_EPS])
def test_the_fit_agrees_with_the_chunks_it_replaces(eps, monkeypatch, spy):
    """Same variants, fit and chunks: ΔJ within 5% of the verdict's round-off term, the sizes within the tail's
    share, no kink flags on either side."""
    spec = _spec()
    n = spec.values["W"].size
    delta = np.concatenate([np.full(n, eps), np.full(n, -eps)])
    entries = np.concatenate([np.arange(n), np.arange(n)])
    fit = Perturber(spec.model, dict(spec.values), "W")(entries, delta)
    assert spy and all(spy)
    exact = _exact(spec, entries, delta, monkeypatch)
    assert np.all(np.abs(fit[0] - exact[0]) <= 0.05 * numeric.ROUNDING * exact[2])  # the truth is nearer than this
    assert np.all(exact[2] <= fit[2]) and np.all(fit[2] <= (1 + spread_tail.TAIL_SHARE) * exact[2] * (1 + 1e-12))
    assert not fit[1].any() and not exact[1].any()


def test_a_step_too_large_for_the_fit_takes_the_chunks(monkeypatch, spy):
    """At δ = 0.5 the polynomials do not settle below the tail allowed: the batch goes to the chunks, and its numbers
    are theirs bit for bit."""
    spec = _spec()
    n = spec.values["W"].size
    delta = np.full(n, 0.5)
    got = Perturber(spec.model, dict(spec.values), "W")(np.arange(n), delta)
    assert spy == [False]
    want = _exact(spec, np.arange(n), delta, monkeypatch)
    for x, y in zip(got, want):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("activation", ["abs", "relu", "log", "sqrt"])
def test_a_kinked_or_edged_activation_is_never_fitted(activation, spy, monkeypatch):
    """Kink flags need every entry of every variant: abs and relu take the chunks, the fit is not even tried; nor
    for log and sqrt, whose domain a variant at a corner of the box may leave where no node does."""
    import gradcheck.perturb as perturb
    spec = _spec(activation, bias_mean=10.0)
    n = spec.values["W"].size
    calls = []
    monkeypatch.setattr(perturb, "spread_to_loss", lambda *a: calls.append(1) or spread_tail.spread_to_loss(*a))
    Perturber(spec.model, dict(spec.values), "W")(np.arange(n), np.full(n, 1e-3))
    assert spy == [] and calls


def test_the_rim_sums_the_highest_coefficients_over_the_columns():
    """rim: |C[k, DEGREE]| and |C[DEGREE, l]| summed over k, l and the columns, the corner once."""
    P = column_fit.DEGREE + 1
    coefs = np.zeros((2, P, P))
    coefs[:, :-1, :-1] = 5.0  # resolved: not counted
    coefs[0, -1, 0], coefs[1, 2, -1], coefs[0, -1, -1] = -1e-9, 2e-10, 3e-11
    assert column_fit.rim(coefs) == pytest.approx(1e-9 + 2e-10 + 3e-11)


def test_a_polynomial_is_fitted_exactly():
    """A linear f (np.negative) under squared error makes each column's loss a quadratic in (s, t): the fit returns
    it to rounding, with no tail, whatever the box's width."""
    rng = np.random.default_rng(2)
    B, m, n = 300, 4, 6
    columns = rng.standard_normal((m, 3, n))
    coef = np.stack([1 + rng.uniform(-0.3, 0.3, (B, m)), rng.uniform(-0.3, 0.3, (B, m)), np.ones((B, m))], axis=-1)
    base = np.stack([np.ones(m), np.zeros(m), np.ones(m)], axis=-1)
    spread = column_fit.ColumnSpread(coef, columns, rng.standard_normal((B, m)), rng.integers(0, n, B), base)
    a, y = -np.einsum("jc,jcn->nj", base, columns), rng.standard_normal((n, m))
    entry = lambda a, y: 0.5 * np.square(a - y)  # noqa: E731
    change, tail = column_fit.fitted_change(spread, np.negative, entry, a, y, 1e-9)
    want = []
    for b in range(B):
        z = np.einsum("jc,jcn->nj", coef[b], columns)
        z[spread.rows[b]] += spread.own[b]
        want.append(np.sum(entry(-z, y) - entry(a, y)))
    np.testing.assert_allclose(change, want, rtol=1e-10, atol=1e-12)
    assert tail < 1e-12
