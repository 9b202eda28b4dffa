"""Memory one perturbation holds, in the representation the perturber will really use (rows while a patch
lasts, a kind's patch, the layer's work and one stacked param where it goes dense): what sizes batches and
what budget.py's estimate counts, so the two never disagree."""

from __future__ import annotations

import numpy as np

from . import network
from .kinds import KINDS
from .model import Layer, Model, Ref, Term
from .perturb_objective import takes_moved_a_whole
from .rowpatch import computed, term_uses, uses
from .spread_tail import chunked, may_fit


BYTES = 8  # float64
TEMPORARIES = 6  # arrays of one perturbation's largest size alive at once (the loss's new, old, change, size…)
SPREAD_ROWS = 8  # rows of m a spread variant holds when its z goes to the loss in chunks: its row, d, 1/σ', coefficients
FITTED_ROWS = 20  # the same where column_fit may take them: its Chebyshev bases and their products as well
TAKEN_WHOLE = 3  # the same at the last layer when its loss takes the moved a whole (losses' `dense`): z, a, Δa


def per_sample_bytes(model: Model, name: str, shapes: dict, real: bool = True) -> int:
    """Bytes one perturbation of `name` holds at its largest, from shapes alone (budget.py sizes the check by it);
    `real`: real steps (the complex step takes no low-rank squared error)."""
    numbers = max((_term_numbers(term, name, shapes, real) for term in model.terms if term_uses(term, name)),
                  default=1)
    if name in model.symmetric_params:  # a mirrored move is a dense copy of p through every layer (symmetric.Moves)
        numbers = max(numbers, int(np.prod(shapes[name])) + TEMPORARIES * network.footprint(model))
    return BYTES * numbers


def _term_numbers(term: Term, name: str, shapes: dict, real: bool = True) -> int:
    """Numbers one perturbation holds along a term, walked as _TermRun.run walks it: temporaries of a row while a
    patch lasts (the shortcut), else of the layer's whole work, plus one stacked param where a dense layer reads it."""
    size = int(np.prod(shapes[name]))
    if not term.chain:
        return _graph_numbers(term, name, size, shapes, real)
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
        if started and rows and width == 1 and _low_rank_last(term, index, layer, name, real):
            # the last z as its rank-1 factors (lowrank.py): a softmax's loss reads the dense Δz, squared error not
            n = layer.out_shape[0]
            if network.fused_loss(term) is not None:  # the dense Δz and its column sums
                return max(peak, TEMPORARIES * (2 * m + n * m))
            return max(peak, TEMPORARIES * 2 * m + 2 * n)  # the moved row's temporaries, W's column u and u·u
        own = _moved_numbers(layer, refs, True) if not started and refs and not computed(refs) else None
        if own is not None:  # the kind's own batched route for its first use (attention's scores, a recurrence)
            rows, started = False, True
            peak = max(peak, own + _output_arrays(term, index, name, real) * layer.out_shape[0] * m)
            continue
        if started and rows and width == 1 and not refs and getattr(KINDS[layer.kind], "spread_rows", None):
            # one row spread over the kind's whole z from its statistics (layer norm): z, a and the loss's work,
            # never the batched forward's; or, chunked to the loss, its row and statistics (the chunk is shared),
            # and where column_fit may take them its bases over the whole batch
            rows, started = False, True
            chunks = FITTED_ROWS if may_fit(layer) else SPREAD_ROWS
            whole = chunks if chunked(term, index, layer, name, real) else \
                _temporaries(term, index, name, real) * layer.out_shape[0]
            peak = max(peak, whole * m + stacked)
            continue
        if started and rows:  # a row goes on through a weight-less layer, whose bias or argument may move that row
            rows = KINDS[layer.kind].row_patch and layer.weight is None and \
                all(_same_row(layer, r, shapes, transposed) for r in refs) or \
                not refs and width == 1 and getattr(KINDS[layer.kind], "carry_rows", None) is not None
        elif not started and KINDS[layer.kind].patch is not None and len(refs) == 1:  # the kind's own rows
            rows = True  # a kind may say how many rows its patch moves (patch_rows); conv moves one filter's
            width = getattr(layer.options, "patch_rows", None) or layer.out_shape[0] // getattr(layer.options, "filters", 1)
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
        own = _moved_numbers(layer, refs, False) if refs and not patched and carried and not stacked else None
        if own is not None:  # a moved input meets the kind's own `moved`: what it holds, then its output
            peak = max(peak, own + _output_arrays(term, index, name, real) * layer.out_shape[0] * m)
            continue
        # a dense layer's footprint is its z and a; a kind's own forward (recurrent, gated) keeps its 6 for its steps
        temporaries = _temporaries(term, index, name, real) if KINDS[layer.kind].row_patch else TEMPORARIES
        peak = max(peak, temporaries * KINDS[layer.kind].footprint(layer) + stacked)
    return peak


