"""What one perturbation touches: the rows it moves (a row patch), and which layers and terms read a param."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import Layer, Ref, Term, layer_refs


@dataclass
class RowPatch:
    """B variants of `base` (n, m): variant b has row rows[b] replaced by vals[b] (or rows rows[b, :], a kind's
    patch such as one conv filter's output rows, by vals[b, :, :])."""

    base: np.ndarray
    rows: np.ndarray
    vals: np.ndarray

    def dense(self) -> np.ndarray:
        out = np.repeat(self.base[None].astype(self.vals.dtype), len(self.rows), axis=0)
        out[np.arange(len(self.rows)).reshape((-1,) + (1,) * (self.rows.ndim - 1)), self.rows] = self.vals
        return out


def uses(layer: Layer, name: str) -> list[Ref]:
    return [r for r in layer_refs(layer) if r.name == name or name in r.params]


def term_uses(term: Term, name: str) -> bool:
    """Whether the term reads `name` (Term.names is worked out once per term)."""
    return name in term.names


def computed(refs: list[Ref]) -> bool:
    """Whether a use of p is an expression (W + I): moving an entry of p moves it through the expression, no row patch."""
    return any(r.expression is not None for r in refs)
