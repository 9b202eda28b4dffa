"""The layer kinds of issue 11 at N ≈ 1e4, side by side: gradcheck full, a naive numpy loop, torch.

    python benchmarks/kinds.py [--repeat R] [--torch-repeat T] [--budget S] [--threads T] [--kinds a,b] [--no-torch]
                               [--clock cpu]
                               [--before DIR]

Each kind is one spec (a small network around the kind, its text below) and the same objective written once
for numpy and torch (`xp`), from the numbers gradcheck draws. The naive loop is cs231n's: for each entry,
θ ± h, the whole forward pass in numpy, restored. torch is torch.autograd.gradcheck (full, float64, its
defaults) on the same function, when torch is installed. A per-entry peer predicted to exceed --budget
seconds is timed on a random subset of entries and scaled (marked "est."). Prints the command, the machine
and one table of medians (gradcheck: median of --repeat full checks; naive: median of max(1, R // 2); torch: median
of --torch-repeat full checks, 1 by default: torch's own time for one check moves ±10% from run to run).
The gradcheck imported is this checkout's. --before DIR also times the gradcheck package in DIR (another commit's
`gradcheck/`, e.g. from `git archive`) on the same spec, in a subprocess of the same run: a before → after column.
"""

from __future__ import annotations

import os
import sys
import time

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
if __name__ == "__main__":  # one BLAS thread unless told otherwise, set before numpy loads
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    for _name in THREAD_VARIABLES:
        os.environ.setdefault(_name, _threads)

import argparse  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # this checkout's gradcheck, not an installed one
import subprocess  # noqa: E402

import gradcheck  # noqa: E402
import families  # noqa: E402
from families import SUBSET, _median, _naive, _torch_full, _torch_subset  # noqa: E402


def _sigmoid(xp, z):
    return 1.0 / (1.0 + xp.exp(-z))


def _col_max(xp, s):
    return s.max(axis=0, keepdims=True) if xp is np else s.max(axis=0, keepdims=True).values


def _norm(kind: str, D=100, M=64):
    """A dense layer, then the norm, tanh, squared error: N = D·D + D + 2D."""
    axis = 0 if kind == "layernorm" else 1
    text = f"""name: {kind} D={D} M={M}
seed: 0
params:
  W: {{shape: [{D}, {D}], std: 0.1}}
  b0: {{shape: [{D}, 1], std: 0.1}}
  g: {{shape: [{D}, 1], mean: 1, std: 0.1}}
  b: {{shape: [{D}, 1], std: 0.1}}
data:
  X: {{shape: [{D}, {M}]}}
  Y: {{shape: [{D}, {M}], std: 0.5}}
input: X
layers:
  - {{weight: W, bias: b0}}
  - {{{kind}: {{gain: g, bias: b, eps: 1e-5}}, activation: tanh}}
objective: {{loss: squared_error, target: Y}}
"""

    def f(xp, p, d):
        h = p["W"] @ d["X"] + p["b0"]
        c = h - h.mean(axis=axis, keepdims=True)
        xh = c / xp.sqrt((c * c).mean(axis=axis, keepdims=True) + 1e-5)
        return 0.5 * ((xp.tanh(p["g"] * xh + p["b"]) - d["Y"]) ** 2).sum()
    return text, f


def layernorm():
    return _norm("layernorm")


def batchnorm():
    return _norm("batchnorm")


def _norm_own(kind: str, n=5000, M=16):
    """The norm's own params only: gain and bias of n = 5,000 features, tanh, squared error: N = 2n."""
    axis = 0 if kind == "layernorm" else 1
    text = f"""name: {kind} gain and bias n={n} M={M}
seed: 0
params:
  g: {{shape: [{n}, 1], mean: 1, std: 0.1}}
  b: {{shape: [{n}, 1], std: 0.1}}
data:
  X: {{shape: [{n}, {M}]}}
  Y: {{shape: [{n}, {M}], std: 0.5}}
input: X
layers:
  - {{{kind}: {{gain: g, bias: b, eps: 1e-5}}, activation: tanh}}
objective: {{loss: squared_error, target: Y}}
"""

    def f(xp, p, d):
        c = d["X"] - d["X"].mean(axis=axis, keepdims=True)
        xh = c / xp.sqrt((c * c).mean(axis=axis, keepdims=True) + 1e-5)
        return 0.5 * ((xp.tanh(p["g"] * xh + p["b"]) - d["Y"]) ** 2).sum()
    return text, f


def layernorm_own():
    return _norm_own("layernorm")


def batchnorm_own():
    return _norm_own("batchnorm")


