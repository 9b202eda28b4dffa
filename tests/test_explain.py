"""`gradcheck explain`: UFLDL tables, closed forms that round-trip through `expect`, and --emit python."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

import gradcheck
from conftest import BUNDLED, FIXTURES, ICA, SPECS, invoke
from gradcheck.emit import emit_python
from gradcheck.limits import DEFAULT as DEFAULT_LIMITS
from gradcheck.explain import explain
from gradcheck.symbolic import NoClosedForm


# Specs covering every activation, objective and role a param can play (weight, W.T, bias, input,
# input.T, activation argument, loss target, coef), so that each rule of the derivation is exercised.
ZOO = {
    "relu_softplus_abs": """
        params: {W: {shape: [4, 3]}, V: {shape: [2, 4]}}
        data: {x: {shape: [3, 5]}}
        input: x
        layers: [{weight: W, activation: relu}, {weight: V, activation: softplus}, {activation: abs}]
        """,
    "log_exp_sqrt_mean": """
        params: {W: {shape: [3, 4], init: uniform, low: 0.5, high: 2}}
        input: W
        layers: [{activation: log}, {activation: exp}, {activation: sqrt}]
        objective: mean
        """,
    "power_scale_add_argument_param": """
        params: {W: {shape: [3, 2]}, b: {shape: [3, 1]}}
        data: {x: {shape: [2, 4]}, c: 0.7, y: {shape: [3, 4]}}
        input: x
        layers: [{weight: W, activation: {power: 3}}, {activation: {scale: c}}, {activation: {add: b}}]
        objective: {loss: squared_error, target: y}
        """,
    "sub_and_scale_by_params": """
        params: {W: {shape: [3, 3]}, T: {shape: [3, 2]}, s: 1.3}
        data: {x: {shape: [3, 2]}}
        input: x
        layers: [{weight: W.T, activation: {sub: T}}, {activation: {scale: s}}, {activation: tanh}]
        objective: sum
        """,
    "custom_with_data": """
        params: {W: {shape: [2, 3]}}
        data: {x: {shape: [3, 4]}, k: 0.5}
        input: x
        layers: [{weight: W, activation: {f: "k * z + z ** 2", df: "k + 2 * z"}}, {activation: square}]
        """,
    "bce_without_sigmoid_on_top": """
        params: {W: {shape: [1, 3]}, b: {shape: [1, 1]}}
        data: {x: {shape: [3, 6]}, y: {shape: [1, 6], init: binary}}
        input: x
        layers: [{weight: W, bias: b, activation: sigmoid}, {}]
        objective: {loss: binary_cross_entropy, target: y, reduce: mean}
        """,
    "softmax_ce_soft_target": """
        params: {W: {shape: [3, 4]}}
        data: {x: {shape: [4, 5]}, Y: {shape: [3, 5], init: uniform, low: 0.1, high: 1}}
        input: x
        layers: [{weight: W, activation: softmax}]
        objective: {loss: cross_entropy, target: Y}
        """,
    "cross_entropy_after_identity": """
        params: {W: {shape: [3, 4]}}
        data: {x: {shape: [4, 5]}, Y: {shape: [3, 5], init: onehot}}
        input: x
        layers: [{weight: W, activation: softmax}, {activation: identity}]
        objective: {loss: cross_entropy, target: Y, reduce: mean}
        """,
    "target_is_a_param": """
        params: {W: {shape: [2, 3]}, T: {shape: [2, 4], init: uniform, low: 0.2, high: 0.8}}
        data: {x: {shape: [3, 4]}}
        terms:
          - input: x
            layers: [{weight: W, activation: tanh}]
            objective: {loss: squared_error, target: T, reduce: mean}
          - input: x
            layers: [{weight: W, activation: sigmoid}]
            objective: {loss: binary_cross_entropy, target: T}
        """,
    "coef_input_transpose_bias_broadcast": """
        params: {A: {shape: [4, 3]}, lam: 0.3, c: {shape: [1, 1]}, r: {shape: [1, 4]}, unused: {shape: [2, 2]}}
        data: {M: {shape: [2, 3]}}
        terms:
          - input: A.T
            layers: [{weight: M, bias: c, activation: sigmoid}, {bias: r, activation: square}]
          - coef: lam
            input: A
            objective: mean
          - coef: 0.5
            input: A
            layers: [{activation: square}]
        """,
    "softmax_in_the_middle": """
        params: {W: {shape: [3, 2]}, V: {shape: [2, 3]}}
        data: {x: {shape: [2, 4]}}
        input: x
        layers: [{weight: W, activation: softmax}, {weight: V, activation: tanh}, {weight: V.T}]
        objective: mean
        """,
}


def zoo_spec(name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(line[8:] for line in ZOO[name].splitlines()))
    return path


def explain_json(path) -> dict:
    result = invoke("explain", "--format", "json", str(path))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def with_expect(path: Path, expect: dict, target: Path) -> Path:
    """The spec at `path` with its expect block replaced (defines kept, in order)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["expect"] = expect
    target.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target


