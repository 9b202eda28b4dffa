"""Parsing an expression: a whitelist over Python's `ast`, compiled to expr.py's tree, never eval'd.

Every refusal is a SpecError at the line and column of the construct refused.
"""

from __future__ import annotations

import ast
import warnings
from typing import Mapping

import numpy as np

from .errors import SpecError, place_in
from .functions import FUNCTIONS
from .expr import (MAX_DEPTH, MAX_EXPONENT, Binary, Call, Expr, Expression, Name, Num, Power,
                   Transpose, Unary, Where)
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits, hint
from .suggest import did_you_mean

MAX_EYE = 100_000  # eye(n): the per-matrix element limit refuses far smaller n anyway, at its own place


def _indicator(compare):
    """A comparison as a 0/1 float matrix (so (Z > 0) * dA multiplies like any matrix)."""
    return lambda a, b: compare(np.real(a), np.real(b)).astype(float)


_COMPARE = {ast.Gt: (">", _indicator(np.greater)), ast.GtE: (">=", _indicator(np.greater_equal)),
            ast.Lt: ("<", _indicator(np.less)), ast.LtE: ("<=", _indicator(np.less_equal)),
            ast.Eq: ("==", _indicator(np.equal)), ast.NotEq: ("!=", _indicator(np.not_equal))}
_BINARY = {ast.Add: ("+", np.add), ast.Sub: ("-", np.subtract), ast.Mult: ("*", np.multiply),
           ast.Div: ("/", np.true_divide), ast.MatMult: ("@", np.matmul)}

# Friendly names for constructs people try, so the refusal says what it saw.
_FORBIDDEN = {
    ast.Lambda: "lambda", ast.ListComp: "comprehension", ast.SetComp: "comprehension",
    ast.DictComp: "comprehension", ast.GeneratorExp: "comprehension", ast.NamedExpr: "walrus (:=)",
    ast.Subscript: "subscript", ast.Starred: "starred argument", ast.IfExp: "conditional expression",
ast.BoolOp: "boolean operator", ast.JoinedStr: "f-string",
    ast.List: "list", ast.Tuple: "tuple", ast.Dict: "dict", ast.Set: "set", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.Slice: "slice", ast.FormattedValue: "f-string",
}


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
        with warnings.catch_warnings():  # "invalid decimal literal" and the like: only our own messages reach the user
            warnings.simplefilter("ignore")
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
    line, col = place_in(text, offset)
    return line, col - 1


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
        if isinstance(node, ast.Compare):
            return self.compare(node, depth, loc)
        what = _FORBIDDEN.get(type(node)) or type(node).__name__
        if isinstance(node, ast.BinOp):
            what = f"operator {type(node.op).__name__}"
        elif isinstance(node, ast.UnaryOp):
            what = f"operator {type(node.op).__name__}"
        raise self.fail(node, f"{what} is not allowed in expressions (allowed: numbers, names, "
                              f"+ - * / @ **, comparisons, .T and the functions {', '.join(sorted(FUNCTIONS))})")

    def whole_number(self, node: ast.AST, func: str, low: int = 1) -> None:
        """eye(n): n must be written as a whole number from 1 to MAX_EYE, not computed."""
        value = node.value if isinstance(node, ast.Constant) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) \
                or not low <= value <= MAX_EYE:
            if func == "eye":
                raise self.fail(node, f"{func}(n) takes a whole number n from 1 to {MAX_EYE:,}, written out")
            raise self.fail(node, f"{func}() takes whole numbers from {low} to {MAX_EYE:,}, written out")

    def compare(self, node: ast.Compare, depth: int, loc: dict) -> Expr:
        """a > b and the like: a 0/1 matrix. One comparison at a time (a < b < c reads two ways)."""
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            raise self.fail(node, "one comparison at a time (>, >=, <, <=, ==, !=); a < b < c is not allowed")
        symbol, fn = _COMPARE[type(node.ops[0])]
        return Binary(symbol, fn, self.build(node.left, depth + 1), self.build(node.comparators[0], depth + 1), **loc)

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
            extra = did_you_mean(node.id, sorted(self.known))
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
            raise self.fail(node.func, f'no such function: "{func}"{did_you_mean(func, sorted(FUNCTIONS))}; '
                                       f"available: {', '.join(sorted(FUNCTIONS))}")
        row = FUNCTIONS[func]
        arity = row.arity
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, "starred arguments are not allowed")
        if len(node.args) != arity:
            raise self.fail(node, f"{func}() takes {arity} argument{'s' * (arity > 1)}, got {len(node.args)}")
        if row.literal:
            for i, arg in enumerate(node.args):  # the first is a size (from 1), any other a row number
                self.whole_number(arg, func, 1 if i == 0 else 0)
        axis = None
        for kw in node.keywords:
            if not row.takes_axis or kw.arg != "axis":
                raise self.fail(node, f"{func}() takes no keyword '{kw.arg}'" if kw.arg else "** arguments are not allowed")
            if not (isinstance(kw.value, ast.Constant) and kw.value.value in (0, 1)
                    and not isinstance(kw.value.value, bool)):
                raise self.fail(kw.value, "axis must be 0 (down the rows) or 1 (along the columns)")
            axis = int(kw.value.value)
        args = [self.build(a, depth + 1) for a in node.args]
        return Call(func, args, axis, **loc)
