"""The CLI through click's CliRunner: both formats, every exit code."""

import json
import shutil

import pytest

import gradcheck.cli as cli
from conftest import ICA, INVALID, PAGE_TYPO, WRONG, invoke



def test_human_pass_exit_0():
    result = invoke("run", ICA)
    assert result.exit_code == 0, result.output
    assert "ICA reconstruction cost" in result.output and "PASS" in result.output
    assert "1 spec: 1 passed, 0 failed, 0 errors" in result.output
    assert "\x1b[" not in result.output  # plain text off a terminal
    assert "…" not in result.output


def test_human_fail_shows_analytic_and_numeric_side_by_side():
    result = invoke("run", WRONG)
    assert result.exit_code == 1
    assert "FAIL" in result.output
    line = next(l for l in result.output.splitlines() if "✗ b2" in l)
    assert "analytic" in line and "numeric" in line


def test_invalid_spec_is_located_without_traceback_and_batch_goes_on(tmp_path):
    shutil.copy(INVALID, tmp_path / "a_bad.yaml")
    shutil.copy(ICA, tmp_path / "b_good.yaml")
    (tmp_path / "notes.txt").write_text("not a spec")
    result = invoke("run", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path / 'a_bad.yaml'}:6:17: no such activation" in result.output
    assert "Traceback" not in result.output
    assert "2 specs: 1 passed, 0 failed, 1 error" in result.output


def test_json_keys_exactly(tmp_path):
    result = invoke("run", "--format", "json", ICA, WRONG, INVALID)
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert set(data) == {"version", "specs", "summary"}
    assert data["summary"] == {"total": 3, "pass": 1, "fail": 1, "error": 1}
    ok, bad, invalid = data["specs"]
    # The core keys exactly, plus the documented extensions (settings; kinks and mode details).
    assert set(ok) == {"path", "name", "status", "message", "objective", "params", "settings", "seconds", "problems"}
    assert set(ok["settings"]) == {"method", "mode", "eps", "rtol", "atol", "seed"}
    assert all(isinstance(s["seconds"], float) and s["seconds"] >= 0 for s in data["specs"])
    param = ok["params"][0]
    assert set(param) == {"name", "shape", "status", "backprop", "expect", "kinks", "kink_entries", "checked", "note",
                          "diagnosis", "place", "expect_place"}
    assert param["shape"] == [4, 6] and param["status"] == "pass"
    assert set(param["backprop"]) == {"max_rel_error", "max_abs_error", "worst_index", "analytic", "numeric",
                                      "numeric_error", "analytic_error"}
    assert set(param["expect"]) == set(param["backprop"]) | {"message"}
    assert bad["status"] == "fail" and [p["name"] for p in bad["params"] if p["status"] == "fail"] == ["b2"]
    assert invalid["status"] == "error" and invalid["message"].startswith(f"{INVALID}:6:17:")
    assert [(p["line"], p["col"], p["severity"]) for p in invalid["problems"]] == [(6, 17, "error")]
    failing = next(p for p in bad["params"] if p["name"] == "b2")
    assert failing["expect_place"]["line"] > failing["place"]["line"] > 1  # locations as fields, not only in text
    assert invalid["params"] == [] and invalid["objective"] is None


def test_expect_shape_mismatch_is_a_failure_naming_both_shapes(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("params: {W: {shape: [2, 3]}}\ninput: W\nlayers: [{activation: square}]\nexpect: {W: 2 * W.T}\n")
    data = json.loads(invoke("run", "--format", "json", str(spec)).output)
    expect = data["specs"][0]["params"][0]["expect"]
    assert data["specs"][0]["status"] == "fail"
    assert expect["message"] == "expect for W has shape (3, 2) but W has shape (2, 3)"


def test_overrides_change_the_settings():
    strict = json.loads(invoke("run", "--format", "json", "--rtol", "1e-14", "--atol", "0", ICA).output)
    assert strict["specs"][0]["settings"]["rtol"] == 1e-14 and strict["specs"][0]["settings"]["atol"] == 0
    # below what a central difference resolves, its own estimated error is the floor: correct still passes
    assert strict["specs"][0]["status"] == "pass"
    floor = json.loads(invoke("run", "--format", "json", "--atol", "1e-3", str(PAGE_TYPO)).output)
    assert floor["specs"][0]["settings"]["atol"] == 1e-3  # an absolute floor given by the user is honoured
    assert floor["specs"][0]["status"] == "fail"  # ... within its range (issue 15: 1e3 passed a wrong page)
    assert invoke("run", "--atol", "1e3", str(PAGE_TYPO)).exit_code == 2
    reseeded = json.loads(invoke("run", "--format", "json", "--seed", "3", ICA).output)
    default = json.loads(invoke("run", "--format", "json", ICA).output)
    assert reseeded["specs"][0]["objective"] != default["specs"][0]["objective"]
    coarse = json.loads(invoke("run", "--format", "json", "--eps", "1e-2", ICA).output)
    assert coarse["specs"][0]["settings"]["eps"] == 1e-2
    assert coarse["specs"][0]["params"][0]["backprop"]["max_abs_error"] != \
        default["specs"][0]["params"][0]["backprop"]["max_abs_error"]


@pytest.mark.parametrize("args", [["--format", "xml", ICA], ["--rtol", "-1", ICA], ["/no/such/path.yaml"], []])
def test_usage_errors_exit_2(args):
    result = invoke("run", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_folder_without_specs_exit_2(tmp_path):
    result = invoke("run", str(tmp_path))
    assert result.exit_code == 2 and "no spec files" in result.output


def test_internal_error_exit_2(monkeypatch):
    def boom(*_, **__):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(cli, "execute", boom)
    result = invoke("run", ICA)
    assert result.exit_code == 2
    assert "internal error" in result.output and "simulated bug" in result.output


def test_no_color_and_color_flags():
    assert "\x1b[" not in invoke("run", ICA, env={"NO_COLOR": "1"}).output


def test_a_bug_met_in_one_spec_costs_its_row_and_the_run_exits_2(monkeypatch, tmp_path):
    import gradcheck.guard as guard

    real = guard.check  # the check as guard.check_path calls it

    def buggy(spec, options=None):
        if spec.path.endswith("b_buggy.yaml"):
            raise ZeroDivisionError("simulated bug")
        return real(spec, options)

    monkeypatch.setattr(guard, "check", buggy)
    for name in ("a.yaml", "b_buggy.yaml", "c.yaml"):
        shutil.copy(ICA, tmp_path / name)
    result = invoke("run", "--format", "json", str(tmp_path))
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert [s["status"] for s in data["specs"]] == ["pass", "error", "pass"]
    assert data["specs"][1]["message"] == (f"{tmp_path / 'b_buggy.yaml'}:1:1: internal error (a bug in gradcheck, "
                                           f"please report it): ZeroDivisionError: simulated bug")
    assert "internal error" in result.stderr
