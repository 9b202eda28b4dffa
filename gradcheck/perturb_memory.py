"""Memory one perturbation holds, in the representation the perturber will really use (rows while a patch
lasts, a kind's patch, the layer's work and one stacked param where it goes dense): what sizes batches and
what budget.py's estimate counts, so the two never disagree."""

from __future__ import annotations

import numpy as np

from . import network
from .kinds import KINDS
from .model import Layer, Model, Ref, Term
from .rowpatch import computed, term_uses, uses


BYTES = 8  # float64
TEMPORARIES = 6  # arrays of one perturbation's largest size alive at once (the loss's new, old, change, size…)


def per_sample_bytes(model: Model, name: str, shapes: dict) -> int:
    """Bytes one perturbation of `name` holds at its largest, from shapes alone (budget.py sizes the check by it)."""
    numbers = max((_term_numbers(term, name, shapes) for term in model.terms if term_uses(term, name)), default=1)
    if name in model.symmetric_params:  # a mirrored move is a dense copy of p through every layer (symmetric.Moves)
        numbers = max(numbers, int(np.prod(shapes[name])) + TEMPORARIES * network.footprint(model))
    return BYTES * numbers


def _term_numbers(term: Term, name: str, shapes: dict) -> int:
    """Numbers one perturbation holds along a term, walked as _TermRun.run walks it: temporaries of a row while a
    patch lasts (the shortcut), else of the layer's whole work, plus one stacked param where a dense layer reads it."""
    size = int(np.prod(shapes[name]))
    started = rows = term.input.name == name
    peak, stacked, width = 1, 0, 1  # width: rows a patch changes
    transposed = term.input.transposed  # the patched row is p's column index (else its row index)
    if started:
        peak = TEMPORARIES * _ref_shape(term.input, shapes)[1]
    for index, layer in enumerate(term.layers):
        refs = uses(layer, name)
        if not started and not refs:
            continue
        m = layer.out_shape[1]
        if started and rows:  # a row goes on through a weight-less layer, whose bias or argument may move that row
            rows = KINDS[layer.kind].row_patch and layer.weight is None and \
                all(_same_row(layer, r, shapes, transposed) for r in refs)
        elif not started and KINDS[layer.kind].patch is not None and len(refs) == 1:  # the kind's own rows
            rows, width = True, layer.out_shape[0] // getattr(layer.options, "filters", 1)
        elif not started:
            rows = KINDS[layer.kind].row_patch and len(refs) == 1 and _row_local(layer, refs[0], shapes)
            transposed = rows and refs[0].transposed
        patched = rows  # z is a row patch here; only a column-wise activation may still make a dense
        rows = rows and _rows_survive(term, index, layer)
        started = True
        if rows:
            peak = max(peak, TEMPORARIES * 2 * width * m)  # the changed rows and their activation
            continue
        # p read again as a dense layer's weight or bias is carried as its own rank-1 term (second_use_z); any
        # other use stacks copies of p, and once made the stack lives as long as the batch
        carried = not computed(refs) and (KINDS[layer.kind].moved is not None or
                                                                       KINDS[layer.kind].row_patch and
                                                                       all(r is layer.weight or r is layer.bias
                                                                           for r in refs))
        stacked = size if (refs and not patched and not carried) or stacked else 0
        peak = max(peak, TEMPORARIES * KINDS[layer.kind].footprint(layer) + stacked)
    return peak


def _row_local(layer: Layer, ref: Ref, shapes: dict) -> bool:
    """Moving one entry of `ref` at its first use moves one row of z (see _TermRun.first_use)."""
    if ref.expression is not None:  # an expression use goes dense (rowpatch.computed)
        return False
    if ref is layer.weight:
        return True
    return (ref is layer.bias or ref is layer.activation.argument) and _ref_shape(ref, shapes)[0] == layer.out_shape[0]


def _same_row(layer: Layer, ref: Ref, shapes: dict, transposed: bool) -> bool:
    """A later use of p moves the row already patched (as _TermRun.same_rows finds at run time)."""
    return (ref is layer.bias or ref is layer.activation.argument) and ref.transposed == transposed and \
        _ref_shape(ref, shapes) == tuple(layer.out_shape)


def _rows_survive(term: Term, index: int, layer: Layer) -> bool:
    """A row patch outlives this layer's activation: elementwise, or a column-wise one the fused loss updates."""
    row = layer.activation.row
    if row.elementwise:
        return not (row.takes_argument and layer.activation.argument is None)  # a custom f reads its env: dense
    fused = network.fused_loss(term)
    return index == len(term.layers) - 1 and fused is not None and fused.rows is not None


def _ref_shape(ref: Ref, shapes: dict) -> tuple:
    shape = tuple(shapes[ref.name])
    return shape[::-1] if ref.transposed else shape
