"""Wall time of `gradcheck run -j N` on a folder of generated specs heavy enough to be worth a process.

    python benchmarks/jobs.py [--specs 8] [--size 40] [--runs 3] [--jobs 1 2]
    python benchmarks/jobs.py --bundled --jobs 1 0     # the repository's specs/ (the README's CI example)

Each spec is a 3-layer tanh network with a size×size weight used three times (tied) and a
size×(size+10) input, so the finite differences cost size² batched evaluations. On tiny specs
(the bundled ones take milliseconds) -j is slower: each worker is a fresh interpreter that imports
numpy (~0.3-0.5 s here); -j pays once a spec costs more than that. Medians of --runs runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """\
seed: {seed}
params:
  W: {{shape: [{n}, {n}], std: 0.2}}
data:
  x: {{shape: [{n}, {m}]}}
input: x
layers:
  - {{weight: W, activation: tanh}}
  - {{weight: W.T, activation: tanh}}
  - {{weight: W, activation: tanh}}
objective: sum
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=int, default=8)
    parser.add_argument("--size", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--bundled", action="store_true", help="time the bundled specs/ instead of generated ones")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.bundled:
            folder = str(Path(__file__).resolve().parent.parent / "specs")
            args.specs, args.size = len(list(Path(folder).glob("*.yaml"))), "bundled"
        for i in range(0 if args.bundled else args.specs):
            Path(folder, f"net_{i:02d}.yaml").write_text(SPEC.format(seed=i, n=args.size, m=args.size + 10))
        medians = {}
        for jobs in args.jobs:
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                done = subprocess.run([sys.executable, "-m", "gradcheck", "run", "-q", "-j", str(jobs), folder],
                                      stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - started)
                assert done.returncode == 0, "the generated specs must pass"
            medians[jobs] = statistics.median(times)
            what = "bundled specs" if args.bundled else f"specs, W {args.size}×{args.size}"
            print(f"-j {jobs}: median {medians[jobs]:.2f} s over {args.runs} runs ({args.specs} {what})")
        base = medians[args.jobs[0]]
        for jobs in args.jobs[1:]:
            ratio = base / medians[jobs]
            print(f"-j {jobs} vs -j {args.jobs[0]}: " + (f"{ratio:.2f}× faster" if ratio >= 1 else f"{1 / ratio:.2f}× slower"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
