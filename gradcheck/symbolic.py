"""Symbolic matrix expressions for `explain`: built with light simplification, printed two ways.

Every node knows its shape, so simplifications are safe (`ones * X` is `X` only when X already has
the shape of the product). `text()` prints the spec expression language (what `expect` accepts);
`python()` prints numpy code for `explain --emit python`.
"""

from __future__ import annotations

from typing import Mapping

from .expr import Binary, Call, Expr, Name, Power, Transpose as ExprTranspose, Unary
from .functions import FUNCTIONS
from .shapes import Shape, broadcast
from .expr import Num as ExprNum

# Precedence, as Python parses the text: + - < * / @ < unary minus < ** < atoms, calls and .T
ADD, MUL, UNARY, POW, ATOM = 1, 2, 3, 4, 5
COMPARE = 0  # comparisons bind loosest, as Python parses them
_PRECEDENCE = {"+": ADD, "-": ADD, "*": MUL, "/": MUL, "@": MUL, ">": COMPARE, ">=": COMPARE, "<": COMPARE,
               "<=": COMPARE, "==": COMPARE, "!=": COMPARE}
ASSOCIATIVE = {"+", "*", "@"}  # a op (b op c) may be printed a op b op c
PYTHON_ONLY = {"power"}  # numpy functions the expression language cannot write

# Nodes a printed expression may have. Inlining every step can grow exponentially with depth (16
# layers of f = z*z*z print ~10^15 nodes); the bundled specs print at most ~200. The symbolic
# budget, like the numeric ones: past it an expression is "no closed form", with a note.
MAX_SYMBOLIC = 10_000


class NoClosedForm(Exception):
    """Something the expression language cannot write."""


class Sym:
    """A symbolic matrix of a known shape."""

    shape: Shape
    precedence = ATOM
    # Nodes of the expression as printed (shared subexpressions count each time they print):
    # O(1) per node at construction, so the printed size is known before anything is printed.
    size = 1

    def text(self) -> str:
        """In the spec expression language."""
        return _print(self.printable(), _text_leaf)

    def python(self, names: Mapping[str, str] | None = None) -> str:
        """As numpy code; `names` renames variables."""
        names = names or {}
        return _print(self.printable(), lambda node: _python_leaf(node, names))

    def printable(self) -> "Sym":
        """This expression, if it prints within MAX_SYMBOLIC nodes: every printed form passes here."""
        if self.size > MAX_SYMBOLIC:
            raise NoClosedForm(f"its closed form would print {self.size:,} nodes; explain stops at "
                               f"{MAX_SYMBOLIC:,} (`explain --emit python` writes it step by step)")
        return self


class Num(Sym):
    def __init__(self, value: float):
        self.value, self.shape = float(value), (1, 1)
        self.precedence = UNARY if self.value < 0 else ATOM


class Var(Sym):
    def __init__(self, name: str, shape: Shape):
        self.name, self.shape = name, shape


class Ones(Sym):
    """A matrix of ones, written ones_like(like) in the language and np.ones(shape) in numpy."""

    def __init__(self, like: Sym):
        self.like, self.shape = like, like.shape
        self.size = like.size + 1


class Count(Sym):
    """How many columns (axis 1) or entries (None) `like` has: a number in the spec's text, read from the array
    in emitted numpy (so a function emitted for 8 examples stays right for 16)."""

    def __init__(self, like: Sym, axis: int | None):
        self.like, self.axis, self.shape = like, axis, (1, 1)
        self.value = like.shape[1] if axis == 1 else like.shape[0] * like.shape[1]


class Neg(Sym):
    precedence = UNARY

    def __init__(self, operand: Sym):
        self.operand, self.shape = operand, operand.shape
        self.size = operand.size + 1


class Transpose(Sym):
    def __init__(self, operand: Sym):
        self.operand, self.shape = operand, (operand.shape[1], operand.shape[0])
        self.size = operand.size + 1


class Bin(Sym):
    def __init__(self, op: str, left: Sym, right: Sym, shape: Shape):
        self.op, self.left, self.right, self.shape = op, left, right, shape
        self.precedence = _PRECEDENCE[op]
        self.size = left.size + right.size + 1


class Pow(Sym):
    precedence = POW

    def __init__(self, base: Sym, exponent: float):
        self.base, self.exponent, self.shape = base, float(exponent), base.shape
        self.size = base.size + 1


class Fn(Sym):
    def __init__(self, name: str, args: tuple[Sym, ...], axis: int | None, shape: Shape):
        self.name, self.args, self.axis, self.shape = name, args, axis, shape
        self.size = sum(a.size for a in args) + 1


# ----------------------------------------------------------------------------- builders


def num(value: float) -> Num:
    return Num(value)


def _as_sym(x) -> Sym:
    return x if isinstance(x, Sym) else Num(x)


def _is(x: Sym, value: float) -> bool:
    return isinstance(x, Num) and x.value == value


