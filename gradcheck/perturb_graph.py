"""The perturber's walk over a term that is not a chain (named inputs, merges, `output`): only the layers
downstream of the moved entry are re-evaluated, in spec order, each from its inputs' perturbed values.

A layer that reads one input as is goes through the chain's own steps (perturb._TermRun.first_use and
propagate), so a param's first use as a weight keeps its exact row patch, and a changed row goes on as a
row through weight-less layers. Merges keep what they can: add, mul, slice and concat carry row patches
(the union of the moved rows); a row that meets a weight is a rank-1 change (LowRank), which an identity
activation and an `add` keep (a residual block's skip). Elsewhere a merge reads its inputs densely (batched
over the perturbations) and its layer runs batched; layers the move never reaches are never run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kinds import KINDS
from .merges import MERGES
from .rowpatch import RowPatch, uses


@dataclass
class LowRank:
    """B variants of `base` (n, m): variant b is base + u[b] ⊗ v[b] (a moved row that met a weight), kept in this
    form through an identity activation and an `add`, made dense only where a layer needs every entry."""

    base: np.ndarray
    u: np.ndarray  # (B, n)
    v: np.ndarray  # (B, m)

    def dense(self) -> np.ndarray:
        z = np.einsum("bn,bm->bnm", self.u, self.v)  # an outer product per perturbation, then one in-place add
        z += self.base
        return z


def run_graph(run):
    """(ΔJ, crossed, size) of one term for `run` (a perturb._TermRun), walking the term's DAG."""
    term, name = run.term, run.o.name
    out_pos = term.output % len(term.layers)
    states: dict = {}  # layer key -> its perturbed a (a RowPatch, a LowRank or a batch); absent: the base pass's
    z_out = None
    for index, layer in enumerate(term.layers):
        refs = uses(layer, name)
        moved = [r for r in layer.inputs if r.name in states or r.name == name]
        if not refs and not moved:
            continue
        run.z_last = None
        if layer.merge is None:
            out = _one_input(run, index, layer, _single(run, layer.inputs[0], states), refs, index == out_pos)
        else:
            out = _merged(run, index, layer, states, refs)
        states[layer.key] = out
        if index == out_pos:
            z_out = run.z_last
    run.z_last = z_out
    final = states.get(term.layers[out_pos].key)
    dJ, size = run.objective(final.dense() if isinstance(final, LowRank) else final)
    return dJ, run.crossed, size


def _one_input(run, index: int, layer, state, refs, is_output: bool):
    """A layer that reads one input as is: the chain's own steps, or a rank-1 change where a row meets a weight."""
    if state is None:
        return run.first_use(index, layer, refs)
    if isinstance(state, LowRank):
        return _rank_one_step(run, index, layer, state, refs, is_output)
    if _rank_one(layer, state, refs):  # z changes by W[:, i] ⊗ Δrow
        W = layer.weight.value(run.o.values)
        change = LowRank(run.trace.layers[index].z, W[:, state.rows].T, state.vals - state.base[state.rows])
        return _activate_rank_one(run, index, layer, change, is_output)
    return run.propagate(index, layer, state, refs)


def _rank_one_step(run, index: int, layer, low: "LowRank", refs, is_output: bool):
    """A rank-1 change of a layer's (merged) input: z = W a + b changes by (W u) ⊗ v, still rank 1."""
    if refs or not KINDS[layer.kind].row_patch:
        return run.propagate(index, layer, low.dense(), refs)
    u = low.u if layer.weight is None else low.u @ np.swapaxes(layer.weight.value(run.o.values), -1, -2)
    return _activate_rank_one(run, index, layer, LowRank(run.trace.layers[index].z, u, low.v), is_output)


def _activate_rank_one(run, index: int, layer, z: "LowRank", is_output: bool):
    """a = f(z): an identity keeps the change rank 1 (unless the objective reads it); any other f needs all of z."""
    if layer.activation.row.name == "identity" and layer.activation.argument is None and not is_output:
        return z
    return run.activate_dense(index, layer, z.dense())


def _merged(run, index: int, layer, states: dict, refs):
    """A merge layer: its input as a row patch or a rank-1 change where the merge keeps one, else dense."""
    base = run.trace.layers[index].inputs
    is_output = index == run.term.output % len(run.term.layers)
    if run.shortcuts:
        patch = _carried_rows(run, layer, base, states)
        if patch is not None:  # the merge moved a few rows per perturbation: on as rows, as in a chain
            return run.propagate(index, layer, patch, refs)
        low = _carried_rank_one(run, layer, states)
        if low is not None:
            return _rank_one_step(run, index, layer, low, refs, is_output)
    xs = [_dense(run, ref, states, base[k]) for k, ref in enumerate(layer.inputs)]
    return run.dense_layer(index, layer, MERGES[layer.merge].forward(xs, layer.merge_options))


def _carried_rank_one(run, layer, states: dict):
    """An `add` whose one moved input is a rank-1 change of the same shape: the sum is the same change of the
    merged base."""
    moved = [ref for ref in layer.inputs if ref.name in states or ref.name == run.o.name]
    if layer.merge != "add" or len(moved) != 1 or moved[0].transposed:
        return None
    state = states.get(moved[0].name)
    merged = run.trace.layers[layer.index - 1].a_in
    if not isinstance(state, LowRank) or state.base.shape != merged.shape:
        return None
    return LowRank(merged, state.u, state.v)


