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


def paired(flat: np.ndarray) -> int | None:
    """k when a batch is the same k entries twice (a central stencil's +h and −h halves), else None."""
    k = len(flat) // 2
    if k == 0 or len(flat) != 2 * k or not (flat[:k] == flat[k:]).all():
        return None
    return k


def moved_product(z: np.ndarray, r: np.ndarray, a: np.ndarray, c: np.ndarray, delta: np.ndarray, half) -> np.ndarray:
    """z[r] + δ·a[c] per perturbation (B, m), in one array; with `half` (paired halves) each row gathered once."""
    out = np.empty((len(delta), a.shape[1]), np.result_type(delta, a, z))
    if half is None:
        np.multiply(delta[:, None], np.take(a, c, axis=0), out=out)
        out += np.take(z, r, axis=0)
        return out
    pair = out.reshape(2, half, -1)
    np.multiply(delta.reshape(2, half, 1), np.take(a, c[:half], axis=0), out=pair)
    pair += np.take(z, r[:half], axis=0)
    return out


def row_change(patch: RowPatch, half, spare: bool = False) -> np.ndarray:
    """A one-row patch's change, vals − base[rows] (each row gathered once for paired halves); `spare`: written
    over vals, which nothing reads after."""
    vals, base = patch.vals, patch.base
    if half is None or vals.shape != (2 * half, base.shape[1]):
        return vals - np.take(base, patch.rows, axis=0)
    out = vals if spare else np.empty(vals.shape, np.result_type(vals, base))
    np.subtract(vals.reshape(2, half, -1), np.take(base, patch.rows[:half], axis=0), out=out.reshape(2, half, -1))
    return out


def uses(layer: Layer, name: str) -> list[Ref]:
    return [r for r in layer_refs(layer) if r.name == name or name in r.params]


def term_uses(term: Term, name: str) -> bool:
    """Whether the term reads `name` (Term.names is worked out once per term)."""
    return name in term.names


def computed(refs: list[Ref]) -> bool:
    """Whether a use of p is an expression (W + I): moving an entry of p moves it through the expression, no row patch."""
    return any(r.expression is not None for r in refs)
