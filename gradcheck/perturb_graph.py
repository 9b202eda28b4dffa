"""The perturber's walk over a term that is not a chain (named inputs, merges, `output`): only the layers
downstream of the moved entry are re-evaluated, in spec order, each from its inputs' perturbed values.

A layer that reads one input as is goes through the chain's own steps (perturb._TermRun.first_use and
propagate), so a param's first use as a weight keeps its exact row patch, and a changed row goes on as a
row through weight-less layers and as a rank-1 change through a weight. A merge reads its inputs densely
(batched over the perturbations) and its layer runs batched; layers the move never reaches are never run.
"""

from __future__ import annotations

import numpy as np

from .merges import MERGES
from .rowpatch import RowPatch, uses


def run_graph(run):
    """(ΔJ, crossed, size) of one term for `run` (a perturb._TermRun), walking the term's DAG."""
    term, name = run.term, run.o.name
    out_pos = term.output % len(term.layers)
    states: dict = {}  # layer key -> its perturbed a (a RowPatch or a batch); absent: the base pass's
    z_out = None
    for index, layer in enumerate(term.layers):
        refs = uses(layer, name)
        moved = [r for r in layer.inputs if r.name in states or r.name == name]
        if not refs and not moved:
            continue
        run.z_last = None
        if layer.merge is None:
            state = _single(run, layer.inputs[0], states)
            out = run.first_use(index, layer, refs) if state is None else run.propagate(index, layer, state, refs)
        else:
            base = run.trace.layers[index].inputs
            xs = [_dense(run, ref, states, base[k]) for k, ref in enumerate(layer.inputs)]
            out = run.dense_layer(index, layer, MERGES[layer.merge].forward(xs, layer.merge_options))
        states[layer.key] = out
        if index == out_pos:
            z_out = run.z_last
    run.z_last = z_out
    dJ, size = run.objective(states.get(term.layers[out_pos].key))
    return dJ, run.crossed, size


def _single(run, ref, states):
    """A one-input layer's perturbed input: a row patch where one lasts, a batch, or None (unchanged)."""
    if ref.name in states:
        state = states[ref.name]
        if not ref.transposed:
            return state
        dense = state.dense() if isinstance(state, RowPatch) else state
        return np.swapaxes(dense, -1, -2)
    if ref.name == run.o.name:
        return run.input_patch(ref) if run.shortcuts else ref.value(run.batched_values())
    return None


def _dense(run, ref, states, base):
    """A merge's input over the batch: perturbed if it moved, else the base pass's value (broadcast by the merge)."""
    if ref.name in states:
        state = states[ref.name]
        dense = state.dense() if isinstance(state, RowPatch) else state
        return np.swapaxes(dense, -1, -2) if ref.transposed else dense
    if ref.name == run.o.name:
        return ref.value(run.batched_values())
    return base
