"""The merges that combine a layer's inputs before its weight: one row each, with everything about the merge.

A layer with a merge key reads several values (layers, params or data, by name) and combines them into
the matrix its weight, bias and activation then act on: z = W·merge(inputs) + b, a = f(z). Each row holds
its numbers forward and backward (leading batch axes allowed: the finite-difference engine evaluates
stacks of perturbed points), its shape rule, its symbols for `explain`, whether the complex step may pass
through it, and its kinks. Adding a merge is adding one row to ROWS; a row that leaves a field out fails
at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import symbolic as s
from .matrixcalc import SOLVABLE
from .shapes import Shape, broadcast, fmt_shape


@dataclass(frozen=True)
class Merge:
    """One merge: forward(xs, opt), backward(g, xs, out, opt) → one signal per input (already at that input's
    shape), shape(shapes, opt) → Shape or a reason it cannot combine them, and the same two on symbols."""

    key: str
    arity: int | None  # inputs it takes; None: two or more
    forward: Callable
    backward: Callable
    shape: Callable
    sym_forward: Callable
    sym_backward: Callable
    formula: Callable  # (δ, input labels, i) -> how explain writes input i's share of δ
    analytic: bool  # holomorphic: the complex step may pass through it
    kinks: tuple  # non-smooth points of the merge itself (none of these has any; _register refuses them for now)
    nonfinite: str  # what a NaN or Inf first seen in its output most likely means ("": overflow, as anywhere)
    domain: tuple | None  # (which input, its MatrixDomain): where the merge is defined and well conditioned


def unbroadcast_to(g, shape: tuple):
    """Sum g down to an input's `shape` (with its own batch axes, if any), undoing numpy broadcasting."""
    g = np.asarray(g)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _t(x):
    return np.swapaxes(x, -1, -2)


def _batched(xs):
    """Every input with the same leading batch axes (base values meet stacks of perturbed ones)."""
    lead = np.broadcast_shapes(*(np.shape(x)[:-2] for x in xs))
    return [np.broadcast_to(x, lead + np.shape(x)[-2:]) for x in xs]


# ----------------------------------------------------------------------------- add


def _add_shape(shapes, opt):
    out = shapes[0]
    for shape in shapes[1:]:
        out = broadcast(out, shape)
        if out is None:
            return "they do not broadcast to one shape"
    return out


def _fold(xs, op):
    out = xs[0]
    for x in xs[1:]:
        out = op(out, x)
    return out


def _add_sym(xs, opt):
    return _fold(xs, s.add)


# ----------------------------------------------------------------------------- mul (Hadamard)


def _others(xs, i, times):
    """The product of every input but the i-th."""
    return _fold([x for j, x in enumerate(xs) if j != i], times)


def _mul_backward(g, xs, out, opt):
    """g • (the product of every other input), from prefix and suffix products: O(n), not O(n²), for n inputs."""
    before, after = [1.0], [1.0]
    for x in xs[:-1]:
        before.append(before[-1] * x)
    for x in xs[:0:-1]:
        after.append(after[-1] * x)
    return [unbroadcast_to(g * before[i] * after[len(xs) - 1 - i], np.shape(x)) for i, x in enumerate(xs)]


def _mul_sym_backward(g, xs, out, opt):
    return [s.reduce_to(s.mul(g, _others(xs, i, s.mul)), x.shape) for i, x in enumerate(xs)]


# ----------------------------------------------------------------------------- matmul


def _matmul_shape(shapes, opt):
    (n, k), (k2, m) = shapes
    return (n, m) if k == k2 else f"the first has {k} columns and the second {k2} rows"


def _matmul_backward(g, xs, out, opt):
    a, b = xs
    return [unbroadcast_to(g @ _t(b), np.shape(a)), unbroadcast_to(_t(a) @ g, np.shape(b))]


# ----------------------------------------------------------------------------- concat (stacked rows)


def _concat_shape(shapes, opt):
    cols = {c for _, c in shapes}
    if len(cols) > 1:
        return "stacked rows need the same number of columns"
    return (sum(r for r, _ in shapes), shapes[0][1])


def _offsets(shapes) -> list[tuple[int, int]]:
    out, start = [], 0
    for rows, _ in shapes:
        out.append((start, start + rows))
        start += rows
    return out


def _concat_backward(g, xs, out, opt):
    spans = _offsets([np.shape(x)[-2:] for x in xs])
    return [unbroadcast_to(g[..., a:b, :], np.shape(x)) for (a, b), x in zip(spans, xs)]


def _select(n: int, start: int, stop: int):
    return s.fn("select", s.num(n), s.num(start), s.num(stop))


def _concat_sym(xs, opt):
    n = sum(x.shape[0] for x in xs)
    parts = [s.matmul(s.t(_select(n, a, b)), x) for (a, b), x in zip(_offsets([x.shape for x in xs]), xs)]
    return _add_sym(parts, opt)


def _concat_sym_backward(g, xs, out, opt):
    n = g.shape[0]
    return [s.matmul(_select(n, a, b), g) for a, b in _offsets([x.shape for x in xs])]


# ----------------------------------------------------------------------------- slice (rows start..stop−1)


def _slice_shape(shapes, opt):
    (rows, cols), (start, stop) = shapes[0], opt
    if not 0 <= start < stop <= rows:
        return f"rows [{start}, {stop}] are out of range for {rows} rows (0 <= start < stop <= {rows})"
    return (stop - start, cols)


