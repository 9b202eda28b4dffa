"""`gradcheck watch`: check the specs, then re-check each one that is saved, redrawing the report.

Polls modification times with the standard library (os.stat every interval): no file-system event
library, nothing new at run time. Ctrl-C and SIGTERM both end it between or during checks, quietly:
exit 130 after Ctrl-C, 143 after SIGTERM, no traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from .batch import collect
from .options import RunOptions

CLEAR = "\x1b[2J\x1b[H"  # erase the screen, cursor home (only on a terminal)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, like Ctrl-C (so a check in progress stops the same way)."""


def stamp(path: str) -> tuple[int, int] | None:
    """What tells a saved file from the last one seen: modification time (ns) and size; None if unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class Watcher:
    """The watch loop: the latest result of every spec under the paths, re-checked when its file changes."""

    def __init__(self, paths, options: RunOptions, out, interval: float = 0.5, clock=time.sleep,
                 every_spec: bool = False):
        self.paths, self.options, self.out, self.interval, self.sleep = list(paths), options, out, interval, clock
        self.every_spec = every_spec  # re-check every spec when any file changes, not only the changed ones
        self.seen: dict[str, tuple | None] = {}
        self.results: dict[str, object] = {}
        self.rounds = 0
        self.terminated = False

    def _terminate(self, signum, frame):
        self.terminated = True  # remembered: the runner turns what is raised into its own Interrupted
        raise Terminated()

    def run(self) -> int:
        """Watch until Ctrl-C (130) or SIGTERM (143)."""
        previous = signal.signal(signal.SIGTERM, self._terminate)
        interrupt = signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored (`&`)
        try:
            while True:
                self.poll()
                self.sleep(self.interval)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (Terminated), between checks or during one
            if self.terminated:
                self.say("gradcheck: watch stopped (SIGTERM)")
                return 143
            self.say("gradcheck: watch stopped")
            return 130
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, interrupt)

    def poll(self) -> list[str]:
        """Look once: check the files that are new or changed, forget the deleted ones; redraw if anything moved."""
        files = collect(self.paths)
        now = {path: stamp(path) for path in files}
        changed = [path for path in files if path not in self.seen or now[path] != self.seen[path]]
        gone = [path for path in self.seen if path not in now]
        for path in gone:
            self.results.pop(path, None)
        if changed and self.every_spec:
            changed = files
        if changed:
            self.check(changed)
        self.seen = now
        if changed or gone:
            self.draw(files, changed, gone)
        return changed

    def check(self, files: list[str]) -> None:
        from .runner import check_task, run_all

        for path, result in zip(files, run_all(check_task(self.options), files, self.options.jobs)):
            self.results[path] = result

    def draw(self, files: list[str], changed: list[str], gone: list[str]) -> None:
        """The whole report again (the screen cleared first on a terminal), then what this round did."""
        from .formats.escape import human
        from .report import render_human
        from .results import summarize

        self.rounds += 1
        stream = sys.stdout
        terminal = hasattr(stream, "isatty") and stream.isatty()
        if terminal:
            stream.write(CLEAR)
        elif self.rounds > 1:
            stream.write("\n")
        run = summarize(self.results[path] for path in files if path in self.results)
        render_human(run, stream, **self.out.render_options("run"))
        what = "checked" if self.rounds == 1 else "re-checked"
        names = ", ".join(human(p) for p in changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        line = f"[{time.strftime('%H:%M:%S')}] {what} {len(changed)}: {names}" if changed else \
            f"[{time.strftime('%H:%M:%S')}] removed {len(gone)}"
        stream.write(f"{line} · watching {len(files)} spec{'s' * (len(files) != 1)}; Ctrl-C to stop\n")
        stream.flush()

    @staticmethod
    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)
