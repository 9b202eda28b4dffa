"""Safe matrix expressions: a whitelist over Python's `ast`, compiled to a small tree, never eval'd.

Every value is a 2-D matrix (a number is 1×1). Arrays may carry leading batch axes, so the same
expression evaluates one point or a stack of perturbed points; `.T` and reductions act on the
last two axes.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .errors import SpecError
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits, hint

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


# Function rows: name -> (numpy implementation, number of matrix arguments, shape rule name).
FUNCTIONS: dict[str, tuple[Callable, int, str]] = {
    "exp": (np.exp, 1, "same"),
    "log": (np.log, 1, "same"),
    "sqrt": (np.sqrt, 1, "same"),
    "tanh": (np.tanh, 1, "same"),
    "sigmoid": (sigmoid, 1, "same"),
    "abs": (np.abs, 1, "same"),
    "sign": (np.sign, 1, "same"),
    "softmax": (softmax_columns, 1, "same"),
    "ones_like": (lambda x: np.ones(np.shape(x)), 1, "same"),
    "zeros_like": (lambda x: np.zeros(np.shape(x)), 1, "same"),
    "maximum": (np.maximum, 2, "broadcast"),
    "minimum": (np.minimum, 2, "broadcast"),
    "sum": (_reduce(np.sum), 1, "reduce"),
    "mean": (_reduce(np.mean), 1, "reduce"),
}

_BINARY = {ast.Add: ("+", np.add), ast.Sub: ("-", np.subtract), ast.Mult: ("*", np.multiply),
           ast.Div: ("/", np.true_divide), ast.MatMult: ("@", np.matmul)}

# Friendly names for constructs people try, so the refusal says what it saw.
_FORBIDDEN = {
    ast.Lambda: "lambda", ast.ListComp: "comprehension", ast.SetComp: "comprehension",
    ast.DictComp: "comprehension", ast.GeneratorExp: "comprehension", ast.NamedExpr: "walrus (:=)",
    ast.Subscript: "subscript", ast.Starred: "starred argument", ast.IfExp: "conditional expression",
    ast.Compare: "comparison", ast.BoolOp: "boolean operator", ast.JoinedStr: "f-string",
    ast.List: "list", ast.Tuple: "tuple", ast.Dict: "dict", ast.Set: "set", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "slice", ast.FormattedValue: "f-string",
}


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

    def error(self, message: str, lineno: int = 1, offset: int = 0) -> SpecError:
        """A SpecError at the given (1-based line, 0-based column) inside the expression."""
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
        fn = FUNCTIONS[self.func][0]
        values = [a.evaluate(env) for a in self.args]
        return fn(*values, axis=self.axis) if FUNCTIONS[self.func][2] == "reduce" else fn(*values)

    def shape(self, shapes, where):
        rule = FUNCTIONS[self.func][2]
        arg_shapes = [a.shape(shapes, where) for a in self.args]
        if rule == "same":
            return arg_shapes[0]
        if rule == "broadcast":
            out = broadcast(*arg_shapes)
            if out is None:
                raise where.error(f"shapes {fmt_shape(arg_shapes[0])} and {fmt_shape(arg_shapes[1])} "
                                  f"do not broadcast in {self.func}()", self.lineno, self.offset)
            return out
        rows, cols = arg_shapes[0]
        return {None: (1, 1), 0: (1, cols), 1: (rows, 1)}[self.axis]

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


# Functions whose derivative jumps somewhere: no complex step through them.
NON_ANALYTIC = {"abs", "sign", "maximum", "minimum"}


def _first_name(node: Expr, name: str) -> Name | None:
    """The leftmost Name node reading `name`."""
    if isinstance(node, Name):
        return node if node.id == name else None
    for child in _children(node):
        found = _first_name(child, name)
        if found is not None:
            return found
    return None


def parse(text: object, where: Where, known: Mapping[str, object] | set[str], what: str = "expression",
          limits: Limits | None = None) -> Expression:
    """Parse `text` against the whitelist; every name must be in `known`."""
    limits = limits or DEFAULT_LIMITS
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        kind = "a list" if isinstance(text, list) else "a mapping" if isinstance(text, dict) else "empty" \
            if text is None else type(text).__name__
        raise where.error(f"{what} must be a string or a number, not {kind}")
    text = str(text)
    if len(text) > limits.expression_length:
        raise where.error(f"{what} is {len(text):,} characters long; the limit is {limits.expression_length:,} "
                          f"({hint('expression_length')})")
    offset = _too_deep(text, limits.expression_depth)
    if offset is not None:
        raise where.error(f"{what} nests brackets deeper than {limits.expression_depth} levels "
                          f"({hint('expression_depth')})", *_line_col(text, offset))
    if not text.strip():
        raise where.error(f"{what} is empty")
    if "\x00" in text:
        raise where.error(f"{what} contains a NUL character", *_line_col(text, text.index("\x00")))
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        line, col = exc.lineno or 1, max((exc.offset or 1) - 1, 0)
        if line == 1:
            col += len(text) - len(text.lstrip())
        raise where.error(f"invalid {what}: {exc.msg}", line, col) from None
    except (RecursionError, MemoryError, ValueError):
        raise where.error(f"{what} is too complex to parse") from None
    lead = len(text) - len(text.lstrip())
    compiler = _Compiler(text.strip(), where, set(known), lead, limits.expression_depth)
    return Expression(text, compiler.build(tree.body, 0), where)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    """(1-based line, 0-based column) of a character offset, as Where.error takes them."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1)


