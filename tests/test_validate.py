"""`gradcheck validate`: structure, names, shapes and expressions; no numbers; same formats and exit codes."""

import json
import xml.etree.ElementTree as ET

import pytest

from conftest import FIXTURES, SPECS, first_line_tag, invoke

INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
NUMERIC_ONLY = {"non_finite_objective.yaml"}  # a problem only numbers can show: valid structure


def test_bundled_specs_are_valid():
    result = invoke("validate", str(SPECS))
    count = len(list(SPECS.glob("*.yaml")))
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith(f"{count} specs: {count} valid, 0 invalid")
    assert "VALID" in result.stdout and "J =" not in result.stdout


def test_wrong_fixtures_are_valid_unless_an_expect_has_the_wrong_shape():
    data = json.loads(invoke("validate", "--format", "json", str(FIXTURES / "wrong")).stdout)
    invalid = {s["path"]: s["message"] for s in data["specs"] if s["status"] != "pass"}
    typo = str(FIXTURES / "wrong" / "two_layer_db2_typo.yaml")  # db2 = 1/m sum(dZ1): (4, 1), not (1, 1)
    assert invalid == {typo: f"{typo}:41:7: expect for b2 has shape (4, 1) but b2 has shape (1, 1)"}


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_fixture_is_located_like_run(path):
    data = json.loads(invoke("validate", "--format", "json", str(path)).stdout)
    (spec,) = data["specs"]
    if path.name in NUMERIC_ONLY:
        assert spec["status"] == "pass"
        return
    assert spec["status"] == "error"
    assert spec["message"].startswith(f"{path}:{first_line_tag(path, 'error')}")


def test_exit_codes():
    assert invoke("validate", str(SPECS / "ufldl_ica_reconstruction.yaml")).exit_code == 0
    assert invoke("validate", str(FIXTURES / "invalid" / "unknown_key.yaml")).exit_code == 1
    assert invoke("validate", "/no/such/file.yaml").exit_code == 2


def test_computes_nothing(monkeypatch):
    """Validation draws no values and evaluates no network."""
    import gradcheck.network
    import gradcheck.spec

    def forbidden(*_, **__):
        raise AssertionError("validate must not compute")

    monkeypatch.setattr(gradcheck.spec, "draw_values", forbidden)
    monkeypatch.setattr(gradcheck.network, "objective", forbidden)
    result = invoke("validate", str(SPECS))
    assert result.exit_code == 0, result.output


def test_expect_of_the_wrong_shape_is_an_error_at_the_formula(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("params: {W: {shape: [2, 3]}}\ninput: W\nlayers: [{activation: square}]\nexpect: {W: 2 * W.T}\n")
    result = invoke("validate", str(spec))
    assert result.exit_code == 1
    assert f"{spec}:4:13: expect for W has shape (3, 2) but W has shape (2, 3)" in result.stdout


def test_formats():
    bad = str(FIXTURES / "invalid" / "shape_mismatch.yaml")
    good = str(SPECS / "softmax_regression.yaml")
    data = json.loads(invoke("validate", "--format", "json", good, bad).stdout)
    assert [s["status"] for s in data["specs"]] == ["pass", "error"]
    assert data["summary"] == {"total": 2, "pass": 1, "fail": 0, "error": 1}
    assert set(data["specs"][0]) == {"path", "name", "status", "message", "objective", "params", "seconds", "settings",
                                     "problems"}
    assert data["specs"][0]["settings"] is None  # nothing was computed
    suite = ET.fromstring(invoke("validate", "--format", "junit", good, bad).stdout).find("testsuite")
    assert suite.get("name") == "gradcheck validate" and suite.get("errors") == "1"
    github = invoke("validate", "--format", "github", good, bad).stdout.splitlines()
    assert github[0].startswith(f"::error file={bad},line=9,col=13,title=gradcheck%3A invalid spec::shape mismatch")
    assert github[1] == "2 specs: 1 valid, 1 invalid"
    assert invoke("validate", "-q", good, bad).stdout.count("VALID") == 1  # quiet: only the invalid one


@pytest.mark.slow
def test_jobs():
    one = json.loads(invoke("validate", "--format", "json", str(FIXTURES / "invalid")).stdout)
    two = json.loads(invoke("validate", "-j", "2", "--format", "json", str(FIXTURES / "invalid")).stdout)
    for data in (one, two):
        for s in data["specs"]:
            s.pop("seconds")
    assert one == two
