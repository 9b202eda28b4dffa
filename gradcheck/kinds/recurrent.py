"""The recurrent layer: an RNN unrolled in time, a deep network whose layers share Wh, Wx and b.

Its parser and its numbers (forward, backpropagation through time, footprint) are here together.
"""

from __future__ import annotations

import numpy as np

from ..activations import TABLE
from ..shapes import Shape, fmt_shape
from ..limits import count, hint
from ..layer_options import RecurrentOptions
from ..model import ActivationUse, Layer, Ref
from ..nodes import check_keys, expect_mapping, number, place_of
from ..trace import LayerTrace, accumulate, activation_step, apply, argument_of
from ..yamlsrc import Node
from .moves import Moves, add_rows, member_rows, patched_rows, patched_state, shared_rows

KEYS = ("hidden_weight", "input_weight", "bias", "steps", "activation", "init", "output")


class Recurrent:
    """h_t = f(Wh h_{t-1} + Wx x_t + b) for t = 1..T: an unrolled deep network sharing Wh, Wx, b.

    The input column stacks x_1..x_T (x_1 on top). Backward is backpropagation through time:
    the error signal at h_t is the one from the output (if h_t is output) plus Wᵀh δ_{t+1}, and
    every step adds its own contribution to the shared Wh, Wx, b (and to h_0 and the inputs).
    """

    key = "recurrent"
    schema = {"type": "object", "additionalProperties": False, "required": ["hidden_weight", "input_weight", "steps"],
              "description": "h_t = f(Wh h_{t-1} + Wx x_t + b), t = 1..steps; the input stacks x_1..x_T.",
              "properties": {"hidden_weight": {"$ref": "#/$defs/transposableName"},
                             "input_weight": {"$ref": "#/$defs/transposableName"},
                             "bias": {"$ref": "#/$defs/transposableName"}, "init": {"$ref": "#/$defs/transposableName"},
                             "steps": {"$ref": "#/$defs/dimension"}, "activation": {"$ref": "#/$defs/activation"},
                             "output": {"enum": ["last", "all"]}}}
    analytic = True
    row_patch = False
    patch = None  # a moved weight spreads to every hidden unit after one step: no rows to patch

    @staticmethod
    def moved(layer: Layer, a_in, values, refs, rows, cols, delta) -> LayerTrace | None:
        """The batched forward with entry (rows[b], cols[b]) of a weight or the bias moved by delta[b] in member b:
        each step multiplies the base weights once over the whole batch (one GEMM over (hidden, B·m), no stacked
        copies), and adds the moved entry's own term δ·h[j] or δ·x[j] to row i. Steps the move has not reached yet
        (Wh moved while h is still 0) stay the base pass's. None for other uses (init, argument): go dense."""
        opt = layer.options
        if any(r is not opt.hidden_weight and r is not opt.input_weight and r is not opt.bias for r in refs) or \
                (layer.activation.row.takes_argument and layer.activation.argument is None):  # custom f: its env
            return None
        B, batch, delta = len(rows), np.arange(len(rows)), np.asarray(delta)
        wh, wx = opt.hidden_weight.value(values), opt.input_weight.value(values)
        bias = 0.0 if opt.bias is None else opt.bias.value(values)
        m, n = a_in.shape[-1], opt.hidden
        h = np.zeros((n, m))
        if opt.init is not None:  # broadcast to (hidden, m), as the forward pass does
            h = h + opt.init.value(values)
        argument = argument_of(layer, values)
        if np.ndim(argument) == 2:  # (hidden, m) or (hidden, 1) against the (hidden, B, m) layout below
            argument = argument[:, None, :]
        moves = Moves(opt, refs, values, rows, cols, delta)  # where each member's moved entry lands
        # Without kinks to watch or an argument, the step the move reaches changes one row of z per member (a row
        # patch of h), and the next meets Wh as a rank-1 term: no GEMM for either (`patch`: (rows, their values)).
        rowwise, patch = not layer.activation.row.kinks and layer.activation.argument is None, None
        zs, hs = [], []  # z of every step where kinks are watched, h of every step for output: all
        keep_z, keep_h = bool(layer.activation.row.kinks), opt.output == "all"
        for x in _steps(a_in, opt):  # h and x are (k, m) while shared by every member, else (k, B, m)
            if x.ndim == 3:
                x = x.transpose(1, 0, 2)
            fed = _matmul(wx, x) + (bias if np.ndim(bias) < 2 or x.ndim == 2 else bias[:, None, :])
            fed = fed[:, None, :] if fed.ndim == 2 else fed  # (n, 1 or B, m)
            # Wh moved while h is still 0: δ·h[j] = 0, exactly the base pass's step
            if h.ndim == 2 and x.ndim == 2 and patch is None and moves.hidden_only() and not np.any(h):
                z = _matmul(wh, h) + fed[:, 0]
                h = apply(layer, z, argument[:, 0] if np.ndim(argument) == 3 else argument)
                if keep_z:
                    zs.append(np.broadcast_to(z[:, None, :], (n, B, m)))
                if keep_h:
                    hs.append(np.broadcast_to(h[:, None, :], (n, B, m)))
                continue
            if rowwise and h.ndim == 2 and x.ndim == 2 and moves.row is not None:  # every use moves one row
                h_rows = shared_rows(h) if patch is None else patched_rows(h, *patch)
                own = moves.row, sum(add for _, add in moves.terms(x, h_rows))
                zb = _matmul(wh, h) + fed[:, 0]  # the base pass's z of this step
                if patch is None:  # the move reaches z: one row per member
                    h, patch = apply(layer, zb, None), (own[0], apply(layer, zb[own[0]] + own[1], None))
                else:  # the patched row of h meets Wh: a rank-1 change of every row of z
                    z = wh[:, patch[0]][:, :, None] * (patch[1] - h[patch[0]])[None]
                    z += zb[:, None, :]
                    z[own[0], batch] += own[1]
                    h, patch = _activate(layer, z, None, keep_z), None
                if keep_h:
                    hs.append(patched_state(h, patch, B))
                continue
            h = patched_state(h, patch, B) if patch is not None else h
            patch = None
            if h.ndim == 2:  # the first step the move reaches: every member from the shared h
                z = np.empty((n, B, m), dtype=np.result_type(delta, float))
                z[...] = _matmul(wh, h)[:, None, :] + fed
            else:  # the GEMM's own fresh array, added to in place
                z = _matmul(wh, h).astype(np.result_type(delta, h, float), copy=False)
                z += fed
            add_rows(z, 0, moves.terms(x, member_rows(h, batch)), batch)  # each member's own term
            h = _activate(layer, z, argument, keep_z)
            if keep_z:
                zs.append(z)
            if keep_h:
                hs.append(h)
        out = patched_state(h, patch, B) if opt.output == "last" else np.concatenate(hs, axis=0)
        # z of every step only where a kink is watched; a is (B, rows, m) as every batched forward gives it
        z_all = np.concatenate(zs, axis=0).transpose(1, 0, 2) if layer.activation.row.kinks else None
        return LayerTrace(layer, a_in, z_all, out.transpose(1, 0, 2), argument, {})

    @staticmethod
    def moved_numbers(layer: Layer, refs, shared_input: bool) -> int | None:
        """Numbers one member of `moved` holds: z, h, the previous h and the GEMM's product of the step at hand (and
        the input side's, for a moved input), z of every step where kinks are watched, h of every step for output: all;
        None where `moved` goes dense."""
        opt = layer.options
        if any(r is not opt.hidden_weight and r is not opt.input_weight and r is not opt.bias for r in refs) or \
                (layer.activation.row.takes_argument and layer.activation.argument is None):
            return None
        arrays = 4 + (not shared_input) + opt.steps * (bool(layer.activation.row.kinks) + (opt.output == "all"))
        return arrays * opt.hidden * layer.in_shape[1]

    fusable = False  # a is the last step's h, not f of the layer's z: no loss is fused with its activation
    closed_form = False
    sym_z = sym_backward = None

    @staticmethod
    def parse(b, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, _up) -> Layer:
        """{recurrent: {hidden_weight, input_weight, steps, bias, init, activation, output}}."""
        spec_node = mapping["recurrent"]
        for key in ("bias", "activation"):
            if key in mapping:
                raise mapping[key].key_error(f'in a recurrent layer "{key}" goes inside recurrent: {{...}} '
                                             f"(layer {index})")
        rec = expect_mapping(spec_node, f"recurrent of layer {index}")
        check_keys(rec, KEYS, f"recurrent of layer {index}")
        for key in ("hidden_weight", "input_weight", "steps"):
            if key not in rec:
                raise spec_node.error(f'recurrent of layer {index} needs "{key}"')
        wh, wx = recurrent_weights(b, rec, index)
        wh_shape, wx_shape = b.ref_shape(wh), b.ref_shape(wx)
        steps = recurrent_steps(b, rec["steps"], index, wx, in_shape)
        hidden_shape = (wh_shape[0], in_shape[1])
        bias = b.fitting_ref(rec.get("bias"), "bias", index, hidden_shape)
        init = b.fitting_ref(rec.get("init"), "init", index, hidden_shape)
        output = b.text(rec["output"], "output") if "output" in rec else "last"
        if output not in ("last", "all"):
            raise rec["output"].error(f'output must be "last" (h_T) or "all" (h_1..h_T stacked), not "{output}"')
        activation_node = rec.get("activation")
        if activation_node is None:
            activation = ActivationUse("tanh", TABLE["tanh"])  # the classic RNN
        else:
            activation = b.activation(activation_node, index, hidden_shape)
        options = RecurrentOptions(wh, wx, bias, init, steps, wh_shape[0], wx_shape[1], output)
        rows = wh_shape[0] * (steps if output == "all" else 1)
        b.check_work(spec_node, f"the recurrent layer {index} holds", 2 * steps * hidden_shape[0] * in_shape[1],
                        "numbers (z and h of every step)")
        return Layer(index, None, None, activation, in_shape, (rows, in_shape[1]), place_of(node), "recurrent",
                     options)


    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        wh, wx = opt.hidden_weight.value(values), opt.input_weight.value(values)
        bias = 0.0 if opt.bias is None else opt.bias.value(values)
        h0 = np.zeros((opt.hidden, a_in.shape[-1]))
        if opt.init is not None:  # broadcast to (hidden, m), as the loader allowed: an init of (1, 1) is one number
            h0 = h0 + opt.init.value(values)
        argument = argument_of(layer, values)
        zs, hs, h = [], [], h0
        for x in _steps(a_in, opt):
            z = np.matmul(wh, h) + np.matmul(wx, x) + bias
            h = apply(layer, z, argument)
            zs.append(z)
            hs.append(h)
        zs, hs = np.broadcast_arrays(*zs), np.broadcast_arrays(*hs)
        out = hs[-1] if opt.output == "last" else np.concatenate(hs, axis=-2)
        cache = {"z_steps": zs, "h_steps": hs, "h0": h0}
        return LayerTrace(layer, a_in, np.concatenate(zs, axis=-2), out, argument, cache)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        layer, opt = lt.layer, lt.layer.options
        wh, wx = opt.hidden_weight.value(values), opt.input_weight.value(values)
        xs, zs, hs = _steps(lt.a_in, opt), lt.cache["z_steps"], lt.cache["h_steps"]
        from_output = np.split(g, opt.steps, axis=-2) if opt.output == "all" else [0.0] * (opt.steps - 1) + [g]
        carried = 0.0
        deltas, dxs = [None] * opt.steps, [None] * opt.steps
        for t in reversed(range(opt.steps)):
            delta = activation_step(layer, from_output[t] + carried, zs[t], hs[t], lt.argument, grads)
            h_prev = hs[t - 1] if t > 0 else np.broadcast_to(lt.cache["h0"], np.shape(delta))  # h0 may be (n, 1)
            accumulate(grads, opt.bias, delta)
            accumulate(grads, opt.hidden_weight, delta @ np.swapaxes(h_prev, -1, -2))
            accumulate(grads, opt.input_weight, delta @ np.swapaxes(xs[t], -1, -2))
            dxs[t] = np.swapaxes(wx, -1, -2) @ delta
            carried = np.swapaxes(wh, -1, -2) @ delta
            deltas[t] = delta
        accumulate(grads, opt.init, carried)
        return np.concatenate(dxs, axis=-2), np.concatenate(deltas, axis=-2)

    @staticmethod
    def state(lt: LayerTrace):
        return None

    @staticmethod
    def footprint(layer: Layer) -> int:
        """z and h of every step, and the output."""
        opt, m = layer.options, layer.in_shape[1]
        return 2 * opt.steps * opt.hidden * m + layer.out_shape[0] * m


