"""What a check will cost, estimated from shapes alone before anything is allocated.

Finite differences evaluate J twice per param entry; each evaluation holds every layer's z and a
(plus a custom activation's intermediates). The checker stacks perturbed points into batches sized
by a memory budget, so the peak is: the declared values, one forward/backward pass, the `define`
and `expect` intermediates, and one batch of perturbed evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import network
from .errors import SpecError
from .expr import Name, Num
from .limits import DEFAULT, Limits, count, hint, size
from .model import Model

BYTES = 8  # float64
TEMPORARIES = 4  # live arrays per number in a vectorized forward pass (the checker sizes batches alike)
BATCH_MEMORY = 256 * 2**20  # bytes the checker gives one batch of perturbed evaluations, at most
OVERHEAD = 2**20  # bytes of Python objects around the arrays (the model, results, small temporaries)


@dataclass(frozen=True)
class Estimate:
    """Estimated bytes of one spec's check, by part."""

    declared: int  # the values under params and data
    once: int  # one forward and backward pass at the spec's values, and the gradients
    expressions: int  # define and expect intermediates
    batch: int  # one batch of perturbed evaluations
    evaluation_numbers: int  # numbers one evaluation of J holds

    @property
    def total(self) -> int:
        return self.base + self.batch

    @property
    def base(self) -> int:
        """Everything but the finite-difference batch."""
        return OVERHEAD + self.declared + self.once + self.expressions


def steps(model: Model) -> int:
    """Evaluations of J the central differences need: two per param entry."""
    return sum(2 * _numbers(d.shape) for d in model.decls if d.kind == "param")


def evaluation_numbers(model: Model) -> int:
    """Numbers one forward evaluation holds: layer outputs and custom activations' intermediates."""
    shapes = {d.name: d.shape for d in model.decls}
    total = network.footprint(model)
    for term in model.terms:
        for layer in term.layers:
            for expression in getattr(layer.activation, "expressions", ()):
                total += expression_numbers(expression, {**shapes, "z": layer.out_shape})
    return total


def expression_numbers(expression, shapes) -> int:
    """Numbers an expression allocates while it evaluates (its computed nodes, not the names it reads)."""
    return sum(_numbers(shape) for node, shape in expression.node_shapes(shapes)
               if not isinstance(node, (Name, Num)))


def batch_size(model: Model, memory: int) -> int:
    """Perturbed evaluations per batch for a memory budget (the checker's own rule)."""
    return max(2, memory // max(1, BYTES * TEMPORARIES * network.footprint(model)))


def estimate(model: Model, batch_memory: int = BATCH_MEMORY) -> Estimate:
    """Bytes the check needs when batches get `batch_memory`."""
    declared = sum(_numbers(d.shape) for d in model.decls)
    params = sum(_numbers(d.shape) for d in model.decls if d.kind == "param")
    per_eval = evaluation_numbers(model)
    shapes = {d.name: d.shape for d in model.decls}
    expr_numbers = 0
    for name, expression in model.defines:
        expr_numbers += expression_numbers(expression, shapes)
        shapes[name] = expression.shape(shapes)
    for _, expression, _ in model.expects:
        expr_numbers += expression_numbers(expression, shapes)
    batch = 0
    evaluations = batch_size(model, batch_memory)
    for d in model.decls:
        if d.kind == "param":
            n = _numbers(d.shape)
            batch = max(batch, min(2 * n, evaluations) * (per_eval + n) * TEMPORARIES)
    return Estimate(
        declared=BYTES * declared,
        once=BYTES * (3 * per_eval + 2 * params),
        expressions=BYTES * expr_numbers,
        batch=BYTES * batch,
        evaluation_numbers=per_eval,
    )


def batch_memory(model: Model, limits: Limits = DEFAULT) -> int:
    """The batch budget that keeps the whole check under the memory limit (never below two evaluations).

    The checker sizes batches by the layer outputs alone; an evaluation also holds the perturbed
    param and custom intermediates, so the budget handed over is scaled down by that ratio.
    """
    base = estimate(model, 0).base
    params = [_numbers(d.shape) for d in model.decls if d.kind == "param"]
    ratio = (evaluation_numbers(model) + max(params, default=0)) / max(1, network.footprint(model))
    return max(0, min(BATCH_MEMORY, int((limits.memory - base) / ratio)))


def require(model: Model, limits: Limits = DEFAULT) -> Estimate:
    """Refuse, at a place in the spec, a check that needs too many evaluations or too much memory."""
    params = [d for d in model.decls if d.kind == "param"]
    needed = steps(model)
    if needed > limits.steps and params:
        biggest = max(params, key=lambda d: _numbers(d.shape))
        raise _at(biggest.place, model).error(
            f"checking needs {count(needed)} evaluations of J (two per param entry; {biggest.name} alone has "
            f"{count(_numbers(biggest.shape))} entries); the limit is {count(limits.steps)} ({hint('steps')})")
    found = estimate(model, batch_memory(model, limits))
    if found.total > limits.memory:
        raise _at(_largest_place(model), model).error(
            f"the check would need about {size(found.total)} of memory (one evaluation of J holds "
            f"{count(found.evaluation_numbers)} numbers{_largest_label(model)}); the limit is "
            f"{size(limits.memory)} ({hint('memory')})")
    return found


def _numbers(shape) -> int:
    return int(shape[0]) * int(shape[1])


def _largest_layer(model: Model):
    layers = [(layer, term) for term in model.terms for layer in term.layers]
    if not layers:
        return None
    return max(layers, key=lambda lt: _numbers(lt[0].out_shape))


def _largest_label(model: Model) -> str:
    found = _largest_layer(model)
    if found is None:
        return ""
    layer, term = found
    where = f" of term {term.index}" if len(model.terms) > 1 else ""
    return f"; the largest output is {layer.label}{where}, shape ({layer.out_shape[0]}, {layer.out_shape[1]})"


def _largest_place(model: Model):
    found = _largest_layer(model)
    if found is not None:
        return found[0].place
    params = [d for d in model.decls if d.kind == "param"]
    return max(params, key=lambda d: _numbers(d.shape)).place if params else None


def _at(place, model: Model):
    """Something with `.error()`: the place, or the top of the file."""
    return place if place is not None else _Top(model.path)


class _Top:
    def __init__(self, path: str):
        self.path = path

    def error(self, message: str) -> SpecError:
        return SpecError(message, self.path, 1, 1)
