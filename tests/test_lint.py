"""Warnings a linter would give, and --strict (issue 14, item 3): reported, located, failing only when asked."""

from __future__ import annotations

import json
import textwrap

from conftest import ICA, SPECS, invoke

def write(tmp_path, text):
    spec = tmp_path / "warned.yaml"
    spec.write_text(textwrap.dedent(text))
    return spec


def problems(spec, *args):
    result = invoke("run", "--format", "json", *args, spec)
    return result.exit_code, json.loads(result.output)["specs"][0]


SIMPLE = """\
    params:
      W: {shape: [3, 4]}
      V: {shape: [2, 2]}
    data:
      x: {shape: [4, 5]}
    input: x
    layers: [{weight: W, activation: tanh}]
    define:
      spare: W @ x
"""


def test_unused_param_unused_define_and_no_expect_are_located_and_do_not_fail_by_default(tmp_path):
    code, spec = problems(write(tmp_path, SIMPLE))
    assert code == 0 and spec["status"] == "pass"
    found = [(p["line"], p["col"], p["severity"], p["message"].split(":")[0]) for p in spec["problems"]]
    assert found == [(2, 3, "info", "param W has no expect formula"),
                     (3, 3, "warning", "param V is not used by any term"),
                     (9, 10, "warning", "define spare is not used by any expect or later define")]


def test_strict_fails_a_spec_with_warnings_and_nothing_else_changes(tmp_path):
    spec = write(tmp_path, SIMPLE)
    code, result = problems(spec, "--strict")
    assert code == 1 and result["status"] == "fail"
    human = invoke("run", spec)
    assert human.exit_code == 0
    assert f"  warning: {spec}:3:3: param V is not used by any term" in human.output
    assert "no expect formula" not in human.output  # a note: shown with -v only
    assert "info: " in invoke("run", "-v", spec).output
    strict_validate = invoke("validate", "--strict", spec)
    assert strict_validate.exit_code == 1 and "warning: " in invoke("validate", spec).output


def test_a_gradient_zero_at_every_entry_is_a_warning(tmp_path):
    spec = write(tmp_path, """\
        params:
          W: {shape: [3, 4]}
        data:
          x: {shape: [4, 5]}
        input: x
        layers: [{weight: W, activation: {scale: 0}}]
        expect:
          W: 0 * W
    """)
    code, result = problems(spec)
    assert code == 0
    assert [(p["line"], p["severity"]) for p in result["problems"]] == [(2, "warning")]
    assert "gradient of W is zero at every entry" in result["problems"][0]["message"]
    assert problems(spec, "--strict")[0] == 1


def test_bundled_specs_have_no_warnings():
    result = invoke("run", "--strict", "--format", "json", SPECS)
    assert result.exit_code == 0, [s["problems"] for s in json.loads(result.output)["specs"] if s["status"] != "pass"]


def test_github_annotates_warnings(tmp_path):
    lines = invoke("run", "--format", "github", write(tmp_path, SIMPLE)).output.splitlines()
    assert any(line.startswith("::warning file=") and ",line=3,col=3," in line for line in lines)
    assert any(line.startswith("::notice file=") for line in lines)
    assert invoke("run", "--format", "github", ICA).output.count("::") == 0
