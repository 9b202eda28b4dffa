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
from .functions import FUNCTIONS, ShapeProblem, transpose
from .limits import DEFAULT as DEFAULT_LIMITS
from .shapes import Shape, broadcast, fmt_shape

MAX_LENGTH = DEFAULT_LIMITS.expression_length
MAX_DEPTH = DEFAULT_LIMITS.expression_depth
MAX_EXPONENT = 64.0


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
            return row.impl(*(a.value for a in self.args))
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
