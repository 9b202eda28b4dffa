"""Second order: hessian: and hvp: formulas against a dense Hessian built here from a plain-numpy gradient.

The oracles share no code with the engine: each gradient is written out in numpy, and the dense Hessian
is its central difference, column by column, in this file. The spec's values are only read.
"""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import gradcheck
from conftest import FIXTURES, SPECS, invoke
from gradcheck.budget import second_steps

LOGISTIC = SPECS / "logistic_regression_newton.yaml"
SOFTMAX = SPECS / "softmax_regression_hvp.yaml"
QUADRATIC = SPECS / "quadratic_form_hessian.yaml"
MISSING_M = FIXTURES / "wrong" / "logistic_regression_hessian_missing_1_over_m.yaml"
DROPS_WEIGHT = FIXTURES / "wrong" / "logistic_regression_hvp_drops_weight.yaml"
KINK = FIXTURES / "kinks" / "relu_squared_hessian_at_zero.yaml"


def dense_hessian(gradient, theta: np.ndarray) -> np.ndarray:
    """∂g/∂θ by central differences of a plain-numpy gradient, over vec(θ) (row-major), step 1e-5."""
    flat = theta.reshape(-1).astype(float)
    columns = []
    for j in range(flat.size):
        h = 1e-5 * max(1.0, abs(flat[j]))
        up, down = flat.copy(), flat.copy()
        up[j] += h
        down[j] -= h
        columns.append((gradient(up.reshape(theta.shape)) - gradient(down.reshape(theta.shape))).reshape(-1) / (2 * h))
    return np.stack(columns, axis=1)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=0))
    return e / e.sum(axis=0)


def close(a, b, rtol=1e-6):
    scale = max(np.max(np.abs(b)), 1e-300)
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) <= rtol * scale


def run(path, **options):
    return gradcheck.check(gradcheck.load(path), **options)


def row(result, label):
    return next(r for r in result.second if r.label == label)


# ----------------------------------------------------------------------------- the bundled specs, by oracle


def test_logistic_regression_hessian_matches_a_dense_numpy_hessian():
    v = gradcheck.load(LOGISTIC).values
    X, y = v["X"], v["y"]
    m = X.shape[1]
    grad = lambda w: X @ (sigmoid(w.T @ X) - y).T / m  # noqa: E731 - the closed-form gradient, in numpy
    H = dense_hessian(grad, v["w"])
    p = sigmoid(v["w"].T @ X)
    assert close(X @ np.diag((p * (1 - p)).ravel()) @ X.T / m, H)  # the Newton Hessian is the oracle's
    r = row(run(LOGISTIC), "w hessian")
    assert r.status == "pass" and r.probes == 3 and r.shape == (3, 3)
    assert close(r.arrays["numeric"], H) and close(r.arrays["formula"], H)


def test_softmax_regression_hvp_matches_a_dense_numpy_hessian_times_the_direction():
    v = gradcheck.load(SOFTMAX).values
    X, Y, W, b = v["X"], v["Y"], v["W"], v["b"]
    m = X.shape[1]
    grad_W = lambda W_: (softmax(W_ @ X + b) - Y) @ X.T / m  # noqa: E731
    grad_b = lambda b_: np.sum(softmax(W @ X + b_) - Y, axis=1, keepdims=True) / m  # noqa: E731
    result = run(SOFTMAX)
    assert result.status == "pass"
    for name, grad, theta in (("W", grad_W, W), ("b", grad_b, b)):
        r = row(result, f"{name} hvp")
        V = r.arrays["direction"]
        assert V.shape == theta.shape and r.probes == 2
        HV = (dense_hessian(grad, theta) @ V.reshape(-1)).reshape(theta.shape)
        assert close(r.arrays["numeric"], HV) and close(r.arrays["formula"], HV)


