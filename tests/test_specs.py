"""Bundled specs pass; wrong fixtures fail for the right param; invalid ones give file:line:col."""

import numpy as np
import pytest

import gradcheck
from gradcheck.guard import check_path
from gradcheck.verdict import compare
from conftest import BUNDLED, FIXTURES, first_line_tag

WRONG = sorted((FIXTURES / "wrong").glob("*.yaml"))
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


def test_there_are_bundled_specs_and_fixtures():
    assert len(BUNDLED) >= 9 and len(WRONG) >= 6 and len(INVALID) >= 15


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_spec_passes_with_expect_for_every_param(path):
    result = check_path(str(path))
    assert result.status == "pass", result.message or [(p.name, p.backprop, p.expect) for p in result.params]
    missing = [p.name for p in result.params if p.expect is None]
    description = gradcheck.load(path).model.description or ""
    # an expect may be left out only where the expression language cannot write it, and the
    # description must say so ("No expect formulas: ...")
    assert result.params and (not missing or "no expect" in description.lower()), f"no expect for {missing}"


@pytest.mark.parametrize("path", WRONG, ids=lambda p: p.name)
def test_wrong_fixture_fails_for_the_right_param(path):
    culprit = first_line_tag(path, "expect-fail")
    result = check_path(str(path))
    assert result.status == "fail", result.message
    failing = {p.name for p in result.params if p.status == "fail"}
    assert failing == {culprit}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_fixture_is_located(path):
    expected = first_line_tag(path, "error")
    result = check_path(str(path))
    assert result.status == "error"
    assert result.message.startswith(f"{path}:{expected}")
    line, col = expected.split(":")[:2]
    assert isinstance(result.error, gradcheck.SpecError)
    assert (result.error.file, result.error.line, result.error.col) == (str(path), int(line), int(col))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_defaults_catch_a_relative_1e4_error_in_any_single_entry(path):
    """Every entry above the absolute floor, perturbed by a relative 1e-4 alone, must fail."""
    spec = gradcheck.load(path)
    result = gradcheck.check(spec)
    grads = spec.gradient()
    rtol, atol = result.settings.rtol, result.settings.atol
    numeric = {p.name: p.entries.numeric for p in result.params}  # the full check's own estimate
    for name, g in grads.items():
        above = np.argwhere(np.abs(g) > atol / rtol)
        assert above.size or np.abs(g).max() <= atol / rtol
        for index in map(tuple, above):
            bad = g.copy()
            bad[index] *= 1 + 1e-4
            assert not compare(bad, numeric[name], rtol, atol).passed, (name, index)
