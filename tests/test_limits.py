"""Resource limits: each refusal names the figure, the limit and the option; each option raises it."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import textwrap
import time
import tracemalloc

import pytest

import gradcheck
from gradcheck import budget
from gradcheck.check import check
from gradcheck.guard import can_time_out, check_one
from gradcheck.limits import DEFAULT, Limits, parse_size
from conftest import ICA, SLOW, invoke



def refusal(text: str, limits: Limits | None = None) -> gradcheck.SpecError:
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(textwrap.dedent(text), "t.yaml", limits)
    return info.value


def loads(text: str, limits: Limits | None = None):
    return gradcheck.loads(textwrap.dedent(text), "t.yaml", limits)


def test_defaults_are_the_documented_figures():
    assert (DEFAULT.file_size, DEFAULT.elements, DEFAULT.total_elements) == (1_000_000, 1_000_000, 5_000_000)
    assert (DEFAULT.expression_length, DEFAULT.expression_depth, DEFAULT.layers, DEFAULT.terms) == (2000, 40, 256, 64)
    assert (DEFAULT.steps, DEFAULT.memory, DEFAULT.timeout) == (200_000, 10**9, 120.0)


def test_file_size_from_the_cli(tmp_path):
    size = ICA.stat().st_size
    data = json.loads(invoke("run", "--format", "json", "--max-file-size", "500", str(ICA)).output)
    assert data["specs"][0]["message"] == (f"{ICA}:1:1: file is {size:,} bytes; the limit is 500 "
                                           f"(raise it with --max-file-size)")
    assert invoke("run", "--format", "json", "--max-file-size", "1K", str(ICA)).exit_code == 0
    assert invoke("run", "--format", "json", "--max-file-size", "lots", str(ICA)).exit_code == 2


def test_elements_per_declared_matrix():
    text = "params:\n  W: {shape: [20, 30]}\ninput: W\n"
    e = refusal(text, Limits(elements=500))
    assert (e.line, e.col) == (2, 14)
    assert e.message == "W would hold 600 numbers; the limit is 500 per matrix (raise it with --max-elements)"
    assert loads(text, Limits(elements=600)).values["W"].shape == (20, 30)


def test_elements_per_computed_matrix_a_layer_output_and_an_expression_part():
    layer = """\
        params:
          W: {shape: [40, 1]}
        data:
          x: {shape: [1, 40]}
        input: x
        layers:
          - {weight: W}
        """
    e = refusal(layer, Limits(elements=1000))
    assert (e.line, e.col) == (7, 5)
    assert e.message.startswith("the output of layer 1, shape (40, 40), would hold 1,600 numbers; the limit is 1,000")
    assert loads(layer, Limits(elements=1600)).model.terms[0].layers[0].out_shape == (40, 40)  # at the limit: loads
    expression = "params:\n  W: {shape: [40, 1]}\ninput: W\ndefine:\n  big: 2 * (W @ W.T) + 1\n"
    e = refusal(expression, Limits(elements=1000))
    assert (e.line, e.col) == (5, 13)  # the @, not the whole expression
    assert "this part would hold 1,600 numbers, shape (40, 40)" in e.message and "--max-elements" in e.message


def test_total_elements():
    text = "params:\n  W: {shape: [10, 10]}\ndata:\n  x: {shape: [10, 10]}\n  y: {shape: [10, 10]}\ninput: W\n"
    e = refusal(text, Limits(total_elements=250))
    assert (e.line, e.col) == (5, 6)
    assert e.message == ("the spec's matrices would hold 300 numbers in all; the limit is 250 "
                         "(raise it with --max-total-elements)")
    loads(text, Limits(total_elements=300))


def test_expression_length_and_depth():
    text = "params:\n  W: {shape: [2, 2]}\ninput: W\nexpect:\n  W: " + "+".join(["W"] * 30) + "\n"
    e = refusal(text, Limits(expression_length=50))
    assert e.message == ("expect W is 59 characters long; the limit is 50 (raise it with --max-expression-length)")
    assert (e.line, e.col) == (5, 6)
    e = refusal(text, Limits(expression_depth=20))
    assert e.message == "expression is nested deeper than 20 levels (raise it with --max-expression-depth)"
    loads(text, Limits(expression_depth=30))
    brackets = "params:\n  W: {shape: [2, 2]}\ninput: W\nexpect:\n  W: " + "(" * 45 + "W" + ")" * 45 + "\n"
    e = refusal(brackets)
    assert e.message.startswith("expect W nests brackets deeper than 40 levels (raise it with --max-expression-depth)")
    assert (e.line, e.col) == (5, 46)  # the bracket that goes one level too deep
    loads(brackets, Limits(expression_depth=60))
    with pytest.raises(ValueError, match="cannot exceed 200"):
        Limits(expression_depth=500)
    assert invoke("run", "--format", "json", "--max-expression-depth", "500", str(ICA)).exit_code == 2


def test_layers_and_terms():
    layers = "params:\n  W: [[1.0]]\ninput: W\nlayers:\n" + "  - activation: tanh\n" * 12
    e = refusal(layers, Limits(layers=10))
    assert e.message == "12 layers; the limit is 10 per term (raise it with --max-layers)"
    loads(layers, Limits(layers=12))
    terms = "params:\n  W: [[1.0]]\nterms:\n" + "  - {input: W}\n" * 5
    e = refusal(terms, Limits(terms=4))
    assert e.message == "5 terms; the limit is 4 (raise it with --max-terms)" and (e.line, e.col) == (4, 3)
    loads(terms, Limits(terms=5))


def test_steps_count_two_evaluations_per_param_entry():
    text = "params:\n  W: {shape: [30, 20]}\n  b: {shape: [30, 1]}\ninput: W\n"
    e = refusal(text, Limits(steps=1000))
    assert (e.line, e.col) == (2, 3)
    assert e.message == ("checking needs 1,260 evaluations of J (2 per param entry; W alone has 600 entries); "
                         "the limit is 1,000 (raise it with --max-steps)")
    loads(text, Limits(steps=1260))
    richardson = text + "check: {method: richardson}\n"  # four evaluations per entry
    assert refusal(richardson, Limits(steps=2000)).message.startswith("checking needs 2,520 evaluations of J (4 per")
    sampled = text + "check: {mode: 'sample:10'}\n"  # ten entries per param
    loads(sampled, Limits(steps=40))
    big = "params:\n  W: {shape: [400, 300]}\ninput: W\n"
    assert "--max-steps" in refusal(big).message  # 240,000 > 200,000 by default


MEMORY = """\
params:
  s: 1.5
