"""ΔJ along one joint direction: every param moved at once, J(θ + t·u) − J(θ) for each t of a ladder.

Fast mode's joint directions (gradcheck.fast) move all params together, u = (u_p for every param p). Each
term that reads a moved name is walked once (network.walk_forward) with the moved params as stacks
θ_p + t·u_p, one member per t:
- a layer whose input and params are all the base pass's keeps its base trace (nothing is recomputed
  upstream of the first moved layer);
- a dense layer whose only moved names are its plain weight and bias gets z₀ + t·(u_W a + u_b), since
  z = (W + t·u_W) a + (b + t·u_b) is linear in t: where its input is the base pass's, z₀ is the base z and
  one product u_W a serves every t; elsewhere z₀ = W a + b per member, and W is never stacked;
- anything else runs its kind's own batched forward, reading the moved params as stacks (made on first read).
ΔJ is summed entry-wise as Σ [L(new) − L(old)], so its round-off scales with what it summed, as in perturb.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np

from . import network
from .kinds import KINDS
from .merges import MERGES
from .model import Layer, Model, Ref, layer_refs
from .imag_noise import carried, record
from .perturb_objective import weighted, with_noise
from .trace import activate, discrete_state


class Moved(Mapping):
    """The values with each moved param p as the stack θ_p + t·u_p (B, rows, cols), made on first read."""

    def __init__(self, values: Mapping, directions: Mapping, ts: np.ndarray):
        self.values, self.directions, self.ts, self.made = values, directions, ts, {}

    def __getitem__(self, name: str):
        if name not in self.directions:
            return self.values[name]
        if name not in self.made:
            self.made[name] = self.values[name][None] + self.ts[:, None, None] * self.directions[name][None]
        return self.made[name]

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def along_joint(model: Model, values: Mapping, traces: list, directions: Mapping,
                ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ΔJ, crossed a kink, size) at θ + t·u for each t of `ts`, u = `directions` (name -> u_p, params not
    named stay); size is Σ(|L(new)| + |L(old)|) over the entries summed (Σ|Im L(new)| for imaginary t)."""
    ts = np.asarray(ts)
    moved = Moved(values, directions, ts)
    total, crossed, size = np.zeros(len(ts), ts.dtype), np.zeros(len(ts), bool), np.zeros(len(ts))
    with np.errstate(all="ignore"):
        for term, trace in zip(model.terms, traces):
            if term.names.isdisjoint(directions):
                continue
            d, c, s = _TermWalk(term, trace, values, moved).run()
            total, crossed, size = total + d, crossed | c, size + s
    return total, crossed, size


def _reads_moved(ref: Ref | None, moved: Moved) -> bool:
    return ref is not None and not ref.reads.isdisjoint(moved.directions)


