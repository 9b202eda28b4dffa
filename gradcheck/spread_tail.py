"""The last layer's whole z spread from one changed row (a kind's `spread_rows`: layer norm), its activation and a
loss that takes the moved a whole, run over a batch in chunks of variants whose one buffer stays in a core's cache.

Each variant's z is as large as the layer's output, so a batch-sized z, a and Δa are megabytes; every elementwise
pass over them then streams from memory at two to three times the cost of one over a cache-resident chunk. Chunk
by chunk, z is written into one buffer, activated in place, differenced against the base a and summed by the
loss's own `dense` row: the same numbers, entry for entry and sum for sum, as the batch-sized route.

Where the activation has no kink and the batch is large, column_fit reads every variant's ΔJ off a polynomial in the
two numbers each column moves by, fitted through a few exact columns; its bound on what the fit leaves out joins each
variant's size (so the verdict's round-off term holds it), and a batch whose bound would be more than TAIL_SHARE of
that round-off, or whose exact columns are not finite, takes the chunks.
"""

from __future__ import annotations

import numpy as np

from .column_fit import MIN_VARIANTS, fitted_change
from .lowrank import ColumnSpread
from .model import Layer, Term
from .numeric import ROUNDING
from .perturb_objective import Settled, takes_moved_a_whole

CHUNK_BYTES = 2**20  # one chunk's z: a core's L2 cache holds it and the base a and residual it is compared with
TAIL_SHARE = 0.25  # the most a fit's bound may add to a variant's size (its round-off term), as a share


def chunked(term: Term, index: int, layer: Layer, name: str, real: bool) -> bool:
    """Whether a spread z at layer `index` goes to the loss in chunks: the term's last layer and its output, an
    elementwise activation without an argument and a loss that takes the moved a whole (perturb_memory counts by
    this too)."""
    last = len(term.layers) - 1
    return term.chain and index == last and term.output % len(term.layers) == last and \
        layer.activation.argument is None and layer.activation.row.elementwise and \
        takes_moved_a_whole(term, name, real)


def may_fit(layer: Layer) -> bool:
    """Whether column_fit may take the layer's spread z: an activation without a kink (its flags need every entry)
    or a domain edge (a variant at a corner of the fit's box may leave the domain where no interior node does).
    perturb_memory counts by this too."""
    return not layer.activation.row.kinks and not layer.activation.row.edges(None)


def spread_to_loss(run, index: int, layer: Layer, fill) -> Settled:
    """ΔJ and its size per variant of perturb._TermRun `run`'s batch, z made by the kind's `spread_rows` filler
    chunk by chunk into one buffer. The loss sums every entry, so it reads z, a and y in the buffer's own memory
    order (each variant's zᵀ): no reordering copies a chunk."""
    lt, obj = run.trace.layers[index], run.term.objective
    scale = obj.row.scale(lt.a.shape, obj.reduce)
    target = None if obj.target is None else np.broadcast_to(obj.target.value(run.o.values), lt.a.shape)
    fitted = _fitted(run, index, layer, fill, target)
    if fitted is not None:
        return Settled(scale * fitted[0], scale * fitted[1])
    n, m = lt.z.shape
    a = np.ascontiguousarray(lt.a.T)
    y = None if target is None else np.ascontiguousarray(target.T)
    step = max(1, CHUNK_BYTES // (8 * n * m))
    buffer = np.empty((min(step, run.B), m, n))
    change, size = np.empty(run.B), np.empty(run.B)
    base = obj.row.dense.base(a, y)
    for start in range(0, run.B, step):
        members = slice(start, min(start + step, run.B))
        out = buffer[:members.stop - start]
        run.note_kinks(index, layer, fill(members, out), members)  # the (members, n, m) view of `out`
        _activate(layer.activation.row, out)
        change[members], size[members] = obj.row.dense.change(base, a, out)  # Δa over the buffer: read by nothing else
    return Settled(scale * change, scale * size)


def _activate(row, z: np.ndarray) -> None:
    """a = f(z) written over z: in place for a ufunc, copied back for any other elementwise f (sigmoid, softplus)."""
    if row.writes_in_place:
        row.f(z, out=z)
    else:
        z[...] = row.f(z)


def _fitted(run, index: int, layer: Layer, spread, y) -> tuple[np.ndarray, np.ndarray] | None:
    """(Σ ΔL, size) per variant from column_fit (y: the target at a's shape, or None), or None where the chunks must
    run: an activation it may not take (may_fit), a small batch, a fit that is not finite or whose bound is too large
    a share of the sizes."""
    row = layer.activation.row
    if not isinstance(spread, ColumnSpread) or not may_fit(layer) or len(spread) < MIN_VARIANTS:
        return None
    lt, obj = run.trace.layers[index], run.term.objective
    before = float(np.sum(np.abs(obj.row.entry(lt.a, y))))  # Σ|L(old)|
    fitted = fitted_change(spread, row.f, obj.row.entry, lt.a, y, TAIL_SHARE * ROUNDING * 2.0 * before)
    if fitted is None:
        return None
    change, tail = fitted
    # the sizes are Σ|L(new)| + |L(old)|, 2 Σ L(old) + Σ ΔL for a loss ≥ 0 (squared error's `dense`, as it finds them)
    return change, 2.0 * before + change + tail / ROUNDING
