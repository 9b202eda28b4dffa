"""The layer kinds of issue 11 against oracles that share no code with the engine.

Each case is an inline spec, a plain-numpy forward pass written here from the textbook definition, and the
hand-written closed-form gradient of the standard derivation (layer norm, batch norm, LSTM and GRU steps
through time, attention through the softmax's Jacobian, embedding as a scatter-add, dropout's mask). The
engine's J and backprop gradient must equal both, and the numpy forward differentiated by central
differences here must equal the engine's gradient (so a shared mistake in oracle and engine still fails).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import gradcheck
from gradcheck import network

RTOL, ATOL = 1e-9, 1e-11


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax_cols(s):
    e = np.exp(s - s.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


CASES = {}


def case(name, text):
    def register(oracle):
        CASES[name] = (text, oracle)
        return oracle
    return register


# ----------------------------------------------------------------------------- normalization


def norm_oracle(v, axis, act, dact):
    """J = 1/2 ||f(g ⊙ x̂ + b) − Y||², x̂ = (H − μ)/√(σ² + eps) along `axis`, H = W X."""
    W, X, g, b, Y = v["W"], v["X"], v["g"], v["b"], v["Y"]
    H = W @ X
    C = H - H.mean(axis=axis, keepdims=True)
    s = np.sqrt((C * C).mean(axis=axis, keepdims=True) + 1e-3)
    xh = C / s
    A = act(g * xh + b)
    J = 0.5 * np.sum((A - Y) ** 2)
    D = (A - Y) * dact(A)
    dxh = g * D
    dH = (dxh - dxh.mean(axis=axis, keepdims=True) - xh * (dxh * xh).mean(axis=axis, keepdims=True)) / s
    return J, {"W": dH @ X.T, "g": np.sum(D * xh, axis=1, keepdims=True), "b": np.sum(D, axis=1, keepdims=True)}


NORM = """
params: {{W: {{shape: [5, 3]}}, g: {{shape: [5, 1], mean: 1}}, b: {{shape: [5, 1]}}}}
data: {{X: {{shape: [3, 6]}}, Y: {{shape: [5, 6]}}}}
input: X
layers:
  - {{weight: W}}
  - {{{kind}: {{gain: g, bias: b, eps: 1e-3}}, activation: {act}}}
objective: {{loss: squared_error, target: Y}}
"""


@case("layernorm", NORM.format(kind="layernorm", act="tanh"))
def layernorm(v):
    return norm_oracle(v, 0, np.tanh, lambda a: 1 - a * a)


@case("batchnorm", NORM.format(kind="batchnorm", act="sigmoid"))
def batchnorm(v):
    return norm_oracle(v, 1, sigmoid, lambda a: a * (1 - a))


# ----------------------------------------------------------------------------- LSTM and GRU


@case("lstm", """
params: {Wx: {shape: [12, 2], std: 0.6}, Wh: {shape: [12, 3], std: 0.6}, b: {shape: [12, 1]},
         h0: {shape: [3, 1]}, c0: {shape: [3, 4]}}
data: {X: {shape: [6, 4]}, Y: {shape: [9, 4]}}
input: X
layers:
  - {lstm: {input_weight: Wx, hidden_weight: Wh, bias: b, steps: 3, init: h0, cell_init: c0, output: all}}
objective: {loss: squared_error, target: Y}
""")
def lstm(v):
    Wx, Wh, b, Y = v["Wx"], v["Wh"], v["b"], v["Y"]
    n, m = 3, 4
    xs = [v["X"][2 * t:2 * t + 2] for t in range(3)]
    h, c = np.tile(v["h0"], (1, m)), v["c0"].copy()
    record = []
    for x in xs:
        G = Wx @ x + Wh @ h + b
        i, f, o, g = sigmoid(G[:n]), sigmoid(G[n:2 * n]), sigmoid(G[2 * n:3 * n]), np.tanh(G[3 * n:])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        record.append((x, h, c, i, f, o, g, c_new))
        h, c = h_new, c_new
    out = np.vstack([r[5] * np.tanh(r[7]) for r in record])  # h_t = o ⊙ tanh(c_t) per step
    J = 0.5 * np.sum((out - Y) ** 2)
    dout = np.split(out - Y, 3)
    grads = {k: np.zeros_like(v[k]) for k in ("Wx", "Wh", "b", "h0", "c0")}
    dh_next, dc_next = 0.0, 0.0
    for t in reversed(range(3)):
        x, h_prev, c_prev, i, f, o, g, c_t = record[t]
        dh = dout[t] + dh_next
        dc = dc_next + dh * o * (1 - np.tanh(c_t) ** 2)
        dG = np.vstack([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dh * np.tanh(c_t) * o * (1 - o),
                        dc * i * (1 - g * g)])
        grads["Wx"] += dG @ x.T
        grads["Wh"] += dG @ h_prev.T
        grads["b"] += dG.sum(axis=1, keepdims=True)
        dh_next, dc_next = Wh.T @ dG, dc * f
    grads["h0"] = dh_next.sum(axis=1, keepdims=True)
    grads["c0"] = dc_next
    return J, grads


@case("gru", """
params: {Wx: {shape: [9, 2], std: 0.6}, Wh: {shape: [9, 3], std: 0.6}, b: {shape: [9, 1]}, h0: {shape: [3, 4]}}
data: {X: {shape: [6, 4]}, Y: {shape: [3, 4]}}
input: X
layers:
  - {gru: {input_weight: Wx, hidden_weight: Wh, bias: b, steps: 3, init: h0}, activation: tanh}
