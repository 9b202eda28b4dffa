"""Every row of the merge table is complete and used everywhere: run (central and, when analytic, the complex
step), explain (its closed form round-trips through expect), its symbols equal its numbers forward and
backward, and the schema lists it. Generated from the table, so a new row is tested the day it is added."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest

import gradcheck
from gradcheck import symbolic as s
from gradcheck.expr import Where
from gradcheck.exprparse import parse
from gradcheck.explain import explain
from gradcheck.merges import MERGES, Merge
from gradcheck.schema import load_schema

# each merge on params of its own, inside its domain (solve: A = I + small)
INPUTS = {
    "add": ("[A, B]", {"A": (3, 4), "B": (3, 1)}),  # B broadcast over columns
    "mul": ("[A, B, A]", {"A": (3, 4), "B": (1, 4)}),
    "matmul": ("[A, B.T]", {"A": (3, 4), "B": (2, 4)}),
    "concat": ("[A, B]", {"A": (3, 4), "B": (2, 4)}),
    "slice": ("{input: A, rows: [1, 3]}", {"A": (3, 4)}),
    "solve": ("[S, B]", {"S": (3, 3), "B": (3, 4)}),
}


def merge_spec(key: str) -> str:
    source, shapes = INPUTS[key]
    params = ", ".join(f"{n}: {{shape: [{r}, {c}], std: 0.5{', init: eye' if n == 'S' else ''}}}"
                       for n, (r, c) in shapes.items()).replace("std: 0.5, init: eye", "init: eye")
    return textwrap.dedent(f"""\
        name: merge {key}
        params: {{{params}}}
        layers:
          - {{name: m, {key}: {source}, activation: tanh}}
        objective: sum
        """)


def test_every_merge_has_a_case():
    assert set(INPUTS) == set(MERGES)


@pytest.mark.parametrize("key", sorted(MERGES))
def test_merge_row_runs_round_trips_and_is_honest_about_the_complex_step(key, tmp_path):
    spec = gradcheck.loads(merge_spec(key), "t.yaml")
    assert gradcheck.check(spec).status == "pass"
    complex_step = gradcheck.check(spec, method="complex-step")
    assert complex_step.status == ("pass" if MERGES[key].analytic else "error")
    params = explain(spec.model).params
    assert all(params.values()), params
    pasted = tmp_path / "pasted.yaml"
    pasted.write_text(merge_spec(key) + "expect:\n" + "".join(f"  {n}: {t}\n" for n, t in params.items()))
    result = gradcheck.check(gradcheck.load(pasted))
    assert result.status == "pass" and all(p.expect.passed for p in result.params)


def _evaluate(sym, env: dict) -> np.ndarray:
    return np.asarray(parse(sym.text(), Where("<sym>", 1, 1), set(env)).evaluate(env), dtype=float)


@pytest.mark.parametrize("key", sorted(MERGES))
def test_merge_row_symbols_equal_its_numbers(key):
    source, shapes = INPUTS[key]
    spec = gradcheck.loads(merge_spec(key), "t.yaml")
    layer = spec.model.terms[0].layers[0]
    row, opt = MERGES[key], layer.merge_options
    xs = [r.value(spec.values) for r in layer.inputs]
    out = row.forward(xs, opt)
    assert row.shape([np.shape(x) for x in xs], opt) == np.shape(out)
    syms = [s.t(s.Var(r.name, spec.values[r.name].shape)) if r.transposed else s.Var(r.name, spec.values[r.name].shape)
            for r in layer.inputs]
    np.testing.assert_allclose(_evaluate(row.sym_forward(syms, opt), spec.values), out, rtol=1e-13)
    g = np.random.default_rng(0).normal(size=out.shape)
    numbers = row.backward(g, xs, out, opt)
    symbols = row.sym_backward(s.Var("G", out.shape), syms, row.sym_forward(syms, opt), opt)
    env = {**spec.values, "G": g}
    for x, n, sym in zip(xs, numbers, symbols):
        assert np.shape(n) == np.shape(x)
        np.testing.assert_allclose(_evaluate(sym, env), n, rtol=1e-12, atol=1e-14)
    # the backward is the adjoint of the forward's derivative: <g, d out> = Σ <signal_i, d x_i>
    dxs = [np.random.default_rng(1 + i).normal(size=np.shape(x)) for i, x in enumerate(xs)]
    h = 1e-6
    plus = row.forward([x + h * d for x, d in zip(xs, dxs)], opt)
    minus = row.forward([x - h * d for x, d in zip(xs, dxs)], opt)
    directional = np.sum(g * (plus - minus)) / (2 * h)
    assert directional == pytest.approx(sum(np.sum(n * d) for n, d in zip(numbers, dxs)), rel=1e-7)


@pytest.mark.parametrize("key", sorted(MERGES))
def test_every_merge_row_is_in_the_schema(key):
    assert key in load_schema()["$defs"]["layer"]["properties"]


def test_a_merge_row_missing_a_field_fails_when_it_is_made():
    fields = {f.name: None for f in dataclasses.fields(Merge)}
    del fields["nonfinite"]
    with pytest.raises(TypeError):
        Merge(**fields)


def test_a_merge_with_kinks_is_refused_until_kinks_of_merges_are_detected():
    from gradcheck.merges import ROWS, _register

    with pytest.raises(TypeError, match="kinks"):
        _register([dataclasses.replace(ROWS[0], kinks=(0.0,))])
