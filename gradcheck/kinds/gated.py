"""LSTM and GRU over a sequence: like `recurrent`, the input column stacks x_1..x_T and the layer outputs
h_T (`output: last`) or h_1..h_T stacked (`output: all`); the gates' weights are stacked row blocks.

LSTM, gates [i; f; o; g] (rows 0..n, n..2n, 2n..3n, 3n..4n of Wx x_t + Wh h_{t−1} + b):
  c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g),  h_t = σ(o) ⊙ tanh(c_t).
GRU, gates [r; u; n] (PyTorch's convention with the hidden-side bias zero):
  r = σ(Wx_r x + b_r + Wh_r h),  u = σ(Wx_u x + b_u + Wh_u h),  n = tanh(Wx_n x + b_n + r ⊙ (Wh_n h)),
  h_t = (1 − u) ⊙ n + u ⊙ h_{t−1}.
The layer's own `activation` (identity by default) applies to the output: a = f(h).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import Layer, Ref
from ..nodes import place_of
from ..shapes import Shape, fmt_shape
from ..trace import LayerTrace, accumulate, activate, activation_backward
from ..yamlsrc import Node
from .common import blocks, kind_options, sigmoid, tr
from .gated_moved import Moves, gru_steps, lstm_steps
from .gated_moved import moved_numbers as chunked_numbers
from .recurrent import recurrent_steps

KEYS = ("input_weight", "hidden_weight", "bias", "steps", "init", "cell_init", "output")
GATES = {"lstm": 4, "gru": 3}


@dataclass(frozen=True)
class GatedOptions:
    """Stacked gate weights Wx (G·n, d), Wh (G·n, n), bias (G·n, 1); h_0 (and c_0 for an LSTM) or zeros."""

    input_weight: Ref
    hidden_weight: Ref
    bias: Ref | None
    init: Ref | None
    cell_init: Ref | None
    steps: int
    hidden: int
    inputs: int
    output: str  # "last" | "all"

    @property
    def label_parts(self) -> list[str]:
        parts = [self.input_weight.label, self.hidden_weight.label]
        return parts + (["+ " + self.bias.label] if self.bias else []) + [f"{self.steps} steps"]


def parse_gated(key: str, b, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape) -> Layer:
    """{lstm|gru: {input_weight, hidden_weight, steps, bias, init, cell_init (lstm), output}, activation: f}."""
    keys = KEYS if key == "lstm" else tuple(k for k in KEYS if k != "cell_init")
    options = kind_options(key, index, mapping, keys, required=("input_weight", "hidden_weight", "steps"))
    gates = GATES[key]
    wx = b.ref(options["input_weight"], f"the input_weight of layer {index}", allow_transpose=True)
    wh = b.ref(options["hidden_weight"], f"the hidden_weight of layer {index}", allow_transpose=True)
    (wh_rows, hidden), (wx_rows, _) = b.ref_shape(wh), b.ref_shape(wx)
    if wh_rows != gates * hidden:
        raise options["hidden_weight"].error(
            f"shape mismatch in layer {index}: hidden_weight {wh.label} has shape {fmt_shape(b.ref_shape(wh))}; the "
            f"{key} layer needs ({gates}·hidden, hidden), its {gates} gates stacked, e.g. ({gates * hidden}, {hidden})")
    if wx_rows != wh_rows:
        raise options["input_weight"].error(
            f"shape mismatch in layer {index}: input_weight {wx.label} has shape {fmt_shape(b.ref_shape(wx))} but "
            f"hidden_weight {wh.label} has {wh_rows} rows ({gates} gates of {hidden})")
    steps = recurrent_steps(b, options["steps"], index, wx, in_shape)
    state_shape = (hidden, in_shape[1])
    bias = b.fitting_ref(options.get("bias"), "bias", index, (gates * hidden, in_shape[1]))
    init = b.fitting_ref(options.get("init"), "init", index, state_shape)
    cell = b.fitting_ref(options.get("cell_init"), "cell_init", index, state_shape)
    output = b.text(options["output"], "output") if "output" in options else "last"
    if output not in ("last", "all"):
        raise options["output"].error(f'output must be "last" (h_T) or "all" (h_1..h_T stacked), not "{output}"')
    out_shape = (hidden * (steps if output == "all" else 1), in_shape[1])
    b.check_work(mapping[key], f"the {key} layer {index} holds", (gates + 4) * steps * hidden * in_shape[1],
                 "numbers (gates and states of every step)")
    activation = b.activation(mapping.get("activation"), index, out_shape)
    opt = GatedOptions(wx, wh, bias, init, cell, steps, hidden, b.ref_shape(wx)[1], output)
    return Layer(index, None, None, activation, in_shape, out_shape, place_of(node), key, opt)


def _start(ref: Ref | None, values, hidden: int, m: int):
    """h_0 or c_0: the named state broadcast to (hidden, m), or zeros."""
    zero = np.zeros((hidden, m))
    return zero if ref is None else zero + ref.value(values)


def _xs(a_in, opt) -> list:
    return [a_in[..., t * opt.inputs:(t + 1) * opt.inputs, :] for t in range(opt.steps)]


def _finish(layer: Layer, a_in, hs: list, values, **cache) -> LayerTrace:
    opt = layer.options
    hs = np.broadcast_arrays(*hs)
    z = hs[-1] if opt.output == "last" else np.concatenate(hs, axis=-2)
    return activate(layer, a_in, z, values, hs=hs, **cache)


def _from_output(opt, delta) -> list:
    """The signal the output sends to each h_t."""
    return np.split(delta, opt.steps, axis=-2) if opt.output == "all" else [0.0] * (opt.steps - 1) + [delta]


def _accumulate_step(opt, grads, dgx, dgh, h_prev, x):
    """One step's contributions to Wx, Wh and the bias (dgx: the input side's pre-activations, dgh: the hidden side's)."""
    accumulate(grads, opt.bias, dgx)
    accumulate(grads, opt.input_weight, dgx @ tr(x))
    accumulate(grads, opt.hidden_weight, dgh @ tr(h_prev))


