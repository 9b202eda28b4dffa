"""Fast mode against torch's fast_mode and jax's check_grads, and the reference MLP's full check at N = 1e6.

    python benchmarks/fast.py [--repeat 7] [--no-full] [--clock wall|cpu]

Functions: the reference MLP (peers.py) and softmax regression, at N ≈ 1e5 and ≈ 1e6. Each method runs once
untimed first (jax traces, caches warm), then `--repeat` times, alternating method by method within each round
so that machine noise falls on all of them; medians. One BLAS thread, torch.set_num_threads(1), jax on one CPU
thread. Then the reference MLP at N ≈ 1e6: the full check (central), one forward pass (gradcheck's
`spec.objective()`, the same numpy forward), and their ratio (issue 13: under 4 s, ratio under 500).
--clock cpu times process CPU time instead of wall time: every method runs on one thread, so on a shared, loaded
machine it is what each one costs (wall time also counts the time other work held the core).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if __name__ == "__main__":  # one thread per library, in the environment, before numpy, torch or jax load
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[_name] = "1"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                               " intra_op_parallelism_threads=1").strip()
import peers  # noqa: E402

peers.THREADS = 1
np, gradcheck = peers.np, peers.gradcheck
from gradcheck import limits as _limits  # noqa: E402

CLOCK = [time.perf_counter]
LIMITS = dataclasses.replace(_limits.DEFAULT, steps=10**8)  # a full check at N = 1e6 needs 2e6


def make_case(function: peers.Function) -> peers.Case:
    """peers.make_case, loaded with the evaluation limit raised for N = 1e6."""
    loads = gradcheck.loads
    gradcheck.loads = functools.partial(loads, limits=LIMITS)
    try:
        return peers.make_case(function)
    finally:
        gradcheck.loads = loads


SOFTMAX_SPEC = """\
name: softmax regression K={K} D={D} M={M}
seed: 0
params:
  W: {{shape: [{K}, {D}], std: 0.01}}
  b: {{shape: [{K}, 1], std: 0.1}}
data:
  X: {{shape: [{D}, {M}]}}
  Y: {{shape: [{K}, {M}], init: onehot}}
input: X
layers:
  - {{weight: W, bias: b, activation: softmax}}
objective: {{loss: cross_entropy, target: Y, reduce: mean}}
"""


def softmax_objective(xp, p, d):
    z = p["W"] @ d["X"] + p["b"]
    top = z.max(0) if xp is np or not hasattr(z, "detach") else z.max(0)[0]
    lse = xp.log(xp.sum(xp.exp(z - top), 0)) + top
    return -xp.sum(d["Y"] * (z - lse)) / d["Y"].shape[1]


def softmax_regression(K: int, D: int, M: int) -> peers.Function:
    n = K * D + K
    return peers.Function(f"softmax regression, N = {n:,} (K={K}, D={D}, M={M})", SOFTMAX_SPEC.format(K=K, D=D, M=M),
                          lambda backend: functools.partial(softmax_objective, peers.array_module(backend)))


FUNCTIONS = [peers.mlp(256, 384, 64), peers.mlp(1000, 1000, 64), softmax_regression(10, 10000, 100),
             softmax_regression(100, 10000, 100)]


def methods(available: dict) -> dict:
    out = {"gradcheck fast": lambda case: gradcheck.check(case.spec, mode="fast")}
    if available.get("torch"):
        out["torch gradcheck fast_mode"] = lambda case: peers.torch_run(True)(case, None)
    if available.get("jax"):
        out["jax check_grads (rev, order 1)"] = lambda case: peers.jax_run(case, None)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-full", action="store_true", help="skip the full check at N = 1e6")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time, or process CPU time")
    args = parser.parse_args()
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    available = peers.load_peers()
    print("$ python " + " ".join(sys.argv))
    print(peers.machine(available))
    print(f"1-min load average {peers.load_average()}; {args.clock} time")
    print(f"\n{'function':52s} " + "".join(f"{name:>32s}" for name in methods(available)))
    for function in FUNCTIONS:
        case = make_case(function)
        runs = methods(available)
        times = {name: [] for name in runs}
        for name, run in runs.items():
            outcome = run(case)  # untimed first call
            status = getattr(outcome, "status", None) or getattr(outcome, "verdict", None)
            assert status == "pass", (function.label, name, status)
        for _ in range(args.repeat):
            for name, run in runs.items():
                started = CLOCK[0]()
                run(case)
                times[name].append(CLOCK[0]() - started)
        med = {name: statistics.median(t) for name, t in times.items()}
        ours = med["gradcheck fast"]
        print(f"{function.label:52s} " + "".join(
            f"{med[name] * 1e3:14.1f} ms ({med[name] / ours:5.2f}× ours)   " for name in runs))
    if not args.no_full:
        case = make_case(FUNCTIONS[1])
        spec = case.spec
        forward = statistics.median(_timed(spec.objective) for _ in range(max(args.repeat, 5)))
        full = statistics.median(_timed(lambda: gradcheck.check(spec)) for _ in range(3))
        print(f"\nreference MLP full check (central), {FUNCTIONS[1].label}: {full:.2f} s (median of 3); one forward "
              f"pass {forward * 1e3:.2f} ms; ratio {full / forward:.0f} (targets: under 4 s, ratio under 500)")
    print(f"1-min load average after: {peers.load_average()}")
    return 0


def _timed(run) -> float:
    started = CLOCK[0]()
    run()
    return CLOCK[0]() - started


if __name__ == "__main__":
    sys.exit(main())
