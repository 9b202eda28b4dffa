"""The function families of issue 13 at N ≈ 1e4, side by side: gradcheck full, a naive numpy loop, torch.

    python benchmarks/families.py [--repeat R] [--scale S] [--threads T] [--families a,b]

Each family is one spec (its text below) and the same objective written in numpy and in torch, from the
numbers gradcheck draws. The naive loop is the cs231n way: for each entry, θ ± h, the whole forward pass in
numpy, restored; torch is torch.autograd.gradcheck (full, float64, its defaults) when torch is installed.
Per-entry peers predicted to exceed --budget seconds are timed on a random subset of entries and scaled
(marked "est."). Prints the command, the machine, and one table of medians.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
if __name__ == "__main__":  # one BLAS thread unless told otherwise, set before numpy loads
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    for _name in THREAD_VARIABLES:
        os.environ.setdefault(_name, _threads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's gradcheck, not an installed one
import gradcheck  # noqa: E402

LIMITS = gradcheck.Limits(steps=10**7)  # N ≈ 1e5 needs 2e5 evaluations, the default limit
SUBSET = 200  # entries a slow per-entry peer is timed on before scaling to N
# --clock cpu: process CPU time. Every method here runs on one thread, so on a shared, loaded machine CPU time
# is what each one costs, where wall time also counts the time other work held the core.
CLOCK = [time.perf_counter]


def softmax_regression(K=10, D=1000, M=100):
    """z = W x + b, softmax, cross-entropy mean: N = K·D + K."""
    text = f"""name: softmax regression K={K} D={D} M={M}
seed: 0
params:
  W: {{shape: [{K}, {D}], std: 0.1}}
  b: {{shape: [{K}, 1], std: 0.1}}
data:
  X: {{shape: [{D}, {M}]}}
  Y: {{shape: [{K}, {M}], init: onehot}}
input: X
layers:
  - {{weight: W, bias: b, activation: softmax}}
objective: {{loss: cross_entropy, target: Y, reduce: mean}}
"""

    def f(xp, p, d):
        z = p["W"] @ d["X"] + p["b"]
        lse = xp.log(xp.sum(xp.exp(z - z.max(0, keepdims=True) if xp is np else z - z.max(0, keepdim=True)[0]), 0)) \
            + (z.max(0) if xp is np else z.max(0)[0])
        return -xp.sum(d["Y"] * (z - lse)) / d["Y"].shape[1]
    return "softmax regression", text, f


def weight_and_argument(H=100, M=100):
    """W as a weight and as an activation's argument: tanh(W x) ⊙ ... scaled by W; N = H·H."""
    text = f"""name: W as weight and as activation argument H={H}
seed: 0
params:
  W: {{shape: [{H}, {H}], std: 0.1}}
data:
  X: {{shape: [{H}, {M}]}}
input: X
layers:
  - {{weight: W, activation: tanh}}
  - {{activation: {{scale: W}}}}
  - {{activation: square}}
objective: mean
"""

    def f(xp, p, d):
        return xp.mean(xp.square(p["W"] * xp.tanh(p["W"] @ d["X"])))
    return "W as weight and as activation argument", text, f


def rnn(H=90, I=20, T=5, M=20):
    """A many-to-one tanh RNN, then a sigmoid unit: N = H·H + H·I + H + H + 1."""
    text = f"""name: RNN H={H} I={I} T={T} M={M}
seed: 0
params:
  Wh: {{shape: [{H}, {H}], std: 0.1}}
  Wx: {{shape: [{H}, {I}], std: 0.1}}
  bh: {{shape: [{H}, 1], std: 0.1}}
  V: {{shape: [1, {H}], std: 0.1}}
  c: {{shape: [1, 1], std: 0.1}}
data:
  X: {{shape: [{I * T}, {M}]}}
  Y: {{shape: [1, {M}], init: binary}}
input: X
layers:
  - recurrent: {{hidden_weight: Wh, input_weight: Wx, bias: bh, steps: {T}, activation: tanh, output: last}}
  - {{weight: V, bias: c, activation: sigmoid}}
objective: {{loss: binary_cross_entropy, target: Y, reduce: mean}}
"""

    def f(xp, p, d):
        h = 0.0 * d["X"][:H] if xp is np else xp.zeros((H, d["X"].shape[1]), dtype=d["X"].dtype)
        for t in range(T):
            h = xp.tanh(p["Wh"] @ h + p["Wx"] @ d["X"][t * I:(t + 1) * I] + p["bh"])
        z = p["V"] @ h + p["c"]
        y = d["Y"]
        return xp.sum(_softplus(xp, z) - y * z) / y.shape[1]
    return "RNN", text, f


