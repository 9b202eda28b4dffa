"""Matrix calculus (issue 12, first order): closed-form oracles in plain numpy for every bundled matrix spec,
whole-matrix domains, defines in layers, expressions in roles, and symmetric params."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import gradcheck
from gradcheck import diagnosis
from conftest import FIXTURES, SPECS


def load(name):
    return gradcheck.load(SPECS / name)


def at(text: str) -> tuple[int, int, str]:
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(textwrap.dedent(text), "t.yaml")
    return info.value.line, info.value.col, info.value.message


def inv(x):
    return np.linalg.inv(x)


# ----------------------------------------------------------------------------- bundled specs: J and ∇ in numpy

def _gaussian(v):
    S, X = v["S"], v["X"]
    C = X @ X.T / X.shape[1]
    J = 0.5 * np.linalg.slogdet(S)[1] + 0.5 * np.trace(inv(S) @ C)
    return J, {"S": 0.5 * inv(S).T - 0.5 * inv(S).T @ C.T @ inv(S).T}


def _trace_axb(v):
    A, X, B = v["A"], v["X"], v["B"]
    return np.trace(A @ X @ B), {"X": A.T @ B.T}


def _trace_xtax(v):
    A, X = v["A"], v["X"]
    return np.trace(X.T @ A @ X), {"X": (A + A.T) @ X}


def _least_squares(v):
    A, X, B = v["A"], v["X"], v["B"]
    R = A @ X - B
    return np.sum(R * R), {"X": 2 * A.T @ R}


def _least_squares_solve(v):
    A, B, C = v["A"], v["B"], v["C"]
    Z = np.linalg.inv(A) @ B  # the oracle forms the inverse; the engine solves
    G = 2 * (Z - C)
    return np.sum((Z - C) ** 2), {"A": -inv(A).T @ G @ Z.T, "B": inv(A).T @ G}


def _logdet_ridge(v):
    X, lam = v["X"], float(v["lam"][0, 0])
    M = X.T @ X + lam * np.eye(X.shape[1])
    return np.linalg.slogdet(M)[1], {"X": 2 * X @ inv(M)}


def _quadratic(v):
    A, x, b = v["A"], v["x"], v["b"]
    return (0.5 * x.T @ A @ x - b.T @ x).item(), {"x": 0.5 * (A + A.T) @ x - b}


def _symmetric(v):
    X, A = v["X"], v["A"]
    return np.linalg.slogdet(X)[1] + np.trace(A @ X), {"X": inv(X).T + A.T}


ORACLES = {
    "gaussian_nll_covariance.yaml": _gaussian,
    "trace_axb.yaml": _trace_axb,
    "trace_xtax.yaml": _trace_xtax,
    "least_squares_frobenius.yaml": _least_squares,
    "least_squares_solve.yaml": _least_squares_solve,
    "logdet_gram_ridge.yaml": _logdet_ridge,
    "quadratic_form.yaml": _quadratic,
    "symmetric_logdet_trace.yaml": _symmetric,
}


@pytest.mark.parametrize("name", ORACLES)
def test_bundled_matrix_spec_matches_its_numpy_closed_form(name):
    spec = load(name)
    J, grads = ORACLES[name](spec.values)
    assert spec.objective() == pytest.approx(J, rel=1e-12)
    for param, g in grads.items():
        np.testing.assert_allclose(spec.gradient()[param], g, rtol=1e-10, atol=1e-12)
    result = gradcheck.check(spec)
    assert result.status == "pass" and all(p.expect is not None and p.expect.passed for p in result.params)


def test_solve_spec_fails_on_exactly_a_when_its_inverse_is_not_transposed():
    """The usual slip in δ_A = −A⁻ᵀ G Zᵀ: A⁻¹ for A⁻ᵀ (A is not symmetric); B's formula stays right."""
    text = (SPECS / "least_squares_solve.yaml").read_text(encoding="utf-8")
    wrong = text.replace("A: -2 * solve(A.T, solve(A, B) - C)", "A: -2 * solve(A, solve(A, B) - C)")
    assert wrong != text
    result = gradcheck.check(gradcheck.loads(wrong, "w.yaml"))
    assert [(p.name, p.expect.passed) for p in result.params] == [("A", False), ("B", True)]
    assert np.linalg.cond(load("least_squares_solve.yaml").values["A"]) < 100  # the seed draws a tame A