data:
  x: {shape: [300, 300]}
input: x
layers:
"""


def test_memory_estimate_refuses_before_allocating():
    text = MEMORY + "  - activation: {scale: s}\n" * 10
    tracemalloc.start()
    try:
        e = refusal(text, Limits(memory=50 * 10**6))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 10**6, "refused only after allocating"
    assert (e.line, e.col) == (7, 5)
    assert e.message.startswith("the check would need about 64.4 MB of memory")
    assert "one evaluation of J holds 1,890,000 numbers; the largest output is layer 1 (I, {scale: s}), " \
           "shape (300, 300)); the limit is 50 MB (raise it with --max-memory)" in e.message
    loads(text, Limits(memory=80 * 10**6))


def test_memory_estimate_bounds_the_measured_peak_and_a_lower_limit_shrinks_batches():
    """tracemalloc sees numpy's allocations: the peak stays under the estimate, which stays under the limit."""
    text = textwrap.dedent("""\
        params:
          W: {shape: [30, 40], std: 0.3}
        data:
          x: {shape: [40, 300]}
        input: x
        layers:
          - {weight: W, activation: tanh}
          - {activation: square}
        """)
    peaks = []
    for limit in (10**9, 30 * 10**6, 8 * 10**6):
        limits = Limits(memory=limit)
        spec = gradcheck.loads(text, "t.yaml", limits)
        memory = budget.batch_memory(spec.model, limits)
        estimate = budget.estimate(spec.model, memory).total
        tracemalloc.start()
        try:
            result = check(spec, memory=memory)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.status == "pass", result.message
        assert peak <= estimate <= limit, (peak, estimate, limit)
        assert estimate <= 20 * peak, "an estimate this loose would refuse specs that fit"
        peaks.append(peak)
    assert peaks[0] > peaks[1] > peaks[2]  # smaller batches, same verdict


