"""Property test: on random layered networks, backprop equals finite differences.

Networks are generated as YAML spec text (random depth, widths, batch size,
smooth activations, optional biases, reuse of an earlier weight as ``W`` or
``W.T``, objective sum / mean / squared error).  The numeric gradient is
computed here, independently of the engine's own checker, by central
differences over ``spec.objective(values=...)``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, note, settings
from hypothesis import strategies as st

import gradcheck

MAX_WIDTH = 5
RTOL = 1e-6
# absolute floor, relative to the scale of the problem (see numeric_gradient)
FLOOR = 1e-7

SIMPLE_ACTIVATIONS = ["identity", "sigmoid", "tanh", "softplus", "softmax"]
CONSTANTS = st.integers(-200, 200).map(lambda k: k / 100)


def fmt(x: float) -> str:
    # plain decimal notation: YAML 1.1 reads e.g. 1e-05 as a string
    return f"{x:.2f}"


@st.composite
def matrix(draw, rows: int, cols: int, bound: float = 1.0):
    """A value under params/data as YAML text, and a bound on its entries."""
    kinds = ["literal", "normal"]
    if cols == 1:
        kinds.append("flat")
    if rows == cols == 1:
        kinds.append("scalar")
    kind = draw(st.sampled_from(kinds))
    if kind == "normal":
        std = draw(st.sampled_from([0.1, 0.3, 0.5]))
        return f"{{shape: [{rows}, {cols}], init: normal, std: {std}}}", 4 * std
    lim = int(round(100 * bound))
    flat = draw(st.lists(st.integers(-lim, lim), min_size=rows * cols, max_size=rows * cols))
    entries = [k / 100 for k in flat]
    if kind == "scalar":
        return fmt(entries[0]), bound
    if kind == "flat":
        return "[" + ", ".join(fmt(e) for e in entries) + "]", bound
    rows_text = ["[" + ", ".join(fmt(e) for e in entries[r * cols : (r + 1) * cols]) + "]" for r in range(rows)]
    return "[" + ", ".join(rows_text) + "]", bound


@st.composite
def networks(draw):
    """YAML text of a random layered network with at least one param.

    A running bound on |a| keeps every value finite and moderate: ``exp`` is
    only offered when |z| <= 4, ``square`` when |z| <= 20.
    """
    seed = draw(st.integers(0, 10_000))
    m = draw(st.integers(1, 4))
    n = draw(st.integers(1, MAX_WIDTH))
    depth = draw(st.integers(1, 4))

    params: dict[str, str] = {}
    data: dict[str, str] = {}
    x_text, bound = draw(matrix(n, m))
    x_is_param = draw(st.booleans())
    (params if x_is_param else data)["x"] = x_text

    weights: list[tuple[str, int, int, float]] = []  # name, rows, cols, bound
    layers: list[str] = []
    for i in range(depth):
        keys, zb, n = _draw_weight(draw, i, n, bound, params, weights)
        if draw(st.booleans()):
            name = f"b{i}"
            text, bb = draw(matrix(n, 1))
            params[name] = text
            keys.append(f"bias: {name}")
            zb += bb
        bound = _draw_activation(draw, zb, keys)
        layers.append("  - {" + ", ".join(keys) + "}")

    if not params:
        params["x"] = data.pop("x")
    objective = _draw_objective(draw, n, m, data)
    return _network_yaml(seed, params, data, layers, objective)


def _draw_weight(draw, i: int, n: int, bound: float, params: dict, weights: list):
    """A layer's weight (new, reused, reused transposed, or none): its keys, the bound on |z|, the new width."""
    as_is = [w for w in weights if w[2] == n]  # W maps cols -> rows
    transposed = [w for w in weights if w[1] == n]  # W.T maps rows -> cols
    options = ["new", "new", "none"] + (["reuse"] if as_is else []) + (["reuse_T", "reuse_T"] if transposed else [])
    choice = draw(st.sampled_from(options))
    if choice == "new":
        k = draw(st.one_of(st.just(n), st.integers(1, MAX_WIDTH)))
        name = f"W{i}"
        text, wb = draw(matrix(k, n))
        params[name] = text
        weights.append((name, k, n, wb))
        return [f"weight: {name}"], n * wb * bound, k
    if choice == "reuse":
        name, rows, cols, wb = draw(st.sampled_from(as_is))
        return [f"weight: {name}"], cols * wb * bound, rows
    if choice == "reuse_T":
        name, rows, cols, wb = draw(st.sampled_from(transposed))
        return [f"weight: {name}.T"], rows * wb * bound, cols
    return [], bound, n


