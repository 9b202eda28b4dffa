"""Evaluate J at many single-entry perturbations of one param, touching only what each one moves.

For a param p and B perturbations (entry k_b moved by δ_b, real or imaginary), returns
ΔJ_b = J(p + δ_b e_{k_b}) − J(p) and whether the move crossed a non-smooth point.

Three ideas make this fast and exact:
- Everything upstream of p's first use comes from one cached base pass.
- At the first use, moving W[i, j] in z = W a changes only row i of z, by δ·a[j, :]; a bias,
  activation argument or input entry likewise moves one row. Such a *row patch* stays one row
  through biases and elementwise activations, and its effect on an elementwise objective is
  summed over that row alone. A softmax with cross-entropy after it updates each column's
  log-sum-exp from the one changed logit (losses.Fused.rows); a kind may name the rows an entry moves
  (conv: one filter's, kinds' `patch`) or carry the moved entry through its own batched forward
  (recurrent: `moved`), or carry a changed row on as the same row (batch norm, dropout: `carry_rows`) or spread it over
  its whole z from O(m) statistics (layer norm: `spread_rows`; at the last layer, in cache-sized chunks: spread_tail);
  a second use of p as a dense weight or bias adds the entry's own rank-1 term.
  Elsewhere the batch is made dense and the ordinary batched forward pass takes over.
- ΔJ is summed entry-wise as Σ [L(new) − L(old)], so round-off scales with the entries that
  changed, not with |J|.
"""

from __future__ import annotations

import numpy as np

from . import network
from .imag_noise import record
from .kinds import KINDS
from .trace import activate, discrete_state
from .model import Layer, Model, Ref, Term
from .lowrank import LowRank
from .perturb_graph import run_graph
from .perturb_memory import per_sample_bytes
from .perturb_objective import TermObjective
from .spread_tail import chunked, spread_to_loss
from .rowpatch import RowPatch, computed, moved_product, paired, row_change, term_uses, uses


def base_traces(model: Model, values: dict) -> list:
    """The unperturbed forward pass of every term: what each param's perturbations start from."""
    with np.errstate(all="ignore"):
        return network.forward(model, values)


