"""Property test: on random DAGs (named layers, random merges, slices and activations), backprop equals
finite differences — both a plain central-difference loop over spec.objective written here, and the
engine's own check (whose perturber walks the DAG, re-running only what a move reaches)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import gradcheck

COLS = 3
ACTIVATIONS = ["identity", "tanh", "sigmoid", "softplus"]


@st.composite
def dags(draw):
    """A spec whose layers read earlier layers, params and data through random merges."""
    params, layers = {}, []
    nodes = {"x": 3, "v": 2}  # name -> rows; every value has COLS columns
    for k in range(1, draw(st.integers(2, 6)) + 1):
        name = f"n{k}"
        op = draw(st.sampled_from(["dense", "add", "mul", "matmul", "concat", "slice", "solve"]))
        names = sorted(nodes)
        pick = lambda rows=None: draw(st.sampled_from([n for n in names if rows is None or nodes[n] == rows]))  # noqa: E731
        if op in ("add", "mul"):
            first = pick()
            others = [n for n in names if nodes[n] == nodes[first]]
            source, rows = f"{op}: [{first}, {draw(st.sampled_from(others))}]", nodes[first]
        elif op == "matmul" and any(nodes[n] == COLS for n in names):
            source, rows = f"matmul: [{pick()}, {pick(COLS)}]", None
            rows = nodes[source.split("[")[1].split(",")[0]]
        elif op == "concat" and sum(sorted(nodes.values())[:2]) <= 6:
            a = draw(st.sampled_from([n for n in names if nodes[n] + min(nodes.values()) <= 6]))
            b = draw(st.sampled_from([n for n in names if nodes[a] + nodes[n] <= 6]))
            source, rows = f"concat: [{a}, {b}]", nodes[a] + nodes[b]
        elif op == "slice" and any(nodes[n] >= 2 for n in names):
            src = draw(st.sampled_from([n for n in names if nodes[n] >= 2]))
            start = draw(st.integers(0, nodes[src] - 1))
            stop = draw(st.integers(start + 1, nodes[src]))
            source, rows = f"slice: {{input: {src}, rows: [{start}, {stop}]}}", stop - start
        elif op == "solve":
            src = pick()
            params[f"A{k}"] = f"{{shape: [{nodes[src]}, {nodes[src]}], init: eye}}"
            source, rows = f"solve: [A{k}, {src}]", nodes[src]
        else:
            src = pick()
            source, rows = f"input: {src}", nodes[src]
        parts = [f"name: {name}", source]
        if op == "dense" or draw(st.booleans()):
            out = draw(st.integers(1, 4))
            params[f"W{k}"] = f"{{shape: [{out}, {rows}], std: 0.5}}"
            parts.append(f"weight: W{k}")
            rows = out
            if draw(st.booleans()):
                params[f"b{k}"] = f"{{shape: [{rows}, 1], std: 0.5}}"
                parts.append(f"bias: b{k}")
        parts.append(f"activation: {draw(st.sampled_from(ACTIVATIONS))}")
        layers.append("  - {" + ", ".join(parts) + "}")
        nodes[name] = rows
    param_text = "\n".join(f"  {n}: {v}" for n, v in params.items()) or "  unused: {shape: [1, 1]}"
    seed = draw(st.integers(0, 1000))
    return (f"seed: {seed}\nparams:\n{param_text}\ndata:\n  x: {{shape: [3, {COLS}]}}\n  v: {{shape: [2, {COLS}]}}\n"
            f"layers:\n" + "\n".join(layers) + "\nobjective: sum\n")


def central(spec, name):
    theta = np.array(spec.values[name], dtype=float)
    out = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        h = 1e-6 * max(1.0, abs(theta[idx]))
        plus, minus = theta.copy(), theta.copy()
        plus[idx] += h
        minus[idx] -= h
        out[idx] = (spec.objective({name: plus}) - spec.objective({name: minus})) / (2 * h)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(dags())
def test_dag_backprop_matches_finite_differences(text):
    note(text)
    spec = gradcheck.loads(text, path="<hypothesis>")
    assert np.isfinite(spec.objective())
    grads = spec.gradient()
    scale = 1.0 + max(float(np.max(np.abs(g))) for g in grads.values())
    for name, g in grads.items():
        np.testing.assert_allclose(g, central(spec, name), rtol=1e-5, atol=1e-6 * scale, err_msg=name)
    result = gradcheck.check(spec)
    assert result.status == "pass", (result.message, [(p.name, p.backprop) for p in result.params])
