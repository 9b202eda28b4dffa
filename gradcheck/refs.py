"""How the loader reads a use of a name in a role (weight, bias, coef, argument, target, input): a name,
a number, or, where the role allows it, an expression (`coef: lam / 2`, `{scale: 1 / m}`, `weight: W + I`).

An expression is parsed with the `ast` whitelist like any other and never executed. Where it reads a param
(weight and bias only) gradients flow back through it (exprgrad.py), so it may use only the operations
that backward pass knows; elsewhere it may read data, defines of data and numbers.
"""

from __future__ import annotations

import re

from .errors import SpecError, excerpt
from .exprgrad import DIFFERENTIABLE, refusal
from .model import Ref
from .nodes import describe, number, place_of
from .shapes import Shape
from .suggest import did_you_mean
from .yamlsrc import Node

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\s*\.T)?\Z")  # a name, or a name written .T
_EXPRESSION = re.compile(r"[-+*/@()]")  # what marks text as an expression rather than a misspelt name

DATA = "data"  # an expression of data, defines of data and numbers
PARAMS = "params"  # and of params, differentiated through (weight, bias)


class RefReader:
    """The part of the loader that reads uses of names; it needs `shapes`, `kinds`, `on_params` and `expression`."""

    def ref(self, node: Node, role: str, allow_number: bool = False, allow_transpose: bool = False,
            computed: str | None = None, identity: int = 0) -> Ref:
        """A name (or `name.T`), a number, or where `computed` says so an expression (I: the identity of size `identity`)."""
        value = node.value
        if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool):
            return Ref(None, number(node, role), place=place_of(node))
        if isinstance(value, str) and allow_number:
            try:
                return Ref(None, number(node, role), place=place_of(node))
            except SpecError:
                pass
        if not isinstance(value, str):
            kinds = "a name or a number" if allow_number else "a name"
            raise node.error(f"{role} must be {kinds}{' or an expression' if computed else ''}, not {describe(value)}")
        text = value.strip()
        if computed and not _PLAIN.match(text):
            return self.computed_ref(node, role, computed, identity)
        if not _PLAIN.match(text) and text not in self.shapes and _EXPRESSION.search(text):
            raise node.error(f'{role} takes a name{" or a number" if allow_number else ""}, not an expression '
                             f'("{excerpt(text)}"): expressions stand in a dense weight or bias, a coef, an '
                             f'activation argument and a target; use a define of data here')
        transposed = allow_transpose and text.endswith(".T")
        name = text[:-2].strip() if transposed else text
        if name in self.broken:  # its own declaration failed and was reported there
            raise self.cascade()
        if name not in self.shapes:
            raise node.error(self.unknown(name, role))
        self.require_data_define(node, name, role)
        return Ref(name, transposed=transposed, place=place_of(node))

    def computed_ref(self, node: Node, role: str, computed: str, identity: int) -> Ref:
        """An expression in a role: its names declared, its defines of data, its params only where differentiable."""
        shapes = {**self.shapes, **({"I": (identity, identity)} if identity else {})}
        e = self.expression(node, set(shapes), role)
        for name in sorted(e.names & set(self.on_params)):
            raise e.error(self.define_on_param(name, role), name)
        params = {n for n in e.names if self.kinds.get(n) == "params"}
        if params and computed != PARAMS:
            first = min(params)
            raise e.error(f'{role}: an expression here may read data, defines of data and numbers; "{first}" is a '
                          f"param (only a weight or a bias passes gradients back through an expression)", first)
        bad = refusal(e.root, params) if params else None
        if bad is not None:
            raise e.at(bad, f"{role}: gradients flow back through an expression that reads a param only by "
                            f"{DIFFERENTIABLE} (functions and comparisons only on parts without a param); write "
                            f"the rest as layers")
        self.sized_shape(e, shapes, role)
        return Ref(None, place=place_of(node), expression=e, identity=identity if "I" in e.names else 0,
                   params=frozenset(params))

    def require_data_define(self, node: Node, name: str, role: str) -> None:
        """A layer may read a define only as data computed from data: one that reads a param is refused here."""
        if name in self.on_params:
            raise node.error(self.define_on_param(name, role))

    def define_on_param(self, name: str, role: str) -> str:
        return (f'{role}: define "{name}" depends on param {self.on_params[name]}; layers may use defines of data '
                f'only (a define is computed once, so no gradient flows through it): write the computation as '
                f'layers, or use the param itself')

    def unknown(self, name: str, role: str) -> str:
        declared = ", ".join(self.shapes) or "nothing"
        return f'{role}: undefined name "{excerpt(name)}"{did_you_mean(name, self.shapes)}; declared: {declared}'

    def ref_shape(self, ref: Ref) -> Shape:
        if ref.expression is not None:
            identity = {"I": (ref.identity, ref.identity)} if ref.identity else {}
            return ref.expression.shape({**self.shapes, **identity})
        if ref.name is None:
            return (1, 1)
        rows, cols = self.shapes[ref.name]
        return (cols, rows) if ref.transposed else (rows, cols)
