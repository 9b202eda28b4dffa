"""The objective table: one row per way a term turns its last activation a into a number.

A row holds the per-entry loss L(a, y) with its gradients in a and in the target y, the factor
before the sum, the same as symbols and table text for `explain`, the edges of a's domain (for
hazards), and the fused forms after a given activation (the cancellations people write by hand:
sigmoid then binary cross-entropy gives δ = a − y). Every field is required: a row that leaves one
out fails when this module is imported.

    J_term = scale(shape, reduce) · Σ_entries L(a, y)

Adding an objective is adding one row to ROWS below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import excerpt
from . import symbolic as s
from .activations import softplus
from .functions import sigmoid
from .lowrank import DenseChange, squared_error_change, squared_error_dense
from .suggest import did_you_mean


@dataclass(frozen=True)
class Edge:
    """A value of a where the loss is undefined (log(0)): stencils must not cross it."""

    at: float
    what: str  # "a = 0, where log(a) in cross_entropy is undefined"


@dataclass(frozen=True)
class Fused:
    """This loss right after a given activation, computed from that activation's input z (the logits).

    From z the loss keeps every digit at any confidence (log-sigmoid, log-sum-exp), where the
    probability form loses them once a rounds to 1; and δ at z is written with the cancellation done.
    """

    entry: Callable  # (z, y) -> L per entry, from the logits
    delta: Callable  # (z, a, y) -> ∂L/∂z per entry
    grad_y: Callable  # (z, a, y) -> ∂L/∂y per entry
    elementwise: bool  # L_ij depends on z_ij alone (else on its whole column)
    rows: Callable | None  # (z, y, rows, new) -> (ΔL, size) per column when one row of z moves; None: elementwise
    moved: Callable | None  # (z, y, dz) -> (ΔL, size) per column (or per move) when z moves by dz (B, n, m), which
    # is the caller's temporary (it may be written over); None: entry by entry
    sym_delta: Callable  # (a, y, onehot) -> δ as a symbol, before coef and 1/m
    text: Callable  # (a, y, onehot) -> δ as the UFLDL table writes it, before coef and 1/m
    imag_size: Callable | None  # (z, y) -> per entry, Σ|Im| of what an imaginary step's loss summed (its round-off's
    # scale, where the terms cancel); None: |Im L| itself


@dataclass(frozen=True)
class Loss:
    """One objective: numbers, symbols, domain and fused forms together."""

    name: str
    needs_target: bool
    entry: Callable  # (a, y) -> L per entry
    grad_a: Callable  # (a, y) -> ∂L/∂a per entry
    grad_y: Callable | None  # (a, y) -> ∂L/∂y per entry; None without a target
    scale: Callable  # (shape, reduce) -> the factor before the sum
    sym_value: Callable  # (a, y, reduce, count) -> J_term as a symbol; count(a, axis) is a's size along axis
    sym_grad_a: Callable  # (a, y, ones_like, count) -> ∂J_term/∂a as a symbol, before a loss's 1/m
    sym_grad_y: Callable | None  # (a, y) -> ∂J_term/∂y as a symbol, before the 1/m
    grad_text: Callable  # (a, y, size) -> ∂J/∂a as table text, or None where it is 1
    edges: tuple[Edge, ...]
    fused: dict  # activation name -> Fused
    low_rank: Callable | None  # (a, y, LowRank) -> (Σ ΔL, size) per variant, after an identity activation; None: dense
    dense: DenseChange | None  # (a, y, new a (B, n, m)) -> (Σ ΔL, size) per variant, real steps; None: both losses

    def __post_init__(self):
        if self.needs_target != (self.grad_y is not None) or self.needs_target != (self.sym_grad_y is not None):
            raise TypeError(f"loss {self.name}: a loss with a target gives grad_y and sym_grad_y, one without gives neither")


def _per_column(shape, reduce: str) -> float:
    """A loss's factor: 1/m (m columns, the examples) for reduce: mean, else 1."""
    return 1.0 / shape[-1] if reduce == "mean" else 1.0


