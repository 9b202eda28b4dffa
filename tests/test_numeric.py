"""The finite-difference engine: structured/batched equals the plain loop; methods, modes, kinks."""

import glob
import json

import numpy as np
import pytest

import gradcheck
from conftest import invoke
from gradcheck import network, numeric
from gradcheck.perturb import Perturber
from gradcheck.rowpatch import term_uses

BUNDLED = sorted(glob.glob("specs/*.yaml"))

# Every place a param can stand, each with shortcuts and without: (id, yaml).
PLACEMENTS = {
    "input": "input: P\nlayers: [{weight: U, activation: tanh}, {activation: square}]",
    "input_T": "input: P.T\nlayers: [{weight: V, activation: sigmoid}]",
    "weight": "input: x\nlayers: [{weight: P, activation: tanh}, {weight: U, activation: sigmoid}]",
    "weight_T": "input: y\nlayers: [{weight: P.T, bias: c4, activation: softplus}, {activation: square}]",
    "tied": "input: x\nlayers: [{weight: P, activation: tanh}, {weight: P.T}, {activation: {sub: x}}, {activation: square}]",
    "bias_column": "input: x\nlayers: [{weight: W, bias: Pc, activation: tanh}, {weight: U, activation: sigmoid}]",
    "bias_full": "input: x\nlayers: [{weight: W, bias: Pf, activation: exp}]",
    "bias_scalar": "input: x\nlayers: [{weight: W, bias: s, activation: tanh}]",
    "argument_column": "input: x\nlayers: [{weight: W, activation: {scale: Pc}}, {activation: tanh}]",
    "argument_scalar": "input: x\nlayers: [{weight: W, activation: exp}, {activation: {power: s2}}]",
    "argument_full": "input: x\nlayers: [{weight: W, activation: {sub: Pf}}, {activation: square}]",
    "softmax_after": "input: x\nlayers: [{weight: P, activation: softmax}]\nobjective: {loss: cross_entropy, target: Y, reduce: mean}",
    "target": "input: x\nlayers: [{weight: W, activation: sigmoid}]\nobjective: {loss: squared_error, target: Pf, reduce: mean}",
    "custom_after": "input: x\nlayers: [{weight: P, activation: {f: 'z**3 + z', df: '3*z**2 + 1'}}]\nobjective: mean",
    "coef": "terms:\n  - {input: x, coef: s, layers: [{weight: P, activation: tanh}]}\n  - {input: s, layers: [{activation: exp}]}",
    "identity_then_bias": "input: x\nlayers: [{weight: P}, {bias: c3, activation: relu}, {weight: U}]",
}
DECLS = """\
seed: 3
params:
  P: {shape: [3, 4], std: 0.5}
  Pc: {shape: [3, 1]}
  Pf: {shape: [3, 5], init: uniform, low: 0.2, high: 0.8}
  s: 0.7
  s2: 2.0
data:
  x: {shape: [4, 5]}
  y: {shape: [3, 5]}
  W: {shape: [3, 4], std: 0.5}
  V: {shape: [2, 4]}
  U: {shape: [2, 3]}
  c3: {shape: [3, 1]}
  c4: {shape: [4, 1]}
  Y: {shape: [3, 5], init: onehot}
"""


STRUCTURED_DECLS = """\
seed: 5
params:
  K: {shape: [2, 8], std: 0.5}     # 2 filters over 2 channels × 2×2
  cb: {shape: [2, 1], std: 0.1}
  img: {shape: [18, 3]}            # three 2×3×3 images
  Wh: {shape: [3, 3], std: 0.5}
  Wx: {shape: [3, 2]}
  rb: {shape: [3, 1], std: 0.2}
  h0: {shape: [3, 1], std: 0.5}
  seq: {shape: [6, 4]}             # 3 steps of 2 inputs, 4 sequences
data:
  U: {shape: [2, 8]}
"""
STRUCTURED = {
    "conv_all": "input: img\nlayers:\n  - conv: {kernel: K, image: [2, 3, 3], size: [2, 2]}\n    bias: cb\n"
                "    activation: tanh\n  - maxpool: {size: [2, 2]}\n  - {weight: U.T, activation: sigmoid}",
    "conv_stride_pad": "input: img\nlayers:\n  - conv: {kernel: K, image: [2, 3, 3], size: [2, 2], stride: 2, padding: 1}\n"
                       "    activation: softplus\nobjective: mean",
    "recurrent_last": "input: seq\nlayers:\n  - recurrent: {hidden_weight: Wh, input_weight: Wx, bias: rb, steps: 3, "
                      "activation: tanh, init: h0, output: last}\n  - activation: square",
    "recurrent_all": "input: seq\nlayers:\n  - recurrent: {hidden_weight: Wh, input_weight: Wx, bias: rb, steps: 3, "
                     "activation: sigmoid, output: all}",
}


