"""Dropout with a fixed mask: z = a ⊙ M / (1 − rate), M drawn once from the spec's seed.

A gradient check needs a deterministic function, so the mask is part of the spec: the same seed gives the
same mask in every evaluation (base pass, every perturbation, backprop), and the layer is linear.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from ..model import Layer
from ..nodes import number, place_of
from ..shapes import Shape
from ..trace import LayerTrace, activate, activation_backward
from ..yamlsrc import Node
from .common import kind_options

KEYS = ("rate",)


@dataclass(frozen=True)
class DropoutOptions:
    """The rate and the scaled mask M/(1 − rate) it was drawn into (a fixed matrix of the layer's shape)."""

    rate: float
    mask: np.ndarray = field(compare=False, hash=False, repr=False)

    @property
    def label_parts(self) -> list[str]:
        return [f"rate {self.rate:g}"]


def draw_mask(seed: int, term: int, index: int, shape: Shape, rate: float) -> np.ndarray:
    """Keep each entry with probability 1 − rate, scaled by 1/(1 − rate); its own stream per (seed, term, layer)."""
    rng = np.random.default_rng([seed, zlib.crc32(f"dropout {term} {index}".encode())])
    mask = (rng.random(shape) >= rate) / (1.0 - rate)
    mask.setflags(write=False)
    return mask


class Dropout:
    """z = a ⊙ M/(1 − rate) with M fixed by the seed; backward multiplies δ by the same mask."""

    key = "dropout"
    standard = "∂J/∂a = δ ∘ M / (1 − rate), with the same mask M as the forward pass"
    schema = {"type": "object", "additionalProperties": False, "required": ["rate"],
              "description": "Inverted dropout with a fixed mask drawn from the spec's seed: z = a ⊙ M/(1 − rate).",
              "properties": {"rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1}}}
    analytic = True  # a fixed linear map
    row_patch = False  # it is not z = W a + b: the perturber must not treat it as a dense layer
    patch = moved = None  # no params of its own
    fusable = True
    closed_form = False  # the mask is not a name the expression language can read
    sym_z = sym_backward = None

    @staticmethod
    def parse(b, index: int, node: Node, mapping: dict[str, Node], in_shape: Shape, _up) -> Layer:
        """{dropout: {rate}, activation: f}: the mask comes from the spec's seed, the term and the layer."""
        options = kind_options("dropout", index, mapping, KEYS, required=("rate",))
        rate = number(options["rate"], f"the dropout rate of layer {index}")
        if not 0 <= rate < 1:
            raise options["rate"].error(f"the dropout rate of layer {index} must be from 0 up to (not including) 1, "
                                        f"not {rate:g}")
        seed = b.seed() if "seed" in b.top else 0
        opt = DropoutOptions(rate, draw_mask(seed, getattr(b, "term_index", 1), index, in_shape, rate))
        activation = b.activation(mapping.get("activation"), index, in_shape)
        return Layer(index, None, None, activation, in_shape, in_shape, place_of(node), "dropout", opt)

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        return activate(layer, a_in, a_in * layer.options.mask, values)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        delta = activation_backward(lt, g, grads)
        return delta * lt.layer.options.mask, delta

    @staticmethod
    def state(lt: LayerTrace):
        return None

    @staticmethod
    def carry_rows(layer: Layer, lt: LayerTrace, rows, vals, values):
        """A changed input row is the same row of z, masked: the perturbation stays one row."""
        return vals * layer.options.mask[rows]

    @staticmethod
    def footprint(layer: Layer) -> int:
        """z and a (the mask is shared by every evaluation)."""
        return 2 * layer.out_shape[0] * layer.out_shape[1]


def redraw_masks(model):
    """The model with every dropout mask drawn again from its seed (a run with --seed moves the masks too)."""
    def layer_of(layer, term: int):
        if layer.kind != "dropout":
            return layer
        mask = draw_mask(model.seed, term, layer.index, layer.in_shape, layer.options.rate)
        return replace(layer, options=replace(layer.options, mask=mask))
    terms = tuple(replace(t, layers=tuple(layer_of(l, t.index) for l in t.layers)) for t in model.terms)
    return replace(model, terms=terms)