def test_the_gaussian_example_is_the_issues_text_verbatim():
    text = (SPECS / "gaussian_nll_covariance.yaml").read_text(encoding="utf-8")
    for line in ("  S: {shape: [3, 3], init: spd}", "  C: X @ X.T / m", "    layers: [{activation: inv}, "
                 "{activation: {scale: C}}]", "  S: 0.5 * inv(S) - 0.5 * inv(S) @ C @ inv(S)"):
        assert line in text


def test_symmetric_param_numeric_gradient_is_the_symmetric_space_gradient():
    spec = load("symmetric_logdet_trace.yaml")
    _, grads = _symmetric(spec.values)
    G = grads["X"]
    result = gradcheck.check(spec)
    numeric = result.params[0].entries.numeric
    np.testing.assert_allclose(numeric, G + G.T - np.diag(np.diag(G)), rtol=1e-7)
    assert "G + Gᵀ − diag(G)" in result.params[0].note


def test_spd_init_is_symmetric_positive_definite_and_well_conditioned():
    X = load("gaussian_nll_covariance.yaml").values["S"]
    np.testing.assert_array_equal(X, X.T)
    eig = np.linalg.eigvalsh(X)
    assert 0.5 <= eig.min() and eig.max() <= 2.0


# ----------------------------------------------------------------------------- wrong fixtures: the diagnosis

@pytest.mark.parametrize("name, sentence", [
    ("symmetric_factor_two.yaml", "the off-diagonal entries are 2 × the gradient and the diagonal is right"),
    ("logdet_inverse_not_transposed.yaml", "expect is the transpose of the gradient"),
])
def test_matrix_wrong_fixture_is_diagnosed(name, sentence):
    result = gradcheck.check(gradcheck.load(FIXTURES / "wrong" / name))
    failing = [p for p in result.params if p.status == "fail"]
    assert [p.name for p in failing] == ["X"] and sentence in failing[0].diagnosis


def test_factor_two_pattern_on_arrays():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(3, 3))
    off = ~np.eye(3, dtype=bool)
    tol = np.full((3, 3), 1e-8)
    assert "2 × the gradient" in diagnosis.diagnose(np.where(off, 2 * truth, truth), truth, tol, symmetric=True)
    assert "1/2 × the gradient" in diagnosis.diagnose(np.where(off, truth / 2, truth), truth, tol)
    assert diagnosis.symmetric_factor(diagnosis.Case(2 * truth, truth, tol, (), None)) is None  # all of it: factor


# ----------------------------------------------------------------------------- domains

def test_logdet_of_a_negative_determinant_is_an_error_at_the_layer():
    result = gradcheck.check(gradcheck.loads("params: {S: [[1, 2], [3, 1]]}\ninput: S\n"
                                             "layers: [{activation: logdet}]\n", "t.yaml"))
    assert result.status == "error"
    assert (result.error.line, result.error.col) == (3, 23)
    assert "layer 1 (I, logdet): det z = -5 is not positive" in result.message


def test_inv_of_a_singular_matrix_reports_its_condition_number():
    result = gradcheck.check(gradcheck.loads("params: {S: [[1, 2], [2, 4]]}\ninput: S\n"
                                             "layers: [{activation: inv}]\n", "t.yaml"))
    assert result.status == "error" and "condition number" in result.message and "layer 1 (I, inv)" in result.message
    assert "nan" not in result.message.lower()


@pytest.mark.parametrize("matrix, shown", [
    ("[[1, 1], [1, 1.0000000000001]]", "condition number 4e+13, above 1e+10"),  # nearly singular: finite, round-off
    ("[[1e-13, 0], [0, 1]]", "condition number 1e+13, above 1e+10"),
])
def test_inv_of_a_badly_conditioned_matrix_is_an_error_with_its_condition_number(matrix, shown):
    """Issue 12: not only an exactly singular z: a finite inverse that would be round-off is refused, at the layer."""
    result = gradcheck.check(gradcheck.loads(f"params: {{S: {matrix}}}\ninput: S\nlayers: [{{activation: inv}}]\n",
                                             "t.yaml"))
    assert result.status == "error" and not result.params
    assert result.message.startswith("t.yaml:3:23: layer 1 (I, inv): z is singular or badly conditioned: " + shown)