def conv(F=64, C=16, S=8, M=8):
    """A 3×3 conv of F filters over C channels (N ≈ F·C·9), tanh, then a mean: the kernel is the param."""
    text = f"""name: conv F={F} C={C} S={S} M={M}
seed: 0
params:
  K: {{shape: [{F}, {C * 9}], std: 0.1}}
data:
  X: {{shape: [{C * S * S}, {M}]}}
input: X
layers:
  - conv: {{kernel: K, image: [{C}, {S}, {S}], size: [3, 3]}}
    activation: tanh
  - {{activation: square}}
objective: mean
"""
    P = (S - 2) ** 2
    rows = np.arange(S - 2)[:, None] * S + np.arange(S - 2)[None, :]
    taps = np.arange(3)[:, None] * S + np.arange(3)[None, :]
    pix = (taps.reshape(-1, 1) + rows.reshape(1, -1))  # (9, P)
    index = (np.arange(C)[:, None, None] * S * S + pix[None]).reshape(C * 9, P)  # channel-major taps

    def f(xp, p, d):
        cols = d["X"][index]  # (C·9, P, M)
        z = xp.einsum("fk,kpm->fpm", p["K"], cols)
        return xp.mean(xp.square(xp.tanh(z)))
    return "conv", text, f


def tied(H=50, D=200, M=50):
    """An autoencoder with tied weights: x̂ = Wᵀ σ(W x), squared error: N = H·D."""
    text = f"""name: tied W and W.T H={H} D={D} M={M}
seed: 0
params:
  W: {{shape: [{H}, {D}], std: 0.1}}
data:
  X: {{shape: [{D}, {M}]}}
input: X
layers:
  - {{weight: W, activation: sigmoid}}
  - {{weight: W.T}}
objective: {{loss: squared_error, target: X, reduce: mean}}
"""

    def f(xp, p, d):
        a = 1.0 / (1.0 + xp.exp(-(p["W"] @ d["X"])))
        return 0.5 * xp.sum(xp.square(p["W"].T @ a - d["X"])) / d["X"].shape[1]
    return "tied W and W.T", text, f


def mlp_softmax(D=100, H=90, K=10, M=100):
    """tanh hidden layer, softmax output, cross-entropy: N = H·D + H + K·H + K."""
    text = f"""name: MLP softmax D={D} H={H} K={K} M={M}
seed: 0
params:
  W1: {{shape: [{H}, {D}], std: 0.1}}
  b1: {{shape: [{H}, 1], std: 0.1}}
  W2: {{shape: [{K}, {H}], std: 0.1}}
  b2: {{shape: [{K}, 1], std: 0.1}}
data:
  X: {{shape: [{D}, {M}]}}
  Y: {{shape: [{K}, {M}], init: onehot}}
input: X
layers:
  - {{weight: W1, bias: b1, activation: tanh}}
  - {{weight: W2, bias: b2, activation: softmax}}
objective: {{loss: cross_entropy, target: Y, reduce: mean}}
"""

    def f(xp, p, d):
        z = p["W2"] @ xp.tanh(p["W1"] @ d["X"] + p["b1"]) + p["b2"]
        top = z.max(0) if xp is np else z.max(0)[0]
        lse = xp.log(xp.sum(xp.exp(z - top), 0)) + top
        return -xp.sum(d["Y"] * (z - lse)) / d["Y"].shape[1]
    return "MLP with softmax output", text, f


def _softplus(xp, z):
    return xp.logaddexp(0 * z, z) if xp is np else xp.nn.functional.softplus(z)


FAMILIES = {"softmax": softmax_regression, "argument": weight_and_argument, "rnn": rnn, "conv": conv,
            "tied": tied, "mlp_softmax": mlp_softmax}


# N ≈ 1e5 (--size 1e5): the same functions with larger params (the RNN, whose floor is the naive loop, is left out)
SIZES_1E5 = {"softmax": {"K": 10, "D": 10000}, "argument": {"H": 316, "M": 316}, "conv": {"F": 128, "C": 87},
             "tied": {"H": 100, "D": 1000}, "mlp_softmax": {"D": 1000, "H": 99}}


def specs(scale: float = 1.0, size: str = "1e4"):
    """(label, spec text, objective) of every family; scale multiplies the example count M."""
    out = []
    for key, build in FAMILIES.items():
        if size == "1e5" and key not in SIZES_1E5:
            continue
        defaults = build.__defaults__
        names = build.__code__.co_varnames[:build.__code__.co_argcount]
        kwargs = dict(zip(names, defaults))
        kwargs.update(SIZES_1E5.get(key, {}) if size == "1e5" else {})
        kwargs["M"] = max(1, int(kwargs["M"] * scale))
        out.append((key,) + build(**kwargs))
    return out


def _median(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = CLOCK[0]()
        run()
        times.append(CLOCK[0]() - t)
    return statistics.median(times)


def _naive(objective, params, data, entries, h=1e-5):
    """The cs231n loop: each entry ± h, the whole forward pass in numpy, restored."""
    for name, k in entries:
        p = params[name].reshape(-1)
        old = p[k]
        p[k] = old + h
        up = objective(np, params, data)
        p[k] = old - h
        down = objective(np, params, data)
        p[k] = old
        _ = (up - down) / (2 * h)


def _torch_full(torch, objective, params, data, names):
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in names) for k, v in params.items()}
    td = {k: torch.tensor(v, dtype=torch.float64) for k, v in data.items()}
    inputs = tuple(tp[k] for k in names)

    def fn(*xs):
        return objective(torch, {**tp, **dict(zip(names, xs))}, td)
    torch.autograd.gradcheck(fn, inputs, raise_exception=False)


