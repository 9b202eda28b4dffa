"""The gated recurrences' batched forward with one param entry moved per member (LSTM.moved, GRU.moved).

Member b moves entry (rows[b], cols[b]) of Wx, Wh or the bias by delta[b]. Until the move reaches the state every
member shares the base pass's h (and c): Wh moved while h is still 0 changes nothing (δ·h[j] = 0 exactly). The step
the move first reaches changes one pre-activation row per member, so only that hidden unit's G gates are evaluated
(a row patch of h and c, O(G·m) a member), in halved form (lstm_cell_, gru_cell_: the forward pass's values, as
halving is exact).

Both kinds go on chunk by chunk of members (_chunks, one loop; LSTMForm and GRUForm say what differs), each chunk
through every remaining step while its pre-activations and state stay in the core's cache. The first step meets Wh
as a rank-1 term, base + Wh[:, k]·Δh_k, written by one einsum (rank_one: no GEMM, no dense copy of h); every later
one is a GEMM over the chunk's columns into one buffer. The shared input side Wx x + b is tiled once a batch, a chunk
wide, and added contiguously (an LSTM's every row, a GRU's r and u rows; its n rows meet r·Wh_n h in the cell); each
member's own moved-entry terms are set up once a batch (moves.StepTerms; a GRU's Wh terms apart from its Wx and bias
terms, as r multiplies the one and not the other). The gates' σ runs as 1/(1 + exp(−z)) on negated rows (half a
tanh's cost): lstm_cell_exp on the i, f, o rows, c and h in place; gru_cell_chunk on the r and u rows,
r·Wh_n h = Wh_n h/E_r and h = n + (h_prev − n)/E_u. h_T is written member-major, (B, n, m), so the loss reads it
without copies. Complex members (the imaginary step) take halved rows and tanh (lstm_cell_, gru_cell_chunk's other
form), whose σ cannot overflow into NaN. Each member equals the forward pass on a moved copy of the param up to
rounding (tests/test_kinds_shortcuts.py: the dense route, the plain per-entry loop and plain numpy LSTM and GRU).
"""

from __future__ import annotations

import numpy as np

from .moves import Moves, StepTerms, add_rows, member_rows, patched_rows, patched_state, shared_rows

CHUNK_BYTES = 3 << 19  # 1.5 MiB a chunk of members (_chunks): inside this machine's 2 MiB L2 with room for x and Wh
CHUNKS = 8  # a chunk is at most an eighth of its batch, so a member's share of the chunk's arrays is at most an eighth
CHUNK_ROWS = 10  # what an LSTM chunk member's step works on, in rows of n: pre-activations, that step's tile (4n
# each), c, h (a GRU's: GRUForm.rows)


def rank_one(base, w, k, d, out):
    """out (rows, B, m) = base + w[:, k[b]]·d[b] for each member (w[:, b] where k is None: w gathered already): a
    patched row of h met by w, no GEMM; base (rows, m) shared, or tiled (rows, B, m), which adds contiguously (a
    broadcast add costs 3× as much, measured). One product an entry, as a broadcast multiply would take it; einsum
    writes it about a third faster (measured)."""
    np.einsum("rb,bj->rbj", w if k is None else w[:, k], d, out=out)
    out += base if base.ndim == 3 else base[:, None, :]
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


def lstm_cell_(pre, c_prev, n: int, c_out=None, h_out=None, spent: bool = False):
    """(h, c) of one LSTM step from its pre-activations (4n, …) with the i, f, o rows halved, overwritten; c and
    h written into c_out (which may be c_prev) and h_out where given (the same operations, in place).

    The forward pass's σ(z) = ½(1 + tanh(½z)); with ρ = 1 + tanh(½z) = 2σ, c = ½(ρ_f·c_prev + ρ_i·tanh g) and
    h = ½·ρ_o·tanh c. Halving is exact in floating point, so these are the forward pass's values to the last bit
    (c = σ_f·c_prev + σ_i·tanh g, h = σ_o·tanh c), four passes fewer a step. `spent`: lstm_cell_exp's (c is kept)."""
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