def _slice_backward(g, xs, out, opt):
    start, stop = opt
    full = np.zeros(np.broadcast_shapes(np.shape(g)[:-2], np.shape(xs[0])[:-2]) + np.shape(xs[0])[-2:],
                    dtype=np.result_type(g, float))
    full[..., start:stop, :] = g
    return [full]


# ----------------------------------------------------------------------------- solve (A⁻¹B, no inverse formed)


def _solve_shape(shapes, opt):
    (n, n2), (k, m) = shapes
    if n != n2:
        return "the first must be square"
    return (n, m) if n == k else f"the first has {n} rows and the second {k}"


def _solve(a, b):
    """A⁻¹B over batch axes; a singular A gives NaN there (reported as a non-finite value of its layer)."""
    a, b = _batched([a, b])
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        if a.ndim == 2:
            return np.full(np.broadcast_shapes(a.shape[:-1] + b.shape[-1:], b.shape), np.nan)
        return np.stack([_solve(x, y) for x, y in zip(a, b)])


def _solve_forward(xs, opt):
    return _solve(xs[0], xs[1])


def _solve_backward(g, xs, out, opt):
    """δ_B = A⁻ᵀ δ, δ_A = −δ_B Zᵀ (Z = A⁻¹B, the forward output)."""
    a, b = xs
    gb = _solve(_t(a), g)
    return [unbroadcast_to(-gb @ _t(out), np.shape(a)), unbroadcast_to(gb, np.shape(b))]


def _solve_sym_backward(g, xs, out, opt):
    a, b = xs
    gb = s.fn("solve", s.t(a), g)
    return [s.neg(s.matmul(gb, s.t(out))), gb]


# ----------------------------------------------------------------------------- the table


ROWS: tuple[Merge, ...] = (
    Merge("add", None, lambda xs, opt: _fold(xs, np.add),
          lambda g, xs, out, opt: [unbroadcast_to(g, np.shape(x)) for x in xs],
          _add_shape, _add_sym, lambda g, xs, out, opt: [s.reduce_to(g, x.shape) for x in xs],
          (lambda d, labels, i: d), analytic=True, kinks=(), nonfinite="", domain=None),
    Merge("mul", None, lambda xs, opt: _fold(xs, np.multiply), _mul_backward, _add_shape,
          lambda xs, opt: _fold(xs, s.mul),
          _mul_sym_backward,
          (lambda d, labels, i: f"{d} • " + " • ".join(l for j, l in enumerate(labels) if j != i)),
          analytic=True, kinks=(), nonfinite="", domain=None),
    Merge("matmul", 2, lambda xs, opt: np.matmul(xs[0], xs[1]), _matmul_backward, _matmul_shape,
          lambda xs, opt: s.matmul(xs[0], xs[1]),
          lambda g, xs, out, opt: [s.matmul(g, s.t(xs[1])), s.matmul(s.t(xs[0]), g)],
          (lambda d, labels, i: f"{d} {labels[1]}ᵀ" if i == 0 else f"{labels[0]}ᵀ {d}"),
          analytic=True, kinks=(), nonfinite="", domain=None),
    Merge("concat", None, lambda xs, opt: np.concatenate(_batched(xs), axis=-2), _concat_backward, _concat_shape,
          _concat_sym, _concat_sym_backward, (lambda d, labels, i: f"rows of {d} for {labels[i]}"),
          analytic=True, kinks=(), nonfinite="", domain=None),
    Merge("slice", 1, lambda xs, opt: xs[0][..., opt[0]:opt[1], :], _slice_backward, _slice_shape,
          lambda xs, opt: s.matmul(_select(xs[0].shape[0], *opt), xs[0]),
          lambda g, xs, out, opt: [s.matmul(s.t(_select(xs[0].shape[0], *opt)), g)],
          (lambda d, labels, i: f"{d} into its rows of {labels[0]}"), analytic=True, kinks=(), nonfinite="", domain=None),
    Merge("solve", 2, _solve_forward, _solve_backward, _solve_shape,
          lambda xs, opt: s.fn("solve", xs[0], xs[1]), _solve_sym_backward,
          (lambda d, labels, i: f"−{labels[0]}⁻ᵀ {d} zᵀ" if i == 0 else f"{labels[0]}⁻ᵀ {d}"),
          analytic=True, kinks=(), nonfinite="A is singular", domain=(0, SOLVABLE)),  # a badly conditioned A: finite, but round-off
)


def _register(rows) -> dict[str, Merge]:
    """key -> row; a row with kinks of its own is refused until the perturber flags crossings of merge kinks
    (today kinks come from activations and layer kinds only, and every merge above is smooth)."""
    for row in rows:
        if row.kinks:
            raise TypeError(f"merge {row.key} declares kinks, which the kink detection does not read yet")
    return {row.key: row for row in rows}


MERGES: dict[str, Merge] = _register(ROWS)


def describe_shapes(labels, shapes) -> str:
    """'r (6×4) and x (6×3)': the inputs a shape message names."""
    parts = [f"{label} {fmt_shape(shape)}" for label, shape in zip(labels, shapes)]
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def merge_shape(key: str, shapes: list[Shape], opt) -> Shape | str:
    """The merged shape, or why the inputs cannot be merged."""
    return MERGES[key].shape(shapes, opt)