def _elementwise_shape(a: Sym, b: Sym, op: str) -> Shape:
    shape = broadcast(a.shape, b.shape)
    if shape is None:
        raise ValueError(f"shapes {a.shape} and {b.shape} do not broadcast in {op}")
    return shape


def add(a, b) -> Sym:
    a, b = _as_sym(a), _as_sym(b)
    shape = _elementwise_shape(a, b, "+")
    if _is(a, 0) and b.shape == shape:
        return b
    if _is(b, 0) and a.shape == shape:
        return a
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value + b.value)
    if isinstance(b, Neg):
        return sub(a, b.operand)
    if isinstance(b, Num) and b.value < 0:
        return sub(a, Num(-b.value))
    return Bin("+", a, b, shape)


def sub(a, b) -> Sym:
    a, b = _as_sym(a), _as_sym(b)
    shape = _elementwise_shape(a, b, "-")
    if _is(b, 0) and a.shape == shape:
        return a
    if _is(a, 0) and b.shape == shape:
        return neg(b)
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value - b.value)
    if isinstance(b, Neg):
        return add(a, b.operand)
    return Bin("-", a, b, shape)


def mul(a, b) -> Sym:
    a, b = _as_sym(a), _as_sym(b)
    shape = _elementwise_shape(a, b, "*")
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value * b.value)
    if isinstance(b, Num):
        a, b = b, a  # numbers first: 2 * z
    if _is(a, 1) and b.shape == shape:
        return b
    if _is(a, -1) and b.shape == shape:
        return neg(b)
    if isinstance(a, Ones) and b.shape == shape:
        return b
    for scaled, other in ((a, b), (b, a)):  # (ones / N) * X = X / N
        if (isinstance(scaled, Bin) and scaled.op == "/" and isinstance(scaled.left, Ones)
                and isinstance(scaled.right, Num) and other.shape == shape):
            return div(other, scaled.right)
    if isinstance(b, Ones) and a.shape == shape:
        return a
    if isinstance(a, Neg):
        return neg(mul(a.operand, b))
    if isinstance(b, Neg):
        return neg(mul(a, b.operand))
    return Bin("*", a, b, shape)


def div(a, b) -> Sym:
    a, b = _as_sym(a), _as_sym(b)
    shape = _elementwise_shape(a, b, "/")
    if _is(b, 1) and a.shape == shape:
        return a
    if isinstance(a, Num) and isinstance(b, Num) and b.value != 0:
        return Num(a.value / b.value)
    if isinstance(a, Neg):
        return neg(div(a.operand, b))
    return Bin("/", a, b, shape)


def matmul(a: Sym, b: Sym) -> Sym:
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"shapes {a.shape} @ {b.shape} do not multiply")
    if isinstance(a, Num) or isinstance(b, Num):  # a 1×1 number times a row or column: a scaling (0.5 @ x is no text)
        return mul(a, b)
    for eye, other in ((a, b), (b, a)):  # eye(n) @ X = X
        if isinstance(eye, Fn) and eye.name == "eye" and other.shape == (a.shape[0], b.shape[1]):
            return other
    if isinstance(a, Neg):
        return neg(matmul(a.operand, b))
    if isinstance(b, Neg):
        return neg(matmul(a, b.operand))
    return Bin("@", a, b, (a.shape[0], b.shape[1]))


def neg(x) -> Sym:
    x = _as_sym(x)
    if isinstance(x, Num):
        return Num(-x.value)
    if isinstance(x, Neg):
        return x.operand
    return Neg(x)


def t(x: Sym) -> Sym:
    """Transpose, pushed through products: (A @ B).T = B.T @ A.T."""
    if isinstance(x, Num):
        return x
    if isinstance(x, Transpose):
        return x.operand
    if isinstance(x, Neg):
        return neg(t(x.operand))
    if isinstance(x, Ones):
        return Ones(t(x.like))
    if isinstance(x, Bin) and x.op == "@":
        return matmul(t(x.right), t(x.left))
    return Transpose(x)


def power(x: Sym, exponent: float) -> Sym:
    if exponent == 1:
        return x
    if exponent == 0:
        return Ones(x)
    return Pow(x, exponent)


def fn(name: str, *args, axis: int | None = None) -> Sym:
    """A call of a function of the expression language (or a python-only one)."""
    args = tuple(_as_sym(a) for a in args)
    if name == "power":  # python-only: z ** c with c a name
        return Fn(name, args, axis, _elementwise_shape(args[0], args[1], name))
    row = FUNCTIONS[name]
    literals = [int(a.value) for a in args] if row.literal else []
    return Fn(name, args, axis, row.shape([a.shape for a in args], axis, literals))


def functions_in(node: Sym) -> set[str]:
    """Every function a symbol calls (for the helpers emitted code needs)."""
    own = {node.name} if isinstance(node, Fn) else set()
    kids = [getattr(node, a) for a in ("operand", "left", "right", "base", "like") if hasattr(node, a)]
    kids += list(getattr(node, "args", ()))
    return own.union(*(functions_in(k) for k in kids if isinstance(k, Sym)))


