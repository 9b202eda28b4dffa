"""The README's console blocks marked `<!-- console: checked -->` are real output: each command is run again.

A marked block holds `$ command` lines, each followed by what it prints. The command is run by a shell
from the repository root, with NO_COLOR (human output off a terminal: 200 columns, no colour); trailing
spaces are ignored. After an intended change of output, rerun the commands and paste.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

MARK = "<!-- console: checked -->"
BLOCK = re.compile(re.escape(MARK) + r"\n```console\n(.*?)\n```", re.S)


def examples() -> list[tuple[str, str]]:
    """(command, expected output) for every command of every marked block."""
    found = []
    for block in BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")):
        for part in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, output = part.partition("\n")
            found.append((command, output.rstrip("\n")))
    return found


def test_the_readme_has_checked_blocks():
    assert len(examples()) >= 5


@pytest.mark.slow  # a process per command
@pytest.mark.parametrize("command, expected", examples(), ids=[c for c, _ in examples()])
def test_readme_console_output_is_real(command, expected):
    bin_dir = os.path.dirname(sys.executable)  # this environment's gradcheck
    env = {**os.environ, "NO_COLOR": "1", "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("GITHUB_ACTIONS", None)
    out = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    got = "\n".join(line.rstrip() for line in out.stdout.rstrip("\n").split("\n"))
    assert got == expected
