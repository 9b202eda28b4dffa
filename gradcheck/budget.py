"""What a check will cost, estimated from shapes alone before anything is allocated.

Finite differences evaluate J twice per param entry; each evaluation holds every layer's z and a
(plus a custom activation's intermediates). The checker stacks perturbed points into batches sized
by a memory budget, so the peak is: the declared values, one forward/backward pass, the `define`
and `expect` intermediates, and one batch of perturbed evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import network, numeric, perturb_memory
from .errors import TopOfFile
from .expr import Name, Num
from .limits import DEFAULT, Limits, count, hint, size
from .model import Model
from .options import BATCH_MEMORY, FAST_DIRECTIONS, FULL, Mode
from .second_load import GRADIENT_EVALUATIONS, compared_numbers, probes

BYTES = 8  # float64
ESTIMATE_ARRAYS = 20  # arrays of a second-order estimate per compared entry (numeric.Estimate's, and their work)
OVERHEAD = 2**20  # bytes of Python objects around the arrays (the model, results, small temporaries)


@dataclass(frozen=True)
class Estimate:
    """Estimated bytes of one spec's check, by part."""

    declared: int  # the values under params and data
    once: int  # the forward and backward passes at the spec's values, the gradients, the base traces
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


def _method(model: Model) -> str:
    return model.check.method or "central"


def entries_checked(model: Model, size: int) -> int:
    """Entries of a param the spec's own mode evaluates (fast mode may fall back to all of them)."""
    return (model.check.mode or FULL).entries(size)


def evaluations(mode: Mode, method: str, size: int) -> int:
    """Evaluations of J one param of `size` entries costs in `mode` (fast: its own random directions, taken where
    the joint directions do not vouch for it; a param that fails them is checked in full only within the limit,
    see check.py)."""
    if mode.kind == "fast":
        return FAST_DIRECTIONS * numeric.directional_evaluations(method)
    return numeric.evaluations_per_entry(method) * mode.entries(size)


def steps(model: Model, mode: Mode | None = None, method: str | None = None) -> int:
    """Evaluations of J the finite differences need, with the run's mode and method, else the spec's own; fast
    mode counts its joint directions (once for every param together) and, at most, every param's own."""
    mode, method = mode or model.check.mode or FULL, method or _method(model)
    params = [d for d in model.decls if d.kind == "param"]
    joint = FAST_DIRECTIONS * numeric.directional_evaluations(method) if mode.kind == "fast" and params else 0
    return joint + sum(evaluations(mode, method, _numbers(d.shape)) for d in params)


def second_steps(model: Model, method: str | None = None) -> int:
    """Evaluations of J the hessian/hvp formulas need: per direction one pair of backprop gradients (a Hessian
    of an n×1 param has n directions), each gradient costing about GRADIENT_EVALUATIONS evaluations."""
    per_pair = _pair_evaluations(model, method)
    return sum(_second_steps(f, per_pair, _shape(model, f.name)) for f in model.second)


def _pair_evaluations(model: Model, method: str | None) -> int:
    """Gradients one second-order direction differences (second order runs the complex step as central)."""
    method = method or _method(model)
    return numeric.evaluations_per_entry("central" if method == "complex-step" else method)


def _second_steps(formula, per_pair: int, shape) -> int:
    return probes(formula, shape) * per_pair * GRADIENT_EVALUATIONS


def _shape(model: Model, name: str):
    return next(d.shape for d in model.decls if d.name == name)


def evaluation_numbers(model: Model) -> int:
    """Numbers one forward evaluation holds: layer outputs (and kind-specific work), custom intermediates."""
    shapes = model.shapes
    total = network.footprint(model)
    for term in model.terms:
        refs = [term.coef, term.objective.target]
        for layer in term.layers:
            refs += [layer.weight, layer.bias, layer.activation.argument]
            for expression in getattr(layer.activation, "expressions", ()):
                total += expression_numbers(expression, {**shapes, "z": layer.z_shape})
        for ref in refs:  # an expression in a role (W + I, lam / 2) computes its nodes at every evaluation
            if ref is not None and ref.expression is not None:
                total += expression_numbers(ref.expression, {**shapes, "I": (ref.identity, ref.identity)})
    return total


def expression_numbers(expression, shapes) -> int:
    """Numbers an expression allocates while it evaluates (its computed nodes, not the names it reads)."""
    return sum(_numbers(shape) for node, shape in expression.node_shapes(shapes)
               if not isinstance(node, (Name, Num)))


