"""The hostile corpus: every file in tests/hostile is refused, quickly, with its located message.

Each file says what it attacks on its first line (`# attack: ...`) and what gradcheck must answer
on its second (`# error: line:col: message`). Files that cannot carry a comment are listed below.
Bigger or stranger inputs (a 100 MB file, symlink loops, a FIFO, a 1 MB flow list) are made here,
in a temporary folder, rather than committed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gradcheck.guard import check_one
from conftest import FIXTURES, HOSTILE, ROOT, SPECS, invoke

CORPUS = sorted(HOSTILE.iterdir())
WITHOUT_COMMENT = {"utf16_bom.yaml": "1:1: file is UTF-16 encoded; specs must be UTF-8 (save it as UTF-8)"}
QUICK = 2.0  # seconds: refusals happen before any real work


def expected(path: Path) -> str:
    """The `line:col: message` a hostile file must produce."""
    if path.name in WITHOUT_COMMENT:
        return WITHOUT_COMMENT[path.name]
    head = path.read_bytes()[:4000].split(b"\n")
    assert head[0].startswith(b"# attack: "), f"{path.name} must say what it attacks on its first line"
    assert head[1].startswith(b"# error: "), f"{path.name} must give its expected error on its second line"
    return head[1][len(b"# error: "):].decode("utf-8")


def test_the_corpus_covers_every_kind_of_attack():
    names = {p.name.split("_")[0] for p in CORPUS}
    assert {"escape", "bomb", "tag", "alias", "duplicate", "binary", "non", "utf16", "control", "size",
            "number", "hazard", "name"} <= names
    escapes = " ".join(p.read_text("utf-8", "replace") for p in CORPUS if p.name.startswith("escape"))
    for construct in ("__class__", "__import__", "__builtins__", "getattr", ".format(", "lambda", " for ",
                      ":=", "*W", "exp[0]", "f'"):
        assert construct in escapes, construct
    assert len(CORPUS) >= 70


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_hostile_file_is_refused_with_its_located_message(path):
    want = expected(path)
    started = time.perf_counter()
    result = check_one(str(path))
    elapsed = time.perf_counter() - started
    assert result.status == "error", f"{path.name} was accepted: {result.status}"
    assert result.message.startswith(f"{path}:{want}"), result.message[:300]
    line, col = (int(x) for x in want.split(":")[:2])
    assert (result.error.file, result.error.line, result.error.col) == (str(path), line, col)
    assert "\n" not in result.message and len(result.error.message) <= 2200
    assert elapsed < QUICK, f"{path.name} took {elapsed:.2f} s"


def test_long_user_text_is_cut_in_messages():
    result = check_one(str(HOSTILE / "size_long_key.yaml"))
    assert "(100,000 characters)" in result.message and len(result.message) < 300


AUDIT = textwrap.dedent("""\
    import glob, json, sys
    sys.path.insert(0, sys.argv[1])
    from gradcheck.guard import check_one
    from gradcheck.report import render_human, render_json
    from gradcheck.results import summarize
    import io
    warm = [check_one(p) for p in sys.argv[3:5]]  # lazy imports happen here, before the hook
    render_human(summarize(warm), io.StringIO()); render_json(summarize(warm), io.StringIO())
    files = sorted(glob.glob(sys.argv[2] + "/*"))
    modules = set(sys.modules)
    events = []
    WATCH = ("open", "os.", "subprocess", "socket", "exec", "import", "ctypes", "shutil", "pickle", "marshal",
             "urllib", "http", "webbrowser", "builtins.input", "code.", "compile")
    def hook(event, args):
        if event == "compile":  # (source, filename): the file name tells ast.parse from a real compile
            events.append((event, repr(args[1])))
        elif event.startswith(WATCH):
            events.append((event, repr(args)[:300]))
    sys.addaudithook(hook)
    results = [check_one(f) for f in files]
    render_human(summarize(results), io.StringIO()); render_json(summarize(results), io.StringIO())
    print(json.dumps({"events": events, "new_modules": sorted(set(sys.modules) - modules),
                      "statuses": sorted({r.status for r in results}), "count": len(results)}))
