"""gradcheck.diagnosis: each slip pattern on synthetic arrays and on the fixtures, and no false diagnosis.

A diagnosis must never be printed when its pattern does not fit within the tolerance; the negative
cases below (noise beyond the tolerance, a truth ~0, a symmetric truth, uses that do not add up) and
the table of every spec and wrong fixture in the repository hold that line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck.diagnosis import PATTERNS, Use, diagnose

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
DIAG = TESTS / "verdicts" / "diagnosis"


def tolerance(expect, truth, rtol=1e-6, atol=1e-12):
    """The allowance the brief fixes for these tests: rtol·max(|expect|, |truth|) + atol."""
    return rtol * np.maximum(np.abs(expect), np.abs(truth)) + atol


def check(expect, truth, uses=(), columns=None):
    return diagnose(expect, truth, tolerance(expect, truth), uses, columns)


def rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- the list

def test_patterns_are_listed_in_order():
    assert [name for name, _ in PATTERNS] == ["transpose", "symmetric factor", "factor", "sign", "missing use", "bias axis",
                                             "confined"]
    assert all(callable(fn) and fn.__doc__ for _, fn in PATTERNS)


# ----------------------------------------------------------------------------- positive, synthetic

def test_transpose():
    t = rng().normal(size=(4, 4))
    assert check(t.T, t) == "expect is the transpose of the gradient"


@pytest.mark.parametrize("c, columns, sentence", [
    (2.0, None, "expect is 2 × the gradient"),
    (0.5, None, "expect is 1/2 × the gradient"),
    (-1.0, None, "expect has the wrong sign (−1 × the gradient)"),
    (-2.0, None, "expect is −2 × the gradient"),
    (8.0, 8, "expect is m × the gradient (m = 8 columns): a missing 1/m?"),
    (1 / 8, 8, "expect is 1/m × the gradient (m = 8): an extra 1/m?"),
    (0.731, None, "expect is 0.731 × the gradient"),
    (-0.25, 8, "expect is −0.25 × the gradient"),
    (8.0, None, "expect is 8 × the gradient"),  # without m, a plain number
])
def test_factor(c, columns, sentence):
    t = rng(1).normal(size=(3, 5))
    assert check(c * t, t, columns=columns) == sentence


def test_fitted_factor_prints_the_digits_that_fit():
    t = rng(2).normal(size=(3, 4))
    e = 0.7312345 * t
    text = check(e, t)
    assert text == "expect is 0.731235 × the gradient"  # "0.731" would not fit within 1e-6
    assert np.all(np.abs(0.731235 * t - e) <= tolerance(e, t))
    assert not np.all(np.abs(0.73124 * t - e) <= tolerance(e, t))


def test_sign_on_a_subset():
    t = rng(3).normal(size=(3, 4)) + 3.0  # all positive, well away from 0
    e = t.copy()
    e[0, 2], e[2, 1], e[1, 3] = -t[0, 2], -t[2, 1], -t[1, 3]
    text = check(e, t)
    assert text.startswith("expect has the wrong sign at 3 of 12 entries, e.g. [")
    assert text.split("e.g. ")[1] in ("[0, 2]", "[2, 1]", "[1, 3]")


def test_sign_entries_near_zero_count_neither_way():
    t = np.array([[2.0, -3.0, 1e-14, 4.0]])
    e = np.array([[-2.0, -3.0, -1e-14, 4.0]])
    assert check(e, t) == "expect has the wrong sign at 1 of 4 entries, e.g. [0, 0]"


def test_sign_wrong_in_one_use():
    r = rng(4)
    a, b = r.normal(size=(3, 2)), r.normal(size=(3, 2)) + np.array([[2.0], [-2.0], [2.0]])
    uses = [Use("the input of term 1", "input", a, None), Use("the input of term 2", "input", b, None)]
    text = check(a + np.abs(b), a + b, uses)
    assert text.startswith("the contribution of the input of term 2 has the wrong sign at 2 of 6 entries")
    assert check(a - b, a + b, uses) == "the contribution of the input of term 2 has the wrong sign"


def two_uses(seed=5, shape=(3, 3)):
    r = rng(seed)
    one, two = r.normal(size=shape), r.normal(size=shape)
    return one, two, [Use("layer 1 (W, tanh)", "weight", one, None), Use("layer 2 (W.T, tanh)", "weight", two, None)]


def test_missing_use():
    one, two, uses = two_uses()
    assert check(two, one + two, uses) == "the contribution of the use in layer 1 (W, tanh) is missing"
    assert check(one, one + two, uses) == "the contribution of the use in layer 2 (W.T, tanh) is missing"


def test_missing_use_label_not_a_layer():
    r = rng(6)
    parts = [r.normal(size=(2, 3)) for _ in range(2)]
    uses = [Use("the input of term 1", "input", parts[0], None), Use("the target of term 2", "target", parts[1], None)]
    assert check(parts[0], sum(parts), uses) == "the contribution of the target of term 2 is missing"


def test_only_one_use_counted():
    r = rng(7)
    parts = [r.normal(size=(2, 3)) for _ in range(3)]
    uses = [Use(f"layer {i + 1} (W)", "weight", p, None) for i, p in enumerate(parts)]
    assert check(parts[1], sum(parts), uses) == "only the use in layer 2 (W) is counted; the others are missing"


def bias_case(n=3, m=3, seed=8):
    delta = rng(seed).normal(size=(n, m))
    right = delta.sum(axis=1, keepdims=True)
    return delta, right, [Use("layer 1 (W, b, sigmoid)", "bias", right, delta)]


def test_bias_summed_over_units():
    delta, right, uses = bias_case()
    assert check(delta.sum(axis=0)[:, None], right, uses) == \
        "the bias gradient is summed over the wrong axis (axis=0, over units, instead of axis=1, over examples)"


def test_bias_summed_over_everything():
    delta, right, uses = bias_case(n=3, m=5)
    assert check(np.full((3, 1), delta.sum()), right, uses) == \
        "the bias gradient is summed over the wrong axis (both axes, over units and examples, " \
        "instead of axis=1, over examples)"


def test_bias_mean_instead_of_sum_is_the_factor():
    delta, right, uses = bias_case(n=3, m=5)
    assert check(delta.mean(axis=1, keepdims=True), right, uses, columns=5) == \
        "expect is 1/m × the gradient (m = 5): an extra 1/m?"


@pytest.mark.parametrize("where, sentence", [
    (np.s_[1, :], "the error is confined to row 1"),
    (np.s_[:, 3], "the error is confined to column 3"),
    (np.diag_indices(4), "the error is confined to the diagonal"),
])
def test_confined(where, sentence):
    t = rng(9).normal(size=(4, 4))
    e = t.copy()
    e[where] += 0.5
    assert check(e, t) == sentence


def test_confined_in_a_column_vector_is_one_row():
    t = rng(10).normal(size=(5, 1))
    e = t.copy()
    e[3, 0] += 1.0
    assert check(e, t) == "the error is confined to row 3"


# ----------------------------------------------------------------------------- negative, synthetic

def test_right_expect_says_nothing():
    t = rng(11).normal(size=(4, 4))
    assert check(t.copy(), t) is None


def test_noise_within_tolerance_says_nothing():
    r = rng(12)
    t = r.normal(size=(4, 4))
    tol = tolerance(t, t)
    assert diagnose(t + 0.9 * tol * r.choice([-1, 1], size=t.shape), t, tol) is None


def test_random_wrong_expect_fits_nothing():
    r = rng(13)
    for _ in range(20):
        t, e = r.normal(size=(4, 5)), r.normal(size=(4, 5))
        assert check(e, t) is None


def test_factor_of_a_truth_that_is_zero_says_nothing():
    r = rng(14)
    t = 1e-14 * r.normal(size=(3, 4))  # ~0 everywhere within the tolerance
    assert check(2 * t + r.normal(size=(3, 4)), t) is None
    assert check(1e10 * t, t) is None


def test_transpose_of_a_symmetric_truth_says_nothing():
    a = rng(15).normal(size=(4, 4))
    t = a + a.T
    e = t + 0.5  # wrong everywhere, and tᵀ = t explains nothing
    assert check(e, t) != "expect is the transpose of the gradient"
    assert check(t.T, t) is None


def slipped(slip):
    """(the slipped expect, the truth, the uses) of one pattern, exactly."""
    if slip == "axis":
        delta, right, uses = bias_case(4, 4)
        return delta.sum(axis=0)[:, None], right, uses
    one, two = rng(16).normal(size=(2, 4, 4)) + 1.0
    t = one + two
    uses = [Use("layer 1 (W)", "weight", one, None), Use("layer 2 (W)", "weight", two, None)]
    return {"2": 2 * t, "1/2": t / 2, "-1": -t, "m": 4 * t, "transpose": t.T, "row": t + np.eye(4)[0][:, None],
            "sign": t * np.where(np.eye(4, dtype=bool), -1, 1), "missing": two}[slip], t, uses


SLIPS = {"2": "2 ×", "1/2": "1/2 ×", "-1": "wrong sign (−1", "m": "missing 1/m", "transpose": "transpose",
         "sign": "wrong sign at 4 of 16", "row": "row 0", "missing": "layer 1 (W) is missing", "axis": "wrong axis"}


@pytest.mark.parametrize("scale", [1.5, 10.0])
@pytest.mark.parametrize("slip", sorted(SLIPS))
def test_a_slip_buried_in_noise_beyond_the_tolerance_is_not_named(slip, scale):
    """expect = slip(truth) + noise of 1.5× or 10× the tolerance at every entry: no pattern fits."""
    exact, t, uses = slipped(slip)
    tol = tolerance(exact, t)
    noise = tol * rng(17).choice([-1, 1], size=t.shape)
    assert SLIPS[slip] in diagnose(exact, t, tol, uses, columns=4)  # the slip itself is named
    assert SLIPS[slip] in diagnose(exact + 0.9 * noise, t, tol, uses, columns=4)  # and within the tolerance
    assert diagnose(exact + scale * noise, t, tol, uses, columns=4) is None


def test_large_and_negative_fitted_factors_are_written_plainly():
    t = rng(20).normal(size=(3, 3)) + 5.0
    assert check(-12345.678 * t, t) == "expect is −12345.68 × the gradient"  # −12345.7 misses by 1.8e-6
    assert check(3.2e-5 * t, t) == "expect is 3.2e-05 × the gradient"


def test_scalar_param_gets_no_fitted_factor_and_no_region():
    t = np.array([[0.37]])
    assert check(np.array([[1.234]]), t) is None  # any wrong scalar is "c ×": no news
    assert check(2 * t, t) == "expect is 2 × the gradient"  # a named factor still says something


def test_whole_param_is_no_region():
    t = rng(17).normal(size=(1, 4))
    e = t + np.array([[0.5, 0.0, 0.0, 0.0]])
    assert check(e, t) == "the error is confined to column 0"
    assert check(t + 0.5 + rng(18).normal(size=(1, 4)), t) is None  # the only row is the whole param


def test_uses_that_do_not_add_up_are_not_trusted():
    one, two, uses = two_uses()
    assert check(two, one + two + 1.0, uses) is None


def test_missing_contribution_that_is_zero_is_no_diagnosis():
    one, _, _ = two_uses()
    uses = [Use("layer 1 (W)", "weight", one, None), Use("layer 2 (W)", "weight", np.zeros_like(one), None)]
    wrong = one + 0.3 * rng(19).normal(size=one.shape)
    assert check(wrong, one, uses) is None


@pytest.mark.parametrize("expect, truth", [
    (np.ones((3, 4)), np.ones((4, 3))),  # wrong shape: the checker says so, not this module
    (np.array([[np.nan, 1.0]]), np.array([[1.0, 2.0]])),
    (np.zeros((0, 2)), np.zeros((0, 2))),
])
def test_what_cannot_be_compared_says_nothing(expect, truth):
    assert diagnose(expect, truth, np.full(truth.shape, 1e-6) if truth.size else 1e-6) is None


# ----------------------------------------------------------------------------- the repository's specs

def load_case(path: Path):
    """(values, the spec's expect per param, backprop per param, columns of the first term's input)."""
    spec = gradcheck.load(path)
    env = dict(spec.values)
    with np.errstate(all="ignore"):
        for name, expression in spec.model.defines:
            env[name] = expression.evaluate(env)
        expects = {item[0]: np.asarray(item[1].evaluate(env), dtype=float) for item in spec.model.expects}
    values = {k: np.asarray(v, dtype=float) for k, v in spec.values.items()}
    ref = spec.model.terms[0].input  # None for a network whose layers say what they read
    x = values.get(ref.name) if ref is not None and ref.name else None
    columns = int(x.shape[1]) if x is not None and x.ndim == 2 else None
    return values, expects, spec.gradient(), columns


def run(path: Path, param: str, uses=(), columns=None):
    _, expects, grads, cols = load_case(path)
    expect, truth = expects.get(param, grads[param]), grads[param]
    tol = tolerance(expect, truth) if expect.shape == truth.shape else tolerance(truth, truth)
    return diagnose(expect, truth, tol, uses, cols if columns is None else columns)


def sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def tied_uses(v):
    """The two uses of W in tanh(W tanh(W X)), written out by hand."""
    a1 = np.tanh(v["W"] @ v["X"])
    a2 = np.tanh(v["W"] @ a1)
    d2 = (a2 - v["T"]) * (1 - a2 ** 2)
    d1 = (v["W"].T @ d2) * (1 - a1 ** 2)
    return [Use("layer 1 (W, tanh)", "weight", d1 @ v["X"].T, None),
            Use("layer 2 (W, tanh)", "weight", d2 @ a1.T, None)]


def bias_uses(v):
    """The one use of b in sigmoid(W X + b) under 1/2||A − T||², with its δ."""
    A = sig(v["W"] @ v["X"] + v["b"])
    dZ = (A - v["T"]) * A * (1 - A)
    return [Use("layer 1 (W, b, sigmoid)", "bias", dZ.sum(axis=1, keepdims=True), dZ)]


def l1_uses(v):
    """The two uses of s in 1/2||A s − x||² + λ Σ|s|."""
    r = v["A"] @ v["s"] - v["x"]
    return [Use("the input of term 1", "input", v["A"].T @ r, None),
            Use("the input of term 2", "input", v["lam"] * np.sign(v["s"]), None)]


# fixture -> (wrong param, hand-built uses or None, keywords the diagnosis must contain, the whole sentence)
DIAGNOSIS_FIXTURES = {
    "transpose_square_weight.yaml": ("W", None, ("transpose",), "expect is the transpose of the gradient"),
    "factor_2_squared_error.yaml": ("W", None, ("2 ×",), "expect is 2 × the gradient"),
    "factor_1_over_m.yaml": ("w", None, ("1/m", "m = 5"),
                             "expect is m × the gradient (m = 5 columns): a missing 1/m?"),
    # s < 0 at 5 of its 6 entries; [0, 0] has the largest |λ sign(s)| of them (all 0.5: the first)
    "sign_wrong_on_subset.yaml": ("s", l1_uses, ("wrong sign at", "term 2"),
                                  "the contribution of the input of term 2 has the wrong sign at 5 of 6 entries, "
                                  "e.g. [0, 0]"),
    "missing_tied_contribution.yaml": ("W", tied_uses, ("is missing", "layer 1"),
                                       "the contribution of the use in layer 1 (W, tanh) is missing"),
    "error_in_one_row.yaml": ("W", None, ("row 0",), "the error is confined to row 0"),
    "bias_summed_over_wrong_axis.yaml": ("b", bias_uses, ("wrong axis", "axis=0"),
                                         "the bias gradient is summed over the wrong axis "
                                         "(axis=0, over units, instead of axis=1, over examples)"),
}


def test_every_diagnosis_fixture_is_listed():
    assert sorted(p.name for p in DIAG.glob("*.yaml")) == sorted(DIAGNOSIS_FIXTURES)


@pytest.mark.parametrize("name", sorted(DIAGNOSIS_FIXTURES))
def test_diagnosis_fixture_names_its_pattern(name):
    param, make_uses, keywords, sentence = DIAGNOSIS_FIXTURES[name]
    values, _, grads, _ = load_case(DIAG / name)
    uses = make_uses(values) if make_uses else ()
    if uses:  # the hand-written uses are the backprop gradient, split
        assert np.allclose(sum(u.contribution for u in uses), grads[param], rtol=1e-10, atol=1e-14)
    text = run(DIAG / name, param, uses)
    assert text is not None, name
    for keyword in keywords:
        assert keyword in text, f"{name}: {text!r} should contain {keyword!r}"
    assert text == sentence
    for other in grads:  # the right params of the fixture say nothing
        if other != param:
            assert run(DIAG / name, other) is None


# Every param of every other spec in the repository, with no uses given, and what diagnose MUST say
# (checked by hand against each fixture's comment); params not listed MUST give None.
# The custom-df fixtures have a WRONG backprop and a right expect: what is said there is true of the
# two arrays (expect against backprop), and the checker must not diagnose when backprop fails.
EXPECTED = {
    # -1: the weight update -η δ z used as the gradient (a sign error)
    ("fixtures/wrong/error_signals_one_path_sign_error.yaml", "w_ko"):
        "expect has the wrong sign (−1 × the gradient)",
    # backprop's df is wrong; for one example grad = g·O_kᵀ with g a scalar, so the two differ by a factor
    # (φ(1−φ) over z(1−z) at net_{j−2}: −0.19886194 at all three entries, checked by hand)
    ("fixtures/wrong/logistic_neuron_wrong_df.yaml", "w_k_jm2"): "expect is −0.198862 × the gradient",
    ("fixtures/wrong/softmax_regression_missing_1_over_m.yaml", "W"):
        "expect is m × the gradient (m = 6 columns): a missing 1/m?",
    ("fixtures/wrong/tanh_layer_transposed_gradient.yaml", "W"): "expect is the transpose of the gradient",
    # backprop's df drops the 1/2 of sqrt', so backprop is 2× the right expect
    ("fixtures/wrong/ufldl_topographic_wrong_df.yaml", "s"): "expect is 1/2 × the gradient",
    ("verdicts/wrong/confident_sigmoid_bce_spurious_1_over_m.yaml", "w"):
        "expect is 1/m × the gradient (m = 3): an extra 1/m?",
    ("verdicts/wrong/confident_softmax_ce_b_sign.yaml", "b"): "expect has the wrong sign (−1 × the gradient)",
    ("verdicts/wrong/deep_tanh_chain_tiny_gradient_W1_transposed.yaml", "W1"):
        "expect is the transpose of the gradient",
    ("verdicts/wrong/penalty_big_data_term_missing_2.yaml", "s"): "expect is 1/2 × the gradient",
    ("fixtures/wrong/logdet_inverse_not_transposed.yaml", "X"): "expect is the transpose of the gradient",
    # read here entry by entry (no symmetric mapping): the symmetric-space form is 2 × G off the diagonal
    ("fixtures/wrong/symmetric_factor_two.yaml", "X"):
        "the off-diagonal entries are 2 × the gradient and the diagonal is right: expect is the symmetric-space "
        "gradient G + Gᵀ − diag(G) of a param checked entry by entry, whose gradient is the unconstrained G "
        "(declare symmetric: true to check on symmetric matrices)",
    # the diagnosis fixtures without their uses: those whose pattern needs no uses are found anyway
    ("verdicts/diagnosis/transpose_square_weight.yaml", "W"): "expect is the transpose of the gradient",
    ("verdicts/diagnosis/factor_2_squared_error.yaml", "W"): "expect is 2 × the gradient",
    ("verdicts/diagnosis/factor_1_over_m.yaml", "w"): "expect is m × the gradient (m = 5 columns): a missing 1/m?",
    ("verdicts/diagnosis/error_in_one_row.yaml", "W"): "the error is confined to row 0",
}

EVERY = sorted(str(p.relative_to(TESTS)) for folder in ("fixtures/wrong", "verdicts/correct", "verdicts/wrong",
                                                        "verdicts/diagnosis") for p in (TESTS / folder).glob("*.yaml"))
SPECS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "specs").glob("*.yaml"))


def test_expected_table_names_real_specs_and_params():
    for name, param in EXPECTED:
        assert name in EVERY and param in gradcheck.load(TESTS / name).param_names, (name, param)


@pytest.mark.slow  # every spec in the tree, checked in full
@pytest.mark.parametrize("name", SPECS)
def test_right_specs_say_nothing(name):
    _, _, grads, _ = load_case(ROOT / name)
    for param in grads:
        assert run(ROOT / name, param) is None, f"{name}: {param}"


@pytest.mark.slow  # every spec in the tree, checked in full
@pytest.mark.parametrize("name", EVERY)
def test_every_fixture_says_only_what_is_true(name):
    _, _, grads, _ = load_case(TESTS / name)
    for param in grads:
        assert run(TESTS / name, param) == EXPECTED.get((name, param)), f"{name}: {param}"


def ica_uses(v):
    """The two uses of W in ||Wᵀ W x − x||², by hand: layer 1 (W), layer 2 (W.T, transposed back)."""
    W, x = v["W"], v["x"]
    delta = 2 * (W.T @ W @ x - x)
    return [Use("layer 1 (W, identity)", "weight", W @ delta @ x.T, None),
            Use("layer 2 (W.T)", "weight", (delta @ (W @ x).T).T, None)]


@pytest.mark.parametrize("name, sentence", [
    ("fixtures/wrong/ufldl_ica_dropped_tied_term.yaml", "the contribution of the use in layer 2 (W.T) is missing"),
    # the page's Wᵀ for W in the first term: a wrong contribution, not a missing one; nothing fits
    ("fixtures/wrong/ufldl_ica_page_typo.yaml", None),
])
def test_ica_fixtures_with_their_uses(name, sentence):
    values, _, grads, _ = load_case(TESTS / name)
    uses = ica_uses(values)
    assert np.allclose(sum(u.contribution for u in uses), grads["W"], rtol=1e-10, atol=1e-14)
    assert run(TESTS / name, "W", uses) == sentence
