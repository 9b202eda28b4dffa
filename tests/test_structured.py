"""Convolution, max pooling and recurrent layers against independent constructions.

The oracles here share no code with the engine: the convolution is rebuilt as the dense matrix
the seed describes (the kernel repeated at every position, zero where there is no connection)
and its kernel gradient is the sum of the dense gradient over the tied entries; the recurrent
layer is rebuilt as the unrolled chain of dense layers with one copy of (Wh, Wx, b) per step,
whose copy gradients are summed; max pooling is compared with finite differences.
The spec is only used to learn the numbers the engine drew (`spec.values`).
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import gradcheck
from gradcheck import network
from conftest import SPECS, invoke

TIGHT = 1e-10  # the bar: agreement with the explicit construction


def load(text: str):
    return gradcheck.loads(textwrap.dedent(text), "t.yaml")


def assert_close(actual, expected, what=""):
    """|actual − expected| <= 1e-10·max(1, |expected|) entrywise."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, rtol=TIGHT, atol=TIGHT * max(1.0, np.abs(expected).max()),
                               err_msg=what)


def finite_differences(spec, name, h=1e-6):
    """Plain central differences of spec.objective in one name, entry by entry."""
    theta = np.array(spec.values[name], dtype=float)
    out = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        plus, minus = theta.copy(), theta.copy()
        step = h * max(1.0, abs(theta[idx]))
        plus[idx] += step
        minus[idx] -= step
        out[idx] = (spec.objective({name: plus}) - spec.objective({name: minus})) / (plus[idx] - minus[idx])
    return out


# ----------------------------------------------------------------------------- (1) conv = tied dense layer


def dense_conv_matrix(K, channels, spatial, size, stride, padding):
    """The convolution as the explicit (F·H'·W', C·H·W) matrix: K's entries repeated, 0 off the window.

    Also returns, for every kernel entry, the list of matrix positions it occupies (its ties).
    """
    spatial = tuple(spatial) + (1,) * (2 - len(spatial))  # a signal is a 1-row image
    size = tuple(size) + (1,) * (2 - len(size))
    stride = tuple(stride) + (1,) * (2 - len(stride))
    padding = tuple(padding) + (0,) * (2 - len(padding))
    (H, W), (kh, kw) = spatial, size
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (W + 2 * padding[1] - kw) // stride[1] + 1
    F = K.shape[0]
    M = np.zeros((F * Ho * Wo, channels * H * W))
    ties = {}
    for f in range(F):
        for i in range(Ho):
            for j in range(Wo):
                row = f * Ho * Wo + i * Wo + j
                for c in range(channels):
                    for u in range(kh):
                        for v in range(kw):
                            r, s = i * stride[0] + u - padding[0], j * stride[1] + v - padding[1]
                            if 0 <= r < H and 0 <= s < W:  # otherwise it reads a padding zero: no connection
                                k = c * kh * kw + u * kw + v
                                col = c * H * W + r * W + s
                                M[row, col] = K[f, k]
                                ties.setdefault((f, k), []).append((row, col))
    return M, ties, Ho * Wo


def dense_conv_oracle(K, c, X, Y, geometry):
    """J and (dK, dc, dX) of J = ½‖tanh(M X + c per filter) − Y‖², M the dense convolution matrix."""
    M, ties, positions = dense_conv_matrix(K, *geometry)
    bias = np.repeat(c, positions, axis=0)  # filter f's bias on each of its positions
    A = np.tanh(M @ X + bias)
    J = 0.5 * np.sum((A - Y) ** 2)
    delta = (A - Y) * (1 - A ** 2)
    dM = delta @ X.T  # the dense layer's gradient, every entry its own weight
    dK = np.zeros_like(K)
    for (f, k), places in ties.items():  # a tied weight gets the sum over the places it is used
        dK[f, k] = sum(dM[r, col] for r, col in places)
    dc = delta.reshape(K.shape[0], positions, -1).sum(axis=(1, 2))[:, None]
    return J, dK, dc, M.T @ delta