objective: {loss: squared_error, target: Y}
""")
def gru(v):
    Wx, Wh, b, Y = v["Wx"], v["Wh"], v["b"], v["Y"]
    n = 3
    h = v["h0"]
    record = []
    for t in range(3):
        x = v["X"][2 * t:2 * t + 2]
        ax, ah = Wx @ x + b, Wh @ h
        r, u = sigmoid(ax[:n] + ah[:n]), sigmoid(ax[n:2 * n] + ah[n:2 * n])
        nn = np.tanh(ax[2 * n:] + r * ah[2 * n:])
        record.append((x, h, r, u, nn, ah[2 * n:]))
        h = (1 - u) * nn + u * h
    A = np.tanh(h)
    J = 0.5 * np.sum((A - Y) ** 2)
    grads = {k: np.zeros_like(v[k]) for k in ("Wx", "Wh", "b")}
    dh = (A - Y) * (1 - A * A)
    for t in reversed(range(3)):
        x, h_prev, r, u, nn, hn = record[t]
        dn = dh * (1 - u) * (1 - nn * nn)
        dr = dn * hn * r * (1 - r)
        du = dh * (h_prev - nn) * u * (1 - u)
        dax, dah = np.vstack([dr, du, dn]), np.vstack([dr, du, dn * r])
        grads["Wx"] += dax @ x.T
        grads["b"] += dax.sum(axis=1, keepdims=True)
        grads["Wh"] += dah @ h_prev.T
        dh = dh * u + Wh.T @ dah
    grads["h0"] = dh
    return J, grads


# ----------------------------------------------------------------------------- attention


def attention_oracle(v, causal):
    Wq, Wk, Wv, X, Y = v["Wq"], v["Wk"], v["Wv"], v["X"], v["Y"]
    Q, K, V = Wq @ X, Wk @ X, Wv @ X
    T = X.shape[1]
    S = K.T @ Q / np.sqrt(Q.shape[0])
    if causal:
        S = np.where(np.arange(T)[:, None] > np.arange(T)[None, :], -np.inf, S)
    A = softmax_cols(S)
    O = V @ A
    J = 0.5 * np.sum((O - Y) ** 2)
    dO = O - Y
    dA = V.T @ dO
    dS = np.zeros_like(A)
    for t in range(T):  # the softmax's Jacobian, diag(a) − a aᵀ, column by column
        a = A[:, t]
        dS[:, t] = (np.diag(a) - np.outer(a, a)) @ dA[:, t]
    dQ, dK, dV = K @ dS / np.sqrt(Q.shape[0]), Q @ dS.T / np.sqrt(Q.shape[0]), dO @ A.T
    return J, {"Wq": dQ @ X.T, "Wk": dK @ X.T, "Wv": dV @ X.T, "X": Wq.T @ dQ + Wk.T @ dK + Wv.T @ dV}


ATTENTION = """
params: {{Wq: {{shape: [3, 4], std: 0.6}}, Wk: {{shape: [3, 4], std: 0.6}}, Wv: {{shape: [2, 4], std: 0.6}},
         X: {{shape: [4, 6]}}}}
data: {{Y: {{shape: [2, 6]}}}}
input: X
layers:
  - attention: {{query: Wq, key: Wk, value: Wv, causal: {causal}}}
