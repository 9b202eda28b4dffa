"""Issue 14's "smaller" list: each item as it should now behave."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import ICA, ROOT, WRONG, invoke

import gradcheck.guard as guard
from gradcheck.explain import explain
from gradcheck.formats.explanation import render_explanation
from gradcheck.spec import loads

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_json_seconds_include_loading(monkeypatch):
    real = guard.load

    def slow_load(*args, **kwargs):
        time.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(guard, "load", slow_load)
    assert guard.check_one(str(ICA)).seconds >= 0.2


def test_validate_verbose_help_is_its_own():
    run, validate = invoke("run", "--help").output, invoke("validate", "--help").output
    assert "heatmap" in run and "heatmap" not in validate and "notes (info" in validate


@pytest.mark.slow  # a pytest process of its own
def test_assert_gradients_hides_its_own_frames_from_pytest(tmp_path):
    test = tmp_path / "test_user.py"
    test.write_text(textwrap.dedent(f"""\
        from gradcheck.testing import assert_gradients

        def test_wrong():
            assert_gradients({str(WRONG)!r})
    """))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 1 and "b2" in out.stdout
    assert "gradcheck/testing.py" not in out.stdout and "test_user.py:4" in out.stdout


TWO_LAYERS = """\
params:
  W1: {shape: [3, 2]}
  b1: {shape: [3, 1]}
  W2: {shape: [1, 3]}
data:
  x: {shape: [2, 4]}
input: x
layers:
  - {weight: W1, bias: b1, activation: tanh}
  - {weight: W2, activation: sigmoid}
"""


def test_explain_numbers_layers_as_run_does():
    with_error = TWO_LAYERS.replace("{weight: W2, activation: sigmoid}", "{weight: W2, activation: sigmoid, bais: 1}")
    message = invoke("validate", "-", input=with_error).output
    assert 'unknown key "bais" in layer 2' in message  # run and validate call the sigmoid layer "layer 2"
    ex = explain(loads(TWO_LAYERS, "two.yaml").model)
    assert [u.where for u in ex.uses if u.param in ("b1", "W2")] == ["bias b1 of layer 1", "weight W2 of layer 2"]
    out = io.StringIO()
    render_explanation(ex, out, color=False, width=200)
    rows = {line.split()[0]: line for line in out.getvalue().splitlines() if line[:2] in ("1 ", "2 ", "3 ")}
    assert "layer 2" in rows["3"] and "sigmoid(z)" in rows["3"]  # sigmoid is the f of the spec's layer 2
    assert "layer 1" in rows["2"] and "tanh(z)" in rows["2"]


def test_a_bad_sample_size_is_not_an_unknown_mode():
    result = invoke("run", "--mode", "sample:0", ICA)
    assert result.exit_code == 2 and 'mode "sample:0": K of sample:K must be from 1' in result.output
    assert "no such mode" not in result.output


def test_readme_documents_completion_suite_time_and_the_new_options():
    assert "_GRADCHECK_COMPLETE=bash_source" in README
    assert "test suite takes" in README
    for words in ("[tool.gradcheck]", "--strict", "--exclude", "extend-exclude", "gradcheck run -", "GRADCHECK_"):
        assert words in README, words


def test_the_readme_ci_example_uses_the_faster_jobs_setting():
    ci = next(line for line in README.splitlines() if "--format junit -o report.xml" in line)
    assert "-j 0" not in ci
