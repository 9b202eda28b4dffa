"""The objective's side of a perturbed term: ΔJ summed entry-wise over what each perturbation changed.

A mixin of perturb._TermRun (it reads the run's term, trace, fused loss, z_last and batch): a row patch is
summed over its changed rows, a softmax with cross-entropy updates each column from one changed logit,
low-rank z goes to a loss that takes the factors, anything else is compared dense. ΔJ is Σ [L(new) − L(old)],
so round-off scales with the entries that changed, not with |J|.
"""

from __future__ import annotations

import numpy as np

from . import network
from .imag_noise import carried
from .lowrank import LowRank
from .rowpatch import RowPatch


def spread(x, shape: tuple) -> np.ndarray:
    """x broadcast to `shape` (np.broadcast_to costs microseconds a call, thousands of batches: skipped if it fits)."""
    return x if np.shape(x) == shape else np.broadcast_to(x, shape)


def takes_moved_a_whole(term, name: str, real: bool) -> bool:
    """Whether the term's loss takes a dense moved a whole (its `dense` row, squared error's Δa·(R + ½Δa)): no loss
    fused with the last activation, a target `name` does not move, real steps. perturb_memory counts by it too."""
    obj = term.objective
    return real and obj.row.dense is not None and network.fused_loss(term) is None and \
        (obj.target is None or obj.target.name != name)


def base_coef(trace) -> float:
    """The term's coef in the base pass (a number, or a 1 × 1 value)."""
    return float(np.real(np.asarray(trace.coef).ravel()[0]))


def with_noise(trace, size):
    """A size from imag_noise.carried (the round-off a layer's cancelled imaginary parts leave) times |coef|."""
    return abs(base_coef(trace)) * size


def weighted(trace, coef, change, size):
    """A term's (ΔJ, size) times its coef: the base pass's, or per member a moved `coef` (B,), which also moves the
    term's base value: coef·J' − c₀·J = (coef − c₀)·J + coef·ΔJ."""
    coef_base = base_coef(trace)
    if coef is None:
        return coef_base * change, abs(coef_base) * size
    shift = (coef - coef_base) * float(np.real(trace.value.ravel()[0]))
    return shift + coef * change, np.abs(shift) + np.abs(coef) * size


class Settled:
    """A term's (ΔJ, size) per variant, already summed and scaled where the last layer met its loss (spread_tail)."""

    def __init__(self, change: np.ndarray, size: np.ndarray):
        self.change, self.size = change, size


class TermObjective:
    """ΔJ of one term from its perturbed last state (mixed into perturb._TermRun)."""

    def objective(self, state):
        """(ΔJ of this term, the size of what it summed), weighted by its coef (which may be the perturbed param)."""
        term, trace = self.term, self.trace
        a_base = trace.layers[term.output].a if trace.layers else term.input.value(self.o.values)
        target_moves = term.objective.target is not None and term.objective.target.name == self.o.name
        if state is None and not target_moves:
            dJ_term, size = np.zeros(self.B), np.zeros(self.B)
        else:
            dJ_term, size = self.objective_change(a_base if state is None else state, a_base, target_moves)
        moved_coef = self.stack()[:, 0, 0] if term.coef is not None and term.coef.name == self.o.name else None
        dJ, size = weighted(trace, moved_coef, dJ_term, size)
        return dJ, size + with_noise(trace, carried(term, trace, self.o.values, self.noise, self.B))

    def objective_change(self, state, a_base, target_moves: bool):
        """(Σ over entries of [L(new) − L(old)], its size): over the changed rows only, for a row patch."""
        if isinstance(state, Settled):
            return state.change, state.size
        obj, fused = self.term.objective, self.fused
        y_base = None if obj.target is None else spread(obj.target.value(self.o.values), a_base.shape)
        base = self.trace.layers[self.term.output].z if fused is not None else a_base
        new = state if fused is None else (base if self.z_last is None else self.z_last)
        if isinstance(new, RowPatch) and not target_moves and fused is not None and fused.rows is not None:
            change, size = fused.rows(base, y_base, new.rows, new.vals)  # per column, O(m) a perturbation
            return self.summed(a_base, change, size)
        if isinstance(new, LowRank) and fused is None:  # identity then a loss that takes the factors
            scale = obj.row.scale(a_base.shape, obj.reduce)
            return tuple(scale * x for x in obj.row.low_rank(base, y_base, new))
        if not target_moves and fused is not None and fused.moved is not None and \
                (isinstance(new, LowRank) or np.ndim(new) == 3):
            dz = new.dz() if isinstance(new, LowRank) else new - base
            return self.summed(a_base, *fused.moved(base, y_base, dz))
        if isinstance(new, np.ndarray) and new.ndim == 3 and new.shape[1:] == np.shape(base) and \
                takes_moved_a_whole(self.term, self.o.name, real=not np.iscomplexobj(new)):
            scale = obj.row.scale(a_base.shape, obj.reduce)  # a loss that takes the moved a whole: fewer passes
            return tuple(scale * x for x in obj.row.dense(base, y_base, new))
        if isinstance(new, RowPatch) and not target_moves and (fused is None or fused.elementwise):
            moved, y_new = new.vals, None if y_base is None else y_base[new.rows]
            after, before = self.losses(moved, y_new), self.losses(base[new.rows], y_new)
            change = after - before
        else:
            moved = new.dense() if isinstance(new, RowPatch) else new
            y_new = obj.target.value(self.batched_values()) if target_moves else y_base
            after, before = self.losses(moved, y_new), self.losses(base, y_base)
            if np.ndim(after) == 3 and np.ndim(before) == 2 and not np.iscomplexobj(after):
                return self.dense_sums(a_base, after, before)
            change = np.broadcast_to(after - before, (self.B,) + a_base.shape)
        size = network.entry_sizes(after, before, moved, y_new, fused)
        return self.summed(a_base, change, np.broadcast_to(size, change.shape))

    def dense_sums(self, a_base, after, before):
        """`summed` for a real dense batch (B, n, m) against the base's (n, m) losses: the same sums in fewer passes
        (Σ|L(old)| once for the batch; the differences and magnitudes are the temporaries perturb_memory counts)."""
        scale = self.term.objective.row.scale(a_base.shape, self.term.objective.reduce)
        change = np.subtract(after, before)
        size = np.abs(after).reshape(self.B, -1).sum(axis=1) + np.abs(before).sum()
        change = change.reshape(self.B, -1).sum(axis=1)
        return scale * change, scale * size

    def summed(self, a_base, change, size):
        """(ΔJ, size) per perturbation: the entries' changes and sizes summed, times the loss's factor."""
        obj = self.term.objective
        scale = obj.row.scale(a_base.shape, obj.reduce)
        if np.ndim(change) == 1 and np.ndim(size) == 1:  # a loss that summed each perturbation already
            return scale * change, scale * size
        return scale * change.reshape(self.B, -1).sum(axis=1), scale * size.reshape(self.B, -1).sum(axis=1)

    def losses(self, x, y):
        """The objective's summand per entry, from z when the loss is fused with the last activation."""
        return network.entry_losses(self.term.objective, None if self.fused else x, y, x, self.fused)
