"""`gradcheck sweep` shares run's settings (the spec's check.method first of all), its output options and
many paths, names the error it plots, sweeps an expect formula, and draws with matplotlib when asked."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import ICA, INVALID, ROOT, WRONG, invoke
from gradcheck import numeric

RICHARDSON_SPEC = ICA.read_text() + "check: {method: richardson}\n"


@pytest.fixture
def richardson(tmp_path):
    path = tmp_path / "ica_richardson.yaml"
    path.write_text(RICHARDSON_SPEC)
    return path


def sweep_json(*args) -> tuple[int, dict]:
    result = invoke("sweep", "--format", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_the_marked_step_is_the_one_the_specs_own_method_uses(richardson):
    code, data = sweep_json(richardson)
    curve = data["specs"][0]["params"][0]
    theta = 1.0  # max(1, |θ|) at the worst entry of ICA's W is 1 unless the entry is larger
    assert code == 0 and curve["method"] == "richardson"
    assert curve["chosen_step"] >= numeric.RICHARDSON_EPS * theta and curve["chosen_step"] > 1e-4  # 7.4e-4, not 6.1e-6
    run = json.loads(invoke("run", "--format", "json", richardson).stdout)["specs"][0]
    assert run["settings"]["method"] == "richardson"
    assert curve["index"] == run["params"][0]["backprop"]["worst_index"]  # the entry run reports
    human = invoke("sweep", richardson).stdout
    assert "the step the check uses (7.40e-04, richardson)" in human or "richardson)" in human
    assert "against richardson differences" in human
    central = sweep_json("--method", "central", richardson)[1]["specs"][0]["params"][0]
    assert central["method"] == "central" and central["chosen_step"] < 1e-4  # the option beats the spec, as in run
    pinned = sweep_json("--settings-from", "cli", richardson)[1]["specs"][0]["params"][0]
    assert pinned["method"] == "central"


def test_the_seed_is_run_s_seed_so_the_swept_entry_is_the_checked_one():
    _, data = sweep_json("--seed", "5", ICA)
    run = json.loads(invoke("run", "--seed", "5", "--format", "json", ICA).stdout)["specs"][0]
    assert data["specs"][0]["params"][0]["index"] == run["params"][0]["backprop"]["worst_index"]


def test_many_paths_and_an_invalid_one_located():
    result = invoke("sweep", "--format", "json", ICA, WRONG, INVALID)
    data = json.loads(result.stdout)
    assert result.exit_code == 1
    assert [s["path"] for s in data["specs"]] == [str(ICA), str(WRONG), str(INVALID)]
    assert [len(s["params"]) for s in data["specs"]] == [1, 4, 0]
    assert data["specs"][2]["error"].startswith(f"{INVALID}:6:17: no such activation")
    human = invoke("sweep", ICA, INVALID).stdout
    assert f"{INVALID}:6:17: no such activation" in human and "ICA reconstruction cost" in human
    folder = invoke("sweep", "--format", "json", ROOT / "tests" / "fixtures" / "kinks")
    assert len(json.loads(folder.stdout)["specs"]) > 1  # a folder, as run takes one


def test_each_curve_names_the_error_it_plots():
    human = invoke("sweep", ICA).stdout
    assert "y: relative error |g − n| / max(|g|, |n|) of backprop against central differences" in human
    curve = sweep_json(ICA)[1]["specs"][0]["params"][0]
    assert curve["error"] == "relative error |g − n| / max(|g|, |n|)" and curve["side"] == "backprop"


def test_an_expect_formula_can_be_swept():
    _, data = sweep_json("--against", "expect", WRONG)
    curves = {c["param"]: c for c in data["specs"][0]["params"]}
    assert set(curves) == {"W1", "b1", "W2", "b2"} and curves["b2"]["side"] == "expect"
    assert min(curves["b2"]["errors"]) > 0.5  # a wrong formula: no step makes it agree
    assert min(curves["W2"]["errors"]) < 1e-8  # a right one has its V
    backprop = {c["param"]: c for c in sweep_json(WRONG)[1]["specs"][0]["params"]}
    assert min(backprop["b2"]["errors"]) < 1e-6
    assert "of the expect formula against central differences" in invoke("sweep", "--against", "expect", WRONG).stdout
    no_expect = invoke("sweep", "--against", "expect", ROOT / "specs" / "two_layer_network.yaml")
    if "expect" not in (ROOT / "specs" / "two_layer_network.yaml").read_text():
        assert "note: no expect formula for" in no_expect.stdout


def test_output_options_as_run_has_them(tmp_path):
    target = tmp_path / "sweep.txt"
    result = invoke("sweep", "-o", target, ICA)
    assert result.exit_code == 0 and result.stdout == "" and "●" in target.read_text()
    narrow = invoke("sweep", "--width", "50", ICA).stdout
    plot_lines = [line for line in narrow.splitlines() if "│" in line]
    assert plot_lines and max(len(line) for line in plot_lines) <= 50
    assert "\x1b[" in invoke("sweep", "--color", "always", ICA).stdout
    assert "\x1b[" not in invoke("sweep", "--color", "never", ICA).stdout


@pytest.mark.slow  # matplotlib's first import builds its font cache
def test_plot_draws_svg_and_png_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    for name, magic in (("v.svg", b"<?xml"), ("v.png", b"\x89PNG")):
        result = invoke("sweep", "--plot", tmp_path / name, ICA, WRONG)
        assert result.exit_code == 0, result.output
        data = (tmp_path / name).read_bytes()
        assert data.startswith(magic) and len(data) > 5_000
        assert "5 curves drawn in" in result.stderr
    assert b"ICA reconstruction cost" in (tmp_path / "v.svg").read_bytes()


def test_plot_without_matplotlib_is_a_clear_usage_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    result = invoke("sweep", "--plot", tmp_path / "v.png", ICA)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'--plot'" in result.output and 'pip install "gradcheck[plot]"' in result.output
    assert not (tmp_path / "v.png").exists()
    wrong_suffix = invoke("sweep", "--plot", tmp_path / "v.pdf", ICA)
    assert wrong_suffix.exit_code == 2 and ".png or .svg" in wrong_suffix.output


@pytest.mark.slow
def test_a_spec_name_cannot_inject_matplotlib_mathtext(tmp_path):
    pytest.importorskip("matplotlib")
    spec = tmp_path / "dollar.yaml"
    spec.write_text('name: "cost $\\\\frac{a}{$ and $x^$"\n' + "\n".join(ICA.read_text().splitlines()[1:]) + "\n")
    result = invoke("sweep", "--plot", tmp_path / "d.svg", spec)
    assert result.exit_code == 0, result.output


def test_the_v_has_its_bottom_near_the_marked_step_for_richardson_too(richardson):
    import gradcheck
    from gradcheck.sweep import sweep

    for curve in sweep(gradcheck.load(richardson)):
        errors = np.array(curve.errors)
        at_chosen = errors[np.argmin(np.abs(np.log10(curve.steps) - np.log10(curve.chosen_step)))]
        assert curve.method == "richardson" and at_chosen < 1e3 * errors.min()
