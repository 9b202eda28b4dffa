"""The expression language's function table: every row's numbers against plain numpy, its shape rule,
batched evaluation, its analytic flag against the complex step, and its spelling in emitted numpy."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck.expr import Where
from gradcheck.functions import FUNCTIONS
from gradcheck.exprparse import parse

RNG = np.random.default_rng(7)
SQUARE = RNG.normal(size=(3, 3)) + 3 * np.eye(3)  # well conditioned, positive determinant
SPD = SQUARE @ SQUARE.T
COLUMN, OTHER = RNG.normal(size=(3, 1)), RNG.normal(size=(4, 1))
B = RNG.normal(size=(3, 2))
POSITIVE = np.abs(B) + 0.1

# name -> (expression, env, plain numpy value)
CASES = {
    "exp": ("exp(A)", {"A": B}, np.exp(B)),
    "log": ("log(P)", {"P": POSITIVE}, np.log(POSITIVE)),
    "sqrt": ("sqrt(P)", {"P": POSITIVE}, np.sqrt(POSITIVE)),
    "tanh": ("tanh(A)", {"A": B}, np.tanh(B)),
    "sigmoid": ("sigmoid(A)", {"A": B}, 1 / (1 + np.exp(-B))),
    "abs": ("abs(A)", {"A": B}, np.abs(B)),
    "sign": ("sign(A)", {"A": B}, np.sign(B)),
    "softmax": ("softmax(A)", {"A": B}, np.exp(B) / np.exp(B).sum(axis=0)),
    "ones_like": ("ones_like(A)", {"A": B}, np.ones_like(B)),
    "zeros_like": ("zeros_like(A)", {"A": B}, np.zeros_like(B)),
    "maximum": ("maximum(A, 0)", {"A": B}, np.maximum(B, 0)),
    "minimum": ("minimum(A, 0)", {"A": B}, np.minimum(B, 0)),
    "sum": ("sum(A, axis=0)", {"A": B}, B.sum(axis=0, keepdims=True)),
    "mean": ("mean(A)", {"A": B}, np.array([[B.mean()]])),
    "trace": ("trace(S)", {"S": SQUARE}, np.array([[np.trace(SQUARE)]])),
    "det": ("det(S)", {"S": SQUARE}, np.array([[np.linalg.det(SQUARE)]])),
    "logdet": ("logdet(S)", {"S": SPD}, np.array([[np.log(np.linalg.det(SPD))]])),
    "inv": ("inv(S)", {"S": SQUARE}, np.linalg.inv(SQUARE)),
    "solve": ("solve(S, A)", {"S": SQUARE, "A": B}, np.linalg.inv(SQUARE) @ B),
    "diag": ("diag(u)", {"u": COLUMN}, np.diag(COLUMN.ravel())),
    "eye": ("eye(3) @ S", {"S": SQUARE}, SQUARE),
    "select": ("select(3, 1, 3) @ S", {"S": SQUARE}, SQUARE[1:3]),
    "rows": ("rows(A)", {"A": B}, np.array([[3.0]])),
    "cols": ("cols(A)", {"A": B}, np.array([[2.0]])),
    "where": ("where(A > 0, A, 2 * A)", {"A": B}, np.where(B > 0, B, 2 * B)),
    "norm": ("norm(A)", {"A": B}, np.array([[np.linalg.norm(B)]])),
    "outer": ("outer(u, v)", {"u": COLUMN, "v": OTHER}, COLUMN @ OTHER.T),
    "kron": ("kron(S, A)", {"S": SQUARE, "A": B}, np.kron(SQUARE, B)),
}


def evaluate(text: str, env: dict):
    return parse(text, Where("<t>", 1, 1), set(env)).evaluate(env)


def test_every_function_row_has_a_case():
    assert set(CASES) == set(FUNCTIONS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_function_value_and_shape(name):
    text, env, want = CASES[name]
    expression = parse(text, Where("<t>", 1, 1), set(env))
    np.testing.assert_allclose(expression.evaluate(env), want, rtol=1e-12, atol=1e-14)
    assert expression.shape({k: v.shape for k, v in env.items()}) == want.shape


@pytest.mark.parametrize("name", sorted(n for n in CASES if n not in ("eye", "select")))
def test_function_evaluates_stacks_entry_by_entry(name):
    """The engine evaluates stacks of perturbed values in one call: a stack must equal the loop."""
    text, env, _ = CASES[name]
    key = sorted(env)[0]
    stack = np.stack([env[key] + 1e-3 * k * np.ones_like(env[key]) for k in range(3)])
    batched = evaluate(text, {**env, key: stack})
    for k in range(3):
        np.testing.assert_allclose(batched[k], evaluate(text, {**env, key: stack[k]}), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(n for n in CASES if FUNCTIONS[n].analytic and n not in ("eye", "select", "rows", "cols",
                                                                                                 "ones_like", "zeros_like")))
def test_analytic_functions_take_the_complex_step(name):
    """Im f(x + ih·v)/h equals the central difference of f along v: the flag the complex step relies on."""
    text, env, _ = CASES[name]
    key = sorted(env)[0]
    v = RNG.normal(size=env[key].shape)
    h = 1e-20
    complex_step = np.imag(evaluate(text, {**env, key: env[key] + 1j * h * v})) / h
    t = 1e-6
    central = (evaluate(text, {**env, key: env[key] + t * v}) - evaluate(text, {**env, key: env[key] - t * v})) / (2 * t)
    np.testing.assert_allclose(complex_step, central, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("text, message", [
    ("trace(A)", "trace() needs a square matrix, not (3, 2)"),
    ("inv(A)", "inv() needs a square matrix"),
    ("solve(S, u.T)", "solve(A, B) needs B with 3 rows"),
    ("outer(A, u)", "outer(u, v) takes two columns"),
    ("eye(n)", "eye(n) takes a whole number n"),
    ("eye(2.5)", "eye(n) takes a whole number n"),
    ("A < u < A", "one comparison at a time"),
])
def test_shape_and_literal_problems_are_located(text, message):
    spec = f"params: {{A: {{shape: [3, 2]}}, u: {{shape: [3, 1]}}, S: {{shape: [3, 3]}}, n: 2}}\ninput: A\nexpect:\n  A: {text}\n"
    with pytest.raises(gradcheck.SpecError) as info:
        gradcheck.loads(spec)
    assert message in info.value.message and info.value.line == 4


def test_comparisons_write_relu_prime_in_expect():
    """(z > 0) * g: the relu derivative people write by hand, now in the language."""
    spec = gradcheck.loads("""\
