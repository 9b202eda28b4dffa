"""Fast mode's joint directions (gradcheck.fast, gradcheck.perturb_joint): ΔJ along a joint direction equals plain
numpy's J at the moved point, fewer evaluations of J than per-param directions, and every verdict localized as before."""

import json

import numpy as np
import pytest

import gradcheck
from conftest import BUNDLED, FIXTURES, first_line_tag, invoke
from gradcheck import budget, fast, network, numeric
from gradcheck.options import FAST_DIRECTIONS, Mode
from gradcheck.perturb import Perturber
from gradcheck.perturb_joint import along_joint
from test_numeric import DECLS, PLACEMENTS, STRUCTURED, STRUCTURED_DECLS

WRONG = sorted((FIXTURES / "wrong").glob("*.yaml"))
LADDER = np.array([1e-3, -1e-3, 2e-3, -2e-3, 4e-3, -4e-3])

# ----------------------------------------------------------------------------- verdicts as before


@pytest.mark.parametrize("method", ["central", "richardson", "complex-step"])
@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_fast_mode_passes_every_bundled_spec(path, method):
    result = gradcheck.check(gradcheck.load(path), mode="fast", method=method)
    if result.status == "error":  # the complex step refuses what is not analytic, in every mode
        assert method == "complex-step" and "needs every operation to be analytic" in result.message
        return
    assert result.status == "pass", [(p.name, p.backprop, p.expect, p.note) for p in result.params]


@pytest.mark.parametrize("name", ["two_layer_network", "lstm", "gru", "tiny_cnn", "attention", "residual_block",
                                  "batch_norm", "layer_norm", "embedding", "softmax_regression",
                                  "symmetric_logdet_trace"])
def test_the_joint_directions_vouch_for_every_param_of_these_specs(name):
    """No param of these falls back to its own directions: the joint value resolves each one."""
    result = gradcheck.check(gradcheck.load(f"specs/{name}.yaml"), mode="fast")
    assert all(p.note.endswith(fast.note(len(result.params))) for p in result.params), [p.note for p in result.params]


@pytest.mark.parametrize("path", WRONG, ids=lambda p: p.name)
def test_fast_mode_fails_each_wrong_fixture_on_exactly_its_param(path):
    result = gradcheck.check(gradcheck.load(path), mode="fast")
    failing = {p.name for p in result.params if p.status == "fail"} | {r.label for r in result.second if r.status == "fail"}
    assert result.status == "fail" and failing == {first_line_tag(path, "expect-fail")}


def test_a_wrong_expect_alone_gets_its_own_full_check():
    """Backprop agrees with the joint derivative, b2's expect does not: b2 alone is checked per param, then in full."""
    result = gradcheck.check(gradcheck.load(FIXTURES / "wrong" / "two_layer_db2_typo_square.yaml"), mode="fast")
    notes = {p.name: p.note for p in result.params}
    assert "full check of b2 shown" in notes.pop("b2")
    assert all("joint random directions across all 4 params" in n for n in notes.values())


def test_a_wrong_backprop_sends_every_param_to_its_own_directions():
    """A wrong custom df makes backprop disagree with the joint derivative: it says nothing about which param."""
    result = gradcheck.check(gradcheck.load(FIXTURES / "wrong" / "logistic_neuron_wrong_df.yaml"), mode="fast")
    assert not any("joint" in p.note for p in result.params)
    assert [p.name for p in result.params if p.status == "fail"] == ["w_k_jm2"]


def test_a_kink_within_the_joint_steps_leaves_the_verdict_to_each_param():
    result = gradcheck.check(gradcheck.load("tests/verdicts/correct/bias_all_at_relu_kink.yaml"), mode="fast")
    assert result.status == "pass" and not any("joint" in p.note for p in result.params)


def test_a_small_param_under_a_large_j_is_not_hidden_in_the_joint_noise():
    """J ≈ 1e8 from a data term; s only in a small penalty: the joint error cannot resolve s's 1e-5 slip, so s gets
    its own directions, which catch it."""
    text = (FIXTURES.parent / "verdicts" / "correct" / "penalty_big_data_term.yaml").read_text()
    result = gradcheck.check(gradcheck.loads(text.replace("s: 2 * gamma * s", "s: 1.00001 * 2 * gamma * s")),
                             mode="fast")
    assert [p.name for p in result.params if p.status == "fail"] == ["s"]


