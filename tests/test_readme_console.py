"""The README's console blocks marked `<!-- console: checked -->` are real output: each command is run again.

A marked block holds `$ command` lines, each followed by what it prints. The command is run by a shell
from the repository root, with NO_COLOR (human output off a terminal: 200 columns, no colour). The text
must match word for word; numbers must agree to 1e-8 relative, except errors at round-off level (both
below 1e-6), whose last digits depend on the numpy and BLAS build; runs of spaces count as one (a
column's alignment follows its widest number). After an intended change of output, rerun and paste.
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
NUMBER = re.compile(r"[-+]?\d+\.\d+(?:e[-+]\d+)?|[-+]?\d+e[-+]\d+")


def same_numbers(got: str, want: str) -> bool:
    """Equal up to the numbers' round-off (see the module docstring)."""
    got, want = " ".join(got.split()), " ".join(want.split())
    if NUMBER.split(got) != NUMBER.split(want):
        return False
    for a, b in zip(map(float, NUMBER.findall(got)), map(float, NUMBER.findall(want))):
        if not (abs(a - b) <= 1e-8 * max(abs(a), abs(b)) or max(abs(a), abs(b)) < 1e-6):
            return False
    return True


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
    assert got == expected or same_numbers(got, expected), got


def test_the_comparison_allows_round_off_only():
    assert same_numbers("W  4.7e-09   0.001298915553  PASS", "W   6.1e-09  0.001298915553 PASS")
    assert not same_numbers("W 4.7e-09 0.0012989 PASS", "W 4.7e-09 0.0012990 PASS")
    assert not same_numbers("W 4.7e-09 PASS", "W 4.7e-09 FAIL")
