"""Fast mode against torch's fast_mode and jax's check_grads, and the reference MLP's full check at N = 1e6.

    python benchmarks/fast.py [--repeat 7] [--no-full | --full-only] [--clock wall|cpu] [--profile]

Functions: the reference MLP (peers.py) and softmax regression, at N ≈ 1e5 and ≈ 1e6. Each method runs once
untimed first (jax traces, caches warm), then `--repeat` times, alternating method by method within each round
so that machine noise falls on all of them; medians. One BLAS thread, torch.set_num_threads(1), jax on one CPU
thread. Then the reference MLP at N ≈ 1e6: the full check (central), one forward pass (gradcheck's
`spec.objective()`, the same numpy forward), and their ratio (issue 13: under 4 s, ratio under 500), both on the
same clock, measured alternately; `--clock cpu` takes process CPU time (every library runs one thread here, so on
a shared machine CPU time is the figure other sessions' load disturbs least). `--profile`: then one more full
check under cProfile, its functions with the most time of their own (cProfile's overhead included).
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
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # this checkout's gradcheck, not an installed one
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
    parser.add_argument("--full-only", action="store_true", help="only the full check at N = 1e6 and its forward pass")
    parser.add_argument("--profile", action="store_true", help="then where one full check spends its time (cProfile)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time (perf_counter) or this process's CPU time (process_time)")
    args = parser.parse_args()
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    available = peers.load_peers()
    print("$ python " + " ".join(sys.argv))
    print(peers.machine(available))
    print(f"1-min load average {peers.load_average()}; {args.clock} time")
    if not args.full_only:
        fast_rows(available, args.repeat)
    if not args.no_full:
        full_check(max(args.repeat, 3))
    if args.profile:
        profile_full()
    print(f"1-min load average after: {peers.load_average()}")
    return 0


def fast_rows(available: dict, repeat: int) -> None:
    """Fast mode against the peers' fast checks, each function's methods alternating round by round."""
    print(f"\n{'function':52s} " + "".join(f"{name:>32s}" for name in methods(available)))
    for function in FUNCTIONS:
        case = make_case(function)
        runs = methods(available)
        times = {name: [] for name in runs}
        for name, run in runs.items():
            outcome = run(case)  # untimed first call
            status = getattr(outcome, "status", None) or getattr(outcome, "verdict", None)
            assert status == "pass", (function.label, name, status)
        for _ in range(repeat):
            for name, run in runs.items():
                times[name].append(_timed(lambda: run(case)))
        med = {name: statistics.median(t) for name, t in times.items()}
        ours = med["gradcheck fast"]
        print(f"{function.label:52s} " + "".join(
            f"{med[name] * 1e3:14.1f} ms ({med[name] / ours:5.2f}× ours)   " for name in runs))


def full_check(repeat: int) -> None:
    """The reference MLP's full check (central) at N = 1e6 and one forward pass, alternating, medians."""
    spec = make_case(FUNCTIONS[1]).spec
    outcome = gradcheck.check(spec)  # untimed first call
    assert outcome.status == "pass", outcome.status
    forwards, fulls = [], []
    for _ in range(repeat):
        forwards.append(statistics.median(_timed(spec.objective) for _ in range(20)))  # 20 passes, their median
        fulls.append(_timed(lambda: gradcheck.check(spec)))
    forward, full = statistics.median(forwards), statistics.median(fulls)
    print(f"\nreference MLP full check (central), {FUNCTIONS[1].label}: {full:.2f} s (median of {repeat}); one "
          f"forward pass {forward * 1e3:.2f} ms; ratio {full / forward:.0f} (targets: under 4 s, ratio under 500)")


def profile_full(top: int = 10) -> None:
    """One full check of the reference MLP at N = 1e6 under cProfile: the functions with the most time of their own."""
    import cProfile
    import pstats
    spec = make_case(FUNCTIONS[1]).spec
    profiler = cProfile.Profile(CLOCK[0])  # the run's clock: CPU time under --clock cpu
    profiler.runcall(gradcheck.check, spec)
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    print(f"\none full check under cProfile: {total:.2f} s; the {top} functions with the most time of their own:")
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:top]
    for (path, line, name), (_, calls, own, cumulative, _) in rows:
        where = f"{os.path.basename(path)}:{line} {name}" if line else name
        print(f"  {own:6.3f} s {100 * own / total:5.1f}%  {calls:6d} calls  {where}")


def _timed(run) -> float:
    started = CLOCK[0]()
    run()
    return CLOCK[0]() - started


if __name__ == "__main__":
    sys.exit(main())
