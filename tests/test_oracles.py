"""Independent oracle for the backprop engine.

Every case below is a network written as an inline YAML spec together with a
closed-form gradient derived by hand and written in plain numpy.  No
gradcheck code is used to compute the oracle: the spec is only used to learn
the numbers (``spec.values``) the engine actually used after seeding.

Each closed form is itself verified against plain-numpy central differences
of the plain-numpy objective (``test_oracle_is_self_consistent``), so a
disagreement between the engine and the oracle points at the engine.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import gradcheck

RTOL = 1e-10
ATOL = 1e-12


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax_cols(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def softplus(z):
    return np.log1p(np.exp(z))


# ---------------------------------------------------------------------------
# Cases: (yaml text, oracle(values) -> (J, {param: gradient}), expected shapes)
# ---------------------------------------------------------------------------

CASES = {}


def case(name, text, shapes):
    def register(oracle):
        CASES[name] = (text, oracle, shapes)
        return oracle

    return register


# 1. ICA reconstruction cost ||W^T W x - x||^2 with tied W and W.T (the
#    issue's example, verbatim, including define/expect).
@case(
    "ica_tied",
    """\
name: ICA reconstruction cost            # optional, defaults to the file name
description: F(W) = ||W^T W x - x||^2    # optional
seed: 0                                  # optional (default 0); random values are reproducible from it

params:                  # matrices the gradient is taken with respect to
  W: {shape: [4, 6]}     # random normal(0, 1) unless told otherwise
data:                    # constants
  x: {shape: [6, 5], init: uniform, low: -1, high: 1}

input: x                 # a⁽⁰⁾, a name from params or data
layers:
  - weight: W            # z = W a
    activation: identity
  - weight: W.T          # the same parameter again, transposed: contributions are summed
  - activation: {sub: x} # no weight means z = a;  f(z) = z - x
  - activation: square
objective: sum           # J = sum of every entry of the last activation

define:                  # optional named helper expressions, evaluated in order
  r: W.T @ W @ x - x
expect:                  # optional hand-derived gradients, one expression per param
  W: W @ (2 * r) @ x.T + 2 * (W @ x) @ r.T
""",
    {"W": (4, 6), "x": (6, 5)},
)
def oracle_ica(v):
    W, x = v["W"], v["x"]
    r = W.T @ W @ x - x
    J = np.sum(r**2)
    dW = 2 * W @ r @ x.T + 2 * (W @ x) @ r.T
    return J, {"W": dW}


# 2. Sparse coding, UFLDL example 1: ||A s - x||^2 + gamma ||A||^2 as two
#    terms with a named coefficient; gradients for both A and s.
@case(
    "sparse_coding_two_terms",
    """\
seed: 3
params:
  A: {shape: [5, 4], init: normal, std: 0.7}
  s: {shape: [4, 3]}
data:
  x: {shape: [5, 3], init: uniform, low: -1, high: 1}
  gamma: 0.3
terms:
  - input: s
    layers: [{weight: A, activation: {sub: x}}, {activation: square}]
    objective: sum
  - coef: gamma
    input: A
    layers: [{activation: square}]
    objective: sum
""",
    {"A": (5, 4), "s": (4, 3), "x": (5, 3), "gamma": (1, 1)},
)
def oracle_sparse_coding(v):
    A, s, x, gamma = v["A"], v["s"], v["x"], v["gamma"].item()
    r = A @ s - x
    J = np.sum(r**2) + gamma * np.sum(A**2)
    return J, {"A": 2 * r @ s.T + 2 * gamma * A, "s": 2 * A.T @ r}


# 2b. Same cost with a numeric coef and the first term's coef given too.
@case(
    "sparse_coding_numeric_coefs",
    """\
seed: 11
params:
  A: [[0.5, -1.2, 0.3], [0.9, 0.1, -0.4]]
  s: [[1.0, -0.5], [0.25, 2.0], [-1.5, 0.75]]
data:
  x: [[0.2, -0.1], [0.4, 0.6]]
terms:
  - coef: 0.5
    input: s
    layers: [{weight: A, activation: {sub: x}}, {activation: square}]
    objective: sum
  - coef: 0.01
    input: A
    layers: [{activation: square}]