def test_json_keeps_a_result_per_param_with_its_own_share(tmp_path):
    spec = json.loads(invoke("run", "--format", "json", "--mode", "fast", "specs/two_layer_network.yaml").output)
    params = spec["specs"][0]["params"]
    assert [p["name"] for p in params] == ["W1", "b1", "W2", "b2"]
    for p in params:
        assert p["status"] == "pass" and p["checked"] == FAST_DIRECTIONS and "joint" in p["note"]
        assert p["backprop"]["analytic"] != 0 and abs(p["backprop"]["analytic"] - p["backprop"]["numeric"]) <= \
            1e-6 * abs(p["backprop"]["analytic"])
    assert len({p["backprop"]["analytic"] for p in params}) == 4  # each param's own ⟨G, v⟩, not the joint sum


# ----------------------------------------------------------------------------- fewer evaluations of J


def _count_evaluations(monkeypatch) -> list:
    """Every perturbed evaluation of J, joint or per param, appended as the size of its batch."""
    counts = []

    def joint(model, values, traces, directions, ts):
        counts.append(len(ts))
        return along_joint(model, values, traces, directions, ts)

    monkeypatch.setattr(fast, "along_joint", joint)
    for method, size in (("along_direction", lambda args: len(args[1])), ("along", lambda args: len(args[0])),
                         ("__call__", lambda args: len(args[0]))):
        real = getattr(Perturber, method)

        def counted(self, *args, real=real, size=size):
            counts.append(size(args))
            return real(self, *args)

        monkeypatch.setattr(Perturber, method, counted)
    return counts


@pytest.mark.parametrize("path", ["specs/two_layer_network.yaml", "specs/lstm.yaml", "specs/tiny_cnn.yaml"])
def test_several_params_make_fewer_evaluations_of_j(path, monkeypatch):
    spec = gradcheck.load(path)
    counts = _count_evaluations(monkeypatch)
    assert gradcheck.check(spec, mode="fast").status == "pass"
    joint = sum(counts)
    counts.clear()
    monkeypatch.setattr(fast, "joint", lambda *args: {})  # the joint directions vouch for nothing: per param, as before
    assert gradcheck.check(spec, mode="fast").status == "pass"
    per_param = sum(counts)
    params = len(spec.param_names)
    assert params >= 3
    assert joint == FAST_DIRECTIONS * numeric.directional_evaluations("central") == 12
    assert per_param == params * joint  # what fast mode made before: each param's own directions


def test_max_steps_counts_the_joint_directions_and_at_most_every_params_own():
    model = gradcheck.load("specs/two_layer_network.yaml").model
    assert budget.steps(model, Mode("fast")) == 12 * (1 + 4)
    assert budget.steps(model, Mode("fast"), "complex-step") == 2 * (1 + 4)


# ----------------------------------------------------------------------------- exact: against plain numpy


MLP = """\
seed: 1
params:
  W1: {shape: [4, 3], std: 0.5}
  b1: {shape: [4, 1], std: 0.5}
  W2: {shape: [1, 4], std: 0.5}
  b2: {shape: [1, 1], std: 0.5}
data:
  X: {shape: [3, 5]}
  Y: {shape: [1, 5], init: binary}
input: X
layers:
  - {weight: W1, bias: b1, activation: tanh}
  - {weight: W2, bias: b2, activation: sigmoid}
objective: {loss: binary_cross_entropy, target: Y, reduce: mean}
"""

TIED = """\
seed: 2
params:
  W: {shape: [3, 4], std: 0.5}
  b: {shape: [3, 1], std: 0.5}
  s: 0.7
data:
  x: {shape: [4, 5]}
terms:
  - input: x
    coef: s
    layers: [{weight: W, bias: b, activation: tanh}, {weight: W.T}, {activation: {sub: x}}, {activation: square}]
    objective: sum
  - input: s
    layers: [{activation: exp}]
    objective: sum
"""

ARGUMENT_TARGET = """\
seed: 3
params:
  W: {shape: [3, 4], std: 0.5}
  c: {shape: [3, 1]}
  T: {shape: [3, 5], init: uniform, low: 0.2, high: 0.8}
data:
  x: {shape: [4, 5]}
input: x
layers: [{weight: W, activation: {scale: c}}, {activation: sigmoid}]
objective: {loss: squared_error, target: T, reduce: mean}
"""


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _mlp(p, d):
    a2 = _sigmoid(p["W2"] @ np.tanh(p["W1"] @ d["X"] + p["b1"]) + p["b2"])
    y = d["Y"]
    return np.sum(-y * np.log(a2) - (1 - y) * np.log(1 - a2)) / y.shape[1]


