"""Networks with merges (issue 11) at N ≈ 1e4, side by side: gradcheck full, a naive numpy loop, torch.

    python benchmarks/networks.py [--repeat R] [--budget S] [--threads T] [--no-torch]

Each network is one spec (named layers and merges) and the same objective written in numpy and in torch,
from the numbers gradcheck draws. The naive loop is the cs231n way (each entry ± h, the whole forward pass
in numpy); torch is torch.autograd.gradcheck, full (every entry), float64, its defaults, on the same
function, when torch is installed. The timing machinery is families.py's (medians; a per-entry peer
predicted to exceed --budget seconds is timed on a subset and scaled, marked "est.").
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # one BLAS thread unless told otherwise, set before numpy loads
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ.setdefault(_name, _threads)

import argparse  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families import load_torch, machine_line, time_family  # noqa: E402


def residual(H=70, K=4, M=32):
    """h = tanh(W1 x + b1), r = W2 h, a = tanh(r + x) (the skip as `add`), then a readout V a + c and a squared
    error: N = 2·H² + H + K·H + K."""
    text = f"""name: residual block H={H} K={K} M={M}
seed: 0
params:
  W1: {{shape: [{H}, {H}], std: 0.1}}
  W2: {{shape: [{H}, {H}], std: 0.1}}
  b1: {{shape: [{H}, 1], std: 0.1}}
  V: {{shape: [{K}, {H}], std: 0.1}}
  c: {{shape: [{K}, 1], std: 0.1}}
data:
  x: {{shape: [{H}, {M}]}}
  y: {{shape: [{K}, {M}]}}
input: x
layers:
  - {{name: h, weight: W1, bias: b1, activation: tanh}}
  - {{name: r, weight: W2}}
  - {{add: [r, x], activation: tanh}}
  - {{weight: V, bias: c}}
objective: {{loss: squared_error, target: y, reduce: mean}}
"""

    def f(xp, p, d):
        h = xp.tanh(p["W1"] @ d["x"] + p["b1"])
        a = xp.tanh(p["W2"] @ h + d["x"])
        return 0.5 * xp.sum(xp.square(p["V"] @ a + p["c"] - d["y"])) / d["y"].shape[1]
    return "residual block (add) + readout", text, f


def lstm(H=40, D=20, M=20):
    """One LSTM step from primitives (slice, mul, add): N = 4H·D + 4H·H + 4H."""
    text = f"""name: LSTM cell from primitives H={H} D={D} M={M}
seed: 0
params:
  Wx: {{shape: [{4 * H}, {D}], std: 0.1}}
  Wh: {{shape: [{4 * H}, {H}], std: 0.1}}
  b: {{shape: [{4 * H}, 1], std: 0.1}}
data:
  x: {{shape: [{D}, {M}]}}
  h0: {{shape: [{H}, {M}]}}
  c0: {{shape: [{H}, {M}]}}
  y: {{shape: [{H}, {M}]}}
layers:
  - {{name: gx, input: x, weight: Wx, bias: b}}
  - {{name: gh, input: h0, weight: Wh}}
  - {{name: g, add: [gx, gh]}}
  - {{name: i, slice: {{input: g, rows: [0, {H}]}}, activation: sigmoid}}
  - {{name: f, slice: {{input: g, rows: [{H}, {2 * H}]}}, activation: sigmoid}}
  - {{name: o, slice: {{input: g, rows: [{2 * H}, {3 * H}]}}, activation: sigmoid}}
  - {{name: u, slice: {{input: g, rows: [{3 * H}, {4 * H}]}}, activation: tanh}}
  - {{name: fc, mul: [f, c0]}}
  - {{name: iu, mul: [i, u]}}
  - {{name: c, add: [fc, iu]}}
  - {{name: tc, input: c, activation: tanh}}
  - {{name: h, mul: [o, tc]}}
objective: {{loss: squared_error, target: y}}
"""

    def f(xp, p, d):
        g = p["Wx"] @ d["x"] + p["b"] + p["Wh"] @ d["h0"]
        sig = (lambda z: 1 / (1 + np.exp(-z))) if xp is np else xp.sigmoid
        i, fg, o, u = sig(g[:H]), sig(g[H:2 * H]), sig(g[2 * H:3 * H]), xp.tanh(g[3 * H:])
        h = o * xp.tanh(fg * d["c0"] + i * u)
        return 0.5 * xp.sum(xp.square(h - d["y"]))
    return "LSTM cell from primitives (slice, mul, add)", text, f


NETWORKS = {"residual": residual, "lstm": lstm}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds before a per-entry peer is estimated")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    torch = load_torch(args)
    print(machine_line(args, torch))
    print(f"{'function':46s} {'N':>7s} {'gradcheck full':>15s} {'naive loop':>14s} {'torch full':>14s} "
          f"{'vs naive':>9s} {'vs torch':>9s}")
    for key, build in NETWORKS.items():
        label, text, objective = build()
        label, n, ours, naive, naive_est, tt, t_est = time_family(key, label, text, objective, args.repeat,
                                                                   args.budget, torch)
        naive_s = f"{naive:.3g} s" + (" est." if naive_est else "")
        torch_s = "—" if tt is None else f"{tt:.3g} s" + (" est." if t_est else "")
        print(f"{label:46s} {n:7,d} {ours * 1e3:12.1f} ms {naive_s:>14s} {torch_s:>14s} {naive / ours:8.1f}× "
              + ("—" if tt is None else f"{tt / ours:8.1f}×"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
