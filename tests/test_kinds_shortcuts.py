"""The new kinds' exact shortcuts (a norm's gain and bias rows, a row carried through batch norm and dropout, a row spread
over layer norm's statistics, attention's value rows and moved projections,
an embedding's table rows, the gated recurrences' moved weights) equal the dense route: every layer's own
batched forward on stacked copies of the param, and the plain per-entry loop, for real and imaginary steps."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck import losses, numeric
from gradcheck.perturb import Perturber
from gradcheck.rowpatch import term_uses
from test_numeric import assert_shortcut_exact

DECLS = """\
seed: 4
params:
  W: {shape: [4, 3], std: 0.6}
  g: {shape: [4, 1], mean: 1, std: 0.3}
  gm: {shape: [4, 5], mean: 1, std: 0.3}
  bt: {shape: [1, 4], std: 0.3}
  Wq: {shape: [2, 4], std: 0.6}
  Wk: {shape: [2, 4], std: 0.6}
  Wv: {shape: [4, 4], std: 0.6}
  E: {shape: [2, 5], std: 0.6}
  Wx: {shape: [8, 2], std: 0.6}
  Wh: {shape: [8, 2], std: 0.6}
  Gx: {shape: [6, 2], std: 0.6}
  Gh: {shape: [6, 2], std: 0.6}
  gb: {shape: [6, 1], std: 0.3}
  lb: {shape: [8, 5], std: 0.3}
  lb1: {shape: [8, 1], std: 0.3}
  h0: {shape: [2, 1], std: 0.5}
  c0: {shape: [2, 5], std: 0.5}
  gbf: {shape: [6, 5], std: 0.3}
  Wt: {shape: [2, 8], std: 0.6}
  P4: {shape: [4, 4], std: 0.6}
  Wh1: {shape: [4, 1], std: 0.6}
data:
  X8: {shape: [8, 5]}
  Y8: {shape: [8, 5]}
  X: {shape: [3, 5]}
  X4: {shape: [4, 5]}
  Y: {shape: [4, 5]}
  P2: {shape: [2, 5], init: onehot}
  T: [[0, 4, 4, 1, 2], [3, 3, 0, 4, 1]]
  X12: {shape: [12, 5]}
  X84: {shape: [8, 4]}