def test_options_raise_limits_from_the_cli(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("params:\n  W: {shape: [30, 30]}\ninput: W\nlayers:\n  - activation: tanh\n")
    tight = ["--max-elements", "100", "--max-steps", "100", "--max-memory", "50K"]
    data = json.loads(invoke("run", "--format", "json", *tight, str(spec)).output)
    assert "--max-elements" in data["specs"][0]["message"]
    relaxed = ["--max-elements", "900", "--max-steps", "1800", "--max-memory", "5M"]
    result = invoke("run", "--format", "json", *relaxed, str(spec))
    assert result.exit_code == 0, result.output


def test_a_spec_cannot_raise_its_own_limits():
    e = refusal("params:\n  W: [[1.0]]\ninput: W\ncheck: {max_elements: 10000000}\n")
    assert e.message.startswith('unknown key "max_elements" in check')


def test_limits_table():
    assert parse_size("5M") == 5 * 10**6 and parse_size("1.5G") == 1.5e9 and parse_size("200k") == 200_000
    assert parse_size("123") == 123 and parse_size("64 MB") == 64 * 10**6
    with pytest.raises(ValueError):
        parse_size("-3")
    with pytest.raises(ValueError):
        Limits(elements=0)
    assert DEFAULT.raised(elements=5, steps=None) == Limits(elements=5)


# ----------------------------------------------------------------------------- time limit

# W used twice: every perturbation is a dense pass of two 200x150x800 products, 60,000 times.


@pytest.mark.slow
@pytest.mark.skipif(not can_time_out(), reason="no SIGALRM here")
def test_a_runaway_spec_becomes_an_error_row_and_the_batch_goes_on(tmp_path):
    (tmp_path / "a.yaml").write_text(ICA.read_text())
    (tmp_path / "b_slow.yaml").write_text(SLOW)  # minutes, unless stopped
    (tmp_path / "c.yaml").write_text(ICA.read_text())
    started = time.perf_counter()
    result = invoke("run", "--format", "json", "--timeout", "0.5", str(tmp_path))
    assert time.perf_counter() - started < 10
    assert result.exit_code == 1
    a, b, c = json.loads(result.output)["specs"]
    assert (a["status"], b["status"], c["status"]) == ("pass", "error", "pass")
    assert b["message"].startswith(f"{tmp_path / 'b_slow.yaml'}:1:1: gave up after 0.5 s, the time limit per spec "
                                   f"(raise it with --timeout)")


def _check_in_worker(path: str, seconds: float):
    return check_one(path, Limits(timeout=seconds))


@pytest.mark.slow
@pytest.mark.skipif(not can_time_out(), reason="no SIGALRM here")
def test_the_time_limit_works_inside_a_worker_process(tmp_path):
    slow = tmp_path / "slow.yaml"
    slow.write_text(SLOW)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a process pool may use
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        started = time.perf_counter()
        row = pool.submit(_check_in_worker, str(slow), 0.5).result(timeout=60)
        elapsed = time.perf_counter() - started
    assert row.status == "error" and "gave up after 0.5 s" in row.message
    assert (row.error.file, row.error.line, row.error.col) == (str(slow), 1, 1)  # survives pickling
    assert elapsed < 20


def test_the_time_limit_leaves_no_alarm_behind():
    import signal

    before = signal.getsignal(signal.SIGALRM)
    check_one(str(ICA), Limits(timeout=30))
    assert signal.getsignal(signal.SIGALRM) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


BIG_MLP = """\
seed: 0
params:
  W1: {shape: [256, 784], std: 0.05}
  b1: {shape: [256, 1]}
  W2: {shape: [1, 256], std: 0.05}
  b2: {shape: [1, 1]}
data:
  X: {shape: [784, 4]}
  Y: {shape: [1, 4], init: binary}
input: X
layers:
  - {weight: W1, bias: b1, activation: tanh}
  - {weight: W2, bias: b2, activation: sigmoid}
objective: {loss: binary_cross_entropy, target: Y, reduce: mean}
"""


def test_max_steps_counts_the_mode_given_on_the_command_line(tmp_path):
    """--mode fast and --mode sample:K are counted as what they evaluate, as `check: {mode: ...}` in the spec is."""
    path = tmp_path / "big.yaml"
    path.write_text(BIG_MLP)
    full = invoke("run", "--format", "json", path)
    assert "needs 402," in full.output and "the limit is 200,000" in full.output
    for mode in ("fast", "sample:10"):
        result = invoke("run", "--format", "json", "--mode", mode, path)
        assert json.loads(result.output)["specs"][0]["status"] == "pass", (mode, result.output)
    tight = invoke("run", "--format", "json", "--mode", "sample:10", "--max-steps", "30", path)
    assert "needs 62 evaluations" in tight.output  # (10 + 10 + 10 + 1 entries) × 2


def test_fast_mode_does_not_localize_beyond_max_steps(tmp_path):
    path = tmp_path / "wrong.yaml"
    path.write_text(BIG_MLP.replace("[256, 784]", "[16, 30]").replace("[784, 4]", "[30, 4]").replace("[256, 1]", "[16, 1]")
                    .replace("[1, 256]", "[1, 16]") + "expect:\n  W1: 2 * W1\n")
    spec = json.loads(invoke("run", "--format", "json", "--mode", "fast", "--max-steps", "500", path).output)["specs"][0]
    w1 = next(p for p in spec["params"] if p["name"] == "W1")
    assert w1["status"] == "fail" and "not localized" in w1["note"], w1