def _wide_steps(a_in, opt) -> list:
    """x_1..x_T in the wide layout: (d, m) when the input is shared, (d, B, m) when it is batched."""
    return [x if x.ndim == 2 else x.transpose(1, 0, 2) for x in _xs(a_in, opt)]


def _moved_setup(opt, a_in, values, refs, rows, cols, delta):
    """Wx, Wh, the bias (0 without one), where each member's move lands, and the members' dtype."""
    wx, wh = opt.input_weight.value(values), opt.hidden_weight.value(values)
    bias = 0.0 if opt.bias is None else opt.bias.value(values)
    return wx, wh, bias, Moves(opt, refs, values, rows, cols, delta), np.result_type(delta, a_in, float)


def _movable(opt, refs) -> bool:
    """moved() carries moves of the weights and the bias; an initial state read as p goes the dense way."""
    return all(r is opt.input_weight or r is opt.hidden_weight or r is opt.bias for r in refs)


class _Gated:
    @classmethod
    def moved_numbers(cls, layer: Layer, refs, shared_input: bool) -> int | None:
        """Numbers one member of `moved` holds: h_T (h of every step for output: all) and the layer's output (h_T
        itself under identity), and what gated_moved.moved_numbers counts (its patch, terms and share of a chunk);
        None where `moved` goes dense."""
        opt, m = layer.options, layer.in_shape[1]
        if not _movable(opt, refs):
            return None
        identity = layer.activation.row.name == "identity" and layer.activation.argument is None
        states = (1 if identity else 2) + (opt.steps if opt.output == "all" else 0)
        return states * opt.hidden * m + chunked_numbers(opt.hidden, m, opt.steps, GATES[cls.key])

    analytic = True  # sigmoid, tanh and products
    row_patch = False  # a moved weight reaches every hidden unit after one step
    patch = None  # no rows to patch: the gates mix every hidden unit after one step
    fusable = True  # a = f(output) over the whole output
    closed_form = False
    sym_z = sym_backward = None

    @classmethod
    def parse(cls, b, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, _up) -> Layer:
        return parse_gated(cls.key, b, index, node, mapping, in_shape)

    @staticmethod
    def state(lt: LayerTrace):
        return None


def _schema(key: str, description: str) -> dict:
    props = {"input_weight": {"$ref": "#/$defs/transposableName"}, "hidden_weight": {"$ref": "#/$defs/transposableName"},
             "bias": {"$ref": "#/$defs/transposableName"}, "init": {"$ref": "#/$defs/transposableName"},
             "steps": {"$ref": "#/$defs/dimension"}, "output": {"enum": ["last", "all"]}}
    if key == "lstm":
        props["cell_init"] = {"$ref": "#/$defs/transposableName"}
    return {"type": "object", "additionalProperties": False, "required": ["input_weight", "hidden_weight", "steps"],
            "description": description, "properties": props}