def lstm_form(n: int, dtype):
    """(the scale of each pre-activation row, the cell): real members negate the i, f, o rows for lstm_cell_exp;
    complex ones (the imaginary step) halve them for lstm_cell_, whose σ cannot overflow (a complex exp can)."""
    if np.issubdtype(dtype, np.complexfloating):
        return halves(4 * n, 3, n), lstm_cell_
    scale = np.ones(4 * n)
    scale[:3 * n] = -1.0
    return scale, lstm_cell_exp


def lstm_cell_exp(pre, c_prev, n: int, c_out=None, h_out=None, spent: bool = False):
    """(h, c) of one LSTM step from its pre-activations (4n, …) with the i, f, o rows negated, overwritten; c and h
    written into c_out (which may be c_prev) and h_out where given.

    E = 1 + exp(−z) = 1/σ(z), so c = c_prev/E_f + tanh g/E_i and h = tanh c/E_o: σ as exp, an add and a divide in
    place of tanh, an add and a multiply (exp costs half a tanh, measured), and no halving. These equal the forward
    pass's ½(1 + tanh(½z)) to rounding. exp(−z) overflows below z ≈ −709 (the perturber ignores the warning): E = inf
    and σ = 0, the forward pass's value there too."""
    e = pre[:3 * n]
    np.exp(e, out=e)
    e += 1.0
    g = np.tanh(pre[3 * n:], out=pre[3 * n:])
    g /= e[:n]
    c = np.divide(c_prev, e[n:2 * n], out=c_out)
    c += g
    if spent:  # c is read no more: tanh c over it, one pass into h_out (a strided h_out iterates slowly)
        return np.divide(np.tanh(c, out=c), e[2 * n:], out=h_out), None
    h = np.tanh(c, out=h_out)
    h /= e[2 * n:]
    return h, c


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
    """h_1..h_T of every member, each (B, n, m): the steps every member shares (and the row patch) over the whole
    batch, then the rest chunk by chunk (_chunks)."""
    n, B, keep = opt.hidden, len(moves.batch), opt.output == "all"
    form = LSTMForm(n, dtype)
    scale, cell = form.xscale, form.cell
    whs = wh * scale[:, None]
    st, hs, t = _State(h, c), [], 0
    for t, x in enumerate(xs):
        if x.ndim == 3 or st.patch is not None:  # every member's own pre-activations from here on
            break
        pre = (wx @ x + bias) * scale[:, None] + whs @ st.h  # the base pass's, shared
        if moves.hidden_only() and not np.any(st.h):  # δ·h[j] = 0: nothing moves yet
            st.h, st.c = cell(pre, st.c, n)
        elif moves.row is not None:  # the move reaches one unit: its 4 gates per member
            k = moves.row % n
            p = pre[gate_rows(k, 4, n)].astype(dtype)  # (4, B, m)
            add_rows(p, 0, [(i // n, a) for i, a in moves.terms(x, shared_rows(st.h), "xhb", scale)], moves.batch)
            hk, ck = cell(p, st.c[k], 1)
            st.h, st.c = cell(pre, st.c, n)
            st.patch = (k, hk[0], ck[0])
        else:
            break
        hs.append(st.out(B) if keep else None)
    else:
        return hs if keep else [st.out(B)]
    return _rest(hs, keep, form, opt, wx, wh, bias, xs[t:], moves, st, dtype)


def _rest(hs: list, keep: bool, form, opt, wx, wh, bias, xs, moves: Moves, st: _State, dtype) -> list:
    """The shared steps' h (output: all) and the chunks' (every step's, or h_T alone)."""
    return hs + _chunks(form, opt, wx, wh, bias, xs, moves, st, dtype) if keep else \
        _chunks(form, opt, wx, wh, bias, xs, moves, st, dtype)


def chunk_members(n: int, m: int, itemsize: int, rows: int = CHUNK_ROWS) -> int:
    """Members a chunk of _chunks takes: what its step works on, `rows` rows of n (an LSTM's pre-activations and
    input-side tile, 4n rows each, c and h), in CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (rows * n * m * itemsize))


def moved_numbers(n: int, m: int, steps: int, gates: int = 4) -> int:
    """Numbers one member of lstm_steps or gru_steps holds besides its output: the patch rows (G + 4 rows of m), the
    terms of every step (two arrays of steps rows of m), its column of Wh (G·n), and its share of a chunk (at most
    1/CHUNKS of the batch): what the form holds besides the tiles (an LSTM's pre-activations, c and h, 6n rows of m;
    a GRU's Wh h, h and the rank-1 step's base, 7n) and an input-side tile (G·n) for each step."""
    held = (LSTMForm if gates == LSTMForm.gates else GRUForm).held
    return (gates + 4 + 2 * steps) * m + gates * n + -(-(held + gates * steps) * n * m // CHUNKS)


def _own(shared, width: int, dtype, k=None, rows=None):
    """Each of `width` members' own copy of a shared state (n, m), (n, width, m) of dtype; row k[b] of member b
    replaced by rows[b] where given."""
    out = np.empty((shared.shape[0], width, shared.shape[1]), dtype)
    out[...] = shared[:, None, :]
    if k is not None:
        out[k, np.arange(width)] = rows
    return out


def _terms(moves: Moves, xs, scale, sides: str = "xhb"):
    """part(start, stop) → add(pre, t, h, rows=None): pre (rows, w, m) += the own terms on `sides` of members
    start..stop−1 at step t of xs, those whose row lies in rows = (lo, hi) alone where given (StepTerms where every
    use moves one row, else Moves.terms and add_rows); h as StepTerms.part takes it."""
    if moves.row is not None:
        return StepTerms(moves, xs, scale, sides).part

    def part(start, stop):
        chunk = moves.part(start, stop)
        steps = [x if x.ndim == 2 else x[:, start:stop] for x in xs]

        def add(pre, t, h, rows=None):
            lo, hi = rows or (0, pre.shape[0])
            h_rows = None if h is None else h if callable(h) else member_rows(h, chunk.batch)
            add_rows(pre[lo:hi], lo, chunk.terms(steps[t], h_rows, sides, scale), chunk.batch)
        return add
    return part


class LSTMForm:
    """What _chunks needs of an LSTM: its row scales (lstm_form), the rows a chunk member works on, its state (h, c),
    and its step: the whole input side and every own term added to the pre-activations, then lstm_cell_exp."""

    gates, rows, held = 4, CHUNK_ROWS, 6  # held: rows of n a member holds in a chunk besides the tiles

    def __init__(self, n: int, dtype):
        self.n = n
        self.xscale, self.cell = lstm_form(n, dtype)
        self.hscale, self.fold = self.xscale, 4 * n  # every row of the input side meets the pre-activations

    def terms(self, moves: Moves, xs):
        part = _terms(moves, xs, self.xscale)
        return lambda s, e: (part(s, e), None)

    def own(self, st: _State, w: int, dtype, s: int, e: int):
        """A chunk's (h, c): after the row patch h is not needed (the rank-1 step reads the patch), c is."""
        if st.patch is None:
            return _own(st.h, w, dtype), _own(st.c, w, dtype)
        k, _, ck = st.patch
        return None, _own(st.c, w, dtype, k[s:e], ck[s:e])

    def step(self, pre, side, state, adds, out, spent: bool):
        """(h, c) after one step: h in place where out is None, else into out (member-major)."""
        h, c = state
        return self.cell(pre, c, self.n, c, h if out is None else out, spent)


def _chunks(form, opt, wx, wh, bias, xs, moves: Moves, st: _State, dtype) -> list:
    """h of every member, (B, n, m), after each step of xs (output: all) or after the last alone: chunk by chunk of
    members, each through every step while its pre-activations and state stay in cache. The first step meets a row
    patch as a rank-1 term, else the GEMM; the shared input side Wx x + b is tiled once, a chunk wide, and its first
    `form.fold` rows added contiguously (for the rank-1 step, folded into its base); `form.step` does the rest."""
    n, B, m, last = opt.hidden, len(moves.batch), xs[0].shape[-1], len(xs) - 1
    fold, xscale = form.fold, form.xscale
    wh = wh * form.hscale[:, None]
    width = min(-(-B // CHUNKS), chunk_members(n, m, np.dtype(dtype).itemsize, form.rows))
    sides = [None if x.ndim == 3 else (wx @ x + bias) * xscale[:, None] for x in xs]
    if st.patch is not None:  # the rank-1 step: its base, and each member's column of Wh and change of h_k
        base = wh @ st.h
        base[:fold] += sides[0][:fold]
        base = np.repeat(base[:, None, :], width, axis=1)
        if fold == len(xscale):  # the whole input side is in the base (an LSTM): no tile of it
            sides[0] = None
        k, hk, _ = st.patch
        w_k, dh_k = wh[:, k], hk - st.h[k]
    tiles = [None if p is None else np.repeat(p[:, None, :], width, axis=1) for p in sides]
    outs = [np.empty((B, n, m), dtype) for _ in xs] if opt.output == "all" else [np.empty((B, n, m), dtype)]
    work = np.empty(form.gates * n * width * m, dtype)  # the pre-activations of a chunk, step after step
    terms = form.terms(moves, xs)
    for s in range(0, B, width):
        e = min(B, s + width)
        w, adds = e - s, terms(s, e)
        pre = work[:form.gates * n * w * m].reshape(form.gates * n, w, m)
        state = form.own(st, w, dtype, s, e)
        for t, x in enumerate(xs):
            if t == 0 and st.patch is not None:  # h differs from the shared h in unit k alone: base + Wh[:, k]·Δh_k
                side = None if tiles[0] is None else tiles[0][:, :w]
                rank_one(base[:, :w], w_k[:, s:e], None, dh_k[s:e], pre)
                adds[0](pre, 0, patched_rows(st.h, k[s:e], hk[s:e]))
            else:  # the members' own h: one GEMM over the chunk's columns
                side = tiles[t][:, :w] if tiles[t] is not None else \
                    _input_side(wx, x[:, s:e], bias, w, dtype) * xscale[:, None, None]
                wide(wh, state[0], w, dtype, pre)
                pre[:fold] += side[:fold]
                adds[0](pre, t, state[0])
            out = outs[t] if len(outs) > 1 else outs[0] if t == last else None
            state = form.step(pre, side, state, (adds[1], t), None if out is None else out[s:e].transpose(1, 0, 2),
                              t == last)
    return outs


class GRUForm:
    """What _chunks needs of a GRU: real members negate the r and u rows of Wh h and Wx x + b (gru_cell_chunk's σ
    through exp), complex ones halve them and all of Wh h (its tanh form); the r and u rows of the input side meet
    the pre-activations, the n rows the cell. A chunk member works on 7n rows: Wh h and the tile (3n each), h."""

    gates, rows, held = 3, 7, 7

    def __init__(self, n: int, dtype):
        self.n, self.fold = n, 2 * n
        self.exp = not np.issubdtype(dtype, np.complexfloating)
        self.xscale = np.ones(3 * n)
        self.xscale[:2 * n] = -1.0 if self.exp else 0.5
        self.hscale = self.xscale if self.exp else np.full(3 * n, 0.5)

    def terms(self, moves: Moves, xs):
        """The moved entry's Wh terms (into Wh h, before r multiplies it) and its Wx and bias terms, apart."""
        h, x = _terms(moves, xs, self.hscale, "h"), _terms(moves, xs, self.xscale, "xb")
        return lambda s, e: (h(s, e), x(s, e))

    def own(self, st: _State, w: int, dtype, s: int, e: int):
        """A chunk's (h, its buffer): each member's own h_prev, the patch written in."""
        h = _own(st.h, w, dtype) if st.patch is None else _own(st.h, w, dtype, st.patch[0][s:e], st.patch[1][s:e])
        return h, h

    def step(self, pre, side, state, adds, out, spent: bool):
        """(h, buffer) after one step: h in the buffer where out is None, else in out (member-major)."""
        add, t = adds
        n, h, buf = self.n, *state
        add(pre, t, None, (0, 2 * n))
        h = gru_cell_chunk(pre, side[2 * n:], h, n, buf, buf if out is None else out,
                           lambda p: add(p, t, None, (2 * n, 3 * n)), self.exp)
        return h, buf


def gru_cell_chunk(pre, ax_n, h_prev, n: int, buf, h_out, add_x, exp: bool):
    """h of one GRU step into h_out from pre (3n, …), overwritten: Wh h + Wx x + b in the r and u rows, negated
    (exp) or halved (else, with Wh_n h halved too), Wh_n h in the n rows; ax_n = Wx_n x + b_n; add_x(pre) adds the
    moved entry's own input-side terms to pre's n rows; buf (which may be h_prev) takes h_prev − n.

    exp: E = 1 + exp(−z) = 1/σ(z), r·Wh_n h = Wh_n h/E_r and h = n + (h_prev − n)/E_u, the forward pass's
    (1 − u)·n + u·h_prev to rounding, with exp over 2n rows in place of tanh (half its cost) and three passes fewer.
    Where exp(−z) overflows, E = inf: σ = 0, the forward pass's value too. Else ρ = 1 + tanh(½z) = 2σ(z): r·Wh_n h
    = ρ_r·(½Wh_n h) and h = n + ½ρ_u(h_prev − n) (a complex exp can overflow into NaN, a tanh not)."""
    g = pre[:2 * n]
    if exp:
        np.exp(g, out=g)
    else:
        np.tanh(g, out=g)
    g += 1.0
    t = pre[2 * n:]
    if exp:
        t /= g[:n]
    else:
        t *= g[:n]
    t += ax_n
    add_x(pre)
    np.tanh(t, out=t)
    d = np.subtract(h_prev, t, out=buf)
    if exp:
        d /= g[n:]
    else:
        d *= g[n:]
        d *= 0.5
    return np.add(d, t, out=h_out)


def gru_steps(opt, wx, wh, bias, xs, moves: Moves, h, dtype) -> list:
    """h_1..h_T of every member, each (B, n, m): the steps every member shares (and the row patch) over the whole
    batch, then the rest chunk by chunk (_chunks)."""
    n, B, batch = opt.hidden, len(moves.batch), moves.batch
    st, hs, keep, t = _State(h), [], opt.output == "all", 0
    xscale, hscale = halves(3 * n, 2, n), np.full(3 * n, 0.5)  # r and u rows of Wx x + b halved, all of Wh h
    whh = wh * 0.5
    for t, x in enumerate(xs):
        if x.ndim == 3 or st.patch is not None:  # every member's own pre-activations from here on
            break
        ax = (wx @ x + bias) * xscale[:, None]
        ah = whh @ st.h  # the base pass's hidden side, shared
        if moves.hidden_only() and not np.any(st.h):  # δ·h[j] = 0: nothing moves yet
            st.h = gru_cell_(ax, ah, st.h, n, [], batch)
        elif moves.row is not None:  # the move reaches one unit: its 3 gates per member
            k = moves.row % n
            rows = gate_rows(k, 3, n)
            axk, ahk = ax[rows].astype(dtype), ah[rows].astype(dtype)  # (3, B, m)
            hrows = shared_rows(st.h)
            add_rows(ahk, 0, [(i // n, a) for i, a in moves.terms(x, hrows, "h", hscale)], batch)
            x_terms = [(i // n, a) for i, a in moves.terms(x, hrows, "xb", xscale)]
            hk = gru_cell_(axk, ahk, st.h[k], 1, x_terms, batch)
            st.h, st.patch = gru_cell_(ax, ah, st.h, n, [], batch), (k, hk[0], None)
        else:
            break
        hs.append(st.out(B) if keep else None)
    else:
        return hs if keep else [st.out(B)]
    return _rest(hs, keep, GRUForm(n, dtype), opt, wx, wh, bias, xs[t:], moves, st, dtype)