def _draw_activation(draw, zb: float, keys: list) -> float:
    """An activation that keeps values moderate given |z| <= zb; appends its key, returns the bound on |a|."""
    acts = list(SIMPLE_ACTIVATIONS) + ["add", "scale"]
    if zb <= 4:
        acts.append("exp")
    if zb <= 20:
        acts.append("square")
    act = draw(st.sampled_from(acts))
    if act in ("add", "scale"):
        c = draw(CONSTANTS)
        keys.append(f"activation: {{{act}: {fmt(c)}}}")
        return zb + abs(c) if act == "add" else zb * abs(c)
    if act == "identity":
        if draw(st.booleans()):  # identity is the default
            keys.append("activation: identity")
        return zb
    keys.append(f"activation: {act}")
    if act == "exp":
        return float(np.exp(zb))  # only offered for zb <= 4
    if act == "square":
        return zb * zb
    if act == "softplus":
        return zb + 1.0
    return 1.0  # sigmoid, tanh, softmax


def _draw_objective(draw, n: int, m: int, data: dict) -> str:
    """The objective line ("" for the default), adding a target to `data` for a loss."""
    objective_kind = draw(st.sampled_from(["sum", "mean", "squared_error", "default"]))
    if objective_kind == "squared_error":
        y_text, _ = draw(matrix(n, m))
        data["y"] = y_text
        reduce = draw(st.sampled_from(["", ", reduce: sum", ", reduce: mean"]))
        return f"objective: {{loss: squared_error, target: y{reduce}}}"
    return "" if objective_kind == "default" else f"objective: {objective_kind}"


def _network_yaml(seed: int, params: dict, data: dict, layers: list, objective: str) -> str:
    lines = [f"seed: {seed}", "params:"]
    lines += [f"  {k}: {v}" for k, v in params.items()]
    if data:
        lines.append("data:")
        lines += [f"  {k}: {v}" for k, v in data.items()]
    lines += ["input: x", "layers:", *layers]
    if objective:
        lines.append(objective)
    return "\n".join(lines) + "\n"


def numeric_gradient(spec, name):
    """Central differences of spec.objective, overriding only `name`."""
    theta = np.array(spec.values[name], dtype=np.float64)
    out = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        h = 1e-6 * max(1.0, abs(theta[idx]))
        plus, minus = theta.copy(), theta.copy()
        plus[idx] += h
        minus[idx] -= h
        f_plus = spec.objective(values={name: plus})
        f_minus = spec.objective(values={name: minus})
        out[idx] = (f_plus - f_minus) / (plus[idx] - minus[idx])
    return out


TIED = """\
seed: 0
params:
  W0: [[0.50, -0.30, 0.20], [0.10, 0.40, -0.60], [0.70, 0.00, 0.25]]
  b1: [0.10, -0.20, 0.30]
data:
  x: [[0.20, -0.40], [0.90, 0.10], [-0.30, 0.50]]
  y: [[0.10, 0.20], [0.30, 0.40], [0.50, 0.60]]
input: x
layers:
  - {weight: W0, activation: tanh}
  - {weight: W0.T, bias: b1, activation: softmax}
  - {weight: W0, activation: {scale: -1.50}}
objective: {loss: squared_error, target: y, reduce: mean}
"""


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
@example(TIED)
def test_backprop_matches_finite_differences(text):
    note(text)
    spec = gradcheck.loads(text, path="<hypothesis>")
    J = spec.objective()
    assert np.isfinite(J)
    grads = spec.gradient()
    assert set(grads) == set(spec.param_names)

    numeric = {p: numeric_gradient(spec, p) for p in spec.param_names}
    scale = max(1.0, abs(J), *(float(np.max(np.abs(g))) for g in numeric.values()))
    for p in spec.param_names:
        g = np.asarray(grads[p])
        assert g.shape == spec.values[p].shape, (p, g.shape)
        assert np.all(np.isfinite(g)), p
        note(f"{p}: backprop={g.tolist()} numeric={numeric[p].tolist()}")
        np.testing.assert_allclose(g, numeric[p], rtol=RTOL, atol=FLOOR * scale, err_msg=f"d J / d {p}")


@settings(max_examples=15, deadline=None)
@given(networks())
def test_objective_partial_override_is_pure(text):
    """objective(values=...) with one name overridden equals a full override,
    and never changes spec.values."""
    spec = gradcheck.loads(text, path="<hypothesis>")
    before = {k: np.array(v, copy=True) for k, v in spec.values.items()}
    p = spec.param_names[-1]
    moved = before[p] + 0.01
    j_partial = spec.objective(values={p: moved})
    j_full = spec.objective(values={**before, p: moved})
    assert j_partial == j_full
    for k, v in before.items():
        np.testing.assert_array_equal(spec.values[k], v)
    assert spec.objective() == spec.objective(values={})


# ----------------------------------------------------------------------------- structured layers

SMOOTH = ["identity", "tanh", "sigmoid", "softplus"]


def _normal(rows: int, cols: int, std: float) -> str:
    return f"{{shape: [{rows}, {cols}], std: {std}}}"


def _list(values) -> str:
    return "[" + ", ".join(map(str, values)) + "]"


