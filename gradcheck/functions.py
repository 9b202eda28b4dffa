"""The functions of the expression language: one row each, with everything about the function.

Every value is a 2-D matrix that may carry leading batch axes (the engine evaluates stacks of
perturbed points in one call), so each implementation acts on the last two axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .shapes import Shape, broadcast, fmt_shape


def sigmoid(z):
    """Logistic function, stable for large |z|."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def softmax_columns(z):
    """Softmax over each column (axis -2), shifted by the column max for stability."""
    e = np.exp(z - np.max(np.real(z), axis=-2, keepdims=True))  # the shift cancels; real keeps it analytic
    return e / np.sum(e, axis=-2, keepdims=True)


def transpose(x):
    """Matrix transpose of the last two axes (numbers are their own transpose)."""
    return np.swapaxes(x, -1, -2) if np.ndim(x) >= 2 else x


def inverse(x):
    """inv over the last two axes; a singular member of a stack is NaN rather than an error for the whole stack."""
    try:
        return np.linalg.inv(x)
    except np.linalg.LinAlgError:
        x = np.asarray(x)
        flat = x.reshape((-1,) + x.shape[-2:])
        out = np.full(flat.shape, np.nan, dtype=np.result_type(x, float))
        for k, member in enumerate(flat):
            try:
                out[k] = np.linalg.inv(member)
            except np.linalg.LinAlgError:
                pass
        return out.reshape(x.shape)


def _reduce(fn):
    """sum/mean over the whole matrix, or over axis 0 (rows) / 1 (columns) keeping dims."""

    def apply(x, axis=None):
        x = np.asarray(x)
        if x.ndim < 2:
            x = np.reshape(x, x.shape + (1, 1)[x.ndim:])
        axes = (-2, -1) if axis is None else (-2 if axis == 0 else -1)
        return fn(x, axis=axes, keepdims=True)

    return apply


class ShapeProblem(Exception):
    """A function's arguments do not have shapes it accepts; the message says which and why."""


@dataclass(frozen=True)
class Function:
    """One function of the expression language, with everything about it: its numbers (leading batch axes
    allowed), its shape rule, how emitted numpy spells it, and whether it is elementwise and analytic.

    Adding a function is adding one row to FUNCTION_ROWS below; a row that leaves a field out fails at import.
    """

    name: str
    impl: Callable  # (*args[, axis=]) -> array
    arity: int
    shape: Callable  # (arg_shapes, axis, literals) -> Shape, or raises ShapeProblem
    numpy: str  # the callable emitted numpy code writes: np.*, or a helper of its own (below)
    helper: str | None  # the helper's source for emitted code, when `numpy` names one (sigmoid, softmax: always there)
    takes_axis: bool  # sum/mean: axis=0 or axis=1
    literal: bool  # its one argument must be a whole-number literal (eye(n))
    elementwise: bool  # out_ij depends on in_ij alone (what a custom activation may use)
    analytic: bool  # holomorphic where defined: the complex step may pass through it


def _same(shapes, axis, literals):
    return shapes[0]


def _broadcast_all(shapes, axis, literals):
    out = shapes[0]
    for other in shapes[1:]:
        nxt = broadcast(out, other)
        if nxt is None:
            raise ShapeProblem(f"shapes {' and '.join(map(fmt_shape, shapes))} do not broadcast")
        out = nxt
    return out


def _reduced(shapes, axis, literals):
    rows, cols = shapes[0]
    return {None: (1, 1), 0: (1, cols), 1: (rows, 1)}[axis]


def _square(shape: Shape, what: str) -> None:
    if shape[0] != shape[1]:
        raise ShapeProblem(f"{what} needs a square matrix, not {fmt_shape(shape)}")


def _scalar_of_square(name):
    def rule(shapes, axis, literals):
        _square(shapes[0], f"{name}()")
        return (1, 1)
    return rule


def _inverse_shape(shapes, axis, literals):
    _square(shapes[0], "inv()")
    return shapes[0]


def _solve_shape(shapes, axis, literals):
    a, b = shapes
    _square(a, "solve(A, B)")
    if a[1] != b[0]:
        raise ShapeProblem(f"solve(A, B) needs B with {a[1]} rows for A {fmt_shape(a)}, not {fmt_shape(b)}")
    return b


def _diag_shape(shapes, axis, literals):
    rows, cols = shapes[0]
    if rows == cols and rows > 1:
        return (rows, 1)  # a square matrix: its diagonal as a column
    if 1 in (rows, cols):
        n = max(rows, cols)
        return (n, n)  # a vector: the diagonal matrix
    raise ShapeProblem(f"diag() takes a vector or a square matrix, not {fmt_shape(shapes[0])}")


def _eye_shape(shapes, axis, literals):
    n = literals[0]
    return (n, n)


def _select_shape(shapes, axis, literals):
    n, start, stop = literals
    if not 0 <= start < stop <= n:
        raise ShapeProblem(f"select(n, start, stop) needs 0 <= start < stop <= n, not ({n}, {start}, {stop})")
    return (stop - start, n)


def _select(n, start, stop):
    """The (stop−start)×n matrix that picks rows start..stop−1: select(n, s, e) @ x is x[s:e]."""
    return np.eye(int(n))[int(start):int(stop)]


