"""Issue 15, hardening second pass: each reproducer of the independent attack, kept as a test.

Inputs that cannot be committed (symlinks out of the tree, 1,000-level folders, control characters
in file names) are made here in a temporary folder.
"""

from __future__ import annotations

import json
import os

import pytest

from gradcheck.batch import collect
from gradcheck.guard import check_one
from conftest import ICA, invoke

SECRET = "ghp_SECRETTOKEN1234567890abcdefghijklmno"


def tree_with_links(tmp_path):
    """specs/ holding a symlink to a secret outside it, one to a file inside it, and a real spec."""
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    (tmp_path / "secret_key.txt").write_text(SECRET + ": 1\n")
    specs = tmp_path / "specs"
    (specs / "sub").mkdir(parents=True)
    os.symlink("../secret.txt", specs / "innocent.yaml")
    os.symlink(tmp_path / "secret_key.txt", specs / "sub" / "key.yaml")
    (specs / "ica.yaml").write_text(ICA.read_text())
    os.symlink("../ica.yaml", specs / "sub" / "inside.yaml")
    return specs


@pytest.mark.parametrize("fmt", ["human", "json", "junit", "github"])
def test_a_symlink_out_of_the_scanned_folder_is_not_followed(tmp_path, fmt):
    specs = tree_with_links(tmp_path)
    result = invoke("run", "--format", fmt, specs)
    assert SECRET not in result.output and "SECRETTOKEN" not in result.output
    assert result.output.count("symbolic link to a file outside") >= 2, result.output
    assert result.exit_code == 1


def test_a_symlink_inside_the_scanned_folder_is_followed(tmp_path):
    specs = tree_with_links(tmp_path)
    rows = {os.path.basename(r.path): r for r in map(check_one, collect([str(specs)]))}
    assert rows["inside.yaml"].status == "pass" and rows["ica.yaml"].status == "pass"
    assert rows["innocent.yaml"].status == "error"


def test_an_explicit_path_must_stay_in_its_own_folder(tmp_path):
    specs = tree_with_links(tmp_path)
    out = invoke("run", specs / "innocent.yaml").output
    assert "symbolic link to a file outside" in out and "SECRET" not in out
    assert invoke("run", specs / "sub" / "inside.yaml").exit_code == 1  # ../ica.yaml leaves sub/
    assert "SECRET" not in invoke("explain", specs / "innocent.yaml").output
    assert "SECRET" not in invoke("validate", specs / "sub" / "key.yaml").output


def test_content_that_is_not_a_spec_is_echoed_only_as_a_short_escaped_excerpt(tmp_path):
    (tmp_path / "s.yaml").write_text(f'"{SECRET}"\n')
    (tmp_path / "k.yaml").write_text(f"{SECRET}: 1\n")
    (tmp_path / "d.yaml").write_text(f"{SECRET}: 1\n{SECRET}: 2\n")
    for name in ("s.yaml", "k.yaml", "d.yaml"):
        message = check_one(str(tmp_path / name)).message
        assert SECRET not in message and SECRET[:24] in message, message


@pytest.mark.slow
def test_a_folder_tree_1000_levels_deep_is_walked_without_recursion_error(tmp_path):
    deep = tmp_path
    for _ in range(1000):  # one level at a time: os.makedirs itself recurses
        deep = deep / "d"
        deep.mkdir()
    (deep / "ica.yaml").write_text(ICA.read_text())
    try:
        assert [os.path.basename(p) for p in collect([str(tmp_path)])] == ["ica.yaml"]
        result = invoke("run", "--format", "json", tmp_path)
        assert result.exit_code == 0, result.output[-500:]
        assert json.loads(result.output)["summary"]["pass"] == 1
    finally:  # bottom up, here: pytest's own clean-up (shutil.rmtree) recurses and would fail
        (deep / "ica.yaml").unlink()
        while deep != tmp_path:
            deep.rmdir()
            deep = deep.parent


# ----------------------------------------------------------------------------- item 2: escaping per format

CONTROL = "\x1b[31m\x07\x7f\x9b\u202e\u2066"
FORGED = "::error file=README.md,line=1,title=Security::forged"