def assert_round_trip(path: Path, tmp_path: Path) -> dict:
    """Every printed closed form, pasted into expect, passes the check."""
    params = explain_json(path)["params"]
    assert params and all(text is not None for text in params.values()), params
    # a network's closed form can outgrow expect's default length (the LSTM cell's ~2,400 characters):
    # pasted with the length limit raised (--max-expression-length), it must pass all the same
    longest = max(len(text) for text in params.values())
    limits = replace(DEFAULT_LIMITS, expression_length=max(DEFAULT_LIMITS.expression_length, longest))
    result = gradcheck.check(gradcheck.load(with_expect(path, params, tmp_path / "pasted.yaml"), limits))
    assert result.status == "pass", [(p.name, p.expect) for p in result.params]
    assert all(p.expect is not None and p.expect.passed for p in result.params)
    return params


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_closed_form_round_trips_for_every_bundled_spec(path, tmp_path):
    spec = gradcheck.load(path)
    if all(layer.kind == "dense" for term in spec.model.terms for layer in term.layers):
        assert_round_trip(path, tmp_path)
        return
    # conv, maxpool, recurrent: no closed form in the expression language, said for every param they read
    explained = explain_json(path)
    assert all(text is None for text in explained["params"].values()), explained["params"]
    text = invoke("explain", str(path)).output
    assert text.count("no closed form in the expression language") >= len(spec.param_names)
    assert "(not used)" not in text


@pytest.mark.parametrize("name", ZOO)
def test_closed_form_round_trips_for_every_rule(name, tmp_path):
    assert_round_trip(zoo_spec(name, tmp_path), tmp_path)


def run_emitted(model, values):
    namespace = {}
    exec(compile(emit_python(model), "<emitted>", "exec"), namespace)  # the test runs it; the package never does
    return namespace["objective_and_gradients"](values)


