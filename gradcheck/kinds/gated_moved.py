"""The gated recurrences' batched forward with one param entry moved per member (LSTM.moved, GRU.moved).

Member b moves entry (rows[b], cols[b]) of Wx, Wh or the bias by delta[b]. Until the move reaches the state every
member shares the base pass's h (and c): Wh moved while h is still 0 changes nothing (δ·h[j] = 0 exactly). The step
the move first reaches changes one pre-activation row per member, so only that hidden unit's G gates are evaluated
(a row patch of h and c, O(G·m) a member). An LSTM's next step meets Wh as a rank-1 term, base + Wh[:, k]·Δh_k,
written by one einsum (rank_one: no GEMM, no dense copy of h); a GRU's takes the GEMM (its rank-1 form, built by
broadcasts, measured slower: benchmarks/results.md). From then on every member is dense: one GEMM over all members'
columns in a (rows, B, m) layout into one buffer reused step after step, the gates evaluated in place, and an LSTM's
c and h overwritten in place (h_T written member-major, (B, n, m), so the loss reads it without copies). The gates
run on halved pre-activations (lstm_cell_, gru_cell_): the forward pass's values, as halving is exact, with fewer
passes. Each member equals the forward pass on a moved copy of the param up to rounding
(tests/test_kinds_shortcuts.py).
"""

from __future__ import annotations

import numpy as np

from .moves import Moves, add_rows, member_rows, patched_rows, patched_state, shared_rows


def rank_one(base, w, k, d, out):
    """out (rows, B, m) = base (rows, m) + w[:, k[b]]·d[b] for each member: a patched row of h met by w, no GEMM.
    One product an entry, as a broadcast multiply would take it; einsum writes it about a third faster (measured)."""
    np.einsum("rb,bj->rbj", w[:, k], d, out=out)
    out += base[:, None, :]
    return out


def gate_rows(k, gates: int, n: int):
    """(G, B): the pre-activation rows of hidden unit k[b] in each of the G gate blocks."""
    return k[None, :] + n * np.arange(gates)[:, None]


def wide(w, h, B: int, dtype, out=None):
    """w @ h for every member, (rows, B, m): one GEMM over all members' columns; a shared h (k, m) once. Into
    out (rows, B, m) of dtype where given (a buffer reused step after step), else fresh."""
    m = h.shape[-1]
    if out is None:
        out = np.empty((w.shape[0], B, m), dtype)
    if h.ndim == 3:
        np.matmul(w, h.reshape(h.shape[0], B * m), out=out.reshape(w.shape[0], B * m))
    else:
        out[...] = (w @ h)[:, None, :]
    return out


def halves(rows: int, gates: int, n: int):
    """The scale of each pre-activation row: ½ for the first `gates` blocks of n rows (those σ reads), 1 below."""
    scale = np.ones(rows)
    scale[:gates * n] = 0.5
    return scale


def lstm_cell_(pre, c_prev, n: int, c_out=None, h_out=None):
    """(h, c) of one LSTM step from its pre-activations (4n, …) with the i, f, o rows halved, overwritten; c and
    h written into c_out (which may be c_prev) and h_out where given (the same operations, in place).

    The forward pass's σ(z) = ½(1 + tanh(½z)); with ρ = 1 + tanh(½z) = 2σ, c = ½(ρ_f·c_prev + ρ_i·tanh g) and
    h = ½·ρ_o·tanh c. Halving is exact in floating point, so these are the forward pass's values to the last bit
    (c = σ_f·c_prev + σ_i·tanh g, h = σ_o·tanh c), four passes fewer a step."""
    np.tanh(pre, out=pre)  # every gate's tanh in one pass
    s, g = pre[:3 * n], pre[3 * n:]
    s += 1.0
    c = np.multiply(s[n:2 * n], c_prev, out=c_out)
    g *= s[:n]
    c += g
    c *= 0.5
    h = np.tanh(c, out=h_out)
    h *= s[2 * n:]
    h *= 0.5
    return h, c


