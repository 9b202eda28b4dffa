"""The activation table: one row per activation, with everything about it in that row.

A row holds f and f′ for numbers (f′ takes (z, a) so it can reuse the forward output, as HIPS
autograd's VJPs do: sigmoid′ = a(1 − a), tanh′ = 1 − a²), the same two as symbols for `explain`,
the points where f has a kink, the edges of its domain (for hazards), whether it is analytic (for
the complex step) and, for rows written {name: c}, the derivative with respect to the argument c
in both forms. Every field is required: a row that leaves one out fails when this module is imported.

Adding an activation is adding one row to ROWS below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import excerpt
from . import symbolic as s
from .expr import MAX_EXPONENT
from .functions import det, frobenius, inverse, logdet, matrix_trace, sigmoid, softmax_columns
from . import matrixcalc as mc
from .matrixcalc import MatrixDomain
from .suggest import did_you_mean


@dataclass(frozen=True)
class Edge:
    """A point of z where f is undefined or singular beyond (or at): the edge of its domain."""

    at: float
    text: str  # the domain, as messages say it: "z >= 0"
    near: str | None = None  # how a stencil message names the point, {use} standing for the activation as written

    def describe(self, name: str, use: str) -> str:
        """The point, as a stencil message names it."""
        if self.near is not None:
            return self.near.format(use=use)
        return f"the edge of the domain of {name} ({self.text}) at z = {self.at:g}"


@dataclass(frozen=True)
class Argument:
    """∂a/∂c for a row written {name: c}: elementwise numbers, and a symbol given (g, z, a, c)."""

    dc: Callable  # (z, a, c) -> ∂a/∂c
    sym_grad: Callable  # (g, z, a, c) -> g • ∂a/∂c as a symbol


@dataclass(frozen=True)
class Activation:
    """One activation: f beside f′, as numbers and as symbols, and where f stops being smooth."""

    name: str
    f: Callable  # (z) -> a, or (z, c) for rows with an argument
    df: Callable | None  # (z, a[, c]) -> ∂a/∂z elementwise; None for a column-wise row (give vjp)
    vjp: Callable | None  # (g, z, a) -> g·∂a/∂z for a row that mixes entries (softmax)
    sym_f: Callable  # (z, c) -> f(z) as a symbol
    sym_df: Callable | None  # (z, c) -> f′(z) as a symbol; None where f′ is no elementwise symbol
    df_text: str | None  # how the UFLDL table writes f′ when sym_df is None
    kinks: tuple[float, ...]  # points of z where f is not differentiable
    edges: Callable  # (argument value or None) -> tuple[Edge, ...]: where f's domain ends
    analytic: bool  # holomorphic where defined: the complex step may pass through it
    argument: Argument | None  # for rows written {name: c}
    shape: Callable  # z's shape -> a's shape (raises ShapeProblem for a z it does not take)
    sym_vjp: Callable | None  # (g, z, a, c) -> δ as a symbol, for a row with vjp
    vjp_text: Callable | None  # (a, z) -> δ as the UFLDL table writes it, in the signal g from above
    whole_matrix: bool  # a depends on all of z as one matrix (inv, logdet): only a dense layer applies it
    matrix_domain: MatrixDomain | None  # where a whole-matrix row is defined (det z > 0), at a point and a stencil
    imag_noise: Callable | None  # (z, a) -> per entry of a, Σ|Im| of the terms an imaginary step's f sums where they
    # cancel (softmax's normalization: imag_noise.py); None: f cancels none

    def __post_init__(self):
        if (self.df is None) == (self.vjp is None):
            raise TypeError(f"activation {self.name}: give exactly one of df (elementwise) and vjp")
        if (self.vjp is None) != (self.sym_vjp is None) or (self.vjp is None) != (self.vjp_text is None):
            raise TypeError(f"activation {self.name}: a row with vjp gives sym_vjp and vjp_text too (and only it)")
        if (self.sym_df is None) == (self.df_text is None):
            raise TypeError(f"activation {self.name}: give exactly one of sym_df and df_text")

    @property
    def takes_argument(self) -> bool:
        return self.argument is not None

    @property
    def writes_in_place(self) -> bool:
        """f is one numpy ufunc of z alone, so a = f(z) may be written over a z that nothing else reads."""
        return isinstance(self.f, np.ufunc) and self.elementwise and not self.takes_argument

    @property
    def elementwise(self) -> bool:
        """Whether a_i depends on z_i alone (so one changed row of z changes one row of a)."""
        return self.vjp is None

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
        return g * self.argument.dc(z, a, c)

    @property
    def domain(self) -> str | None:
        """The domain as messages say it ("z > 0"), or None where f is defined everywhere."""
        found = self.edges(None)
        return found[0].text if found else None


def softplus(z):
    """log(1 + e^z), stable for large |z| and holomorphic (so it takes a complex step)."""
    positive = np.real(z) > 0
    return np.where(positive, z + np.log1p(np.exp(-np.where(positive, z, 0))), np.log1p(np.exp(np.where(positive, 0, z))))


def _softmax_vjp(g, z, a):
    """Column softmax: δ = a ∘ (g − Σ_column a ∘ g)."""
    return a * (g - np.sum(a * g, axis=-2, keepdims=True))


def cancelled_terms(weights, spread_imag):
    """(each entry's term, their column sum) of a softmax's Im a = a ⊙ (Im s − Σ_column a·Im s) after an imaginary
    step: `weights` a's real parts, `spread_imag` |Im s|·(1 + |s − top|) per entry (e^(s − top) has ε·|s − top|)."""
    # Where one weight is ≈ 1 the two terms cancel down to the other entries' e^(s − top)-sized share, but the
    # difference keeps a round-off of a few ε of |Im s|: |Im a| can be far below its error.
    terms = weights * spread_imag
    return terms, np.sum(terms, axis=-2, keepdims=True)


def top_distance(scores, top=None):
    """1 + |s − top| per (real) score of a softmax over each column, top its column's largest unless given: the
    factor on e^(s − top)'s round-off (ε·|s − top|) in cancelled_terms' spread."""
    return 1.0 + np.abs(scores - (np.max(scores, axis=-2, keepdims=True) if top is None else top))


def _softmax_imag_noise(z, a):
    """Per entry of a = softmax(z), Σ|Im| of the terms an imaginary step sums into Im a (cancelled_terms)."""
    zr, weights = np.real(z), np.real(a)
    terms, column = cancelled_terms(weights, np.abs(np.imag(z)) * top_distance(zr))
    return terms + weights * column


def _sym_power(z, c):
    """z^c as a symbol: a literal exponent prints as **, a name (or a huge exponent) as power(z, c)."""
    if isinstance(c, s.Num) and abs(c.value) <= MAX_EXPONENT:
        return s.power(z, c.value)
    return s.fn("power", z, c)


def _sym_power_df(z, c):
    if isinstance(c, s.Num):
        return s.mul(c, s.power(z, c.value - 1))
    return s.mul(c, s.fn("power", z, s.sub(c, 1)))


def _power_edges(p):
    """z = 0 is an edge unless every power is a whole number ≥ 0."""
    edge = Edge(0.0, "z > 0 unless p is a whole number", "z = 0, where {use} is not smooth (a fractional or negative power)")
    if p is None:
        return (edge,)
    p = np.asarray(p, dtype=float)
    return (edge,) if p.size and not (np.all(p == np.round(p)) and np.all(p >= 0)) else ()


def _smooth(_c=None):
    return ()


def _edge(text):
    return lambda _c=None: (Edge(0.0, text),)


def _same(shape):
    """An elementwise or column-wise row keeps z's shape."""
    return shape


def _row(name, f, df, sym_f, sym_df, kinks=(), edges=_smooth, analytic=True):
    """An elementwise activation without an argument."""
    return Activation(name, f, df, None, lambda z, c: sym_f(z), lambda z, c: sym_df(z), None, kinks, edges,
                      analytic, None, _same, None, None, False, None, None)


def _arg_row(name, f, df, sym_f, sym_df, dc, sym_grad, edges=_smooth):
    """An elementwise activation written {name: c}."""
    return Activation(name, f, df, None, sym_f, sym_df, None, (), edges, True, Argument(dc, sym_grad), _same, None,
                      None, False, None, None)


def _matrix_row(name, f, vjp, sym_vjp, df_text, vjp_text, shape, domain=None, sym_f=None):
    """A whole-matrix activation (inv, logdet, …): its δ in closed form, its shape rule, its domain; its symbol is
    the expression language's function of the same name unless given."""
    return Activation(name, f, None, vjp, sym_f or (lambda z, c: s.fn(name, z)), None, df_text, (), _smooth, True,
                      None, shape, sym_vjp, vjp_text, True, domain, None)


def _sym_softmax_vjp(g, z, a, c):
    """a • (g − Σ_column a • g)."""
    return s.mul(a, s.sub(g, s.fn("sum", s.mul(a, g), axis=0)))


_SIG = lambda z: s.fn("sigmoid", z)  # noqa: E731 - a symbol used by two rows

ROWS: tuple[Activation, ...] = (
    _row("identity", lambda z: z, lambda z, a: np.ones_like(z), lambda z: z, lambda z: s.num(1)),
    _row("square", np.square, lambda z, a: 2.0 * z, lambda z: s.power(z, 2), lambda z: s.mul(2, z)),
    _row("sqrt", np.sqrt, lambda z, a: 0.5 / a, lambda z: s.fn("sqrt", z), lambda z: s.div(0.5, s.fn("sqrt", z)),
         edges=_edge("z >= 0")),
    _row("exp", np.exp, lambda z, a: a, lambda z: s.fn("exp", z), lambda z: s.fn("exp", z)),
    _row("log", np.log, lambda z, a: 1.0 / z, lambda z: s.fn("log", z), lambda z: s.div(1, z), edges=_edge("z > 0")),
    _row("sigmoid", sigmoid, lambda z, a: a * (1.0 - a), _SIG, lambda z: s.mul(_SIG(z), s.sub(1, _SIG(z)))),
    _row("tanh", np.tanh, lambda z, a: 1.0 - a * a, lambda z: s.fn("tanh", z),
         lambda z: s.sub(1, s.power(s.fn("tanh", z), 2))),
    _row("relu", lambda z: np.maximum(z, 0.0), lambda z, a: (z > 0).astype(float), lambda z: s.fn("maximum", z, 0),
         lambda z: s.fn("maximum", s.fn("sign", z), 0), kinks=(0.0,), analytic=False),
    _row("softplus", softplus, lambda z, a: sigmoid(z), lambda z: s.fn("log", s.add(1, s.fn("exp", z))), _SIG),
    _row("abs", np.abs, lambda z, a: np.sign(z), lambda z: s.fn("abs", z), lambda z: s.fn("sign", z), kinks=(0.0,),
         analytic=False),
    Activation("softmax", softmax_columns, None, _softmax_vjp, lambda z, c: s.fn("softmax", z), None,
               "diag(a) − a aᵀ per column", (), _smooth, True, None, _same, _sym_softmax_vjp,
               lambda a, z: f"{a} • (g - sum({a} • g, axis=0))", False, None,
               lambda z, a: _softmax_imag_noise(z, a)),
    _matrix_row("inv", inverse, mc.inv_vjp, mc.sym_inv_vjp, "−aᵀ g aᵀ (a = inv(z))",
                lambda a, z: f"-{a}.T @ g @ {a}.T", mc.square, mc.INVERTIBLE),
    _matrix_row("logdet", logdet, mc.logdet_vjp, mc.sym_logdet_vjp, "inv(z).T",
                lambda a, z: f"g • inv({z}).T", mc.scalar_of_square, mc.LOGDET_DOMAIN),
    _matrix_row("det", det, mc.det_vjp, mc.sym_det_vjp, "det(z) • inv(z).T",
                lambda a, z: f"g • {a} • inv({z}).T", mc.scalar_of_square),
    _matrix_row("trace", matrix_trace, mc.trace_vjp, mc.sym_trace_vjp, "eye(n)",
                lambda a, z: "g • eye(n)", mc.scalar_of_square),
    _matrix_row("frobenius", frobenius, mc.frobenius_vjp, mc.sym_frobenius_vjp, "z / norm(z)",
                lambda a, z: f"g • {z} / {a}", mc.to_scalar, mc.NONZERO, sym_f=lambda z, c: s.fn("norm", z)),
    _matrix_row("transpose", lambda z: np.swapaxes(z, -1, -2), mc.transpose_vjp, mc.sym_transpose_vjp, "gᵀ",
                lambda a, z: "g.T", mc.swapped, sym_f=lambda z, c: s.t(z)),
    _arg_row("add", lambda z, c: z + c, lambda z, a, c: 1.0, lambda z, c: s.add(z, c), lambda z, c: s.num(1),
             lambda z, a, c: 1.0, lambda g, z, a, c: g),
    _arg_row("sub", lambda z, c: z - c, lambda z, a, c: 1.0, lambda z, c: s.sub(z, c), lambda z, c: s.num(1),
             lambda z, a, c: -1.0, lambda g, z, a, c: s.neg(g)),
    _arg_row("scale", lambda z, c: c * z, lambda z, a, c: c, lambda z, c: s.mul(c, z), lambda z, c: c,
             lambda z, a, c: z, lambda g, z, a, c: s.mul(g, z)),
    _arg_row("power", lambda z, c: np.power(z, c), lambda z, a, c: c * np.power(z, c - 1.0), _sym_power, _sym_power_df,
             lambda z, a, c: a * np.log(z), lambda g, z, a, c: s.mul(g, s.mul(a, s.fn("log", z))),
             edges=_power_edges),
)

TABLE: dict[str, Activation] = {row.name: row for row in ROWS}  # the one registry every part reads


def without_argument() -> dict[str, Activation]:
    """The rows written by name alone ("tanh"), in table order."""
    return {name: row for name, row in TABLE.items() if not row.takes_argument}


def with_argument() -> dict[str, Activation]:
    """The rows written with an argument ({scale: c}), in table order."""
    return {name: row for name, row in TABLE.items() if row.takes_argument}


def lookup(name: str, where) -> Activation:
    """The row for `name`, or a located error listing the valid names."""
    row = TABLE.get(name)
    if row is not None and not row.takes_argument:
        return row
    if row is not None:
        raise where.error(f'activation "{excerpt(name)}" needs an argument: write {{{name}: <number or name>}}')
    raise where.error(
        f'no such activation: "{excerpt(name)}"{did_you_mean(name, [*without_argument(), *with_argument()])}; valid: '
        f'{", ".join(without_argument())}, {", ".join("{" + k + ": c}" for k in with_argument())}, or a custom '
        f'{{f: ..., df: ...}}'
    )


def custom(f_expr, df_expr) -> Activation:
    """A user activation: f and df are expressions in z and data names.

    Where other rows take an argument c, a custom row takes the environment of names (numbers in the
    network, symbols in `explain`). Backprop uses the user's df as written, so a wrong df shows up
    as a failing check.
    """
    return Activation(
        "custom",
        f=lambda z, env: f_expr.evaluate({**env, "z": z}),
        df=lambda z, a, env: df_expr.evaluate({**env, "z": z}),
        vjp=None,
        sym_f=lambda z, env: s.from_expr(f_expr.root, {**env, "z": z}),
        sym_df=lambda z, env: s.from_expr(df_expr.root, {**env, "z": z}),
        df_text=None,
        kinks=(), edges=_smooth,
        analytic=f_expr.analytic,
        argument=Argument(dc=None, sym_grad=None),  # the environment travels where an argument would
        shape=_same, sym_vjp=None, vjp_text=None, whole_matrix=False, matrix_domain=None, imag_noise=None,
    )
