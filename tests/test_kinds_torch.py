"""The layer kinds of issue 11 against torch's own layers and autograd (skipped when torch is absent).

Each test writes the same function with torch's modules (layer_norm, batch_norm, nn.LSTM, nn.GRU,
scaled_dot_product_attention, embedding), takes its gradient by autograd, and compares with the engine.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck

pytestmark = pytest.mark.slow  # importing torch alone takes seconds (imported inside each test, not at collection)


def load_torch():
    """torch and torch.nn.functional, or a skip."""
    torch = pytest.importorskip("torch")
    return torch, torch.nn.functional


def engine(text):
    spec = gradcheck.loads(text)
    return spec, {k: np.array(v) for k, v in spec.values.items()}, spec.gradient()


def leaf(x):
    torch, _ = load_torch()
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def assert_same(grads, tensors):
    for name, t in tensors.items():
        np.testing.assert_allclose(grads[name], t.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


NORM = """
params: {{W: {{shape: [5, 3]}}, g: {{shape: [5, 1]}}, b: {{shape: [5, 1]}}}}
data: {{X: {{shape: [3, 6]}}, Y: {{shape: [5, 6]}}}}
input: X
layers: [{{weight: W}}, {{{kind}: {{gain: g, bias: b, eps: 1e-4}}, activation: tanh}}]
objective: {{loss: squared_error, target: Y}}
"""


def test_layernorm_equals_torch_layer_norm():
    torch, F = load_torch()
    spec, v, grads = engine(NORM.format(kind="layernorm"))
    t = {k: leaf(v[k]) for k in ("W", "g", "b")}
    h = (t["W"] @ torch.tensor(v["X"])).T  # torch normalizes the last axis: one example per row
    z = F.layer_norm(h, (5,), t["g"][:, 0], t["b"][:, 0], eps=1e-4).T
    J = 0.5 * ((torch.tanh(z) - torch.tensor(v["Y"])) ** 2).sum()
    J.backward()
    assert spec.objective() == pytest.approx(J.item(), rel=1e-12)
    assert_same(grads, t)


def test_batchnorm_equals_torch_batch_norm_in_training_mode():
    torch, F = load_torch()
    spec, v, grads = engine(NORM.format(kind="batchnorm"))
    t = {k: leaf(v[k]) for k in ("W", "g", "b")}
    h = (t["W"] @ torch.tensor(v["X"])).T  # (batch, features)
    z = F.batch_norm(h, None, None, t["g"][:, 0], t["b"][:, 0], training=True, eps=1e-4).T
    J = 0.5 * ((torch.tanh(z) - torch.tensor(v["Y"])) ** 2).sum()
    J.backward()
    assert spec.objective() == pytest.approx(J.item(), rel=1e-12)
    assert_same(grads, t)


def test_lstm_equals_torch_lstm():
    torch, F = load_torch()
    spec, v, grads = engine("""
params: {Wx: {shape: [12, 2], std: 0.5}, Wh: {shape: [12, 3], std: 0.5}, b: {shape: [12, 1]},
         h0: {shape: [3, 4]}, c0: {shape: [3, 4]}}
data: {X: {shape: [8, 4]}, Y: {shape: [12, 4]}}
input: X
layers: [{lstm: {input_weight: Wx, hidden_weight: Wh, bias: b, steps: 4, init: h0, cell_init: c0, output: all}}]
objective: {loss: squared_error, target: Y}
""")
    t = {k: leaf(v[k]) for k in ("Wx", "Wh", "b", "h0", "c0")}
    order = lambda w: torch.cat([w[0:3], w[3:6], w[9:12], w[6:9]])  # noqa: E731 - ours [i; f; o; g], torch's [i; f; g; o]
    lstm = torch.nn.LSTM(2, 3, dtype=torch.float64)
    x = torch.tensor(v["X"]).reshape(4, 2, 4).permute(0, 2, 1)  # (steps, batch, inputs)
    out, _ = torch.func.functional_call(lstm, {"weight_ih_l0": order(t["Wx"]), "weight_hh_l0": order(t["Wh"]),
                                               "bias_ih_l0": order(t["b"])[:, 0], "bias_hh_l0": torch.zeros(12, dtype=torch.float64)},
                                        (x, (t["h0"].T[None], t["c0"].T[None])))
    h = out.permute(0, 2, 1).reshape(12, 4)  # h_1..h_4 stacked per column
    J = 0.5 * ((h - torch.tensor(v["Y"])) ** 2).sum()
    J.backward()
    assert spec.objective() == pytest.approx(J.item(), rel=1e-12)
    assert_same(grads, t)


def test_gru_equals_torch_gru():
    torch, F = load_torch()
    spec, v, grads = engine("""
