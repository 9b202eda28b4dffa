"""The Python API: the assertion helper for users' own test suites, lazy imports, the package's names."""

import pickle
import subprocess
import sys

import pytest

import gradcheck
from conftest import FIXTURES, ICA, PAGE_TYPO, ROOT, WRONG



def test_assert_gradients_passes_and_returns_the_result():
    result = gradcheck.assert_gradients(ICA)
    assert result.status == "pass" and [p.name for p in result.params] == ["W"]
    assert gradcheck.assert_gradients(gradcheck.load(ICA), rtol=1e-5).settings.rtol == 1e-5


def test_assert_gradients_failure_shows_analytic_and_numeric_side_by_side():
    with pytest.raises(AssertionError) as info:
        gradcheck.assert_gradients(str(PAGE_TYPO))
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0].startswith("gradients of 'WRONG page typo - ICA reconstruction cost'")
    assert "W failed" in lines[0] and "rtol 1.0e-06" in lines[0]
    assert lines[1].startswith("  W expect vs numeric: max rel error 1.8e+00 at [2, 2]")
    assert lines[2].split() == ["index", "analytic", "numeric", "rel", "error"]
    worst = lines[3].split()
    assert worst[:2] == ["[2,", "2]"] and float(worst[2]) != pytest.approx(float(worst[3]))
    assert len(lines) == 3 + 5  # the 5 worst entries


def test_assert_gradients_with_overrides_and_on_invalid_specs():
    # rtol is the relative error a user accepts; where a central difference cannot resolve that finely, its
    # own estimated error is the floor, so an absurd rtol fails nothing correct ...
    assert gradcheck.assert_gradients(ICA, rtol=1e-14, atol=0).status == "pass"
    # ... and a wrong formula fails whatever rtol is overridden to, short of its own error
    with pytest.raises(AssertionError, match="W expect vs numeric"):
        gradcheck.assert_gradients(PAGE_TYPO, rtol=1e-3)
    with pytest.raises(AssertionError, match=r"yaml_syntax.yaml:5:6: YAML syntax error"):
        gradcheck.assert_gradients(FIXTURES / "invalid" / "yaml_syntax.yaml")


def test_check_is_the_function_whatever_was_imported():
    import gradcheck.check  # noqa: F401 - importing the submodule sets the package attribute

    assert callable(gradcheck.check) and gradcheck.check.__name__ == "check"
    assert gradcheck.check(gradcheck.load(ICA)).status == "pass"


def test_spec_error_keeps_its_place_across_processes():
    error = pickle.loads(pickle.dumps(gradcheck.SpecError("bad", "f.yaml", 3, 7)))
    assert (error.file, error.line, error.col, str(error)) == ("f.yaml", 3, 7, "f.yaml:3:7: bad")


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["explain", "--help"], ["validate", "--help"]])
def test_help_imports_neither_numpy_nor_yaml_nor_rich(argv):
    code = ("import sys, contextlib, io\nfrom gradcheck.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main({argv!r}, standalone_mode=False)\n"
            "print(','.join(m for m in ('numpy', 'yaml', 'rich') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""


@pytest.mark.parametrize("path", [ICA, PAGE_TYPO, WRONG],
                         ids=lambda p: p.name)
def test_per_entry_errors_agree_with_the_comparison(path):
    """The verbose heatmap and worst entries use the same metric as the verdict."""
    result = gradcheck.check(gradcheck.load(path))
    for p in result.params:
        for side, c in (("backprop", p.backprop), ("expect", p.expect)):
            if c is None:
                continue
            (index, analytic, numeric, error), *_ = p.entries.worst(side, 1)
            assert (index, analytic, numeric, error) == (c.worst_index, c.analytic, c.numeric, c.max_rel_error)
            assert p.entries.errors(side).max() == c.max_rel_error
