"""Image geometry shared by the kinds that read columns as images (conv, maxpool): where the image
shape comes from, and the per-axis whole numbers (size, stride, padding) a spec writes."""

from __future__ import annotations

from dataclasses import dataclass

import math


from ..shapes import Shape, fmt_shape
from ..yamlsrc import Node
from ..layer_options import fmt_image
from ..model import Layer
from ..nodes import expect_list, whole


@dataclass(frozen=True)
class Upstream:
    """What a structured layer learns from the layer before it."""

    image: tuple[int, ...] | None
    layer: Layer | None

    @property
    def label(self) -> str:
        return self.layer.label if self.layer is not None else "the term's input"


def layer_image(index: int, kind: str, node: Node | None, spec_node: Node, in_shape: Shape,
                up: Upstream) -> tuple[int, ...]:
    """The image of a conv/maxpool input: as written, or from the layer before; both must agree."""
    if node is None:
        if up.image is None:
            raise spec_node.error(
                f"{kind} of layer {index} needs image: [C, H, W] (or [C, L]): the layer before it "
                f"({up.label}) does not output images")
        return up.image
    dims = expect_list(node, f"the image of layer {index}")
    if len(dims) not in (2, 3):
        raise node.error(f"image of layer {index} must be [C, H, W] or, for signals, [C, L]; got {len(dims)} "
                         f"numbers")
    image = tuple(whole(d, f"an image dimension of layer {index}", 1) for d in dims)
    if up.image is not None and up.image != image:
        raise node.error(f"shape mismatch in layer {index}: {kind} image {fmt_image(image)} but {up.label} "
                         f"outputs images {fmt_image(up.image)}")
    if math.prod(image) != in_shape[0]:
        raise node.error(
            f"shape mismatch in layer {index}: {kind} image {fmt_image(image)} holds "
            f"{'·'.join(map(str, image))} = {math.prod(image)} numbers per column but the layer's input "
            f"has shape {fmt_shape(in_shape)} ({in_shape[0]} rows)")
    return image


def int_list(node: Node, what: str, dims: int, minimum: int) -> tuple[int, ...]:
    """[kh, kw] for a 2-D image, [k] for a 1-D one."""
    items = expect_list(node, what)
    if len(items) != dims:
        want = "[kh, kw] for a [C, H, W] image" if dims == 2 else "[k] for a [C, L] signal"
        raise node.error(f"{what} must be {want}, got {len(items)} number{'s' * (len(items) != 1)}")
    return tuple(whole(d, what, minimum) for d in items)

def int_or_list(node: Node | None, what: str, dims: int, default, minimum: int) -> tuple[int, ...]:
    """A number used along every spatial axis, or one per axis."""
    if node is None:
        return tuple(default) if isinstance(default, tuple) else (default,) * dims
    if isinstance(node.value, list):
        return int_list(node, what, dims, minimum)
    return (whole(node, what, minimum),) * dims