def _carried_rows(run, layer, base: list, states: dict):
    """The merged input as a row patch when the merge keeps each perturbation's change in a few rows: add and mul
    (the union of the moved inputs' rows, the others as in the base pass), a slice (a row outside it stays as it
    was), concat (the rows shifted to their place). None where it would not (broadcast rows, a transposed or
    moved-as-a-whole input)."""
    patches = [None if ref.transposed else states.get(ref.name) for ref in layer.inputs]
    moved = [k for k, ref in enumerate(layer.inputs) if ref.name in states or ref.name == run.o.name]
    if not moved or any(not isinstance(patches[k], RowPatch) for k in moved):
        return None
    merged = run.trace.layers[layer.index - 1].a_in
    if layer.merge == "slice":
        start, stop = layer.merge_options
        rows, vals = patches[0].rows, patches[0].vals
        inside = (rows >= start) & (rows < stop)
        out_rows = _distinct(np.where(inside, rows - start, -1), merged.shape[0])  # outside: a row as it was
        if out_rows is None:
            return None
        return RowPatch(merged, out_rows, np.where(inside[..., None], vals, merged[out_rows]))
    if layer.merge == "concat" and len(moved) == 1:
        offset = sum(np.shape(base[k])[-2] for k in range(moved[0]))
        return RowPatch(merged, patches[moved[0]].rows + offset, patches[moved[0]].vals)
    if layer.merge not in ("add", "mul") or any(np.ndim(x) != 2 or np.shape(x)[0] != merged.shape[0] for x in base):
        return None
    B = len(patches[moved[0]].rows)
    rows = np.concatenate([patches[k].rows.reshape(B, -1) for k in moved], axis=1)  # (B, P): every moved row
    for q in range(1, rows.shape[1]):  # a row moved by two inputs is listed once (ΔJ sums over listed rows)
        rows[(rows[:, q:q + 1] == rows[:, :q]).any(axis=1), q] = -1
    rows = _distinct(rows, merged.shape[0])
    if rows is None:
        return None
    pieces = [_at_rows(base[k], patches[k] if k in moved else None, rows) for k in range(len(base))]
    vals = MERGES[layer.merge].forward(pieces, layer.merge_options)
    return RowPatch(merged, rows[:, 0], vals[:, 0]) if rows.shape[1] == 1 else RowPatch(merged, rows, vals)


def _distinct(rows, n: int):
    """rows with each −1 replaced by a row of its perturbation not listed yet (that row is as it was: its values
    are the base pass's), so every perturbation lists distinct rows; None if there are not enough rows."""
    if rows.ndim == 1 or not (rows < 0).any():
        return np.where(rows < 0, 0, rows) if rows.ndim == 1 else rows
    if rows.shape[1] >= n:
        return None
    rows = rows.copy()
    for q in range(rows.shape[1]):
        empty = rows[:, q] < 0
        if empty.any():
            taken = (rows[:, :, None] == np.arange(rows.shape[1] + 1)).any(axis=1)  # (B, P + 1)
            rows[empty, q] = np.argmin(taken, axis=1)[empty]
    return rows


def _at_rows(x, patch, rows):
    """Input x at rows (B, P) of each perturbation: the patch's values where it moved that row, else x's."""
    out = x[rows]  # (B, P, m)
    if patch is None:
        return out
    own = patch.rows.reshape(len(rows), -1)
    vals = patch.vals.reshape(own.shape + patch.vals.shape[-1:])
    match = rows[:, :, None] == own[:, None, :]  # (B, P, P_k)
    chosen = np.take_along_axis(vals, match.argmax(axis=-1)[..., None], axis=1)
    return np.where(match.any(axis=-1)[..., None], chosen, out)


def _rank_one(layer, state, refs) -> bool:
    """A moved row meets a dense layer's weight (and nothing else of p): z changes by a rank-1 term."""
    return isinstance(state, RowPatch) and state.rows.ndim == 1 and not refs and layer.weight is not None and \
        KINDS[layer.kind].row_patch


def _single(run, ref, states):
    """A one-input layer's perturbed input: a row patch where one lasts, a batch, or None (unchanged)."""
    if ref.name in states:
        state = states[ref.name]
        if not ref.transposed:
            return state
        dense = state.dense() if isinstance(state, (RowPatch, LowRank)) else state
        return np.swapaxes(dense, -1, -2)
    if ref.name == run.o.name:
        return run.input_patch(ref) if run.shortcuts else ref.value(run.batched_values())
    return None


def _dense(run, ref, states, base):
    """A merge's input over the batch: perturbed if it moved, else the base pass's value (broadcast by the merge)."""
    if ref.name in states:
        state = states[ref.name]
        dense = state.dense() if isinstance(state, (RowPatch, LowRank)) else state
        return np.swapaxes(dense, -1, -2) if ref.transposed else dense
    if ref.name == run.o.name:
        return ref.value(run.batched_values())
    return base
