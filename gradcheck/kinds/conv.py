"""Convolution: a dense layer whose matrix repeats a few weights, computed by im2col.

Its parser, its numbers (forward, backward, footprint) and its place in explain are here together.
"""

from __future__ import annotations

import math

import numpy as np

from .. import structured
from ..shapes import Shape, fmt_shape
from ..layer_options import ConvOptions, fmt_image
from ..model import Layer, Ref
from ..nodes import check_keys, expect_mapping, place_of
from ..trace import LayerTrace, accumulate, activate, activation_backward
from ..yamlsrc import Node
from .dense import Dense
from .geometry import Upstream, int_or_list, layer_image

KEYS = ("kernel", "image", "size", "stride", "padding")


class Conv:
    """z = K ⊛ a (+ c per filter): a dense layer whose matrix repeats the kernel, computed by im2col.

    Each column of a is one (C, *spatial) image. K is (F, C·kh·kw); im2col turns the input into
    one column per (position, example), so z = K @ cols, and backward sums δ·colsᵀ over every
    position: the tied weight's gradient is the sum over the places it is used.
    """

    key = "conv"
    schema = {"type": "object", "additionalProperties": False, "required": ["kernel", "size"],
              "description": "Valid cross-correlation; kernel has shape (F, C·kh·kw).",
              "properties": {"kernel": {"$ref": "#/$defs/transposableName"}, "image": {"$ref": "#/$defs/image"},
                             "size": {"$ref": "#/$defs/dims"}, "stride": {"$ref": "#/$defs/dims"},
                             "padding": {"$ref": "#/$defs/nonNegativeDims"}}}
    analytic = True
    row_patch = False
    moved = None

    @staticmethod
    def patch(layer: Layer, lt: LayerTrace, ref: Ref, rows, cols, delta, values):
        """(rows (B, P), their new z (B, P, m)) when entry (rows[b], cols[b]) of the kernel or the bias moves by
        delta[b]: only filter f's P output rows change, by δ·(the unfolded input's tap t) or by δ; else None."""
        opt, m = layer.options, lt.z.shape[-1]
        f, t = (cols, rows) if ref.transposed else (rows, cols)
        positions = lt.z.shape[0] // opt.filters
        touched = f[:, None] * positions + np.arange(positions)[None, :]  # filter-major rows of z
        if ref is opt.kernel:
            moved = lt.cache["cols"][t].reshape(len(t), positions, m)
        elif ref is opt.bias:
            moved = np.ones((len(t), positions, m))
        else:
            return None
        return touched, lt.z[touched] + np.asarray(delta)[:, None, None] * moved
    fusable = True  # a = f(z) over the layer's whole output: a loss may be fused with f (computed from z)
    closed_form = False
    sym_z = sym_backward = None

    @staticmethod
    def parse(b, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, up: Upstream) -> Layer:
        """{conv: {kernel, size, image, stride, padding}, bias: c, activation: f}."""
        spec_node = mapping["conv"]
        conv = expect_mapping(spec_node, f"conv of layer {index}")
        check_keys(conv, KEYS, f"conv of layer {index}")
        for key in ("kernel", "size"):
            if key not in conv:
                raise spec_node.error(f'conv of layer {index} needs "{key}"')
        image = layer_image(index, "conv", conv.get("image"), spec_node, in_shape, up)
        dims = len(image) - 1
        size = int_or_list(conv["size"], f"conv size of layer {index}", dims, None, minimum=1)
        stride = int_or_list(conv.get("stride"), f"conv stride of layer {index}", dims, 1, minimum=1)
        padding = int_or_list(conv.get("padding"), f"conv padding of layer {index}", dims, 0, minimum=0)
        for n, p, k in zip(image[1:], padding, size):
            if k > n + 2 * p:
                raise conv["size"].error(
                    f"conv size {fmt_image(size)} of layer {index} does not fit the image {fmt_image(image)}"
                    f" padded by {fmt_image(padding)}")
        kernel = conv_kernel(b, conv["kernel"], index, image, size)
        filters = b.ref_shape(kernel)[0]
        bias = conv_bias(b, mapping["bias"], index, filters) if "bias" in mapping else None
        options = ConvOptions(kernel, bias, image, size, stride, padding, filters)
        out_shape = (math.prod(options.out_image), in_shape[1])
        taps = image[0] * math.prod(size)
        b.check_work(spec_node, f"the convolution of layer {index} unfolds into",
                        taps * math.prod(options.out_spatial) * in_shape[1], "numbers (im2col)")
        b.check_work(spec_node, f"the convolution of layer {index} outputs", out_shape[0] * out_shape[1], "numbers")
        activation = b.activation(mapping.get("activation"), index, out_shape)
        return Layer(index, None, None, activation, in_shape, out_shape, place_of(node), "conv", options)


    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        cols = structured.im2col(a_in, opt.image, opt.size, opt.stride, opt.padding)
        z = np.matmul(opt.kernel.value(values), cols)  # (..., F, positions·m)
        if opt.bias is not None:
            z = z + opt.bias.value(values)
        z = z.reshape(z.shape[:-2] + (-1, a_in.shape[-1]))  # rows in (filter, position) order
        return activate(layer, a_in, z, values, cols=cols)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        opt = lt.layer.options
        delta = activation_backward(lt, g, grads)
        per_filter = delta.reshape(opt.filters, -1)  # (F, positions·m)
        accumulate(grads, opt.bias, per_filter.sum(axis=1, keepdims=True))
        accumulate(grads, opt.kernel, per_filter @ lt.cache["cols"].T)
        dcols = opt.kernel.value(values).T @ per_filter
        return structured.col2im(dcols, opt.image, opt.size, opt.stride, opt.padding, opt.out_spatial), delta

    @staticmethod
    def state(lt: LayerTrace):
        return None

    @staticmethod
    def footprint(layer: Layer) -> int:
        """z and a, the unfolded columns, and the padded input."""
        opt, m = layer.options, layer.in_shape[1]
        unfolded = opt.channels * math.prod(opt.size) * math.prod(opt.out_spatial) * m
        padded = opt.channels * math.prod(n + 2 * p for n, p in zip(opt.image[1:], opt.padding)) * m
        return Dense.footprint(layer) + unfolded + padded


