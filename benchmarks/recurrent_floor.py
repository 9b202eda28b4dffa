"""The floor of exact finite differences through the recurrent kinds (issues 11 and 13), measured beside gradcheck.

    python benchmarks/recurrent_floor.py [--repeat R] [--batch B] [--kinds rnn,lstm,gru] [--memory]

A moved entry of Wh, Wx or b changes one hidden unit at the step it first reaches (Wh waits a step while h_0 = 0),
every unit one step later (Wh meets the changed unit as a rank-1 term, no product: gradcheck takes it so for an
RNN and an LSTM, and as the product for a GRU), and from then on every
step is dense per perturbation: a (G·n × n)·(n × m) product and the gates' transcendentals over G·n·m entries (tanh for
an RNN; for an LSTM σ of 3n rows, tanh of the g rows and of c; for a GRU σ of 2n rows and tanh of n). This script
counts those products and transcendentals over the 2N evaluations of a central full check (the same specs as
families.py's RNN row and kinds.py's lstm and gru rows), times exactly them with numpy on this machine (one GEMM
over B members' columns, np.tanh in place, in batches of B), and prints them beside gradcheck's full check (median
of R, process CPU time). Everything else gradcheck does per perturbation (adding the moved entry's term, the
gates' products and sums, the loss) is above this floor. --memory prints, per param, what gradcheck estimates one
perturbation holds, the members of a batch that gives (8 MiB batches), and what one member really holds
(tracemalloc's peak over a batch of 64 less that of 16, over 48).
"""

from __future__ import annotations

import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
if __name__ == "__main__":  # one BLAS thread, set before numpy loads
    for _name in THREAD_VARIABLES:
        os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.path.dirname(os.path.abspath(__file__))]  # this checkout's gradcheck
import gradcheck  # noqa: E402
import families  # noqa: E402
import kinds  # noqa: E402

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
TRANSCENDENTAL_ROWS = {"rnn": 1, "lstm": 5, "gru": 3}  # per hidden unit and column: tanh or σ (one tanh each)


def spec_of(key: str):
    if key == "rnn":
        return gradcheck.loads(families.rnn()[1], limits=families.LIMITS)
    return gradcheck.loads(kinds.KINDS[key]()[0])


def counts(key: str, spec) -> tuple[int, int, int, int, int, int, int]:
    """(N, evaluations, hidden n, columns m, steps T, GEMM steps, dense steps), the last two summed over the
    evaluations (one step of one evaluation each)."""
    layer = spec.model.terms[0].layers[0]
    opt, m = layer.options, layer.in_shape[1]
    gemm = dense = 0
    for name in spec.param_names:
        size = spec.values[name].size
        if name in ("V", "c"):  # the RNN's output layer: its own row patch, no recurrence
            continue
        first = 2 if name == "Wh" else 1  # the step the move first reaches (Wh: h_0 = 0, so a step later)
        # steps first+1 .. T change every unit (first+1 as a rank-1 term); steps first+2 .. T need the product
        dense += 2 * size * max(0, opt.steps - first)
        gemm += 2 * size * max(0, opt.steps - first - 1)
    n = sum(spec.values[k].size for k in spec.param_names)
    return n, 2 * n, opt.hidden, m, opt.steps, gemm, dense


def time_floor(key: str, hidden: int, m: int, gemm_steps: int, dense_steps: int, batch: int) -> tuple[float, float]:
    """CPU seconds for the products and the transcendentals alone, in batches of `batch` evaluations."""
    rng = np.random.default_rng(0)
    rows = GATES[key] * hidden
    wh = rng.standard_normal((rows, hidden)) * 0.1
    h = rng.standard_normal((hidden, batch * m)) * 0.5
    out = np.empty((rows, batch * m))
    calls = -(-gemm_steps // batch)
    np.matmul(wh, h, out=out)
    t = time.process_time()
    for _ in range(calls):
        np.matmul(wh, h, out=out)
    products = (time.process_time() - t) * gemm_steps / (calls * batch)
    z = rng.standard_normal((TRANSCENDENTAL_ROWS[key] * hidden, batch * m)) * 0.5
    work = z.copy()
    calls = -(-dense_steps // batch)
    t = time.process_time()
    for _ in range(calls):
        np.tanh(z, out=work)
    transcendentals = (time.process_time() - t) * dense_steps / (calls * batch)
    return products, transcendentals


def memory(key: str, spec) -> None:
    """Per param: the estimated bytes of one perturbation, the batch that gives, the measured bytes per member."""
    from gradcheck.options import BATCH_MEMORY
    from gradcheck.perturb import Perturber
    for name in spec.param_names:
        perturber = Perturber(spec.model, dict(spec.values), name)
        size, peaks = spec.values[name].size, []
        for batch in (16, 64):
            flat = np.arange(batch) % size
            perturber(flat, np.full(batch, 1e-5))
            tracemalloc.start()
            perturber(flat, np.full(batch, 1e-5))
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        each = perturber.per_sample_bytes()
        print(f"  {key:6s} {name:4s} estimated {each / 1e3:8.1f} KB a perturbation, {max(2, BATCH_MEMORY // each):5d} "
              f"a batch; measured {(peaks[1] - peaks[0]) / 48e3:6.1f} KB a member")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64, help="evaluations per product (the columns of one GEMM)")
    parser.add_argument("--kinds", default="rnn,lstm,gru")
    parser.add_argument("--memory", action="store_true", help="also the batch sizes and the bytes per member")
    args = parser.parse_args(argv)
    print("$ python " + " ".join(sys.argv))
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}, "
          f"1 thread; cpu time; load {os.getloadavg()[0]:.2f}")
    print(f"{'kind':6s} {'N':>7s} {'evals':>7s} {'GEMM steps':>11s} {'dense steps':>12s} {'products':>10s} "
          f"{'tanh/σ':>10s} {'floor':>10s} {'gradcheck':>10s} {'÷ floor':>8s}")
    for key in args.kinds.split(","):
        spec = spec_of(key)
        n, evals, hidden, m, _, gemm, dense = counts(key, spec)
        gradcheck.check(spec)
        times = []
        for _ in range(args.repeat):
            t = time.process_time()
            gradcheck.check(spec)
            times.append(time.process_time() - t)
        products, transcendentals = time_floor(key, hidden, m, gemm, dense, args.batch)
        ours, floor = statistics.median(times), products + transcendentals
        print(f"{key:6s} {n:7,d} {evals:7,d} {gemm:11,d} {dense:12,d} {products:8.3f} s {transcendentals:8.3f} s "
              f"{floor:8.3f} s {ours:8.3f} s {ours / floor:7.2f}×", flush=True)
    if args.memory:
        for key in args.kinds.split(","):
            memory(key, spec_of(key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