def _activate(layer: Layer, z, argument, keep_z: bool):
    """h = f(z), written over z when z is not kept and f is a plain ufunc (tanh, the classic RNN's): one array fewer
    a step."""
    row = layer.activation.row
    if not keep_z and row.writes_in_place and layer.activation.argument is None:
        return row.f(z, out=z)
    return apply(layer, z, argument)



def _matmul(w, x) -> np.ndarray:
    """w @ x for x (k, m) shared, or (k, B, m) one block of columns per member: one GEMM over (k, B·m)."""
    if x.ndim == 2:
        return w @ x
    k, B, m = x.shape
    return (w @ x.reshape(k, B * m)).reshape(w.shape[0], B, m)


def _steps(a_in, opt) -> list:
    """x_1..x_T: the T blocks of d rows of the recurrent layer's input."""
    return [a_in[..., t * opt.inputs:(t + 1) * opt.inputs, :] for t in range(opt.steps)]


def recurrent_weights(b, rec: dict[str, Node], index: int) -> tuple[Ref, Ref]:
    """Wh, square (n, n), and Wx, (n, d)."""
    wh = b.ref(rec["hidden_weight"], f"the hidden_weight of layer {index}", allow_transpose=True)
    wx = b.ref(rec["input_weight"], f"the input_weight of layer {index}", allow_transpose=True)
    wh_shape, wx_shape = b.ref_shape(wh), b.ref_shape(wx)
    if wh_shape[0] != wh_shape[1]:
        raise rec["hidden_weight"].error(f"shape mismatch in layer {index}: hidden_weight {wh.label} has shape "
                                         f"{fmt_shape(wh_shape)}; it must be square (hidden, hidden)")
    if wx_shape[0] != wh_shape[0]:
        raise rec["input_weight"].error(
            f"shape mismatch in layer {index}: input_weight {wx.label} has shape {fmt_shape(wx_shape)} but "
            f"hidden_weight {wh.label} has shape {fmt_shape(wh_shape)} ({wx_shape[0]} rows against "
            f"{wh_shape[0]})")
    return wh, wx

def recurrent_steps(b, node: Node, index: int, wx: Ref, in_shape: Shape) -> int:
    """T, such that T blocks of d rows (d the columns of Wx) make the layer's input."""
    steps = number(node, f"steps of layer {index}", positive=True, integer=True)
    if steps > b.limits.recurrent_steps:
        raise node.error(f"{count(steps)} steps in layer {index}; the limit is {count(b.limits.recurrent_steps)} "
                         f"({hint('recurrent_steps')})")
    wx_shape = b.ref_shape(wx)
    if steps * wx_shape[1] != in_shape[0]:
        raise node.error(
            f"shape mismatch in layer {index}: {steps} steps of input_weight {wx.label} {fmt_shape(wx_shape)} "
            f"read {steps}·{wx_shape[1]} = {steps * wx_shape[1]} rows, but the layer's input has shape "
            f"{fmt_shape(in_shape)}")
    return steps