def forged_folder(tmp_path, source) -> None:
    """A failing spec named like a workflow command, in a file whose name holds control characters."""
    text = "".join(line for line in source.read_text().splitlines(True) if not line.startswith("name:"))
    (tmp_path / f"{CONTROL}::error x.yaml").write_text(f'name: "{FORGED}"\n' + text)
    (tmp_path / "broken.yaml").write_text(f'name: "{FORGED}"\nparams: 3\n')


def command_lines(output: str) -> list[str]:
    """Lines a CI runner would take for a workflow command (it trims leading blanks first)."""
    return [line for line in output.splitlines() if line.lstrip().startswith(("::", "##[", "##vso["))]


@pytest.mark.parametrize("fmt", ["human", "json", "junit", "github", "sarif", "gitlab", "html"])
def test_control_characters_and_forged_commands_are_escaped_in_every_format(tmp_path, fmt):
    from conftest import WRONG

    forged_folder(tmp_path, WRONG)
    for args in (["run", "-v"], ["validate"]):
        result = invoke(*args, "--format", fmt, tmp_path)
        out = result.output
        assert result.exit_code == 1, out
        for ch in "\x1b\x07\x7f\x9b\u202e\u2066":  # never raw, in any format
            assert ch not in out, (fmt, repr(ch))
        if fmt not in ("github", "sarif", "gitlab") or args[0] == "run":  # these name only the files with a problem
            assert "\\x1b" in out or "\\u001b" in out or (fmt == "sarif" and "%1B" in out)  # sarif: a URI
        commands = command_lines(out)
        if fmt == "github":  # our own annotations only: the forged text is inside an escaped property or message
            assert all(line.startswith("::error file=") for line in commands)
            assert all("README.md,line=1" not in line.split("::")[1] for line in commands), commands
        else:
            assert commands == [], commands


def test_stderr_messages_are_escaped_too(tmp_path):
    path = tmp_path / f"{CONTROL}.yaml"
    path.write_text(f'name: "{FORGED}"\nparams: 3\n')
    result = invoke("explain", path)
    assert result.exit_code == 1 and "\x1b" not in result.output and "\\x1b" in result.output


def test_a_wrapped_human_line_cannot_start_with_a_command():
    from gradcheck.formats.escape import CommandSafeStream, human
    import io

    sink = io.StringIO()
    stream = CommandSafeStream(sink)
    stream.write("a long line that rich wrapped\n   ::add-mask::x")
    stream.write("\n##[error]y\n##vso[task.setvariable]z\nfine\n")
    stream.flush()
    assert command_lines(sink.getvalue()) == []
    assert human("::stop-commands::t") == "\\::stop-commands::t" and human("a\x9bb") == "a\\x9bb"


# ----------------------------------------------------------------------------- item 7: settings and their ranges

WRONG_SQUARE = """\
params:
  W: {shape: [2, 3]}
data:
  x: {shape: [3, 4]}
input: x
layers:
  - {weight: W, activation: square}
objective: sum
expect:
  W: 17 * W
"""


@pytest.mark.parametrize("args", [["--rtol", "nan"], ["--rtol", "inf"], ["--rtol", "1e-320"], ["--rtol", "1"],
                                  ["--atol", "nan"], ["--atol", "inf"], ["--atol", "-1"], ["--atol", "1e9"],
                                  ["--eps", "nan"], ["--eps", "0"], ["--seed", "-1"], ["--seed", str(2**128)],
                                  ["--timeout", "nan"], ["--timeout", "inf"], ["--timeout", "-1"],
                                  ["--memory", "0"], ["--max-memory", "99999999999G"], ["--max-elements", str(2**70)],
                                  ["--width", "10"], ["-j", "100000"]])
def test_a_setting_outside_its_range_on_the_command_line_is_a_usage_error(args):
    result = invoke("run", *args, ICA)
    assert result.exit_code == 2 and "Invalid value" in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["validate", "sweep", "explain"])
def test_timeout_nan_is_refused_by_every_command_that_takes_it(command):
    result = invoke(command, "--timeout", "nan", ICA)
    assert result.exit_code == 2, result.output