class Perturber:
    """ΔJ for batches of single-entry perturbations of param `name` (see module docstring)."""

    def __init__(self, model: Model, values: dict, name: str, traces: list | None = None):
        """`traces`: the base forward pass of every term, if the caller has it already (it is shared)."""
        self.model, self.values, self.name = model, values, name
        self.shape = values[name].shape
        self.traces = traces if traces is not None else base_traces(model, values)
        # Only for the terms that read the param (the others are never re-evaluated): per param the
        # work is its own terms' layers, not every layer of the spec.
        used = [term_uses(term, name) for term in model.terms]
        self.states = [[discrete_state(lt.layer, lt.z) for lt in tr.layers] if u else None
                       for tr, u in zip(self.traces, used)]
        self.kind_states = [[_kind_state(lt) for lt in tr.layers] if u else None for tr, u in zip(self.traces, used)]

    def per_sample_bytes(self, real: bool = True) -> int:
        """Memory one perturbation needs, following the representation a run will use (`real`: real steps)."""
        return per_sample_bytes(self.model, self.name, _shapes(self.values), real)

    def __call__(self, flat: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ΔJ, crossed a kink, size) per perturbation, for entry flat[b] moved by delta[b].

        size is the magnitude of what the perturbation summed, Σ(|L(new)| + |L(old)|) over the entries it
        re-evaluated (Σ|Im L(new)| for an imaginary step): the scale of its round-off, never the global |J|.
        """
        flat = np.asarray(flat)
        rows, cols = np.unravel_index(flat, self.shape)
        half = paired(flat)
        return self._sum_terms(lambda term, trace, states, kinds: _TermRun(self, term, trace, states, kinds, rows, cols,
                                                                           delta, half=half), len(rows))

    def along(self, stack: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ΔJ, crossed, size) with the param replaced by each matrix of `stack` (B, rows, cols)."""
        return self._sum_terms(lambda term, trace, states, kinds: _TermRun(self, term, trace, states, kinds, stack=stack),
                               len(stack))

    def along_direction(self, v: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ΔJ, crossed, size) at p + t·v for each t of `ts`: at a dense weight's or bias's first use z moves by
        t·(v a) (or t·v), linear in t, so one product serves every t; later layers run batched as in `along`."""
        ts = np.asarray(ts)
        return self._sum_terms(lambda term, trace, states, kinds: _TermRun(self, term, trace, states, kinds,
                                                                           direction=(v, ts)), len(ts))

    def _sum_terms(self, make_run, batch: int):
        total, crossed, size = 0.0, False, 0.0
        with np.errstate(all="ignore"):
            for term, trace, states, kind_states in zip(self.model.terms, self.traces, self.states,
                                                         self.kind_states):
                if term_uses(term, self.name):
                    d, c, m = make_run(term, trace, states, kind_states).run()
                    total, crossed, size = total + d, crossed | c, size + m
        # A param no term reads leaves J where it was: zeros, one per perturbation.
        return tuple(_per_move(x, batch) for x in (total, crossed, size))


class _TermRun(TermObjective):
    """One term's perturbed evaluation (its objective's change: perturb_objective.TermObjective)."""

    def __init__(self, owner: Perturber, term: Term, trace, states, kind_states, rows=None, cols=None, delta=None,
                 stack=None, direction=None, half=None):
        """`states`/`kind_states`: the base pass's side of every kink and each layer kind's choices."""
        self.o, self.term, self.trace, self.states, self.kind_states = owner, term, trace, states, kind_states
        self.rows, self.cols, self.delta = rows, cols, delta
        self.direction = direction  # (v, ts): p + t·v for each t, made into a stack only where a layer needs it
        self.shortcuts = stack is None and direction is None  # row patches need single-entry moves
        self.B = len(rows) if self.shortcuts else len(stack) if direction is None else len(direction[1])
        self.half = half if self.shortcuts else None  # k: the batch is the same k entries twice (±h), gathered once
        if direction is not None:
            stack = _Lazy(lambda: owner.values[owner.name][None] + direction[1][:, None, None] * direction[0][None])
        self.crossed = np.zeros(self.B, dtype=bool)
        self._stack = stack
        self.fused = network.fused_loss(term)
        self.z_last = None  # the perturbed z of the last layer reached, for a loss fused with its activation
        # an array this run made that nothing but the next step reads (a chain's moved row): overwritten in place
        self.scratch = None
        self.noise = {}  # layer key -> what it cancelled for an imaginary step, per entry of (z, a): imag_noise.py

    # -- the perturbed param as a dense stack, made only when a shortcut does not apply
    def stack(self) -> np.ndarray:
        if isinstance(self._stack, _Lazy):
            self._stack = self._stack()
        if self._stack is None:
            base = self.o.values[self.o.name]
            s = np.repeat(base[None].astype(np.result_type(self.delta, float)), self.B, axis=0)
            s[np.arange(self.B), self.rows, self.cols] += self.delta
            self._stack = s
        return self._stack

    def batched_values(self) -> dict:
        return {**self.o.values, self.o.name: self.stack()}

    def run(self):
        name, term = self.o.name, self.term
        if not term.chain:  # named inputs or merges: only the layers downstream of the move (perturb_graph)
            return run_graph(self)
        state = None  # None: still equal to the base pass
        if term.input.name == name:
            state = self.input_patch(term.input) if self.shortcuts else term.input.value(self.batched_values())
        for index, layer in enumerate(term.layers):
            refs = uses(layer, name)
            if state is None and not refs:
                continue
            if state is None:
                state = self.first_use(index, layer, refs)
            else:
                state = self.propagate(index, layer, state, refs)
        dJ, size = self.objective(state)
        return dJ, self.crossed, size

    # -- where the perturbation enters

    def input_patch(self, ref: Ref) -> RowPatch:
        """p is the term's input: entry (i, j) moves row i (row j of a `.T` input)."""
        base = ref.value(self.o.values)
        r, c = (self.cols, self.rows) if ref.transposed else (self.rows, self.cols)
        vals = base[r].astype(np.result_type(self.delta, float))
        vals[np.arange(self.B), c] += self.delta
        return RowPatch(base, r, vals)

    def first_use(self, index: int, layer: Layer, refs: list[Ref]):
        """The layer where p first appears: a row patch if p has one row-local role here, else dense."""
        lt = self.trace.layers[index]
        if computed(refs):  # an expression such as W + I: its own batched evaluation, no shortcut
            return self.dense_layer(index, layer, lt.a_in)
        if self.direction is not None and KINDS[layer.kind].row_patch and len(refs) == 1 and \
                (refs[0] is layer.weight or refs[0] is layer.bias):
            v, ts = self.direction
            v = v.T if refs[0].transposed else v
            dz = v @ lt.a_in if refs[0] is layer.weight else np.broadcast_to(v, lt.z.shape)
            return self.activate_dense(index, layer, lt.z[None] + ts[:, None, None] * dz[None])
        if self.shortcuts and KINDS[layer.kind].row_patch and len(refs) == 1:
            ref = refs[0]
            if ref is layer.weight:  # z = W a: moving W[i, j] adds δ·a[j, :] to row i of z
                r, c = (self.cols, self.rows) if ref.transposed else (self.rows, self.cols)
                vals = moved_product(lt.z, r, lt.a_in, c, self.delta, self.half)
                return self.activate_rows(index, layer, RowPatch(lt.z, r, vals), fresh=True)
            if ref is layer.bias and self.row_local(ref, lt.z):
                return self.activate_rows(index, layer, RowPatch(lt.z, *self.moved_rows(ref, lt.z)))
            if ref is layer.activation.argument and self.row_local(ref, lt.z):
                full = np.broadcast_to(ref.value(self.o.values), lt.z.shape)
                r, arg_rows = self.moved_rows(ref, full)
                return RowPatch(lt.a, r, layer.activation.row.forward(lt.z[r], arg_rows))
        if self.shortcuts and KINDS[layer.kind].row_patch and all(r is layer.weight or r is layer.bias for r in refs):
            return self.activate_dense(index, layer, self.second_use_z(index, layer, None, refs))  # W and b both p
        patch = KINDS[layer.kind].patch
        if self.shortcuts and patch is not None and len(refs) == 1:  # the kind knows which rows the entry moves
            found = patch(layer, lt, refs[0], self.rows, self.cols, self.delta, self.o.values)
            if found is not None:
                return self.activate_rows(index, layer, RowPatch(lt.z, *found))
        return self.dense_layer(index, layer, lt.a_in)

    def row_local(self, ref: Ref, z: np.ndarray) -> bool:
        """An operand with as many rows as z moves one row of z per entry; a (1, ·) one moves all."""
        return ref.value(self.o.values).shape[-2] == z.shape[-2]

    def moved_rows(self, ref: Ref, full: np.ndarray):
        """(rows, new values of those rows of `full`) when an entry of operand `ref` moves by δ."""
        r, c = (self.cols, self.rows) if ref.transposed else (self.rows, self.cols)
        vals = full[r].astype(np.result_type(self.delta, float))
        if ref.value(self.o.values).shape[-1] == 1:  # a column operand is broadcast along the row
            return r, vals + self.delta[:, None]
        vals[np.arange(self.B), c] += self.delta
        return r, vals

    # -- carrying the perturbation down the layers

    def propagate(self, index: int, layer: Layer, state, refs: list[Ref]):
        lt = self.trace.layers[index]
        if refs and isinstance(state, RowPatch) and state.rows.ndim > 1:  # second uses take one row a patch
            state = state.dense()
        if refs and self.shortcuts and KINDS[layer.kind].row_patch and not computed(refs):
            if isinstance(state, RowPatch) and layer.weight is None and self.same_rows(layer, refs, state):
                return self.rows_again(index, layer, state, refs)
            if all(r is layer.weight or r is layer.bias for r in refs):
                return self.low_rank(index, layer, state, refs) or \
                    self.activate_dense(index, layer, self.second_use_z(index, layer, state, refs))
        if isinstance(state, RowPatch) and KINDS[layer.kind].row_patch and not refs:
            if layer.weight is None:
                bias = 0.0 if layer.bias is None else np.broadcast_to(layer.bias.value(self.o.values), lt.z.shape)
                vals = state.vals + (bias[state.rows] if layer.bias is not None else 0.0)
                return self.activate_rows(index, layer, RowPatch(lt.z, state.rows, vals))
            # z = W a: only column rows[b] of W meets the changed row: a rank-1 change of z.
            moved = self.low_rank(index, layer, state, refs)
            if moved is not None:
                return moved
            W = layer.weight.value(self.o.values)
            diff = state.vals - state.base[state.rows]
            if state.rows.ndim == 1:
                z = lt.z[None] + W[:, state.rows].T[:, :, None] * diff[:, None, :]
            else:  # several rows a perturbation: rank P, one small matmul each
                z = lt.z[None] + np.matmul(W[:, state.rows].transpose(1, 0, 2), diff)
            return self.activate_dense(index, layer, z)
        carry = getattr(KINDS[layer.kind], "carry_rows", None)  # a kind that maps a changed row to the same row
        if isinstance(state, RowPatch) and not refs and carry is not None and state.rows.shape[1:] in ((), (1,)):
            rows, vals = state.rows.reshape(-1), state.vals.reshape(len(state.rows), -1)
            return self.activate_rows(index, layer, RowPatch(lt.z, rows, carry(layer, lt, rows, vals, self.o.values)))
        spread = getattr(KINDS[layer.kind], "spread_rows", None)  # one changed row moves the kind's whole z
        if isinstance(state, RowPatch) and not refs and spread is not None and state.rows.ndim == 1:
            fill = spread(layer, lt, state.rows, state.vals, self.o.values)
            if chunked(self.term, index, layer, self.o.name, real=not np.iscomplexobj(state.vals)):
                return spread_to_loss(self, index, layer, fill)
            return self.activate_dense(index, layer, fill(slice(None)))
        a_in = state.dense() if isinstance(state, RowPatch) else state
        return self.dense_layer(index, layer, a_in)

    def low_rank(self, index: int, layer: Layer, state, refs: list[Ref]) -> LowRank | None:
        """The last layer's z as base + rank-1 terms (lowrank.py) when its loss takes them: a moved row of the
        input meets one column of W, and p read again as W adds its entry's own row. None: go dense."""
        obj, lt = self.term.objective, self.trace.layers[index]
        if index != len(self.term.layers) - 1 or not isinstance(state, RowPatch) or state.rows.ndim != 1 or \
                layer.weight is None or any(r is not layer.weight for r in refs) or self.states[index] is not None or \
                (obj.target is not None and obj.target.name == self.o.name):
            return None
        identity = layer.activation.row.name == "identity" and layer.activation.argument is None
        if not (self.fused is not None and self.fused.moved is not None or identity and obj.row.low_rank is not None
                and not np.iscomplexobj(self.delta)):  # squared error's sizes are for real steps
            return None
        spare = not refs and state.vals is self.scratch  # the moved row's a is read here alone: Δa in its place
        moved = LowRank(lt.z, layer.weight.value(self.o.values), state.rows, row_change(state, self.half, spare),
                        spare=spare)
        if refs:  # W[i, j] moved: row i of z gains δ·a_in[j] (with .T, row j gains δ·a_in[i])
            r, c = (self.cols, self.rows) if layer.weight.transposed else (self.rows, self.cols)
            moved.rows, moved.w = r, self.delta[:, None] * self.input_rows(index, state, c)
        self.z_last = moved
        return moved

    # -- a second use of p: its moved entry's own term, never stacked copies of p

    def same_rows(self, layer: Layer, refs: list[Ref], state: RowPatch) -> bool:
        """Every use of p here (bias, activation argument) moves, for each perturbation, the row already patched."""
        for ref in refs:
            if ref is not layer.bias and ref is not layer.activation.argument:
                return False
            shape = ref.value(self.o.values).shape
            if shape != state.base.shape:  # a column or scalar operand moves more than its row
                return False
            r = self.cols if ref.transposed else self.rows
            if not np.array_equal(r, state.rows):
                return False
        return True

    def rows_again(self, index: int, layer: Layer, state: RowPatch, refs: list[Ref]) -> RowPatch:
        """A weight-less layer whose bias or argument is p, moved in the patched row: the patch goes on as a row."""
        lt = self.trace.layers[index]
        vals = state.vals
        if layer.bias is not None:
            bias = np.broadcast_to(layer.bias.value(self.o.values), lt.z.shape)
            vals = vals + (self.moved_rows(layer.bias, bias)[1] if layer.bias in refs else bias[state.rows])
        z = RowPatch(lt.z, state.rows, vals)
        self.z_last = z
        self.note_kinks(index, layer, z)
        argument = layer.activation.argument
        if argument is None or not any(r is argument for r in refs):
            return self.activate_rows(index, layer, z)
        full = np.broadcast_to(argument.value(self.o.values), lt.z.shape)
        return RowPatch(lt.a, state.rows, layer.activation.row.forward(vals, self.moved_rows(argument, full)[1]))

    def second_use_z(self, index: int, layer: Layer, state, refs: list[Ref]) -> np.ndarray:
        """z of a dense layer that reads p again as its weight or bias: the base W and b on the perturbed input,
        plus each perturbation's own term, δ·a_in[j] in row i for W[i, j] (rank 1), δ at the bias entry."""
        lt, B = self.trace.layers[index], np.arange(self.B)
        W = None if layer.weight is None else layer.weight.value(self.o.values)
        dtype = np.result_type(self.delta, float)
        if state is None:  # the input is the base pass's
            z = np.repeat(lt.z[None].astype(dtype), self.B, axis=0)
        elif isinstance(state, RowPatch) and W is not None:  # the input's changed row meets one column of W
            diff = state.vals - state.base[state.rows]
            z = (lt.z[None] + W[:, state.rows].T[:, :, None] * diff[:, None, :]).astype(dtype, copy=False)
        else:
            a_in = state.dense() if isinstance(state, RowPatch) else state
            z = (a_in if W is None else np.matmul(W, a_in)).astype(dtype)
            if layer.bias is not None:
                z += layer.bias.value(self.o.values)
        if any(r is layer.weight for r in refs):
            r, c = (self.cols, self.rows) if layer.weight.transposed else (self.rows, self.cols)
            z[B, r] += self.delta[:, None] * self.input_rows(index, state, c)
        if any(r is layer.bias for r in refs):
            shape = layer.bias.value(self.o.values).shape
            moved = np.zeros((self.B,) + shape, dtype)
            r, c = (self.cols, self.rows) if layer.bias.transposed else (self.rows, self.cols)
            moved[B, r, c] = self.delta
            z += moved
        return z

    def input_rows(self, index: int, state, c: np.ndarray) -> np.ndarray:
        """Row c[b] of perturbation b's input to this layer (the base pass's a_in when `state` is None)."""
        if state is None:
            return self.trace.layers[index].a_in[c]
        if isinstance(state, RowPatch):
            return np.where((state.rows == c)[:, None], state.vals, state.base[c])
        return state[np.arange(self.B), c]

    def dense_layer(self, index: int, layer: Layer, a_in):
        """No shortcut: the layer's own batched forward, with p as a stack if it reads p."""
        refs, moved, lt = uses(layer, self.o.name), KINDS[layer.kind].moved, None
        if refs and self.shortcuts and moved is not None and not computed(refs):  # the kind carries the moved entry
            lt = moved(layer, a_in, self.o.values, refs, self.rows, self.cols, self.delta)
        if lt is None:
            lt = KINDS[layer.kind].forward(layer, a_in, self.batched_values() if refs else self.o.values)
        self.z_last = lt.z
        record(self.noise, lt)
        self.note_kinks(index, layer, lt.z)
        self.note_kind_state(index, lt)
        return lt.a

    def note_kind_state(self, index: int, lt) -> None:
        """Flag perturbations that change a layer's discrete choice (max pooling's winner)."""
        base = self.kind_states[index]
        if base is not None:
            moved = np.broadcast_to(_kind_state(lt) != base, (self.B,) + base.shape)
            self.crossed |= moved.reshape(self.B, -1).any(axis=1)

    def activate_rows(self, index: int, layer: Layer, z: RowPatch, fresh: bool = False) -> RowPatch:
        """Apply an elementwise activation to the changed rows only; softmax mixes rows: go dense.
        `fresh`: z.vals was made for this step alone, so a chain's later layer (which replaces z_last) lets
        a plain ufunc activation write over it."""
        row = layer.activation.row
        lt = self.trace.layers[index]
        self.z_last = z
        self.note_kinks(index, layer, z)
        if fresh and self.term.chain and index < len(self.term.layers) - 1 and row.writes_in_place and \
                layer.activation.argument is None:
            self.scratch = row.f(z.vals, out=z.vals)
            return RowPatch(lt.a, z.rows, self.scratch)
        if not row.elementwise:  # column-wise (softmax): every row of the column changes
            if z.rows.ndim == 1 and self.rows_reach_loss(index):
                return z  # the fused loss reads z_last alone: the column update happens there (objective_change)
            return self.activated(activate(layer, None, z.dense(), self.o.values))
        arg = lt.argument
        if layer.activation.argument is not None and np.ndim(arg) == 2:
            arg = np.broadcast_to(arg, lt.z.shape)[z.rows]
        elif row.takes_argument and layer.activation.argument is None:  # custom: its env
            return activate(layer, None, z.dense(), self.o.values).a
        return RowPatch(lt.a, z.rows, row.forward(z.vals, arg))

    def rows_reach_loss(self, index: int) -> bool:
        """Layer `index` is the last, and its loss, fused with its column-wise activation, updates columns from one row."""
        return index == self.term.output % len(self.term.layers) and self.fused is not None and \
            self.fused.rows is not None and (self.term.chain or self.term.read_by(index) == 0)

    def activate_dense(self, index: int, layer: Layer, z: np.ndarray):
        self.z_last = z
        self.note_kinks(index, layer, z)
        if index == len(self.term.layers) - 1 and self.fused is not None and self.fused.moved is not None:
            return z  # the fused loss reads z_last alone: no softmax of the moved z
        return self.activated(activate(layer, None, z, self.o.values))

    def activated(self, lt):
        """lt.a, keeping what its activation cancelled for an imaginary step (imag_noise.py)."""
        record(self.noise, lt)
        return lt.a

    def note_kinks(self, index: int, layer: Layer, z, members=slice(None)) -> None:
        """Flag perturbations (those of `members`, where z is a chunk of the batch) whose z lands on the other side
        of a kink than the base pass."""
        base_state = self.states[index]
        if base_state is None:
            return
        count = len(self.crossed[members])
        if isinstance(z, RowPatch):
            moved = discrete_state(layer, z.vals) != base_state[z.rows]
            self.crossed[members] |= moved.reshape(count, -1).any(axis=1)
        else:
            moved = discrete_state(layer, z) != base_state
            self.crossed[members] |= np.broadcast_to(moved, (count,) + base_state.shape).reshape(count, -1).any(axis=1)


def _per_move(x, batch: int) -> np.ndarray:
    """One value per perturbation, a fresh array (a term's sum already is one; a scalar is spread)."""
    if isinstance(x, np.ndarray) and x.shape == (batch,):
        return x.copy()
    return np.broadcast_to(x, (batch,)).copy()


class _Lazy:
    """A stack of matrices made on first use (fast mode's p + t·v, needed only where a layer reads p densely)."""

    def __init__(self, make):
        self.make = make

    def __call__(self) -> np.ndarray:
        return self.make()


def _kind_state(lt):
    """A layer kind's discrete choices in a trace (None for kinds without any)."""
    return KINDS[lt.layer.kind].state(lt)


_LAST_SHAPES: list = []  # (values, their shapes) of the last check: every param's perturber asks for the same dict


def _shapes(values: dict) -> dict:
    """name -> shape of a check's values, made once per check (per param it made a spec of n names cost O(n²))."""
    if not _LAST_SHAPES or _LAST_SHAPES[0] is not values or len(_LAST_SHAPES[1]) != len(values):
        _LAST_SHAPES[:] = [values, {k: np.shape(v) for k, v in values.items()}]
    return _LAST_SHAPES[1]