def test_quadratic_form_hessian_is_the_symmetric_part():
    v = gradcheck.load(QUADRATIC).values
    A, b = v["A"], v["b"]
    H = dense_hessian(lambda x: 0.5 * (A + A.T) @ x + b, v["x"])
    assert close(H, 0.5 * (A + A.T)) and not close(H, A)
    r = row(run(QUADRATIC), "x hessian")
    assert r.status == "pass" and close(r.arrays["numeric"], H)


def test_writing_a_instead_of_its_symmetric_part_fails_the_hessian_only(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(QUADRATIC.read_text().replace("  x: 0.5 * (A + A.T)\n", "  x: A\n"))
    result = run(path)
    assert [p.status for p in result.params] == ["pass"]
    assert row(result, "x hessian").status == "fail" and result.status == "fail"


@pytest.mark.parametrize("method", ["richardson", "complex-step"])
def test_other_methods_pass_the_bundled_second_order_specs(method):
    for path in (LOGISTIC, SOFTMAX, QUADRATIC):
        result = run(path, method=method)
        assert result.status == "pass", (path, [(r.label, r.formula) for r in result.second])


# ----------------------------------------------------------------------------- wrong formulas, kinks


def test_a_hessian_missing_its_1_over_m_is_named():
    r = row(run(MISSING_M), "w hessian")
    assert r.status == "fail"
    assert r.diagnosis == "the hessian formula is m × the Hessian (m = 40 columns): a missing 1/m?"


def test_an_hvp_without_the_p_1_minus_p_weight_fails_on_the_hvp_alone():
    result = run(DROPS_WEIGHT)
    assert [(r.label, r.status) for r in result.second] == [("w hessian", "pass"), ("w hvp", "fail")]
    r = row(result, "w hvp")
    X, V = gradcheck.load(DROPS_WEIGHT).values["X"], r.arrays["direction"]
    assert close(r.arrays["formula"], X @ (X.T @ V) / X.shape[1])  # what was written, evaluated here


def test_a_single_wrong_hessian_entry_is_caught_where_it_is(tmp_path):
    path = tmp_path / "one.yaml"
    text = QUADRATIC.read_text().replace("  x: 0.5 * (A + A.T)\n", "  x: 0.5 * (A + A.T) + 1e-4 * E\n")
    path.write_text(text.replace("  b: {shape: [4, 1]}\n",
                                 "  b: {shape: [4, 1]}\n  E: [[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]\n"))
    r = row(run(path), "x hessian")
    assert r.status == "fail" and r.formula.worst_index == (1, 3)


def test_a_gradient_kink_between_the_two_gradients_is_said_not_failed():
    r = row(run(KINK), "w hessian")
    assert r.status == "pass" and r.kinks == 4
    assert "not differentiable" in r.note
    kink = r.formula.kinks[0]
    assert {round(kink.left, 6), round(kink.right, 6)} == {8.0, 10.0}  # 2(x₂x₂ᵀ) and 2(x₁x₁ᵀ + x₂x₂ᵀ) at [0, 0]


def test_directions_are_seeded():
    a, b = row(run(SOFTMAX), "W hvp"), row(run(SOFTMAX), "W hvp")
    assert np.array_equal(a.arrays["direction"], b.arrays["direction"])
    c = row(run(SOFTMAX, seed=7), "W hvp")
    assert not np.array_equal(a.arrays["direction"], c.arrays["direction"])


# ----------------------------------------------------------------------------- reports


def test_table_rows_failure_lines_and_json():
    text = invoke("run", MISSING_M).output
    assert "w hessian   3×3" in text and "✗ w hessian vs numeric at" in text and "↳ w hessian: the hessian formula" in text
    report = json.loads(invoke("run", "--format", "json", DROPS_WEIGHT).output)
    rows = report["specs"][0]["second_order"]
    assert [r["section"] for r in rows] == ["hessian", "hvp"]
    assert set(rows[1]) == {"name", "section", "shape", "status", "formula", "probes", "kinks", "kink_entries", "note",
                            "diagnosis", "place"}
    lines = DROPS_WEIGHT.read_text(encoding="utf-8").splitlines()  # the formula's place as fields, like expect_place
    for r, key in zip(rows, ("hessian:", "hvp:")):
        line, col = r["place"]["line"], r["place"]["col"]
        assert lines[line - 2] == key and lines[line - 1][col - 1:].startswith("X @ ")
    assert rows[1]["status"] == "fail" and rows[1]["formula"]["worst_index"] is not None
    plain = json.loads(invoke("run", "--format", "json", SPECS / "ufldl_sparse_coding.yaml").output)
    assert "second_order" not in plain["specs"][0]  # only specs with second-order sections carry the key


def test_junit_names_and_locates_a_failing_second_order_formula():
    """A spec that fails only on its hessian formula: the failure message says which, the testcase has its line."""
    root = ET.fromstring(invoke("run", "--format", "junit", MISSING_M).stdout)
    case = root.find("testsuite/testcase")
    message = case.find("failure").get("message")
    assert message.startswith("w hessian at [") and "a missing 1/m?" in message
    lines = MISSING_M.read_text(encoding="utf-8").splitlines()
    assert lines[int(case.get("line")) - 2] == "hessian:"


# ----------------------------------------------------------------------------- located errors

BASE = """\
params:
  w: {shape: [3, 1]}
  W: {shape: [3, 3]}
data:
  X: {shape: [3, 4]}
input: X
layers:
  - {weight: W, activation: tanh}
  - {weight: w.T}
objective: sum
"""


def error_of(text: str):
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(text, "t.yaml")
    return info.value


@pytest.mark.parametrize("extra, where, words", [
    ("hessian:\n  q: X\n", (12, 3), ['hessian: "q" is not a declared param', "params: w, W"]),
    ("hessian:\n  X: X\n", (12, 3), ['"X" is data, not a param']),
    ("hvp:\n  ww: V\n", (12, 3), ['hvp: "ww" is not a declared param', 'did you mean "w"']),
    ("hessian:\n  W: X\n", (12, 3), ["W has shape (3, 3), not a column vector", "use hvp: {W: ...}"]),
    ("hessian:\n  w: X\n", (12, 6), ["hessian w: the formula has shape (3, 4), but the Hessian of w, a (3, 1) param, is (3, 3)"]),
    ("hvp:\n  W: V @ X\n", (12, 6), ["hvp W: the formula has shape (3, 4), but H·V has W's shape, (3, 3)"]),
    ("expect:\n  w: V\n", (12, 6), ['undefined name "V" in expect w: V is the direction of an hvp formula and exists only inside hvp:']),
    ("hessian:\n  w: X @ X.T + V\n", (12, 16), ['in hessian w: V is the direction of an hvp formula']),
    ("define:\n  r: 2 * V\n", (12, 10), ['undefined name "V" in define r: V is the direction']),
    ("hvp:\n  w: V + q\n", (12, 10), ['undefined name "q"']),
])
def test_second_order_mistakes_are_located(extra, where, words):
    exc = error_of(BASE + extra)
    assert (exc.line, exc.col) == where, str(exc)
    for w in words:
        assert w in str(exc), str(exc)


def test_a_declared_v_is_an_ordinary_name_but_cannot_stand_beside_hvp():
    declared = BASE.replace("  X: {shape: [3, 4]}\n", "  X: {shape: [3, 4]}\n  V: {shape: [3, 1]}\n")
    gradcheck.loads(declared + "expect:\n  w: V * 0\n", "t.yaml")  # V is data here, like any name
    exc = error_of(declared + "hvp:\n  w: V\n")
    assert (exc.line, exc.col) == (13, 3) and "declares V under data" in str(exc)


def test_validate_accepts_the_bundled_specs_and_locates_a_wrong_shape(tmp_path):
    assert invoke("validate", LOGISTIC, SOFTMAX, QUADRATIC).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE + "hvp:\n  W: V @ X\n")
    result = invoke("validate", bad)
    assert result.exit_code == 1 and f"{bad}:12:6: hvp W: the formula has shape (3, 4)" in result.output