def gru_cell_(ax, ah, h_prev, n: int, x_terms, batch):
    """h of one GRU step from ah = ½·Wh h (3n, …), overwritten, and ax = Wx x + b with its r and u rows halved (the
    moved entry's input-side terms, x_terms, added where the forward pass adds Wx x + b).

    With ρ = 1 + tanh(½z) = 2σ(z): r·(Wh_n h) = ρ_r·(½Wh_n h), n = tanh(ax_n + that) and
    h = ½((2 − ρ_u)·n + ρ_u·h_prev). Halving is exact, so these are the forward pass's r, u, n and
    h = (1 − u)·n + u·h_prev to the last bit, three passes fewer a step."""
    s = ah[:2 * n]
    s += ax[:2 * n]
    add_rows(s, 0, x_terms, batch)
    np.tanh(s, out=s)
    s += 1.0
    t = ah[2 * n:]
    t *= s[:n]
    t += ax[2 * n:]
    add_rows(t, 2 * n, x_terms, batch)
    np.tanh(t, out=t)
    rho = s[n:]
    h = 2.0 - rho
    h *= t
    rho *= h_prev
    h += rho
    h *= 0.5
    return h


class _State:
    """h (and c) of every member: shared (n, m) arrays, plus a row patch (k, hk, ck), or dense (n, B, m)."""

    def __init__(self, h, c=None):
        self.h, self.c, self.patch = h, c, None

    def dense(self, B: int):
        """Every member's own h (and c), the patch written in."""
        if self.patch is not None:
            k, hk, ck = self.patch
            self.h = patched_state(self.h, (k, hk), B)
            self.c = None if self.c is None else patched_state(self.c, (k, ck), B)
            self.patch = None
        return self

    def out(self, B: int):
        """h of every member as (B, n, m)."""
        h = self.h if self.patch is None else patched_state(self.h, self.patch[:2], B)
        return np.broadcast_to(h[:, None, :], (h.shape[0], B, h.shape[1])).transpose(1, 0, 2) if h.ndim == 2 \
            else h.transpose(1, 0, 2)


def _input_side(wx, x, bias, B: int, dtype):
    """Wx x + b: (G·n, m) for a shared x, (G·n, B, m) for a moved one."""
    if x.ndim == 2:
        return wx @ x + bias
    return wide(wx, x, B, dtype) + (bias[:, None, :] if np.ndim(bias) == 2 else bias)


