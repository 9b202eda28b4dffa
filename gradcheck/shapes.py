"""Shapes of 2-D matrices, as specs and messages write them."""

from __future__ import annotations

Shape = tuple[int, int]


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """numpy broadcasting of two 2-D shapes, or None when they do not broadcast."""
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y) if 1 in (x, y) else x)
    return (out[0], out[1])


def fmt_shape(shape: Shape) -> str:
    """A shape as people write it: (4, 6)."""
    return f"({shape[0]}, {shape[1]})"
