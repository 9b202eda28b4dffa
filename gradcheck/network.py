"""The one forward walk and the one backward walk over a term (the UFLDL network view), in pure numpy.

`walk_forward` and `walk_backward` are the only places that know how layers connect: each layer reads
its inputs (the layer before, unless the spec names others), merges them, and steps; the signal at a
layer's input is split over its inputs, and a layer read by several sums their signals. Every consumer
walks through them with its own step: backprop (this module), hazards (a step that raises on the
first floating-point error and names the layer) and `explain` (a step on symbols).

Forward caches every layer's input, z and a. Backward carries the error signal δ = ∂J/∂z; each use
of a name *adds* its contribution to that name's gradient (micrograd's `+=`), which is what makes
tied weights such as W and Wᵀ come out summed. Arrays may carry leading batch axes: the
finite-difference engine evaluates stacks of perturbed values in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from .kinds import KINDS
from .merges import MERGES
from .model import Model, Objective, Term
from .losses import Fused
from .trace import AtZ, LayerTrace, Recorder, accumulate


class OutsideDomain(Exception):
    """A whole-matrix activation's z lies outside its domain at the point checked (logdet of det z <= 0)."""

    def __init__(self, layer, what: str, merge: bool = False):
        super().__init__(what)
        self.layer = layer
        self.what = what
        self.merge = merge  # outside the domain of the layer's merge (solve), not of its activation


class NonFinite(Exception):
    """A NaN or Inf first appeared at `where` (a Layer, Objective or Term)."""

    def __init__(self, where, what: str, cause: str | None = None):
        super().__init__(what)
        self.where = where
        self.what = what
        self.cause = cause  # what most likely made it, when the step knows (a singular matrix)


@dataclass
class TermTrace:
    """One term's forward pass: per-layer traces and J_term (shape batch + (1, 1))."""

    term: Term
    layers: list[LayerTrace]
    value: np.ndarray
    coef: object


# ----------------------------------------------------------------------------- the walks


@dataclass(frozen=True)
class Ops:
    """What a walk does with values, numbers (backprop, hazards) or symbols (explain): read a declared name
    (transposed as written), transpose, add two signals, merge a layer's inputs and split its signal."""

    read: Callable  # Ref -> value
    transpose: Callable
    add: Callable
    merge: Callable  # (layer, xs) -> the merged input
    split: Callable  # (layer, g, xs, merged) -> one signal per input, each at that input's shape


def numbers(values: Mapping[str, np.ndarray]) -> Ops:
    """The walk on numbers, over `values` (which may carry batch axes)."""
    return Ops(lambda ref: ref.value(values), lambda x: np.swapaxes(x, -1, -2), lambda x, y: x + y,
               lambda layer, xs: MERGES[layer.merge].forward(xs, layer.merge_options),
               lambda layer, g, xs, merged: MERGES[layer.merge].backward(g, xs, merged, layer.merge_options))


def walk_forward(term: Term, ops: Ops, layer_step: Callable) -> tuple[list, object]:
    """Each layer in spec order (a topological order: a name is defined before it is read) reads its inputs,
    merges them, and steps: (every step's result, the a the objective reads). `layer_step(layer, a_in)`
    returns an object with `.a` and `.inputs` (set here: what the layer read, for the backward split)."""
    outs, steps = {}, []
    for layer in term.layers:
        xs = [_read(ref, term, outs, ops) for ref in layer.inputs]
        step = layer_step(layer, xs[0] if layer.merge is None else ops.merge(layer, xs))
        step.inputs = xs
        steps.append(step)
        outs[layer.key] = step.a
    return steps, (steps[term.output].a if steps else ops.read(term.input))


def _read(ref, term: Term, outs: dict, ops: Ops):
    """A layer's input: a layer of the term (transposed when written `.T`), or a declared name."""
    if ref.name in term.keys:
        return ops.transpose(outs[ref.name]) if ref.transposed else outs[ref.name]
    return ops.read(ref)


def walk_backward(term: Term, steps: list, g, ops: Ops, layer_step: Callable, leaf: Callable) -> None:
    """δ flows back through every edge, last layer first: `layer_step(step, g, below)` returns the signal at
    the layer's (merged) input (`below`: whether another layer is read by it); the merge splits it over the
    inputs; a layer read by several collects the sum of their signals (`+=`) before its own step, and a
    declared name gets `leaf(ref, signal)`. A layer whose output never reaches the objective gets no signal."""
    if not steps:
        leaf(term.input, g)
        return
    signals = {steps[term.output].layer.key: g}
    for step in reversed(steps):
        layer = step.layer
        if layer.key not in signals:
            continue
        below = any(ref.name in term.keys for ref in layer.inputs)
        g_in = layer_step(step, signals.pop(layer.key), below)
        parts = [g_in] if layer.merge is None else ops.split(layer, g_in, step.inputs, step.a_in)
        for ref, part in zip(layer.inputs, parts):
            if ref.name not in term.keys:
                leaf(ref, part)
                continue
            part = ops.transpose(part) if ref.transposed else part
            signals[ref.name] = ops.add(signals[ref.name], part) if ref.name in signals else part