@pytest.mark.parametrize("placement", list(STRUCTURED))
def test_structured_layer_kinds_equal_the_plain_loop(placement):
    test_structured_perturbations_equal_the_plain_loop(placement, STRUCTURED_DECLS + STRUCTURED[placement])


def plain_loop(spec, name, delta):
    """J(θ + δ e_k) − J(θ) by re-evaluating the whole network for each entry: the oracle."""
    values = dict(spec.values)
    base = float(network.objective(spec.model, values))
    out = []
    for k in range(values[name].size):
        moved = values[name].copy()
        moved.flat[k] += delta
        out.append(float(network.objective(spec.model, {**values, name: moved})) - base)
    return np.array(out)


@pytest.mark.parametrize("placement", list(PLACEMENTS))
def test_structured_perturbations_equal_the_plain_loop(placement, text=None):
    spec = gradcheck.loads(text or DECLS + PLACEMENTS[placement])
    used = [n for n in spec.param_names if any(term_uses(t, n) for t in spec.model.terms)]
    assert used
    for name in used:
        perturber = Perturber(spec.model, dict(spec.values), name)
        n = spec.values[name].size
        delta = 1e-3
        got, _, _ = perturber(np.arange(n), np.full(n, delta))
        want = plain_loop(spec, name, delta)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * max(1, abs(spec.objective())))
        stack = spec.values[name][None] + delta * np.eye(n).reshape((n,) + spec.values[name].shape)
        dense, _, _ = perturber.along(stack)  # the dense route, no shortcuts
        np.testing.assert_allclose(dense, want, rtol=1e-9, atol=1e-12 * max(1, abs(spec.objective())))


NOT_ANALYTIC = ("specs/max_pooling.yaml", "specs/tiny_cnn.yaml",  # max pooling, relu: no complex step
                "specs/residual_block.yaml")
# The LSTM cell's Wx[1, 2] (2.6e-4) sums terms of ~1e-2 that cancel: the complex step's imaginary parts
# carry that cancellation's round-off (2e-13 relative; backprop is 4e-14 from a long-double evaluation)
CANCELLING = {"specs/lstm_cell_from_primitives.yaml": 5e-13}
METHOD_CASES = [(path, method) for method in ("central", "richardson", "complex-step") for path in BUNDLED
                if not (method == "complex-step" and path in NOT_ANALYTIC)]


@pytest.mark.parametrize("path, method", METHOD_CASES, ids=lambda v: v.split("/")[-1])
def test_every_method_on_every_bundled_spec(path, method):
    result = gradcheck.check(gradcheck.load(path), method=method)
    assert result.status == "pass", result.message or [(p.name, p.backprop, p.expect) for p in result.params]
    # the worst relative error, floored by each entry's own estimated error (gradcheck.verdict)
    limit = {"central": 5e-8, "richardson": 5e-10, "complex-step": CANCELLING.get(path, 1e-13)}[method]
    assert max(p.backprop.max_rel_error for p in result.params) <= limit


@pytest.mark.parametrize("path", NOT_ANALYTIC, ids=lambda p: p.split("/")[-1])
def test_complex_step_refuses_the_bundled_specs_that_are_not_analytic(path):
    result = gradcheck.check(gradcheck.load(path), method="complex-step")
    assert result.status == "error" and "needs every operation to be analytic" in result.message


@pytest.mark.parametrize("mode", ["fast", "sample:3"])
@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.split("/")[-1])
def test_every_mode_on_every_bundled_spec(path, mode):
    result = gradcheck.check(gradcheck.load(path), mode=mode)
    assert result.status == "pass"
    for p in result.params:
        expected = 2 if mode == "fast" else min(3, int(np.prod(p.shape)))
        assert p.backprop.checked == expected


def test_sample_mode_is_seeded_and_checks_k_entries():
    spec = gradcheck.load("specs/two_layer_network.yaml")
    one = gradcheck.check(spec, mode="sample:5")
    two = gradcheck.check(spec, mode="sample:5")
    assert [p.backprop.worst_index for p in one.params] == [p.backprop.worst_index for p in two.params]
    assert one.params[0].backprop.checked == 5


def test_fast_mode_localizes_a_wrong_gradient():
    result = gradcheck.check(gradcheck.load("tests/fixtures/wrong/two_layer_db2_typo_square.yaml"), mode="fast")
    b2 = next(p for p in result.params if p.name == "b2")
    assert result.status == "fail" and b2.status == "fail"
    assert "fast mode found a mismatch" in b2.note
    assert b2.expect.checked == 3 and b2.expect.worst_index is not None  # the full check of b2
    assert all(p.status == "pass" for p in result.params if p.name != "b2")