def test_a_spec_cannot_loosen_settings_pinned_with_settings_from_cli(tmp_path):
    from conftest import WRONG

    loose = tmp_path / "loose.yaml"
    loose.write_text(WRONG.read_text() + "check: {rtol: 0.1, atol: 1e-3, mode: 'sample:1'}\n")
    pinned = invoke("run", "--settings-from", "cli", "--format", "json", loose)
    report = json.loads(pinned.output)["specs"][0]
    assert report["settings"]["rtol"] == 1e-6 and report["settings"]["atol"] == 0.0
    assert report["settings"]["mode"] == "full" and pinned.exit_code == 1
    by_spec = json.loads(invoke("run", "--format", "json", loose).output)["specs"][0]
    assert by_spec["settings"]["rtol"] == 0.1
    env = invoke("run", "--format", "json", loose, env={"GRADCHECK_SETTINGS_FROM": "cli"})
    assert json.loads(env.output)["specs"][0]["settings"]["rtol"] == 1e-6


def test_the_17w_expect_fails_at_every_valid_tolerance(tmp_path):
    spec = tmp_path / "square.yaml"
    spec.write_text(WRONG_SQUARE)
    for args in (["--rtol", "0.1"], ["--rtol", "1e-15"], ["--atol", "1e-3"], ["--eps", "0.1"], ["--eps", "1e-300"]):
        result = invoke("run", *args, "--format", "json", spec)
        assert result.exit_code == 1, (args, result.output[-400:])


# ----------------------------------------------------------------------------- item 3: located errors, not internal ones

RNN_INIT = """\
params:
  Wh: {shape: [2, 2]}
  Wx: {shape: [2, 3]}
  h0: {shape: [1, 1]}
data:
  x: {shape: [12, 5]}
input: x
layers:
  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 4, activation: tanh, init: h0, output: last}
"""


def test_a_recurrent_init_that_broadcasts_is_used_broadcast(tmp_path):
    """init (1, 1) for a hidden size of 2 (was: matmul core dimension mismatch): one number for every h_0 entry."""
    spec = tmp_path / "rnn.yaml"
    spec.write_text(RNN_INIT)
    assert check_one(str(spec)).status == "pass"
    spec.write_text(RNN_INIT.replace("[1, 1]", "[2, 1]"))
    assert check_one(str(spec)).status == "pass"


# ----------------------------------------------------------------------------- items 8, 9, 13: places, warnings

def column_is_on_its_line(message_file, line: int, col: int) -> bool:
    """Whether file:line:col points into that line (at most just after its last character)."""
    lines = open(message_file, encoding="utf-8", errors="replace").read().split("\n")
    return 1 <= line <= len(lines) and 1 <= col <= len(lines[line - 1]) + 1


@pytest.mark.slow
def test_every_hostile_error_points_inside_its_line():
    from conftest import HOSTILE

    for path in sorted(HOSTILE.iterdir()):
        error = check_one(str(path)).error
        if path.stat().st_size < 200_000:
            assert column_is_on_its_line(path, error.line, error.col), (path.name, error.line, error.col)


def test_no_python_warning_reaches_the_user(tmp_path):
    import warnings

    from conftest import HOSTILE

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_one(str(HOSTILE / "warning_invalid_decimal_literal.yaml"))
        check_one(str(HOSTILE / "location_folded_expect.yaml"))
    assert [str(w.message) for w in caught] == []


# ----------------------------------------------------------------------------- items 10, 13: -o and a full disk

def test_the_report_file_is_replaced_whole_and_no_temporary_file_is_left(tmp_path):
    from conftest import SPECS

    target = tmp_path / "report.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    assert invoke("run", "--format", "json", "-o", target, SPECS / "max_pooling.yaml").exit_code == 0
    assert json.loads(target.read_text())["summary"]["pass"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert target.stat().st_mode & 0o777 == 0o640


def test_a_failed_run_leaves_the_old_report(tmp_path, monkeypatch):
    from gradcheck import report as report_module

    target = tmp_path / "report.json"
    target.write_text("old")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in a reporter")

    monkeypatch.setattr(report_module, "render_json", broken)
    result = invoke("run", "--format", "json", "-o", target, ICA)
    assert result.exit_code == 2 and target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


@pytest.mark.slow
def test_two_runs_writing_one_report_leave_valid_json(tmp_path):
    import subprocess
    import sys

    from conftest import SPECS

    target = tmp_path / "report.json"
    command = [sys.executable, "-m", "gradcheck", "run", "--format", "json", "-o", str(target), str(SPECS)]
    runs = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(3)]
    assert [r.wait(timeout=120) for r in runs] == [0, 0, 0]
    assert json.loads(target.read_text())["summary"]["total"] == len(list(SPECS.glob("*.yaml")))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["run", "--format", "json"], ["run"], ["explain"], ["validate", "--format", "junit"]])
