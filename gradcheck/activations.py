"""The activation table: one row per activation, its forward beside its derivative.

Derivatives take (z, a) so they can reuse the forward output, as HIPS autograd's VJPs do
(sigmoid′ = a(1 − a), tanh′ = 1 − a²). Rows with an argument c also give ∂a/∂c, so a param used
as an activation argument gets its gradient too.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .expr import NON_ANALYTIC, sigmoid, softmax_columns


@dataclass(frozen=True)
class Activation:
    """f and its derivative. Elementwise rows give df(z, a[, c]); softmax gives a column VJP."""

    name: str
    f: Callable
    df: Callable | None = None  # elementwise ∂a/∂z
    dc: Callable | None = None  # elementwise ∂a/∂c, for rows with an argument
    vjp: Callable | None = None  # (g, z, a) -> g·∂a/∂z for non-elementwise rows
    kinks: tuple[float, ...] = ()  # points of z where f is not differentiable
    domain: str | None = None  # a boundary of f's domain, for messages ("z > 0")
    takes_argument: bool = False
    analytic: bool = True  # holomorphic where defined: the complex step may pass through it

    def forward(self, z, c=None):
        """a = f(z) (or f(z, c))."""
        return self.f(z, c) if self.takes_argument else self.f(z)

    def backward(self, g, z, a, c=None):
        """δ = g · ∂a/∂z: the error signal at z given the one at a."""
        if self.vjp is not None:
            return self.vjp(g, z, a)
        return g * (self.df(z, a, c) if self.takes_argument else self.df(z, a))

    def argument_grad(self, g, z, a, c):
        """g · ∂a/∂c, before reducing to c's shape."""
        return g * self.dc(z, a, c)


def softplus(z):
    """log(1 + e^z), stable for large |z| and holomorphic (so it takes a complex step)."""
    positive = np.real(z) > 0
    return np.where(positive, z + np.log1p(np.exp(-np.where(positive, z, 0))), np.log1p(np.exp(np.where(positive, 0, z))))


def _softmax_vjp(g, z, a):
    """Column softmax: δ = a ∘ (g − Σ_column a ∘ g)."""
    return a * (g - np.sum(a * g, axis=-2, keepdims=True))


def _row(name, f, df, **extra):
    return name, Activation(name, f, df, **extra)


def _arg_row(name, f, df, dc, **extra):
    return name, Activation(name, f, df, dc, takes_argument=True, **extra)


ACTIVATIONS: dict[str, Activation] = dict([
    _row("identity", lambda z: z, lambda z, a: np.ones_like(z)),
    _row("square", np.square, lambda z, a: 2.0 * z),
    _row("sqrt", np.sqrt, lambda z, a: 0.5 / a, domain="z >= 0"),
    _row("exp", np.exp, lambda z, a: a),
    _row("log", np.log, lambda z, a: 1.0 / z, domain="z > 0"),
    _row("sigmoid", sigmoid, lambda z, a: a * (1.0 - a)),
    _row("tanh", np.tanh, lambda z, a: 1.0 - a * a),
    _row("relu", lambda z: np.maximum(z, 0.0), lambda z, a: (z > 0).astype(float), kinks=(0.0,), analytic=False),
    _row("softplus", softplus, lambda z, a: sigmoid(z)),
    _row("abs", np.abs, lambda z, a: np.sign(z), kinks=(0.0,), analytic=False),
    ("softmax", Activation("softmax", softmax_columns, vjp=_softmax_vjp)),
])

WITH_ARGUMENT: dict[str, Activation] = dict([
    _arg_row("add", lambda z, c: z + c, lambda z, a, c: 1.0, lambda z, a, c: 1.0),
    _arg_row("sub", lambda z, c: z - c, lambda z, a, c: 1.0, lambda z, a, c: -1.0),
    _arg_row("scale", lambda z, c: c * z, lambda z, a, c: c, lambda z, a, c: z),
    _arg_row("power", lambda z, c: np.power(z, c), lambda z, a, c: c * np.power(z, c - 1.0),
             lambda z, a, c: a * np.log(z), domain="z > 0 unless p is a whole number"),
])


def lookup(name: str, where) -> Activation:
    """The row for `name`, or a located error listing the valid names."""
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]
    if name in WITH_ARGUMENT:
        raise where.error(f'activation "{name}" needs an argument: write {{{name}: <number or name>}}')
    hint = difflib.get_close_matches(name, [*ACTIVATIONS, *WITH_ARGUMENT], n=1)
    extra = f' (did you mean "{hint[0]}"?)' if hint else ""
    raise where.error(
        f'no such activation: "{name}"{extra}; valid: {", ".join(ACTIVATIONS)}, '
        f'{", ".join("{" + k + ": c}" for k in WITH_ARGUMENT)}, or a custom {{f: ..., df: ...}}'
    )


def custom(f_expr, df_expr) -> Activation:
    """A user activation: f and df are expressions in z (and data names, bound through `env`).

    Backprop uses the user's df as written, so a wrong df shows up as a failing check.
    """
    return Activation(
        "custom",
        f=lambda z, env: f_expr.evaluate({**env, "z": z}),
        df=lambda z, a, env: df_expr.evaluate({**env, "z": z}),
        takes_argument=True,
        analytic=not (f_expr.functions & NON_ANALYTIC),
    )
