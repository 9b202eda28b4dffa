"""The pre-commit hooks run real commands on the files they are meant for."""

import re
import shlex

import pytest
import yaml

from conftest import ICA, ROOT, UNKNOWN_KEY, invoke

HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())


def test_hooks_are_declared():
    assert {h["id"] for h in HOOKS} == {"gradcheck", "gradcheck-validate"}
    for hook in HOOKS:
        assert hook["language"] == "python" and hook["entry"].split()[0] == "gradcheck"
        assert set(hook) >= {"id", "name", "entry", "language", "files"}


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h["id"])
def test_files_pattern_matches_specs_folders_only(hook):
    pattern = re.compile(hook["files"])
    for path in ("specs/a.yaml", "specs/sub/b.yml", "ml/specs/c.yaml"):
        assert pattern.search(path), path
    for path in (".github/workflows/ci.yml", "config.yaml", "specs/readme.md", "myspecs/a.yaml"):
        assert not pattern.search(path), path


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h["id"])
def test_entry_runs_on_the_changed_files(hook):
    args = shlex.split(hook["entry"])[1:]
    good = invoke(*args, ICA)
    assert good.exit_code == 0, good.output
    bad = invoke(*args, UNKNOWN_KEY)
    assert bad.exit_code == 1 and "unknown key" in bad.output