@st.composite
def conv_layers(draw, m: int, params: dict, data: dict):
    """A conv layer (1-D or 2-D, random stride/padding), maybe max pooling after it; returns (layers, rows)."""
    dims = draw(st.sampled_from([1, 2]))
    channels = draw(st.integers(1, 2))
    spatial = [draw(st.integers(2, 6)) for _ in range(dims)]
    size = [draw(st.integers(1, n)) for n in spatial]
    padding = [draw(st.integers(0, 1)) for _ in range(dims)]
    stride = [draw(st.integers(1, 2)) for _ in range(dims)]
    filters = draw(st.integers(1, 3))
    rows = channels * int(np.prod(spatial))
    (params if draw(st.booleans()) else data)["x"] = _normal(rows, m, 1.0)
    params["K"] = _normal(filters, channels * int(np.prod(size)), 0.5)
    keys = [f"conv: {{kernel: K, image: {_list([channels, *spatial])}, size: {_list(size)}, "
            f"stride: {_list(stride)}, padding: {_list(padding)}}}"]
    if draw(st.booleans()):
        params["c"] = _normal(filters, 1, 0.3)
        keys.append("bias: c")
    keys.append(f"activation: {draw(st.sampled_from(SMOOTH))}")
    layers = ["  - {" + ", ".join(keys) + "}"]
    out = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(spatial, padding, size, stride)]
    rows = filters * int(np.prod(out))
    if draw(st.booleans()) and max(out) >= 2:
        pool = [draw(st.integers(1, n)) for n in out]
        pool_stride = [draw(st.integers(1, k)) for k in pool]
        layers.append(f"  - maxpool: {{size: {_list(pool)}, stride: {_list(pool_stride)}}}")
        rows = filters * int(np.prod([(n - k) // s + 1 for n, k, s in zip(out, pool, pool_stride)]))
    return layers, rows


@st.composite
def recurrent_layers(draw, m: int, params: dict, data: dict):
    """A recurrent layer with random steps, sizes, bias, init and output; returns (layers, rows)."""
    steps, hidden, inputs = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    (params if draw(st.booleans()) else data)["x"] = _normal(steps * inputs, m, 1.0)
    params["Wh"] = _normal(hidden, hidden, 0.6)
    params["Wx"] = _normal(hidden, inputs, 0.8)
    keys = ["hidden_weight: Wh", "input_weight: Wx", f"steps: {steps}"]
    if draw(st.booleans()):
        params["b"] = _normal(hidden, 1, 0.3)
        keys.append("bias: b")
    if draw(st.booleans()):
        params["h0"] = _normal(hidden, draw(st.sampled_from([1, m])), 0.5)
        keys.append("init: h0")
    keys.append(f"activation: {draw(st.sampled_from(SMOOTH))}")
    output = draw(st.sampled_from(["last", "all"]))
    keys.append(f"output: {output}")
    return ["  - recurrent: {" + ", ".join(keys) + "}"], hidden * (steps if output == "all" else 1)


@st.composite
def structured_networks(draw):
    """YAML text of a conv/maxpool or recurrent network, maybe with a dense head and a loss."""
    m = draw(st.integers(1, 3))
    params: dict[str, str] = {}
    data: dict[str, str] = {}
    kind = draw(st.sampled_from([conv_layers, recurrent_layers]))
    layers, rows = draw(kind(m, params, data))
    if draw(st.booleans()):
        k = draw(st.integers(1, 3))
        params["V"] = _normal(k, rows, 0.5)
        layers.append(f"  - {{weight: V, activation: {draw(st.sampled_from(SMOOTH + ['softmax']))}}}")
        rows = k
    objective = draw(st.sampled_from(["sum", "mean", "squared_error"]))
    if objective == "squared_error":
        data["y"] = _normal(rows, m, 1.0)
        objective = "{loss: squared_error, target: y}"
    lines = [f"seed: {draw(st.integers(0, 10_000))}", "params:"]
    lines += [f"  {k}: {v}" for k, v in params.items()]
    if data:
        lines += ["data:"] + [f"  {k}: {v}" for k, v in data.items()]
    lines += ["input: x", "layers:", *layers, f"objective: {objective}"]
    return "\n".join(lines) + "\n"


def _min_pool_margin(spec) -> float:
    """Smallest gap between a pooling window's maximum and its runner-up (inf without pooling)."""
    from gradcheck import network

    margins = [lt.cache["margin"].min() for term in spec.model.terms
               for lt in network.forward_term(term, spec.values).layers if "margin" in lt.cache]
    return min(margins, default=np.inf)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structured_networks())
def test_structured_backprop_matches_finite_differences(text):
    note(text)
    spec = gradcheck.loads(text, path="<hypothesis>")
    assume(_min_pool_margin(spec) > 1e-4)  # max pooling is differentiable only away from ties
    J = spec.objective()
    assert np.isfinite(J)
    grads = spec.gradient()
    numeric = {p: numeric_gradient(spec, p) for p in spec.param_names}
    scale = max(1.0, abs(J), *(float(np.max(np.abs(g))) for g in numeric.values()))
    for p in spec.param_names:
        note(f"{p}: backprop={grads[p].tolist()} numeric={numeric[p].tolist()}")
        np.testing.assert_allclose(grads[p], numeric[p], rtol=RTOL, atol=FLOOR * scale, err_msg=f"d J / d {p}")
