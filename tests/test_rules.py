"""Every row of every rule table is complete and used everywhere: run, explain, hazards, schema, the
complex step. The tests are generated from the tables themselves, so a new row is tested the day it is
added; a toy activation and a toy loss registered in one place are picked up by run, explain and schema.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import gradcheck
import gradcheck.cli as cli
from gradcheck import activations, hazards, losses, symbolic
from gradcheck.activations import TABLE, Activation
from gradcheck.expr import Where
from gradcheck.exprparse import parse
from gradcheck.kinds import KINDS, register
from gradcheck.losses import LOSSES, Loss
from gradcheck.schema import load_schema
from conftest import SPECS

ACTIVATION_ROWS = sorted(TABLE)
LOSS_ROWS = sorted(LOSSES)
FUSED = sorted((loss, act) for loss, row in LOSSES.items() for act in row.fused)


def activation_spec(name: str) -> str:
    """The row applied to a param inside every row's domain, under a squared error (a curved loss)."""
    row = TABLE[name]
    activation = f"{{{name}: 3}}" if row.takes_argument else name
    if row.whole_matrix:  # inv, logdet, …: a well-conditioned square z with a positive determinant
        rows, cols = row.shape((3, 3))
        return textwrap.dedent(f"""\
            name: row {name}
            params: {{W: {{shape: [3, 3], init: spd}}}}
            data: {{y: {{shape: [{rows}, {cols}]}}}}
            input: W
            layers: [{{activation: {activation}}}]
            objective: {{loss: squared_error, target: y}}
            """)
    return textwrap.dedent(f"""\
        name: row {name}
        params: {{W: {{shape: [3, 4], init: uniform, low: 0.5, high: 2}}}}
        data: {{y: {{shape: [3, 4]}}, c: 3}}
        input: W
        layers: [{{activation: {activation}}}]
        objective: {{loss: squared_error, target: y}}
        """)


def loss_spec(name: str, activation: str = "identity") -> str:
    """The objective of a param inside every loss's domain (0 < a < 1), after `activation`."""
    objective = name if not LOSSES[name].needs_target else f"{{loss: {name}, target: y, reduce: mean}}"
    target = "{shape: [3, 4], init: onehot}" if activation == "softmax" else \
        "{shape: [3, 4], init: uniform, low: 0.1, high: 0.9}"
    return textwrap.dedent(f"""\
        name: loss {name} after {activation}
        params: {{W: {{shape: [3, 4], init: uniform, low: 0.2, high: 0.8}}}}
        data: {{y: {target}}}
        input: W
        layers: [{{activation: {activation}}}]
        objective: {objective}
        """)


