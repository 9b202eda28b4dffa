"""The memory estimate (budget.py) bounds what a check really allocates, and stays within 3× of it."""

import sys
import tracemalloc

import pytest

import gradcheck
from conftest import BUNDLED, ROOT
from gradcheck import budget

sys.path.insert(0, str(ROOT / "benchmarks"))
import families  # noqa: E402
import kinds  # noqa: E402
import networks  # noqa: E402

SOFTMAX_SQUARED = families.softmax_regression(10, 1000, 20)[1].replace(
    "{loss: cross_entropy, target: Y, reduce: mean}", "{loss: squared_error, target: Y, reduce: mean}")


def peak_and_estimate(load):
    """(tracemalloc's peak over loading and checking, the estimate's total), after one warm-up run."""
    gradcheck.check(load())
    tracemalloc.start()
    try:
        spec = load()
        assert gradcheck.check(spec).status == "pass"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, budget.estimate(spec.model).total


def assert_bounds(load):
    peak, estimate = peak_and_estimate(load)
    assert peak <= estimate <= 3 * peak, (peak, estimate)


@pytest.mark.slow  # tracemalloc slows every allocation: 2.6 s of the fast suite's 20
@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_the_estimate_bounds_the_peak_of_every_bundled_spec(path):
    assert_bounds(lambda: gradcheck.load(str(path)))


LONG_LSTM = """name: LSTM over 40 steps
seed: 0
params:
  Wx: {shape: [40, 3], std: 0.3}
  Wh: {shape: [40, 10], std: 0.3}
  b: {shape: [40, 1], std: 0.1}
data:
  X: {shape: [120, 8]}
  Y: {shape: [10, 8], std: 0.3}
input: X
layers:
  - lstm: {input_weight: Wx, hidden_weight: Wh, bias: b, steps: 40}
objective: {loss: squared_error, target: Y}
"""


@pytest.mark.slow
def test_the_estimate_bounds_a_long_lstm():
    """An LSTM's chunks hold an input-side tile for every step (gated_moved.moved_numbers): over 40 steps they
    outweigh the rest; counted as one step's, the estimate was 5× under a member's measured bytes."""
    assert_bounds(lambda: gradcheck.loads(LONG_LSTM))


@pytest.mark.slow
@pytest.mark.parametrize("text", [families.softmax_regression()[1], SOFTMAX_SQUARED, families.tied(M=10)[1],
                                  families.mlp_softmax(M=20)[1], families.conv(M=2)[1], networks.residual()[1],
                                  networks.lstm()[1], kinds.attention()[0], kinds.layernorm()[0]],
                         ids=["softmax_regression_1e4", "softmax_squared_error_dense", "tied", "mlp_softmax", "conv",
                              "residual_network", "lstm_network", "attention_reweighted", "layernorm_spread"])
def test_the_estimate_bounds_the_peak_at_n_1e4(text):
    """Softmax regression at N ≈ 1e4 peaked at 3.25 GB against 258 MiB when every evaluation was sized as one row."""
    assert_bounds(lambda: gradcheck.loads(text))