def _gated(kind: str, H, D=20, T=5, M=20):
    gates = 4 if kind == "lstm" else 3
    text = f"""name: {kind} H={H} D={D} T={T} M={M}
seed: 0
params:
  Wx: {{shape: [{gates * H}, {D}], std: 0.2}}
  Wh: {{shape: [{gates * H}, {H}], std: 0.2}}
  b: {{shape: [{gates * H}, 1], std: 0.1}}
data:
  X: {{shape: [{T * D}, {M}]}}
  Y: {{shape: [{H}, {M}], std: 0.3}}
input: X
layers:
  - {kind}: {{input_weight: Wx, hidden_weight: Wh, bias: b, steps: {T}}}
objective: {{loss: squared_error, target: Y}}
"""

    def f(xp, p, d):
        X = d["X"]
        h = c = 0.0 * d["Y"]
        for t in range(T):
            x = X[t * D:(t + 1) * D]
            if kind == "lstm":
                G = p["Wx"] @ x + p["Wh"] @ h + p["b"]
                i, fg, o = _sigmoid(xp, G[:H]), _sigmoid(xp, G[H:2 * H]), _sigmoid(xp, G[2 * H:3 * H])
                c = fg * c + i * xp.tanh(G[3 * H:])
                h = o * xp.tanh(c)
            else:
                ax, ah = p["Wx"] @ x + p["b"], p["Wh"] @ h
                r, u = _sigmoid(xp, ax[:H] + ah[:H]), _sigmoid(xp, ax[H:2 * H] + ah[H:2 * H])
                n = xp.tanh(ax[2 * H:] + r * ah[2 * H:])
                h = (1 - u) * n + u * h
        return 0.5 * ((h - d["Y"]) ** 2).sum()
    return text, f


def lstm():
    return _gated("lstm", 40)


def gru():
    return _gated("gru", 48)


def attention(d=58, T=32):
    """Causal single-head self-attention of the columns (tokens), squared error: N = 3·d·d."""
    mask = "\n".join("    - [" + ", ".join("-1e9" if s > t else "0" for t in range(T)) + "]" for s in range(T))
    text = f"""name: attention d={d} T={T}
seed: 0
params:
  Wq: {{shape: [{d}, {d}], std: 0.15}}
  Wk: {{shape: [{d}, {d}], std: 0.15}}
  Wv: {{shape: [{d}, {d}], std: 0.15}}
data:
  X: {{shape: [{d}, {T}]}}
  Y: {{shape: [{d}, {T}], std: 0.3}}
  M:
{mask}
input: X
layers:
  - attention: {{query: Wq, key: Wk, value: Wv, causal: true}}
objective: {{loss: squared_error, target: Y}}
"""

    def f(xp, p, dd):
        X = dd["X"]
        s = (p["Wk"] @ X).T @ (p["Wq"] @ X) / d ** 0.5 + dd["M"]
        e = xp.exp(s - _col_max(xp, s))
        return 0.5 * ((p["Wv"] @ X @ (e / e.sum(axis=0, keepdims=True)) - dd["Y"]) ** 2).sum()
    return text, f


def embedding(dim=50, V=200, k=3, K=10, M=64):
    """k context words picked from a table (dim, V), then softmax over K classes: N = dim·V + K·k·dim."""
    rng = np.random.default_rng(0)
    idx = rng.integers(0, V, size=(k, M))
    rows = "\n".join("    - [" + ", ".join(map(str, row)) + "]" for row in idx)
    text = f"""name: embedding dim={dim} V={V} k={k} M={M}
seed: 0
params:
  E: {{shape: [{dim}, {V}], std: 0.3}}
  W: {{shape: [{K}, {k * dim}], std: 0.1}}
data:
  T:
{rows}
  Y: {{shape: [{K}, {M}], init: onehot}}
input: T
layers:
  - embedding: {{table: E}}
  - {{weight: W, activation: softmax}}
objective: {{loss: cross_entropy, target: Y}}
"""

    def f(xp, p, d):
        t = d["T"].astype(int) if xp is np else d["T"].long()
        z = p["W"] @ xp.cat([p["E"][:, t[j]] for j in range(k)]) if xp is not np else \
            p["W"] @ np.vstack([p["E"][:, t[j]] for j in range(k)])
        top = _col_max(xp, z)
        return -(d["Y"] * (z - top - xp.log(xp.exp(z - top).sum(axis=0, keepdims=True)))).sum()
    return text, f


def dropout(D=100, H=100, K=10, M=64):
    """tanh layer, dropout (rate 0.5), softmax over K: N = H·D + H + K·H + K; the mask is read from the spec."""
    text = f"""name: dropout D={D} H={H} K={K} M={M}
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
  - dropout: {{rate: 0.5}}
  - {{weight: W2, bias: b2, activation: softmax}}
objective: {{loss: cross_entropy, target: Y}}
"""

    def f(xp, p, d):
        z = p["W2"] @ (xp.tanh(p["W1"] @ d["X"] + p["b1"]) * d["mask"]) + p["b2"]
        top = _col_max(xp, z)
        return -(d["Y"] * (z - top - xp.log(xp.exp(z - top).sum(axis=0, keepdims=True)))).sum()
    return text, f