def test_solve_with_a_badly_conditioned_a_is_an_error_at_the_merge_with_its_condition_number():
    """A finite but round-off A⁻¹B was a false FAIL on A (rel error 1.0); now the merge's domain names it."""
    result = gradcheck.check(gradcheck.loads("params: {A: [[1, 1], [1, 1.0000000000001]], B: [[1], [2]]}\n"
                                             "layers: [{solve: [A, B], activation: tanh}]\n", "t.yaml"))
    assert result.status == "error" and not result.params
    assert result.message.startswith("t.yaml:2:10: layer 1 (solve A, B, tanh): A (the first input of solve) is "
                                     "singular or badly conditioned: condition number 4e+13, above 1e+10")


@pytest.mark.parametrize("layers, matrix, where", [
    ("[{activation: inv}]", "[[1, 1], [0.99999999, 1]]", "the domain of inv (z invertible and well conditioned)"),
    ("[{solve: [S, B]}]", "[[1, 1], [1, 1.00000001]]",
     "the domain of the merge solve (A invertible and well conditioned) in layer 1 (solve S, B, identity)"),
])
def test_a_stencil_across_a_singular_matrix_is_named_not_failed(layers, matrix, where):
    """Issue 12: the point is inside the domain (well enough conditioned) but θ ± h straddles det = 0."""
    text = f"params: {{S: {matrix}}}\ndata: {{B: [[1], [2]]}}\ninput: S\nlayers: {layers}\n"
    result = gradcheck.check(gradcheck.loads(text, "t.yaml"))
    assert result.status == "error" and result.message.startswith("t.yaml:1:10: the finite-difference stencil S[")
    assert "crosses the edge of " + where in result.message
    assert "no verdict on the analytic one" in result.message


def test_a_stencil_across_det_zero_is_named():
    result = gradcheck.check(gradcheck.loads("params: {S: [[1, 1], [0.99999999, 1]]}\ninput: S\n"
                                             "layers: [{activation: logdet}]\n", "t.yaml"))
    assert result.status == "error" and "crosses the edge of the domain of logdet" in result.message


@pytest.mark.parametrize("text, line, col, fragment", [
    ("params: {W: {shape: [2, 3]}}\ninput: W\nlayers: [{activation: inv}]\n", 3, 23,
     "activation inv of layer 1 needs a square z, not 2×3"),
    ("params: {W: {shape: [4, 2]}}\ninput: W\nlayers: [{maxpool: {image: [1, 2, 2], size: [1, 1]}, activation: logdet}]\n",
     3, 66, "only a dense layer"),
])
def test_whole_matrix_activation_shape_errors_are_located(text, line, col, fragment):
    got = at(text)
    assert fragment in got[2] and got[:2] == (line, col), got


# ----------------------------------------------------------------------------- defines and expressions in roles

BASE = """\
params: {W: {shape: [3, 3]}, b: {shape: [3, 1]}}
data: {X: {shape: [3, 5]}, lam: 0.3, m: 5}
"""


@pytest.mark.parametrize("layers, role", [
    ("[{activation: {scale: P}}]", "the argument of scale"),
    ("[{input: P, weight: W}]", "the input of layer 1"),
    ("[{name: h, weight: W}, {add: [h, P]}]", "add in layer 2"),
    ("[{name: h, weight: W}, {mul: [h, P.T]}]", "mul in layer 2"),
    ("[{name: h, weight: W}, {slice: {input: P, rows: [0, 2]}}]", "the slice input of layer 2"),
    ("[{name: h, weight: W}, {concat: [h, P]}]", "concat in layer 2"),
    ("[{weight: P.T}]", "the weight of layer 1"),
    ("[{weight: W, bias: P}]", "the bias of layer 1"),
])
def test_a_define_on_a_param_used_by_a_layer_is_refused_there(layers, role):
    """Issue 12: wherever a layer reads a define (input, merge member, slice, weight, bias, argument), one that
    depends on a param is a located error at that use (a layer's input and merges were a KeyError traceback)."""
    line, col, message = at(BASE + f"define: {{P: W @ X}}\ninput: X\nlayers: {layers}\n")
    assert (line, col) == (5, 9 + layers.index("P")) and 'define "P" depends on param W' in message, message
    assert message.startswith(role), message


