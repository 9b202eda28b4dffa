"""Networks: named layers, `input`, merges and `output`. Oracles are plain numpy closed forms (and torch
autograd where installed), written here without any engine code; errors are located at (line, col)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import gradcheck
from conftest import SPECS

RESIDUAL = SPECS / "residual_block.yaml"
LSTM = SPECS / "lstm_cell_from_primitives.yaml"


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ----------------------------------------------------------------------------- oracles


def residual_oracle(W1, W2, b1, x):
    """J = sum(relu(W2 tanh(W1 x + b1) + x)) and its gradients, by hand."""
    h = np.tanh(W1 @ x + b1)
    z = W2 @ h + x
    d = (z > 0).astype(float)
    dh = (W2.T @ d) * (1 - h ** 2)
    return np.maximum(z, 0).sum(), {"W1": dh @ x.T, "W2": d @ h.T, "b1": dh.sum(axis=1, keepdims=True)}


def lstm_oracle(Wx, Wh, b, x, h0, c0, y):
    """One LSTM step, J = ½ Σ (h − y)², and its gradients, by hand (gates i, f, o, u stacked in that order)."""
    g = Wx @ x + Wh @ h0 + b
    i, f, o, u = sigmoid(g[0:4]), sigmoid(g[4:8]), sigmoid(g[8:12]), np.tanh(g[12:16])
    c = f * c0 + i * u
    h = o * np.tanh(c)
    dh = h - y
    dc = dh * o * (1 - np.tanh(c) ** 2)
    dg = np.vstack([dc * u * i * (1 - i), dc * c0 * f * (1 - f), dh * np.tanh(c) * o * (1 - o),
                    dc * i * (1 - u ** 2)])
    return 0.5 * np.sum((h - y) ** 2), {"Wx": dg @ x.T, "Wh": dg @ h0.T, "b": dg.sum(axis=1, keepdims=True)}


@pytest.mark.parametrize("path, oracle, names", [
    (RESIDUAL, residual_oracle, ("W1", "W2", "b1", "x")),
    (LSTM, lstm_oracle, ("Wx", "Wh", "b", "x", "h0", "c0", "y")),
], ids=["residual", "lstm"])
def test_network_matches_its_closed_form(path, oracle, names):
    spec = gradcheck.load(path)
    for seed in range(3):
        spec = spec.reseeded(seed)
        J, grads = oracle(*(spec.values[n] for n in names))
        assert spec.objective() == pytest.approx(J, rel=1e-13)
        for name, g in spec.gradient().items():
            np.testing.assert_allclose(g, grads[name], rtol=1e-11, atol=1e-13, err_msg=name)


@pytest.mark.slow  # importing torch alone takes seconds
def test_lstm_from_primitives_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    spec = gradcheck.load(LSTM)
    v = {k: torch.tensor(a, dtype=torch.float64, requires_grad=k in spec.param_names) for k, a in spec.values.items()}
    g = v["Wx"] @ v["x"] + v["Wh"] @ v["h0"] + v["b"]
    i, f, o, u = torch.sigmoid(g[0:4]), torch.sigmoid(g[4:8]), torch.sigmoid(g[8:12]), torch.tanh(g[12:16])
    h = o * torch.tanh(f * v["c0"] + i * u)
    J = 0.5 * ((h - v["y"]) ** 2).sum()
    J.backward()
    assert spec.objective() == pytest.approx(J.item(), rel=1e-13)
    for name, grad in spec.gradient().items():
        np.testing.assert_allclose(grad, v[name].grad.numpy(), rtol=1e-11, atol=1e-13, err_msg=name)


LSTM_KIND = """\
params:
  Wx: {shape: [16, 3], std: 0.3}
  Wh: {shape: [16, 4], std: 0.3}
  b:  {shape: [16, 1]}
data:
  x:  {shape: [3, 5]}
  h0: {shape: [4, 5]}
  c0: {shape: [4, 5]}
  y:  {shape: [4, 5]}
input: x
layers:
  - lstm: {input_weight: Wx, hidden_weight: Wh, bias: b, steps: 1, init: h0, cell_init: c0}
