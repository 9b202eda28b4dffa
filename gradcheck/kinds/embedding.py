"""Embedding: each integer of the input picks a column of a table param; repeated indices accumulate.

The input holds indices (k, m): column j is one example of k tokens, and its output stacks the k picked
columns of the table (k·d rows, token 1 on top), as a neural language model concatenates a context window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import Layer, Place, Ref
from ..nodes import place_of
from ..shapes import Shape, fmt_shape
from ..trace import LayerTrace, accumulate, activate, activation_backward
from ..yamlsrc import Node
from .common import kind_options

KEYS = ("table",)


@dataclass(frozen=True)
class EmbeddingOptions:
    """The table (d, V): column v is the vector of index v; each input column holds `tokens` indices."""

    table: Ref
    dim: int
    vocabulary: int
    tokens: int
    input: str  # the data name that holds the indices, for messages
    input_place: Place  # where that name is declared: a bad index is reported there

    @property
    def patch_rows(self) -> int:
        """A moved table entry moves one row of each token's block."""
        return self.tokens

    @property
    def label_parts(self) -> list[str]:
        return [self.table.label]


class Embedding:
    """z = the table's columns picked by the input's indices; ∂J/∂table[:, v] sums δ over every use of v."""

    key = "embedding"
    standard = ("δ = ∂J/∂z; ∂J/∂table = Σ_k δ_k O_kᵀ, δ_k the block of token k and O_k the one-hot matrix of "
                "the k-th row of indices: each use of an index adds its column")
    schema = {"type": "object", "additionalProperties": False, "required": ["table"],
              "description": "Columns of table (d, V) picked by the integer indices the layer reads (0 … V−1); "
                             "k indices per column give k·d rows.",
              "properties": {"table": {"$ref": "#/$defs/transposableName"}}}
    analytic = True  # a selection: linear in the table
    row_patch = False  # a moved table entry moves every row that picked its column

    @staticmethod
    def patch(layer: Layer, lt: LayerTrace, ref: Ref, rows, cols, delta, values):
        """(rows (B, k), their new z (B, k, m)) when table entry (rows[b], cols[b]) moves by delta[b]: row i of
        each token's block, in the columns whose index is the entry's column, moves by δ."""
        opt = layer.options
        if ref is not opt.table:
            return None
        i, v = (cols, rows) if ref.transposed else (rows, cols)
        idx = lt.cache["indices"]  # (k, m)
        touched = np.arange(opt.tokens)[None, :] * opt.dim + i[:, None]  # (B, k)
        hit = idx[None, :, :] == v[:, None, None]  # (B, k, m)
        return touched, lt.z[touched] + np.asarray(delta)[:, None, None] * hit
    moved = None
    fusable = True
    closed_form = False
    sym_z = sym_backward = None

    @staticmethod
    def parse(b, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, _up) -> Layer:
        """{embedding: {table}, activation: f}: the first layer of a term whose input is data."""
        options = kind_options("embedding", index, mapping, KEYS, required=("table",))
        source = getattr(b, "term_input", None)
        if index != 1 or source is None or b.kinds.get(source.name) != "data" or source.transposed:
            raise mapping["embedding"].key_error(
                f"an embedding layer reads integer indices: it must be the first layer of its term, and the "
                f"term's input a data name (not a param, not transposed); layer {index} reads "
                f"{'the layer before it' if index != 1 else (source.label if source else 'nothing')}")
        table = b.ref(options["table"], f"the table of layer {index}", allow_transpose=True)
        dim, vocabulary = b.ref_shape(table)
        tokens = in_shape[0]
        out_shape = (tokens * dim, in_shape[1])
        b.check_work(mapping["embedding"], f"the embedding of layer {index} outputs", out_shape[0] * out_shape[1],
                     "numbers")
        declared = b.top["data"].value[source.name]
        opt = EmbeddingOptions(table, dim, vocabulary, tokens, source.name, place_of(declared))
        activation = b.activation(mapping.get("activation"), index, out_shape)
        return Layer(index, None, None, activation, in_shape, out_shape, place_of(node), "embedding", opt)

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        idx = indices(layer, a_in)
        picked = opt.table.value(values)[..., :, idx]  # (..., d, k, m)
        z = np.swapaxes(picked, -3, -2).reshape(picked.shape[:-3] + (opt.tokens * opt.dim, idx.shape[-1]))
        return activate(layer, a_in, z, values, indices=idx)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        """Scatter-add δ of each token's block into the table column its index picked."""
        opt = lt.layer.options
        delta = activation_backward(lt, g, grads)
        idx = lt.cache["indices"]
        per_token = delta.reshape(opt.tokens, opt.dim, -1).transpose(0, 2, 1)  # (k, m, d)
        table_grad = np.zeros((opt.vocabulary, opt.dim), dtype=np.result_type(delta, float))
        np.add.at(table_grad, idx.ravel(), per_token.reshape(-1, opt.dim))
        accumulate(grads, opt.table, table_grad.T)
        return np.zeros(np.shape(lt.a_in)), delta  # indices carry no gradient

    @staticmethod
    def state(lt: LayerTrace):
        return None

    @staticmethod
    def footprint(layer: Layer) -> int:
        """z, a and the indices."""
        return 2 * layer.out_shape[0] * layer.out_shape[1] + layer.in_shape[0] * layer.in_shape[1]


def indices(layer: Layer, a_in) -> np.ndarray:
    """The input as integer indices 0 … V−1; anything else is a located error naming the first bad entry."""
    opt = layer.options
    a = np.asarray(a_in)
    if a.ndim != 2 or np.iscomplexobj(a):  # the indices are data: never batched, never moved
        raise layer.place.error(f"the indices of {layer.label} must be one fixed integer matrix")
    bad = np.argwhere(~np.isfinite(a) | (a != np.round(a)) | (a < 0) | (a >= opt.vocabulary))
    if len(bad):
        r, c = (int(x) for x in bad[0])
        others = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise opt.input_place.error(
            f"{opt.input} holds the indices of {layer.label}: whole numbers from 0 to {opt.vocabulary - 1} (the "
            f"columns of table {opt.table.label}, shape {fmt_shape((opt.dim, opt.vocabulary))}); entry [{r}, {c}] "
            f"is {a[r, c]:g}{others}")
    return a.astype(np.intp)