def test_a_define_of_data_is_read_by_a_layer_as_input_and_as_a_merge_member():
    spec = gradcheck.loads(BASE + "define: {P: X * 2}\nlayers: [{name: h, input: P, weight: W}, {add: [h, P]}]\n")
    W, X = spec.values["W"], spec.values["X"]
    assert spec.objective() == pytest.approx(np.sum(W @ (2 * X) + 2 * X), rel=1e-12)
    np.testing.assert_allclose(spec.gradient()["W"], np.ones((3, 5)) @ (2 * X).T, rtol=1e-12)


def test_a_define_on_a_param_stays_usable_in_expect():
    spec = gradcheck.loads(BASE + "define: {P: W @ X}\ninput: X\nlayers: [{weight: W}]\nexpect: {W: ones_like(P) @ X.T}\n")
    assert gradcheck.check(spec).params[0].expect.passed


@pytest.mark.parametrize("role, text, line, col, fragment", [
    ("coef", "terms: [{input: X, coef: lam / mm}]", 3, 32, 'undefined name "mm" (did you mean "m"'),
    ("coef", "terms: [{input: X, coef: W / 2}]", 3, 26, '"W" is a param'),
    ("weight", "input: X\nlayers: [{weight: inv(W)}]", 4, 19, "gradients flow back through an expression"),
    ("weight", "input: X\nlayers: [{weight: W + (W > 0)}]", 4, 24, "gradients flow back through an expression"),
])
def test_expression_errors_in_roles_are_located(role, text, line, col, fragment):
    got = at(BASE + text + "\n")
    assert fragment in got[2] and got[:2] == (line, col), got


def test_expressions_in_every_role_differentiate_like_numpy():
    spec = gradcheck.loads(BASE.replace("m: 5}", "m: 5, Y: {shape: [3, 5]}}") + textwrap.dedent("""\
        terms:
          - coef: lam / 2
            input: X
            layers:
              - {weight: W + I, bias: 2 * b, activation: tanh}
              - {activation: {scale: 1 / m}}
            objective: {loss: squared_error, target: Y * 0.5}
          - input: X
            layers: [{weight: W.T @ W / 3 - W, activation: tanh}]
        """))
    v = spec.values
    W, b, X, Y, lam, m = v["W"], v["b"], v["X"], v["Y"], 0.3, 5.0
    Z1 = (W + np.eye(3)) @ X + 2 * b
    A1 = np.tanh(Z1) / m
    E = A1 - 0.5 * Y  # squared_error: ½ Σ (a − y)²
    D1 = (lam / 2) * E / m * (1 - np.tanh(Z1) ** 2)
    M = W.T @ W / 3 - W
    D2 = (1 - np.tanh(M @ X) ** 2) @ X.T
    gW = D1 @ X.T + W @ (D2 + D2.T) / 3 - D2
    gb = 2 * D1.sum(axis=1, keepdims=True)
    J = (lam / 2) * 0.5 * np.sum(E ** 2) + np.sum(np.tanh(M @ X))
    assert spec.objective() == pytest.approx(J, rel=1e-12)
    np.testing.assert_allclose(spec.gradient()["W"], gW, rtol=1e-10)
    np.testing.assert_allclose(spec.gradient()["b"], gb, rtol=1e-10)
    for options in ({}, {"method": "complex-step"}, {"mode": "fast"}):
        assert gradcheck.check(spec, **options).status == "pass", options


def test_explain_closed_form_through_an_expression_weight_round_trips():
    from gradcheck.explain import explain

    text = BASE + "input: X\nlayers: [{weight: 2 * W.T + I, bias: b / lam, activation: tanh}]\n"
    spec = gradcheck.loads(text)
    params = explain(spec.model).params
    pasted = gradcheck.loads(text + f"expect: {{W: '{params['W']}', b: '{params['b']}'}}\n")
    result = gradcheck.check(pasted)
    assert result.status == "pass" and all(p.expect.passed for p in result.params), params


def test_explain_prints_the_closed_form_of_logdet():
    from gradcheck.explain import explain

    spec = gradcheck.loads("params: {S: {shape: [3, 3], init: spd}}\ninput: S\nlayers: [{activation: logdet}]\n")
    assert explain(spec.model).params["S"] == "inv(S).T"


