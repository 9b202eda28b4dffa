"""The last layer's whole z spread from one changed row (a kind's `spread_rows`: layer norm), its activation and a
loss that takes the moved a whole, run over a batch in chunks of variants whose one buffer stays in a core's cache.

Each variant's z is as large as the layer's output, so a batch-sized z, a and Δa are megabytes; every elementwise
pass over them then streams from memory at two to three times the cost of one over a cache-resident chunk. Chunk
by chunk, z is written into one buffer, activated in place, differenced against the base a and summed by the
loss's own `dense` row: the same numbers, entry for entry and sum for sum, as the batch-sized route.
"""

from __future__ import annotations

import numpy as np

from .model import Layer, Term
from .perturb_objective import Settled, takes_moved_a_whole

CHUNK_BYTES = 2**20  # one chunk's z: a core's L2 cache holds it and the base a and residual it is compared with


def chunked(term: Term, index: int, layer: Layer, name: str, real: bool) -> bool:
    """Whether a spread z at layer `index` goes to the loss in chunks: the term's last layer and its output, a plain
    ufunc activation (written over z) and a loss that takes the moved a whole (perturb_memory counts by this too)."""
    last = len(term.layers) - 1
    return term.chain and index == last and term.output % len(term.layers) == last and \
        layer.activation.argument is None and layer.activation.row.writes_in_place and \
        takes_moved_a_whole(term, name, real)


def spread_to_loss(run, index: int, layer: Layer, fill) -> Settled:
    """ΔJ and its size per variant of perturb._TermRun `run`'s batch, z made by the kind's `spread_rows` filler
    chunk by chunk into one buffer. The loss sums every entry, so it reads z, a and y in the buffer's own memory
    order (each variant's zᵀ): no reordering copies a chunk."""
    lt, obj, values = run.trace.layers[index], run.term.objective, run.o.values
    n, m = lt.z.shape
    a = np.ascontiguousarray(lt.a.T)
    y = None if obj.target is None else np.ascontiguousarray(np.broadcast_to(obj.target.value(values), lt.a.shape).T)
    step = max(1, CHUNK_BYTES // (8 * n * m))
    buffer = np.empty((min(step, run.B), m, n))
    change, size = np.empty(run.B), np.empty(run.B)
    base = obj.row.dense.base(a, y)
    for start in range(0, run.B, step):
        members = slice(start, min(start + step, run.B))
        out = buffer[:members.stop - start]
        run.note_kinks(index, layer, fill(members, out), members)  # the (members, n, m) view of `out`
        layer.activation.row.f(out, out=out)
        change[members], size[members] = obj.row.dense.change(base, a, out)  # Δa over the buffer: read by nothing else
    scale = obj.row.scale(lt.a.shape, obj.reduce)
    return Settled(scale * change, scale * size)