"""

CASES = {
    "layernorm_column_gain": ("input: X\nlayers: [{weight: W}, {layernorm: {gain: g, bias: bt.T}, activation: tanh}]\n"
                              "objective: {loss: squared_error, target: Y}", ("g", "bt", "W")),
    "layernorm_spreads_a_row": ("input: X\nlayers: [{weight: W, activation: tanh}, {layernorm: {gain: gm, bias: g}, "
                                "activation: sigmoid}, {weight: Wk}]\nobjective: sum", ("W",)),
    "layernorm_spreads_a_row_no_gain": ("input: X\nlayers: [{weight: W}, {layernorm: {eps: 0.5}, activation: softmax}]\n"
                                        "objective: {loss: cross_entropy, target: Y}", ("W",)),
    "batchnorm_carries_a_row": ("input: X\nlayers: [{weight: W, activation: tanh}, {batchnorm: {gain: gm, bias: g}, "
                                "activation: sigmoid}, {weight: Wk}]\nobjective: sum", ("W",)),
    "dropout_carries_a_row": ("input: X\nlayers: [{weight: W, activation: tanh}, {dropout: {rate: 0.5}}, "
                              "{weight: Wq, activation: softmax}]\nobjective: {loss: cross_entropy, target: P2}", ("W",)),
    "batchnorm_full_gain": ("input: X\nlayers: [{weight: W}, {batchnorm: {gain: gm, bias: g}, activation: softmax}]\n"
                            "objective: {loss: cross_entropy, target: Y}", ("gm", "g")),
    "attention_projections": ("input: X4\nlayers: [{attention: {query: Wq, key: Wk, value: Wv, causal: true}, "
                              "activation: tanh}]\nobjective: {loss: squared_error, target: Y}", ("Wq", "Wk", "Wv")),
    "attention_tied_query_key": ("input: X4\nlayers: [{attention: {query: Wq, key: Wq, value: Wv.T}}]\n"
                                 "objective: {loss: squared_error, target: Y}", ("Wq", "Wv")),
    "attention_after_its_value": ("input: X4\nlayers: [{weight: Wv, activation: tanh}, "
                                  "{attention: {query: Wq, key: Wk, value: Wv}}]\nobjective: sum", ("Wv",)),
    "embedding_table": ("input: T\nlayers: [{embedding: {table: E}, activation: tanh}, {weight: Wk}]\nobjective: sum",
                        ("E",)),
    "lstm_weights": ("input: X4\nlayers: [{lstm: {input_weight: Wx, hidden_weight: Wh, bias: lb, steps: 2, "
                     "output: all}}]\nobjective: {loss: squared_error, target: Y}", ("Wx", "Wh", "lb")),
    "gru_weights": ("input: X4\nlayers: [{gru: {input_weight: Gx, hidden_weight: Gh, bias: gb, steps: 2}, "
                    "activation: sigmoid}]\nobjective: sum", ("Gx", "Gh", "gb")),
    # four steps: Wh waits a step (h_0 = 0), then a row patch, a rank-1 step and dense steps (gated_moved.py)
    "lstm_four_steps_all": ("input: X8\nlayers: [{lstm: {input_weight: Wx, hidden_weight: Wh, bias: lb, steps: 4, "
                            "output: all}}]\nobjective: {loss: squared_error, target: Y8}", ("Wx", "Wh", "lb")),
    "lstm_four_steps_states": ("input: X8\nlayers: [{lstm: {input_weight: Wx, hidden_weight: Wt.T, bias: lb1, "
                               "steps: 4, init: h0, cell_init: c0}, activation: tanh}]\nobjective: sum",
                               ("Wx", "Wt", "lb1", "h0", "c0")),
    # six steps from h_0, c_0 ≠ 0: Wh's row patch at step 1, the rank-1 step, then dense steps with c and h in
    # place and h_T written member-major (gated_moved.lstm_steps)
    "lstm_six_steps_last": ("input: X12\nlayers: [{lstm: {input_weight: Wx, hidden_weight: Wh, bias: lb1, steps: 6, "
                            "init: h0, cell_init: c0}}]\nobjective: {loss: squared_error, target: P2}",
                            ("Wx", "Wh", "lb1")),
    "lstm_tied": ("input: X8\nlayers: [{lstm: {input_weight: Wh, hidden_weight: Wh, bias: lb1, steps: 4}}]\n"
                  "objective: sum", ("Wh", "lb1")),
    "gru_four_steps_all": ("input: X8\nlayers: [{gru: {input_weight: Gx, hidden_weight: Gh, bias: gb, steps: 4, "
                           "init: h0, output: all}, activation: tanh}]\nobjective: {loss: squared_error, target: Y8}",
                           ("Gx", "Gh", "gb", "h0")),
    "gru_full_bias": ("input: X8\nlayers: [{gru: {input_weight: Gx, hidden_weight: Gh, bias: gbf, steps: 4}}]\n"
                      "objective: sum", ("Gx", "Gh", "gbf")),
    "gru_tied": ("input: X8\nlayers: [{gru: {input_weight: Gh, hidden_weight: Gh, bias: gb, steps: 4}, "
                 "activation: sigmoid}]\nobjective: sum", ("Gh", "gb")),
    "gru_twice": ("input: X4\nlayers: [{gru: {input_weight: Gx, hidden_weight: Gh, bias: gb, steps: 2, output: all}},"
                  " {gru: {input_weight: Gh, hidden_weight: Gh, bias: gb, steps: 2}}]\nobjective: sum",
                  ("Gx", "Gh", "gb")),
    # P4 as the input weight (row i) and, transposed, as a full bias (row j): no one row a member, so no row patch;
    # every member dense from the first step, its terms added use by use (gated_moved._terms)
    "lstm_two_rows_a_member": ("input: X84\nlayers: [{lstm: {input_weight: P4, hidden_weight: Wh1, bias: P4.T, "
                               "steps: 2}}]\nobjective: sum", ("P4", "Wh1")),
    "lstm_twice": ("input: X4\nlayers: [{lstm: {input_weight: Wx, hidden_weight: Wh, bias: lb1, steps: 2, output: all}}"
                   ", {lstm: {input_weight: Wh, hidden_weight: Wh, bias: lb1, steps: 2}}]\nobjective: sum",
                   ("Wx", "Wh", "lb1")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_kind_shortcut_equals_the_dense_route(case):
    text, names = CASES[case]
    spec = gradcheck.loads(DECLS + text)
    for name in names:
        assert any(term_uses(t, name) for t in spec.model.terms), name
        assert_shortcut_exact(spec, name, case)


# ------------------------------------------------------------------ plain numpy oracles (no engine code)

def _layernorm_net(p, d, gain_key, bias_key, eps, after, f=np.tanh):
    """J of dense → layer norm (tanh, or f) → [dense] → squared error or sum, written out in numpy (complex-safe)."""
    h = p["W"] @ d["X"]
    c = h - h.mean(axis=0, keepdims=True)
    xh = c / np.sqrt((c * c).mean(axis=0, keepdims=True) + eps)
    z = xh * (1.0 if gain_key is None else d[gain_key]) + (0.0 if bias_key is None else d[bias_key])
    a = f(z)
    if after:
        return np.sum(d["U"] @ a)
    return 0.5 * np.sum((a - d["Y"]) ** 2)


def _attention_net(p, d, causal, activation, tied):
    """J of single-head attention (softmax over the keys of each query column), then squared error."""
    X = d["X"]
    q = p["Wq"] @ X
    k = (p["Wq"] if tied else p["Wk"]) @ X
    v = p["Wv"] @ X
    s = k.T @ q / np.sqrt(q.shape[0])
    t = s.shape[0]
    allowed = np.arange(t)[:, None] <= np.arange(t)[None, :] if causal else np.ones((t, t), dtype=bool)
    top = np.max(np.where(allowed, s.real, -np.inf), axis=0, keepdims=True)
    e = np.exp(np.where(allowed, s - top, 0.0)) * allowed
    z = v @ (e / e.sum(axis=0, keepdims=True))
    a = np.tanh(z) if activation == "tanh" else z
    return 0.5 * np.sum((a - d["Y"]) ** 2)


def _sigmoid(z):
    with np.errstate(over="ignore"):  # exp(−z) = inf at z ≪ 0: σ = 0
        return 1.0 / (1.0 + np.exp(-z))


def _lstm_net(p, d, steps, output, states):
    """J of one LSTM layer (gates [i; f; o; g], σ as 1/(1 + e^−z)) over `steps`, then squared error, in numpy."""
    X, n = d["XL"], p["LWh"].shape[1]
    D = X.shape[0] // steps
    h = d["h0"] + 0 * X[:n] if states else 0 * X[:n]
    c = d["c0"] + 0 * X[:n] if states else 0 * X[:n]
    hs = []
    for t in range(steps):
        G = p["LWx"] @ X[t * D:(t + 1) * D] + p["LWh"] @ h + p["Lb"]
        c = _sigmoid(G[n:2 * n]) * c + _sigmoid(G[:n]) * np.tanh(G[3 * n:])
        h = _sigmoid(G[2 * n:3 * n]) * np.tanh(c)
        hs.append(h)
    a = np.concatenate(hs) if output == "all" else h
    return 0.5 * np.sum((a - d["YL" if output == "all" else "YL3"]) ** 2)


def _gru_net(p, d, steps, output, states):
    """J of one GRU layer (gates [r; u; n], σ as 1/(1 + e^−z), the hidden-side bias zero) over `steps`, then squared
    error, in numpy."""
    X, n = d["XL"], p["GWh"].shape[1]
    D = X.shape[0] // steps
    h = d["h0"] + 0 * X[:n] if states else 0 * X[:n]
    hs = []
    for t in range(steps):
        ax, ah = p["GWx"] @ X[t * D:(t + 1) * D] + p["Gb"], p["GWh"] @ h
        r, u = _sigmoid(ax[:n] + ah[:n]), _sigmoid(ax[n:2 * n] + ah[n:2 * n])
        h = (1 - u) * np.tanh(ax[2 * n:] + r * ah[2 * n:]) + u * h
        hs.append(h)
    a = np.concatenate(hs) if output == "all" else h
    return 0.5 * np.sum((a - d["YL" if output == "all" else "YL3"]) ** 2)


ORACLE_DECLS = """\
seed: 11
params:
  W: {shape: [5, 4], std: 0.7}
  Wq: {shape: [3, 5], std: 0.8}
  Wk: {shape: [3, 5], std: 0.8}
  Wv: {shape: [5, 5], std: 0.6}
