"""Numeric hazards: NaN/Inf name the layer and numpy's operation; stencils across or near a domain
edge are errors naming param, entry and layer, not wrong gradients (stencils across a kink are the
engine's `kink` entries); literal NaN/Inf is refused."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import gradcheck
from gradcheck.numeric import DEFAULT_EPS


def result_of(text: str):
    spec = gradcheck.loads(textwrap.dedent(text), "h.yaml")
    return gradcheck.check(spec)


def error_of(text: str) -> gradcheck.SpecError:
    result = result_of(text)
    assert result.status == "error", (result.status, result.params)
    return result.error


# ----------------------------------------------------------------------------- which layer, which operation


@pytest.mark.parametrize("layers, values, where, operation", [
    ("[{activation: {scale: 400}}, {activation: exp}]", "[[1.0, 2.0]]", "layer 2 (I, exp)", "overflow encountered in exp"),
    ("[{activation: log}]", "[[-1.0, 2.0]]", "layer 1 (I, log)", "invalid value encountered in log; log needs z > 0"),
    ("[{activation: sqrt}, {activation: {scale: -1}}, {activation: sqrt}]", "[[1.0, 4.0]]", "layer 3 (I, sqrt)",
     "invalid value encountered in sqrt"),
    ("[{activation: {f: '1 / z', df: '-1 / z ** 2'}}]", "[[0.0, 1.0]]", "layer 1 (I, custom)",
     "divide by zero encountered in divide"),
    ("[{activation: {power: 64}}, {activation: {power: 64}}]", "[[3.0, 2.0]]", "layer 2 (I, {power: 64})",
     "overflow encountered in power"),
    ("[{weight: W}, {weight: W}, {weight: W}]", "[[1e150, 1e150], [1e150, 1e150]]", "layer 2 (W, identity)",
     "overflow encountered in matmul"),
])
def test_the_first_non_finite_value_names_its_layer_and_operation(layers, values, where, operation):
    e = error_of(f"params:\n  W: {values}\ninput: W\nlayers: {layers}\n")
    assert e.message.startswith(f"non-finite value (NaN or Inf) first appeared in {where}: ")
    assert f"({operation}" in e.message
    assert e.line == 4  # the layer's own place


def test_a_non_finite_objective_names_the_objective_and_log():
    e = error_of("""\
        params:
          W: [[1.0, 0.0], [0.0, 1.0]]
        data:
          Y: [[1.0, 0.0], [0.0, 1.0]]
        input: W
        layers: [{activation: {scale: 2000}}, {activation: softmax}, {weight: W.T}]
        objective: {loss: cross_entropy, target: Y}
        """)
    assert "the objective cross_entropy(Y), sum" in e.message
    assert "divide by zero encountered in log" in e.message
    assert (e.line, e.col) == (7, 12)


def test_a_gradient_that_blows_up_in_the_backward_pass_names_that_layer():
    e = error_of("params:\n  x: [[0.0, 4.0]]\ninput: x\nlayers:\n  - activation: sqrt\n")
    assert e.message == ("non-finite value (NaN or Inf) first appeared in the backward pass, in layer 1 (I, sqrt): the "
                         "backprop gradient of x (divide by zero encountered in divide, in the derivative of its "
                         "activation; sqrt needs z >= 0)")
    assert (e.line, e.col) == (5, 5)


def test_benign_overflow_inside_a_finite_result_is_not_an_error():
    """exp(1000) overflows inside 1/(1 + exp(-z)) at z = -1000, but the activation is 0: a fine value."""
    result = result_of("""\
        params:
          W: [[-1000.0, 0.5]]
        input: W
        layers:
          - activation: {f: '1 / (1 + exp(-z))', df: 'exp(-z) / (1 + exp(-z)) ** 2'}
        """)
    assert result.status == "error"  # exp(1000) ** 2 is inf in df, and inf / inf is NaN: a real hazard in df
    assert "backward pass" in result.message
    fine = result_of("""\
        params:
          W: [[-1000.0, 0.5]]
        input: W
        layers:
          - activation: {f: '1 / (1 + exp(-z))', df: 'sigmoid(z) * (1 - sigmoid(z))'}
        """)
    assert fine.status == "pass", fine.message


@pytest.mark.parametrize("literal, shown", [(".inf", "inf"), ("-.inf", "-inf"), (".nan", "nan"), ("1e999", "inf"),
                                            ("'-Infinity'", "-inf")])
def test_non_finite_literal_data_is_refused_at_load(literal, shown):
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(f"params:\n  W: [[1.0]]\ndata:\n  x: [[1.0, {literal}]]\ninput: W\n", "h.yaml")
    assert info.value.message == f"an entry of x must be finite, not {shown}"
    assert (info.value.line, info.value.col) == (4, 13)


def test_draws_that_overflow_are_refused_at_load():
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads("params:\n  W: {shape: [3, 3], std: 1e308}\ninput: W\n", "h.yaml")
    assert "gives values that are not finite" in info.value.message and info.value.line == 2


# ----------------------------------------------------------------------------- stencils


def near(theta: float, offset: float, activation: str, extra: str = "") -> str:
    """x[0, 0] = theta feeds `activation` at z = theta - c, with c chosen so that z = offset there."""
    c = theta - offset
    return textwrap.dedent(f"""\
        params:
          x: [[{theta!r}, 2.0], [0.5, 3.0]]
        data:
          c: [[{c!r}, 0.0], [0.0, 0.0]]
        input: x
        layers:
          - activation: {{sub: c}}
          - activation: {activation}
        {extra}""")


H = DEFAULT_EPS  # the step at |θ| <= 1


@pytest.mark.parametrize("activation, offset", [("relu", 0.2 * H), ("abs", -0.5 * H)])
def test_a_stencil_across_a_kink_is_a_kink_not_a_failure(activation, offset):
    """relu and abs are piecewise linear: the engine compares the one-sided slopes (see check.judge)."""
    result = result_of(near(0.75, offset, activation))
    assert result.status == "pass", result.message
    assert [p.kinks for p in result.params] == [1]


PINNED = f"check: {{eps: {H!r}}}"  # the user's own step: the checker does not search for a better one


@pytest.mark.parametrize("activation, offset, extra, what", [
    ("log", 0.5 * H, PINNED, "crosses the edge of the domain of log (z > 0) at z = 0, at z[0, 0] of layer 2 (I, log)"),
    ("sqrt", 0.05 * H, PINNED, "crosses the edge of the domain of sqrt (z >= 0) at z = 0, at z[0, 0] of layer 2 "
                               "(I, sqrt)"),
    ("sqrt", 0.5 * H, PINNED, "crosses the edge of the domain of sqrt (z >= 0) at z = 0"),
    ("sqrt", 1.5 * H, PINNED, "comes within 9.1e-06 of the edge of the domain of sqrt (z >= 0) at z = 0, at z[0, 0] of "
                              "layer 2 (I, sqrt) (the step moves it by 6.1e-06)"),
    ("log", 1.5 * H, PINNED, "comes within 9.1e-06 of the edge of the domain of log (z > 0) at z = 0"),
    ("{power: 0.5}", 1.5 * H, PINNED, "comes within 9.1e-06 of z = 0, where {power: 0.5} is not smooth"),
])
def test_a_stencil_across_or_near_a_domain_edge_is_named_not_failed(activation, offset, extra, what):
    """Where no step within reach stays inside the domain (or the user pinned the step), there is no verdict."""
    e = error_of(near(0.75, offset, activation, extra))
    assert e.message.startswith(f"the finite-difference stencil x[0, 0] = 0.75 ± {H:.2g} {what}"), e.message
    assert e.message.endswith("the numeric gradient there is no verdict on the analytic one; move the value "
                              "(another seed or value) or use a smaller eps")
    assert (e.line, e.col) == (2, 3)  # the param's declaration: the value to move


@pytest.mark.parametrize("activation", ["relu", "abs", "log", "sqrt", "{power: 0.5}"])
def test_the_same_spec_away_from_the_boundary_passes(activation):
    result = result_of(near(0.75, 0.3, activation))
    assert result.status == "pass", result.message


@pytest.mark.parametrize("activation, offset", [("sqrt", 0.5 * H), ("sqrt", 1.5 * H), ("log", 1.5 * H),
                                                ("{power: 0.5}", 1.5 * H), ("log", 0.5 * H), ("sqrt", 0.05 * H)])
def test_the_step_search_finds_a_verdict_next_to_a_domain_edge(activation, offset):
    """The default step crosses (or nearly crosses) the edge; smaller steps on a ladder stay inside and decide."""
    result = result_of(near(0.75, offset, activation))
    assert result.status == "pass", result.message
    x = result.params[0].backprop
    z = offset
    slope = {"sqrt": 0.5 / np.sqrt(z), "log": 1.0 / z, "{power: 0.5}": 0.5 / np.sqrt(z)}[activation]
    assert x.worst_index != (0, 0) or x.analytic == pytest.approx(slope, rel=1e-6)
    wrong = near(0.75, offset, "{f: 'sqrt(z)', df: '0.25 / sqrt(z)'}") if activation == "sqrt" else None
    if wrong:  # a wrong derivative next to the edge is still caught
        assert result_of(wrong).status == "fail"


def test_a_pinned_eps_near_an_edge_is_named_and_the_default_search_decides():
    text = near(0.75, 1.5 * H, "sqrt", PINNED)
    assert result_of(text).status == "error"
    assert result_of(near(0.75, 1.5 * H, "sqrt")).status == "pass"


LOG_LOSS = """\
    params:
      a: [[0.000001, 0.5]]
    data:
      y: [[1.0, 0.0]]
    input: a
    objective: {loss: binary_cross_entropy, target: y}
    """


def test_a_log_in_the_loss_next_to_its_edge_gets_a_verdict():
    result = result_of(textwrap.dedent(LOG_LOSS))
    assert result.status == "pass", result.message
    a = result.params[0].backprop
    assert a.worst_index != (0, 0) or a.analytic == pytest.approx(-1 / 1e-6 + 0.0, rel=1e-4)


def test_a_stencil_across_a_log_in_the_loss():
    e = error_of(textwrap.dedent(LOG_LOSS) + PINNED + "\n")
    assert "a[0, 0] = 1e-06" in e.message
    assert "a = 0, where log(a) in binary_cross_entropy is undefined, at a[0, 0] of the objective" in e.message


def test_a_wrong_derivative_away_from_any_boundary_is_still_a_failure():
    result = result_of(near(0.75, 0.3, "{f: 'z ** 3', df: '2 * z ** 2'}"))
    assert result.status == "fail"
    assert [p.status for p in result.params] == ["fail"]


def test_a_step_that_rounds_to_nothing_is_named():
    e = error_of("params:\n  W: [[1.0, 2.0]]\ninput: W\nlayers: [{activation: square}]\ncheck: {eps: 1e-300}\n")
    assert e.message.startswith("the finite-difference step for W[0, 0] rounds to nothing (θ = 1, step 1e-300)")


def test_diagnosis_is_read_only():
    """Diagnosing hazards runs extra passes; the spec's values must come out untouched."""
    spec = gradcheck.loads(near(0.75, 0.5 * H, "log", PINNED), "h.yaml")
    before = {k: v.copy() for k, v in spec.values.items()}
    assert gradcheck.check(spec).status == "error"
    for name, value in before.items():
        np.testing.assert_array_equal(spec.values[name], value)