class LSTM(_Gated):
    """The LSTM over T steps; backward carries ∂J/∂h and ∂J/∂c back through time."""

    key = "lstm"
    standard = ("back through time: dcₜ = dhₜ ∘ o ∘ (1 − tanh²cₜ) + f_(t+1) ∘ dc_(t+1); dGₜ = [dcₜ ∘ g ∘ i(1 − i); "
                "dcₜ ∘ cₜ₋₁ ∘ f(1 − f); dhₜ ∘ tanh cₜ ∘ o(1 − o); dcₜ ∘ i ∘ (1 − g²)]; dhₜ₋₁ = Whᵀ dGₜ; "
                "∂J/∂Wx = Σₜ dGₜ xₜᵀ, ∂J/∂Wh = Σₜ dGₜ hₜ₋₁ᵀ, ∂J/∂b = Σₜ dGₜ 1 (specs/lstm.yaml writes it out)")
    schema = _schema("lstm", "LSTM over steps, gates [i; f; o; g] stacked in Wx (4n, d), Wh (4n, n), bias (4n, 1): "
                             "c_t = σ(f) ⊙ c_(t-1) + σ(i) ⊙ tanh(g), h_t = σ(o) ⊙ tanh(c_t).")

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        wx, wh = opt.input_weight.value(values), opt.hidden_weight.value(values)
        bias = 0.0 if opt.bias is None else opt.bias.value(values)
        m = a_in.shape[-1]
        h, c = _start(opt.init, values, opt.hidden, m), _start(opt.cell_init, values, opt.hidden, m)
        hs, cs, gates = [], [], []
        for x in _xs(a_in, opt):
            i, f, o, g = blocks(np.matmul(wx, x) + np.matmul(wh, h) + bias, 4)
            i, f, o, g = sigmoid(i), sigmoid(f), sigmoid(o), np.tanh(g)
            c = f * c + i * g
            h = o * np.tanh(c)
            hs.append(h)
            cs.append(c)
            gates.append((i, f, o, g))
        h0, c0 = _start(opt.init, values, opt.hidden, m), _start(opt.cell_init, values, opt.hidden, m)
        return _finish(layer, a_in, hs, values, cs=cs, gates=gates, h0=h0, c0=c0)

    @staticmethod
    def moved(layer: Layer, a_in, values, refs, rows, cols, delta) -> LayerTrace | None:
        """The batched forward with entry (rows[b], cols[b]) of Wx, Wh or the bias moved by delta[b] in member b: a row
        patch where the move first reaches h, then one GEMM a step over the batch (gated_moved.py)."""
        opt = layer.options
        if not _movable(opt, refs):
            return None
        wx, wh, bias, moves, dtype = _moved_setup(opt, a_in, values, refs, rows, cols, delta)
        m = a_in.shape[-1]
        h, c = _start(opt.init, values, opt.hidden, m), _start(opt.cell_init, values, opt.hidden, m)
        hs = lstm_steps(opt, wx, wh, bias, _wide_steps(a_in, opt), moves, h, c, dtype)
        return _finish(layer, a_in, hs, values)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        """dc_t = dh_t ⊙ σ(o) ⊙ (1 − tanh²c_t) + σ(f_{t+1}) ⊙ dc_{t+1}: the cell carries its own signal back."""
        opt, cache = lt.layer.options, lt.cache
        wx, wh = opt.input_weight.value(values), opt.hidden_weight.value(values)
        delta = activation_backward(lt, g, grads)
        xs, hs, cs = _xs(lt.a_in, opt), cache["hs"], cache["cs"]
        from_output = _from_output(opt, delta)
        dh_next, dc_next, dxs = 0.0, 0.0, [None] * opt.steps
        for t in reversed(range(opt.steps)):
            i, f, o, gg = cache["gates"][t]
            h_prev = hs[t - 1] if t else cache["h0"]
            c_prev = cs[t - 1] if t else cache["c0"]
            tc = np.tanh(cs[t])
            dh = from_output[t] + dh_next
            dc = dc_next + dh * o * (1 - tc * tc)
            dgate = np.concatenate([dc * gg * i * (1 - i), dc * c_prev * f * (1 - f), dh * tc * o * (1 - o),
                                    dc * i * (1 - gg * gg)], axis=-2)
            _accumulate_step(opt, grads, dgate, dgate, np.broadcast_to(h_prev, np.shape(dh)), xs[t])
            dxs[t] = tr(wx) @ dgate
            dh_next, dc_next = tr(wh) @ dgate, dc * f
        accumulate(grads, opt.init, dh_next)
        accumulate(grads, opt.cell_init, dc_next)
        return np.concatenate(dxs, axis=-2), delta

    @staticmethod
    def footprint(layer: Layer) -> int:
        """Per step the gates (4n), c, h and tanh c; the output, z and a."""
        opt, m = layer.options, layer.in_shape[1]
        return 8 * opt.steps * opt.hidden * m + 2 * layer.out_shape[0] * m