def _loss(name, entry, grad_a, grad_y, sym_total, sym_grad_a, sym_grad_y, grad_text, edges=(), fused=None,
          low_rank=None, dense=None) -> Loss:
    """A loss with a target; reduce: mean divides by the number of columns."""
    def sym_value(a, y, reduce, count):
        total = sym_total(a, y)
        return s.div(total, count(a, 1)) if reduce == "mean" else total
    return Loss(name, True, entry, grad_a, grad_y, _per_column, sym_value, sym_grad_a, sym_grad_y, grad_text,
                tuple(edges), fused or {}, low_rank, dense)


def _bce(a, y):
    return -y * np.log(a) - (1.0 - y) * np.log1p(-a)


def _log_sum_exp(z):
    """log Σ_column e^z, shifted by the column's largest real part (holomorphic, for the complex step)."""
    top = np.max(np.real(z), axis=-2, keepdims=True)
    return top + np.log(np.sum(np.exp(z - top), axis=-2, keepdims=True))


SIGMOID_BCE = Fused(
    entry=lambda z, y: softplus(z) - y * z,  # −y log σ(z) − (1 − y) log(1 − σ(z))
    delta=lambda z, a, y: a - y, grad_y=lambda z, a, y: -z * np.ones_like(a), elementwise=True, rows=None,
    moved=lambda z, y, dz: _sigmoid_bce_moved(z, y, dz),
    sym_delta=lambda a, y, onehot: s.sub(a, y), text=lambda a, y, onehot: f"{a} - {y}", imag_size=None)

SOFTMAX_CE = Fused(
    entry=lambda z, y: -y * (z - _log_sum_exp(z)),
    delta=lambda z, a, y: a * np.sum(y, axis=-2, keepdims=True) - y, grad_y=lambda z, a, y: _log_sum_exp(z) - z,
    elementwise=False, rows=lambda z, y, rows, new: _softmax_ce_rows(z, y, rows, new),
    moved=lambda z, y, dz: _softmax_ce_moved(z, y, dz),
    sym_delta=lambda a, y, onehot: _ce_softmax_delta(a, y, onehot),
    text=lambda a, y, onehot: f"{a} - {y}" if onehot else f"{a} • sum({y}, axis=0) - {y}",
    imag_size=lambda z, y: _softmax_ce_imag_size(z, y))


def _spread(z, lse):
    """1 + |lse| + max |z| per column (real parts): p = e^(z − lse) carries a relative round-off of ε·(|z| + |lse|),
    so an imaginary step's Im Δlse = Σ p·Im Δz does too, and the loss's y·(Im Δz − Im Δlse) (a confident softmax:
    p ≈ 1) cancels down to that, not to a few ε of the difference."""
    return 1.0 + np.abs(np.real(lse)) + np.max(np.abs(np.real(z)), axis=-2, keepdims=True)


def _softmax_ce_imag_size(z, y):
    """Per entry, for a complex z (the base's real): |y|·(|Im z| + |Im lse|·spread), the terms −y·(z − lse) sums."""
    lse = _log_sum_exp(z)
    return np.abs(y) * (np.abs(np.imag(z)) + np.abs(np.imag(lse)) * _spread(z, lse))


def _softmax_ce_rows(z, y, rows, new):
    """(Σ_column ΔL, Σ_column |L(new)| + |L(old)|) per (perturbation, column) when row rows[b] of z becomes new[b].

    One changed logit moves its column's log-sum-exp by log1p(a·expm1(Δz)) (a its softmax), so each
    perturbation costs O(m), not the O(k·m) of the column recomputed; every other entry's loss moves by y·Δlse.
    """
    lse = _log_sum_exp(z)  # (1, m)
    dz = new - z[rows]
    dlse = np.log1p(np.exp(z[rows] - lse) * np.expm1(dz))
    y_rows, y_abs = y[rows], np.sum(np.abs(y), axis=-2)
    change = np.sum(y, axis=-2) * dlse - y_rows * dz
    if np.iscomplexobj(change):  # Σ|Im| of what is summed, as _softmax_ce_imag_size counts it: y·Im Δz on the row
        return change, np.abs(y_rows) * np.abs(dz.imag) + y_abs * np.abs(dlse.imag) * _spread(z, lse)
    # log-softmax is ≤ 0 before and after, so |L| = |y|·(lse − z) and its column sums move by y_abs·Δlse − |y|·Δz
    before = np.sum(np.abs(y) * (lse - z), axis=-2)
    return change, 2.0 * before + y_abs * dlse - np.abs(y_rows) * dz