CONV_CASES = {
    # name: (channels, spatial, size, stride, padding, filters, examples)
    "2d_basic": (1, (6, 6), (3, 3), (1, 1), (0, 0), 2, 3),
    "2d_stride_pad_channels": (2, (5, 6), (3, 2), (2, 1), (1, 2), 3, 2),
    "2d_stride_exceeds_size": (3, (7, 7), (2, 2), (3, 3), (0, 0), 2, 2),
    "1d": (2, (9,), (4,), (1,), (0,), 3, 3),
    "1d_stride_pad": (1, (10,), (3,), (2,), (2,), 2, 4),
}


def conv_spec(channels, spatial, size, stride, padding, filters, m):
    image = [channels, *spatial]
    taps = channels * int(np.prod(size))
    rows = int(np.prod(image))
    lists = lambda t: "[" + ", ".join(map(str, t)) + "]"  # noqa: E731
    M, _, positions = dense_conv_matrix(np.zeros((filters, taps)), channels, spatial, size, stride, padding)
    return load(f"""\
        seed: 5
        params:
          K: {{shape: [{filters}, {taps}], std: 0.4}}
          c: {{shape: [{filters}, 1], std: 0.3}}
          X: {{shape: [{rows}, {m}]}}
        data:
          Y: {{shape: [{filters * positions}, {m}], init: uniform, low: -1, high: 1}}
        input: X
        layers:
          - conv: {{kernel: K, image: {lists(image)}, size: {lists(size)}, stride: {lists(stride)}, padding: {lists(padding)}}}
            bias: c
            activation: tanh
        objective: {{loss: squared_error, target: Y}}
        """)


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv_equals_the_dense_layer_with_tied_entries(case):
    channels, spatial, size, stride, padding, filters, m = CONV_CASES[case]
    spec = conv_spec(channels, spatial, size, stride, padding, filters, m)
    v = spec.values
    J, dK, dc, dX = dense_conv_oracle(v["K"], v["c"], v["X"], v["Y"], (channels, spatial, size, stride, padding))
    assert spec.objective() == pytest.approx(J, rel=1e-13)
    grads = spec.gradient()
    assert_close(grads["K"], dK, "kernel")
    assert_close(grads["c"], dc, "bias")
    assert_close(grads["X"], dX, "input")