def write(tmp_path, text: str, name: str = "rule.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def explained(path) -> dict:
    result = CliRunner().invoke(cli.main, ["explain", "--format", "json", str(path)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_runs_and_round_trips(path, tmp_path) -> dict:
    """The check passes, and explain's closed form pasted into expect passes too."""
    assert gradcheck.check(gradcheck.load(path)).status == "pass"
    ex = explained(path)
    assert all(text is not None for text in ex["params"].values()), ex
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["expect"] = ex["params"]
    pasted = write(tmp_path, yaml.safe_dump(data, sort_keys=False), "pasted.yaml")
    result = gradcheck.check(gradcheck.load(pasted))
    assert result.status == "pass" and all(p.expect is not None and p.expect.passed for p in result.params)
    return ex


def evaluate_symbol(sym, env: dict) -> np.ndarray:
    """A symbol read back through the expression language (no engine code computes it)."""
    text = sym.text()
    return parse(text, Where("<rule>", 1, 1), set(env)).evaluate(env)


# ----------------------------------------------------------------------------- activations


@pytest.mark.parametrize("name", ACTIVATION_ROWS)
def test_activation_row_runs_and_its_closed_form_round_trips(name, tmp_path):
    assert_runs_and_round_trips(write(tmp_path, activation_spec(name)), tmp_path)


@pytest.mark.parametrize("name", ACTIVATION_ROWS)
def test_activation_row_symbols_equal_its_numbers(name):
    row = TABLE[name]
    rng = np.random.default_rng(1)
    shape = (3, 3) if row.whole_matrix else (3, 4)
    z = rng.uniform(0.5, 2.0, size=shape) + (3 * np.eye(3) if row.whole_matrix else 0)
    c = 3.0 if row.takes_argument else None
    zs, cs = symbolic.Var("z", shape), (symbolic.num(3.0) if row.takes_argument else None)
    a = row.forward(z, c)
    np.testing.assert_allclose(evaluate_symbol(row.sym_f(zs, cs), {"z": z}), a, rtol=1e-14)
    if row.sym_df is None:  # mixes entries: its f′ is a Jacobian, the table says so in words, and δ has a symbol
        assert row.df_text and not row.elementwise
        g = rng.normal(size=a.shape)
        sym = row.sym_vjp(symbolic.Var("g", a.shape), zs, symbolic.Var("a", a.shape), cs)
        np.testing.assert_allclose(evaluate_symbol(sym, {"z": z, "a": a, "g": g}), row.backward(g, z, a),
                                   rtol=1e-12, atol=1e-14)
        return
    np.testing.assert_allclose(np.broadcast_to(evaluate_symbol(row.sym_df(zs, cs), {"z": z}), z.shape),
                               row.backward(np.ones_like(z), z, a, c), rtol=1e-14)
    if row.takes_argument:
        g = symbolic.Var("g", (3, 4))
        sym = row.argument.sym_grad(g, zs, symbolic.Var("a", (3, 4)), cs)
        got = evaluate_symbol(sym, {"z": z, "a": a, "g": np.ones_like(z)})
        np.testing.assert_allclose(np.broadcast_to(got, z.shape), row.argument_grad(np.ones_like(z), z, a, c),
                                   rtol=1e-14)


@pytest.mark.parametrize("name", ACTIVATION_ROWS)
def test_activation_row_kinks_and_edges_reach_hazards(name, tmp_path):
    spec = gradcheck.load(write(tmp_path, activation_spec(name)))
    layer = spec.model.terms[0].layers[0]
    found = hazards.boundaries(layer, spec.values)
    row = TABLE[name]
    argument = 3.0 if row.takes_argument else None
    assert [b.at for b in found if not b.edge] == list(row.kinks)
    assert [b.at for b in found if b.edge] == [e.at for e in row.edges(argument)]
    for kink in row.kinks:  # a kink really is one: the one-sided slopes differ
        h = 1e-6
        left = (row.forward(np.array([kink])) - row.forward(np.array([kink - h]))) / h
        right = (row.forward(np.array([kink + h])) - row.forward(np.array([kink]))) / h
        assert abs(left - right) > 0.5
    for edge in row.edges(None):  # and an edge really is one: f is not finite beyond it
        with np.errstate(all="ignore"):
            beyond = row.forward(np.array([edge.at - 1.0]), 0.5 if row.takes_argument else None)
        assert not np.all(np.isfinite(beyond))


@pytest.mark.parametrize("name", ACTIVATION_ROWS)
def test_activation_row_analytic_flag_decides_the_complex_step(name, tmp_path):
    spec = gradcheck.load(write(tmp_path, activation_spec(name)))
    result = gradcheck.check(spec, method="complex-step")
    if TABLE[name].analytic:
        assert result.status == "pass", result.message
    else:
        assert result.status == "error" and "complex-step needs every operation to be analytic" in result.message


def test_every_activation_row_is_in_the_schema():
    schema = load_schema()["$defs"]["activation"]["oneOf"]
    listed = set(schema[1]["enum"]) | set(schema[2]["properties"])
    assert listed == set(TABLE)


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("name", LOSS_ROWS)
def test_loss_row_runs_and_its_closed_form_round_trips(name, tmp_path):
    assert_runs_and_round_trips(write(tmp_path, loss_spec(name)), tmp_path)


@pytest.mark.parametrize("loss,activation", FUSED)
def test_fused_form_runs_round_trips_and_is_what_the_table_prints(loss, activation, tmp_path):
    path = write(tmp_path, loss_spec(loss, activation))
    ex = assert_runs_and_round_trips(path, tmp_path)
    top = ex["terms"][0]["layers"][0]["delta"]
    assert "(a⁽²⁾ - y)" in top, top  # the cancellation, written out


@pytest.mark.parametrize("name", LOSS_ROWS)
def test_loss_row_symbols_and_gradients_equal_its_numbers(name):
    row = LOSSES[name]
    rng = np.random.default_rng(2)
    a, y = rng.uniform(0.2, 0.8, size=(3, 4)), rng.uniform(0.1, 0.9, size=(3, 4))
    value = row.scale(a.shape, "mean") * np.sum(row.entry(a, y))
    sym = row.sym_value(symbolic.Var("a", (3, 4)), symbolic.Var("y", (3, 4)), "mean",
                        lambda a, axis: symbolic.num(a.shape[1] if axis == 1 else a.shape[0] * a.shape[1]))
    np.testing.assert_allclose(evaluate_symbol(sym, {"a": a, "y": y}), value, rtol=1e-14)
    h = 1e-6  # ∂L/∂a and ∂L/∂y against central differences of L itself
    np.testing.assert_allclose(row.grad_a(a, y), (row.entry(a + h, y) - row.entry(a - h, y)) / (2 * h), rtol=1e-6)
    if row.needs_target:
        np.testing.assert_allclose(row.grad_y(a, y), (row.entry(a, y + h) - row.entry(a, y - h)) / (2 * h),
                                   rtol=1e-6)


@pytest.mark.parametrize("name", LOSS_ROWS)
def test_loss_row_edges_reach_hazards(name, tmp_path):
    obj = gradcheck.load(write(tmp_path, loss_spec(name))).model.terms[0].objective
    assert [(b.at, b.what) for b in hazards.objective_boundaries(obj)] == [(e.at, e.what) for e in LOSSES[name].edges]


PROBES = (-1.0, 0.0, 1.0, 2.0)  # points where a log or a root would break


@pytest.mark.parametrize("name", LOSS_ROWS)
def test_loss_row_declares_every_edge_it_has(name):
    row = LOSSES[name]
    with np.errstate(all="ignore"):
        broken = [p for p in PROBES if not np.all(np.isfinite(row.entry(np.array([[p]]), np.array([[0.5]]))))]
    edges = [e.at for e in row.edges]
    assert set(edges) <= set(broken) and bool(broken) == bool(edges), (broken, edges)


@pytest.mark.parametrize("name", ACTIVATION_ROWS)
def test_activation_row_declares_every_edge_it_has(name):
    row = TABLE[name]
    c = 0.5 if row.takes_argument else None  # a fractional power has an edge; the rows that take c elsewhere do not
    with np.errstate(all="ignore"):
        broken = [p for p in PROBES if not np.all(np.isfinite(row.forward(np.array([[p]]), c)))]
    if row.whole_matrix:  # a whole-matrix row's edge is its matrix domain: every broken point lies outside it
        assert all(row.matrix_domain.problem(np.array([[p]])) for p in broken), broken
        assert not broken or row.matrix_domain is not None
        return
    assert bool(broken) == bool(row.edges(c)), (broken, row.edges(c))


def test_every_loss_row_is_in_the_schema():
    bare, with_target = load_schema()["$defs"]["objective"]["oneOf"]
    assert set(bare["enum"]) | set(with_target["properties"]["loss"]["enum"]) == set(LOSSES)


# ----------------------------------------------------------------------------- layer kinds


KIND_ALONE = {  # a spec with the kind as its only non-smooth part, for kinds the complex step cannot cross
    "maxpool": "params: {X: {shape: [16, 2]}}\ninput: X\nlayers: [{maxpool: {image: [1, 4, 4], size: [2, 2]}}]\n",
}


@pytest.mark.slow  # every spec in the tree, checked in full
@pytest.mark.parametrize("key", sorted(KINDS))
def test_layer_kind_is_bundled_in_the_schema_and_honest_about_the_complex_step(key):
    kind = KINDS[key]
    using = [p for p in sorted(SPECS.glob("*.yaml"))
             if any(layer.kind == key for term in gradcheck.load(p).model.terms for layer in term.layers)]
    assert using, f"no bundled spec uses the {key} layer kind"
    spec = gradcheck.load(using[0])
    layers = [layer for term in spec.model.terms for layer in term.layers if layer.kind == key]
    assert all(kind.footprint(layer) > 0 for layer in layers)
    if kind.key is not None:
        assert load_schema()["$defs"]["layer"]["properties"][kind.key] == kind.schema
    if not kind.analytic:  # the kind alone, with smooth activations, is what the complex step refuses
        alone = gradcheck.loads(KIND_ALONE[key])
        refused = gradcheck.check(alone, method="complex-step")
        assert refused.status == "error" and f"is a {key} layer" in refused.message
    if not kind.closed_form:
        assert all(text is None for text in explained(using[0])["params"].values())


# ----------------------------------------------------------------------------- a row is complete or refused


def test_a_row_missing_a_field_fails_when_it_is_made():
    fields = {f.name: None for f in dataclasses.fields(Activation)}
    fields.pop("analytic")
    with pytest.raises(TypeError):
        Activation(**fields)
    with pytest.raises(TypeError):
        Loss(**{f.name: None for f in dataclasses.fields(Loss) if f.name != "fused"})


def test_a_row_that_contradicts_itself_is_refused():
    identity = TABLE["identity"]
    with pytest.raises(TypeError, match="exactly one of df"):
        dataclasses.replace(identity, vjp=lambda g, z, a: g)
    with pytest.raises(TypeError, match="grad_y"):
        dataclasses.replace(LOSSES["squared_error"], grad_y=None)


def test_a_layer_kind_missing_an_attribute_is_refused():
    class Half:
        key = "half"

    with pytest.raises(TypeError, match="lacks"):
        register(Half)


# ----------------------------------------------------------------------------- toy rows, one place each


CUBE = Activation(
    "cube", f=lambda z: z ** 3, df=lambda z, a: 3.0 * z * z, vjp=None,
    sym_f=lambda z, c: symbolic.power(z, 3), sym_df=lambda z, c: symbolic.mul(3, symbolic.power(z, 2)),
    df_text=None, kinks=(), edges=lambda c=None: (), analytic=True, argument=None, shape=lambda shape: shape,
    sym_vjp=None, vjp_text=None, whole_matrix=False, matrix_domain=None, imag_noise=None)

POISSON = Loss(
    "poisson", True, entry=lambda a, y: a - y * np.log(a), grad_a=lambda a, y: 1.0 - y / a,
    grad_y=lambda a, y: -np.log(a), scale=lambda shape, reduce: 1.0 / shape[-1] if reduce == "mean" else 1.0,
    sym_value=lambda a, y, reduce, count: symbolic.fn("sum", symbolic.sub(a, symbolic.mul(y, symbolic.fn("log", a)))),
    sym_grad_a=lambda a, y, ones_like, count: symbolic.sub(1, symbolic.div(y, a)),
    sym_grad_y=lambda a, y: symbolic.neg(symbolic.fn("log", a)), grad_text=lambda a, y, size: f"1 - {y} / {a}",
    edges=(losses.Edge(0.0, "a = 0, where log(a) in poisson is undefined"),), fused={}, low_rank=None, dense=None)

TOY_SPEC = """\
name: toy rows
params: {W: {shape: [3, 4], init: uniform, low: 0.5, high: 1.5}}
data: {y: {shape: [3, 4], init: uniform, low: 0.5, high: 2}}
input: W
layers: [{activation: cube}]
objective: {loss: poisson, target: y}
expect:
  W: 3 * W ** 2 * (1 - y / W ** 3)
"""


@pytest.fixture
def toy_rows(monkeypatch):
    """A toy activation and a toy loss, each registered in its one table."""
    monkeypatch.setitem(activations.TABLE, "cube", CUBE)
    monkeypatch.setitem(losses.LOSSES, "poisson", POISSON)


def test_toy_rows_registered_in_one_place_reach_run_explain_and_schema(toy_rows, tmp_path):
    path = write(tmp_path, TOY_SPEC)
    result = gradcheck.check(gradcheck.load(path))
    assert result.status == "pass" and result.params[0].expect.passed
    W = gradcheck.load(path).values["W"]
    y = gradcheck.load(path).values["y"]
    np.testing.assert_allclose(gradcheck.load(path).gradient()["W"], 3 * W ** 2 * (1 - y / W ** 3), rtol=1e-13)
    ex = assert_runs_and_round_trips(path, tmp_path)
    assert "log" in json.dumps(ex["terms"])
    schema = load_schema()["$defs"]
    assert "cube" in schema["activation"]["oneOf"][1]["enum"]
    assert "poisson" in schema["objective"]["oneOf"][1]["properties"]["loss"]["enum"]
    assert CliRunner().invoke(cli.main, ["validate", str(path)]).exit_code == 0


def test_toy_rows_are_gone_without_their_registration(tmp_path):
    with pytest.raises(gradcheck.SpecError, match='no such activation: "cube"'):
        gradcheck.load(write(tmp_path, TOY_SPEC))
