"""Layer norm and batch norm: standardize along one axis, then scale by a gain and shift by a bias.

Layer norm standardizes each column over its rows (axis -2); batch norm (training mode, the batch's own
statistics) each row over the columns (axis -1). Both are the same function along a different axis, so
one class holds the numbers and two thin classes name the axis, the key and the text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lowrank import ColumnSpread
from ..model import Layer, Ref
from ..nodes import place_of
from ..shapes import Shape
from ..trace import LayerTrace, accumulate, activate, activation_backward
from ..yamlsrc import Node
from .common import epsilon, kind_options

KEYS = ("gain", "bias", "eps")
SCHEMA_PROPERTIES = {"gain": {"$ref": "#/$defs/transposableName"}, "bias": {"$ref": "#/$defs/transposableName"},
                     "eps": {"$ref": "#/$defs/positiveNumber"}}


@dataclass(frozen=True)
class NormOptions:
    """x̂ = (x − μ)/√(σ² + eps) along `axis`; z = gain ⊙ x̂ + bias (each optional, broadcast onto z)."""

    gain: Ref | None
    bias: Ref | None
    eps: float
    axis: int  # -2: over the rows of each column (layer norm); -1: over the columns of each row (batch norm)

    patch_rows = 1  # a moved gain or bias entry moves one row of z

    @property
    def label_parts(self) -> list[str]:
        parts = [] if self.gain is None else ["⊙ " + self.gain.label]
        return parts + ([] if self.bias is None else ["+ " + self.bias.label]) + [f"eps {self.eps:g}"]


class _Norm:
    """The numbers shared by layer norm and batch norm (the subclass sets key, axis and schema)."""

    axis = -2
    analytic = True  # mean, square and square root of a positive number: the complex step passes
    row_patch = False  # one moved input entry moves the mean and variance of its whole column (or row)
    moved = None

    @staticmethod
    def patch(layer: Layer, lt: LayerTrace, ref: Ref, rows, cols, delta, values):
        """(rows (B,), their new z (B, m)) when entry (rows[b], cols[b]) of the gain or the bias moves by delta[b]:
        one row of z moves, by δ·x̂ (gain) or δ (bias), in every column or in one; None for other uses."""
        opt = layer.options
        if ref is not opt.gain and ref is not opt.bias:
            return None
        shape = np.shape(ref.value(values))
        if shape[-2] != lt.z.shape[-2]:  # a (1, ·) gain or bias moves every row
            return None
        i, j = (cols, rows) if ref.transposed else (rows, cols)
        delta = np.asarray(delta)
        moved = lt.cache["xhat"][i] if ref is opt.gain else np.ones((len(i), lt.z.shape[-1]))
        vals = lt.z[i].astype(np.result_type(delta, float))
        if shape[-1] == 1:  # a column gain or bias is broadcast along its row
            return i, vals + delta[:, None] * moved
        batch = np.arange(len(i))
        vals[batch, j] += delta * moved[batch, j]
        return i, vals
    fusable = True  # a = f(z) over the layer's whole output: a loss may be fused with f
    closed_form = False
    sym_z = sym_backward = None

    @classmethod
    def parse(cls, b, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, _up) -> Layer:
        """{<key>: {gain, bias, eps}, activation: f}; gain and bias broadcast onto the layer's output."""
        options = kind_options(cls.key, index, mapping, KEYS)
        along = in_shape[0] if cls.axis == -2 else in_shape[1]
        if along < 2:
            what = "rows" if cls.axis == -2 else "columns"
            raise mapping[cls.key].error(f"a {cls.key} layer standardizes over the {what}; the input of layer "
                                         f"{index} has {along} {what[:-1]} (its variance is 0)")
        gain = b.fitting_ref(options.get("gain"), "gain", index, in_shape)
        bias = b.fitting_ref(options.get("bias"), "bias", index, in_shape)
        opt = NormOptions(gain, bias, epsilon(options, cls.key, index), cls.axis)
        activation = b.activation(mapping.get("activation"), index, in_shape)
        return Layer(index, None, None, activation, in_shape, in_shape, place_of(node), cls.key, opt)

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        centred = a_in - np.mean(a_in, axis=opt.axis, keepdims=True)
        var = np.mean(centred * centred, axis=opt.axis, keepdims=True)
        scale = np.sqrt(var + opt.eps)
        xhat = centred / scale
        z = xhat if opt.gain is None else opt.gain.value(values) * xhat
        if opt.bias is not None:
            z = z + opt.bias.value(values)
        return activate(layer, a_in, z, values, xhat=xhat, scale=scale, centred=centred, var=var)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        """dx = (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂)) / √(σ² + eps), means along the axis, dx̂ = gain ⊙ δ."""
        opt = lt.layer.options
        delta = activation_backward(lt, g, grads)
        xhat, scale = lt.cache["xhat"], lt.cache["scale"]
        accumulate(grads, opt.gain, delta * xhat)
        accumulate(grads, opt.bias, delta)
        dxhat = delta if opt.gain is None else opt.gain.value(values) * delta
        mean = lambda x: np.mean(x, axis=opt.axis, keepdims=True)  # noqa: E731
        return (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / scale, delta

    @staticmethod
    def state(lt: LayerTrace):
        return None

    @staticmethod
    def footprint(layer: Layer) -> int:
        """The centred input, x̂, z and a (and the statistics, small beside them)."""
        n, m = layer.in_shape
        return 4 * n * m + n + m


class LayerNorm(_Norm):
    """Layer norm: each column standardized over its rows, then gain ⊙ x̂ + bias."""

    key = "layernorm"
    standard = ("δ = ∂J/∂z; ∂J/∂gain = Σ_cols δ ∘ x̂, ∂J/∂bias = Σ_cols δ; with d = gain ∘ δ and means over each "
                "column's rows, ∂J/∂x = (d − mean(d) − x̂ ∘ mean(d ∘ x̂)) / √(σ² + eps)")
    axis = -2
    schema = {"type": "object", "additionalProperties": False,
              "description": "Each column standardized over its rows: z = gain ⊙ (x − μ)/√(σ² + eps) + bias.",
              "properties": SCHEMA_PROPERTIES}

    @staticmethod
    def spread_rows(layer: Layer, lt: LayerTrace, rows, vals, values):
        """z (B, n, m) when input row rows[b] becomes vals[b], as a filler of any slice: every column's mean and
        variance move, but only by that one row, so they are updated in O(m) for the whole batch (μ' = μ + d/n,
        n·σ'² = n·σ² + 2d·c_r + d²(1 − 1/n), with d = the row's change, c = x − μ). Column j of z is then an affine
        map of the base's, gain ⊙ c·s_j + gain·t_j + bias with s = 1/σ', t = −(d/n)/σ' (the moved row adds its own
        gain·d/σ'): a lowrank.ColumnSpread of those (B, m, 3) coefficients over (m, 3, n) columns, whose fill makes
        any slice of the variants with one product."""
        opt, x = layer.options, lt.a_in
        n = x.shape[-2]
        centred = lt.cache["centred"]  # the forward pass's: the base statistics bit for bit
        d = vals - x[rows]
        inv = d * ((1.0 - 1.0 / n) / n)  # then n·σ'²/n + eps, in place: a batch holds B·m of each
        inv += centred[rows] * (2.0 / n)
        inv *= d
        inv += lt.cache["var"] + opt.eps
        np.sqrt(inv, out=inv)
        np.divide(1.0, inv, out=inv)
        columns = _columns(layer, lt, values)  # (m, 3, n): gain ⊙ c, gain, bias, column by column
        coef = np.empty((len(rows), x.shape[-1], 3), dtype=inv.dtype)
        coef[:, :, 0] = inv
        own = np.multiply(d, inv, out=d)  # d/σ', the moved row's own change once times its gain
        np.multiply(own, -1.0 / n, out=coef[:, :, 1])
        coef[:, :, 2] = 1.0
        own *= columns[:, 1, rows].T
        base = np.zeros((x.shape[-1], 3))  # the base pass's (s, t, 1): s = 1/√(σ² + eps), the forward's own scale
        base[:, 0], base[:, 2] = 1.0 / lt.cache["scale"][0], 1.0
        return ColumnSpread(coef, columns, own, rows, base)


def _columns(layer: Layer, lt: LayerTrace, values) -> np.ndarray:
    """(m, 3, n): column j of gain ⊙ (x − μ), of the gain and of the bias (broadcast onto z), made once per trace
    (spread_rows runs only where the layer does not read the moved param, so they are the base pass's)."""
    if "columns" not in lt.cache:
        opt, centred = layer.options, lt.cache["centred"]
        gain = np.ones_like(centred) if opt.gain is None else np.broadcast_to(opt.gain.value(values), centred.shape)
        bias = np.zeros_like(centred) if opt.bias is None else np.broadcast_to(opt.bias.value(values), centred.shape)
        lt.cache["columns"] = np.ascontiguousarray(np.stack([gain * centred, gain, bias]).transpose(2, 0, 1))
    return lt.cache["columns"]


class BatchNorm(_Norm):
    """Batch norm in training mode: each row standardized over the columns (the batch), then gain ⊙ x̂ + bias."""

    key = "batchnorm"
    standard = ("δ = ∂J/∂z; ∂J/∂gain = Σ_cols δ ∘ x̂, ∂J/∂bias = Σ_cols δ; with d = gain ∘ δ and means over each "
                "row's columns (the batch), ∂J/∂x = (d − mean(d) − x̂ ∘ mean(d ∘ x̂)) / √(σ² + eps)")
    axis = -1
    schema = {"type": "object", "additionalProperties": False,
              "description": "Training mode: each row standardized over the columns (the batch's own mean "
                             "and biased variance): z = gain ⊙ (x − μ)/√(σ² + eps) + bias.",
              "properties": SCHEMA_PROPERTIES}

    @staticmethod
    def carry_rows(layer: Layer, lt: LayerTrace, rows, vals, values):
        """A changed input row moves only its own statistics, so only that row of z, recomputed from the row alone.
        (Layer norm has no such method: a changed row moves every column's statistics.)"""
        opt = layer.options
        centred = vals - np.mean(vals, axis=-1, keepdims=True)
        z = centred / np.sqrt(np.mean(centred * centred, axis=-1, keepdims=True) + opt.eps)
        for ref, add in ((opt.gain, False), (opt.bias, True)):
            if ref is not None:
                full = np.broadcast_to(ref.value(values), lt.z.shape)[rows]
                z = z + full if add else z * full
        return z