KINDS = {"layernorm_own": layernorm_own, "batchnorm_own": batchnorm_own, "layernorm": layernorm, "batchnorm": batchnorm, "lstm": lstm, "gru": gru, "attention": attention,
         "embedding": embedding, "dropout": dropout}


BEFORE = """
import statistics, sys, time
sys.path.insert(0, sys.argv[1])
import gradcheck
clock = time.process_time if sys.argv[3] == "cpu" else time.perf_counter
spec = gradcheck.loads(sys.stdin.read())
assert gradcheck.check(spec).status == "pass"
times = []
for _ in range(int(sys.argv[2])):
    t = clock()
    gradcheck.check(spec)
    times.append(clock() - t)
print(statistics.median(times))
"""


def time_before(key, folder, repeat, clock):
    """Median seconds of `repeat` full checks of kind `key` by the gradcheck package in `folder` (a subprocess)."""
    text, _ = KINDS[key]()
    done = subprocess.run([sys.executable, "-c", BEFORE, os.path.abspath(folder), str(repeat), clock], input=text,
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def time_kind(key, repeat, budget, torch, torch_repeat=1):
    """(N, gradcheck s, naive s, naive estimated?, torch s or None, torch estimated?)."""
    text, objective = KINDS[key]()
    spec = gradcheck.loads(text)
    params = {k: np.array(v, dtype=float) for k, v in spec.values.items() if k in spec.param_names}
    data = {k: np.array(v, dtype=float) for k, v in spec.values.items() if k not in spec.param_names}
    for layer in spec.model.terms[0].layers:  # dropout's mask: the objective reads the one gradcheck drew
        if layer.kind == "dropout":
            data["mask"] = np.array(layer.options.mask)
    n = sum(v.size for v in params.values())
    assert np.isclose(objective(np, params, data), spec.objective(), rtol=1e-12), key
    result = gradcheck.check(spec)
    assert result.status == "pass", (key, result.status, result.message)
    ours = _median(lambda: gradcheck.check(spec), repeat)
    everything = [(name, k) for name in params for k in range(params[name].size)]
    rng = np.random.default_rng(0)
    pilot = [everything[i] for i in rng.choice(len(everything), size=min(SUBSET, len(everything)), replace=False)]
    clock = families.CLOCK[0]
    t = clock()
    _naive(objective, params, data, pilot)
    per_entry = (clock() - t) / len(pilot)
    if per_entry * n > budget:
        naive, naive_est = per_entry * n, True
    else:
        naive, naive_est = _median(lambda: _naive(objective, params, data, everything), max(1, repeat // 2)), False
    torch_time, torch_est = None, False
    if torch is not None:
        names = tuple(params)
        _torch_subset(torch, objective, params, data, names, 8)  # untimed: torch's first call in a process warms up
        t = clock()
        _torch_subset(torch, objective, params, data, names, len(pilot))
        per = (clock() - t) / len(pilot)
        if per * n > budget:
            torch_time, torch_est = per * n, True
        else:
            torch_time = _median(lambda: _torch_full(torch, objective, params, data, names), torch_repeat)
    return n, ours, naive, naive_est, torch_time, torch_est


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--torch-repeat", type=int, default=1, help="full torch checks to take the median of")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds before a per-entry peer is estimated")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--before", metavar="DIR", help="a folder holding another commit's gradcheck package")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall time, or process CPU time (fairer on a loaded machine: every method is 1 thread)")
    args = parser.parse_args(argv)
    families.CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    torch = families.load_torch(args)
    print(families.machine_line(args, torch, f"{args.clock} time; load {os.getloadavg()[0]:.2f}"))
    print(f"{'kind':14s} {'N':>7s} " + (f"{'before':>12s} " if args.before else "") + f"{'gradcheck full':>15s} "
          f"{'naive loop':>14s} {'torch full':>14s} {'vs naive':>9s} {'vs torch':>9s}")
    for key in args.kinds.split(","):
        before = time_before(key, args.before, args.repeat, args.clock) if args.before else None
        n, ours, naive, naive_est, tt, t_est = time_kind(key, args.repeat, args.budget, torch, args.torch_repeat)
        naive_s = f"{naive:.3g} s" + (" est." if naive_est else "")
        torch_s = "—" if tt is None else f"{tt:.3g} s" + (" est." if t_est else "")
        print(f"{key:14s} {n:7,d} " + ("" if before is None else f"{before * 1e3:9.1f} ms ")
              + f"{ours * 1e3:12.1f} ms {naive_s:>14s} {torch_s:>14s} {naive / ours:8.1f}× "
              + ("—" if tt is None else f"{tt / ours:8.1f}×"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