def _tied(p, d):
    r = p["W"].T @ np.tanh(p["W"] @ d["x"] + p["b"]) - d["x"]
    return p["s"][0, 0] * np.sum(r * r) + np.exp(p["s"][0, 0])


def _argument_target(p, d):
    a = _sigmoid(p["c"] * (p["W"] @ d["x"]))
    return 0.5 * np.sum((a - p["T"]) ** 2) / a.shape[1]


ORACLES = {"mlp": (MLP, _mlp), "tied": (TIED, _tied), "argument_target": (ARGUMENT_TARGET, _argument_target)}


def _joint_case(text, seed=0):
    spec = gradcheck.loads(text)
    values = dict(spec.values)
    rng = np.random.default_rng(seed)
    directions = {name: rng.uniform(-1, 1, values[name].shape) for name in spec.param_names}
    return spec, values, network.forward(spec.model, values), directions


@pytest.mark.parametrize("case", list(ORACLES))
def test_joint_change_equals_plain_numpy_to_rounding(case):
    """ΔJ at θ + t·u (every param moved) against a numpy J written out by hand, real and imaginary t."""
    text, oracle = ORACLES[case]
    spec, values, traces, u = _joint_case(text)
    params = {n: values[n] for n in spec.param_names}
    data = {n: values[n] for n in values if n not in params}
    base = oracle(params, data)
    assert base == pytest.approx(spec.objective(), rel=1e-13)  # the oracle is the spec's J
    got, crossed, size = along_joint(spec.model, values, traces, u, LADDER)
    want = np.array([oracle({n: params[n] + t * u[n] for n in params}, data) - base for t in LADDER])
    assert not crossed.any()
    assert np.all(np.abs(got - want) <= np.maximum(1e-12 * np.abs(want), 2 * numeric.ROUNDING * (size + abs(base))))
    h = 1e-20
    got, _, _ = along_joint(spec.model, values, traces, u, np.array([1j * h]))
    want = oracle({n: params[n] + 1j * h * u[n] for n in params}, data)
    np.testing.assert_allclose(got.imag, want.imag, rtol=1e-12)


@pytest.mark.parametrize("case", list(ORACLES))
def test_joint_derivative_equals_numpys_own_finite_difference(case):
    """d/dt J(θ + t·u) from the engine's ladder against a five-point stencil on the numpy J (error ~h⁴)."""
    text, oracle = ORACLES[case]
    spec, values, traces, u = _joint_case(text, seed=1)
    params = {n: values[n] for n in spec.param_names}
    data = {n: values[n] for n in values if n not in params}

    def j(t):
        return oracle({n: params[n] + t * u[n] for n in params}, data)

    h = 1e-3
    want = (8 * (j(h) - j(-h)) - (j(2 * h) - j(-2 * h))) / (12 * h)
    got, error = numeric.directional(lambda ts: along_joint(spec.model, values, traces, u, ts)[::2], 0.0)
    assert abs(got - want) <= max(1e-8 * abs(want), error + 1e-10)


@pytest.mark.parametrize("placement", list(PLACEMENTS) + [f"structured:{k}" for k in STRUCTURED])
def test_joint_change_equals_the_dense_stack_at_every_placement(placement, text=None):
    """Against network.objective with every param replaced by its stack θ + t·u (no base-pass reuse, no linear step)."""
    text = text if text is not None else STRUCTURED_DECLS + STRUCTURED[placement.split(":")[1]] if placement.startswith("structured:") else \
        DECLS + PLACEMENTS[placement]
    spec, values, traces, u = _joint_case(text, seed=2)
    base = float(network.objective(spec.model, values))
    for ts in (LADDER, np.array([1e-20j])):
        got, _, size = along_joint(spec.model, values, traces, u, ts)
        stacks = {n: values[n][None] + ts[:, None, None] * u[n][None] for n in spec.param_names}
        want = network.objective(spec.model, {**values, **stacks}) - base
        if np.iscomplexobj(ts):
            np.testing.assert_allclose(got.imag, want.imag, rtol=1e-12, atol=1e-32)
        else:
            assert np.all(np.abs(got - want) <= np.maximum(1e-12 * np.abs(want), 2 * numeric.ROUNDING * (size + abs(base))))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_joint_change_equals_the_dense_stack_on_every_bundled_spec(path):
    """Every layer kind and merge of the bundled specs, every param moved at once."""
    test_joint_change_equals_the_dense_stack_at_every_placement(None, path.read_text(encoding="utf-8"))