def test_a_full_disk_is_a_clear_message_and_exit_2(args):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "gradcheck", *args, str(ICA)], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "gradcheck: cannot write the report: No space left on device"


def test_an_output_error_is_a_clear_message_not_an_internal_error(monkeypatch):
    import errno

    from gradcheck import report as report_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report_module, "render_json", full)
    result = invoke("run", "--format", "json", ICA)
    assert result.exit_code == 2 and "cannot write the report: No space left on device" in result.output
    assert "internal error" not in result.output


# ----------------------------------------------------------------------------- item 4: symbolic size

def cubic_layers(count: int) -> str:
    layers = "".join("  - {weight: W, activation: {f: 'z*z*z', df: '3*z*z'}}\n" for _ in range(count))
    return f"params:\n  W: {{shape: [2, 2]}}\ndata:\n  x: {{shape: [2, 3]}}\ninput: x\nlayers:\n{layers}"


@pytest.mark.parametrize("fmt", ["human", "json"])
def test_explain_bounds_symbolic_growth_with_a_located_note(tmp_path, fmt):
    import time

    spec = tmp_path / "cubic.yaml"
    spec.write_text(cubic_layers(16))
    started = time.perf_counter()
    result = invoke("explain", "--format", fmt, spec)
    assert time.perf_counter() - started < 5 and result.exit_code == 0
    assert f"of layer 7 (W, custom) ({spec}:13:5) would print 10,931 nodes; explain stops at 10,000" in result.output
    assert len(result.output) < 2_000_000


def test_emit_python_stays_linear_in_depth(tmp_path):
    spec = tmp_path / "cubic.yaml"
    spec.write_text(cubic_layers(64))
    result = invoke("explain", "--emit", "python", spec)
    assert result.exit_code == 0 and len(result.output) < 50_000


# ----------------------------------------------------------------------------- item 12: time outside run, and linear work

def grid_spec(terms: int, layers: int) -> str:
    """`terms` terms of `layers` tanh layers, every weight its own 1×1 param (issue 15: 64 × 64 took 75 s)."""
    params = "".join(f"  W{t}_{l}: {{shape: [1, 1]}}\n" for t in range(terms) for l in range(layers))
    rows = "".join("  - {input: x, layers: [" + ", ".join(f"{{weight: W{t}_{l}, activation: tanh}}"
                                                          for l in range(layers)) + "], objective: sum}\n"
                   for t in range(terms))
    return f"params:\n{params}data:\n  x: {{shape: [1, 1]}}\nterms:\n{rows}"


def test_work_per_param_does_not_grow_with_the_whole_spec(tmp_path, monkeypatch):
    """Layer walks grow with terms × layers (linear), not with their square."""
    from gradcheck import model as model_module, rowpatch

    calls = {"n": 0}
    original = model_module.layer_refs

    def counted(layer):
        calls["n"] += 1
        return original(layer)

    monkeypatch.setattr(model_module, "layer_refs", counted)
    monkeypatch.setattr(rowpatch, "layer_refs", counted)
    counts = []
    for terms in (4, 16):
        spec = tmp_path / f"grid{terms}.yaml"
        spec.write_text(grid_spec(terms, 4))
        calls["n"] = 0
        assert check_one(str(spec)).status == "pass"
        counts.append(calls["n"])
    # 4× the terms, 4× the params: ~4× the walks (16× when each param walked every term)
    assert counts[1] <= 5 * counts[0], counts


@pytest.mark.slow
def test_64_terms_of_64_layers_check_in_seconds(tmp_path):
    import time

    spec = tmp_path / "grid.yaml"
    spec.write_text(grid_spec(64, 64))
    started = time.perf_counter()
    assert check_one(str(spec)).status == "pass"
    assert time.perf_counter() - started < 30  # 75 s before (3.8 s on the machine this was written on)