def test_memory_budget_changes_chunking_not_results():
    spec = gradcheck.load("specs/ufldl_ica_reconstruction.yaml")
    roomy = gradcheck.check(spec)
    tight = gradcheck.check(spec, memory=1)
    assert roomy.params[0].backprop == tight.params[0].backprop


def test_complex_step_flags_a_single_entry_off_by_1e9():
    spec = gradcheck.load("specs/two_layer_network.yaml")
    grads = spec.gradient()
    result = gradcheck.check(spec, method="complex-step")
    assert result.status == "pass"
    from gradcheck.verdict import judge
    from gradcheck import numeric

    W1 = spec.values["W1"]
    est = numeric.estimate(Perturber(spec.model, dict(spec.values), "W1"), W1, method="complex-step")
    settings = result.settings
    # Where |gradient| is below atol/rtol the metric is absolute and a 1e-9 relative change is within atol.
    relative = [k for k in range(W1.size) if abs(grads["W1"].flat[k] * (1 + 1e-9)) > settings.atol / settings.rtol]
    assert len(relative) >= 4
    for k in relative:
        bad = grads["W1"].copy()
        bad.flat[k] *= 1 + 1e-9
        assert not judge(bad, est, settings.rtol, settings.atol).passed, k


KINK_SPEC = """\
params:
  W: [[1.0, -1.0], [2.0, 0.5]]
data:
  x: [[1.0, 2.0], [1.0, 3.0]]
input: x
layers:
  - weight: W           # z[0, 0] = 1·1 − 1·1 = 0 exactly: relu's kink
    activation: relu
  - activation: {scale: 3}
objective: sum
"""


def test_relu_exactly_at_zero_is_a_kink_not_a_failure():
    result = gradcheck.check(gradcheck.loads(KINK_SPEC, "kink.yaml"))
    W = result.params[0]
    assert result.status == "pass" and W.status == "pass"
    assert W.kinks == 2  # W[0,0] and W[0,1] both move z[0,0] across 0
    kink = W.backprop.kinks[0]
    assert kink.status == "kink" and min(kink.left, kink.right) <= kink.analytic <= max(kink.left, kink.right)


def test_kinks_are_counted_in_json_and_noted_in_text(tmp_path):
    path = tmp_path / "kink.yaml"
    path.write_text(KINK_SPEC)
    data = json.loads(invoke("run", "--format", "json", str(path)).output)
    param = data["specs"][0]["params"][0]
    assert data["specs"][0]["status"] == "pass"
    assert param["kinks"] == 2 and {e["status"] for e in param["kink_entries"]} == {"kink"}
    text = invoke("run", str(path)).output
    assert "2 kinks" in text and "not counted as failures" in text


def test_a_wrong_gradient_at_a_kink_still_fails():
    wrong = KINK_SPEC + "expect:\n  W: 3 * ones_like(W) * 5\n"
    result = gradcheck.check(gradcheck.loads(wrong, "kink.yaml"))
    W = result.params[0]
    assert W.status == "fail"
    assert any(k.status == "fail" for k in W.expect.kinks)
    assert "outside the one-sided slopes" in W.expect.message


def test_abs_at_zero_is_a_kink():
    spec = "params:\n  v: [0.0, 1.5, -2.0]\ninput: v\nlayers: [{activation: abs}]\n"
    result = gradcheck.check(gradcheck.loads(spec))
    assert result.status == "pass" and result.params[0].kinks == 1


@pytest.mark.parametrize("layers, culprit", [
    ("[{activation: relu}]", "relu"),
    ("[{activation: abs}]", "abs"),
    ("[{activation: {f: 'maximum(z, 0)', df: 'sign(z)'}}]", "custom f = maximum(z, 0)"),
])
def test_complex_step_refuses_non_analytic_specs(layers, culprit):
    spec = gradcheck.loads(f"params:\n  v: [0.5, 1.5]\ninput: v\nlayers: {layers}\n", "na.yaml")
    result = gradcheck.check(spec, method="complex-step")
    assert result.status == "error"
    assert result.message.startswith("na.yaml:4:23:")
    assert f"{culprit} in layer 1" in result.message and "use --method central or richardson" in result.message


def test_cli_method_mode_and_memory_options(tmp_path):
    ica = "specs/ufldl_ica_reconstruction.yaml"
    for args in (["--method", "richardson"], ["--mode", "fast"], ["--mode", "sample:4"], ["--memory", "1"]):
        result = invoke("run", "--format", "json", *args, ica)
        assert result.exit_code == 0, result.output
    bad = invoke("run", "--mode", "sometimes", ica)
    assert bad.exit_code == 2 and "no such mode" in bad.output


