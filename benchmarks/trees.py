"""Two gradcheck trees side by side: the full and fast check of peers.py's functions, timed alternately.

    python benchmarks/trees.py OLD_PYTHON NEW_PYTHON [--repeats 7]

Each PYTHON is an interpreter with one tree installed (for example two venvs, one with a checkout of
the commit before a change). Each timing runs in its own process, old and new alternating, so machine
noise falls on both alike; the table gives the median of each and their ratio (new / old).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# One timing, run inside the interpreter under test: load the function's spec, check it, print seconds.
PROBE = r"""
import json, sys, time
sys.path.insert(0, {here!r})
import numpy as np
import gradcheck
from peers import FUNCTIONS
function = FUNCTIONS[{index}]
spec = gradcheck.loads(function.spec_text)
gradcheck.check(spec, mode={mode!r})  # warm
start = time.perf_counter()
result = gradcheck.check(spec, mode={mode!r})
print(json.dumps({{"seconds": time.perf_counter() - start, "status": result.status}}))
"""


def timed(python: str, index: int, mode: str) -> float:
    """Seconds of one check, in a fresh process of `python` with one BLAS thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([python, "-c", PROBE.format(here=HERE, index=index, mode=mode)], env=env,
                         capture_output=True, text=True, check=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    assert row["status"] == "pass", row
    return row["seconds"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    sys.path.insert(0, HERE)
    from peers import FUNCTIONS

    print(f"# {' '.join(['python benchmarks/trees.py', *sys.argv[1:]])}")
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, one BLAS thread")
    print(f"# medians of {args.repeats}, old and new alternating\n")
    print("| function | mode | old | new | new / old |")
    print("|---|---|---:|---:|---:|")
    for index, function in enumerate(FUNCTIONS):
        for mode in ("full", "fast"):
            old, new = [], []
            for _ in range(args.repeats):
                old.append(timed(args.old, index, mode))
                new.append(timed(args.new, index, mode))
            o, n = statistics.median(old), statistics.median(new)
            print(f"| {function.label} | {mode} | {o * 1e3:.1f} ms | {n * 1e3:.1f} ms | {n / o:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