@pytest.mark.slow
def test_explain_and_sweep_stop_at_their_timeout(monkeypatch):
    import time as time_module

    from conftest import SLOW  # noqa: F401 - the runaway spec of the run tests
    from gradcheck import explain as explain_module, sweep as sweep_module

    def forever(*args, **kwargs):
        time_module.sleep(30)

    monkeypatch.setattr(explain_module, "explain", forever)
    monkeypatch.setattr(sweep_module, "sweep", forever)
    for command in ("explain", "sweep"):
        started = time_module.perf_counter()
        result = invoke(command, "--timeout", "0.3", ICA)
        assert time_module.perf_counter() - started < 5
        assert result.exit_code == 1 and "gave up after 0.3 s" in result.output, (command, result.output)


def test_validate_has_a_timeout_too(tmp_path):
    result = invoke("validate", "--timeout", "0", ICA)
    assert result.exit_code == 0


# ----------------------------------------------------------------------------- item 6: memory estimates bound the peak

MEMORY_SPECS = {
    "maxpool_overlapping": "params:\n  x: {shape: [400, 2]}\ninput: x\nlayers:\n"
                           "  - {maxpool: {image: [1, 20, 20], size: [8, 8], stride: 1}}\n",
    "conv_large_kernel": "params:\n  x: {shape: [400, 2]}\ndata:\n  K: {shape: [2, 144]}\ninput: x\nlayers:\n"
                         "  - {conv: {kernel: K, image: [1, 20, 20], size: [12, 12]}, activation: tanh}\n",
    "conv_kernel_param": "params:\n  K: {shape: [2, 144]}\ndata:\n  x: {shape: [400, 2]}\ninput: x\nlayers:\n"
                         "  - {conv: {kernel: K, image: [1, 20, 20], size: [12, 12]}, activation: tanh}\n",
    "recurrent": "params:\n  Wh: {shape: [10, 10]}\n  Wx: {shape: [10, 5]}\ndata:\n  x: {shape: [200, 3]}\n"
                 "input: x\nlayers:\n  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 40}\n",
    "dense": "params:\n  W: {shape: [30, 40]}\ndata:\n  x: {shape: [40, 300]}\ninput: x\nlayers:\n"
             "  - {weight: W, activation: tanh}\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MEMORY_SPECS))
def test_the_memory_estimate_bounds_the_measured_peak_for_every_layer_kind(name):
    """tracemalloc sees numpy's allocations; the estimate (what --max-memory is held to) must stay above them."""
    import tracemalloc

    import gradcheck
    from gradcheck import budget
    from gradcheck.check import check
    from gradcheck.limits import Limits

    limits = Limits(memory=64 * 10**6, steps=10**6)
    spec = gradcheck.loads(MEMORY_SPECS[name], "t.yaml", limits)
    memory = budget.batch_memory(spec.model, limits)
    estimate = budget.estimate(spec.model, memory).total
    tracemalloc.start()
    try:
        check(spec, memory=memory)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= estimate <= limits.memory, (name, peak, estimate)


# ----------------------------------------------------------------------------- item 11: the corpus with -j 1 and -j 2

@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_hostile_corpus_runs_through_the_cli_with_jobs(jobs):
    """Every hostile file is an error row with its located message, none internal, whatever -j."""
    import subprocess
    import sys

    from conftest import HOSTILE
    from test_hostile import expected

    done = subprocess.run([sys.executable, "-m", "gradcheck", "run", "-j", jobs, "--format", "json", str(HOSTILE)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-1000:]
    rows = json.loads(done.stdout)["specs"]
    assert len(rows) == len(list(HOSTILE.iterdir()))
    for row in rows:
        want = expected(__import__("pathlib").Path(row["path"]))
        assert row["status"] == "error" and row["message"].startswith(f"{row['path']}:{want}"), row["message"][:300]
    assert "internal error" not in done.stderr


def test_a_pinned_mode_is_held_to_the_step_limit_too(tmp_path):
    """sample:1 in the spec passed the step budget at load; with --settings-from cli the run checks every entry."""
    spec = tmp_path / "big.yaml"
    spec.write_text("params:\n  W: {shape: [200, 200]}\ninput: W\nlayers:\n  - activation: tanh\n"
                    "check: {mode: 'sample:1'}\n")
    assert check_one(str(spec)).status == "pass"
    result = invoke("run", "--settings-from", "cli", "--max-steps", "1000", "--format", "json", spec)
    message = json.loads(result.output)["specs"][0]["message"]
    assert result.exit_code == 1 and "checking needs 80,000 evaluations" in message, message
