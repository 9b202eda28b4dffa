"""A fail within a few tolerances, on an error a ladder of steps measured as truncation, is searched one ladder down
before it is reported: a ladder's gap estimates the truncation, it does not bound it. Found by a stress spec (tiny
weights into layer norm, Richardson): W[28, 56] failed at 1.2× its error with the hand-derived formula right."""

import numpy as np
import pytest

import gradcheck
from gradcheck import numeric
from gradcheck.check import NARROW, _failed_narrowly

SPEC = """\
name: layer norm after a dense layer with tiny weights, sigmoid, squared error
seed: 3
params:
  W: {shape: [60, 60], std: 0.0001}
  b0: {shape: [60, 1], std: 0.0001}
  g: {shape: [60, 1], mean: 1.0, std: 0.1}
  b: {shape: [60, 1], std: 0.1}
data:
  X: {shape: [60, 32], std: 1.0}
  Y: {shape: [60, 32], std: 0.5}
input: X
layers:
  - {weight: W, bias: b0}
  - {layernorm: {gain: g, bias: b, eps: 1e-5}, activation: sigmoid}
objective: {loss: squared_error, target: Y}
define:
  H: W @ X + b0
  C: H - mean(H, axis=0)
  s: sqrt(mean(C * C, axis=0) + 1e-5)
  Xh: C / s
  Z: g * Xh + b
  A: sigmoid(Z)
  Dz: (A - Y) * (A * (1 - A))
  dXh: g * Dz
  dH: (dXh - mean(dXh, axis=0) - Xh * mean(dXh * Xh, axis=0)) / s
expect:
  W: dH @ X.T
  b0: sum(dH, axis=1)
  g: sum(Dz * Xh, axis=1)
  b: sum(Dz, axis=1)
"""


def _estimate(values, error, noise):
    n = len(values)
    return numeric.Estimate(np.arange(n), np.asarray(values, float), np.asarray(error, float), np.asarray(noise, float),
                            np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, bool), np.ones(n),
                            np.ones(n, bool))


def test_failed_narrowly_is_a_fail_within_NARROW_tolerances_on_truncation():
    """Within NARROW tolerances and truncation-measured: searched; a wide fail, a pass, or an error that round-off
    makes up: not."""
    analytic = np.array([1.0, 1.0, 1.0, 1.0])
    est = _estimate([1.0 + 2e-5, 1.0 + 1e-3, 1.0 + 5e-6, 1.0 + 2e-5], [1e-5, 1e-5, 1e-5, 1e-5],
                    [1e-9, 1e-9, 1e-9, 1e-5])
    assert _failed_narrowly(analytic, est, 1e-8, 0.0).tolist() == [True, False, False, False]
    assert NARROW == 4.0  # 2e-5 is 2 tolerances of 1e-5, 1e-3 is 100


@pytest.mark.slow  # four checks of a 3,600-entry param: 2.7 s
@pytest.mark.parametrize("wrong", [False, True])
def test_a_narrow_fail_on_truncation_is_searched_before_it_is_reported(wrong):
    """The stress spec passes under Richardson (and central); its copy with layer norm's variance term dropped from
    dH fails on exactly W and b0 (both read dH)."""
    text = SPEC.replace("- Xh * mean(dXh * Xh, axis=0)) / s", ") / s") if wrong else SPEC
    assert wrong == (text != SPEC)
    for method in ("richardson", "central"):
        result = gradcheck.check(gradcheck.loads(text), method=method)
        failing = {p.name for p in result.params if p.status != "pass"}
        assert failing == ({"W", "b0"} if wrong else set()), (method, failing)