def test_dense_conv_oracle_is_itself_right():
    """The oracle's kernel gradient matches plain-numpy finite differences of its own objective."""
    geometry = (2, (5, 6), (3, 2), (2, 1), (1, 2))
    rng = np.random.default_rng(0)
    K, c, X, Y = rng.normal(size=(3, 12)), rng.normal(size=(3, 1)), rng.normal(size=(60, 2)), rng.normal(size=(81, 2))
    _, dK, _, _ = dense_conv_oracle(K, c, X, Y, geometry)
    numeric = np.zeros_like(K)
    for idx in np.ndindex(K.shape):
        Kp, Km = K.copy(), K.copy()
        Kp[idx] += 1e-6
        Km[idx] -= 1e-6
        numeric[idx] = (dense_conv_oracle(Kp, c, X, Y, geometry)[0] - dense_conv_oracle(Km, c, X, Y, geometry)[0]) / 2e-6
    np.testing.assert_allclose(dK, numeric, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- (2) recurrent = unrolled dense


def unrolled_rnn_oracle(Wh, Wx, b, h0, X, Y, steps, output):
    """J = ½‖out − Y‖² of an RNN unrolled into `steps` dense layers, each with its own copy of
    (Wh, Wx, b); the shared weights' gradients are the sums of the copies' gradients."""
    d = Wx.shape[1]
    xs = [X[t * d:(t + 1) * d] for t in range(steps)]
    copies = [(Wh.copy(), Wx.copy(), b.copy()) for _ in range(steps)]  # independent weights per layer
    hs = [np.broadcast_to(h0, (Wh.shape[0], X.shape[1]))]
    for (wh, wx, bb), x in zip(copies, xs):
        hs.append(np.tanh(wh @ hs[-1] + wx @ x + bb))
    out = hs[-1] if output == "last" else np.vstack(hs[1:])
    J = 0.5 * np.sum((out - Y) ** 2)
    g_out = out - Y
    g_h = [np.zeros_like(hs[1]) for _ in range(steps)]
    if output == "last":
        g_h[-1] = g_out
    else:
        g_h = [g_out[t * Wh.shape[0]:(t + 1) * Wh.shape[0]] for t in range(steps)]
    copy_grads, dxs, carried = [], [None] * steps, np.zeros_like(hs[1])
    for t in reversed(range(steps)):  # ordinary backprop through a chain of dense layers
        wh, wx, _ = copies[t]
        delta = (g_h[t] + carried) * (1 - hs[t + 1] ** 2)
        copy_grads.append((delta @ hs[t].T, delta @ xs[t].T, delta.sum(axis=1, keepdims=True)))
        dxs[t] = wx.T @ delta
        carried = wh.T @ delta
    dWh = sum(g[0] for g in copy_grads)
    dWx = sum(g[1] for g in copy_grads)
    db = sum(g[2] for g in copy_grads)
    dh0 = carried.sum(axis=1, keepdims=True) if h0.shape[1] == 1 else carried
    return J, {"Wh": dWh, "Wx": dWx, "b": db, "h0": dh0, "X": np.vstack(dxs)}


@pytest.mark.parametrize("output", ["last", "all"])
@pytest.mark.parametrize("steps, hidden, inputs, m, h0_cols", [(1, 2, 3, 2, 1), (4, 3, 2, 3, 1), (6, 2, 1, 2, 2)])
def test_recurrent_equals_the_unrolled_dense_network(output, steps, hidden, inputs, m, h0_cols):
    rows = hidden * (steps if output == "all" else 1)
    spec = load(f"""\
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
    v = spec.values
    J, expected = unrolled_rnn_oracle(v["Wh"], v["Wx"], v["b"], v["h0"], v["X"], v["Y"], steps, output)
    assert spec.objective() == pytest.approx(J, rel=1e-13)
    grads = spec.gradient()
    for name in expected:
        assert_close(grads[name], expected[name], name)


def test_recurrent_without_init_starts_from_zeros():
    spec = load("""\
        params: {Wh: {shape: [2, 2]}, Wx: {shape: [2, 1]}}
        data: {X: {shape: [3, 2]}, Y: {shape: [2, 2]}}
        input: X
        layers: [{recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 3}}]
        objective: {loss: squared_error, target: Y}
        """)
    v = spec.values
    J, expected = unrolled_rnn_oracle(v["Wh"], v["Wx"], np.zeros((2, 1)), np.zeros((2, 1)), v["X"], v["Y"], 3, "last")
    assert spec.objective() == pytest.approx(J, rel=1e-13)
    for name in ("Wh", "Wx"):
        assert_close(spec.gradient()[name], expected[name], name)


# ----------------------------------------------------------------------------- (3) max pooling


POOL_CASES = {
    "2x2": ("[2, 4, 6]", "[2, 2]", None),
    "overlapping_3x3_stride_1": ("[1, 5, 5]", "[3, 3]", "1"),
    "stride_2_size_3": ("[2, 7, 5]", "[3, 2]", "[2, 1]"),
    "1d": ("[3, 8]", "[3]", "2"),
}


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_max_pooling_matches_finite_differences_away_from_ties(case):
    image, size, stride = POOL_CASES[case]
    rows = int(np.prod(json.loads(image)))
    stride_text = "" if stride is None else f", stride: {stride}"
    spec = load(f"""\
        seed: 2
        params:
          W: {{shape: [{rows}, 3]}}
          V: {{shape: [2, 3]}}
        data:
          x: {{shape: [3, 4]}}
        input: x
        layers:
          - {{weight: W, activation: tanh}}
          - maxpool: {{size: {size}, image: {image}{stride_text}}}
            activation: square
        objective: mean
        """)
    trace = network.forward_term(spec.model.terms[0], spec.values)
    margin = trace.layers[1].cache["margin"]
    assert margin.shape == trace.layers[1].z.shape
    # no window within 1e-4 of a tie: a step of ~1e-6 cannot change which entry is the maximum
    assert margin.min() > 1e-4
    grads = spec.gradient()
    np.testing.assert_allclose(grads["W"], finite_differences(spec, "W"), rtol=1e-6, atol=1e-9)


def test_max_pooling_ties_route_to_the_first_maximum_and_margin_is_zero():
    spec = load("""\
        params:
          x: [3, 7, 7, 1, 2, 5, 5, 5]   # two channels of 2x2: a tie (7, 7) and a triple tie (5, 5, 5)
        input: x
        layers: [{maxpool: {size: [2, 2], image: [2, 2, 2]}}]
        """)
    grad = spec.gradient()["x"][:, 0]
    np.testing.assert_array_equal(grad, [0, 1, 0, 0, 0, 1, 0, 0])  # first in (row, column) order
    margin = network.forward_term(spec.model.terms[0], spec.values).layers[0].cache["margin"]
    np.testing.assert_array_equal(margin[:, 0], [0.0, 0.0])


def test_max_pooling_margin_is_the_gap_to_the_runner_up():
    spec = load("""\
        params: {x: [1, 4, 2.5, -3, 0, 0.25, -1, 0.5]}
        input: x
        layers: [{maxpool: {size: [4], image: [2, 4]}}]
        """)
    trace = network.forward_term(spec.model.terms[0], spec.values).layers[0]
    np.testing.assert_array_equal(trace.z[:, 0], [4, 0.5])
    np.testing.assert_array_equal(trace.cache["margin"][:, 0], [1.5, 0.25])


# ----------------------------------------------------------------------------- (4) a wrong df inside an RNN


RNN_CUSTOM = """\
    seed: 4
    params:
      Wh: {{shape: [3, 3], std: 0.5}}
      Wx: {{shape: [3, 2]}}
      b: {{shape: [3, 1]}}
    data:
      X: {{shape: [8, 2]}}
      t: {{shape: [3, 2]}}
    input: X
    layers:
      - recurrent:
          hidden_weight: Wh
          input_weight: Wx
          bias: b
          steps: 4
          activation: {{f: "tanh(z)", df: "{df}"}}
    objective: {{loss: squared_error, target: t}}
    """


def test_wrong_custom_df_inside_an_rnn_is_caught():
    wrong = gradcheck.check(load(RNN_CUSTOM.format(df="1 - tanh(z)")))  # should be 1 - tanh(z)**2
    assert wrong.status == "fail"
    assert {p.name for p in wrong.params if p.status == "fail"} == {"Wh", "Wx", "b"}
    right = gradcheck.check(load(RNN_CUSTOM.format(df="1 - tanh(z)**2")))
    assert right.status == "pass", [(p.name, p.backprop) for p in right.params]


# ----------------------------------------------------------------------------- batching


BATCHED = {
    "conv": """\
        params: {K: {shape: [2, 8], std: 0.5}, c: {shape: [2, 1]}, x: {shape: [50, 3]}}
        input: x
        layers:
          - conv: {kernel: K, image: [2, 5, 5], size: [2, 2], stride: [2, 1], padding: 1}
            bias: c
            activation: {scale: 0.5}
          - maxpool: {size: [2, 2], stride: 1}
        objective: sum
        """,
    "conv1d": """\
        params: {K: {shape: [3, 6]}, x: {shape: [14, 2]}}
        input: x
        layers: [{conv: {kernel: K, image: [2, 7], size: [3], padding: 2}, activation: tanh}]
        objective: sum
        """,
    "recurrent": """\
        params: {Wh: {shape: [3, 3]}, Wx: {shape: [3, 2]}, b: {shape: [3, 1]}, h0: {shape: [3, 1]},
                 x: {shape: [6, 4]}}
        input: x
        layers: [{recurrent: {hidden_weight: Wh, input_weight: Wx, bias: b, steps: 3, init: h0, output: all}}]
        objective: sum
        """,
}


@pytest.mark.parametrize("kind", BATCHED, ids=str)
def test_batched_forward_equals_a_loop_of_unbatched_forwards(kind):
    """The finite-difference engine passes stacks (B, rows, cols) of one param: any param may be batched."""
    spec = load(BATCHED[kind])
    rng = np.random.default_rng(1)
    for name in spec.param_names:
        stack = spec.values[name] + 0.1 * rng.normal(size=(5,) + spec.values[name].shape)
        batched = network.objective(spec.model, {**spec.values, name: stack})
        looped = [network.objective(spec.model, {**spec.values, name: s}) for s in stack]
        assert batched.shape == (5,)
        np.testing.assert_allclose(batched, looped, rtol=1e-13, atol=1e-13, err_msg=name)


# ----------------------------------------------------------------------------- report: kernel entries


def test_kernel_worst_entry_is_named_in_both_reports():
    path = str(SPECS / "tiny_cnn.yaml")
    spec = gradcheck.load(path)
    assert spec.model.describe_index("K", (1, 5)) == "filter 1, channel 0, row 1, column 2"
    assert spec.model.describe_index("W", (1, 5)) is None
    result = invoke("run", "--format", "json", path)
    assert result.exit_code == 0, result.output
    params = {p["name"]: p for p in json.loads(result.output)["specs"][0]["params"]}
    assert params["K"]["shape"] == [2, 9]
    f, j = params["K"]["backprop"]["worst_index"]
    assert params["K"]["backprop"]["worst_entry"] == {"filter": f, "channel": 0, "row": j // 3, "column": j % 3}
    assert "worst_entry" not in params["W"]["backprop"]  # only kernels grow the extra key
    human = invoke("run", path).output
    k_row = next(line for line in human.splitlines() if line.startswith("K "))
    assert f"[{f}, {j}] (filter {f}, channel 0, row {j // 3}, column {j % 3})" in k_row


def test_one_dimensional_kernel_entries_name_the_tap():
    spec = gradcheck.load(SPECS / "conv1d_edge_detector.yaml")
    assert spec.model.describe_index("k", (0, 2)) == "filter 0, channel 0, tap 2"


# ----------------------------------------------------------------------------- the sigmoid / softmax pair


def test_sigmoid_and_two_class_softmax_specs_agree():
    softmax = gradcheck.load(SPECS / "sigmoid_vs_two_class_softmax.yaml")
    sigmoid = gradcheck.load(SPECS / "two_class_sigmoid.yaml")
    for name in ("w", "b", "X"):
        np.testing.assert_array_equal(softmax.values[name], sigmoid.values[name])
    np.testing.assert_array_equal(softmax.values["Y"][:1], sigmoid.values["y"])
    assert softmax.objective() == pytest.approx(sigmoid.objective(), rel=1e-13)
    for name in ("w", "b"):
        assert_close(softmax.gradient()[name], sigmoid.gradient()[name], name)


# ----------------------------------------------------------------------------- located load errors

CONV_BASE = """\
params:
  K: {shape: [2, 9]}
  c: {shape: [2, 1]}
data:
  x: {shape: [36, 2]}
input: x
layers:
"""

RNN_BASE = """\
params:
  Wh: {shape: [3, 3]}
  Wx: {shape: [3, 2]}
data:
  x: {shape: [8, 4]}
input: x
layers:
"""


@pytest.mark.parametrize("layers, line, col, fragment", [
    # conv
    ("  - conv: {kernel: K, image: [1, 6, 5], size: [3, 3]}\n", 8, 30,
     "shape mismatch in layer 1: conv image [1, 6, 5] holds 1·6·5 = 30 numbers per column but the layer's input "
     "has shape (36, 2)"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 2]}\n", 8, 20,
     "shape mismatch in layer 1: kernel K has shape (2, 9) but image [1, 6, 6] with size [3, 2] needs (filters, 6)"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3]}\n", 8, 47, "[kh, kw] for a [C, H, W] image"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3], stride: 0}\n", 8, 63, "must be from 1 to 1,000,000,000, not 0"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3], padding: -1}\n", 8, 64, "must be from 0 to 1,000,000,000, not -1"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3], strides: 2}\n", 8, 55, 'did you mean "stride"'),
    ("  - conv: {kernel: K, image: [4, 3, 3], size: [3, 3]}\n", 8, 20, "needs (filters, 36)"),
    ("  - conv: {kernel: K.T, image: [1, 6, 6], size: [3, 3]}\n", 8, 20, "a transposed kernel is not supported"),
    ("  - conv: {kernel: Q, image: [1, 6, 6], size: [3, 3]}\n", 8, 20, 'undefined name "Q"'),
    ("  - conv: {image: [1, 6, 6], size: [3, 3]}\n", 8, 11, 'needs "kernel"'),
    ("  - conv: {kernel: K, size: [3, 3]}\n", 8, 11, "needs image: [C, H, W]"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [7, 3]}\n", 8, 47, "does not fit the image [1, 6, 6]"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n    bias: K\n", 9, 11,
     "conv bias K has shape (2, 9); it must be (filters, 1) = (2, 1)"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n    weight: K\n", 8, 5,
     'has both "weight" and "conv"'),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n  - conv: {kernel: K, image: [2, 4, 4], size: [3, 3]}\n",
     9, 20, "needs (filters, 18)"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n  - conv: {kernel: K, image: [1, 4, 8], size: [3, 3]}\n",
     9, 30, "shape mismatch in layer 2: conv image [1, 4, 8] but layer 1 (conv, K, identity) outputs images [2, 4, 4]"),
    # maxpool
    ("  - {activation: tanh}\n  - maxpool: {size: [2, 2]}\n", 9, 14,
     "maxpool of layer 2 needs image: [C, H, W] (or [C, L]): the layer before it (layer 1 (I, tanh)) does not"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n  - {activation: relu}\n  - maxpool: {size: [5, 2]}\n",
     10, 21, "maxpool size [5, 2] of layer 3 does not fit the image [2, 4, 4]"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n  - maxpool: {size: [5, 2]}\n", 9, 21,
     "maxpool size [5, 2] of layer 2 does not fit the image [2, 4, 4]"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n  - maxpool: {size: [2, 2], image: [2, 2, 8]}\n", 9, 36,
     "shape mismatch in layer 2: maxpool image [2, 2, 8] but layer 1 (conv, K, identity) outputs images [2, 4, 4]"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n  - maxpool: {size: [2, 2]}\n    bias: c\n", 10, 5,
     "takes no bias"),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n  - maxpool: {}\n", 9, 14, 'needs "size"'),
    ("  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n  - maxpool: {size: [2, 2]}\n  - weight: c\n", 10, 13,
     "shape mismatch in layer 3: weight c has shape (2, 1) but the layer's input has shape (8, 2)"),
])
def test_conv_and_maxpool_load_errors_are_located(layers, line, col, fragment):
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(CONV_BASE + layers, "t.yaml")
    e = info.value
    assert fragment in e.message, e.message
    assert (e.file, e.line, e.col) == ("t.yaml", line, col), e.message


def test_a_dense_layer_with_a_weight_flattens_the_image():
    """Layers without a weight keep the image (relu between conv and maxpool); a weight ends it."""
    keeps = CONV_BASE + "  - conv: {kernel: K, image: [1, 6, 6], size: [3, 3]}\n  - {activation: relu}\n" \
                        "  - maxpool: {size: [2, 2]}\n"
    assert gradcheck.loads(keeps, "t.yaml").model.terms[0].layers[2].out_shape == (8, 2)
    text = keeps.replace("params:\n", "params:\n  V: {shape: [8, 8]}\n") + "  - {weight: V}\n  - maxpool: {size: [2, 2]}\n"
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(text, "t.yaml")
    assert (info.value.line, info.value.col) == (13, 14)
    assert "the layer before it (layer 4 (V, identity)) does not output images" in info.value.message


@pytest.mark.parametrize("layers, line, col, fragment", [
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 3}\n", 8, 61,
     "shape mismatch in layer 1: 3 steps of input_weight Wx (3, 2) read 3·2 = 6 rows, but the layer's input has "
     "shape (8, 4)"),
    ("  - recurrent: {hidden_weight: Wx, input_weight: Wx, steps: 4}\n", 8, 32,
     "hidden_weight Wx has shape (3, 2); it must be square"),
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx.T, steps: 4}\n", 8, 50,
     "input_weight Wx.T has shape (2, 3) but hidden_weight Wh has shape (3, 3)"),
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 4, bias: Wx}\n", 8, 70,
     "bias Wx of layer 1 has shape (3, 2), which does not broadcast onto z of shape (3, 4)"),
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 4, init: Wh}\n", 8, 70,
     "init Wh of layer 1 has shape (3, 3)"),
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 4, output: every}\n", 8, 72,
     'output must be "last" (h_T) or "all"'),
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 2.5}\n", 8, 61, "whole number"),
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx}\n", 8, 16, 'needs "steps"'),
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 4, activaton: tanh}\n", 8, 64,
     'did you mean "activation"'),
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 4, activation: tanhh}\n", 8, 76,
     'no such activation: "tanhh"'),
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 4}\n    activation: tanh\n", 9, 5,
     '"activation" goes inside recurrent'),
    ("  - recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 4, output: all}\n  - weight: Wh\n", 9, 13,
     "weight Wh has shape (3, 3) but the layer's input has shape (12, 4)"),
])
def test_recurrent_load_errors_are_located(layers, line, col, fragment):
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(RNN_BASE + layers, "t.yaml")
    e = info.value
    assert fragment in e.message, e.message
    assert (e.file, e.line, e.col) == ("t.yaml", line, col), e.message


@pytest.mark.parametrize("text, fragment", [
    ("params: {K: {shape: [1000, 1]}}\ndata: {x: {shape: [1000000, 1]}}\ninput: x\n"
     "layers: [{conv: {kernel: K, image: [1, 1000, 1000], size: [1, 1]}}]\n",
     "the convolution of layer 1 outputs 1,000,000,000 numbers; the limit is 10,000,000 (raise it with "
     "--max-unfolded)"),
    ("params: {K: {shape: [1, 121]}}\ndata: {x: {shape: [1000000, 1]}}\ninput: x\n"
     "layers: [{conv: {kernel: K, image: [1, 1000, 1000], size: [11, 11]}}]\n",
     "unfolds into 118,592,100 numbers (im2col)"),
    ("params: {Wh: {shape: [2, 2]}, Wx: {shape: [2, 1]}}\ndata: {x: {shape: [5000, 1]}}\ninput: x\n"
     "layers: [{recurrent: {hidden_weight: Wh, input_weight: Wx, steps: 5000}}]\n",
     "5,000 steps in layer 1; the limit is 1,000 (raise it with --max-recurrent-steps)"),
])
def test_oversized_structured_layers_are_refused_at_load(text, fragment):
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(text, "t.yaml")
    assert fragment in info.value.message and info.value.line == 4