params: {W: {shape: [4, 3]}}
data: {x: {shape: [3, 6]}, y: {shape: [4, 6]}}
input: x
layers: [{weight: W, activation: relu}]
objective: {loss: squared_error, target: y}
define:
  Z: W @ x
expect:
  W: ((Z > 0) * (maximum(Z, 0) - y)) @ x.T
""")
    assert gradcheck.check(spec).status == "pass"


LEAST_SQUARES = """\
params: {x: {shape: [3, 4]}}
data:
  A: [[3.0, 0.9, 0.2], [0.1, 2.0, 0.7], [0.4, 0.1, 1.5]]
  b: {shape: [3, 4]}
input: x
layers: [{weight: A}]
objective: {loss: squared_error, target: b, reduce: mean}
expect:
  x: %s
"""


def test_matrix_functions_in_expect_least_squares_through_solve():
    """J = ½‖Ax − b‖²/m: its gradient Aᵀ(Ax − b)/m written as AᵀA(x − A⁻¹b)/cols(b), with solve."""
    right = gradcheck.loads(LEAST_SQUARES % "A.T @ A @ (x - solve(A, b)) / cols(b)")
    assert gradcheck.check(right).status == "pass"
    wrong = gradcheck.loads(LEAST_SQUARES % "A.T @ A @ (x - solve(A.T, b)) / cols(b)")  # A is not symmetric
    assert gradcheck.check(wrong).status == "fail"


def test_custom_activations_must_be_elementwise():
    for f, what in [("sum(z)", "sum()"), ("z @ z", "a matrix product"), ("z.T", "a transpose"), ("softmax(z)", "softmax()")]:
        with pytest.raises(gradcheck.SpecError) as info:
            gradcheck.loads(f'params: {{W: {{shape: [2, 2]}}}}\ninput: W\nlayers: [{{activation: {{f: "{f}", df: "1"}}}}]\n')
        assert "must be elementwise" in info.value.message and what in info.value.message
    ok = gradcheck.loads('params: {W: {shape: [2, 2]}}\ninput: W\nlayers: [{activation: {f: "where(z > 0, z, 0)", '
                         'df: "z > 0"}}]\n')
    assert gradcheck.check(ok).status == "pass"
    assert "analytic" in gradcheck.check(ok, method="complex-step").message