def conv_kernel(b, node: Node, index: int, image: tuple[int, ...], size: tuple[int, ...]) -> Ref:
    """The kernel name: (filters, C·kh·kw), one flattened C×kh×kw block per filter."""
    if isinstance(node.value, str) and node.value.strip().endswith(".T"):
        raise node.error(f"the kernel of layer {index} must be a name of shape (filters, C·kh·kw); "
                         f"a transposed kernel is not supported")
    kernel = b.ref(node, f"the kernel of layer {index}")
    k_shape, taps = b.ref_shape(kernel), image[0] * math.prod(size)
    if k_shape[1] != taps:
        raise node.error(
            f"shape mismatch in layer {index}: kernel {kernel.label} has shape {fmt_shape(k_shape)} but image "
            f"{fmt_image(image)} with size {fmt_image(size)} needs (filters, {taps}) "
            f"({'C·k' if len(size) == 1 else 'C·kh·kw'} = {image[0]}·{'·'.join(map(str, size))})")
    return kernel

def conv_bias(b, node: Node, index: int, filters: int) -> Ref:
    """One bias per filter, (filters, 1), shared over every position."""
    bias = b.ref(node, f"the bias of layer {index}", allow_transpose=True)
    if b.ref_shape(bias) != (filters, 1):
        raise node.error(
            f"shape mismatch in layer {index}: conv bias {bias.label} has shape "
            f"{fmt_shape(b.ref_shape(bias))}; it must be (filters, 1) = ({filters}, 1), "
            f"one number per filter shared over positions")
    return bias