data:
  X: {shape: [4, 6]}
  X5: {shape: [5, 6]}
  Y: {shape: [5, 6], std: 0.5}
  U: {shape: [2, 5]}
  g: {shape: [5, 1], mean: 1, std: 0.3}
  gm: {shape: [5, 6], mean: 1, std: 0.3}
  bt: {shape: [1, 5], std: 0.3}
  LWx: {shape: [12, 2], std: 0.7}
  LWh: {shape: [12, 3], std: 0.7}
  Lb: {shape: [12, 1], std: 0.3}
  XL: {shape: [8, 6]}
  YL: {shape: [12, 6], std: 0.5}
  YL3: {shape: [3, 6], std: 0.5}
  h0: {shape: [3, 6], std: 0.5}
  c0: {shape: [3, 1], std: 0.5}
  GWx: {shape: [9, 2], std: 0.7}
  GWh: {shape: [9, 3], std: 0.7}
  Gb: {shape: [9, 1], std: 0.3}
"""

ORACLES = {  # name -> (layers and objective, the param, the oracle J(params, data))
    "layernorm_column_gain": (
        "input: X\nlayers: [{weight: W}, {layernorm: {gain: g, bias: bt.T, eps: 1e-5}, activation: tanh}]\n"
        "objective: {loss: squared_error, target: Y}", "W",
        lambda p, d: _layernorm_net(p, {**d, "btT": d["bt"].T}, "g", "btT", 1e-5, False)),
    "layernorm_full_gain_then_dense": (
        "input: X\nlayers: [{weight: W}, {layernorm: {gain: gm, eps: 0.3}, activation: tanh}, {weight: U}]\n"
        "objective: sum", "W", lambda p, d: _layernorm_net(p, d, "gm", None, 0.3, True)),
    "layernorm_plain": (
        "input: X\nlayers: [{weight: W}, {layernorm: {}, activation: tanh}]\n"
        "objective: {loss: squared_error, target: Y}", "W", lambda p, d: _layernorm_net(p, d, None, None, 1e-5, False)),
    **{f"attention_{role}_{'causal' if causal else 'full'}_{act}": (
        f"input: X5\nlayers: [{{attention: {{query: Wq, key: Wk, value: Wv, causal: {str(causal).lower()}}}, "
        f"activation: {act}}}]\nobjective: {{loss: squared_error, target: Y}}", role,
        lambda p, d, causal=causal, act=act: _attention_net(p, {**d, "X": d["X5"]}, causal, act, False))
       for role in ("Wq", "Wk") for causal in (True, False) for act in ("identity", "tanh")},
    # the LSTM's moved path: shared steps, the row patch, the rank-1 step, then chunks of members (at most an eighth
    # of a batch: several here) through the dense steps; δ = 2000 saturates σ (exp(−z) overflows)
    **{f"lstm_{role}_{output}{'_states' if states else ''}": (
        f"input: XL\nlayers: [{{lstm: {{input_weight: LWx, hidden_weight: LWh, bias: Lb, steps: 4, output: {output}"
        f"{', init: h0, cell_init: c0' if states else ''}}}}}]\n"
        f"objective: {{loss: squared_error, target: {'YL' if output == 'all' else 'YL3'}}}", role,
        lambda p, d, output=output, states=states: _lstm_net(p, d, 4, output, states))
       for role in ("LWx", "LWh", "Lb") for output in ("last", "all") for states in (False, True)},
    # the GRU's the same way (gated_moved.GRUForm): σ through exp on the r and u rows, r·Wh_n h and the input side's
    # n rows apart, the imaginary step's halved rows
    **{f"gru_{role}_{output}{'_states' if states else ''}": (
        f"input: XL\nlayers: [{{gru: {{input_weight: GWx, hidden_weight: GWh, bias: Gb, steps: 4, output: {output}"
        f"{', init: h0' if states else ''}}}}}]\n"
        f"objective: {{loss: squared_error, target: {'YL' if output == 'all' else 'YL3'}}}", role,
        lambda p, d, output=output, states=states: _gru_net(p, d, 4, output, states))
       for role in ("GWx", "GWh", "Gb") for output in ("last", "all") for states in (False, True)},
}


def _oracle_changes(oracle, values, name, delta):
    """J(θ + δ e_k) − J(θ) for every entry k (an imaginary δ: the imaginary part of J(θ + δ e_k)), by the oracle."""
    params = {k: np.array(v, dtype=complex if np.iscomplexobj(delta) else float) for k, v in values.items()}
    base = oracle(params, params)
    out = []
    for k in range(params[name].size):
        moved = params[name].copy()
        moved.flat[k] += delta
        out.append(oracle({**params, name: moved}, params) - (0 if np.iscomplexobj(delta) else base))
    return np.array(out), abs(base)


@pytest.mark.parametrize("case", sorted(ORACLES))
def test_new_shortcuts_equal_a_plain_numpy_oracle(case):
    """Layer norm's spread rows (one product over the columns), squared error's Δa·(R + ½Δa), attention's reweighted
    scores (and its plain softmax for a step too large to reweight), the LSTM's chunks, against the network written
    out in numpy."""
    _assert_equals_oracle(case)


@pytest.mark.parametrize("case", ["lstm_LWh_last", "lstm_LWx_all_states", "gru_GWh_all", "gru_GWx_last_states",
                                  "gru_Gb_last"])
def test_chunks_of_one_member_equal_the_oracle(case, monkeypatch):
    """Chunks as narrow as the bytes allow (one member each), not only an eighth of the batch."""
    from gradcheck.kinds import gated_moved
    monkeypatch.setattr(gated_moved, "CHUNK_BYTES", 1)
    assert gated_moved.chunk_members(3, 6, 8) == 1 and gated_moved.chunk_members(3, 6, 8, 7) == 1
    _assert_equals_oracle(case)


def _assert_equals_oracle(case):
    text, name, oracle = ORACLES[case]
    spec = gradcheck.loads(ORACLE_DECLS + text)
    perturber = Perturber(spec.model, dict(spec.values), name)
    n = spec.values[name].size
    for delta in (1e-3, -2e-5, 1e-20j, 2000.0):
        got, _, size = perturber(np.arange(n), np.full(n, delta))
        want, scale = _oracle_changes(oracle, spec.values, name, delta)
        if np.iscomplexobj(delta):
            np.testing.assert_allclose(got.imag if np.iscomplexobj(got) else got, want.imag, rtol=1e-12,
                                       atol=1e-12 * scale * abs(delta))
        else:
            bound = np.maximum(1e-12 * np.abs(want), 2 * numeric.ROUNDING * (size + scale))
            assert np.all(np.abs(got - want) <= bound), (delta, np.max(np.abs(got - want) / bound))


@pytest.mark.parametrize("activation", ["tanh", "abs", "relu", "sigmoid"])
def test_layer_norm_spread_to_the_loss_in_chunks(monkeypatch, activation):
    """spread_tail's route (layer norm as the last layer, an elementwise activation, squared error), in chunks of three
    variants, gives every variant the kink flag (abs crosses 0 at the large step) of one chunk of the whole batch, its
    ΔJ and size to the rounding of a sum, and ΔJ equals the network written out in numpy."""
    import gradcheck.perturb as perturb
    from gradcheck import spread_tail
    text = (f"input: X\nlayers: [{{weight: W}}, {{layernorm: {{gain: g, bias: bt.T}}, activation: {activation}}}]\n"
            "objective: {loss: squared_error, target: Y}")
    spec = gradcheck.loads(ORACLE_DECLS + text)
    f = {"tanh": np.tanh, "abs": np.abs, "relu": lambda z: np.maximum(z, 0.0),
         "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z))}[activation]  # relu, sigmoid: not ufuncs, activated by copy
    oracle = lambda p, d: _layernorm_net(p, {**d, "btT": d["bt"].T}, "g", "btT", 1e-5, False, f)  # noqa: E731
    calls, crossed = [], []
    monkeypatch.setattr(perturb, "spread_to_loss", lambda *a: calls.append(1) or spread_tail.spread_to_loss(*a))
    n = spec.values["W"].size
    for delta in (1e-3, -2e-5, 2000.0):
        monkeypatch.setattr(spread_tail, "CHUNK_BYTES", 10**9)
        whole = Perturber(spec.model, dict(spec.values), "W")(np.arange(n), np.full(n, delta))
        monkeypatch.setattr(spread_tail, "CHUNK_BYTES", 3 * 8 * 30)  # three variants of the 5 × 6 output a chunk
        chunks = Perturber(spec.model, dict(spec.values), "W")(np.arange(n), np.full(n, delta))
        assert np.array_equal(chunks[1], whole[1])
        crossed.append(int(chunks[1].sum()))
        np.testing.assert_allclose(chunks[2], whole[2], rtol=1e-14)
        assert np.all(np.abs(chunks[0] - whole[0]) <= numeric.ROUNDING * whole[2])  # sums blocked otherwise, no more
        want, scale = _oracle_changes(oracle, spec.values, "W", delta)
        bound = np.maximum(1e-12 * np.abs(want), 2 * numeric.ROUNDING * (chunks[2] + scale))
        assert np.all(np.abs(chunks[0] - want) <= bound), (delta, np.max(np.abs(chunks[0] - want) / bound))
    assert len(calls) == 6
    if activation in ("abs", "relu"):  # the large step crosses kinks, the small ones not all of them
        assert crossed[2] > 0 and crossed[1] < n


@pytest.mark.parametrize("layout", [(0, 1, 2), (2, 0, 1), (1, 0, 2), (2, 1, 0)])
def test_squared_error_dense_equals_both_losses_summed(layout):
    """The dense moved a in any memory order (spread_rows leaves (m, B, n), attention (n, B, m)): Σ ΔL and the sizes
    equal ½Σ(new − y)² − ½Σ(a − y)² and Σ|L(new)| + |L(old)| entry by entry, and `new` is only overwritten."""
    rng = np.random.default_rng(3)
    a, y = rng.standard_normal((4, 7)), rng.standard_normal((4, 7))
    shape = (5, 4, 7)
    memory = rng.standard_normal(tuple(shape[k] for k in layout))
    new = memory.transpose(np.argsort(layout)) * 1e-3 + a  # (5, 4, 7), its memory in `layout` order
    new = np.ascontiguousarray(new.transpose(layout)).transpose(np.argsort(layout))
    after, before = 0.5 * (new - y) ** 2, 0.5 * (a - y) ** 2
    want = (after - before).reshape(5, -1).sum(axis=1)
    want_size = (after + before).reshape(5, -1).sum(axis=1)
    change, size = losses.LOSSES["squared_error"].dense(a, y, new.copy())
    np.testing.assert_allclose(change, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(size, want_size, rtol=1e-12)
    readonly = np.broadcast_to(new[:1], new.shape)
    change, _ = losses.LOSSES["squared_error"].dense(a, y, readonly)
    np.testing.assert_allclose(change, np.repeat(want[:1], 5), rtol=1e-12, atol=1e-15)


def test_lstm_cell_exp_equals_the_plain_formulas():
    """lstm_cell_exp on the i, f, o rows negated equals c = σ(f)c + σ(i)tanh g, h = σ(o)tanh c with σ = ½(1 + tanh ½z)
    to rounding, fresh, in place (c into c_prev, h member-major) and with c spent; σ = 0 where exp(−z) overflows."""
    from gradcheck.kinds.gated_moved import lstm_cell_exp, lstm_form
    rng = np.random.default_rng(1)
    n, B, m = 3, 4, 5
    z, c = rng.standard_normal((4 * n, B, m)) * 3, rng.standard_normal((n, B, m))
    z[0, 0, 0], z[n + 1, 1, 2], z[2 * n, 2, 3] = -1000.0, -800.0, -750.0  # exp(−z) = inf: σ(i), σ(f), σ(o) = 0
    s = [0.5 * (1 + np.tanh(0.5 * z[k * n:(k + 1) * n])) for k in range(3)]
    c_want = s[1] * c + s[0] * np.tanh(z[3 * n:])
    h_want = s[2] * np.tanh(c_want)
    scale, cell = lstm_form(n, np.float64)
    assert cell is lstm_cell_exp and np.array_equal(scale, np.repeat([-1.0, -1.0, -1.0, 1.0], n))
    pre = z * scale[:, None, None]
    with np.errstate(over="ignore"):
        h, c_got = lstm_cell_exp(pre.copy(), c.copy(), n)
        c_in, h_out = c.copy(), np.empty((B, n, m)).transpose(1, 0, 2)
        h_in, c_in_got = lstm_cell_exp(pre.copy(), c_in, n, c_in, h_out)
        h_spent, c_spent = lstm_cell_exp(pre.copy(), c.copy(), n, None, np.empty((B, n, m)).transpose(1, 0, 2), True)
    assert h_in is h_out and c_in_got is c_in and c_spent is None
    for got in (h, h_in, h_spent):
        np.testing.assert_allclose(got, h_want, rtol=1e-14, atol=1e-15)
    for got in (c_got, c_in_got):
        np.testing.assert_allclose(got, c_want, rtol=1e-14, atol=1e-15)
    assert h[0, 2, 3] == h_want[0, 2, 3] == 0.0  # σ(o) = 0: tanh c / inf


def test_gru_cell_chunk_equals_the_plain_formulas():
    """gru_cell_chunk, real (r and u rows negated, σ through exp) and complex (halved, tanh), equals r = σ(z_r),
    u = σ(z_u), n = tanh(ax_n + r·Wh_n h), h = (1 − u)·n + u·h_prev with σ = ½(1 + tanh ½z) to rounding, into a
    fresh array, in place (h_prev as the buffer and the output) and member-major; where exp(−z) overflows σ = 0
    (r·Wh_n h = 0, h = n)."""
    from gradcheck.kinds.gated_moved import GRUForm, gru_cell_chunk
    rng = np.random.default_rng(4)
    n, B, m = 3, 4, 5
    ah, ax, h_prev = rng.standard_normal((3 * n, B, m)) * 3, rng.standard_normal((3 * n, B, m)), \
        rng.standard_normal((n, B, m))
    ah[0, 0, 0], ah[n + 1, 1, 2] = -1000.0, -800.0  # exp(−z) = inf: σ(r), σ(u) = 0
    sig = lambda z: 0.5 * (1 + np.tanh(0.5 * z))  # noqa: E731
    r, u = sig(ah[:n] + ax[:n]), sig(ah[n:2 * n] + ax[n:2 * n])
    nn = np.tanh(ax[2 * n:] + r * ah[2 * n:])
    want = (1 - u) * nn + u * h_prev
    for dtype in (np.float64, np.complex128):
        form = GRUForm(n, dtype)
        assert form.exp == (dtype is np.float64)
        pre = (ah * form.hscale[:, None, None]).astype(dtype)
        pre[:2 * n] += (ax * form.xscale[:, None, None])[:2 * n]
        side = ax[2 * n:].astype(dtype)
        with np.errstate(over="ignore"):
            fresh = gru_cell_chunk(pre.copy(), side, h_prev.astype(dtype), n, np.empty((n, B, m), dtype),
                                   np.empty((n, B, m), dtype), lambda p: None, form.exp)
            buf = h_prev.astype(dtype)
            in_place = gru_cell_chunk(pre.copy(), side, buf, n, buf, buf, lambda p: None, form.exp)
            out = np.empty((B, n, m), dtype).transpose(1, 0, 2)
            major = gru_cell_chunk(pre.copy(), side, h_prev.astype(dtype), n, h_prev.astype(dtype), out,
                                   lambda p: None, form.exp)
        assert in_place is buf and major is out
        for got in (fresh, in_place, major):
            np.testing.assert_allclose(got.real, want, rtol=1e-14, atol=1e-15)
    assert r[0, 0, 0] == u[1, 1, 2] == 0.0  # the overflowed entries are in what the cell matched


def _tied_lstm_moves(rng, B: int, m: int):
    """Moves of B random entries of the lstm_tied case's one param (both weights), three steps' inputs, ±1 scales."""
    from gradcheck.kinds.moves import Moves
    spec = gradcheck.loads(DECLS + CASES["lstm_tied"][0])
    opt = spec.model.terms[0].layers[0].options
    moves = Moves(opt, [opt.input_weight, opt.hidden_weight], spec.values, rng.integers(0, 8, B),
                  rng.integers(0, 2, B), rng.standard_normal(B))
    return moves, [rng.standard_normal((2, m)) for _ in range(3)], np.repeat([-1.0, 1.0], 4)


def test_step_terms_by_side_and_rows_equal_moves_terms():
    """StepTerms of the h side alone and of the x and bias sides alone, those added for the rows below and above 2n
    apart (as the GRU's chunks add them), sum to Moves.terms added by add_rows."""
    from gradcheck.kinds.moves import StepTerms, add_rows, member_rows
    rng, n, m = np.random.default_rng(5), 2, 5
    moves, xs, scale = _tied_lstm_moves(rng, 9, m)
    part = moves.part(1, 8)
    h_add, x_add = StepTerms(moves, xs, scale, "h").part(1, 8), StepTerms(moves, xs, scale, "xb").part(1, 8)
    for t in range(3):
        h, want = rng.standard_normal((n, 7, m)), rng.standard_normal((8, 7, m))
        got = want.copy()
        add_rows(want, 0, part.terms(xs[t], member_rows(h, part.batch), "xhb", scale), part.batch)
        h_add(got, t, h)
        x_add(got, t, None, (0, 5))
        x_add(got, t, None, (5, 8))
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15)