def assert_emitted_matches_backprop(spec):
    J, grads = run_emitted(spec.model, spec.values)
    assert J == pytest.approx(spec.objective(), rel=1e-12, abs=1e-12)
    expected = spec.gradient()
    assert set(grads) == set(expected)
    for name, g in expected.items():
        np.testing.assert_allclose(grads[name], g, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_emit_python_computes_j_and_every_gradient(path):
    spec = gradcheck.load(path)
    if any(layer.kind != "dense" for term in spec.model.terms for layer in term.layers):
        result = invoke("explain", "--emit", "python", str(path))
        assert result.exit_code == 1 and "no closed form in the expression language" in result.output
        return
    assert_emitted_matches_backprop(spec)


@pytest.mark.parametrize("name", ZOO)
def test_emit_python_for_every_rule(name, tmp_path):
    assert_emitted_matches_backprop(gradcheck.load(zoo_spec(name, tmp_path)))


def test_emit_python_renames_what_python_cannot_use(tmp_path):
    spec = tmp_path / "names.yaml"
    spec.write_text("params: {np: {shape: [2, 2]}, lambda: {shape: [2, 3]}}\ndata: {J: {shape: [3, 2]}}\n"
                    "input: J\nlayers: [{weight: lambda, activation: tanh}, {weight: np}]\n")
    assert_emitted_matches_backprop(gradcheck.load(spec))


def test_emit_python_cli_prints_a_module():
    result = invoke("explain", "--emit", "python", str(ICA))
    assert result.exit_code == 0
    assert "import numpy as np" in result.stdout and "def objective_and_gradients(values):" in result.stdout
    assert "grad_W += " in result.stdout


def test_power_with_a_name_has_no_closed_form_but_emits_python(tmp_path):
    spec = tmp_path / "p.yaml"
    spec.write_text("params: {W: {shape: [2, 3], init: uniform, low: 0.5, high: 1.5}}\ndata: {p: 2.5}\n"
                    "input: W\nlayers: [{activation: {power: p}}]\n")
    data = explain_json(spec)
    assert data["params"] == {"W": None} and "no form in the expression language" in data["notes"]["W"]
    assert_emitted_matches_backprop(gradcheck.load(spec))


def test_structured_layers_have_no_closed_form():
    spec = gradcheck.load(ICA)
    term = spec.model.terms[0]
    layers = (replace(term.layers[0], kind="conv"),) + term.layers[1:]
    model = replace(spec.model, terms=(replace(term, layers=layers),))
    ex = explain(model)
    assert ex.params == {"W": None}
    assert "no closed form in the expression language" in ex.notes["W"]
    assert ex.terms[0].note and ex.terms[0].rows[-2].kind == "conv"
    with pytest.raises(NoClosedForm):
        emit_python(model)


# ----------------------------------------------------------------------------- the UFLDL tables


def test_ica_table_is_ufldl_example_3():
    """The page's table for ‖WᵀWx − x‖², with the spec's extra identity layer (4, f = z − x)."""
    data = explain_json(ICA)
    (term,) = data["terms"]
    rows = {row["layer"]: row for row in term["layers"]}
    assert [row["layer"] for row in term["layers"]] == [5, 4, 3, 2, 1]  # n_l first, as the δ table
    assert (rows[5]["weight"], rows[5]["f"], rows[5]["df"], rows[5]["delta"], rows[5]["z"]) == \
        ("N/A", "z ** 2", "2 * z", "2 * z⁽⁵⁾", "W.T @ W @ x - x")
    assert (rows[4]["f"], rows[4]["delta"], rows[4]["z"]) == ("z - x", "δ⁽⁵⁾ • 1", "W.T @ W @ x")
    assert (rows[2]["weight"], rows[2]["delta"], rows[2]["z"]) == ("W.T", "(W @ δ⁽³⁾) • 1", "W @ x")
    assert (rows[1]["weight"], rows[1]["delta"], rows[1]["z"]) == ("W", "(W.T @ δ⁽²⁾) • 1", "x")
    assert [(u["where"], u["formula"]) for u in data["uses"]] == [
        ("weight W of layer 1", "δ⁽²⁾ a⁽¹⁾ᵀ"), ("weight W.T of layer 2", "(δ⁽³⁾ a⁽²⁾ᵀ)ᵀ")]
    # the page's sum, with the first factor corrected from Wᵀ to W:
    assert data["params"]["W"] == "W @ (2 * (W.T @ W @ x - x)) @ x.T + W @ x @ (2 * (W.T @ W @ x - x)).T"


def test_sparse_coding_gradient_in_s_is_the_pages_result():
    data = explain_json(SPECS / "ufldl_sparse_coding.yaml")
    assert data["params"]["s"] == "A.T @ (2 * (A @ s - x))"  # ∇ₛ F = Aᵀ 2(As − x)
    assert [row["delta"] for row in data["terms"][0]["layers"]] == ["2 * z⁽³⁾", "δ⁽³⁾ • 1", "(A.T @ δ⁽²⁾) • 1"]


def test_human_output_pastes_into_expect(tmp_path):
    result = invoke("explain", str(ICA))
    assert result.exit_code == 0
    out = result.stdout
    assert "Term 1: J₁ = sum(a⁽⁵⁾), a⁽¹⁾ = x" in out and "∇W = δ⁽²⁾ a⁽¹⁾ᵀ" in out
    block = out[out.index("\nexpect:\n") + 1:]
    pasted = yaml.safe_load(block)["expect"]
    assert pasted == explain_json(ICA)["params"]
    result = gradcheck.check(gradcheck.load(with_expect(ICA, pasted, tmp_path / "pasted.yaml")))
    assert result.status == "pass"


def test_invalid_spec_goes_through_the_format():
    bad = FIXTURES / "invalid" / "unknown_activation.yaml"
    human = invoke("explain", str(bad))
    assert human.exit_code == 1 and human.stderr.startswith(f"{bad}:6:17: no such activation")
    as_json = invoke("explain", "--format", "json", str(bad))
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["error"].startswith(f"{bad}:6:17:")


def test_json_shape():
    data = explain_json(SPECS / "two_layer_network.yaml")
    assert set(data) >= {"params", "terms"}
    assert list(data["params"]) == ["W1", "b1", "W2", "b2"]
    assert set(data["terms"][0]["layers"][0]) == {"layer", "kind", "weight", "bias", "f", "df", "delta", "z"}
    assert data["terms"][0]["layers"][0]["delta"] == "(a⁽³⁾ - Y) / 5"  # sigmoid′ cancels the cross-entropy's


def test_expect_block_quotes_what_yaml_would_misread_and_comments_out_what_expect_refuses(tmp_path):
    negative = tmp_path / "negative.yaml"
    negative.write_text("params: {W: {shape: [2, 3]}}\ninput: W\nlayers: [{activation: {scale: -2}}]\n")
    out = invoke("explain", str(negative)).stdout
    assert '  W: "-2 * ones_like(W)"' in out
    pasted = yaml.safe_load(out[out.index("\nexpect:\n") + 1:])["expect"]
    assert gradcheck.check(gradcheck.load(with_expect(negative, pasted, tmp_path / "p.yaml"))).status == "pass"
    deep = tmp_path / "deep.yaml"
    deep.write_text("params: {W: {shape: [3, 3], std: 0.5}}\ndata: {x: {shape: [3, 2]}}\ninput: x\nlayers:\n"
                    + "  - {weight: W, activation: tanh}\n" * 8)
    data = explain_json(deep)
    assert len(data["params"]["W"]) > 2000 and "expect takes at most 2,000" in data["notes"]["W"]
    out = invoke("explain", str(deep)).stdout
    assert yaml.safe_load(out[out.index("\nexpect:\n") + 1:])["expect"] is None  # all commented out
    assert_emitted_matches_backprop(gradcheck.load(deep))  # --emit python has no length limit


@pytest.mark.parametrize("name", ["two_layer_network.yaml", "softmax_regression.yaml",
                                  "ufldl_ica_reconstruction.yaml"])
def test_emit_python_is_right_for_other_batch_sizes(name, tmp_path):
    """The emitted function reads m (and ones) from its arrays: written for m examples, right for 2m + 3."""
    source = gradcheck.load(SPECS / name)
    data = yaml.safe_load((SPECS / name).read_text(encoding="utf-8"))
    for decl in data.get("data", {}).values():
        if isinstance(decl, dict) and "shape" in decl:
            decl["shape"][1] = 2 * decl["shape"][1] + 3
    data.pop("expect", None), data.pop("define", None)
    wider = tmp_path / "wider.yaml"
    wider.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    spec = gradcheck.load(wider)
    assert any(source.values[n].shape != spec.values[n].shape for n in spec.values)
    namespace = {}
    exec(compile(emit_python(source.model), "<emitted>", "exec"), namespace)  # the test runs it; the package never does
    J, grads = namespace["objective_and_gradients"](spec.values)
    assert J == pytest.approx(spec.objective(), rel=1e-12)
    for param, g in spec.gradient().items():
        np.testing.assert_allclose(grads[param], g, rtol=1e-9, atol=1e-12, err_msg=param)
