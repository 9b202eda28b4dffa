"""The backward pass through an expression used as a weight or bias (`weight: W + I`, `bias: 2 * b`).

Reverse mode over expr.py's tree, once for numbers (backprop) and once for symbols (`explain`): the same
walk, given the operations of each. Only the parts that read a param are walked; they may use
+ - * / @, unary minus, .T and ** with a number (`DIFFERENTIABLE`): the loader refuses anything else there
with a located error, and calls of functions are allowed only on parts that read no param.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import symbolic as s
from .expr import Binary, Call, Expr, Name, Num, Power, Transpose, Unary, _children

DIFFERENTIABLE = "+ - * / @, unary minus, .T and ** with a number"


def refusal(node: Expr, params: set[str]) -> Expr | None:
    """The first node reading a param that the backward pass cannot go through, or None."""
    if not (node.names() & params):
        return None
    if isinstance(node, Call) or (isinstance(node, Binary) and node.symbol not in ("+", "-", "*", "/", "@")):
        return node
    for child in _children(node):
        found = refusal(child, params)
        if found is not None:
            return found
    return None



def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum g down to `shape`, undoing numpy broadcasting (a bias (n, 1) used over m columns)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g

class NumberOps:
    """The walk on arrays at the point backprop is at."""

    def __init__(self, env: dict):
        self.env = env

    def value(self, node: Expr):
        return np.asarray(node.evaluate(self.env), dtype=float) if not isinstance(node, Num) else node.value

    def shape(self, node: Expr):
        return np.shape(self.value(node)) if not isinstance(node, Num) else (1, 1)

    neg = staticmethod(np.negative)
    mul = staticmethod(np.multiply)
    div = staticmethod(np.divide)
    matmul = staticmethod(np.matmul)

    @staticmethod
    def t(x):
        return np.swapaxes(x, -1, -2)

    @staticmethod
    def power(x, p):
        return np.power(x, p)

    @staticmethod
    def reduce(g, shape):
        """Sum g down to `shape` over the axes broadcasting made (a (n, 1) column used over m columns)."""
        return unbroadcast(np.asarray(g), shape)


class SymbolOps:
    """The walk on symbols, for `explain`: each name a Var of its shape."""

    def __init__(self, env: dict):
        self.env = env

    def value(self, node: Expr):
        return s.from_expr(node, self.env)

    def shape(self, node: Expr):
        return self.value(node).shape

    neg = staticmethod(s.neg)
    mul = staticmethod(s.mul)
    div = staticmethod(s.div)
    matmul = staticmethod(s.matmul)
    t = staticmethod(s.t)

    @staticmethod
    def power(x, p):
        return s.power(x, p)

    @staticmethod
    def reduce(g, shape):
        return s.reduce_to(g, tuple(shape))


def backward(root: Expr, g, params: set[str], ops, add: Callable) -> None:
    """Hand each param the signal that reaches it: add(name, contribution shaped like that name)."""
    if not (root.names() & params):
        return
    if isinstance(root, Name):
        add(root.id, ops.reduce(g, ops.shape(root)))
    elif isinstance(root, Unary):
        backward(root.operand, ops.neg(g) if root.negate else g, params, ops, add)
    elif isinstance(root, Transpose):
        backward(root.operand, ops.t(g), params, ops, add)
    elif isinstance(root, Power):
        base = ops.value(root.base)
        backward(root.base, ops.mul(g, ops.mul(root.exponent, ops.power(base, root.exponent - 1))), params, ops, add)
    elif isinstance(root, Binary):
        _binary(root, g, params, ops, add)
    else:  # the loader refuses anything else that reads a param (refusal above)
        raise TypeError(f"no backward pass through {type(root).__name__}")


def _binary(node: Binary, g, params, ops, add) -> None:
    left, right = node.left, node.right
    if node.symbol == "@":
        backward(left, ops.matmul(g, ops.t(ops.value(right))), params, ops, add)
        backward(right, ops.matmul(ops.t(ops.value(left)), g), params, ops, add)
        return
    to_left, to_right = {
        "+": lambda: (g, g),
        "-": lambda: (g, ops.neg(g)),
        "*": lambda: (ops.mul(g, ops.value(right)), ops.mul(g, ops.value(left))),
        "/": lambda: (ops.div(g, ops.value(right)),
                      ops.neg(ops.div(ops.mul(g, ops.value(left)), ops.power(ops.value(right), 2)))),
    }[node.symbol]()
    for child, signal in ((left, to_left), (right, to_right)):
        if child.names() & params:
            backward(child, ops.reduce(signal, ops.shape(child)), params, ops, add)