params: {Wx: {shape: [9, 2], std: 0.5}, Wh: {shape: [9, 3], std: 0.5}, b: {shape: [9, 1]}, h0: {shape: [3, 1]}}
data: {X: {shape: [8, 4]}, Y: {shape: [3, 4]}}
input: X
layers: [{gru: {input_weight: Wx, hidden_weight: Wh, bias: b, steps: 4, init: h0}}]
objective: {loss: squared_error, target: Y}
""")
    t = {k: leaf(v[k]) for k in ("Wx", "Wh", "b", "h0")}
    gru = torch.nn.GRU(2, 3, dtype=torch.float64)
    x = torch.tensor(v["X"]).reshape(4, 2, 4).permute(0, 2, 1)
    h0 = t["h0"].T.expand(4, 3)[None]
    _, h = torch.func.functional_call(gru, {"weight_ih_l0": t["Wx"], "weight_hh_l0": t["Wh"],
                                            "bias_ih_l0": t["b"][:, 0], "bias_hh_l0": torch.zeros(9, dtype=torch.float64)}, (x, h0))
    J = 0.5 * ((h[0].T - torch.tensor(v["Y"])) ** 2).sum()
    J.backward()
    assert spec.objective() == pytest.approx(J.item(), rel=1e-12)
    assert_same(grads, t)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_equals_torch_scaled_dot_product_attention(causal):
    torch, F = load_torch()
    spec, v, grads = engine(f"""
params: {{Wq: {{shape: [3, 4]}}, Wk: {{shape: [3, 4]}}, Wv: {{shape: [2, 4]}}, X: {{shape: [4, 7]}}}}
data: {{Y: {{shape: [2, 7]}}}}
input: X
layers: [{{attention: {{query: Wq, key: Wk, value: Wv, causal: {str(causal).lower()}}}, activation: tanh}}]
objective: {{loss: squared_error, target: Y}}
""")
    t = {k: leaf(v[k]) for k in ("Wq", "Wk", "Wv", "X")}
    q, k, val = ((t[w] @ t["X"]).T for w in ("Wq", "Wk", "Wv"))  # (tokens, features)
    out = F.scaled_dot_product_attention(q[None], k[None], val[None], is_causal=causal)[0].T
    J = 0.5 * ((torch.tanh(out) - torch.tensor(v["Y"])) ** 2).sum()
    J.backward()
    assert spec.objective() == pytest.approx(J.item(), rel=1e-12)
    assert_same(grads, t)


def test_embedding_equals_torch_embedding():
    torch, F = load_torch()
    spec, v, grads = engine("""
params: {E: {shape: [3, 5]}, W: {shape: [2, 6]}}
data: {T: [[0, 4, 4, 1], [2, 2, 4, 0]], Y: {shape: [2, 4], init: onehot}}
input: T
layers: [{embedding: {table: E}}, {weight: W, activation: softmax}]
objective: {loss: cross_entropy, target: Y}
""")
    t = {k: leaf(v[k]) for k in ("E", "W")}
    idx = torch.tensor(v["T"].astype(int))
    z = F.embedding(idx, t["E"].T).permute(0, 2, 1).reshape(6, 4)  # (tokens, dim, columns) stacked
    J = -(torch.tensor(v["Y"]) * torch.log_softmax(t["W"] @ z, dim=0)).sum()
    J.backward()
    assert spec.objective() == pytest.approx(J.item(), rel=1e-12)
    assert_same(grads, t)
