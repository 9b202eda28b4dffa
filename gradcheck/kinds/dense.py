"""The dense layer, UFLDL's own: z = W a (+ b), a = f(z). Its parser, numbers and symbols together."""

from __future__ import annotations

import numpy as np

from .. import symbolic as s
from ..shapes import fmt_shape
from ..model import Layer
from ..nodes import place_of
from ..refs import PARAMS
from ..trace import LayerTrace, accumulate_use, activate, activation_backward


class Dense:
    """z = W a (+ b), a = f(z): the layer every other kind follows in shape."""

    key = None  # written without a kind key: {weight: W, bias: b, activation: f}
    schema = None  # its keys (weight, bias, activation) are the layer's own
    analytic = True
    row_patch = True  # moving one entry of W or b moves one row of z: the perturber may patch rows
    patch = None  # its one-row patches are the perturber's own (perturb.py)
    moved = None  # and so are its second uses (perturb._TermRun.second_use_z)
    fusable = True  # a = f(z) over the layer's whole output: a loss may be fused with f (computed from z)
    closed_form = True

    @staticmethod
    def parse(b, index: int, node, mapping, in_shape, up) -> Layer:
        """{weight: W (or W.T, or I), bias: b, activation: f}; everything optional."""
        weight = None
        z_shape = in_shape
        if "weight" in mapping and mapping["weight"].value != "I":
            weight = b.ref(mapping["weight"], f"the weight of layer {index}", allow_transpose=True, computed=PARAMS,
                           identity=in_shape[0])
            w_shape = b.ref_shape(weight)
            if w_shape[1] != in_shape[0]:
                raise mapping["weight"].error(
                    f"shape mismatch in layer {index}: weight {weight.label} has shape {fmt_shape(w_shape)} "
                    f"but the layer's input has shape {fmt_shape(in_shape)} ({w_shape[1]} columns against "
                    f"{in_shape[0]} rows)")
            z_shape = (w_shape[0], in_shape[1])
        bias = None
        if "bias" in mapping:
            bias = b.ref(mapping["bias"], f"the bias of layer {index}", allow_transpose=True, computed=PARAMS,
                         identity=z_shape[0])
            b.require_fits(mapping["bias"], f"bias {bias.label} of layer {index}", b.ref_shape(bias), z_shape)
        activation = b.activation(mapping.get("activation"), index, z_shape, whole_matrix=True)
        a_shape = b.activation_shape(mapping.get("activation"), activation, index, z_shape)
        return Layer(index, weight, bias, activation, in_shape, a_shape, place_of(node),
                     pre_shape=z_shape if a_shape != z_shape else None)

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        z = a_in if layer.weight is None else np.matmul(layer.weight.value(values), a_in)
        if layer.bias is not None:
            z = z + layer.bias.value(values)
        return activate(layer, a_in, z, values)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        """(∂J/∂a_in, δ): accumulate this layer's contributions, pass the signal down."""
        layer = lt.layer
        delta = activation_backward(lt, g, grads)
        accumulate_use(grads, layer.bias, delta, values)
        if layer.weight is None:
            return delta, delta
        accumulate_use(grads, layer.weight, delta @ np.swapaxes(lt.a_in, -1, -2), values)
        return np.swapaxes(layer.weight.value(values), -1, -2) @ delta, delta

    @staticmethod
    def state(lt: LayerTrace):
        """No discrete choices of its own (its activation's kinks are the activation's)."""
        return None

    @staticmethod
    def footprint(layer: Layer) -> int:
        """Numbers one forward evaluation of this layer holds: z and a (twice z for a whole-matrix activation's work)."""
        (zr, zc), (ar, ac) = layer.z_shape, layer.out_shape
        return (3 if layer.activation.row.whole_matrix else 1) * zr * zc + ar * ac

    @staticmethod
    def sym_z(w, layer: Layer, a_in):
        """z = W a (+ b) as a symbol, in the spec's names (`w` is explain's walker)."""
        z = a_in if layer.weight is None else s.matmul(w.ref(layer.weight), a_in)
        return s.add(z, w.ref(layer.bias)) if layer.bias is not None else z

    @staticmethod
    def sym_backward(w, term, layer: Layer, a_in, delta, below: bool):
        """Give the bias and weight their δ-terms; the signal to the input, bound if something below reads it."""
        level = layer.index + 1
        w.give(layer.bias, term, f"bias {layer.bias.label if layer.bias else ''} of layer {level - 1}",
               f"Σ δ{w.sup(level)}", delta)
        if layer.weight is None:
            return delta
        formula = f"δ{w.sup(level)} {w.input_text(term, layer)}ᵀ"
        formula = f"({formula})ᵀ" if layer.weight.transposed else formula
        w.give(layer.weight, term, f"weight {layer.weight.label} of layer {level - 1}", formula,
               s.matmul(delta, s.t(a_in)))
        g = s.matmul(s.t(w.ref(layer.weight)), delta)
        return w.bind(f"g{level - 1}", g) if below else g