def test_step_terms_equal_moves_terms_added_row_by_row():
    """StepTerms (x and bias sides summed once a batch, h gathered flat, one add a step) equals Moves.terms added by
    add_rows, for a chunk of members, with h dense or given row by row (one param as both weights: two uses)."""
    from gradcheck.kinds.moves import StepTerms, add_rows, member_rows
    rng, n, m = np.random.default_rng(2), 2, 5
    moves, xs, scale = _tied_lstm_moves(rng, 7, m)
    part, add = moves.part(2, 6), StepTerms(moves, xs, scale).part(2, 6)
    for t in range(3):
        h, want = rng.standard_normal((n, 4, m)), rng.standard_normal((8, 4, m))
        dense, by_rows = want.copy(), want.copy()
        add_rows(want, 0, part.terms(xs[t], member_rows(h, part.batch), "xhb", scale), part.batch)
        add(dense, t, h)
        add(by_rows, t, member_rows(h, part.batch))
        np.testing.assert_allclose(dense, want, rtol=1e-15, atol=1e-15)
        np.testing.assert_allclose(by_rows, want, rtol=1e-15, atol=1e-15)


def test_lstm_cell_in_place_and_rank_one_equal_the_plain_formulas():
    """lstm_cell_ into c_prev and a member-major h equals it into fresh arrays bit for bit; rank_one equals base plus
    each member's outer product, written out per member."""
    import numpy as np
    from gradcheck.kinds.gated_moved import lstm_cell_, rank_one
    rng = np.random.default_rng(0)
    n, B, m = 3, 4, 5
    pre, c = rng.standard_normal((4 * n, B, m)), rng.standard_normal((n, B, m))
    h_want, c_want = lstm_cell_(pre.copy(), c.copy(), n)
    c_in, h_out = c.copy(), np.empty((B, n, m)).transpose(1, 0, 2)
    h_got, c_got = lstm_cell_(pre.copy(), c_in, n, c_in, h_out)
    assert h_got is h_out and c_got is c_in
    assert np.array_equal(h_got, h_want) and np.array_equal(c_got, c_want)
    w, base, k, d = rng.standard_normal((4 * n, n)), rng.standard_normal((4 * n, m)), np.array([2, 0, 0, 1]), \
        rng.standard_normal((B, m)) + 1j * rng.standard_normal((B, m))
    got = rank_one(base, w, k, d, np.empty((4 * n, B, m), complex))
    for b in range(B):
        assert np.array_equal(got[:, b], base + np.outer(w[:, k[b]], d[b]))