objective: {loss: squared_error, target: y}
"""


def test_lstm_from_primitives_equals_the_lstm_kind_with_the_same_weights():
    """Issue 11: the primitives spec and the `lstm` kind (gates [i; f; o; g] stacked in the same rows, Wx and Wh
    separate, h0 and c0 per column) give the same J and gradients at the same numbers, at several seeds."""
    primitives = gradcheck.load(LSTM)
    kind = gradcheck.loads(LSTM_KIND, "lstm_kind.yaml")
    assert set(kind.values) == set(primitives.values) and kind.param_names == primitives.param_names
    for seed in range(3):
        values = dict(primitives.reseeded(seed).values)  # the layouts agree: the same arrays, no remapping
        values["c0"] = 2 * values["c0"]  # a cell state large enough that the forget gate's path matters
        J = primitives.objective(values)
        assert J > 0.1 and kind.objective(values) == pytest.approx(J, rel=1e-12, abs=0)
        expected, got = primitives.gradient(values), kind.gradient(values)
        assert set(got) == set(expected) == {"Wx", "Wh", "b"}
        for name in expected:
            scale = np.abs(expected[name]).max()
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, atol=1e-12 * scale, err_msg=name)
    wrong = dict(values, Wh=values["Wh"][np.r_[4:8, 0:4, 8:16]])  # i and f swapped: the test can tell layouts apart
    assert abs(kind.objective(wrong) - primitives.objective(values)) > 1e-6


def load(text: str):
    return gradcheck.loads(textwrap.dedent(text), "t.yaml")


def test_solve_merge_is_a_inverse_b_with_its_closed_form_gradients():
    spec = load("""\
        params:
          A: {shape: [4, 4], init: eye}
          B: {shape: [4, 3]}
        data: {C: {shape: [4, 3]}}
        layers:
          - {name: zz, solve: [A, B]}
          - {mul: [zz, C]}
        objective: sum
        """)
    values = {**spec.values, "A": spec.values["A"] + 0.3 * np.random.default_rng(1).normal(size=(4, 4))}
    A, B, C = values["A"], values["B"], values["C"]
    Z = np.linalg.inv(A) @ B
    assert spec.objective(values) == pytest.approx(np.sum(Z * C), rel=1e-12)
    grads = spec.gradient(values)
    dB = np.linalg.inv(A).T @ C  # δ_B = A⁻ᵀ δ, δ_A = −A⁻ᵀ δ Zᵀ with δ = C
    np.testing.assert_allclose(grads["B"], dB, rtol=1e-10)
    np.testing.assert_allclose(grads["A"], -dB @ Z.T, rtol=1e-10)
    assert gradcheck.check(spec).status == "pass"


def test_every_merge_passes_the_check_and_the_complex_step():
    spec = gradcheck.loads(MERGE_SPEC, "t.yaml")  # every merge row, in one network (below)
    for method in ("central", "complex-step"):
        result = gradcheck.check(spec, method=method)
        assert result.status == "pass", (method, result.message, [(p.name, p.backprop) for p in result.params])


def test_a_value_read_by_several_layers_sums_their_signals():
    spec = load("""\
        params: {W: {shape: [3, 3]}}
        data: {x: {shape: [3, 2]}}
        layers:
          - {name: h, input: x, weight: W}
          - {name: a, mul: [h, h]}
          - {name: b, add: [h, a, h]}
        objective: sum
        """)
    W, x = spec.values["W"], spec.values["x"]
    h = W @ x
    # J = Σ (2h + h²): ∂J/∂h = 2 + 2h
    np.testing.assert_allclose(spec.gradient()["W"], (2 + 2 * h) @ x.T, rtol=1e-12)


def test_output_names_the_layer_the_objective_reads_and_later_layers_are_ignored():
    spec = load("""\
        params: {W: {shape: [2, 3]}, V: {shape: [2, 2]}}
        data: {x: {shape: [3, 2]}, y: {shape: [2, 2]}}
        input: x
        layers:
          - {name: h, weight: W, activation: sigmoid}
          - {name: dead, weight: V}
        output: h
        objective: {loss: cross_entropy, target: y}
        """)
    assert gradcheck.check(spec).status == "pass"
    assert not spec.gradient()["V"].any()


def test_relu_after_an_add_flags_kinks_crossed_by_the_stencil():
    spec = load("""\
        params: {W: [[-1.0, 0.0], [0.0, -1.0]]}
        data: {x: [[1.0, -1.0], [2.0, -2.0]]}
        input: x
        layers:
          - {name: h, weight: W}
          - {add: [h, x], activation: relu}   # z = W x + x = 0 exactly: every entry on relu's kink
        objective: sum
        """)
    result = gradcheck.check(spec)
    assert result.status == "pass"  # at a kink, not a wrong gradient: every entry of W sits on one
    assert result.kinks == 4 and [p.kinks for p in result.params] == [4]


# ----------------------------------------------------------------------------- the perturber


def test_the_perturber_runs_only_layers_downstream_of_the_moved_param(monkeypatch):
    from gradcheck.kinds import dense

    spec = load("""\
        params: {W1: {shape: [3, 3]}, W2: {shape: [3, 3]}, W3: {shape: [3, 3]}}
        data: {x: {shape: [3, 4]}}
        input: x
        layers:
          - {name: a, weight: W1, activation: tanh}
          - {name: b, weight: W2, activation: tanh}
          - {name: c, add: [a, b], weight: W3, activation: tanh}
        objective: sum
        """)
    seen = []
    original = dense.Dense.forward

    def spy(layer, a_in, values):
        if np.ndim(a_in) > 2 or any(np.ndim(values[n]) > 2 for n in ("W1", "W2", "W3")):
            seen.append(layer.key)  # a batched (perturbed) evaluation
        return original(layer, a_in, values)

    monkeypatch.setattr(dense.Dense, "forward", staticmethod(spy))
    result = gradcheck.check(spec)
    assert result.status == "pass"
    assert set(seen) == {"c"}  # a and b are patched row by row where W1, W2 first act; only c re-runs


# ----------------------------------------------------------------------------- located errors


BASE = """\
params: {W: {shape: [3, 3]}, V: {shape: [2, 3]}}
data: {x: {shape: [3, 4]}, y: {shape: [2, 4]}}
"""


def error_at(layers: str, extra: str = "") -> tuple[int, int, str]:
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(BASE + layers + extra, "t.yaml")
    e = info.value
    assert e.file == "t.yaml" and str(e).startswith(f"t.yaml:{e.line}:{e.col}: ")
    return e.line, e.col, e.message


def test_unknown_layer_name_with_did_you_mean():
    line, col, message = error_at("layers:\n  - {name: hidden, input: x, weight: W}\n  - {add: [hiden, x]}\n")
    assert (line, col) == (5, 12)
    assert 'undefined name "hiden"' in message and 'did you mean "hidden"' in message


def test_a_cycle_is_named():
    line, col, message = error_at("layers:\n  - {name: a, add: [b, x]}\n  - {name: b, input: a, weight: W}\n")
    assert (line, col) == (4, 21)
    assert "cycle" in message and "a → b → a" in message


def test_a_name_used_before_it_is_defined():
    line, col, message = error_at("layers:\n  - {name: a, input: b}\n  - {name: b, input: x, weight: W}\n")
    assert (line, col) == (4, 22)
    assert '"b" is used before it is defined' in message and "cycle" not in message


def test_a_self_reference_is_a_cycle():
    line, col, message = error_at("layers:\n  - {name: a, input: a, weight: W}\n")
    assert (line, col) == (4, 22) and "cycle" in message


def test_shape_mismatch_names_both_inputs_and_both_shapes():
    line, col, message = error_at("layers:\n  - {name: h, input: x, weight: V}\n  - {add: [h, x]}\n")
    assert (line, col) == (5, 11)
    assert "shape mismatch in layer 2" in message and "h (layer 1) (2, 4)" in message and "x (3, 4)" in message


def test_matmul_mismatch_and_arity():
    line, col, message = error_at("layers:\n  - {matmul: [x, x]}\n")
    assert (line, col) == (4, 14) and "the first has 4 columns and the second 3 rows" in message
    line, col, message = error_at("layers:\n  - {matmul: [x, x, x]}\n")
    assert (line, col) == (4, 14) and "takes 2 names" in message


def test_slice_out_of_range():
    line, col, message = error_at("layers:\n  - {slice: {input: x, rows: [2, 5]}}\n")
    assert (line, col) == (4, 30)
    assert "slice out of range" in message and "rows [2, 5]" in message


def test_a_layer_name_may_not_clash_with_a_param_data_or_define():
    line, col, message = error_at("layers:\n  - {name: W, input: x}\n")
    assert (line, col) == (4, 12) and "one namespace" in message
    line, col, message = error_at("layers:\n  - {name: h, input: x}\n", "define: {h: W @ x}\n")
    assert (line, col) == (4, 12) and "already a name under define" in message  # defines are read first


def test_two_sources_and_an_unknown_output():
    line, col, message = error_at("layers:\n  - {input: x, add: [x, x]}\n")
    assert (line, col) == (4, 16) and 'both "input" and "add"' in message
    line, col, message = error_at("input: x\nlayers:\n  - {name: h, weight: W}\noutput: hh\n")
    assert (line, col) == (6, 9) and 'did you mean "h"' in message


def test_v1_specs_without_input_still_need_one():
    line, col, message = error_at("layers:\n  - {weight: W}\n")
    assert (line, col) == (1, 1) and '"input"' in message


# ----------------------------------------------------------------------------- hazards, kinds, the merge table


def test_a_hazard_after_a_merge_names_the_layer():
    result = gradcheck.check(load("""\
        params: {W: {shape: [3, 3]}}
        data: {x: {shape: [3, 4]}}
        input: x
        layers:
          - {name: h, weight: W}
          - {name: s, add: [h, x], activation: log}
        objective: sum
        """))
    assert result.status == "error"
    assert "t.yaml:6:5:" in result.message and "layer 2 s (add h, x, log)" in result.message
    assert "log needs z > 0" in result.message


def test_max_pooling_and_conv_inside_a_network():
    spec = load("""\
        params: {K: {shape: [2, 4]}, V: {shape: [2, 8]}}
        data: {x: {shape: [16, 3]}}
        layers:
          - {name: c, input: x, conv: {kernel: K, image: [1, 4, 4], size: [2, 2]}, activation: tanh}
          - {name: p, input: c, maxpool: {size: [2, 2], stride: 1}}
          - {name: q, slice: {input: p, rows: [0, 8]}}
          - {name: m, mul: [q, q], weight: V}
        objective: sum
        """)
    result = gradcheck.check(spec)
    assert result.status == "pass", result.message
    assert spec.model.terms[0].layers[1].options.image == (2, 3, 3)  # the conv's image reached the pool by name


def test_a_max_pooling_tie_made_by_a_merge_is_a_kink_not_a_failure():
    """Issue 11: kinks work through merges: s = W x + x with W = I ties the first two entries of the pooled
    window (2, 2, 1, 0.4); every entry of W that moves s_0 or s_1 crosses that tie, the others do not."""
    spec = load("""\
        params: {W: [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]]}
        data: {x: [1.0, 1.0, 0.5, 0.2]}
        input: x
        layers:
          - {name: h, weight: W}
          - {name: s, add: [h, x]}
          - {name: p, input: s, maxpool: {size: [2, 2], image: [1, 2, 2]}}
          - {mul: [p, p]}
        objective: sum
        """)
    result = gradcheck.check(spec)
    assert result.status == "pass" and result.kinks == 8
    kinks = result.params[0].backprop.kinks
    assert sorted(k.index for k in kinks) == [(i, j) for i in (0, 1) for j in range(4)]
    assert all(k.status == "kink" for k in kinks)


MERGE_SPEC = """\
params:
  W: {shape: [3, 3], std: 0.5}
  V: {shape: [2, 3], std: 0.5}
  A: {shape: [3, 3], init: eye}
