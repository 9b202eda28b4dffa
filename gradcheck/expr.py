"""Safe matrix expressions: a whitelist over Python's `ast`, compiled to a small tree, never eval'd.

Every value is a 2-D matrix (a number is 1×1). Arrays may carry leading batch axes, so the same
expression evaluates one point or a stack of perturbed points; `.T` and reductions act on the
last two axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .errors import SpecError
from .limits import DEFAULT as DEFAULT_LIMITS

MAX_LENGTH = DEFAULT_LIMITS.expression_length
MAX_DEPTH = DEFAULT_LIMITS.expression_depth
MAX_EXPONENT = 64.0

Shape = tuple[int, int]


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


def _trace(x):
    return np.trace(x, axis1=-2, axis2=-1)[..., None, None]


def _det(x):
    return np.linalg.det(x)[..., None, None]


def _logdet(x):
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


def _norm(x):
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
    _row("trace", _trace, 1, _scalar_of_square("trace"), "np.trace"),
    _row("det", _det, 1, _scalar_of_square("det"), "np.linalg.det"),
    _row("logdet", _logdet, 1, _scalar_of_square("logdet"), "logdet",
         helper=_helper("logdet", "x", "np.linalg.slogdet(x)[1]")),
    _row("inv", np.linalg.inv, 1, _inverse_shape, "np.linalg.inv"),
    _row("solve", np.linalg.solve, 2, _solve_shape, "np.linalg.solve"),
    _row("diag", _diag, 1, _diag_shape, "diag",
         helper=_helper("diag", "x", "np.diag(np.ravel(x)) if 1 in np.shape(x) else np.diag(x)[:, None]")),
    _row("eye", lambda n: np.eye(int(n)), 1, _eye_shape, "np.eye", literal=True),
    _row("rows", lambda x: np.full(np.shape(x)[:-2] + (1, 1), float(np.shape(x)[-2])), 1, _count_shape, "rows",
         helper=_helper("rows", "x", "np.shape(x)[0]")),
    _row("cols", lambda x: np.full(np.shape(x)[:-2] + (1, 1), float(np.shape(x)[-1])), 1, _count_shape, "cols",
         helper=_helper("cols", "x", "np.shape(x)[1]")),
    _row("where", lambda c, a, b: np.where(np.real(c) != 0, a, b), 3, _broadcast_all, "np.where", analytic=False,
         elementwise=True),
    _row("norm", _norm, 1, _count_shape, "np.linalg.norm"),
    _row("outer", lambda u, v: u @ np.swapaxes(v, -1, -2), 2, _outer_shape, "np.outer"),
    _row("kron", _kron, 2, _kron_shape, "np.kron"),
)

FUNCTIONS: dict[str, Function] = {row.name: row for row in FUNCTION_ROWS}


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """numpy broadcasting of two 2-D shapes, or None when they do not broadcast."""
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y) if 1 in (x, y) else x)
    return (out[0], out[1])


def fmt_shape(shape: Shape) -> str:
    """A shape as people write it: (4, 6)."""
    return f"({shape[0]}, {shape[1]})"


@dataclass(frozen=True)
class Where:
    """Maps an offset inside an expression to file:line:col."""

    file: str
    line: int
    col: int
    # Where each character of the expression's text stands in the file, (line, col), when the
    # loader could align the text with its source (folded and multi-line scalars join or re-indent
    # lines, so offsets alone cannot say); line_starts: offsets where the text's own lines begin.
    positions: tuple | None = None
    line_starts: tuple = (0,)

    def error(self, message: str, lineno: int = 1, offset: int = 0) -> SpecError:
        """A SpecError at the given (1-based line, 0-based column) inside the expression."""
        if self.positions:  # never past the last character: an "unexpected end" points at the last one
            starts = self.line_starts
            index = starts[min(max(lineno, 1), len(starts)) - 1] + max(offset, 0)
            return SpecError(message, self.file, *self.positions[min(index, len(self.positions) - 1)])
        if lineno == 1:
            return SpecError(message, self.file, self.line, self.col + offset)
        return SpecError(message, self.file, self.line + lineno - 1, offset + 1)


class Expr:
    """A compiled expression node: evaluate on arrays, or infer its shape from name shapes."""

    lineno: int = 1
    offset: int = 0

    def evaluate(self, env: Mapping[str, np.ndarray]):
        raise NotImplementedError

    def shape(self, shapes: Mapping[str, Shape], where: Where) -> Shape:
        raise NotImplementedError

    def names(self) -> set[str]:
        return set()


@dataclass
class Num(Expr):
    value: float
    lineno: int = 1
    offset: int = 0

    def evaluate(self, env):
        # a 1×1 matrix, as shape inference treats it: a bare float would break @, softmax and reductions
        return np.full((1, 1), self.value)

    def shape(self, shapes, where):
        return (1, 1)


@dataclass
class Name(Expr):
    id: str
    lineno: int = 1
    offset: int = 0

    def evaluate(self, env):
        return env[self.id]

    def shape(self, shapes, where):
        return shapes[self.id]

    def names(self):
        return {self.id}


@dataclass
class Unary(Expr):
    operand: Expr
    negate: bool
    lineno: int = 1
    offset: int = 0

    def evaluate(self, env):
        value = self.operand.evaluate(env)
        return -value if self.negate else value

    def shape(self, shapes, where):
        return self.operand.shape(shapes, where)

    def names(self):
        return self.operand.names()


@dataclass
class Transpose(Expr):
    operand: Expr
    lineno: int = 1
    offset: int = 0

    def evaluate(self, env):
        return transpose(self.operand.evaluate(env))

    def shape(self, shapes, where):
        rows, cols = self.operand.shape(shapes, where)
        return (cols, rows)

    def names(self):
        return self.operand.names()


@dataclass
class Binary(Expr):
    symbol: str
    fn: Callable
    left: Expr
    right: Expr
    lineno: int = 1
    offset: int = 0

    def evaluate(self, env):
        return self.fn(self.left.evaluate(env), self.right.evaluate(env))

    def shape(self, shapes, where):
        a, b = self.left.shape(shapes, where), self.right.shape(shapes, where)
        if self.symbol == "@":
            if isinstance(self.left, Num) or isinstance(self.right, Num):
                raise where.error("@ needs matrices on both sides; use * to scale by a number",
                                  self.lineno, self.offset)
            if a[1] != b[0]:
                raise where.error(f"shape mismatch in @: {fmt_shape(a)} @ {fmt_shape(b)} "
                                  f"({a[1]} columns against {b[0]} rows)", self.lineno, self.offset)
            return (a[0], b[1])
        out = broadcast(a, b)
        if out is None:
            raise where.error(f"shapes {fmt_shape(a)} and {fmt_shape(b)} do not broadcast in "
                              f"'{self.symbol}'", self.lineno, self.offset)
        return out

    def names(self):
        return self.left.names() | self.right.names()


@dataclass
class Power(Expr):
    base: Expr
    exponent: float
    lineno: int = 1
    offset: int = 0

    def evaluate(self, env):
        return np.power(self.base.evaluate(env), self.exponent)

    def shape(self, shapes, where):
        return self.base.shape(shapes, where)

    def names(self):
        return self.base.names()


@dataclass
class Call(Expr):
    func: str
    args: list
    axis: int | None
    lineno: int = 1
    offset: int = 0

    def evaluate(self, env):
        row = FUNCTIONS[self.func]
        if row.literal:
            return row.impl(self.args[0].value)
        values = [a.evaluate(env) for a in self.args]
        return row.impl(*values, axis=self.axis) if row.takes_axis else row.impl(*values)

    def shape(self, shapes, where):
        row = FUNCTIONS[self.func]
        literals = [int(a.value) for a in self.args] if row.literal else []
        arg_shapes = [] if row.literal else [a.shape(shapes, where) for a in self.args]
        try:
            return row.shape(arg_shapes, self.axis, literals)
        except ShapeProblem as exc:
            raise where.error(f"{exc} in {self.func}()", self.lineno, self.offset) from None

    def names(self):
        return set().union(*(a.names() for a in self.args))


@dataclass(frozen=True)
class Expression:
    """A parsed expression with its source text and place."""

    text: str
    root: Expr
    where: Where

    @property
    def names(self) -> set[str]:
        """Every name the expression reads."""
        return self.root.names()

    @property
    def functions(self) -> set[str]:
        """Every function the expression calls."""
        return _functions(self.root)

    @property
    def analytic(self) -> bool:
        """Whether the complex step may pass through it: no comparison, no function with a kink."""
        return all(FUNCTIONS[f].analytic for f in self.functions) and not (_symbols(self.root) & set(COMPARISONS))

    def not_elementwise(self) -> str | None:
        """What makes out_ij depend on more than in_ij (a matrix product, a transpose, a reduction), or None."""
        symbols = _symbols(self.root)
        if "@" in symbols:
            return "a matrix product (@)"
        if _has_transpose(self.root):
            return "a transpose (.T)"
        mixing = sorted(f for f in self.functions if not FUNCTIONS[f].elementwise)
        return f"{mixing[0]}()" if mixing else None

    def evaluate(self, env: Mapping[str, np.ndarray]) -> np.ndarray:
        """The value as a float array (batch axes preserved; numbers become 1×1)."""
        value = np.asarray(self.root.evaluate(env))
        if value.dtype.kind not in "fc":  # keep complex values: the complex step passes through here
            value = value.astype(float)
        return value.reshape(1, 1) if value.ndim == 0 else value

    def shape(self, shapes: Mapping[str, Shape]) -> Shape:
        """The result's shape, or a located SpecError for a mismatch."""
        return self.root.shape(shapes, self.where)

    def node_shapes(self, shapes: Mapping[str, Shape]) -> list[tuple[Expr, Shape]]:
        """Every node with the shape it computes, innermost first (to size intermediates before evaluating)."""
        out: list[tuple[Expr, Shape]] = []

        def walk(node: Expr) -> None:
            for child in _children(node):
                walk(child)
            out.append((node, node.shape(shapes, self.where)))

        walk(self.root)
        return out

    def at(self, node: Expr, message: str) -> SpecError:
        """A SpecError at `node` inside this expression."""
        return self.where.error(message, node.lineno, node.offset)

    def error(self, message: str, name: str | None = None) -> SpecError:
        """A SpecError at the first use of `name` in the expression, or at its start."""
        node = _first_name(self.root, name) if name else None
        if node is None:
            return self.where.error(message)
        return self.where.error(message, node.lineno, node.offset)


def _children(node: Expr) -> list[Expr]:
    """A node's operands, left to right."""
    kids = [getattr(node, a) for a in ("operand", "left", "right", "base") if hasattr(node, a)]
    return kids + list(getattr(node, "args", []))


def _functions(node: Expr) -> set[str]:
    own = {node.func} if isinstance(node, Call) else set()
    return own.union(*(_functions(c) for c in _children(node)))


def _symbols(node: Expr) -> set[str]:
    """Every binary operator symbol in the tree (+, @, >, …)."""
    own = {node.symbol} if isinstance(node, Binary) else set()
    return own.union(*(_symbols(c) for c in _children(node)))


COMPARISONS = (">", ">=", "<", "<=", "==", "!=")  # each gives a 0/1 matrix: a step, no complex step through it


def _has_transpose(node: Expr) -> bool:
    return isinstance(node, Transpose) or any(_has_transpose(c) for c in _children(node))


def _first_name(node: Expr, name: str) -> Name | None:
    """The leftmost Name node reading `name`."""
    if isinstance(node, Name):
        return node if node.id == name else None
    for child in _children(node):
        found = _first_name(child, name)
        if found is not None:
            return found
    return None