""")


@pytest.mark.slow
def test_checking_the_corpus_runs_no_code_imports_nothing_and_opens_only_the_specs(tmp_path):
    """An audit hook watches the whole corpus being checked: no exec, import, process, socket or foreign open."""
    script = tmp_path / "audit.py"
    script.write_text(AUDIT)
    warm = [str(SPECS / "two_layer_network.yaml"), str(FIXTURES / "invalid" / "bad_expression.yaml")]
    out = subprocess.run([sys.executable, str(script), str(ROOT), str(HOSTILE), *warm], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["count"] == len(CORPUS) and report["statuses"] == ["error"]
    assert report["new_modules"] == []
    spec_files = {str(p) for p in CORPUS}
    for event, args in report["events"]:
        if event == "open":
            assert any(repr(p)[1:-1] in args for p in spec_files), args  # only the specs themselves
            assert "O_WRONLY" not in args
        elif event == "compile":  # ast.parse of an expression: parsing only, never executed
            assert "<unknown>" in args
        else:
            pytest.fail(f"unexpected audit event {event}: {args}")
    assert not (tmp_path / "pwned").exists() and not Path("/tmp/pwned").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.py"]


# ----------------------------------------------------------------------------- made on the fly


def test_a_100_mb_file_is_refused_before_reading(tmp_path):
    big = tmp_path / "huge.yaml"
    with open(big, "wb") as fh:
        line = b"# padding padding padding padding padding padding padding padding padding padding\n"
        block = line * (2**20 // len(line) + 1)
        for _ in range(100):
            fh.write(block)
    assert big.stat().st_size > 100 * 2**20
    started = time.perf_counter()
    result = check_one(str(big))
    assert time.perf_counter() - started < QUICK
    assert result.message == (f"{big}:1:1: file is {big.stat().st_size:,} bytes; the limit is 1,000,000 "
                              f"(raise it with --max-file-size)")


@pytest.mark.slow
def test_a_1_mb_flow_list_is_parsed_quickly(tmp_path):
    """Just under the size limit, the worst shape for a YAML parser: 330,000 tiny flow items."""
    wide = tmp_path / "wide.yaml"
    wide.write_text("params: {W: [[1.0]]}\ninput: W\ndata: {x: [" + "1, " * 330_000 + "1]}\n")
    assert 0.9e6 < wide.stat().st_size < 1e6
    started = time.perf_counter()
    result = check_one(str(wide))
    elapsed = time.perf_counter() - started
    assert result.status == "pass", result.message
    assert elapsed < 6, f"took {elapsed:.1f} s"


@pytest.mark.slow
def test_symlink_loops_and_a_fifo_in_a_folder_cost_their_own_rows(tmp_path):
    folder = tmp_path / "specs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a_good.yaml").write_text((SPECS / "ufldl_ica_reconstruction.yaml").read_text())
    os.symlink("loop_b.yaml", folder / "loop_a.yaml")
    os.symlink("loop_a.yaml", folder / "loop_b.yaml")
    os.symlink("..", folder / "sub" / "up")  # a folder loop: not followed
    os.symlink(folder, folder / "sub" / "self.yaml")  # a link to a folder, named like a spec: not followed
    os.mkfifo(folder / "pipe.yaml")  # reading would block forever
    result = subprocess.run([sys.executable, "-m", "gradcheck", "run", "--format", "json", str(folder)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env())
    assert result.returncode == 1, result.stderr
    rows = {Path(s["path"]).name: s for s in json.loads(result.stdout)["specs"]}
    assert sorted(rows) == ["a_good.yaml", "loop_a.yaml", "loop_b.yaml", "pipe.yaml"]
    assert rows["a_good.yaml"]["status"] == "pass"
    assert rows["loop_a.yaml"]["message"].endswith(":1:1: cannot read file: Too many levels of symbolic links")
    assert rows["pipe.yaml"]["message"].endswith(
        ":1:1: not a regular file (a FIFO); specs are read from regular files only")


@pytest.mark.slow
def test_a_folder_mixing_hostile_broken_wrong_and_valid_specs_reports_every_valid_one_correctly(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    sources = {**{f"hostile_{p.name}": p for p in CORPUS},
               **{f"invalid_{p.name}": p for p in sorted((FIXTURES / "invalid").glob("*.yaml"))},
               **{f"wrong_{p.name}": p for p in sorted((FIXTURES / "wrong").glob("*.yaml"))},
               **{f"valid_{p.name}": p for p in sorted(SPECS.glob("*.yaml"))}}
    for name, source in sources.items():
        (folder / name).write_bytes(source.read_bytes())
    os.mkfifo(folder / "hostile_fifo.yaml")
    mixed = _json_run(str(folder))
    assert mixed["summary"]["total"] == len(sources) + 1
    rows = {Path(s["path"]).name: s for s in mixed["specs"]}
    for name, row in rows.items():
        kind = name.split("_")[0]
        assert row["status"] == {"hostile": "error", "invalid": "error", "wrong": "fail", "valid": "pass"}[kind], \
            (name, row["status"], row["message"])
    alone = _json_run(*(str(SPECS / name[len("valid_"):]) for name in sorted(rows) if name.startswith("valid_")))
    for spec in alone["specs"]:
        row = dict(rows["valid_" + Path(spec["path"]).name])
        same = {**row, "path": spec["path"], "seconds": spec.get("seconds")}  # timing aside
        assert same == spec  # the same numbers as when checked on its own


def _json_run(*paths: str) -> dict:
    result = invoke("run", "--format", "json", *paths)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def _env() -> dict:
    """The worktree's package first on the path, whatever is installed."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_control_characters_in_a_file_name_are_escaped_in_the_report(tmp_path):
    spoof = tmp_path / "x\x1b[2J\x1b[32m all PASS\u202e.yaml"
    spoof.write_text((SPECS / "ufldl_ica_reconstruction.yaml").read_text())
    result = invoke("run", str(tmp_path))
    assert result.exit_code == 0
    assert "\x1b" not in result.output and "\u202e" not in result.output
    assert "x\\x1b[2J\\x1b[32m all PASS\\u202e.yaml" in result.output