def test_a_symmetric_stencil_moves_both_mirrored_entries():
    from gradcheck import hazards

    # det X = 1 - x01 * x10: moving x01 and x10 together by h crosses det = 0 where moving one alone would not
    spec = gradcheck.loads("params: {X: {shape: [2, 2], init: eye, symmetric: true}}\ninput: X\n"
                           "layers: [{activation: logdet}]\n")
    values = {"X": np.array([[1.0, 1.0 - 1e-9], [1.0 - 1e-9, 1.0]])}
    found = hazards.stencil(spec.model, values, "X", (0, 1), 1e-6, 1e-6)
    assert found and "crosses the edge of the domain of logdet" in found


@pytest.mark.parametrize("text, line, col, fragment", [
    ("params: {X: {shape: [2, 3], symmetric: true}}\ninput: X\n", 1, 29, "symmetric needs a square matrix"),
    ("params: {X: {shape: [2, 2]}}\ndata: {Y: {shape: [2, 2], symmetric: true}}\ninput: X\n", 2, 27,
     "symmetric applies to params"),
    ("params: {X: {shape: [2, 3], init: spd}}\ninput: X\n", 1, 21, "init spd draws a square matrix"),
])
def test_symmetric_and_spd_declaration_errors_are_located(text, line, col, fragment):
    got = at(text)
    assert fragment in got[2] and got[:2] == (line, col), got


def test_a_define_of_data_follows_data_given_to_the_api():
    spec = load("gaussian_nll_covariance.yaml")
    X = 2 * spec.values["X"]
    S = spec.values["S"]
    C = X @ X.T / X.shape[1]
    assert spec.objective({"X": X}) == pytest.approx(0.5 * np.linalg.slogdet(S)[1] + 0.5 * np.trace(inv(S) @ C))


# ----------------------------------------------------------------------------- torch autograd, where installed

TORCH_J = {  # J written in torch from the spec's values, independent of the engine
    "gaussian_nll_covariance.yaml": lambda t, v: 0.5 * t.logdet(v["S"]) + 0.5 * t.trace(
        t.linalg.inv(v["S"]) @ (v["X"] @ v["X"].T / v["X"].shape[1])),
    "logdet_gram_ridge.yaml": lambda t, v: t.logdet(v["X"].T @ v["X"] + v["lam"][0, 0] * t.eye(3, dtype=t.float64)),
    "least_squares_frobenius.yaml": lambda t, v: t.linalg.norm(v["A"] @ v["X"] - v["B"]) ** 2,
    "least_squares_solve.yaml": lambda t, v: t.sum((t.linalg.solve(v["A"], v["B"]) - v["C"]) ** 2),
    "trace_xtax.yaml": lambda t, v: t.trace(v["X"].T @ v["A"] @ v["X"]),
}


@pytest.mark.slow  # torch's import alone is seconds
@pytest.mark.parametrize("name", TORCH_J)
def test_bundled_matrix_spec_matches_torch_autograd(name):
    torch = pytest.importorskip("torch")
    spec = load(name)
    v = {k: torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=k in spec.param_names)
         for k, x in spec.values.items()}
    J = TORCH_J[name](torch, v)
    J.backward()
    assert spec.objective() == pytest.approx(J.item(), rel=1e-12)
    for param in spec.param_names:
        np.testing.assert_allclose(spec.gradient()[param], v[param].grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("weight", ["W + I", "W.T", "-W", "2 * W - W.T / 3", "W @ W", "W.T @ A @ W", "W ** 2",
                                    "(W + I) / (2 + A * A)", "A / (2 + W * W)", "W @ W.T + I", "exp(A) * W"])
def test_backprop_through_a_weight_expression_matches_finite_differences(weight):
    text = ("params: {W: {shape: [3, 3]}, b: {shape: [3, 1]}}\ndata: {A: {shape: [3, 3]}, X: {shape: [3, 4]}}\n"
            f"input: X\nlayers: [{{weight: '{weight}', bias: 'b * 2 - 1', activation: tanh}}, {{activation: square}}]\n")
    spec = gradcheck.loads(text)
    for method in ("central", "complex-step"):
        result = gradcheck.check(spec, method=method)
        assert result.status == "pass", (method, [(p.name, p.backprop) for p in result.params])