def test_sweep_draws_the_v_with_the_chosen_step_near_its_bottom():
    from gradcheck.sweep import sweep

    for curve in sweep(gradcheck.load("specs/two_layer_network.yaml")):
        errors = np.array(curve.errors)
        at_chosen = errors[np.argmin(np.abs(np.log10(curve.steps) - np.log10(curve.chosen_step)))]
        assert errors[0] > 100 * at_chosen and errors[-1] > 100 * at_chosen  # both arms of the V
        assert at_chosen < 100 * errors.min()


def test_sweep_cli_human_and_json():
    human = invoke("sweep", "specs/ufldl_ica_reconstruction.yaml")
    assert human.exit_code == 0 and "┊ = the step the check uses" in human.output and "●" in human.output
    data = json.loads(invoke("sweep", "--format", "json", "specs/ufldl_ica_reconstruction.yaml").output)
    curve = data["specs"][0]["params"][0]
    assert curve["param"] == "W" and len(curve["steps"]) == len(curve["errors"]) == 27
    refused = invoke("sweep", "--method", "complex-step", "specs/max_pooling.yaml")
    assert refused.exit_code == 1 and "analytic" in refused.output


TIE_SPEC = """\
params:
  x: [1.0, 1.0, 0.5, 0.2]     # one 2×2 window whose maximum is tied
input: x
layers:
  - maxpool: {size: [2, 2], image: [1, 2, 2]}
    activation: {scale: 2}
objective: sum
"""


def test_maxpool_tie_is_a_kink_and_a_wrong_gradient_there_still_fails():
    result = gradcheck.check(gradcheck.loads(TIE_SPEC, "tie.yaml"))
    x = result.params[0]
    assert result.status == "pass" and x.kinks == 2
    assert sorted(k.index for k in x.backprop.kinks) == [(0, 0), (1, 0)]
    wrong = gradcheck.check(gradcheck.loads(TIE_SPEC + "expect:\n  x: 3 * ones_like(x)\n", "tie.yaml"))
    assert wrong.status == "fail" and any(k.status == "fail" for k in wrong.params[0].expect.kinks)


def test_complex_step_refuses_maxpool():
    result = gradcheck.check(gradcheck.loads(TIE_SPEC, "tie.yaml"), method="complex-step")
    assert result.status == "error" and "maxpool layer" in result.message


@pytest.mark.parametrize("path", sorted(glob.glob("tests/fixtures/kinks/*.yaml")), ids=lambda p: p.split("/")[-1])
def test_kink_fixtures_pass_with_their_kinks_counted(path):
    result = gradcheck.check(gradcheck.load(path))
    assert result.status == "pass" and result.kinks >= 1


# Exact shortcuts: each equals the dense route (every layer's own batched forward, the plain per-entry loop
# batched) to 1e-12 relative, in ΔJ and in the size of what it summed, for real and imaginary steps; a real
# ΔJ may also differ by the dense route's own round-off, 2·ROUNDING·size (its Σ L(new) − L(old) over every
# entry rounds at ε of what it sums, which the error estimate already allows; the shortcut sums fewer).
SHORTCUTS = {
    "softmax_ce_weight_bias": "input: x\nlayers: [{weight: P, bias: Pc, activation: softmax}]\n"
                              "objective: {loss: cross_entropy, target: Y, reduce: mean}",
    "softmax_ce_soft_targets": "input: x\nlayers: [{weight: P, activation: softmax}]\n"
                               "objective: {loss: cross_entropy, target: Pf}",
    "softmax_ce_input": "input: Pf\nlayers: [{activation: softmax}]\nobjective: {loss: cross_entropy, target: Y}",
    "tied_W_and_WT": "input: x\nlayers: [{weight: P, activation: tanh}, {weight: P.T}, {activation: square}]",
    "weight_and_argument": "input: x5\nlayers: [{weight: S, activation: tanh}, {activation: {scale: S}}, "
                           "{activation: square}]\nobjective: mean",
    "weight_and_bias": "input: x5\nlayers: [{weight: S, bias: S, activation: tanh}, {weight: S.T, activation: sigmoid}]",
    "bias_twice": "input: x\nlayers: [{weight: W, bias: Pc, activation: tanh}, {bias: Pc, activation: sigmoid}]",
    "weight_twice_after_dense": "input: x5\nlayers: [{weight: S, activation: tanh}, {weight: U5, activation: softplus}, "
                                "{weight: S, bias: Sc, activation: sigmoid}]",
    "tied_squared_error": "input: x5\nlayers: [{weight: S, activation: tanh}, {weight: S.T}]\n"
                          "objective: {loss: squared_error, target: x5, reduce: mean}",
    "hidden_then_squared_error": "input: x\nlayers: [{weight: P, bias: Pc, activation: tanh}, {weight: U, bias: Sc2}]\n"
                                 "objective: {loss: squared_error, target: y2}",
    "mlp_softmax_ce": "input: x\nlayers: [{weight: P, bias: Pc, activation: tanh}, {weight: U3, activation: softmax}]\n"
                      "objective: {loss: cross_entropy, target: Y, reduce: mean}",
    "tied_softmax_ce": "input: x5\nlayers: [{weight: S, activation: tanh}, {weight: S.T, activation: softmax}]\n"
                       "objective: {loss: cross_entropy, target: Y5}",
    "mlp_sigmoid_bce": "input: x\nlayers: [{weight: P, bias: Pc, activation: tanh}, {weight: U, activation: sigmoid}]\n"
                       "objective: {loss: binary_cross_entropy, target: yb, reduce: mean}",
    "tied_sigmoid_bce": "input: x5\nlayers: [{weight: S, activation: tanh}, {weight: S.T, activation: sigmoid}]\n"
                        "objective: {loss: binary_cross_entropy, target: Yb5}",
    "softmax_ce_after_bias_layer": "input: x\nlayers: [{weight: P, activation: tanh}, {bias: Pc, activation: softmax}]\n"
                                   "objective: {loss: cross_entropy, target: Y, reduce: mean}",
}


