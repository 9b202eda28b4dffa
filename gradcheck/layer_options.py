"""The options of the structured layer kinds (conv, maxpool, recurrent): frozen geometry, read by kinds/ and model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: model imports nothing from here, and this module nothing at run time
    from .model import Ref


def fmt_image(image: tuple[int, ...]) -> str:
    """An image shape as specs write it: [1, 8, 8]."""
    return "[" + ", ".join(map(str, image)) + "]"


def _spatial_names(dims: int) -> tuple[str, ...]:
    return ("row", "column") if dims == 2 else ("tap",)


@dataclass(frozen=True)
class ConvOptions:
    """A convolution's geometry: "valid" cross-correlation of each (C, *spatial) column image.

    The kernel is (F, C·kh·kw), one flattened C×kh×kw block per filter (the im2col view); the
    bias, if any, is (F, 1): one number per filter, shared over every position.
    """

    kernel: Ref
    bias: Ref | None
    image: tuple[int, ...]  # (C, H, W) or (C, L)
    size: tuple[int, ...]  # (kh, kw) or (k,)
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    filters: int

    @property
    def channels(self) -> int:
        return self.image[0]

    @property
    def out_spatial(self) -> tuple[int, ...]:
        """H', W' (or L'): positions of the window along each spatial axis."""
        return tuple((n + 2 * p - k) // s + 1
                     for n, p, k, s in zip(self.image[1:], self.padding, self.size, self.stride))

    @property
    def out_image(self) -> tuple[int, ...]:
        return (self.filters, *self.out_spatial)

    @property
    def label_parts(self) -> list[str]:
        return [self.kernel.label] + (["+ " + self.bias.label] if self.bias else [])

    def entry_coordinates(self, param: str, index) -> tuple[tuple[str, int], ...] | None:
        """(filter, channel, row, column) of a kernel entry given by its matrix index."""
        if self.kernel.name != param or index is None:
            return None
        f, j = index
        channel, *offsets = (int(i) for i in np.unravel_index(j, (self.channels, *self.size)))
        return (("filter", int(f)), ("channel", channel), *zip(_spatial_names(len(self.size)), offsets))


@dataclass(frozen=True)
class PoolOptions:
    """Max pooling windows over each channel of a (C, *spatial) column image."""

    image: tuple[int, ...]
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def out_image(self) -> tuple[int, ...]:
        return (self.image[0], *((n - k) // s + 1 for n, k, s in zip(self.image[1:], self.size, self.stride)))

    @property
    def label_parts(self) -> list[str]:
        return ["×".join(map(str, self.size))]


@dataclass(frozen=True)
class RecurrentOptions:
    """h_t = f(Wh h_{t-1} + Wx x_t + b) over `steps` blocks of the input column; f is the layer's activation."""

    hidden_weight: Ref
    input_weight: Ref
    bias: Ref | None
    init: Ref | None  # h_0; None means zeros
    steps: int
    hidden: int  # n, rows of h
    inputs: int  # d, rows of each x_t
    output: str  # "last" | "all"

    @property
    def label_parts(self) -> list[str]:
        parts = [self.hidden_weight.label, self.input_weight.label]
        return parts + (["+ " + self.bias.label] if self.bias else []) + [f"{self.steps} steps"]