def time_family(key, label, text, objective, repeat, budget, torch):
    """(label, N, gradcheck s, naive s, naive estimated?, torch s or None, torch estimated?)."""
    spec = gradcheck.loads(text, limits=LIMITS)
    params = {k: np.array(v, dtype=float) for k, v in spec.values.items() if k in spec.param_names}
    data = {k: np.array(v, dtype=float) for k, v in spec.values.items() if k not in spec.param_names}
    n = sum(v.size for v in params.values())
    result = gradcheck.check(spec)
    assert result.status == "pass", (key, result.status)
    ours = _median(lambda: gradcheck.check(spec), repeat)
    everything = [(name, k) for name in params for k in range(params[name].size)]
    rng = np.random.default_rng(0)
    pilot = [everything[i] for i in rng.choice(len(everything), size=min(SUBSET, len(everything)), replace=False)]
    t = CLOCK[0]()
    _naive(objective, params, data, pilot)
    per_entry = (CLOCK[0]() - t) / len(pilot)
    if per_entry * n > budget:
        naive, naive_est = per_entry * n, True
    else:
        naive, naive_est = _median(lambda: _naive(objective, params, data, everything), max(1, repeat // 2)), False
    torch_time, torch_est = None, False
    if torch is not None:
        names = tuple(params)
        _torch_subset(torch, objective, params, data, names, 8)  # untimed: torch's first call in a process warms up
        t = CLOCK[0]()
        # a subset: the same function of fewer free entries costs torch in proportion (one column per entry)
        _torch_subset(torch, objective, params, data, names, len(pilot))
        per = (CLOCK[0]() - t) / len(pilot)
        if per * n > budget:
            torch_time, torch_est = per * n, True
        else:
            torch_time = _median(lambda: _torch_full(torch, objective, params, data, names), 1)
    return label, n, ours, naive, naive_est, torch_time, torch_est


def _torch_subset(torch, objective, params, data, names, count):
    """torch gradcheck over `count` free entries (the rest held as constants): its per-entry cost."""
    flat = np.concatenate([params[k].reshape(-1) for k in names])
    pick = np.random.default_rng(1).choice(flat.size, size=min(count, flat.size), replace=False)
    base = torch.tensor(flat, dtype=torch.float64)
    td = {k: torch.tensor(v, dtype=torch.float64) for k, v in data.items()}
    sizes = [params[k].size for k in names]
    x = torch.tensor(flat[pick], dtype=torch.float64, requires_grad=True)
    index = torch.tensor(pick)

    def fn(free):
        full = base.index_put((index,), free)
        parts = torch.split(full, sizes)
        p = {k: part.reshape(params[k].shape) for k, part in zip(names, parts)}
        return objective(torch, p, td)
    torch.autograd.gradcheck(fn, (x,), raise_exception=False)


def load_torch(args):
    """torch on `args.threads` threads, or None when it is not installed or --no-torch."""
    if args.no_torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(int(args.threads))
    return torch


def machine_line(args, torch, extra: str = "") -> str:
    """The command and the machine a table was measured on (shared by kinds.py and networks.py)."""
    return ("$ python " + " ".join(sys.argv) + "\n"
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, numpy {np.__version__}"
            + (f", torch {torch.__version__}" if torch else ", torch not installed")
            + f", {args.threads} thread(s); medians of {args.repeat} (gradcheck)" + (f"; {extra}" if extra else ""))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds before a per-entry peer is estimated")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every family's example count")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--size", choices=("1e4", "1e5"), default="1e4", help="N of every family (1e5: no RNN)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or process CPU time (fairer on a loaded machine: every method is 1 thread)")
    args = parser.parse_args(argv)
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    torch = load_torch(args)
    print(machine_line(args, torch, f"{args.clock} time; 1-min load average {os.getloadavg()[0]:.2f}"))
    print(f"{'function':42s} {'N':>7s} {'gradcheck full':>15s} {'naive loop':>14s} {'torch full':>14s} "
          f"{'vs naive':>9s} {'vs torch':>9s}")
    chosen = set(args.families.split(","))
    for key, label, text, objective in specs(args.scale, args.size):
        if key not in chosen:
            continue
        label, n, ours, naive, naive_est, tt, t_est = time_family(key, label, text, objective, args.repeat,
                                                                   args.budget, torch)
        naive_s = f"{naive:.3g} s" + (" est." if naive_est else "")
        torch_s = "—" if tt is None else f"{tt:.3g} s" + (" est." if t_est else "")
        print(f"{label:42s} {n:7,d} {ours * 1e3:12.1f} ms {naive_s:>14s} {torch_s:>14s} {naive / ours:8.1f}× "
              + ("—" if tt is None else f"{tt / ours:8.1f}×"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