SQUARE = """\
  S: {shape: [5, 5], std: 0.4}
  Sc: {shape: [5, 1], std: 0.3}
data:
  x5: {shape: [5, 5]}
  U5: {shape: [5, 5], std: 0.4}
  U3: {shape: [3, 3]}
  Y5: {shape: [5, 5], init: onehot}
  y2: {shape: [2, 5]}
  Sc2: {shape: [2, 1]}
  yb: {shape: [2, 5], init: binary}
  Yb5: {shape: [5, 5], init: binary}
"""


def assert_shortcut_exact(spec, name, name_of_case="", rtol=1e-12):
    """The perturber's shortcuts against its dense route, entry by entry, real and imaginary steps."""
    perturber = Perturber(spec.model, dict(spec.values), name)
    theta = spec.values[name]
    n = theta.size
    scale = max(1.0, abs(spec.objective()))
    for delta in (1e-3, -2e-5, 1e-20j):
        got, _, got_size = perturber(np.arange(n), np.full(n, delta))
        stack = theta[None] + delta * np.eye(n).reshape((n,) + theta.shape)
        want, _, want_size = perturber.along(stack)
        if np.iscomplexobj(want):  # no subtraction: the imaginary parts agree to the last digits
            np.testing.assert_allclose(got.imag, want.imag, rtol=rtol, atol=rtol * scale * abs(delta))
        else:
            assert np.all(np.abs(got - want) <= np.maximum(rtol * np.abs(want), 2 * numeric.ROUNDING * want_size))
        # size: what the shortcut re-evaluated, never more than the dense route's every entry; a column update
        # (softmax) touches every entry of its columns, as the dense route does
        assert np.all(got_size <= want_size * (1 + rtol) + rtol * scale * abs(delta))
        if "softmax" in name_of_case:
            np.testing.assert_allclose(got_size, want_size, rtol=rtol, atol=rtol * scale * abs(delta))
    got, _, size = perturber(np.arange(n), np.full(n, 1e-3))
    want = plain_loop(spec, name, 1e-3)
    assert np.all(np.abs(got - want) <= np.maximum(rtol * np.abs(want), 2 * numeric.ROUNDING * (size + scale)))


@pytest.mark.parametrize("placement", list(SHORTCUTS))
def test_shortcuts_equal_the_dense_route_to_1e12(placement):
    spec = gradcheck.loads(DECLS.replace("data:\n", SQUARE) + SHORTCUTS[placement])
    for name in spec.param_names:
        if any(term_uses(t, name) for t in spec.model.terms):
            assert_shortcut_exact(spec, name, placement)


@pytest.mark.parametrize("placement", ["conv_all", "conv_stride_pad"])
def test_conv_kernel_patch_equals_the_dense_route_to_1e12(placement):
    """Moving K[f, t] or c[f] touches filter f's output rows only (Conv.patch): exact, real and imaginary steps."""
    spec = gradcheck.loads(STRUCTURED_DECLS + STRUCTURED[placement])
    for name in ("K", "cb"):
        if any(term_uses(t, name) for t in spec.model.terms):
            assert_shortcut_exact(spec, name, placement)


@pytest.mark.parametrize("placement", ["recurrent_last", "recurrent_all", "recurrent_tied", "recurrent_twice",
                                       "recurrent_full_bias", "recurrent_transposed_twice"])