def _outer_shape(shapes, axis, literals):
    u, v = shapes
    if u[1] != 1 or v[1] != 1:
        raise ShapeProblem(f"outer(u, v) takes two columns, not {fmt_shape(u)} and {fmt_shape(v)}")
    return (u[0], v[0])


def _kron_shape(shapes, axis, literals):
    (a, b), (c, d) = shapes
    return (a * c, b * d)


def _count_shape(shapes, axis, literals):
    return (1, 1)


def matrix_trace(x):
    return np.trace(x, axis1=-2, axis2=-1)[..., None, None]


def det(x):
    return np.linalg.det(x)[..., None, None]


def logdet(x):
    """log det x, NaN where det x <= 0 (the edge of its domain); log(det) for the complex step."""
    if np.iscomplexobj(x):
        return np.log(np.linalg.det(x))[..., None, None]
    sign, logabs = np.linalg.slogdet(x)
    return np.where(sign > 0, logabs, np.nan)[..., None, None]


def _diag(x):
    x = np.asarray(x)
    rows, cols = x.shape[-2:]
    if rows == cols and rows > 1:
        return np.diagonal(x, axis1=-2, axis2=-1)[..., :, None]
    column = x if cols == 1 else np.swapaxes(x, -1, -2)
    return column * np.eye(column.shape[-2])


def _kron(a, b):
    a, b = np.asarray(a), np.asarray(b)
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(out.shape[:-4] + (a.shape[-2] * b.shape[-2], a.shape[-1] * b.shape[-1]))


def frobenius(x):
    """The Frobenius norm, written without abs so the complex step passes through it."""
    return np.sqrt(np.sum(x * x, axis=(-2, -1), keepdims=True))


def _row(name, impl, arity, shape, numpy, elementwise=False, analytic=True, takes_axis=False, literal=False,
         helper=None):
    return Function(name, impl, arity, shape, numpy, helper, takes_axis, literal, elementwise, analytic)


def _helper(name, args, body):
    """The source of a small function for emitted numpy code."""
    return f"def {name}({args}):\n    return {body}\n"


FUNCTION_ROWS: tuple[Function, ...] = (
    _row("exp", np.exp, 1, _same, "np.exp", elementwise=True),
    _row("log", np.log, 1, _same, "np.log", elementwise=True),
    _row("sqrt", np.sqrt, 1, _same, "np.sqrt", elementwise=True),
    _row("tanh", np.tanh, 1, _same, "np.tanh", elementwise=True),
    _row("sigmoid", sigmoid, 1, _same, "sigmoid", elementwise=True),
    _row("abs", np.abs, 1, _same, "np.abs", elementwise=True, analytic=False),
    _row("sign", np.sign, 1, _same, "np.sign", elementwise=True, analytic=False),
    _row("softmax", softmax_columns, 1, _same, "softmax"),
    _row("ones_like", lambda x: np.ones(np.shape(x)), 1, _same, "np.ones_like", elementwise=True),
    _row("zeros_like", lambda x: np.zeros(np.shape(x)), 1, _same, "np.zeros_like", elementwise=True),
    _row("maximum", np.maximum, 2, _broadcast_all, "np.maximum", elementwise=True, analytic=False),
    _row("minimum", np.minimum, 2, _broadcast_all, "np.minimum", elementwise=True, analytic=False),
    _row("sum", _reduce(np.sum), 1, _reduced, "np.sum", takes_axis=True),
    _row("mean", _reduce(np.mean), 1, _reduced, "np.mean", takes_axis=True),
    _row("trace", matrix_trace, 1, _scalar_of_square("trace"), "np.trace"),
    _row("det", det, 1, _scalar_of_square("det"), "np.linalg.det"),
    _row("logdet", logdet, 1, _scalar_of_square("logdet"), "logdet",
         helper=_helper("logdet", "x", "np.linalg.slogdet(x)[1]")),
    _row("inv", inverse, 1, _inverse_shape, "np.linalg.inv"),
    _row("solve", np.linalg.solve, 2, _solve_shape, "np.linalg.solve"),
    _row("diag", _diag, 1, _diag_shape, "diag",
         helper=_helper("diag", "x", "np.diag(np.ravel(x)) if 1 in np.shape(x) else np.diag(x)[:, None]")),
    _row("eye", lambda n: np.eye(int(n)), 1, _eye_shape, "np.eye", literal=True),
    _row("select", _select, 3, _select_shape, "select", literal=True,
         helper=_helper("select", "n, start, stop", "np.eye(n)[start:stop]")),
    _row("rows", lambda x: np.full(np.shape(x)[:-2] + (1, 1), float(np.shape(x)[-2])), 1, _count_shape, "rows",
         helper=_helper("rows", "x", "np.shape(x)[0]")),
    _row("cols", lambda x: np.full(np.shape(x)[:-2] + (1, 1), float(np.shape(x)[-1])), 1, _count_shape, "cols",
         helper=_helper("cols", "x", "np.shape(x)[1]")),
    _row("where", lambda c, a, b: np.where(np.real(c) != 0, a, b), 3, _broadcast_all, "np.where", analytic=False,
         elementwise=True),
    _row("norm", frobenius, 1, _count_shape, "np.linalg.norm"),
    _row("outer", lambda u, v: u @ np.swapaxes(v, -1, -2), 2, _outer_shape, "np.outer"),
    _row("kron", _kron, 2, _kron_shape, "np.kron"),
)

FUNCTIONS: dict[str, Function] = {row.name: row for row in FUNCTION_ROWS}