""",
    {"A": (2, 3), "s": (3, 2), "x": (2, 2)},
)
def oracle_sparse_coding_numeric(v):
    A, s, x = v["A"], v["s"], v["x"]
    r = A @ s - x
    J = 0.5 * np.sum(r**2) + 0.01 * np.sum(A**2)
    return J, {"A": r @ s.T + 0.02 * A, "s": A.T @ r}


# 3. Vectorised two-layer network: tanh hidden, sigmoid output, binary
#    cross-entropy averaged over the m columns, biases on both layers.
@case(
    "two_layer_tanh_sigmoid_bce_mean",
    """\
seed: 7
params:
  W1: {shape: [4, 3], init: normal, std: 0.5}
  b1: {shape: [4, 1], init: normal, std: 0.5}
  W2: {shape: [2, 4], init: normal, std: 0.5}
  b2: {shape: [2, 1], init: normal, std: 0.5}
data:
  X: {shape: [3, 5], init: uniform, low: -1, high: 1}
  Y: {shape: [2, 5], init: binary}
input: X
layers:
  - {weight: W1, bias: b1, activation: tanh}
  - {weight: W2, bias: b2, activation: sigmoid}
objective: {loss: binary_cross_entropy, target: Y, reduce: mean}
""",
    {"W1": (4, 3), "b1": (4, 1), "W2": (2, 4), "b2": (2, 1), "X": (3, 5), "Y": (2, 5)},
)
def oracle_two_layer(v):
    W1, b1, W2, b2, X, Y = (v[k] for k in ("W1", "b1", "W2", "b2", "X", "Y"))
    m = X.shape[1]
    A1 = np.tanh(W1 @ X + b1)
    A2 = sigmoid(W2 @ A1 + b2)
    J = np.sum(-Y * np.log(A2) - (1 - Y) * np.log(1 - A2)) / m
    dZ2 = (A2 - Y) / m
    dZ1 = (W2.T @ dZ2) * (1 - A1**2)
    return J, {
        "W1": dZ1 @ X.T,
        "b1": dZ1.sum(axis=1, keepdims=True),
        "W2": dZ2 @ A1.T,
        "b2": dZ2.sum(axis=1, keepdims=True),
    }


# 4. Softmax regression with categorical cross-entropy, mean over columns.
@case(
    "softmax_cross_entropy_mean",
    """\
seed: 5
params:
  W: {shape: [3, 4], init: normal, std: 0.5}
  b: {shape: [3, 1], init: normal, std: 0.5}
data:
  X: {shape: [4, 6], init: uniform, low: -1, high: 1}
  Y: {shape: [3, 6], init: onehot}
input: X
layers:
  - {weight: W, bias: b, activation: softmax}
objective: {loss: cross_entropy, target: Y, reduce: mean}
""",
    {"W": (3, 4), "b": (3, 1), "X": (4, 6), "Y": (3, 6)},
)
def oracle_softmax_ce(v):
    W, b, X, Y = v["W"], v["b"], v["X"], v["Y"]
    m = X.shape[1]
    P = softmax_cols(W @ X + b)
    J = -np.sum(Y * np.log(P)) / m
    # general form; equals (P - Y)/m when every column of Y sums to one
    dZ = (P * Y.sum(axis=0, keepdims=True) - Y) / m
    return J, {"W": dZ @ X.T, "b": dZ.sum(axis=1, keepdims=True)}


# 4b. Softmax in the middle of a network (full column Jacobian, not the
#     fused softmax + cross-entropy shortcut), soft labels, sum reduce.
@case(
    "softmax_hidden_then_tanh",
    """\
seed: 9
params:
  W: {shape: [4, 3], init: normal, std: 0.8}
  V: {shape: [2, 4], init: normal, std: 0.8}
data:
  X: {shape: [3, 5], init: uniform, low: -1, high: 1}
  T: {shape: [2, 5], init: uniform, low: -0.5, high: 0.5}
input: X
layers:
  - {weight: W, activation: softmax}
  - {weight: V, activation: tanh}
objective: {loss: squared_error, target: T, reduce: sum}
""",
    {"W": (4, 3), "V": (2, 4), "X": (3, 5), "T": (2, 5)},
)
def oracle_softmax_hidden(v):
    W, V, X, T = v["W"], v["V"], v["X"], v["T"]
    P = softmax_cols(W @ X)
    H = np.tanh(V @ P)
    J = 0.5 * np.sum((H - T) ** 2)
    dZ2 = (H - T) * (1 - H**2)
    dP = V.T @ dZ2
    dZ1 = P * (dP - np.sum(P * dP, axis=0, keepdims=True))
    return J, {"W": dZ1 @ X.T, "V": dZ2 @ P.T}


# 5. A param used as the input AND as a weight: J = sum sigmoid(W W).
@case(
    "param_as_input_and_weight",
    """\