class GRU(_Gated):
    """The GRU over T steps; backward through the update gate's two paths and the reset gate inside n."""

    key = "gru"
    standard = ("back through time: dn = dh ∘ (1 − u) ∘ (1 − n²), dr = dn ∘ (Whₙ h) ∘ r(1 − r), "
                "du = dh ∘ (hₜ₋₁ − n) ∘ u(1 − u); dAx = [dr; du; dn], dAh = [dr; du; dn ∘ r]; "
                "dhₜ₋₁ = dh ∘ u + Whᵀ dAh; ∂J/∂Wx = Σₜ dAx xₜᵀ, ∂J/∂Wh = Σₜ dAh hₜ₋₁ᵀ (specs/gru.yaml writes it out)")
    schema = _schema("gru", "GRU over steps, gates [r; u; n] stacked in Wx (3n, d), Wh (3n, n), bias (3n, 1): "
                            "n = tanh(Wx_n x + b_n + σ(r) ⊙ (Wh_n h)), h_t = (1 − σ(u)) ⊙ n + σ(u) ⊙ h_(t-1).")

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        wx, wh = opt.input_weight.value(values), opt.hidden_weight.value(values)
        bias = 0.0 if opt.bias is None else opt.bias.value(values)
        h = h0 = _start(opt.init, values, opt.hidden, a_in.shape[-1])
        hs, steps = [], []
        for x in _xs(a_in, opt):
            xr, xu, xn = blocks(np.matmul(wx, x) + bias, 3)
            hr, hu, hn = blocks(np.matmul(wh, h), 3)
            r, u = sigmoid(xr + hr), sigmoid(xu + hu)
            n = np.tanh(xn + r * hn)
            h = (1 - u) * n + u * h
            hs.append(h)
            steps.append((r, u, n, hn))
        return _finish(layer, a_in, hs, values, steps=steps, h0=h0)

    @staticmethod
    def moved(layer: Layer, a_in, values, refs, rows, cols, delta) -> LayerTrace | None:
        """As LSTM.moved: a row patch, then one GEMM a step over the batch (gated_moved.py)."""
        opt = layer.options
        if not _movable(opt, refs):
            return None
        wx, wh, bias, moves, dtype = _moved_setup(opt, a_in, values, refs, rows, cols, delta)
        h = _start(opt.init, values, opt.hidden, a_in.shape[-1])
        hs = gru_steps(opt, wx, wh, bias, _wide_steps(a_in, opt), moves, h, dtype)
        return _finish(layer, a_in, hs, values)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        """dn = dh ⊙ (1 − u); du = dh ⊙ (h_{t−1} − n); dh_{t−1} = dh ⊙ u + Whᵀ [dr̃; dũ; dñ ⊙ r]."""
        opt, cache = lt.layer.options, lt.cache
        wx, wh = opt.input_weight.value(values), opt.hidden_weight.value(values)
        delta = activation_backward(lt, g, grads)
        xs, hs = _xs(lt.a_in, opt), cache["hs"]
        from_output = _from_output(opt, delta)
        dh_next, dxs = 0.0, [None] * opt.steps
        for t in reversed(range(opt.steps)):
            r, u, n, hn = cache["steps"][t]
            h_prev = np.broadcast_to(hs[t - 1] if t else cache["h0"], np.shape(n))
            dh = from_output[t] + dh_next
            dn = dh * (1 - u) * (1 - n * n)
            dr = dn * hn * r * (1 - r)
            du = dh * (h_prev - n) * u * (1 - u)
            dgx = np.concatenate([dr, du, dn], axis=-2)
            dgh = np.concatenate([dr, du, dn * r], axis=-2)
            _accumulate_step(opt, grads, dgx, dgh, h_prev, xs[t])
            dxs[t] = tr(wx) @ dgx
            dh_next = dh * u + tr(wh) @ dgh
        accumulate(grads, opt.init, dh_next)
        return np.concatenate(dxs, axis=-2), delta

    @staticmethod
    def footprint(layer: Layer) -> int:
        """Per step the gates (3n), Wh_n h and h; the output, z and a."""
        opt, m = layer.options, layer.in_shape[1]
        return 7 * opt.steps * opt.hidden * m + 2 * layer.out_shape[0] * m
