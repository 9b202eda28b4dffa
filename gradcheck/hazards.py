"""Numeric hazards, diagnosed after the fact: which layer and operation made a NaN or Inf, and whether
a finite-difference stencil straddles a kink or the edge of an activation's domain.

The checker runs with floating-point warnings off (a benign overflow, such as exp(1000) inside
1/(1 + exp(-z)), is fine when the result is finite). Only when something is wrong does it come here:
the failing piece is re-run with numpy's errstate set to raise, so numpy itself names the operation
("overflow encountered in exp", "divide by zero encountered in log").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import network, numeric
from .kinds import KINDS
from .merges import MERGES
from .model import Layer, Model, Objective

# numpy's floating-point errors, as the finding names them. Underflow (to 0) is never a hazard.
RAISE = {"over": "raise", "invalid": "raise", "divide": "raise", "under": "ignore"}
# A stencil whose reach comes this close to a domain edge (in units of the reach) is no verdict: the
# function bends within the step. Farther out, the numeric error estimate measures the curvature itself.
NEAR = 2.0


@dataclass(frozen=True)
class Boundary:
    """A point of z where an activation stops being smooth: a kink, or the edge of its domain."""

    at: float
    what: str  # "the kink of relu", "the edge of the domain of sqrt (z >= 0)"
    edge: bool  # True: the function is undefined beyond (or singular at) the point


# ----------------------------------------------------------------------------- which operation


@dataclass(frozen=True)
class Finding:
    """numpy's words for a floating-point error, and the layer or objective where it happened."""

    text: str
    where: object = None  # a Layer or an Objective (with .label and .place), when known


def operation(model: Model, values, where) -> Finding | None:
    """The first floating-point error in `where` (a Layer or Objective of the forward pass; None for the
    backward pass), re-running the walk with numpy errors raised at that piece; None if nothing raises."""
    try:
        with np.errstate(all="ignore"):
            if where is None:
                return _backward_operation(model, values)
            for term in model.terms:
                found = _forward_operation(term, values, where)
                if found:
                    return found
    except Exception:  # noqa: BLE001 - a diagnosis must never turn an error into a crash
        return None
    return None


class _Raised(Exception):
    """A step of the walk raised a floating-point error: numpy's words, and the piece that raised."""

    def __init__(self, finding: Finding):
        super().__init__(finding.text)
        self.finding = finding


def _forward_operation(term, values, where) -> Finding | None:
    """Walk one term forward, raising at `where` (a layer of it, or its objective)."""
    def step(layer, a_in):
        compute = lambda: KINDS[layer.kind].forward(layer, a_in, values)  # noqa: E731
        if layer is where:
            found = _raised(compute)
            raise _Raised(Finding(found + _domain_note(layer), layer) if found else None)
        return compute()

    try:
        steps, a = network.walk_forward(term, network.numbers(values), step)
    except _Raised as exc:
        return exc.finding
    if term.objective is where:
        fused = network.fused_loss(term)
        z = steps[term.output].z if fused else None
        found = _raised(lambda: network.objective_value(term.objective, a, values, z, fused))
        return Finding(found, term.objective) if found else None
    return None


def _backward_operation(model: Model, values) -> Finding | None:
    """The first step of the backward walk that raises, each term's objective first, then its layers last to first."""
    grads = {name: np.zeros_like(values[name], dtype=float) for name in model.param_names}

    def objective_step(compute, obj):
        return _step_or_raise(compute, lambda found: Finding(f"{found}, in the derivative of the objective", obj))

    def layer_step(lt, compute):
        return _step_or_raise(compute, lambda found: Finding(
            f"{found}, in the derivative of its activation{_domain_note(lt.layer)}", lt.layer))

    try:
        for trace in network.forward(model, values):
            network.backward_term(trace, values, grads, lambda compute: objective_step(compute, trace.term.objective),
                                  layer_step)
    except _Raised as exc:
        return exc.finding
    return None


def _step_or_raise(compute, finding):
    """compute() with numpy errors raised; a FloatingPointError stops the walk with `finding(numpy's words)`."""
    try:
        with np.errstate(**RAISE):
            return compute()
    except FloatingPointError as exc:
        raise _Raised(finding(str(exc))) from None


def _domain_note(layer: Layer) -> str:
    row = layer.activation.row
    return f"; {row.name} needs {row.domain}" if row.domain else ""


def _raised(compute) -> str | None:
    """The FloatingPointError message of `compute()` run with errors raised, or None."""
    try:
        with np.errstate(**RAISE):
            compute()
    except FloatingPointError as exc:
        return str(exc)
    return None


# ----------------------------------------------------------------------------- stencils


def boundaries(layer: Layer, values) -> list[Boundary]:
    """Where this layer's activation is not smooth (kinks) or not defined (domain edges), from its row."""
    use = layer.activation
    row = use.row
    found = [Boundary(float(k), f"the kink of {row.name} at z = {k:g}", edge=False) for k in row.kinks]
    argument = None if use.argument is None else use.argument.value(values)
    for edge in row.edges(argument):
        found.append(Boundary(edge.at, edge.describe(row.name, use.label), edge=True))
    return found


def objective_boundaries(obj: Objective) -> list[Boundary]:
    """log in a loss: the last activation must stay inside the loss's domain (from its row)."""
    return [Boundary(edge.at, edge.what, edge=True) for edge in obj.row.edges]


