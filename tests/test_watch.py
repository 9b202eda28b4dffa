"""`gradcheck watch`: checks the specs, re-checks the one that is saved, picks up new files, and stops
cleanly on Ctrl-C (exit 130) and SIGTERM (exit 143), with no traceback."""

from __future__ import annotations

import io
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import ICA, ROOT, WRONG
from gradcheck.cli_options import Output
from gradcheck.options import RunOptions
from gradcheck.watch import Watcher

BROKEN = ICA.read_text().replace("+ 2 * (W @ x) @ r.T", "+ (W @ x) @ r.T")  # a dropped factor, saved


def test_poll_checks_what_changed_and_nothing_else(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(ICA.read_text())
    (tmp_path / "b.yaml").write_text(WRONG.read_text())
    watcher = Watcher([str(tmp_path)], RunOptions(), Output())
    assert [os.path.basename(p) for p in watcher.poll()] == ["a.yaml", "b.yaml"]  # the first look checks all
    first = capsys.readouterr().out
    assert "2 specs: 1 passed, 1 failed, 0 errors" in first and "checked 2" in first and "\x1b[2J" not in first
    assert watcher.poll() == [] and capsys.readouterr().out == ""  # nothing saved: nothing done, nothing drawn
    assert BROKEN != ICA.read_text()
    (tmp_path / "a.yaml").write_text(BROKEN)
    os.utime(tmp_path / "a.yaml", ns=(time.time_ns(), time.time_ns() + 10**9))  # a save, even within one tick
    assert [os.path.basename(p) for p in watcher.poll()] == ["a.yaml"]
    second = capsys.readouterr().out
    assert "2 specs: 0 passed, 2 failed, 0 errors" in second and "re-checked 1" in second
    (tmp_path / "b.yaml").unlink()
    (tmp_path / "c.yaml").write_text(ICA.read_text())
    assert [os.path.basename(p) for p in watcher.poll()] == ["c.yaml"]
    third = capsys.readouterr().out
    assert "2 specs: 1 passed, 1 failed, 0 errors" in third and "b.yaml" not in third.split("re-checked")[0]


def test_a_terminal_is_cleared_before_each_redraw(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text(ICA.read_text())
    screen = io.StringIO()
    screen.isatty = lambda: True
    monkeypatch.setattr(sys, "stdout", screen)
    Watcher([str(tmp_path)], RunOptions(), Output(color="never")).poll()
    assert screen.getvalue().startswith("\x1b[2J\x1b[H")


class Lines:
    """The lines a process writes, read on a thread so that a test can wait for one with a deadline."""

    def __init__(self, stream):
        self.queue, self.seen = queue.Queue(), []
        threading.Thread(target=lambda: [self.queue.put(line) for line in stream], daemon=True).start()

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {timeout} s; got:\n{''.join(self.seen)}")


def start_watching(folder) -> tuple[subprocess.Popen, Lines]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    proc = subprocess.Popen([sys.executable, "-m", "gradcheck", "watch", "--interval", "0.1", str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    return proc, Lines(proc.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("stop, code, said", [(signal.SIGINT, 130, "watch stopped"),
                                               (signal.SIGTERM, 143, "watch stopped (SIGTERM)")])
def test_watch_re_runs_a_saved_spec_and_stops_cleanly(tmp_path, stop, code, said):
    spec = tmp_path / "a.yaml"
    spec.write_text(ICA.read_text())
    proc, lines = start_watching(tmp_path)
    try:
        lines.wait_for("1 spec: 1 passed, 0 failed, 0 errors")
        lines.wait_for("checked 1")
        spec.write_text(BROKEN)  # the person saves a slip
        lines.wait_for("ICA reconstruction cost")
        lines.wait_for("1 spec: 0 passed, 1 failed, 0 errors")
        assert "re-checked 1" in lines.wait_for("re-checked")
        (tmp_path / "new.yml").write_text(ICA.read_text())  # a new file in the folder is picked up
        lines.wait_for("2 specs: 1 passed, 1 failed, 0 errors")
        proc.send_signal(stop)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert said in err and "Traceback" not in err, err


def test_all_re_checks_every_spec_when_one_changes(tmp_path, capsys):
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(ICA.read_text())
    watcher = Watcher([str(tmp_path)], RunOptions(), Output(), every_spec=True)
    watcher.poll()
    (tmp_path / "a.yaml").write_text(BROKEN)
    os.utime(tmp_path / "a.yaml", ns=(time.time_ns(), time.time_ns() + 10**9))
    assert [os.path.basename(p) for p in watcher.poll()] == ["a.yaml", "b.yaml"]
    assert "re-checked 2" in capsys.readouterr().out
    assert watcher.poll() == []  # nothing saved: still nothing to do


def test_sigterm_during_a_check_is_still_sigterm(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text(ICA.read_text())
    watcher = Watcher([str(tmp_path)], RunOptions(), Output())

    def terminated_while_checking(files):  # the runner turns any KeyboardInterrupt into its own Interrupted
        from gradcheck.runner import Interrupted

        try:
            watcher._terminate(signal.SIGTERM, None)
        except KeyboardInterrupt:
            raise Interrupted([], len(files)) from None

    monkeypatch.setattr(watcher, "check", terminated_while_checking)
    assert watcher.run() == 143
    assert signal.getsignal(signal.SIGTERM) != watcher._terminate  # the handler was given back