class _TermWalk:
    """One term walked at the moved values; a value with a batch axis (ndim 3) is one the move changed."""

    def __init__(self, term, trace, values: Mapping, moved: Moved):
        self.term, self.trace, self.values, self.moved = term, trace, values, moved
        self.B = len(moved.ts)
        self.base = {lt.layer.key: lt for lt in trace.layers}
        self.crossed = np.zeros(self.B, bool)
        self.noise = {}  # layer key -> what it cancelled for an imaginary step, per entry of (z, a): imag_noise.py

    def run(self):
        ops = network.Ops(self.read, lambda x: np.swapaxes(x, -1, -2), lambda x, y: x + y, self.merge, None)
        steps, a = network.walk_forward(self.term, ops, self.step)
        z = steps[self.term.output].z if steps else None
        dJ, size = self.objective(a, z)
        return dJ, self.crossed, size

    def read(self, ref: Ref):
        return ref.value(self.moved if _reads_moved(ref, self.moved) else self.values)

    def merge(self, layer: Layer, xs: list):
        if all(np.ndim(x) <= 2 for x in xs):  # every input as in the base pass: its merged input too
            return self.base[layer.key].a_in
        return MERGES[layer.merge].forward(xs, layer.merge_options)

    def step(self, layer: Layer, a_in):
        lt = self.base[layer.key]
        refs = [r for r in layer_refs(layer) if _reads_moved(r, self.moved)]
        if np.ndim(a_in) <= 2 and not refs:
            return SimpleNamespace(layer=layer, a=lt.a, z=lt.z)  # unchanged: the base pass's
        if refs and self.linear(layer, refs):
            new = activate(layer, a_in, self.linear_z(layer, lt, a_in, refs), self.moved)
        else:
            new = KINDS[layer.kind].forward(layer, a_in, self.moved)
        record(self.noise, new)
        self.note_kinks(layer, lt, new)
        return new

    def linear_z(self, layer: Layer, lt, a_in, refs: list[Ref]) -> np.ndarray:
        """z = (W + t·u_W) a + (b + t·u_b) as z₀ + t·(u_W a + u_b), z₀ from the base W and b: linear in t, so one
        product serves every t, and no stack of W is made (at an input the move left alone, z₀ is the base z)."""
        if np.ndim(a_in) <= 2:
            z0 = lt.z
        else:
            z0 = a_in if layer.weight is None else np.matmul(layer.weight.value(self.values), a_in)
            z0 = z0 if layer.bias is None else z0 + layer.bias.value(self.values)
        dz = 0.0
        for ref in refs:
            u = ref.value(self.moved.directions)
            dz = dz + (np.matmul(u, a_in) if ref is layer.weight else u)
        return z0 + self.moved.ts[:, None, None] * dz

    @staticmethod
    def linear(layer: Layer, refs: list[Ref]) -> bool:
        """A dense layer that reads the moved params only as its plain weight and bias."""
        return KINDS[layer.kind].row_patch and all(
            (r is layer.weight or r is layer.bias) and r.expression is None for r in refs)

    def note_kinks(self, layer: Layer, lt, new) -> None:
        """Flag the members whose z lands on another side of a kink, or whose kind's discrete choice changed."""
        base_state = discrete_state(layer, lt.z)
        if base_state is not None:
            moved = np.broadcast_to(discrete_state(layer, new.z) != base_state, (self.B,) + base_state.shape)
            self.crossed |= moved.reshape(self.B, -1).any(axis=1)
        kind_base = KINDS[layer.kind].state(lt)
        if kind_base is not None:
            moved = np.broadcast_to(KINDS[layer.kind].state(new) != kind_base, (self.B,) + kind_base.shape)
            self.crossed |= moved.reshape(self.B, -1).any(axis=1)

    def objective(self, a, z):
        """(ΔJ of this term, its size), weighted by its coef (which may itself be moved)."""
        term, trace = self.term, self.trace
        obj, fused = term.objective, network.fused_loss(term)
        a_base = trace.layers[term.output].a if trace.layers else term.input.value(self.values)
        z_base = trace.layers[term.output].z if trace.layers else None
        target_moves = _reads_moved(obj.target, self.moved)
        if np.ndim(a) <= 2 and not target_moves:
            change, size = np.zeros(self.B), np.zeros(self.B)
        else:
            y_base = None if obj.target is None else np.broadcast_to(obj.target.value(self.values), a_base.shape)
            y_new = obj.target.value(self.moved) if target_moves else y_base
            after = network.entry_losses(obj, a, y_new, z, fused)
            before = network.entry_losses(obj, a_base, y_base, z_base, fused)
            shape = (self.B,) + a_base.shape
            sizes = network.entry_sizes(after, before, z, y_new, fused)
            scale = obj.row.scale(a_base.shape, obj.reduce)
            change = scale * np.broadcast_to(after - before, shape).reshape(self.B, -1).sum(axis=1)
            size = scale * np.broadcast_to(sizes, shape).reshape(self.B, -1).sum(axis=1)
        coef = np.broadcast_to(term.coef.value(self.moved), (self.B, 1, 1))[:, 0, 0] \
            if _reads_moved(term.coef, self.moved) else None
        change, size = weighted(trace, coef, change, size)
        return change, size + with_noise(trace, carried(term, trace, self.values, self.noise, self.B))
