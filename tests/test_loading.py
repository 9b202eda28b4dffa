"""Loading: inline YAML in, values or a SpecError at (line, col) out."""

import textwrap

import numpy as np
import pytest

import gradcheck

BASE = """\
params:
  W: {shape: [2, 3]}
data:
  x: {shape: [3, 4]}
input: x
layers:
  - weight: W
    activation: tanh
"""


def error_of(text: str) -> gradcheck.SpecError:
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(textwrap.dedent(text), "t.yaml")
    return info.value


def at(text: str) -> tuple[int, int, str]:
    e = error_of(text)
    assert e.file == "t.yaml"
    return e.line, e.col, e.message


def test_values_numbers_lists_and_inits():
    spec = gradcheck.loads(textwrap.dedent("""\
        params:
          s: 2.5
          v: [1, 2, 3]
          M: [[1, 2], [3, 4]]
          E: {shape: [2, 3], init: eye}
        data:
          small: 1e-6
          U: {shape: [50, 40], init: uniform, low: -2, high: -1}
          B: {shape: [3, 30], init: binary}
          Y: {shape: [4, 30], init: onehot}
          N: {shape: [200, 100], init: normal, mean: 3, std: 0.5}
        input: M
        """))
    v = spec.values
    assert v["s"].shape == (1, 1) and v["s"][0, 0] == 2.5
    assert v["v"].shape == (3, 1) and v["v"][2, 0] == 3
    np.testing.assert_array_equal(v["M"], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(v["E"], np.eye(2, 3))
    assert v["small"][0, 0] == 1e-6  # PyYAML reads 1e-6 as a string; gradcheck reads a number
    assert v["U"].min() >= -2 and v["U"].max() <= -1
    assert set(np.unique(v["B"])) <= {0.0, 1.0}
    np.testing.assert_array_equal(v["Y"].sum(axis=0), np.ones(30))
    assert abs(v["N"].mean() - 3) < 0.05 and abs(v["N"].std() - 0.5) < 0.05
    assert spec.param_names == ("s", "v", "M", "E")


def test_seed_reproducible_and_per_name_streams():
    one = gradcheck.loads(BASE)
    two = gradcheck.loads(BASE)
    np.testing.assert_array_equal(one.values["W"], two.values["W"])
    other = gradcheck.loads("seed: 7\n" + BASE)
    assert not np.allclose(one.values["W"], other.values["W"])
    more = gradcheck.loads(BASE.replace("data:\n", "data:\n  extra: {shape: [5, 5]}\n"))
    np.testing.assert_array_equal(one.values["W"], more.values["W"])  # adding a name keeps the others


def test_objective_and_gradient_at_other_values():
    spec = gradcheck.loads(BASE)
    W = np.ones((2, 3))
    x = spec.values["x"]
    assert spec.objective({"W": W}) == pytest.approx(np.tanh(W @ x).sum())
    np.testing.assert_allclose(spec.gradient({"W": W})["W"], (1 - np.tanh(W @ x) ** 2) @ x.T)


@pytest.mark.parametrize("text, line, col, fragment", [
    ("params: {W: {shape: [2, 2]}}\ninput: W\nobjectiv: sum\n", 3, 1, 'did you mean "objective"'),
    ("params: {W: {shape: [2, 2]}}\ninput: W\nlayers: [{activation: tanhh}]\n", 3, 23, 'did you mean "tanh"'),
    ("params: {W: {shape: [2, 2]}}\ninput: W\nlayers: [{activation: {pow: 2}}]\n", 3, 24, 'did you mean "power"'),
    ("params: {W: {shape: [2, 2]}}\ninput: Q\n", 2, 8, 'undefined name "Q"'),
    ("params: {W: {shape: [2, -2]}}\ninput: W\n", 1, 25, "at least 1"),
    ("params: {W: {shape: [2.5, 2]}}\ninput: W\n", 1, 22, "whole number"),
    ("params: {W: [[1, 2], [3]]}\ninput: W\n", 1, 22, "row of W has 1 entries"),
    ("params: {W: [[1, .nan]]}\ninput: W\n", 1, 18, "must be finite"),
    ("params: {W: {shape: [2, 2]}}\ninput: W\nexpect: {W: 'W @ W.T @ W @ Q'}\n", 3, 28, 'undefined name "Q"'),
    ("params: {W: {shape: [2, 3]}}\ninput: W\nexpect: {W: 'W @ W'}\n", 3, 14, "shape mismatch in @: (2, 3) @ (2, 3)"),
    ("params: {W: {shape: [2, 2]}}\ninput: W\nexpect: {W: 'W ** W'}\n", 3, 19, "exponent of ** must be a number"),
    ("params: {W: {shape: [2, 2]}}\ninput: W\nexpect: {W: 'sum(W, axis=3)'}\n", 3, 26, "axis must be 0"),
    ("params: {W: {shape: [2, 2]}}\ninput: W\nlayers: [{activation: power}]\n", 3, 23, "needs an argument"),
    ("params: {W: {shape: [2, 2]}}\ninput: W\nobjective: {loss: squared_error}\n", 3, 12, "needs a target"),
    ("params: {W: {shape: [2, 2]}}\ninput: W\nterms: []\n", 2, 1, 'cannot stand beside "terms"'),
    ("params: {W: {shape: [2, 2]}}\nterms: [{input: W, coef: W}]\n", 2, 26, "coef must be a number or a 1×1 name"),
    ("params: {W: {shape: [2, 2]}}\ndata: {W: 1}\ninput: W\n", 2, 8, "declared twice"),
    ("params: {I: {shape: [2, 2]}}\ninput: I\n", 1, 10, "reserved"),
    ("params: {W: {shape: [2, 2]}}\ninput: W\ncheck: {rtol: 0}\n", 3, 15, "check.rtol must be from 1e-15 to 0.1, not 0"),
    ("params: {W: {shape: [2, 2]}}\ninput: W\ncheck: {rtoll: 1}\n", 3, 9, 'did you mean "rtol"'),
])
def test_located_errors(text, line, col, fragment):
    got_line, got_col, message = at(text)
    assert fragment in message
    assert (got_line, got_col) == (line, col), message


def test_expression_errors_point_inside_quoted_strings():
    line, col, message = at('params: {W: {shape: [2, 2]}}\ninput: W\nexpect:\n  W: "2 * W + V"\n')
    assert (line, col, message.startswith('undefined name "V"')) == (4, 15, True)


@pytest.mark.parametrize("expression", [
    "W.__class__", "__import__('os')", "(lambda: 1)()", "[w for w in W]", "W[0]", "getattr(W, 'T')",
    "'{0.__class__}'.format(W)", "(x := W)", "print(*W)", "exp.__globals__", "W if W else W", "W < 1 < 2",
    "b'bytes'", "{1: 2}", "...", "9" * 5000, "-" * 3000 + "W", "(" * 100 + "W" + ")" * 100,
])
def test_forbidden_expressions_are_refused(expression):
    e = error_of("params: {W: {shape: [2, 2]}}\ninput: W\nexpect:\n  W: " + repr(expression) + "\n")
    assert e.line == 4 and e.col >= 6


def test_yaml_aliases_tags_and_duplicates_refused():
    assert "anchors" in at("params: &p {W: {shape: [2, 2]}}\ninput: W\n")[2]
    assert "not allowed" in at("params: {W: !!python/name:os.system {shape: [2, 2]}}\ninput: W\n")[2]
    assert at("params: {W: 1, W: 2}\ninput: W\n")[:2] == (1, 16)
