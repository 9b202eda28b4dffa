"""Max pooling: the maximum of each window, the gradient routed to the window's first maximum.

Its parser, its numbers and its discrete state (which entry won each window, for kinks) are here together.
"""

from __future__ import annotations

import math

import numpy as np

from .. import structured
from ..shapes import Shape
from ..layer_options import PoolOptions, fmt_image
from ..model import Layer
from ..nodes import check_keys, expect_mapping, place_of
from ..trace import LayerTrace, activate, activation_backward
from ..yamlsrc import Node
from .geometry import Upstream, int_or_list, layer_image

KEYS = ("size", "stride", "image")


class MaxPool:
    """z = the maximum of each window; backward routes δ to the first maximum of each window.

    The trace's cache holds "margin": per output entry, the gap between the window's largest and
    second-largest value (0 at a tie, where max is not differentiable), for kink detection.
    """

    key = "maxpool"
    schema = {"type": "object", "additionalProperties": False, "required": ["size"],
              "description": "Maximum of each window; the gradient goes to the window's first maximum.",
              "properties": {"size": {"$ref": "#/$defs/dims"}, "stride": {"$ref": "#/$defs/dims"},
                             "image": {"$ref": "#/$defs/image"}}}
    analytic = False  # max has kinks at ties: no complex step through it
    row_patch = False
    patch = moved = None
    fusable = True  # a = f(z) over the layer's whole output: a loss may be fused with f (computed from z)
    closed_form = False
    sym_z = sym_backward = None

    @staticmethod
    def parse(b, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, up: Upstream) -> Layer:
        """{maxpool: {size, stride, image}, activation: f}; no bias."""
        spec_node = mapping["maxpool"]
        if "bias" in mapping:
            raise mapping["bias"].key_error(f"layer {index} (maxpool) takes no bias")
        pool = expect_mapping(spec_node, f"maxpool of layer {index}")
        check_keys(pool, KEYS, f"maxpool of layer {index}")
        if "size" not in pool:
            raise spec_node.error(f'maxpool of layer {index} needs "size", e.g. {{size: [2, 2]}}')
        image = layer_image(index, "maxpool", pool.get("image"), spec_node, in_shape, up)
        dims = len(image) - 1
        size = int_or_list(pool["size"], f"maxpool size of layer {index}", dims, None, minimum=1)
        stride = int_or_list(pool.get("stride"), f"maxpool stride of layer {index}", dims, size, minimum=1)
        for n, k in zip(image[1:], size):
            if k > n:
                raise pool["size"].error(f"maxpool size {fmt_image(size)} of layer {index} does not fit the image "
                                         f"{fmt_image(image)}")
        options = PoolOptions(image, size, stride)
        out_shape = (math.prod(options.out_image), in_shape[1])
        b.check_work(node, f"the max pooling of layer {index} holds",
                     math.prod(options.out_image) * math.prod(size) * in_shape[1], "numbers (overlapping windows)")
        activation = b.activation(mapping.get("activation"), index, out_shape)
        return Layer(index, None, None, activation, in_shape, out_shape, place_of(node), "maxpool", options)


    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        z, argmax, margin = structured.max_pool(a_in, opt.image, opt.size, opt.stride)
        return activate(layer, a_in, z, values, argmax=argmax, margin=margin)

    @staticmethod
    def state(lt: LayerTrace) -> np.ndarray:
        """Which entry won each window: a perturbation that changes it crossed a tie (a kink)."""
        return lt.cache["argmax"]

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        opt = lt.layer.options
        delta = activation_backward(lt, g, grads)
        return structured.max_unpool(delta, lt.cache["argmax"], opt.image, opt.size, opt.stride), delta

    @staticmethod
    def footprint(layer: Layer) -> int:
        """z, a, margin, the input, and the windows twice (copied out of the sliding view, then partitioned).

        Overlapping windows (stride below size) hold each input entry many times: 12×12 windows at
        stride 1 on a 40×40 image are 121,104 numbers per column against 1,600 in the image.
        """
        opt, m = layer.options, layer.in_shape[1]
        windows = math.prod(opt.out_image) * math.prod(opt.size) * m  # (C, *out) windows of kh·kw each
        return 3 * layer.out_shape[0] * layer.out_shape[1] + 3 * layer.in_shape[0] * m + 2 * windows