seed: 1
params:
  W: {shape: [3, 3], init: normal, std: 0.6}
input: W
layers:
  - {weight: W, activation: sigmoid}
objective: sum
""",
    {"W": (3, 3)},
)
def oracle_input_and_weight(v):
    W = v["W"]
    S = sigmoid(W @ W)
    D = S * (1 - S)
    return np.sum(S), {"W": D @ W.T + W.T @ D}


# 5b. Non-square param as input, as W.T and as W:  J = sum W tanh(W^T W).
@case(
    "param_as_input_weightT_and_weight",
    """\
seed: 2
params:
  W: [[0.3, -0.8], [1.1, 0.4], [-0.5, 0.9]]
input: W
layers:
  - {weight: W.T, activation: tanh}
  - {weight: W}
objective: sum
""",
    {"W": (3, 2)},
)
def oracle_input_weightT_weight(v):
    W = v["W"]
    T = np.tanh(W.T @ W)
    O = np.ones((W.shape[0], T.shape[1]))
    D = (W.T @ O) * (1 - T**2)
    return np.sum(W @ T), {"W": O @ T.T + W @ (D + D.T)}


# 6. A param used as a bias and as activation arguments ({scale: c},
#    {sub: c}), plus a 1x1 param broadcast as {add: k}.
@case(
    "param_as_bias_and_activation_argument",
    """\
params:
  W: [[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1]]
  c: [0.3, -0.7, 1.1]
  k: 0.4
data:
  x: [[1.0, -0.5, 0.25, 2.0], [0.3, 0.6, -1.2, 0.0]]
input: x
layers:
  - {weight: W, bias: c, activation: {scale: c}}
  - activation: {sub: c}
  - activation: {add: k}
  - activation: square
objective: sum
""",
    {"W": (3, 2), "c": (3, 1), "k": (1, 1), "x": (2, 4)},
)
def oracle_bias_and_argument(v):
    W, c, k, x = v["W"], v["c"], v["k"], v["x"]
    Z1 = W @ x + c
    A3 = c * Z1 - c + k
    J = np.sum(A3**2)
    G = 2 * A3
    dc = (-G + G * Z1 + G * c).sum(axis=1, keepdims=True)
    return J, {"W": (G * c) @ x.T, "c": dc, "k": np.array([[G.sum()]])}


# 7. Loss target that is a param (squared error, mean over columns).
@case(
    "loss_target_is_param_squared_error",
    """\
seed: 4
params:
  W: {shape: [2, 3], init: normal, std: 0.7}
  y: {shape: [2, 4], init: normal, std: 0.5}
data:
  x: {shape: [3, 4], init: uniform, low: -1, high: 1}
input: x
layers:
  - {weight: W, activation: sigmoid}
objective: {loss: squared_error, target: y, reduce: mean}
""",
    {"W": (2, 3), "y": (2, 4), "x": (3, 4)},
)
def oracle_target_param_se(v):
    W, y, x = v["W"], v["y"], v["x"]
    m = x.shape[1]
    A = sigmoid(W @ x)
    J = 0.5 * np.sum((A - y) ** 2) / m
    dA = (A - y) / m
    return J, {"W": (dA * A * (1 - A)) @ x.T, "y": -dA}


# 7b. Loss target that is a param (binary cross-entropy, sum).
@case(
    "loss_target_is_param_bce",
    """\
seed: 6
params:
  W: {shape: [2, 3], init: normal, std: 0.7}
  y: {shape: [2, 4], init: uniform, low: 0.1, high: 0.9}
data:
  x: {shape: [3, 4], init: uniform, low: -1, high: 1}
input: x
layers:
  - {weight: W, activation: sigmoid}
objective: {loss: binary_cross_entropy, target: y}
""",
    {"W": (2, 3), "y": (2, 4), "x": (3, 4)},
)
def oracle_target_param_bce(v):
    W, y, x = v["W"], v["y"], v["x"]
    A = sigmoid(W @ x)
    J = np.sum(-y * np.log(A) - (1 - y) * np.log(1 - A))
    return J, {"W": (A - y) @ x.T, "y": np.log(1 - A) - np.log(A)}


# 8. A coef that is a (1x1) param: J = lam * mean(tanh(W x)) + 0.5 ||W||^2.
@case(
    "coef_is_param",
    """\