objective: {{loss: squared_error, target: Y}}
"""


@case("attention", ATTENTION.format(causal="false"))
def attention(v):
    return attention_oracle(v, False)


@case("attention_causal", ATTENTION.format(causal="true"))
def attention_causal(v):
    return attention_oracle(v, True)


# ----------------------------------------------------------------------------- embedding and dropout


@case("embedding", """
params: {E: {shape: [3, 5]}, W: {shape: [2, 9]}}
data: {T: [[0, 4, 4, 1], [2, 2, 2, 0], [4, 1, 3, 4]], Y: {shape: [2, 4]}}
input: T
layers:
  - embedding: {table: E}
  - {weight: W, activation: tanh}
objective: {loss: squared_error, target: Y}
""")
def embedding(v):
    E, W, T, Y = v["E"], v["W"], v["T"].astype(int), v["Y"]
    Z = np.vstack([E[:, T[k]] for k in range(3)])  # token k's columns, stacked
    A = np.tanh(W @ Z)
    J = 0.5 * np.sum((A - Y) ** 2)
    D = W.T @ ((A - Y) * (1 - A * A))
    dE = np.zeros_like(E)
    for k in range(3):
        for j in range(4):
            dE[:, T[k, j]] += D[3 * k:3 * k + 3, j]  # every use of an index adds its own block
    return J, {"E": dE, "W": ((A - Y) * (1 - A * A)) @ Z.T}


@case("dropout", """
seed: 5
params: {W: {shape: [6, 3]}, V: {shape: [2, 6]}}
data: {X: {shape: [3, 7]}}
input: X
layers:
  - {weight: W, activation: tanh}
  - dropout: {rate: 0.4}
  - {weight: V}
objective: sum
""")
def dropout(v):
    rng = np.random.default_rng([5, zlib.crc32(b"dropout 1 2")])  # the documented stream: seed, term, layer
    M = (rng.random((6, 7)) >= 0.4) / 0.6
    H = np.tanh(v["W"] @ v["X"])
    J = np.sum(v["V"] @ (H * M))
    dH = (v["V"].T @ np.ones((2, 7))) * M
    return J, {"W": (dH * (1 - H * H)) @ v["X"].T, "V": np.ones((2, 7)) @ (H * M).T}


IDS = sorted(CASES)


def loaded(name):
    return gradcheck.loads(CASES[name][0])


def values_of(spec):
    return {k: np.array(v, dtype=float) for k, v in spec.values.items()}


def central(f, values, name, h=1e-6):
    """∂f/∂values[name] by central differences, entry by entry, in plain numpy."""
    out = np.zeros_like(values[name])
    for index in np.ndindex(out.shape):
        plus, minus = dict(values), dict(values)
        plus[name], minus[name] = values[name].copy(), values[name].copy()
        plus[name][index] += h
        minus[name][index] -= h
        out[index] = (f(plus) - f(minus)) / (2 * h)
    return out


@pytest.mark.parametrize("name", IDS)
def test_objective_and_gradient_equal_the_closed_form(name):
    spec = loaded(name)
    J_ref, ref = CASES[name][1](values_of(spec))
    np.testing.assert_allclose(spec.objective(), J_ref, rtol=RTOL, atol=ATOL)
    grads = spec.gradient()
    assert set(grads) == set(ref)
    for p, g in ref.items():
        np.testing.assert_allclose(grads[p], g, rtol=RTOL, atol=ATOL, err_msg=f"{name}: dJ/d{p}")


@pytest.mark.parametrize("name", IDS)
def test_gradient_equals_finite_differences_of_the_numpy_forward(name):
    spec = loaded(name)
    values, oracle = values_of(spec), CASES[name][1]
    grads = spec.gradient()
    for p in spec.param_names:
        numeric = central(lambda v: oracle(v)[0], values, p)
        np.testing.assert_allclose(grads[p], numeric, rtol=1e-6, atol=1e-7, err_msg=f"{name}: dJ/d{p}")


@pytest.mark.parametrize("name", IDS)
def test_stacked_values_evaluate_each_member(name):
    """A param given as a stack (B, rows, cols) gives one J per member, each the numpy J of that member."""
    spec = loaded(name)
    values, oracle = values_of(spec), CASES[name][1]
    rng = np.random.default_rng(3)
    for p in spec.param_names:
        stack = values[p][None] + 0.01 * rng.normal(size=(4,) + values[p].shape)
        J = network.objective(spec.model, {**values, p: stack})
        assert J.shape == (4,)
        np.testing.assert_allclose(J, [oracle({**values, p: s})[0] for s in stack], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", IDS)
@pytest.mark.parametrize("method", ["central", "complex-step"])
def test_full_check_passes(name, method):
    result = gradcheck.check(loaded(name), method=method)
    assert result.status == "pass", (result.message, [(p.name, p.status) for p in result.params])