def _moved_numbers(layer: Layer, refs: list[Ref], shared_input: bool) -> int | None:
    """Numbers one member of a kind's own `moved` holds (its `moved_numbers`; `shared_input`: the layer's input is
    still the base pass's), or None where it has none or goes dense (a use it does not carry): then its footprint."""
    numbers = getattr(KINDS[layer.kind], "moved_numbers", None)
    return None if numbers is None else numbers(layer, refs, shared_input)


def _output_arrays(term: Term, index: int, name: str, real: bool) -> int:
    """Arrays of a kind's output size beside its own `moved`: the loss's temporaries at the last layer, else z and a."""
    return _temporaries(term, index, name, real) if index == len(term.layers) - 1 else 2


def _temporaries(term: Term, index: int, name: str, real: bool) -> int:
    """Arrays of a layer's output size one perturbation holds: fewer at the last layer when its loss takes the moved a
    whole (perturb_objective.takes_moved_a_whole, as objective_change decides)."""
    last = index == len(term.layers) - 1 and takes_moved_a_whole(term, name, real)
    return TAKEN_WHOLE if last else TEMPORARIES


def _low_rank_last(term: Term, index: int, layer: Layer, name: str, real: bool) -> bool:
    """A patched row meets the last layer's weight, whose loss takes rank-1 factors (as _TermRun.low_rank decides)."""
    if index != len(term.layers) - 1 or layer.weight is None or not KINDS[layer.kind].row_patch or \
            any(r is not layer.weight for r in uses(layer, name)) or layer.activation.row.kinks or \
            (term.objective.target is not None and term.objective.target.name == name):
        return False
    fused = network.fused_loss(term)
    identity = layer.activation.row.name == "identity" and layer.activation.argument is None
    return fused is not None and fused.moved is not None or identity and real and term.objective.row.low_rank is not None


def _graph_numbers(term: Term, name: str, size: int, shapes: dict, real: bool = True) -> int:
    """A DAG (perturb_graph): each layer the move reaches keeps its moved a until the objective, P rows of it
    while the row patches last (first uses, weight-less layers, elementwise merges of P moved rows, slices),
    else all of it; on top, the largest layer's work (its z, each input at the moved rows or densely, the
    merged input, and at the output the loss's new, old, change and size)."""
    rows: dict[str, int] = {}  # layer key -> rows its moved output changes per perturbation (0: dense)
    out = term.layers[term.output].key
    held, work_max, stacked = 0, 1, 0
    for layer in term.layers:
        refs = uses(layer, name)
        moved = [r for r in layer.inputs if r.name in rows or r.name == name]
        if not refs and not moved:
            continue
        kind = KINDS[layer.kind]
        count = 0
        if not moved:
            count = int(kind.row_patch and len(refs) == 1 and _row_local(layer, refs[0], shapes))
        elif all(rows.get(r.name, 0) and not r.transposed for r in moved) and kind.row_patch and \
                layer.weight is None and not refs and \
                (layer.merge in (None, "add", "mul", "slice") or layer.merge == "concat" and len(moved) == 1):
            count = sum(rows[r.name] for r in moved)
        if not (layer.activation.row.elementwise and not layer.activation.row.takes_argument):
            count = 0
        rows[layer.key] = count
        a = count * layer.out_shape[1] if count else layer.out_shape[0] * layer.out_shape[1]
        if count:  # each input at the moved rows, the merged rows, z and a
            work = (len(layer.inputs) + 2) * count * layer.in_shape[1] + a
        else:  # the layer's own work on the merged input
            work = kind.footprint(layer) + (layer.in_shape[0] * layer.in_shape[1] if layer.merge else 0)
        if layer.key == out:  # the loss's new, old, change and size (its Δa alone when it takes a whole)
            work += (0 if _temporaries(term, len(term.layers) - 1, name, real) == TAKEN_WHOLE else 4) * a
        stacked = size if refs and not count else stacked
        held += a
        work_max = max(work_max, work)
    return (3 * (held + work_max)) // 2 + stacked  # measured peaks run up to 1.3× the sum (numpy's own temporaries)


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
