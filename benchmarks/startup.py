"""Start-up time of the CLI: median wall time of `python -m gradcheck --help` over N fresh processes.

    python benchmarks/startup.py [-n 21]

The target is under 0.25 s. For scale it also times a bare interpreter (`python -c pass`), the
other commands' --help, and importing what --help must not import (numpy, yaml, rich): that is what
the lazy imports save. Run from the repository root so that this checkout's gradcheck is used.
Not a test: wall times on a shared machine are noisy, so read the medians side by side.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET = 0.25
CASES = {
    "python -c pass (bare interpreter)": [sys.executable, "-c", "pass"],
    "gradcheck --help": [sys.executable, "-m", "gradcheck", "--help"],
    "gradcheck run --help": [sys.executable, "-m", "gradcheck", "run", "--help"],
    "gradcheck explain --help": [sys.executable, "-m", "gradcheck", "explain", "--help"],
    "import numpy, yaml, rich (what --help avoids)": [sys.executable, "-c", "import numpy, yaml, rich.console"],
}
LOADED = """
import contextlib, io, runpy, sys
sys.argv = ["gradcheck", "--help"]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        runpy.run_module("gradcheck", run_name="__main__")
    except SystemExit:
        pass
print(",".join(m for m in ("numpy", "yaml", "rich") if m in sys.modules))
"""


def wall_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=21, help="processes per case (default 21)")
    runs = parser.parse_args().runs
    subprocess.run(CASES["gradcheck --help"], stdout=subprocess.DEVNULL, check=True)  # warm the file cache
    medians = {}
    for label, command in CASES.items():
        times = wall_times(command, runs)
        medians[label] = statistics.median(times)
        print(f"{label:48s} median {medians[label] * 1000:7.1f} ms   (min {min(times) * 1000:6.1f}, "
              f"max {max(times) * 1000:6.1f}, n={runs})")
    loaded = subprocess.run([sys.executable, "-c", LOADED], capture_output=True, text=True, check=True).stdout.strip()
    print(f"heavy modules imported by --help: {loaded or 'none'}")
    help_median = medians["gradcheck --help"]
    verdict = "under" if help_median < TARGET else "OVER"
    print(f"gradcheck --help: {help_median * 1000:.1f} ms, {verdict} the {TARGET * 1000:.0f} ms target "
          f"({help_median / medians['python -c pass (bare interpreter)']:.2f}× a bare interpreter)")
    return 0 if help_median < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