def per_perturbation_bytes(model: Model, name: str) -> int:
    """What one perturbed evaluation of param `name` holds, in the representation the perturber will use (worked
    out once per model and param: the estimate is asked three times, and a spec may have thousands of params)."""
    known = model.memo.setdefault("per_perturbation_bytes", {})
    if name not in known:
        known[name] = perturb_memory.per_sample_bytes(model, name, model.decl_shapes, _method(model) != "complex-step")
    return known[name]


def batch_bytes(model: Model, name: str, batch_memory: int) -> int:
    """The largest batch of `name`'s perturbations check.py makes: batch_memory // each, at least 2, at most all."""
    each = per_perturbation_bytes(model, name)
    n = _numbers(model.decl_shapes[name])
    evaluations = max(2, batch_memory // each)
    return each * min(evaluations, numeric.evaluations_per_entry(_method(model)) * entries_checked(model, n))


def estimate(model: Model, batch_memory: int = BATCH_MEMORY) -> Estimate:
    """Bytes the check needs when batches get `batch_memory` (never fewer than two evaluations a batch)."""
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
    for formula in model.second:  # its intermediates (V has the param's shape), and the estimate's arrays
        expr_numbers += expression_numbers(formula.expression, {**shapes, "V": _shape(model, formula.name)})
        expr_numbers += ESTIMATE_ARRAYS * compared_numbers(formula, _shape(model, formula.name))
    batch = max((batch_bytes(model, d.name, batch_memory) for d in model.decls if d.kind == "param"), default=0)
    return Estimate(
        declared=BYTES * declared,
        once=BYTES * (3 * per_eval + 2 * params),
        expressions=BYTES * expr_numbers,
        batch=batch,
        evaluation_numbers=per_eval,
    )


def batch_memory(model: Model, limits: Limits = DEFAULT, wanted: int | None = None) -> int:
    """The batch budget (at most `wanted`, by default options.BATCH_MEMORY) that keeps the check under the memory limit."""
    base = estimate(model, 0).base
    return max(0, min(wanted or BATCH_MEMORY, limits.memory - base))


def require(model: Model, limits: Limits = DEFAULT, mode: Mode | None = None, method: str | None = None) -> Estimate:
    """Refuse, at a place in the spec, a check that needs too many evaluations (in the run's mode and method,
    else the spec's own) or too much memory."""
    require_steps(model, limits, mode, method)
    found = estimate(model, batch_memory(model, limits))
    if found.total > limits.memory:
        raise _at(_largest_place(model), model).error(
            f"the check would need about {size(found.total)} of memory (one evaluation of J holds "
            f"{count(found.evaluation_numbers)} numbers{_largest_label(model)}); the limit is "
            f"{size(limits.memory)} ({hint('memory')})")
    return found


def require_steps(model: Model, limits: Limits = DEFAULT, mode: Mode | None = None, method: str | None = None):
    """Refuse a check whose finite differences need more evaluations of J than the limit."""
    params = [d for d in model.decls if d.kind == "param"]
    needed = steps(model, mode, method)
    second = second_steps(model, method)
    if needed + second > limits.steps and second > needed:  # the second-order formulas are the larger part
        per_pair = _pair_evaluations(model, method)
        worst = max(model.second, key=lambda f: _second_steps(f, per_pair, _shape(model, f.name)))
        raise worst.place.error(
            f"checking needs {count(needed + second)} evaluations of J ({count(second)} for the hessian/hvp formulas; "
            f"{worst.section} {worst.name} alone differences {count(probes(worst, _shape(model, worst.name)))} pairs "
            f"of gradients, each about {GRADIENT_EVALUATIONS} evaluations); the limit is {count(limits.steps)} "
            f"({hint('steps')})")
    needed += second
    if needed > limits.steps and params:
        biggest = max(params, key=lambda d: _numbers(d.shape))
        per_entry = numeric.evaluations_per_entry(method or _method(model))
        raise _at(biggest.place, model).error(
            f"checking needs {count(needed)} evaluations of J ({per_entry} per param entry; {biggest.name} alone has "
            f"{count(_numbers(biggest.shape))} entries); the limit is {count(limits.steps)} ({hint('steps')})")


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
    return place if place is not None else TopOfFile(model.path)
