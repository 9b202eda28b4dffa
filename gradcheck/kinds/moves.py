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

    def hidden_only(self) -> bool:
        return all(side == "h" for side, *_ in self.uses)

    def terms(self, x, h_rows, sides: str = "xhb", scale=None):
        """[(i, add)]: the moved entry's own term in row i[b] of member b, δ·x[j], δ·h[j] or δ, for the uses on
        `sides`, times the row's scale where given (½ or 1, exact); x (d, m) shared or (d, B, m); h_rows(j): row
        j[b] of member b's h, (B, m)."""
        out = []
        for side, i, j, column in self.uses:
            if side not in sides:
                continue
            if side == "x":
                add = self.delta[:, None] * (x[j] if x.ndim == 2 else x[j, self.batch])
            elif side == "h":
                add = self.delta[:, None] * h_rows(j)
            elif column:  # a column bias moves the whole row
                add = np.broadcast_to(self.delta[:, None], (len(i), x.shape[-1]))
            else:
                add = np.zeros((len(i), x.shape[-1]), self.delta.dtype)
                add[self.batch, j] = self.delta
            out.append((i, add if scale is None else add * scale[i][:, None]))
        return out


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