# ----------------------------------------------------------------------------- numbers


def forward(model: Model, values: Mapping[str, np.ndarray], check_finite: bool = False) -> list[TermTrace]:
    """The forward pass of every term: one base trace, shared by J, backprop and the perturbations."""
    return [forward_term(term, values, check_finite) for term in model.terms]


def forward_term(term: Term, values: Mapping[str, np.ndarray], check_finite: bool = False) -> TermTrace:
    """Run one term's layers, keeping each layer's input, z and a."""
    def step(layer, a_in):
        if check_finite and layer.merge is not None:
            require_finite(a_in, layer, f"its merge {layer.reads}", MERGES[layer.merge].nonfinite or None)
        trace = KINDS[layer.kind].forward(layer, a_in, values)
        if check_finite:
            require_finite(trace.z, layer, "z, the layer's input to its activation")
            domain = layer.activation.row.matrix_domain
            problem = domain.problem(trace.z) if domain is not None else None
            if problem:
                raise OutsideDomain(layer, problem)
            require_finite(trace.a, layer, f"the activation {layer.activation.label}")
        return trace

    traces, a = walk_forward(term, numbers(values), step)
    if check_finite:
        require_merge_domains(traces)
    fused = fused_loss(term)
    value = objective_value(term.objective, a, values, traces[term.output].z if fused else None, fused)
    coef = 1.0 if term.coef is None else term.coef.value(values)
    if check_finite:
        require_finite(value, term.objective, f"the objective {term.objective.label}")
    return TermTrace(term, traces, value, coef)


def require_merge_domains(traces: list) -> None:
    """A merge whose inputs are outside its domain at the base point (solve with a badly conditioned A)."""
    for trace in traces:
        layer = trace.layer
        domain = MERGES[layer.merge].domain if layer.merge is not None else None
        problem = domain[1].problem(trace.inputs[domain[0]]) if domain is not None else None
        if problem:
            raise OutsideDomain(layer, problem, merge=True)


def value_of(traces: list[TermTrace]) -> np.ndarray:
    """J from the traces of every term; batch axes of the values become the axes of the result."""
    total = 0.0
    for trace in traces:
        total = total + trace.coef * trace.value
    return np.asarray(total)[..., 0, 0]


def objective(model: Model, values: Mapping[str, np.ndarray], check_finite: bool = False) -> np.ndarray:
    """J for the given values; batch axes of the values become the axes of the result."""
    return value_of(forward(model, values, check_finite))


def gradient(model: Model, values: Mapping[str, np.ndarray], check_finite: bool = True) -> dict[str, np.ndarray]:
    """∂J/∂p for every param p by backpropagation, summing every use of each param."""
    return backward(model, forward(model, values, check_finite), values, check_finite)


def backward(model: Model, traces: list[TermTrace], values: Mapping[str, np.ndarray],
             check_finite: bool = True) -> dict[str, np.ndarray]:
    """∂J/∂p for every param p from the forward traces of every term."""
    grads = {name: np.zeros_like(values[name], dtype=float) for name in model.param_names}
    for trace in traces:
        backward_term(trace, values, grads)
    if check_finite:
        for name, g in grads.items():
            if not np.all(np.isfinite(g)):
                raise NonFinite(None, f"the backprop gradient of {name}")
    return grads


def backward_term(trace: TermTrace, values: Mapping[str, np.ndarray], grads: dict[str, np.ndarray],
                  objective_step: Callable | None = None, layer_step: Callable | None = None,
                  signal: Callable | None = None) -> list:
    """Accumulate one term's contributions into `grads`; returns the δ of each layer (last first).

    `objective_step(compute)` and `layer_step(trace, compute)` wrap each step of the walk (hazards
    runs them with floating-point errors raised); by default they just compute. `signal(g)` maps the
    signal a layer receives before its step (gradcheck.roundoff jitters it).
    """
    term = trace.term
    accumulate(grads, term.coef, trace.value)
    a_last = trace.layers[term.output].a if trace.layers else term.input.value(values)
    fused = fused_loss(term)
    z_last = trace.layers[term.output].z if fused else None
    compute_top = lambda: objective_grad(term.objective, a_last, values, z_last, fused)  # noqa: E731
    g, g_target = objective_step(compute_top) if objective_step else compute_top()
    g = AtZ(trace.coef * g) if fused else trace.coef * g
    if g_target is not None:
        accumulate(grads, term.objective.target, trace.coef * g_target)
    deltas = []

    def step(lt: LayerTrace, g_above, _below):
        if signal is not None:
            g_above = AtZ(signal(g_above.delta)) if isinstance(g_above, AtZ) else signal(g_above)
        compute = lambda: KINDS[lt.layer.kind].backward(lt, g_above, values, grads)  # noqa: E731
        g_in, delta = layer_step(lt, compute) if layer_step else compute()
        deltas.append(delta)
        return g_in

    walk_backward(term, trace.layers, g, numbers(values), step, lambda ref, part: accumulate(grads, ref, part))
    return deltas