def _too_deep(text: str, limit: int) -> int | None:
    """The offset of the first bracket nested deeper than `limit`, checked before the parser sees the text."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
            if depth > limit:
                return i
        elif ch in ")]}":
            depth -= 1
    return None


class _Compiler:
    """Walks a Python AST, refusing everything off the whitelist, building Expr nodes."""

    def __init__(self, text: str, where: Where, known: set[str], lead: int, max_depth: int = MAX_DEPTH):
        self.lines = text.splitlines() or [""]
        self.where = where
        self.known = known
        self.lead = lead
        self.max_depth = max_depth

    def at(self, node: ast.AST) -> tuple[int, int]:
        """(line, character column) of an AST node; ast counts UTF-8 bytes, people count characters."""
        lineno = getattr(node, "lineno", 1)
        byte_col = getattr(node, "col_offset", 0)
        line = self.lines[lineno - 1] if lineno <= len(self.lines) else ""
        col = len(line.encode("utf-8")[:byte_col].decode("utf-8", "ignore"))
        return lineno, col + (self.lead if lineno == 1 else 0)

    def fail(self, node: ast.AST, message: str) -> SpecError:
        return self.where.error(message, *self.at(node))

    def build(self, node: ast.AST, depth: int) -> Expr:
        if depth > self.max_depth:
            raise self.fail(node, f"expression is nested deeper than {self.max_depth} levels "
                                  f"({hint('expression_depth')})")
        lineno, offset = self.at(node)
        loc = {"lineno": lineno, "offset": offset}
        if isinstance(node, ast.Constant):
            return Num(self.number(node), **loc)
        if isinstance(node, ast.Name):
            return Name(self.name(node), **loc)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return Unary(self.build(node.operand, depth + 1), isinstance(node.op, ast.USub), **loc)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return Power(self.build(node.left, depth + 1), self.exponent(node.right), **loc)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            symbol, fn = _BINARY[type(node.op)]
            return Binary(symbol, fn, self.build(node.left, depth + 1), self.build(node.right, depth + 1), **loc)
        if isinstance(node, ast.Attribute):
            if node.attr != "T":
                raise self.fail(node, f'attribute ".{node.attr}" is not allowed; the only attribute is ".T"')
            return Transpose(self.build(node.value, depth + 1), **loc)
        if isinstance(node, ast.Call):
            return self.call(node, depth, loc)
        what = _FORBIDDEN.get(type(node)) or type(node).__name__
        if isinstance(node, ast.BinOp):
            what = f"operator {type(node.op).__name__}"
        elif isinstance(node, ast.UnaryOp):
            what = f"operator {type(node.op).__name__}"
        raise self.fail(node, f"{what} is not allowed in expressions (allowed: numbers, names, "
                              f"+ - * / @ **, .T and the functions {', '.join(sorted(FUNCTIONS))})")

    def number(self, node: ast.Constant) -> float:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "string" if isinstance(value, (str, bytes)) else type(value).__name__
            raise self.fail(node, f"{kind} constants are not allowed in expressions")
        if isinstance(value, int) and abs(value) > 10**308:
            raise self.fail(node, "number is too large")
        value = float(value)
        if not np.isfinite(value):
            raise self.fail(node, "number is not finite")
        return value

    def name(self, node: ast.Name) -> str:
        if node.id not in self.known:
            hint = difflib.get_close_matches(node.id, sorted(self.known), n=1)
            extra = f' (did you mean "{hint[0]}"?)' if hint else ""
            if node.id in FUNCTIONS:
                extra = f" ({node.id} is a function: call it as {node.id}(...))"
            raise self.fail(node, f'undefined name "{node.id}"{extra}')
        return node.id

    def exponent(self, node: ast.AST) -> float:
        sign = 1.0
        while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            sign = -sign if isinstance(node.op, ast.USub) else sign
            node = node.operand
        if not isinstance(node, ast.Constant):
            raise self.fail(node, "the exponent of ** must be a number")
        value = sign * self.number(node)
        if abs(value) > MAX_EXPONENT:
            raise self.fail(node, f"exponent {value:g} is out of range (|p| <= {MAX_EXPONENT:g})")
        return value

    def call(self, node: ast.Call, depth: int, loc: dict) -> Call:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, "only the listed functions may be called, by name")
        func = node.func.id
        if func not in FUNCTIONS:
            hint = difflib.get_close_matches(func, sorted(FUNCTIONS), n=1)
            extra = f' (did you mean "{hint[0]}"?)' if hint else ""
            raise self.fail(node.func, f'no such function: "{func}"{extra}; '
                                       f"available: {', '.join(sorted(FUNCTIONS))}")
        _, arity, rule = FUNCTIONS[func]
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, "starred arguments are not allowed")
        if len(node.args) != arity:
            raise self.fail(node, f"{func}() takes {arity} argument{'s' * (arity > 1)}, got {len(node.args)}")
        axis = None
        for kw in node.keywords:
            if rule != "reduce" or kw.arg != "axis":
                raise self.fail(node, f"{func}() takes no keyword '{kw.arg}'" if kw.arg else "** arguments are not allowed")
            if not (isinstance(kw.value, ast.Constant) and kw.value.value in (0, 1)
                    and not isinstance(kw.value.value, bool)):
                raise self.fail(kw.value, "axis must be 0 (down the rows) or 1 (along the columns)")
            axis = int(kw.value.value)
        args = [self.build(a, depth + 1) for a in node.args]
        return Call(func, args, axis, **loc)