seed: 8
params:
  W: {shape: [3, 2], init: normal, std: 0.8}
  lam: 0.7
data:
  x: {shape: [2, 5], init: uniform, low: -1, high: 1}
terms:
  - coef: lam
    input: x
    layers: [{weight: W, activation: tanh}]
    objective: mean
  - coef: 0.5
    input: W
    layers: [{activation: square}]
    objective: sum
""",
    {"W": (3, 2), "lam": (1, 1), "x": (2, 5)},
)
def oracle_coef_param(v):
    W, lam, x = v["W"], v["lam"].item(), v["x"]
    T = np.tanh(W @ x)
    J = lam * np.mean(T) + 0.5 * np.sum(W**2)
    dW = lam * ((1 - T**2) / T.size) @ x.T + W
    return J, {"W": dW, "lam": np.array([[np.mean(T)]])}


# 9. Custom activation f = z**3 with the user's df = 3*z**2, then softplus,
#    objective mean.
@case(
    "custom_activation_cube",
    """\
seed: 10
params:
  W: {shape: [3, 2], init: normal, std: 0.6}
  V: {shape: [2, 3], init: normal, std: 0.6}
data:
  x: {shape: [2, 4], init: uniform, low: -1, high: 1}
input: x
layers:
  - {weight: W, activation: {f: "z**3", df: "3*z**2"}}
  - {weight: V, activation: softplus}
objective: mean
""",
    {"W": (3, 2), "V": (2, 3), "x": (2, 4)},
)
def oracle_custom_cube(v):
    W, V, x = v["W"], v["V"], v["x"]
    Z1 = W @ x
    A1 = Z1**3
    Z2 = V @ A1
    A2 = softplus(Z2)
    J = np.mean(A2)
    dZ2 = sigmoid(Z2) / A2.size
    dZ1 = (V.T @ dZ2) * 3 * Z1**2
    return J, {"W": dZ1 @ x.T, "V": dZ2 @ A1.T}


# 10. UFLDL example 2: smoothed topographic L1 penalty sum sqrt(V (s o s) + eps).
@case(
    "topographic_sqrt",
    """\
seed: 12
params:
  s: {shape: [4, 3]}
data:
  V: {shape: [3, 4], init: uniform, low: 0, high: 1}
  eps: 0.01
input: s
layers:
  - activation: square
  - {weight: V, activation: {add: eps}}
  - activation: sqrt
