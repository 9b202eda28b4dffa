"""Configuration, environment variables, --exclude and standard input (issue 14, item 4)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ICA, INVALID, ROOT, WRONG, invoke

from gradcheck import config


def project(tmp_path, toml: str):
    """A project folder: pyproject.toml, specs/ with a passing spec, an openapi.yaml and a vendor folder."""
    (tmp_path / "pyproject.toml").write_text(toml)
    specs = tmp_path / "specs"
    (specs / "vendor").mkdir(parents=True)
    (specs / "ica.yaml").write_text(ICA.read_text())
    (specs / "openapi.yaml").write_text("openapi: 3.1.0\n")
    (specs / "vendor" / "wrong.yaml").write_text(WRONG.read_text())
    return specs


def run_json(*args, env=None):
    result = invoke("run", "--format", "json", *args, env=env)
    return result.exit_code, json.loads(result.output)


def names(data) -> list[str]:
    return sorted(s["path"].rsplit("/", 1)[-1] for s in data["specs"])


def test_the_table_is_found_upward_from_the_first_path_and_sets_run_options(tmp_path):
    specs = project(tmp_path, '[tool.gradcheck]\nexclude = ["openapi.yaml"]\nextend-exclude = ["vendor"]\n'
                              'method = "richardson"\njobs = 1\nstrict = true\n')
    code, data = run_json(specs / "ica.yaml")
    assert code == 0 and data["specs"][0]["settings"]["method"] == "richardson"
    code, data = run_json(specs)
    assert names(data) == ["ica.yaml"]  # openapi.yaml and vendor/ skipped while walking
    assert config.find(str(specs / "vendor"))[0] == str(tmp_path / "pyproject.toml")


def test_a_file_named_on_the_command_line_is_checked_even_if_excluded(tmp_path):
    specs = project(tmp_path, '[tool.gradcheck]\nexclude = ["openapi.yaml"]\n')
    code, data = run_json(specs / "openapi.yaml")
    assert code == 1 and data["specs"][0]["status"] == "error"


def test_without_configuration_an_openapi_file_is_an_error_and_exclude_on_the_command_line_skips_it(tmp_path):
    specs = project(tmp_path, "[tool.other]\nx = 1\n")
    assert "openapi.yaml" in names(run_json(specs)[1])
    code, data = run_json("--exclude", "openapi.yaml", "--extend-exclude", "vendor/*", specs)
    assert code == 0 and names(data) == ["ica.yaml"]


def test_precedence_command_line_then_environment_then_config_then_spec_then_defaults(tmp_path):
    specs = project(tmp_path, '[tool.gradcheck]\nrtol = 1e-4\nmode = "sample:2"\n')
    own = specs / "own.yaml"
    own.write_text(ICA.read_text() + "check: {rtol: 1e-7, mode: full}\n")
    _, data = run_json(specs / "ica.yaml", own)
    ica, mine = (s["settings"] for s in data["specs"])
    assert (ica["rtol"], ica["mode"]) == (1e-4, "sample:2")  # the config fills what the spec leaves open
    assert (mine["rtol"], mine["mode"]) == (1e-7, "sample:2")  # a spec's own tolerance beats it; mode does not
    _, data = run_json(own, env={"GRADCHECK_RTOL": "3e-5", "GRADCHECK_MODE": "full"})
    assert (data["specs"][0]["settings"]["rtol"], data["specs"][0]["settings"]["mode"]) == (3e-5, "full")
    _, data = run_json("--rtol", "2e-5", own, env={"GRADCHECK_RTOL": "3e-5"})
    assert data["specs"][0]["settings"]["rtol"] == 2e-5
    _, data = run_json("--settings-from", "cli", own)
    assert data["specs"][0]["settings"]["rtol"] == 1e-4  # check: ignored: the config decides


def test_env_variables_name_the_long_option(tmp_path):
    result = invoke("run", ICA, env={"GRADCHECK_FORMAT": "json", "GRADCHECK_MAX_MEMORY": "1G"})
    assert result.exit_code == 0 and json.loads(result.output)["summary"]["pass"] == 1


@pytest.mark.parametrize("toml, message", [
    ("[tool.gradcheck]\nrtool = 1e-6\n", 'unknown key "rtool" in [tool.gradcheck] (did you mean "rtol"?)'),
    ("[tool.gradcheck]\nrtol = 5\n", "[tool.gradcheck] rtol: rtol must be from 1e-15 to 0.1, not 5"),
    ("[tool.gradcheck\n", "not valid TOML"),
])
def test_a_bad_configuration_is_a_usage_error_naming_the_file(tmp_path, toml, message):
    specs = project(tmp_path, toml)
    result = invoke("run", specs / "ica.yaml")
    assert result.exit_code == 2 and f"{tmp_path / 'pyproject.toml'}: " in result.output
    assert message in result.output and "Traceback" not in result.output


def test_keys_of_another_command_are_ignored_by_validate(tmp_path):
    specs = project(tmp_path, "[tool.gradcheck]\nrtol = 1e-4\nstrict = true\n")
    assert invoke("validate", specs / "ica.yaml").exit_code == 0


def test_python_310_without_tomllib_says_what_is_needed(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.gradcheck]\nrtol = 1e-4\n")
    monkeypatch.setitem(sys.modules, "tomllib", None)  # import fails, as on 3.10
    with pytest.raises(Exception) as caught:
        config.read(str(tmp_path / "pyproject.toml"))
    assert "needs Python 3.11 or later" in str(caught.value)
    (tmp_path / "pyproject.toml").write_text("[tool.other]\nname = 'gradcheck'\n")
    assert config.read(str(tmp_path / "pyproject.toml")) is None  # another table: nothing to read


def test_standard_input_is_one_spec_located_as_stdin():
    result = invoke("run", "--format", "json", "-", input=ICA.read_text())
    data = json.loads(result.output)
    assert result.exit_code == 0 and data["specs"][0]["path"] == "<stdin>"
    bad = invoke("run", "-", ICA, input=INVALID.read_text())
    assert bad.exit_code == 1 and "<stdin>:6:17: no such activation" in bad.output
    assert invoke("validate", "-", input=ICA.read_text()).exit_code == 0
    assert invoke("run", "-", "-", input="").exit_code == 2


@pytest.mark.slow  # a real process with -j 2 workers
def test_standard_input_crosses_to_workers():
    proc = subprocess.run([sys.executable, "-m", "gradcheck", "run", "-j", "2", "--format", "json", "-", str(ICA)],
                          input=INVALID.read_text(), capture_output=True, text=True, cwd=ROOT, timeout=120)
    data = json.loads(proc.stdout)
    assert [s["path"] for s in data["specs"]][0] == "<stdin>" and data["specs"][0]["problems"][0]["line"] == 6


def test_force_exclude_applies_the_globs_to_named_files_as_pre_commit_names_them(tmp_path):
    specs = project(tmp_path, '[tool.gradcheck]\nextend-exclude = ["openapi.yaml"]\n')
    code, data = run_json("--force-exclude", specs / "ica.yaml", specs / "openapi.yaml")
    assert code == 0 and names(data) == ["ica.yaml"]
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text()
    assert hooks.count("--quiet --force-exclude") == 2


def test_limits_and_output_options_are_settable_too(tmp_path):
    specs = project(tmp_path, '[tool.gradcheck]\nmax-elements = 10\nformat = "json"\nextend-exclude = ["*"]\n')
    result = invoke("run", specs / "ica.yaml")  # a named file is checked; the walk would skip everything
    data = json.loads(result.output)
    assert result.exit_code == 1 and "--max-elements" in data["specs"][0]["message"]
    assert invoke("run", specs).exit_code == 2  # every file excluded: no spec files