def _sigmoid_bce_moved(z, y, dz):
    """(Σ ΔL, Σ |L(new)| + |L(old)|) per perturbation when z moves by dz (B, n, m) (per column for an imaginary step
    or a target outside [0, 1]); dz is the caller's temporary, and a real one is overwritten.

    softplus(z + Δz) − softplus(z) = log1p(σ(z)·expm1(Δz)): one log1p and one expm1 an entry instead of two
    softplus, and no cancellation between them. Real steps sum Σ log1p(…) and Σ y·Δz apart (each as one product):
    the same sums in another order, with no temporary beside dz itself.
    """
    y = y if np.shape(y) == z.shape else np.broadcast_to(y, z.shape)
    if np.iscomplexobj(dz) or not np.all((y >= 0) & (y <= 1)):
        return _sigmoid_bce_entries(z, y, dz)
    B = len(dz)
    grown = dz.reshape(B, -1)
    y_dz = grown @ y.reshape(-1)  # Σ y·Δz, before Δz is written over
    np.expm1(grown, out=grown)
    grown *= sigmoid(z).reshape(-1)
    np.log1p(grown, out=grown)  # softplus(z + Δz) − softplus(z), per entry
    total = grown @ np.ones(grown.shape[1]) - y_dz
    # y ∈ [0, 1], so L ≥ 0 at every z: Σ|L(new)| + |L(old)| = 2ΣL(old) + ΣΔL
    return total, 2.0 * np.sum(softplus(z) - y * z) + total


def _sigmoid_bce_entries(z, y, dz):
    """_sigmoid_bce_moved entry by entry, per column: an imaginary step, or a target outside [0, 1]."""
    moved = np.log1p(sigmoid(z) * np.expm1(dz))
    change = moved - y * dz
    if np.iscomplexobj(change):  # L(old) is real: Im L(new) = Im ΔL
        return np.sum(change, axis=-2), np.sum(np.abs(change.imag), axis=-2)
    old = softplus(z) - y * z
    return np.sum(change, axis=-2), np.sum(np.abs(old + change) + np.abs(old), axis=-2)


def _softmax_ce_moved(z, y, dz):
    """(Σ_column ΔL, Σ_column |L(new)| + |L(old)|) per (perturbation, column) when z moves by dz (B, k, m).

    Each column's log-sum-exp moves by log1p(Σ p·expm1(Δz)) (p the base softmax): no second log-sum-exp of
    the base, no softmax of the moved z; every entry moves by y·(Δlse − Δz).
    """
    lse = _log_sum_exp(z)
    y_dz = np.einsum("bkm,km->bm", dz, y)
    grown = np.expm1(dz)
    grown *= np.exp(z - lse)
    dlse = np.log1p(np.sum(grown, axis=-2))  # (B, m)
    change = np.sum(y, axis=-2) * dlse - y_dz
    if np.iscomplexobj(change):  # Σ|Im| of what is summed, as _softmax_ce_imag_size counts it
        return change, np.einsum("bkm,km->bm", np.abs(dz.imag), np.abs(y)) + \
            np.sum(np.abs(y), axis=-2) * np.abs(dlse.imag) * _spread(z, lse)
    before = np.sum(np.abs(y) * (lse - z), axis=-2)  # log-softmax ≤ 0: |L| = |y|·(lse − z), as in _softmax_ce_rows
    return change, 2.0 * before + np.sum(np.abs(y), axis=-2) * dlse - np.einsum("bkm,km->bm", dz, np.abs(y))