def lstm_steps(opt, wx, wh, bias, xs, moves: Moves, h, c, dtype) -> list:
    """h_1..h_T of every member, each (B, n, m)."""
    n, B, batch = opt.hidden, len(moves.batch), moves.batch
    st, hs, keep, buf = _State(h, c), [], opt.output == "all", None  # buf: the dense steps' pre-activations
    scale = halves(4 * n, 3, n)  # the i, f, o rows halved (lstm_cell_)
    wh = wh * scale[:, None]
    for t, x in enumerate(xs):
        px = _input_side(wx, x, bias, B, dtype) * (scale[:, None] if x.ndim == 2 else scale[:, None, None])
        if st.h.ndim == 2 and x.ndim == 2:
            pre = px + wh @ st.h  # the base pass's pre-activations, shared
            if st.patch is None and moves.hidden_only() and not np.any(st.h):  # δ·h[j] = 0: nothing moves yet
                st.h, st.c = lstm_cell_(pre, st.c, n)
                hs.append(st.out(B) if keep else None)
                continue
            if st.patch is None and moves.row is not None:  # the move reaches one unit: its 4 gates per member
                k = moves.row % n
                p = pre[gate_rows(k, 4, n)].astype(dtype)  # (4, B, m)
                add_rows(p, 0, [(i // n, a) for i, a in moves.terms(x, shared_rows(st.h), "xhb", scale)], batch)
                hk, ck = lstm_cell_(p, st.c[k], 1)
                st.h, st.c = lstm_cell_(pre, st.c, n)
                st.patch = (k, hk[0], ck[0])
                hs.append(st.out(B) if keep else None)
                continue
            if st.patch is not None:  # the patched row meets Wh: a rank-1 change of every row, no GEMM
                k, hk, ck = st.patch
                if buf is None:
                    buf = np.empty((4 * n, B, x.shape[-1]), dtype)
                pre = rank_one(pre, wh, k, hk - st.h[k], buf)
                add_rows(pre, 0, moves.terms(x, patched_rows(st.h, k, hk), "xhb", scale), batch)
                st.c, st.patch, h_prev = patched_state(st.c, (k, ck), B), None, None
            else:
                pre = None
        else:
            pre = None
        if pre is None:
            h_prev = st.dense(B).h
            buf = pre = wide(wh, h_prev, B, dtype, buf)  # one buffer for every dense step
            pre += px if px.ndim == 3 else px[:, None, :]
            h_rows = member_rows(h_prev, batch)
            add_rows(pre, 0, moves.terms(x, h_rows, "xhb", scale), batch)
        # c and h in place once they are the members' own: h_prev is spent (its rows were read just above) unless
        # kept for output: all
        own_c = st.c.ndim == 3 and st.c.dtype == pre.dtype
        own_h = h_prev is not None and h_prev.ndim == 3 and h_prev.dtype == pre.dtype and not keep
        h_out = h_prev if own_h else None
        if t == len(xs) - 1 and not keep:  # h_T member-major, (B, n, m) contiguous: the loss reads it without copies
            h_out = np.empty((B, n, x.shape[-1]), pre.dtype).transpose(1, 0, 2)
        st.h, st.c = lstm_cell_(pre, st.c if st.c.ndim == 3 else st.c[:, None, :], n, st.c if own_c else None, h_out)
        hs.append(st.out(B) if keep else None)
    return hs if keep else [st.out(B)]  # output: last, h_T alone


def gru_steps(opt, wx, wh, bias, xs, moves: Moves, h, dtype) -> list:
    """h_1..h_T of every member, each (B, n, m)."""
    n, B, batch = opt.hidden, len(moves.batch), moves.batch
    st, hs, keep = _State(h), [], opt.output == "all"
    xscale, hscale = halves(3 * n, 2, n), np.full(3 * n, 0.5)  # r and u rows of Wx x + b halved, all of Wh h
    wh = wh * 0.5
    for x in xs:
        ax = _input_side(wx, x, bias, B, dtype) * (xscale[:, None] if x.ndim == 2 else xscale[:, None, None])
        if st.h.ndim == 2 and x.ndim == 2:
            ah = wh @ st.h  # the base pass's hidden side, shared
            if st.patch is None and moves.hidden_only() and not np.any(st.h):  # δ·h[j] = 0: nothing moves yet
                st.h = gru_cell_(ax, ah, st.h, n, [], batch)
                hs.append(st.out(B) if keep else None)
                continue
            if st.patch is None and moves.row is not None:  # the move reaches one unit: its 3 gates per member
                k = moves.row % n
                rows = gate_rows(k, 3, n)
                axk, ahk = ax[rows].astype(dtype), ah[rows].astype(dtype)  # (3, B, m)
                hrows = shared_rows(st.h)
                add_rows(ahk, 0, [(i // n, a) for i, a in moves.terms(x, hrows, "h", hscale)], batch)
                x_terms = [(i // n, a) for i, a in moves.terms(x, hrows, "xb", xscale)]
                hk = gru_cell_(axk, ahk, st.h[k], 1, x_terms, batch)
                st.h, st.patch = gru_cell_(ax, ah, st.h, n, [], batch), (k, hk[0], None)
                hs.append(st.out(B) if keep else None)
                continue
        full = wide(wh, st.dense(B).h, B, dtype)
        h_prev = st.h
        h_rows = member_rows(h_prev, batch)
        add_rows(full, 0, moves.terms(x, h_rows, "h", hscale), batch)
        st.h = gru_cell_(ax if ax.ndim == 3 else ax[:, None, :], full, h_prev if h_prev.ndim == 3 else
                         h_prev[:, None, :], n, moves.terms(x, h_rows, "xb", xscale), batch)
        hs.append(st.out(B) if keep else None)
    return hs if keep else [st.out(B)]  # output: last, h_T alone