def uses_of(model: Model, traces: list[TermTrace], values: Mapping[str, np.ndarray], name: str) -> list:
    """Each use of param `name` and its part of the gradient: [(label, role, contribution, signal)]."""
    recorder = Recorder({name: np.zeros_like(values[name], dtype=float)})
    found = []
    for trace in traces:
        term = trace.term
        several = len(model.terms) > 1
        suffix = f" of term {term.index}" if several else ""

        def layer_step(lt, compute, suffix=suffix):
            recorder.where = lt.layer.label + suffix
            return compute()

        recorder.where, recorder.uses = f"the objective of term {term.index}", []
        backward_term(trace, values, recorder, layer_step=layer_step)
        for where, ref, contribution, signal in recorder.uses:
            found.append((_use_label(term, where, ref), _role(term, ref), contribution, signal))
    return found


def _use_label(term: Term, where: str, ref) -> str:
    """How a diagnosis names a use: its layer, or its place in the term."""
    for role in ("input", "coef"):
        if getattr(term, role) is ref:
            return f"the {role} of term {term.index}"
    if ref is term.objective.target:
        return f"the target of term {term.index}"
    return where


def _role(term: Term, ref) -> str:
    """What the use is: weight, bias, input, coef, target, argument, or a layer kind's own role."""
    if ref is term.input or any(ref is r for layer in term.layers for r in layer.inputs):
        return "input"
    if ref is term.coef:
        return "coef"
    if ref is term.objective.target:
        return "target"
    for layer in term.layers:
        for role in ("weight", "bias"):
            if getattr(layer, role) is ref:
                return role
        if layer.activation.argument is ref:
            return "argument"
        if layer.options is not None:
            for field, value in vars(layer.options).items():
                if value is ref:
                    return field
    return "use"


def footprint(model: Model) -> int:
    """Numbers one forward evaluation holds (every layer's z and a, and kind-specific work), to size batches."""
    total = 0
    for term in model.terms:
        for layer in term.layers:
            total += KINDS[layer.kind].footprint(layer)
        total += term.layers[0].in_shape[0] * term.layers[0].in_shape[1] if term.layers else 1
    return max(total, 1)


# ----------------------------------------------------------------------------- the objective, from its row


def fused_loss(term: Term) -> Fused | None:
    """The loss's fused form after the term's last activation (sigmoid then binary cross-entropy, softmax then
    cross-entropy), when the last layer's a is that activation of its whole z; else None."""
    if not term.layers:
        return None
    last = term.layers[term.output]
    if not KINDS[last.kind].fusable or last.activation.argument is not None:
        return None
    return term.objective.row.fused.get(last.activation.row.name)


def entry_losses(obj: Objective, a, y, z=None, fused: Fused | None = None):
    """The objective's summand at each entry, from the logits z when the loss is fused with the activation."""
    return obj.row.entry(a, y) if fused is None else fused.entry(z, y)


def entry_sizes(after, before, z=None, y=None, fused: Fused | None = None):
    """Per entry, the scale of the round-off in L(new) − L(old): |L(new)| + |L(old)|; for an imaginary step the
    imaginary parts summed (Σ|Im| of the terms a fused loss cancels, where it says so: Fused.imag_size)."""
    if not np.iscomplexobj(after):
        return np.abs(after) + np.abs(before)
    if fused is not None and fused.imag_size is not None:
        return fused.imag_size(z, y)
    return np.abs(np.imag(after))


def objective_value(obj: Objective, a: np.ndarray, values, z=None, fused: Fused | None = None) -> np.ndarray:
    """J_term with keepdims (batch + (1, 1))."""
    y = None if obj.target is None else obj.target.value(values)
    per_entry = entry_losses(obj, a, y, z, fused)
    per_entry = np.broadcast_to(per_entry, np.broadcast_shapes(np.shape(per_entry), np.shape(a)))
    return obj.row.scale(np.shape(a), obj.reduce) * np.sum(per_entry, axis=(-2, -1), keepdims=True)


def objective_grad(obj: Objective, a: np.ndarray, values, z=None, fused: Fused | None = None):
    """(∂J_term/∂a, ∂J_term/∂target or None): the δ that starts backprop; ∂J_term/∂z when the loss is fused."""
    row = obj.row
    y = None if obj.target is None else obj.target.value(values)
    scale = row.scale(np.shape(a), obj.reduce)
    if fused is not None:
        return scale * np.broadcast_to(fused.delta(z, a, y), a.shape), scale * fused.grad_y(z, a, y)
    g_target = None if row.grad_y is None else scale * row.grad_y(a, y)
    return scale * np.broadcast_to(row.grad_a(a, y), a.shape), g_target


def require_finite(x, where, what: str, cause: str | None = None) -> None:
    """Raise NonFinite naming `where` if x holds a NaN or an Inf."""
    if not np.all(np.isfinite(x)):
        raise NonFinite(where, what, cause)
