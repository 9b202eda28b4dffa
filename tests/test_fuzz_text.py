"""Fuzzing of the kind that found issue 15: YAML-text mutations of the bundled specs (keys, numbers
with many digits, Unicode digits, sizes whose product overflows int64, folded scalars), folders
with symlinks and deep trees, and control characters in file names checked in every format.

Bounded so CI stays fast (a few dozen cases per test); GRADCHECK_FUZZ_EXAMPLES=N for N per test.
"""

from __future__ import annotations

import os
import re

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from gradcheck.batch import collect
from conftest import BUNDLED, invoke
from test_fuzz import budget, check_text

pytestmark = pytest.mark.slow

NUMBER = re.compile(r"(?<![\w.])\d+(?![\w.])")
KEY = re.compile(r"^(\s*)([A-Za-z_]\w*):", re.M)
HOSTILE_NUMBERS = ["9" * 5000, "99999999999999999999", "67280421310721", "274177", "4611686018427387904",
                   "١٢", "²", "٣", "1e-320", "1e309", "-0", "0", "-1", "1_000", "0x10", "nan", ".inf"]


@st.composite
def text_mutations(draw):
    """A bundled spec with a few edits at the level of its text: numbers, keys, folded expressions."""
    text = draw(st.sampled_from(BUNDLED)).read_text(encoding="utf-8")
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["number", "key", "fold", "check"]))
        if edit == "number":
            spots = list(NUMBER.finditer(text))
            if spots:
                spot = draw(st.sampled_from(spots))
                text = text[:spot.start()] + draw(st.sampled_from(HOSTILE_NUMBERS)) + text[spot.end():]
        elif edit == "key":
            spots = list(KEY.finditer(text))
            if spots:
                spot = draw(st.sampled_from(spots))
                key = draw(st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60))
                text = text[:spot.start(2)] + repr(key) + text[spot.end(2):]
        elif edit == "fold":  # break a line inside a flow or plain scalar, the next line indented
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines[i])))
            lines[i:i + 1] = [lines[i][:j], " " * draw(st.integers(0, 8)) + lines[i][j:]]
            text = "\n".join(lines)
        else:
            mode = draw(st.sampled_from(["sample:" + n for n in HOSTILE_NUMBERS] + ["rtol: 1e-320", "atol: -1"]))
            text += f"\ncheck: {{mode: \"{mode}\"}}\n" if mode.startswith("sample") else f"\ncheck: {{{mode}}}\n"
    return text


@budget(60)
@given(text_mutations())
def test_text_mutations_of_bundled_specs(tmp_path_factory, text):
    check_text(tmp_path_factory, text)


SECRET = "ghp_SECRETTOKEN1234567890abcdefghijklmno"


@st.composite
def trees(draw):
    """A folder plan: nested folders, spec files, symlinks to inside and outside, a deep chain."""
    steps = []
    for _ in range(draw(st.integers(1, 8))):
        depth = draw(st.integers(0, 4))
        folder = "/".join(draw(st.sampled_from("abc")) for _ in range(depth))
        kind = draw(st.sampled_from(["spec", "link_out", "link_in", "link_dir_out", "deep"]))
        steps.append((folder, kind, draw(st.integers(0, 99))))
    return steps


@budget(30)
@given(trees())
def test_generated_folders_read_nothing_outside_and_never_fail_internally(tmp_path_factory, plan):
    base = tmp_path_factory.mktemp("tree")
    (base / "secret.yaml").write_text(SECRET + ": 1\n")
    root = base / "root"
    root.mkdir()
    spec_text = BUNDLED[0].read_text(encoding="utf-8")
    (root / BUNDLED[0].name).write_text(spec_text)  # at least one spec: "no spec files" is a usage error
    for folder, kind, n in plan:
        where = root / folder
        where.mkdir(parents=True, exist_ok=True)
        name = where / f"f{n}.yaml"
        if os.path.lexists(name):
            continue
        if kind == "spec":
            name.write_text(spec_text)
        elif kind == "link_out":
            os.symlink(base / "secret.yaml", name)
        elif kind == "link_in":
            os.symlink(root / BUNDLED[0].name, name)
        elif kind == "link_dir_out":
            if not os.path.lexists(where / f"d{n}"):  # a plan may name the same link twice
                os.symlink(base, where / f"d{n}")
        else:
            deep = where
            for _ in range(60):
                deep = deep / "d"
                deep.mkdir(exist_ok=True)
            (deep / f"f{n}.yaml").write_text(spec_text)
    note(str(plan))
    found = collect([str(root)])
    assert all(os.path.commonpath([str(root), os.path.abspath(p)]) == str(root) for p in found)
    for fmt in ("human", "json"):
        result = invoke("validate", "--format", fmt, root)
        assert result.exit_code in (0, 1), result.output[-500:]
        assert "SECRET" not in result.output and "internal error" not in result.output


CONTROL = st.sampled_from(["\x1b", "\x07", "\x7f", "\x9b", "\u202e", "\u2066", "\x1b[2J", "::error ", "::add-mask::",
                           "##[error]", "%0A", "\t"])


@budget(40)
@given(st.lists(CONTROL | st.text(alphabet="abc:,=", max_size=4), min_size=1, max_size=6).map("".join),
       st.sampled_from(["human", "json", "junit", "github"]))
def test_control_characters_in_names_in_every_format(tmp_path_factory, stem, fmt):
    folder = tmp_path_factory.mktemp("names")
    path = folder / f"{stem}.yaml"
    try:
        path.write_text(f'name: "{stem.encode("unicode_escape").decode("ascii")}"\nparams: 3\n')
    except OSError:
        return  # a name this file system refuses
    result = invoke("run", "--format", fmt, folder)
    assert result.exit_code == 1
    for ch in ("\x1b", "\x07", "\x7f", "\x9b", "\u202e", "\u2066"):
        assert ch not in result.output
    for line in result.output.splitlines():
        if line.lstrip().startswith(("::", "##[")):
            assert fmt == "github" and line.startswith("::error file="), line