# ----------------------------------------------------------------------------- budget


def test_a_hessian_costs_n_gradient_pairs_in_the_budget(tmp_path):
    model = gradcheck.load(LOGISTIC).model
    assert second_steps(model) == 3 * 2 * 3  # 3 columns, a pair of gradients each, ~3 evaluations per gradient
    assert second_steps(gradcheck.load(SOFTMAX).model) == 2 * (2 * 2 * 3)  # two formulas, two directions each
    big = tmp_path / "big.yaml"
    big.write_text("params:\n  w: {shape: [500, 1]}\ndata:\n  X: {shape: [500, 3]}\ninput: X\n"
                   "layers:\n  - {weight: w.T, activation: sigmoid}\nobjective: sum\nhessian:\n  w: X @ X.T\n")
    result = invoke("run", "--max-steps", "2000", big)
    assert result.exit_code == 1
    assert f"{big}:10:6: checking needs 4,000 evaluations of J (3,000 for the hessian/hvp formulas" in result.output


def test_github_annotates_a_failing_formula_where_it_stands():
    lines = invoke("run", "--format", "github", DROPS_WEIGHT).output.splitlines()
    assert lines[0].startswith(f"::error file={DROPS_WEIGHT},line=25,col=6,title=gradcheck%3A w hvp::hvp of w disagrees")


