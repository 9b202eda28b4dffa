"""Golden copies: every bundled spec and fixture gives the same JSON (and `explain`) as before the engine's
reshaping. The copies under tests/golden/ were made by the CLI on the tree before the change; the per-spec
"seconds" differ from run to run, and a passing comparison's errors and worst entry follow the BLAS build and
its thread count, so those are dropped before comparing (statuses, messages and places stay exact).

To remake them after an intended change of output: `python tests/test_golden.py --remake`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from conftest import ROOT, invoke

GOLDEN = ROOT / "tests" / "golden"
RUNS = {  # golden file -> the `gradcheck run` arguments that made it
    "specs.json": ["specs"],
    "specs_richardson.json": ["--method", "richardson", "specs"],
    "specs_complex-step.json": ["--method", "complex-step", "specs"],
    "tests_fixtures_wrong.json": ["tests/fixtures/wrong"],
    "tests_fixtures_kinks.json": ["tests/fixtures/kinks"],
    "tests_fixtures_invalid.json": ["tests/fixtures/invalid"],
}
EXPLAINED = sorted([*ROOT.glob("specs/*.yaml"), *ROOT.glob("tests/fixtures/wrong/*.yaml"),
                    *ROOT.glob("tests/fixtures/kinks/*.yaml")])


NUMBER = re.compile(r"[-+]?\d+\.\d+(?:e[-+]\d+)?|[-+]?\d+e[-+]\d+")


def _without_seconds(report: dict) -> dict:
    for spec in report["specs"]:
        spec.pop("seconds", None)
    return report


ROUND_OFF = ("max_rel_error", "max_abs_error", "worst_index", "analytic", "numeric", "numeric_error", "analytic_error")


MEASURED = ("analytic_error",)  # backprop's round-off, measured as a difference of round-offs: never pinned


def _settled(value, passed: bool = False):
    """The report without what round-off decides: a passing comparison's errors and worst entry (they follow the
    BLAS build and its threads), other numbers to 4 digits; statuses, messages' words, places stay exact."""
    if isinstance(value, dict):
        passed = value.get("status", "pass" if passed else None) == "pass" if "status" in value else passed
        return {k: _settled(v, passed) for k, v in value.items()
                if not (passed and k in ROUND_OFF) and k not in MEASURED}
    if isinstance(value, list):
        return [_settled(v, passed) for v in value]
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, str):
        return NUMBER.sub(lambda m: f"{float(m.group()):.4g}", value)
    return value


def _run_json(args: list[str]) -> dict:
    result = invoke("run", "--format", "json", *args, catch_exceptions=False)
    return _without_seconds(json.loads(result.output))


def _explained(path: Path, emit: bool) -> str:
    args = ["explain", "--emit", "python"] if emit else ["explain", "--format", "json"]
    result = invoke(*args, path.relative_to(ROOT), catch_exceptions=False)
    return result.output


def _explain_golden(path: Path, emit: bool) -> Path:
    return GOLDEN / "explain" / f"{path.parent.name}_{path.stem}.{'emitted.txt' if emit else 'json'}"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.slow  # whole runs of every bundled spec, three times over
@pytest.mark.parametrize("golden", sorted(RUNS))
def test_run_json_is_unchanged(golden):
    expected = _without_seconds(json.loads((GOLDEN / golden).read_text()))
    assert _settled(_run_json(RUNS[golden])) == _settled(expected)


@pytest.mark.parametrize("emit", [False, True], ids=["json", "python"])
@pytest.mark.parametrize("path", EXPLAINED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_explain_is_unchanged(path, emit):
    assert _explained(path, emit) == _explain_golden(path, emit).read_text()


def remake() -> None:
    """Write every golden copy from the current tree."""
    import os
    os.chdir(ROOT)
    for golden, args in RUNS.items():
        report = _without_seconds(json.loads(invoke("run", "--format", "json", *args).output))
        (GOLDEN / golden).write_text(json.dumps(report, indent=2) + "\n")  # no timings: a remake diffs only real changes
    for path in EXPLAINED:
        for emit in (False, True):
            _explain_golden(path, emit).write_text(_explained(path, emit))


if __name__ == "__main__" and sys.argv[1:] == ["--remake"]:
    remake()
