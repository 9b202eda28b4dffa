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
    failing |= {r.label for r in result.second if r.status == "fail"}  # "w hessian", "W hvp"
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


def resolved_entries_caught(path, method: str, slip: float) -> tuple[int, int]:
    """(entries whose estimated numeric error is below 1e-7 of their size, how many of them fail when each
    alone is off by a relative `slip`), judged by the verdict rule on the full check's own numeric gradient."""
    spec = gradcheck.load(path)
    result = gradcheck.check(spec, method=method)
    assert result.status == "pass", result.message
    grads = spec.gradient()
    rtol, atol = result.settings.rtol, result.settings.atol
    resolved = caught = 0
    for p in result.params:
        g, e = grads[p.name], np.broadcast_to(p.entries.numeric_error, grads[p.name].shape)
        at_kink = np.zeros(g.shape, bool)
        for index in p.entries.kinks:
            at_kink[index] = True
        for index in map(tuple, np.argwhere((e < 1e-7 * np.abs(g)) & ~at_kink)):
            bad = g.copy()
            bad[index] *= 1 + slip
            resolved += 1
            caught += not compare(bad, p.entries.numeric, rtol, atol, e).passed
    return resolved, caught


@pytest.mark.slow  # every spec in the tree, checked in full
@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_defaults_catch_a_relative_1e5_error_in_any_resolved_entry(path):
    """Every entry whose numeric error estimate is below 1e-7 of its size fails when it alone is off by 1e-5,
    whatever |J| is (there is no floor from |J|): sensitivity is set by what each finite difference resolves."""
    resolved, caught = resolved_entries_caught(path, "central", 1e-5)
    size = sum(int(np.prod(p.shape)) for p in gradcheck.check(gradcheck.load(path)).params)
    assert resolved >= size // 2, (resolved, size)  # most entries are resolved that finely
    assert caught == resolved


@pytest.mark.slow  # every spec in the tree, checked in full
@pytest.mark.parametrize("path", [p for p in BUNDLED if p.name not in ("max_pooling.yaml", "tiny_cnn.yaml", "residual_block.yaml")],
                         ids=lambda p: p.name)
def test_the_complex_step_catches_a_relative_1e9_error_in_any_resolved_entry(path):
    resolved, caught = resolved_entries_caught(path, "complex-step", 1e-9)
    assert resolved and caught == resolved