data: {x: {shape: [3, 4]}}
input: x
layers:
  - {name: h, weight: W, activation: tanh}
  - {name: s, add: [h, x]}
  - {name: p, mul: [s, h, x]}
  - {name: m, matmul: [p, x.T], weight: W.T}
  - {name: k, concat: [m, V], activation: sigmoid}
  - {name: q, slice: {input: k, rows: [1, 4]}}
  - {name: r, solve: [A, q]}
  - {matmul: [V, r], activation: tanh}
objective: sum
"""


def test_every_merge_row_is_used_by_run_explain_and_the_schema(tmp_path):
    from gradcheck.explain import explain
    from gradcheck.merges import MERGES
    from gradcheck.schema import load_schema

    spec = gradcheck.loads(MERGE_SPEC, "t.yaml")
    assert {layer.merge for layer in spec.model.terms[0].layers} - {None} == set(MERGES)
    params = explain(spec.model).params
    assert all(params.values()), params
    pasted = tmp_path / "pasted.yaml"
    pasted.write_text(MERGE_SPEC + "expect:\n" + "".join(f"  {n}: {t}\n" for n, t in params.items()))
    result = gradcheck.check(gradcheck.load(pasted))
    assert result.status == "pass" and all(p.expect.passed for p in result.params)
    layer = load_schema()["$defs"]["layer"]["properties"]
    assert set(MERGES) <= set(layer) and {"name", "input"} <= set(layer)


@pytest.mark.parametrize("layer", ["{input: x, add: [x, x]}", "{slice: {input: x}}", "{matmul: [x, x, x]}",
                                   "{add: [x]}", "{name: 1h, input: x}"])
def test_the_schema_refuses_what_the_loader_refuses_for_structure(layer):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from gradcheck.schema import load_schema

    text = BASE + f"layers:\n  - {layer}\n"
    with pytest.raises(gradcheck.SpecError):
        gradcheck.loads(text, "t.yaml")
    assert not jsonschema.Draft202012Validator(load_schema()).is_valid(yaml.safe_load(text))


def test_a_singular_solve_is_an_error_naming_its_layer():
    result = gradcheck.check(load("""\
        params: {B: {shape: [2, 3]}}
        data: {A: [[1.0, 2.0], [2.0, 4.0]]}
        layers:
          - {name: s, solve: [A, B], activation: tanh}
        objective: sum
        """))
    assert result.status == "error"
    assert result.message.startswith("t.yaml:4:5: non-finite value (NaN or Inf) first appeared in layer 1 s")
    assert result.message.endswith("its merge solve(A, B) (A is singular)")


def test_terms_each_with_their_own_named_layers():
    spec = load("""\
        params: {W: {shape: [3, 3]}, V: {shape: [3, 3]}}
        data: {x: {shape: [3, 4]}}
        terms:
          - layers:
              - {name: h, input: x, weight: W, activation: tanh}
              - {add: [h, x]}
            objective: sum
          - coef: 0.5
            input: x
            layers:
              - {name: h, weight: V}          # the same name in another term: its own layer
              - {mul: [h, h]}
            objective: sum
        """)
    W, V, x = spec.values["W"], spec.values["V"], spec.values["x"]
    h = np.tanh(W @ x)
    assert spec.objective() == pytest.approx(np.sum(h + x) + 0.5 * np.sum((V @ x) ** 2), rel=1e-13)
    grads = spec.gradient()
    np.testing.assert_allclose(grads["W"], (1 - h ** 2) @ x.T, rtol=1e-12)
    np.testing.assert_allclose(grads["V"], (V @ x) @ x.T, rtol=1e-12)
    assert gradcheck.check(spec).status == "pass"


def test_a_layer_read_transposed():
    spec = load("""\
        params: {W: {shape: [3, 3]}, V: {shape: [2, 4]}}
        data: {x: {shape: [3, 4]}}
        input: x
        layers:
          - {name: h, weight: W, activation: tanh}
          - {name: g, input: h.T}             # 4×3
          - {name: k, matmul: [V, g], activation: sigmoid}
          - {matmul: [k.T, k]}                # 3×3
        objective: sum
        """)
    W, V, x = spec.values["W"], spec.values["V"], spec.values["x"]
    h = np.tanh(W @ x)
    k = 1 / (1 + np.exp(-(V @ h.T)))
    assert spec.objective() == pytest.approx(np.sum(k.T @ k), rel=1e-13)
    dk = k @ np.ones((3, 3)) + k @ np.ones((3, 3)).T  # ∂ sum(kᵀk)/∂k
    dz = dk * k * (1 - k)
    dh = (V.T @ dz).T  # back through g = hᵀ
    np.testing.assert_allclose(spec.gradient()["V"], dz @ h, rtol=1e-12)
    np.testing.assert_allclose(spec.gradient()["W"], (dh * (1 - h ** 2)) @ x.T, rtol=1e-12)
    assert gradcheck.check(spec).status == "pass"


@pytest.mark.parametrize("text", [
    """\
    params: {W: {shape: [4, 3], std: 0.5}, V: {shape: [4, 4], std: 0.5}, b: {shape: [4, 1]}}
    data: {x: {shape: [3, 6]}, Y: {shape: [4, 6], init: onehot}}
    layers:
      - {name: h, input: x, weight: W, bias: b, activation: tanh}
      - {name: g, input: h, weight: V}
      - {add: [g, h], activation: softmax}
    objective: {loss: cross_entropy, target: Y, reduce: mean}
    """,
    """\
    params: {W: {shape: [4, 3], std: 0.5}, V: {shape: [4, 4], std: 0.5}, b: {shape: [4, 1]}}
    data: {x: {shape: [3, 6]}, Y: {shape: [4, 6], init: binary}}
    layers:
      - {name: h, input: x, weight: W, bias: b, activation: tanh}
      - {name: s, slice: {input: h, rows: [0, 4]}}
      - {name: g, mul: [s, h], weight: V, bias: b}
      - {add: [g, h], activation: sigmoid}
    objective: {loss: binary_cross_entropy, target: Y}
    """], ids=["softmax_cross_entropy", "sigmoid_binary_cross_entropy"])
def test_a_loss_fused_with_a_networks_last_activation(text):
    spec = load(text)
    grads = spec.gradient()
    for name in spec.param_names:  # plain central differences of J, outside the engine's perturber
        theta = spec.values[name]
        numeric = np.zeros_like(theta)
        for idx in np.ndindex(theta.shape):
            plus, minus = theta.copy(), theta.copy()
            plus[idx] += 1e-6
            minus[idx] -= 1e-6
            numeric[idx] = (spec.objective({name: plus}) - spec.objective({name: minus})) / 2e-6
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)
    for method in ("central", "complex-step"):
        assert gradcheck.check(spec, method=method).status == "pass"