objective: sum
""",
    {"s": (4, 3), "V": (3, 4), "eps": (1, 1)},
)
def oracle_topographic(v):
    s, V, eps = v["s"], v["V"], v["eps"].item()
    U = V @ (s * s) + eps
    return np.sum(np.sqrt(U)), {"s": (V.T @ U**-0.5) * s}


IDS = list(CASES)


# ---------------------------------------------------------------------------
# Helpers (plain numpy only)
# ---------------------------------------------------------------------------


def numpy_central_differences(oracle, values, name):
    theta = values[name]
    out = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        h = 1e-6 * max(1.0, abs(theta[idx]))
        plus = {**values, name: theta.copy()}
        minus = {**values, name: theta.copy()}
        plus[name][idx] += h
        minus[name][idx] -= h
        out[idx] = (oracle(plus)[0] - oracle(minus)[0]) / (plus[name][idx] - minus[name][idx])
    return out


def loaded(name):
    text = CASES[name][0]
    return gradcheck.loads(text, path=f"<{name}>")


def values_of(spec):
    return {k: np.array(v, dtype=np.float64, copy=True) for k, v in spec.values.items()}


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", IDS)
def test_oracle_is_self_consistent(name):
    """The closed forms agree with finite differences of the numpy J.

    Uses deterministic plain-numpy values of the declared shapes, so this
    test does not depend on the engine at all.
    """
    _, oracle, shapes = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    values = {k: rng.uniform(-1, 1, size=shp) for k, shp in shapes.items()}
    # keep domains valid: probabilities / nonnegative matrices / labels
    for k in ("Y", "y"):
        if k in values:
            values[k] = rng.uniform(0.1, 0.9, size=shapes[k])
    if name == "softmax_cross_entropy_mean":
        values["Y"] = np.eye(3)[:, rng.integers(0, 3, size=6)]
    if name == "topographic_sqrt":
        values["V"] = rng.uniform(0, 1, size=shapes["V"])
        values["eps"] = np.array([[0.01]])
    J, grads = oracle(values)
    assert np.isfinite(J)
    for p, g in grads.items():
        assert g.shape == values[p].shape, p
        fd = numpy_central_differences(oracle, values, p)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8, err_msg=f"oracle {name}/{p}")


@pytest.mark.parametrize("name", IDS)
def test_values_have_declared_shapes_and_dtype(name):
    spec = loaded(name)
    shapes = CASES[name][2]
    for k, shp in shapes.items():
        assert k in spec.values, k
        v = spec.values[k]
        assert isinstance(v, np.ndarray)
        assert v.dtype == np.float64, (k, v.dtype)
        assert v.shape == shp, (k, v.shape, shp)


@pytest.mark.parametrize("name", IDS)
def test_param_names_in_declaration_order(name):
    spec = loaded(name)
    _, oracle, _ = CASES[name]
    _, grads = oracle(values_of(spec))
    text = CASES[name][0]
    declared = sorted(grads, key=lambda p: text.index(f"\n  {p}:"))
    assert tuple(spec.param_names) == tuple(declared)


@pytest.mark.parametrize("name", IDS)
def test_objective_matches_oracle(name):
    spec = loaded(name)
    J_ref, _ = CASES[name][1](values_of(spec))
    J = spec.objective()
    assert isinstance(J, float)
    np.testing.assert_allclose(J, J_ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", IDS)
def test_gradient_matches_oracle(name):
    spec = loaded(name)
    _, ref = CASES[name][1](values_of(spec))
    grads = spec.gradient()
    assert set(grads) == set(spec.param_names) == set(ref)
    for p, g_ref in ref.items():
        g = np.asarray(grads[p])
        assert g.shape == g_ref.shape, (p, g.shape, g_ref.shape)
        np.testing.assert_allclose(g, g_ref, rtol=RTOL, atol=ATOL, err_msg=f"{name}: d J / d {p}")


@pytest.mark.parametrize("name", IDS)
def test_gradient_and_objective_at_other_values(name):
    """objective(values=...) / gradient(values=...) with only params overridden."""
    spec = loaded(name)
    base = values_of(spec)
    before = {k: v.copy() for k, v in base.items()}
    rng = np.random.default_rng(1234)
    override = {p: base[p] + 0.05 * rng.standard_normal(base[p].shape) for p in spec.param_names}
    if name == "loss_target_is_param_bce":
        override["y"] = np.clip(override["y"], 0.05, 0.95)
    full = {**base, **override}
    J_ref, ref = CASES[name][1](full)
    np.testing.assert_allclose(spec.objective(values=override), J_ref, rtol=RTOL, atol=ATOL)
    grads = spec.gradient(values=override)
    for p, g_ref in ref.items():
        np.testing.assert_allclose(grads[p], g_ref, rtol=RTOL, atol=ATOL, err_msg=f"{name}: d J / d {p}")
    # evaluating elsewhere must not change the spec's own values
    for k, v in before.items():
        np.testing.assert_array_equal(spec.values[k], v)
    np.testing.assert_allclose(spec.objective(), CASES[name][1](before)[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", IDS)
def test_check_passes(name):
    result = gradcheck.check(loaded(name))
    assert result.status == "pass", [(p.name, p.status) for p in result.params]
    assert [p.name for p in result.params] == list(loaded(name).param_names)
    assert all(p.status == "pass" for p in result.params)


def test_wrong_custom_derivative_is_what_backprop_uses():
    """With a wrong df the engine must use it (so the check fails)."""
    text = CASES["custom_activation_cube"][0].replace('df: "3*z**2"', 'df: "2*z**2"')
    spec = gradcheck.loads(text)
    v = values_of(spec)
    W, V, x = v["W"], v["V"], v["x"]
    Z1 = W @ x
    Z2 = V @ Z1**3
    dZ2 = sigmoid(Z2) / Z2.size
    wrong_dW = ((V.T @ dZ2) * 2 * Z1**2) @ x.T
    np.testing.assert_allclose(spec.gradient()["W"], wrong_dW, rtol=RTOL, atol=ATOL)
    result = gradcheck.check(spec)
    assert result.status == "fail"
    status = {p.name: p.status for p in result.params}
    assert status == {"W": "fail", "V": "pass"}