def compare(op: str, a, b) -> Sym:
    """a > b (and the others): a 0/1 matrix."""
    a, b = _as_sym(a), _as_sym(b)
    return Bin(op, a, b, _elementwise_shape(a, b, op))


def reduce_to(x: Sym, shape: Shape) -> Sym:
    """Sum x down to `shape` over broadcast axes (a bias (n, 1) used over m columns)."""
    if x.shape == shape:
        return x
    rows, cols = shape
    if rows == 1 and cols == 1:
        return fn("sum", x)
    if rows == 1:
        return fn("sum", x, axis=0)
    return fn("sum", x, axis=1)


def from_expr(node: Expr, env: dict[str, Sym]) -> Sym:
    """A parsed expression (expr.py's tree) as a symbol, names replaced from env."""
    if isinstance(node, ExprNum):
        return num(node.value)
    if isinstance(node, Name):
        return env[node.id]
    if isinstance(node, Unary):
        inner = from_expr(node.operand, env)
        return neg(inner) if node.negate else inner
    if isinstance(node, ExprTranspose):
        return t(from_expr(node.operand, env))
    if isinstance(node, Power):
        return power(from_expr(node.base, env), node.exponent)
    if isinstance(node, Binary):
        left, right = from_expr(node.left, env), from_expr(node.right, env)
        builders = {"+": add, "-": sub, "*": mul, "/": div, "@": matmul}
        if node.symbol in builders:
            return builders[node.symbol](left, right)
        return compare(node.symbol, left, right)
    if isinstance(node, Call):
        return fn(node.func, *(from_expr(a, env) for a in node.args), axis=node.axis)
    raise TypeError(f"unknown expression node {type(node).__name__}")


# ----------------------------------------------------------------------------- printing


def format_number(value: float) -> str:
    """Shortest text that reads back as the same float."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _print(node: Sym, leaf) -> str:
    out = leaf(node)
    if out is not None:
        return out
    if isinstance(node, Neg):
        return "-" + _wrap(node.operand, UNARY, leaf)
    if isinstance(node, Transpose):
        return _wrap(node.operand, ATOM, leaf) + ".T"
    if isinstance(node, Pow):
        return f"{_wrap(node.base, ATOM, leaf)} ** {format_number(node.exponent)}"
    if isinstance(node, Bin):
        level = _PRECEDENCE[node.op]
        left = _wrap(node.left, level + _mixed(node, node.left), leaf)
        associative = isinstance(node.right, Bin) and node.right.op == node.op and node.op in ASSOCIATIVE
        right = _wrap(node.right, level + (0 if associative else 1), leaf)
        return f"{left} {node.op} {right}"
    raise TypeError(f"cannot print {type(node).__name__}")


def _mixed(parent: Bin, child: Sym) -> int:
    """1 when a left operand mixes @ with * or / (same precedence, easily misread), else 0."""
    if isinstance(child, Bin) and _PRECEDENCE[child.op] == _PRECEDENCE[parent.op] == MUL:
        return int((child.op == "@") != (parent.op == "@"))
    return 0


def _wrap(node: Sym, at_least: int, leaf) -> str:
    text = _print(node, leaf)
    return text if node.precedence >= at_least else f"({text})"


def _text_leaf(node: Sym) -> str | None:
    if isinstance(node, Num):
        return format_number(node.value)
    if isinstance(node, Var):
        return node.name
    if isinstance(node, Ones):
        return f"ones_like({_print(node.like, _text_leaf)})"
    if isinstance(node, Count):
        return format_number(node.value)
    if isinstance(node, Fn):
        if node.name in PYTHON_ONLY:
            raise NoClosedForm(f"{node.name}() with a name as exponent has no form in the expression language")
        args = ", ".join(_print(a, _text_leaf) for a in node.args)
        return f"{node.name}({args}{'' if node.axis is None else f', axis={node.axis}'})"
    return None


def _python_leaf(node: Sym, names: Mapping[str, str]) -> str | None:
    if isinstance(node, Num):
        return format_number(node.value) if node.value == int(node.value) else repr(node.value)
    if isinstance(node, Var):
        return names.get(node.name, node.name)
    if isinstance(node, Ones):
        return f"np.ones_like({_print(node.like, lambda n: _python_leaf(n, names))})"
    if isinstance(node, Count):
        like = _wrap(node.like, ATOM, lambda n: _python_leaf(n, names))
        return f"{like}.shape[1]" if node.axis == 1 else f"{like}.size"
    if isinstance(node, Fn):
        args = ", ".join(_print(a, lambda n: _python_leaf(n, names)) for a in node.args)
        if node.name in ("sum", "mean"):
            axis = "" if node.axis is None else f"axis={node.axis}, "
            return f"np.{node.name}({args}, {axis}keepdims=True)"
        return f"{'np.power' if node.name == 'power' else FUNCTIONS[node.name].numpy}({args})"
    return None
