"""Measure how closely conv and recurrent gradients match their explicit constructions.

Run from the repository root:  python benchmarks/structured_agreement.py
The oracles are the ones in tests/test_structured.py (the dense matrix with tied entries summed,
and the unrolled chain of dense layers with one weight copy per step); the tests assert 1e-10,
this prints the actual largest differences.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

import test_structured as t  # noqa: E402

RNN_CONFIGS = [(1, 2, 3, 2, 1), (4, 3, 2, 3, 1), (6, 2, 1, 2, 2), (50, 4, 3, 5, 1)]  # steps, n, d, m, h0 cols


def worst(pairs) -> tuple[float, float]:
    """(max |a − b|, that over max |b|) across (engine, oracle) pairs."""
    out = (0.0, 0.0)
    for a, b in pairs:
        d = float(np.abs(a - b).max())
        out = max(out, (d, d / max(float(np.abs(b).max()), 1e-300)))
    return out


def conv_pairs():
    for channels, spatial, size, stride, padding, filters, m in t.CONV_CASES.values():
        spec = t.conv_spec(channels, spatial, size, stride, padding, filters, m)
        v, g = spec.values, spec.gradient()
        _, dK, dc, dX = t.dense_conv_oracle(v["K"], v["c"], v["X"], v["Y"], (channels, spatial, size, stride, padding))
        yield from ((g["K"], dK), (g["c"], dc), (g["X"], dX))


def rnn_pairs():
    for output in ("last", "all"):
        for steps, hidden, inputs, m, h0_cols in RNN_CONFIGS:
            rows = hidden * (steps if output == "all" else 1)
            spec = t.load(f"""\
                seed: 11
                params:
                  Wh: {{shape: [{hidden}, {hidden}], std: 0.6}}
                  Wx: {{shape: [{hidden}, {inputs}]}}
                  b: {{shape: [{hidden}, 1], std: 0.3}}
                  h0: {{shape: [{hidden}, {h0_cols}], std: 0.5}}
                  X: {{shape: [{steps * inputs}, {m}]}}
                data:
                  Y: {{shape: [{rows}, {m}], init: uniform, low: -0.8, high: 0.8}}
                input: X
                layers:
                  - recurrent: {{hidden_weight: Wh, input_weight: Wx, bias: b, steps: {steps}, init: h0, output: {output}}}
                objective: {{loss: squared_error, target: Y}}
                """)
            v, g = spec.values, spec.gradient()
            _, expected = t.unrolled_rnn_oracle(v["Wh"], v["Wx"], v["b"], v["h0"], v["X"], v["Y"], steps, output)
            yield from ((g[name], expected[name]) for name in expected)


if __name__ == "__main__":
    d, r = worst(conv_pairs())
    print(f"conv vs dense matrix with tied entries ({len(t.CONV_CASES)} geometries; K, c, X): "
          f"max |diff| {d:.1e}, relative {r:.1e}")
    d, r = worst(rnn_pairs())
    print(f"recurrent vs unrolled dense chain ({2 * len(RNN_CONFIGS)} configurations, up to 50 steps; "
          f"Wh, Wx, b, h0, X): max |diff| {d:.1e}, relative {r:.1e}")