def stencil(model: Model, values, name: str, index: tuple[int, ...], eps: float | None,
            rtol: float, method: str = "central") -> str | None:
    """Why the central difference at values[name][index] cannot be trusted, or None.

    The three points θ, θ + h, θ − h go through the network as one batch. A layer is named, with
    the entry of z where it happens, when z straddles the edge of an activation's domain between the two
    ends, comes within two steps' reach of one (where the function curves too fast for any step), or turns
    NaN or Inf at an end while finite in the middle. Kinks are not named here: a stencil across a kink is
    a kink entry, judged by its one-sided slopes (gradcheck.verdict).
    """
    if method == "complex-step":  # an imaginary step stays off the real line: no stencil to straddle
        return None
    theta = np.asarray(values[name], dtype=float)
    h = float(numeric.steps(theta, eps, method)[index])  # the widest step of the method
    stack = np.repeat(theta[None], 3, axis=0)
    stack[1][index] += h
    stack[2][index] -= h
    mirror = tuple(reversed(index))
    if name in model.symmetric_params and mirror != tuple(index):  # a symmetric param moves (j, i) with (i, j)
        stack[1][mirror] += h
        stack[2][mirror] -= h
    batched = {**values, name: stack}
    point = f"{name}{list(index)} = {theta[index]:.6g} ± {h:.2g}"
    try:
        with np.errstate(all="ignore"):
            for term in model.terms:
                trace = network.forward_term(term, batched)
                for lt in trace.layers:
                    crossed = _matrix_edge(lt)
                    if crossed:
                        return f"the finite-difference stencil {point} {crossed} in {lt.layer.label}: " + _NO_VERDICT
                    edges = [b for b in boundaries(lt.layer, values) if b.edge]
                    found = _straddles(np.asarray(lt.z), np.asarray(lt.a), edges, rtol)
                    if found:
                        return _stencil_message(point, found, lt.layer.label, "z")
                a_last = trace.layers[term.output].a if trace.layers else term.input.value(batched)
                edges = [] if network.fused_loss(term) else objective_boundaries(term.objective)  # logits: no edge
                found = _straddles(np.asarray(a_last), None, edges, rtol)
                if found:
                    return _stencil_message(point, found, f"the objective {term.objective.label}", "a")
    except Exception:  # noqa: BLE001 - a diagnosis must never turn a result into a crash
        return None
    return None


_NO_VERDICT = ("the numeric gradient there is no verdict on the analytic one; move the value (another seed or "
               "value) or use a smaller eps")


def _matrix_edge(lt) -> str | None:
    """How a 3-batch (θ, θ + h, θ − h) leaves the domain of a whole-matrix activation (its z) or of a merge
    (its input, e.g. A of solve), or None."""
    merge = MERGES[lt.layer.merge].domain if lt.layer.merge is not None else None
    if merge is not None and lt.inputs:
        found = _edge(np.asarray(lt.inputs[merge[0]]), merge[1], f"the merge {lt.layer.merge}")
        if found:
            return found
    row = lt.layer.activation.row
    return None if row.matrix_domain is None else _edge(np.asarray(lt.z), row.matrix_domain, row.name)


def _edge(z: np.ndarray, domain, name: str) -> str | None:
    """How a 3-batch z crosses or leaves `domain`, or None (also when z does not move with the step)."""
    if z.ndim < 3 or z.shape[0] != 3:
        return None
    side = np.real(domain.side(z))
    if side[1] * side[2] <= 0 and side[1] != side[2]:
        return f"crosses the edge of the domain of {name} ({domain.text})"
    outside = [k for k in (1, 2) if domain.problem(z[k])]
    if outside and not domain.problem(z[0]):
        return f"leaves the domain of {name} ({domain.text}) at its {('upper', 'lower')[outside[0] - 1]} end"
    return None


@dataclass(frozen=True)
class _Straddle:
    boundary: Boundary | None  # None: the output turned NaN or Inf at an end
    position: tuple[int, ...]
    crosses: bool
    distance: float = 0.0
    reach: float = 0.0


def _straddles(z: np.ndarray, out: np.ndarray | None, bounds: list[Boundary], rtol: float) -> _Straddle | None:
    """The first entry of a 3-batch z (θ, θ + h, θ − h) that straddles or nears a boundary."""
    if z.ndim < 3 or z.shape[0] != 3:  # this layer does not depend on the perturbed entry
        return None
    centre, upper, lower = z[0], z[1], z[2]
    reach = np.maximum(np.abs(upper - centre), np.abs(lower - centre))
    for b in bounds:
        crossed = (np.sign(upper - b.at) * np.sign(lower - b.at) <= 0) & (reach > 0)
        near = (np.abs(centre - b.at) < NEAR * reach) & (reach > 0) if b.edge else np.zeros_like(crossed)
        for mask, crosses in ((crossed, True), (near, False)):
            if mask.any():
                pos = tuple(int(i) for i in np.argwhere(mask)[0])
                return _Straddle(b, pos, crosses, float(abs(centre[pos] - b.at)), float(reach[pos]))
    if out is not None and out.ndim >= 3 and out.shape[0] == 3:
        ends_bad = ~np.isfinite(out[1]) | ~np.isfinite(out[2])
        if np.all(np.isfinite(out[0])) and ends_bad.any():
            return _Straddle(None, tuple(int(i) for i in np.argwhere(ends_bad)[0]), True)
    return None


def _stencil_message(point: str, found: _Straddle, label: str, var: str) -> str:
    where = f"{var}{list(found.position)} of {label}"
    if found.boundary is None:
        how = f"makes the output{list(found.position)} of {label} NaN or Inf at one end"
    elif found.crosses:
        how = f"crosses {found.boundary.what}, at {where}"
    else:
        how = (f"comes within {found.distance:.2g} of {found.boundary.what}, at {where} (the step moves it by "
               f"{found.reach:.2g}), where the function curves too fast for a central difference")
    return f"the finite-difference stencil {point} {how}: {_NO_VERDICT}"