def test_recurrent_moved_entry_equals_the_dense_route_to_1e12(placement):
    """Recurrent.moved: the base weights once over the batch plus the moved entry's own term, exact."""
    text = STRUCTURED.get(placement) or (
        "input: seq\nlayers:\n  - recurrent: {hidden_weight: Wh, input_weight: Wh2, bias: rb, steps: 3, "
        "activation: tanh, output: all}\n  - {weight: Wh, activation: sigmoid}")
    decls = STRUCTURED_DECLS.replace("  Wx: {shape: [3, 2]}\n", "  Wx: {shape: [3, 2]}\n  Wh2: {shape: [3, 2]}\n")
    if placement == "recurrent_tied":
        decls = decls.replace("seq: {shape: [6, 4]}", "seq: {shape: [9, 4]}").replace("Wh2: {shape: [3, 2]}",
                                                                                    "Wh2: {shape: [3, 3]}")
        text = text.replace("Wh2", "Wh").replace("{weight: Wh, activation: sigmoid}", "{weight: U9, activation: sigmoid}")
        decls = decls.replace("data:\n", "data:\n  U9: {shape: [2, 9]}\n")
    if placement == "recurrent_twice":  # the second layer's input already moved: (hidden, B, m) columns
        text = STRUCTURED["recurrent_all"] + ("\n  - recurrent: {hidden_weight: Wh, input_weight: Wh, bias: rb, "
                                              "steps: 3, activation: tanh, output: last}")
    if placement == "recurrent_full_bias":  # a bias entry (i, j) moves one entry of row i
        decls = decls.replace("  h0: {shape: [3, 1], std: 0.5}\n", "  h0: {shape: [3, 1], std: 0.5}\n  rb: {shape: [3, 4]}\n")
        decls = decls.replace("  rb: {shape: [3, 1], std: 0.2}\n", "")
        text = STRUCTURED["recurrent_last"]
    if placement == "recurrent_transposed_twice":  # Wh as the hidden weight and Wh.T as the input weight: two rows
        decls = decls.replace("seq: {shape: [6, 4]}", "seq: {shape: [9, 4]}")
        text = ("input: seq\nlayers:\n  - recurrent: {hidden_weight: Wh, input_weight: Wh.T, bias: rb, steps: 3, "
                "activation: tanh, output: last}\n  - activation: square")
    spec = gradcheck.loads(decls + text)
    for name in ("Wh", "Wx", "rb"):
        if any(term_uses(t, name) for t in spec.model.terms):
            assert_shortcut_exact(spec, name, placement)


@pytest.mark.parametrize("placement", list(PLACEMENTS))
def test_fast_mode_direction_equals_the_dense_stack(placement):
    """Perturber.along_direction (one product at the first use, linear in t) equals `along` on p + t·v."""
    spec = gradcheck.loads(DECLS + PLACEMENTS[placement])
    rng = np.random.default_rng(0)
    for name in spec.param_names:
        if not any(term_uses(t, name) for t in spec.model.terms):
            continue
        perturber = Perturber(spec.model, dict(spec.values), name)
        theta = spec.values[name]
        v, ts = rng.standard_normal(theta.shape), np.array([1e-3, -1e-3, 2e-3, 1e-20j])
        got, _, got_size = perturber.along_direction(v, ts)
        want, _, want_size = perturber.along(theta[None] + ts[:, None, None] * v[None])
        scale = max(1.0, abs(spec.objective()))
        assert np.all(np.abs(got.real[:3] - want.real[:3]) <=
                      np.maximum(1e-12 * np.abs(want.real[:3]), 2 * numeric.ROUNDING * (want_size[:3] + scale)))
        np.testing.assert_allclose(got.imag[3], want.imag[3], rtol=1e-12, atol=1e-32 * scale)
        np.testing.assert_allclose(got_size, want_size, rtol=1e-9, atol=1e-12 * scale)


def _softmax_ce_gradient_long_double(W, b, X, Y):
    """∂/∂W and ∂/∂b of Σ cross-entropy(softmax(W X + b), Y), in long double: the oracle for logits of 30 to 40."""
    W, b, X, Y = (np.asarray(v, dtype=np.longdouble) for v in (W, b, X, Y))
    z = W @ X + b
    e = np.exp(z - z.max(axis=0, keepdims=True))
    dz = e / e.sum(axis=0, keepdims=True) - Y
    return {"W": dz @ X.T, "b": dz.sum(axis=1, keepdims=True)}


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_complex_step_error_covers_a_confident_softmax(mode):
    """Logits 30 to 40: p = e^(z − lse) carries ε·(|z| + |lse|) of round-off, and an imaginary step's p·h − y·h
    (p ≈ 1) keeps it; the estimate must cover it (4ε of the cancelled sum called this correct gradient wrong)."""
    spec = gradcheck.load("tests/verdicts/correct/confident_softmax_ce.yaml")
    result = gradcheck.check(spec, method="complex-step", mode=mode)
    assert result.status == "pass", [(p.name, p.backprop) for p in result.params]
    if mode == "fast":
        return
    exact = _softmax_ce_gradient_long_double(*(spec.values[k] for k in ("W", "b", "X", "Y")))
    for p in result.params:
        off = np.abs(p.entries.numeric - exact[p.name].astype(float))
        assert np.all(off <= p.entries.numeric_error), (p.name, off, p.entries.numeric_error)
        assert np.all(np.abs(p.entries.backprop - exact[p.name].astype(float)) <= 1e-15)