def _ce_softmax_delta(a, y, onehot):
    """Columns of a one-hot Y sum to 1, so a • sum(Y, axis=0) − Y is a − Y."""
    return s.sub(a, y) if onehot else s.sub(s.mul(a, s.fn("sum", y, axis=0)), y)


ROWS: tuple[Loss, ...] = (
    Loss("sum", False, lambda a, y: a, lambda a, y: np.ones_like(a), None, lambda shape, reduce: 1.0,
         lambda a, y, reduce, count: s.fn("sum", a), lambda a, y, ones_like, count: ones_like(a), None,
         lambda a, y, size: None, (), {}, None, None),
    Loss("mean", False, lambda a, y: a, lambda a, y: np.ones_like(a), None,
         lambda shape, reduce: 1.0 / (shape[-2] * shape[-1]),
         lambda a, y, reduce, count: s.fn("mean", a), lambda a, y, ones_like, count: s.div(ones_like(a), count(a, None)),
         None, lambda a, y, size: f"1 / {size}", (), {}, None, None),
    _loss("squared_error", lambda a, y: 0.5 * np.square(a - y), lambda a, y: a - y, lambda a, y: y - a,
          lambda a, y: s.mul(0.5, s.fn("sum", s.power(s.sub(a, y), 2))), lambda a, y, ones_like, count: s.sub(a, y),
          lambda a, y: s.sub(y, a), lambda a, y, size: f"{a} - {y}", low_rank=squared_error_change,
          dense=squared_error_dense),
    _loss("binary_cross_entropy", _bce, lambda a, y: (a - y) / (a * (1.0 - a)), lambda a, y: np.log1p(-a) - np.log(a),
          lambda a, y: s.fn("sum", s.sub(s.mul(s.neg(y), s.fn("log", a)), s.mul(s.sub(1, y), s.fn("log", s.sub(1, a))))),
          lambda a, y, ones_like, count: s.div(s.sub(a, y), s.mul(a, s.sub(1, a))),
          lambda a, y: s.sub(s.fn("log", s.sub(1, a)), s.fn("log", a)),
          lambda a, y, size: f"({a} - {y}) / ({a} • (1 - {a}))",
          edges=(Edge(0.0, "a = 0, where log(a) in binary_cross_entropy is undefined"),
                 Edge(1.0, "a = 1, where log(1 - a) in binary_cross_entropy is undefined")),
          fused={"sigmoid": SIGMOID_BCE}),
    _loss("cross_entropy", lambda a, y: -y * np.log(a), lambda a, y: -y / a, lambda a, y: -np.log(a),
          lambda a, y: s.fn("sum", s.mul(s.neg(y), s.fn("log", a))), lambda a, y, ones_like, count: s.div(s.neg(y), a),
          lambda a, y: s.neg(s.fn("log", a)), lambda a, y, size: f"-{y} / {a}",
          edges=(Edge(0.0, "a = 0, where log(a) in cross_entropy is undefined"),),
          fused={"softmax": SOFTMAX_CE}),
)

LOSSES: dict[str, Loss] = {row.name: row for row in ROWS}  # the one registry every part reads


def with_target() -> tuple[str, ...]:
    """Losses written {loss: name, target: y}, in table order."""
    return tuple(name for name, row in LOSSES.items() if row.needs_target)


def plain() -> tuple[str, ...]:
    """Objectives written as a bare word (sum, mean), in table order."""
    return tuple(name for name, row in LOSSES.items() if not row.needs_target)


def unknown_loss(name: str) -> str:
    """The message for a loss name that is not in the table."""
    return f'no such loss: "{excerpt(name)}"{did_you_mean(name, with_target())}; valid: {", ".join(with_target())}'


def unknown_objective(name: str) -> str:
    """The message for an objective written as a bare word that is not in the table."""
    return (f'no such objective: "{excerpt(name)}"{did_you_mean(name, [*plain(), *with_target()])}; valid: '
            f'{", ".join(plain())}, or {{loss: ..., target: ...}}')
