"""How close column_fit's ΔJ is to the truth, beside the exact chunks it replaces, at 40 digits (mpmath).

    python benchmarks/column_fit_precision.py [--sample K]

The spec: a dense layer (24 × 24), layer norm with gain and bias, tanh, squared error, X of std 1 and of std 1e3.
Every entry of W moves both ways at the central step and at Richardson's widest (4 × its eps); on K sampled entries,
ΔJ from the fit and from the exact chunks (forced: MIN_VARIANTS out of reach) is held to J(W + h e_k) − J(W) at 40
digits. Printed as shares of the round-off term the verdict gives each variant (ROUNDING × size), with the share the
fit's bound adds to that term.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(os.path.dirname(HERE), "tests")]

from gradcheck import numeric, spread_tail  # noqa: E402
from gradcheck.perturb import Perturber  # noqa: E402
from test_column_fit import _net_mp, _spec  # noqa: E402


def shares(x_std: float, eps: float, sample: int):
    """(fit's error, exact chunks' error, the fit's bound) as the largest shares of the round-off term."""
    spec = _spec(x_std=x_std)
    n = spec.values["W"].size
    h = eps * np.maximum(1.0, np.abs(np.ravel(spec.values["W"])))
    entries, steps = np.concatenate([np.arange(n)] * 2), np.concatenate([h, -h])
    fit = Perturber(spec.model, dict(spec.values), "W")(entries, steps)
    kept, spread_tail.MIN_VARIANTS = spread_tail.MIN_VARIANTS, 10**12
    exact = Perturber(spec.model, dict(spec.values), "W")(entries, steps)
    spread_tail.MIN_VARIANTS = kept
    W, v = np.array(spec.values["W"]), {k: np.asarray(spec.values[k]) for k in ("X", "Y", "g", "b")}
    picked = np.random.default_rng(0).choice(n, sample, replace=False)
    truth = np.array([_net_mp(W, v, k, h[k]) for k in picked])
    term = numeric.ROUNDING * exact[2][picked]
    return (np.max(np.abs(fit[0][picked] - truth) / term), np.max(np.abs(exact[0][picked] - truth) / term),
            np.max((fit[2][picked] - exact[2][picked]) * numeric.ROUNDING / term))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=10)
    args = parser.parse_args(argv)
    print(f"$ python benchmarks/column_fit_precision.py --sample {args.sample}")
    print(f"{'X std':>6s} {'step':>18s} {'fit error':>10s} {'chunks error':>13s} {'fit bound':>10s}"
          "   (shares of ROUNDING × size)")
    for x_std in (1.0, 1e3):
        for label, eps in (("central", numeric.DEFAULT_EPS), ("richardson 4×eps", 4 * numeric.RICHARDSON_EPS)):
            fit, exact, bound = shares(x_std, eps, args.sample)
            print(f"{x_std:6g} {label:>18s} {fit:10.2%} {exact:13.2%} {bound:10.1%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