def test_complex_step_still_catches_a_small_slip_in_a_confident_softmax():
    """The wider floor is the round-off's own size: a relative 1e-9 slip in one entry of b (b[2] = 39) still fails."""
    with open("tests/verdicts/correct/confident_softmax_ce.yaml") as fh:
        text = fh.read().replace("  b: sum(dZ, axis=1)", "  b: sum(dZ, axis=1) * (1 + 1e-9 * (b > 35))")
    result = gradcheck.check(gradcheck.loads(text), method="complex-step")
    b = next(p for p in result.params if p.name == "b")
    assert b.backprop.passed and not b.expect.passed and b.expect.worst_index == (2, 0)


SATURATED_ATTENTION = """\
name: attention with saturated scores (weights std 3, data std 10)
seed: 1
params:
  Wq: {shape: [4, 5], std: 3}
  Wk: {shape: [4, 5], std: 3}
  Wv: {shape: [3, 5], std: 1}
data:
  X: {shape: [5, 8], std: 10}
  Y: {shape: [3, 8]}
input: X
layers:
  - attention: {query: Wq, key: Wk, value: Wv, causal: true}
objective: {loss: squared_error, target: Y}
"""


def test_saturated_attention_passes_with_differences():
    """Every query's softmax is saturated: ∂J/∂Wq and ∂J/∂Wk are ~1e-90 against J ~ 1e4, zero to any difference."""
    assert gradcheck.check(gradcheck.loads(SATURATED_ATTENTION)).status == "pass"
    assert gradcheck.check(gradcheck.loads(SATURATED_ATTENTION), method="richardson").status == "pass"


def _attention_gradient_mp(spec, digits: int = 300):
    """∂J/∂Wq and ∂J/∂Wk of ½‖V·softmax_causal(KᵀQ/√d)‖² against Y in mpmath at `digits` digits: the oracle for
    weights of 1 − 1e-95 (shares no code with the engine)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = digits
    Wq, Wk, Wv, X, Y = (mp.matrix(spec.values[k].tolist()) for k in ("Wq", "Wk", "Wv", "X", "Y"))
    Q, K, V, T = Wq * X, Wk * X, Wv * X, X.cols
    S, A = K.T * Q / mp.sqrt(Q.rows), mp.matrix(T, T)
    for t in range(T):
        e = [mp.exp(S[s, t]) for s in range(t + 1)]
        for s in range(t + 1):
            A[s, t] = e[s] / sum(e)
    dA = V.T * (V * A - Y)
    dS = mp.matrix(T, T)
    for t in range(T):
        mean = sum(A[s, t] * dA[s, t] for s in range(T))
        for s in range(T):
            dS[s, t] = A[s, t] * (dA[s, t] - mean)
    grads = {"Wq": K * dS * X.T / mp.sqrt(Q.rows), "Wk": Q * dS.T * X.T / mp.sqrt(Q.rows)}
    return {k: np.array(g.tolist(), dtype=float) for k, g in grads.items()}


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_saturated_attention_passes_with_the_complex_step(mode):
    """The softmax's Im A = A ⊙ (Im s − Σ A·Im s) cancels to ~1e-95·h where one weight is ≈ 1: the round-off of
    that difference is a few ε of |Im s|, which the attention reports (imag_noise) and the step's size counts."""
    assert gradcheck.check(gradcheck.loads(SATURATED_ATTENTION), method="complex-step", mode=mode).status == "pass"


def test_saturated_attention_complex_step_error_covers_its_true_error():
    """Each Wq, Wk entry's complex step is within its own error estimate of a 300-digit oracle (it was off by
    ~1e-90 against an estimate of ~1e-105 before the cancelled imaginary parts counted)."""
    spec = gradcheck.loads(SATURATED_ATTENTION)
    exact = _attention_gradient_mp(spec)
    result = gradcheck.check(spec, method="complex-step")
    for p in result.params:
        if p.name in exact:
            off = np.abs(p.entries.numeric - exact[p.name])
            assert np.all(off <= p.entries.numeric_error), (p.name, off, p.entries.numeric_error)


