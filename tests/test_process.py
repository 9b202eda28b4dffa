"""Process behaviour, through real subprocesses: Ctrl-C, closed pipes, unreadable and missing paths.

Exit codes (README, CLI reference): 0 all pass, 1 a spec failed or is invalid, 2 usage or internal
error, 130 interrupted by Ctrl-C (after reporting the specs checked so far), 141 stdout closed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import gradcheck.source
from gradcheck.guard import check_one
from conftest import FIXTURES, ICA, ROOT, SLOW, SPECS

pytestmark = pytest.mark.slow  # real processes: signals, pipes, exit codes

# Runs the real CLI; only announces on stderr when it starts checking a spec and when one is done,
# so the test knows where the batch is (stdout is rendered at the end).
ANNOUNCING = textwrap.dedent("""\
    import contextlib
    import sys

    def main():
        sys.path.insert(0, sys.argv.pop(1))
        import gradcheck.guard as guard
        import gradcheck.runner as runner
        from gradcheck.cli import entry

        real = guard.check_one

        def announcing(path, *args, **kwargs):  # serial runs: the spec about to be checked
            print("checking", path, file=sys.stderr, flush=True)
            return real(path, *args, **kwargs)

        @contextlib.contextmanager
        def announced_progress(total, stream=None):  # every run: each spec done, in the parent
            yield lambda path: print("done", path, file=sys.stderr, flush=True)

        guard.check_one = announcing
        runner.progress = announced_progress
        sys.argv[0] = "gradcheck"
        entry()

    if __name__ == "__main__":  # spawned workers import this file too, and must stay quiet
        main()
""")


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}


def gradcheck_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "gradcheck", "run", *map(str, args)]


def batch(tmp_path):
    """good, good, slow (minutes unless stopped), good."""
    folder = tmp_path / "batch"
    folder.mkdir()
    for name in ("a.yaml", "b.yaml", "d.yaml"):
        (folder / name).write_text(ICA.read_text())
    (folder / "c_slow.yaml").write_text(SLOW)
    return folder


@pytest.mark.parametrize("fmt", ["human", "json"])
def test_ctrl_c_during_a_batch_reports_the_specs_done_and_exits_130(tmp_path, fmt):
    script = tmp_path / "announcing.py"
    script.write_text(ANNOUNCING)
    folder = batch(tmp_path)
    proc = subprocess.Popen([sys.executable, str(script), str(ROOT), "run", "--format", fmt, "--timeout", "0",
                             str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        for line in proc.stderr:  # wait until the slow spec is being checked
            if line.startswith("checking") and "c_slow" in line:
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "gradcheck: interrupted after 2 of 4 specs" in err
    assert "Traceback" not in err + out
    if fmt == "json":
        data = json.loads(out)
        assert data["summary"] == {"total": 2, "pass": 2, "fail": 0, "error": 0}
        assert [os.path.basename(s["path"]) for s in data["specs"]] == ["a.yaml", "b.yaml"]
    else:
        assert out.rstrip().endswith("2 specs: 2 passed, 0 failed, 0 errors")
        assert "c_slow" not in out


def test_ctrl_c_with_workers_reports_the_specs_done_stops_the_workers_and_exits_130(tmp_path):
    script = tmp_path / "announcing.py"
    script.write_text(ANNOUNCING)
    folder = batch(tmp_path)
    proc = subprocess.Popen([sys.executable, str(script), str(ROOT), "run", "--format", "json", "-j", "2",
                             "--timeout", "0", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env())
    try:
        finished = []
        for line in proc.stderr:  # a, b and d finish; c_slow keeps a worker busy
            if line.startswith("done"):
                finished.append(os.path.basename(line.split()[-1]))
                if len(finished) == 3:
                    break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert sorted(finished) == ["a.yaml", "b.yaml", "d.yaml"]
    assert proc.returncode == 130
    assert "gradcheck: interrupted after 3 of 4 specs" in err and "Traceback" not in err
    data = json.loads(out)
    assert [os.path.basename(s["path"]) for s in data["specs"]] == ["a.yaml", "b.yaml", "d.yaml"]
    assert data["summary"] == {"total": 3, "pass": 3, "fail": 0, "error": 0}


@pytest.mark.parametrize("fmt", ["human", "json"])
def test_a_closed_pipe_exits_quietly(fmt):
    proc = subprocess.Popen(gradcheck_cmd("--format", fmt, SPECS), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env(), cwd=ROOT)
    proc.stdout.close()  # the reader is gone before the first byte is written
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert proc.returncode == 141
    assert err == ""


def test_head_gets_the_first_line_and_the_shell_sees_no_traceback():
    command = f"set -o pipefail; {sys.executable} -m gradcheck run {SPECS} | head -1"
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env(), cwd=ROOT, timeout=60)
    assert out.stderr == ""
    assert len(out.stdout.splitlines()) == 1 and "PASS" in out.stdout
    assert out.returncode in (0, 141)  # 141 when the pipe closed before gradcheck finished writing


def test_a_path_that_does_not_exist_is_a_usage_error():
    out = subprocess.run(gradcheck_cmd(ICA, "no/such/spec.yaml"), capture_output=True, text=True, env=env(),
                         cwd=ROOT, timeout=60)
    assert out.returncode == 2
    assert "Path 'no/such/spec.yaml' does not exist" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_a_folder_with_no_specs_is_a_usage_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no specs here")
    (tmp_path / "sub").mkdir()
    out = subprocess.run(gradcheck_cmd(tmp_path), capture_output=True, text=True, env=env(), timeout=60)
    assert out.returncode == 2
    assert f"no spec files (*.yaml, *.yml) under {tmp_path}" in out.stderr


def chmod_blocks_reads() -> bool:
    """False for root (or anyone with CAP_DAC_OVERRIDE), who reads files whatever their mode."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        probe = os.path.join(folder, "probe")
        with open(probe, "w") as fh:
            fh.write("x")
        os.chmod(probe, 0)
        try:
            with open(probe):
                return False
        except PermissionError:
            return True
        finally:
            os.chmod(probe, 0o644)


