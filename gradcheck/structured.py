"""Array geometry for structured layers: im2col / col2im and max-pooling windows, in pure numpy.

Images travel as columns: a (C·H·W, m) matrix holds m images flattened in (channel, row, column)
order (1-D signals: (C·L, m)). Forward functions accept any leading batch axes, because the
finite-difference engine evaluates stacks of perturbed values in one call; the backward ones are
only called unbatched. Windows come from `sliding_window_view` (views, no Toeplitz matrix).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def as_images(a: np.ndarray, image: tuple[int, ...]) -> np.ndarray:
    """(..., C·H·W, m) -> (..., C, H, W, m)."""
    return a.reshape(a.shape[:-2] + tuple(image) + a.shape[-1:])


def windows(x: np.ndarray, size, stride) -> np.ndarray:
    """(..., C, *spatial, m) -> (..., C, *out, m, *size): every window, a strided view."""
    dims = len(size)
    axes = tuple(range(-1 - dims, -1))
    view = sliding_window_view(x, tuple(size), axis=axes)
    strided = tuple(slice(None, None, s) for s in stride)
    return view[(Ellipsis, *strided, slice(None)) + (slice(None),) * dims]


def pad_spatial(x: np.ndarray, padding) -> np.ndarray:
    """Zero padding on the spatial axes of (..., C, *spatial, m)."""
    if not any(padding):
        return x
    widths = [(0, 0)] * (x.ndim - len(padding) - 1) + [(p, p) for p in padding] + [(0, 0)]
    return np.pad(x, widths)


def im2col(a: np.ndarray, image, size, stride, padding) -> np.ndarray:
    """(..., C·H·W, m) -> (..., C·kh·kw, H'·W'·m): one column per (position, example)."""
    dims = len(size)
    win = windows(pad_spatial(as_images(a, image), padding), size, stride)  # (..., C, *out, m, *size)
    # bring the window axes next to C: (..., C, *size, *out, m)
    first_window = win.ndim - dims
    c_axis = win.ndim - 2 * dims - 2
    order = list(range(c_axis + 1)) + list(range(first_window, win.ndim)) + list(range(c_axis + 1, first_window))
    cols = win.transpose(order)
    lead = cols.shape[:c_axis]
    return cols.reshape(lead + (image[0] * int(np.prod(size)), -1))


def col2im(dcols: np.ndarray, image, size, stride, padding, out_spatial) -> np.ndarray:
    """The adjoint of im2col (unbatched): sum every window's column back onto the pixels it read."""
    channels, spatial = image[0], tuple(image[1:])
    m = dcols.shape[-1] // int(np.prod(out_spatial))
    blocks = dcols.reshape((channels, *size, *out_spatial, m))
    padded = np.zeros((channels, *(n + 2 * p for n, p in zip(spatial, padding)), m))
    for offset in np.ndindex(*size):
        target = tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, stride, out_spatial))
        padded[(slice(None), *target, slice(None))] += blocks[(slice(None), *offset)]
    inner = tuple(slice(p, p + n) for p, n in zip(padding, spatial))
    return padded[(slice(None), *inner, slice(None))].reshape(-1, m)


def pool_windows(a: np.ndarray, image, size, stride) -> np.ndarray:
    """(..., C·H·W, m) -> (..., C, *out, m, kh·kw): each pooling window as a flat last axis."""
    win = windows(as_images(a, image), size, stride)
    return win.reshape(win.shape[: win.ndim - len(size)] + (-1,))


def max_pool(a: np.ndarray, image, size, stride):
    """(pooled (..., C·H'·W', m), first argmax in each window, margin to the runner-up).

    Ties go to the first maximum in (row, column) order within the window: np.argmax's rule.
    The margin is the gap between the largest and the second-largest value of each window
    (0 at a tie, where max is not differentiable; inf for 1-entry windows).
    """
    win = pool_windows(a, image, size, stride)
    argmax = np.argmax(win, axis=-1)
    top = np.take_along_axis(win, argmax[..., None], axis=-1)[..., 0]
    if win.shape[-1] > 1:
        runner_up = np.partition(win, -2, axis=-1)[..., -2]
        margin = top - runner_up
    else:
        margin = np.full_like(top, np.inf)
    lead = win.shape[: win.ndim - len(size) - 3]  # batch axes before (C, *out, m, window)
    column = lead + (-1, win.shape[-2])
    return top.reshape(column), argmax, margin.reshape(column)


def max_unpool(delta: np.ndarray, argmax: np.ndarray, image, size, stride) -> np.ndarray:
    """(unbatched) Route each window's δ to the input entry that was its (first) maximum."""
    channels, spatial = image[0], tuple(image[1:])
    m = delta.shape[-1]
    out_spatial = argmax.shape[1:-1]
    grid = np.indices(argmax.shape)  # (c, *o, n) for every window
    offsets = np.unravel_index(argmax, tuple(size))
    index = (grid[0],) + tuple(grid[1 + i] * stride[i] + offsets[i] for i in range(len(size))) + (grid[-1],)
    out = np.zeros((channels, *spatial, m))
    np.add.at(out, index, delta.reshape((channels, *out_spatial, m)))
    return out.reshape(-1, m)