def test_assert_gradients_names_a_failing_formula():
    from gradcheck.testing import assert_gradients

    with pytest.raises(AssertionError) as info:
        assert_gradients(MISSING_M)
    assert "w hessian failed" in str(info.value) and "a missing 1/m?" in str(info.value)
    assert_gradients(LOGISTIC)


def test_verbose_shows_a_formula_s_worst_entries_and_heatmap():
    out = invoke("run", "-v", MISSING_M).output
    assert "w hessian: worst 9 of 9 entries" in out and "w hessian: relative error per entry" in out


@pytest.mark.parametrize("path, label", [(LOGISTIC, "w hessian"), (SOFTMAX, "W hvp"), (QUADRATIC, "x hessian")])
def test_a_relative_1e5_slip_in_any_resolved_entry_is_caught(path, label):
    from gradcheck.verdict import compare

    r = row(run(path), label)
    formula, numeric, error = (r.arrays[k] for k in ("formula", "numeric", "error"))
    resolved = np.argwhere(error < 1e-7 * np.abs(numeric))
    assert len(resolved) >= numeric.size // 2
    for index in map(tuple, resolved):
        bad = formula.copy()
        bad[index] *= 1 + 1e-5
        assert not compare(bad, numeric, r.arrays["rtol"], 0.0, error).passed, index


@pytest.mark.parametrize("mode", ["fast", "sample:2"])
def test_second_order_is_checked_in_every_mode(mode):
    result = run(MISSING_M, mode=mode)
    assert row(result, "w hessian").status == "fail" and result.status == "fail"


def test_a_gradient_that_is_not_finite_at_a_moved_point_is_a_located_error(monkeypatch):
    from gradcheck import second

    real = second.GradientProbe.at
    monkeypatch.setattr(second.GradientProbe, "at", lambda self, theta: (real(self, theta)[0] * np.nan, False))
    result = run(LOGISTIC)
    assert result.status == "error" and result.error.line == 16 and result.error.col == 6
    assert "hessian w: the backprop gradient of w is not finite at a moved point" in result.message


def test_other_mistakes_keep_their_own_message_and_suggestions():
    exc = error_of(BASE + "expect:\n  w: U + V\n")
    assert str(exc).startswith('t.yaml:12:6: undefined name "U"') and '"V"' not in str(exc)


def test_explain_lists_the_second_order_formulas():
    out = invoke("explain", SOFTMAX).output
    assert "Second order, as the spec writes it" in out and "  hvp W: (P * (V @ X)" in out
    data = json.loads(invoke("explain", "--format", "json", LOGISTIC).output)
    assert data["second_order"] == [{"section": "hessian", "param": "w",
                                     "formula": "X @ diag(p * (1 - p)) @ X.T / cols(X)"}]
