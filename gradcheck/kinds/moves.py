"""Where a moved entry of a recurrence's Wx, Wh or bias lands, for every batched recurrent forward (recurrent.py,
gated_moved.py): each member's own term in its pre-activation row, and a member's h while it is still the shared
one with at most one patched row."""

from __future__ import annotations

import numpy as np


class Moves:
    """Where each member's moved entry lands: per use of the param its side ("x", "h" or "b") and (i, j)."""

    def __init__(self, opt, refs, values, rows, cols, delta):
        self.delta, self.batch = np.asarray(delta), np.arange(len(rows))
        self.uses = []
        for ref in refs:
            i, j = (cols, rows) if ref.transposed else (rows, cols)
            side = "x" if ref is opt.input_weight else "h" if ref is opt.hidden_weight else "b"
            self.uses.append((side, i, j, side == "b" and ref.value(values).shape[-1] == 1))
        first = self.uses[0][1]
        # one pre-activation row per member (every use moves the same row), else no row patch
        self.row = first if all(np.array_equal(u[1], first) for u in self.uses) else None

    def part(self, start: int, stop: int) -> "Moves":
        """The moves of members start..stop−1 alone, numbered from 0 (a chunk of the batch)."""
        out = object.__new__(Moves)
        out.delta, out.batch = self.delta[start:stop], np.arange(stop - start)
        out.uses = [(side, i[start:stop], j[start:stop], column) for side, i, j, column in self.uses]
        out.row = None if self.row is None else self.row[start:stop]
        return out

    def hidden_only(self) -> bool:
        return all(side == "h" for side, *_ in self.uses)

    def terms(self, x, h_rows, sides: str = "xhb", scale=None):
        """[(i, add)]: the moved entry's own term in row i[b] of member b, δ·x[j], δ·h[j] or δ, for the uses on
        `sides`, times the row's scale where given (±1 or ½: exact); x (d, m) shared or (d, B, m); h_rows(j): row
        j[b] of member b's h, (B, m)."""
        out = []
        for side, i, j, column in self.uses:
            if side not in sides:
                continue
            delta = self.delta if scale is None else self.delta * scale[i]  # ±1 or ½: the same product
            if side == "x":
                add = delta[:, None] * (x[j] if x.ndim == 2 else x[j, self.batch])
            elif side == "h":
                add = delta[:, None] * h_rows(j)
            elif column:  # a column bias moves the whole row
                add = np.broadcast_to(delta[:, None], (len(i), x.shape[-1]))
            else:
                add = np.zeros((len(i), x.shape[-1]), delta.dtype)
                add[self.batch, j] = delta
            out.append((i, add))
        return out


class StepTerms:
    """The moved entry's own terms at each step of xs for members whose uses all move one row, i[b] = Moves.row[b],
    added to a contiguous target (rows, w, m) for members start..stop−1 (`part`): the x and bias sides (fixed by the
    step) summed once for every step and member, the h side per step, and one gather and add over target's rows seen
    flat. The same products as Moves.terms; only their order of summation differs (rounding). Its Python, not its
    arithmetic, is what a small batch pays, so it is set up once a batch."""

    def __init__(self, moves: Moves, xs, scale, sides: str = "xhb"):
        self.row = moves.row
        self.h = [(j, (moves.delta * scale[i])[:, None]) for side, i, j, _ in moves.uses if side == "h" and "h" in sides]
        fixed_sides = sides.replace("h", "")  # every use moves row moves.row: its x and bias terms simply add up
        fixed = [[add for _, add in moves.terms(x, None, fixed_sides, scale)] for x in xs]
        self.fixed = np.stack([sum(adds[1:], adds[0]) for adds in fixed]) if fixed and fixed[0] else None

    def part(self, start: int, stop: int):
        """add(target, t, h, rows=None): target (rows, w, m) += the terms of members start..stop−1 at step t, of those
        whose row lies in rows = (lo, hi) alone where given; h: their own h before the step (n, w, m), or a function
        of j giving row j[b] of member b's h, (w, m)."""
        w = stop - start
        members, row = np.arange(w), self.row[start:stop]
        index = row * w + members  # row i[b] of member b in target seen flat
        fixed = None if self.fixed is None else self.fixed[:, start:stop]
        h_terms = [(j[start:stop] * w + members, j[start:stop], delta[start:stop]) for j, delta in self.h]
        if fixed is None and not h_terms:
            return lambda target, t, h, rows=None: None

        masks = {}  # rows → which members' row lies in rows (None: all of them)

        def add(target, t: int, h, rows=None) -> None:
            if rows not in masks:
                inside = (row >= rows[0]) & (row < rows[1]) if rows else None
                masks[rows] = None if inside is None or inside.all() else inside if inside.any() else False
            inside = masks[rows]
            if inside is False:
                return
            total = None if fixed is None else fixed[t]
            for flat, j, delta in h_terms:
                got = h(j) if callable(h) else h.reshape(-1, h.shape[-1])[flat] if h.flags.c_contiguous else \
                    h[j, members]
                total = delta * got if total is None else total + delta * got
            if inside is None:
                target.reshape(-1, target.shape[-1])[index] += total  # target contiguous: the reshape is a view
            else:
                target.reshape(-1, target.shape[-1])[index[inside]] += total[inside]
        return add


def add_rows(target, offset: int, terms, batch) -> None:
    """target[i − offset, b] += add[b] for each term's rows i inside target's rows (offset ≤ i < offset + len)."""
    for i, add in terms:
        inside = (i >= offset) & (i < offset + target.shape[0])
        if inside.all():
            target[i - offset, batch] += add
        elif inside.any():
            target[i[inside] - offset, batch[inside]] += add[inside]


def shared_rows(h):
    """Row j[b] of member b's h, for h shared by every member."""
    return lambda j: h[j]


def patched_rows(h, k, hk):
    """Row j[b] of member b's h: the shared h with row k[b] replaced by hk[b]."""
    return lambda j: np.where((j == k)[:, None], hk, h[j])


def member_rows(h, batch):
    """Row j[b] of member b's h: h shared (k, m) or the members' own (k, B, m)."""
    return (lambda j: h[j]) if h.ndim == 2 else (lambda j: h[j, batch])


def patched_state(h, patch, B: int) -> np.ndarray:
    """h of every member, (n, B, m): the shared h with each member's patched row, if any."""
    if h.ndim == 3:
        return h
    out = np.repeat(h[:, None, :], B, axis=1).astype(np.result_type(h, *(() if patch is None else (patch[1],))),
                                                     copy=False)
    if patch is not None:
        out[patch[0], np.arange(B)] = patch[1]
    return out