CHMOD_BLOCKS = chmod_blocks_reads()


@pytest.mark.skipif(not CHMOD_BLOCKS, reason="this user reads files whatever their mode (root)")
def test_an_unreadable_file_costs_its_own_row(tmp_path):
    (tmp_path / "a.yaml").write_text(ICA.read_text())
    locked = tmp_path / "b.yaml"
    locked.write_text(ICA.read_text())
    locked.chmod(0)
    try:
        out = subprocess.run(gradcheck_cmd("--format", "json", tmp_path), capture_output=True, text=True, env=env(),
                             timeout=60)
    finally:
        locked.chmod(0o644)
    assert out.returncode == 1
    a, b = json.loads(out.stdout)["specs"]
    assert a["status"] == "pass"
    assert b["message"] == f"{locked}:1:1: cannot read file: Permission denied"


@pytest.mark.skipif(not CHMOD_BLOCKS, reason="this user lists folders whatever their mode (root)")
def test_an_unreadable_folder_costs_its_own_row(tmp_path):
    (tmp_path / "a.yaml").write_text(ICA.read_text())
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "hidden.yaml").write_text(ICA.read_text())
    locked.chmod(0)
    try:
        out = subprocess.run(gradcheck_cmd("--format", "json", tmp_path), capture_output=True, text=True, env=env(),
                             timeout=60)
    finally:
        locked.chmod(0o755)
    assert out.returncode == 1
    a, b = json.loads(out.stdout)["specs"]
    assert a["status"] == "pass"
    assert b["message"] == f"{locked}:1:1: cannot read folder: Permission denied"


def test_a_read_error_becomes_a_located_row(tmp_path, monkeypatch):
    """What chmod 000 does for an ordinary user, simulated where tests run as root."""
    spec = tmp_path / "locked.yaml"
    spec.write_text(ICA.read_text())
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if os.fspath(path) == str(spec):
            raise PermissionError(13, "Permission denied", str(spec))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(gradcheck.source.os, "open", refuse)
    row = check_one(str(spec))
    assert row.message == f"{spec}:1:1: cannot read file: Permission denied"


def test_folders_given_as_files_and_devices_are_rows_not_hangs(tmp_path):
    out = subprocess.run(gradcheck_cmd("--format", "json", ICA, "/dev/null", "/dev/zero"), capture_output=True,
                         text=True, env=env(), timeout=60)
    assert out.returncode == 1
    ok, null, zero = json.loads(out.stdout)["specs"]
    assert ok["status"] == "pass"
    assert null["message"] == "/dev/null:1:1: not a regular file (a character device); specs are read from regular " \
                              "files only"
    assert zero["message"].startswith("/dev/zero:1:1: not a regular file")


def test_exit_codes_0_and_1_from_a_real_process():
    ok = subprocess.run(gradcheck_cmd(ICA), capture_output=True, env=env(), timeout=60)
    bad = subprocess.run(gradcheck_cmd(ICA, FIXTURES / "invalid" / "unknown_activation.yaml"), capture_output=True,
                         env=env(), timeout=60)
    assert (ok.returncode, bad.returncode) == (0, 1)


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition, seconds: float) -> bool:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def started_with_workers(tmp_path, *extra):
    """A -j 2 run whose a, b and d are done while c_slow keeps a worker busy; the process and its workers."""
    script = tmp_path / "announcing.py"
    script.write_text(ANNOUNCING)
    folder = batch(tmp_path)
    proc = subprocess.Popen([sys.executable, str(script), str(ROOT), "run", "--format", "json", "-j", "2",
                             "--timeout", "0", *extra, str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env())
    finished = []
    for line in proc.stderr:
        if line.startswith("done"):
            finished.append(os.path.basename(line.split()[-1]))
            if len(finished) == 3:
                break
    return proc, children_of(proc.pid)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads worker pids from /proc")
def test_sigterm_reports_the_specs_done_stops_the_workers_and_exits_143(tmp_path):
    proc, workers = started_with_workers(tmp_path)
    try:
        assert workers, "the -j 2 run has worker processes"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert "gradcheck: terminated after 3 of 4 specs" in err and "Traceback" not in err
    data = json.loads(out)
    assert [os.path.basename(s["path"]) for s in data["specs"]] == ["a.yaml", "b.yaml", "d.yaml"]
    assert wait_until(lambda: not any(alive(w) for w in workers), 10), "workers still running after SIGTERM"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads worker pids from /proc")
def test_workers_die_when_the_parent_is_killed(tmp_path):
    proc, workers = started_with_workers(tmp_path)
    try:
        assert workers
        proc.kill()  # SIGKILL: the parent cannot stop anything itself
        proc.wait(timeout=30)
        assert wait_until(lambda: not any(alive(w) for w in workers), 10), "workers outlived their parent"
    finally:
        proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def test_sigterm_in_a_serial_run_reports_the_specs_done(tmp_path):
    script = tmp_path / "announcing.py"
    script.write_text(ANNOUNCING)
    folder = batch(tmp_path)
    proc = subprocess.Popen([sys.executable, str(script), str(ROOT), "run", "--timeout", "0", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        for line in proc.stderr:
            if line.startswith("checking") and "c_slow" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 143
    assert "gradcheck: terminated after 2 of 4 specs" in err
    assert out.rstrip().endswith("2 specs: 2 passed, 0 failed, 0 errors")