@pytest.mark.parametrize("name", ["Wq", "Wk"])
def test_complex_step_still_catches_a_small_slip_in_a_non_saturated_attention(name):
    """specs/attention.yaml (weights of 0.1 to 0.9): every entry of Wq and Wk off by a relative 1e-9, one at a time,
    fails against the complex step (its error estimate is still a few ε of each entry there), and so does the
    spec's own expect with that slip."""
    from gradcheck import numeric
    from gradcheck.verdict import judge

    spec = gradcheck.load("specs/attention.yaml")
    result = gradcheck.check(spec, method="complex-step")
    assert result.status == "pass"
    grad, settings = spec.gradient()[name], result.settings
    est = numeric.estimate(Perturber(spec.model, dict(spec.values), name), spec.values[name], method="complex-step")
    assert judge(grad, est, settings.rtol, settings.atol).passed
    for k in range(grad.size):
        bad = grad.copy()
        bad.flat[k] *= 1 + 1e-9
        assert not judge(bad, est, settings.rtol, settings.atol).passed, k
    signal = {"Wq": "dQ", "Wk": "dK"}[name]
    with open("specs/attention.yaml") as fh:
        text = fh.read()
    assert f"  {name}: {signal} @ X.T\n" in text
    text = text.replace(f"  {name}: {signal} @ X.T\n", f"  {name}: ({signal} @ X.T) * (1 + 1e-9)\n")
    slipped = gradcheck.check(gradcheck.loads(text), method="complex-step")
    p = next(p for p in slipped.params if p.name == name)
    assert p.backprop.passed and not p.expect.passed


SATURATED_SOFTMAX = """\
name: a saturated softmax activation under a squared error (weights std 3, data std 10)
seed: 1
params:
  W: {shape: [4, 5], std: 3}
data:
  X: {shape: [5, 8], std: 10}
  Y: {shape: [4, 8]}
input: X
layers:
  - {weight: W, activation: softmax}
objective: {loss: squared_error, target: Y}
"""


def _softmax_squared_error_gradient_mp(spec, digits: int = 300):
    """∂J/∂W of ½‖softmax(W X) − Y‖² (softmax over each column) in mpmath: the oracle for saturated columns."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = digits
    W, X, Y = (mp.matrix(spec.values[k].tolist()) for k in ("W", "X", "Y"))
    Z = W * X
    A, dZ = mp.matrix(Z.rows, Z.cols), mp.matrix(Z.rows, Z.cols)
    for t in range(Z.cols):
        e = [mp.exp(Z[s, t]) for s in range(Z.rows)]
        for s in range(Z.rows):
            A[s, t] = e[s] / sum(e)
        mean = sum(A[s, t] * (A[s, t] - Y[s, t]) for s in range(Z.rows))
        for s in range(Z.rows):
            dZ[s, t] = A[s, t] * (A[s, t] - Y[s, t] - mean)
    return np.array((dZ * X.T).tolist(), dtype=float)


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_a_saturated_softmax_activation_passes_with_the_complex_step(mode):
    """The softmax row's own imag_noise: Im a = a ⊙ (Im z − Σ a·Im z) cancels as in attention (this failed at 5e-11)."""
    spec = gradcheck.loads(SATURATED_SOFTMAX)
    assert gradcheck.check(spec, mode=mode).status == "pass"
    result = gradcheck.check(spec, method="complex-step", mode=mode)
    assert result.status == "pass", [(p.name, p.backprop) for p in result.params]
    if mode == "fast":
        return
    E = result.params[0].entries
    off = np.abs(E.numeric - _softmax_squared_error_gradient_mp(spec))
    assert np.all(off <= E.numeric_error), (off, E.numeric_error)


AFTER_ATTENTION = {
    "a dense layer": "  - {weight: W2, activation: tanh}\n",
    "a residual add": "  - {name: d, weight: W2, input: att}\n  - {add: [d, att]}\n",
}


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize("after", sorted(AFTER_ATTENTION))
def test_the_attentions_noise_is_carried_through_later_layers(after, mode):
    """The cancelled imaginary parts move on as an imaginary step of their own, through later layers and merges
    (a graph term), to the loss: Wq and Wk of a saturated attention pass there too."""
    text = SATURATED_ATTENTION.replace("  Wv: {shape: [3, 5], std: 1}\n",
                                       "  Wv: {shape: [3, 5], std: 1}\n  W2: {shape: [3, 3], std: 0.1}\n")
    text = text.replace("  - attention:", "  - name: att\n    attention:")
    text = text.replace("objective:", AFTER_ATTENTION[after] + "objective:")
    spec = gradcheck.loads(text)
    assert gradcheck.check(spec, mode=mode).status == "pass"
    result = gradcheck.check(spec, method="complex-step", mode=mode)
    assert result.status == "pass", [(p.name, p.backprop) for p in result.params]
