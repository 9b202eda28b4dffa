"""Forward and backward passes over a model's terms (the UFLDL network view), in pure numpy.

Forward caches every layer's input, z and a. Backward walks the layers in reverse carrying the
error signal δ = ∂J/∂z; each use of a name *adds* its contribution to that name's gradient
(micrograd's `+=`), which is what makes tied weights such as W and Wᵀ come out summed.
Arrays may carry leading batch axes: the finite-difference engine evaluates stacks of perturbed
values in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from . import structured
from .model import Layer, Model, Objective, Ref, Term


class NonFinite(Exception):
    """A NaN or Inf first appeared at `where` (a Layer, Objective or Term)."""

    def __init__(self, where, what: str):
        super().__init__(what)
        self.where = where
        self.what = what


@dataclass
class LayerTrace:
    """What the forward pass computed in one layer (plus whatever its kind needs for backward)."""

    layer: Layer
    a_in: np.ndarray
    z: np.ndarray
    a: np.ndarray
    argument: object
    cache: dict = field(default_factory=dict)


@dataclass
class TermTrace:
    """One term's forward pass: per-layer traces and J_term (shape batch + (1, 1))."""

    term: Term
    layers: list[LayerTrace]
    value: np.ndarray
    coef: object


def forward(model: Model, values: Mapping[str, np.ndarray], check_finite: bool = False) -> list[TermTrace]:
    """The forward pass of every term: one base trace, shared by J, backprop and the perturbations."""
    return [forward_term(term, values, check_finite) for term in model.terms]


def value_of(traces: list[TermTrace]) -> np.ndarray:
    """J from the traces of every term; batch axes of the values become the axes of the result."""
    total = 0.0
    for trace in traces:
        total = total + trace.coef * trace.value
    return np.asarray(total)[..., 0, 0]


def objective(model: Model, values: Mapping[str, np.ndarray], check_finite: bool = False) -> np.ndarray:
    """J for the given values; batch axes of the values become the axes of the result."""
    return value_of(forward(model, values, check_finite))


def forward_term(term: Term, values: Mapping[str, np.ndarray], check_finite: bool = False) -> TermTrace:
    """Run one term's layers, keeping each layer's input, z and a."""
    a = term.input.value(values)
    traces = []
    for layer in term.layers:
        trace = LAYER_KINDS[layer.kind].forward(layer, a, values)
        if check_finite:
            _require_finite(trace.z, layer, "z, the layer's input to its activation")
            _require_finite(trace.a, layer, f"the activation {layer.activation.label}")
        traces.append(trace)
        a = trace.a
    value = _objective_value(term.objective, a, values)
    coef = 1.0 if term.coef is None else term.coef.value(values)
    if check_finite:
        _require_finite(value, term.objective, f"the objective {term.objective.label}")
    return TermTrace(term, traces, value, coef)


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


def backward_term(trace: TermTrace, values: Mapping[str, np.ndarray], grads: dict[str, np.ndarray]) -> list:
    """Accumulate one term's contributions into `grads`; returns the δ of each layer (last first)."""
    term = trace.term
    _accumulate(grads, term.coef, trace.value)
    a_last = trace.layers[-1].a if trace.layers else term.input.value(values)
    g, g_target = _objective_grad(term.objective, a_last, values)
    g = trace.coef * g
    if g_target is not None:
        _accumulate(grads, term.objective.target, trace.coef * g_target)
    deltas = []
    for lt in reversed(trace.layers):
        g, delta = LAYER_KINDS[lt.layer.kind].backward(lt, g, values, grads)
        deltas.append(delta)
    _accumulate(grads, term.input, g)
    return deltas


class Dense:
    """z = W a (+ b), a = f(z): the UFLDL layer. Other kinds follow the same two-method shape."""

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        z = a_in if layer.weight is None else np.matmul(layer.weight.value(values), a_in)
        if layer.bias is not None:
            z = z + layer.bias.value(values)
        return _activate(layer, a_in, z, values)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        """(∂J/∂a_in, δ): accumulate this layer's contributions, pass the signal down."""
        layer = lt.layer
        delta = _activation_backward(lt, g, grads)
        _accumulate(grads, layer.bias, delta)
        if layer.weight is None:
            return delta, delta
        _accumulate(grads, layer.weight, delta @ np.swapaxes(lt.a_in, -1, -2))
        return np.swapaxes(layer.weight.value(values), -1, -2) @ delta, delta

    @staticmethod
    def footprint(layer: Layer) -> int:
        """Numbers one forward evaluation of this layer holds: z and a."""
        return 2 * layer.out_shape[0] * layer.out_shape[1]


class Conv:
    """z = K ⊛ a (+ c per filter): a dense layer whose matrix repeats the kernel, computed by im2col.

    Each column of a is one (C, *spatial) image. K is (F, C·kh·kw); im2col turns the input into
    one column per (position, example), so z = K @ cols, and backward sums δ·colsᵀ over every
    position: the tied weight's gradient is the sum over the places it is used.
    """

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        cols = structured.im2col(a_in, opt.image, opt.size, opt.stride, opt.padding)
        z = np.matmul(opt.kernel.value(values), cols)  # (..., F, positions·m)
        if opt.bias is not None:
            z = z + opt.bias.value(values)
        z = z.reshape(z.shape[:-2] + (-1, a_in.shape[-1]))  # rows in (filter, position) order
        return _activate(layer, a_in, z, values, cols=cols)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        opt = lt.layer.options
        delta = _activation_backward(lt, g, grads)
        per_filter = delta.reshape(opt.filters, -1)  # (F, positions·m)
        _accumulate(grads, opt.bias, per_filter.sum(axis=1, keepdims=True))
        _accumulate(grads, opt.kernel, per_filter @ lt.cache["cols"].T)
        dcols = opt.kernel.value(values).T @ per_filter
        return structured.col2im(dcols, opt.image, opt.size, opt.stride, opt.padding, opt.out_spatial), delta

    @staticmethod
    def footprint(layer: Layer) -> int:
        """z and a, the unfolded columns, and the padded input."""
        opt, m = layer.options, layer.in_shape[1]
        unfolded = opt.channels * int(np.prod(opt.size)) * int(np.prod(opt.out_spatial)) * m
        padded = opt.channels * int(np.prod([n + 2 * p for n, p in zip(opt.image[1:], opt.padding)])) * m
        return Dense.footprint(layer) + unfolded + padded


class MaxPool:
    """z = the maximum of each window; backward routes δ to the first maximum of each window.

    The trace's cache holds "margin": per output entry, the gap between the window's largest and
    second-largest value (0 at a tie, where max is not differentiable), for kink detection.
    """

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        z, argmax, margin = structured.max_pool(a_in, opt.image, opt.size, opt.stride)
        return _activate(layer, a_in, z, values, argmax=argmax, margin=margin)

    analytic = False  # max has kinks at ties: no complex step through it

    @staticmethod
    def state(lt: LayerTrace) -> np.ndarray:
        """Which entry won each window: a perturbation that changes it crossed a tie (a kink)."""
        return lt.cache["argmax"]

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        opt = lt.layer.options
        delta = _activation_backward(lt, g, grads)
        return structured.max_unpool(delta, lt.cache["argmax"], opt.image, opt.size, opt.stride), delta

    @staticmethod
    def footprint(layer: Layer) -> int:
        """z, a, margin and the copied windows (about three times the input)."""
        return 3 * layer.out_shape[0] * layer.out_shape[1] + 3 * layer.in_shape[0] * layer.in_shape[1]


class Recurrent:
    """h_t = f(Wh h_{t-1} + Wx x_t + b) for t = 1..T: an unrolled deep network sharing Wh, Wx, b.

    The input column stacks x_1..x_T (x_1 on top). Backward is backpropagation through time:
    the error signal at h_t is the one from the output (if h_t is output) plus Wᵀh δ_{t+1}, and
    every step adds its own contribution to the shared Wh, Wx, b (and to h_0 and the inputs).
    """

    @staticmethod
    def forward(layer: Layer, a_in, values) -> LayerTrace:
        opt = layer.options
        wh, wx = opt.hidden_weight.value(values), opt.input_weight.value(values)
        bias = 0.0 if opt.bias is None else opt.bias.value(values)
        h0 = np.zeros((opt.hidden, a_in.shape[-1])) if opt.init is None else opt.init.value(values)
        argument = _argument(layer, values)
        zs, hs, h = [], [], h0
        for x in _steps(a_in, opt):
            z = np.matmul(wh, h) + np.matmul(wx, x) + bias
            h = _apply(layer, z, argument)
            zs.append(z)
            hs.append(h)
        zs, hs = np.broadcast_arrays(*zs), np.broadcast_arrays(*hs)
        out = hs[-1] if opt.output == "last" else np.concatenate(hs, axis=-2)
        cache = {"z_steps": zs, "h_steps": hs, "h0": h0}
        return LayerTrace(layer, a_in, np.concatenate(zs, axis=-2), out, argument, cache)

    @staticmethod
    def backward(lt: LayerTrace, g, values, grads):
        layer, opt = lt.layer, lt.layer.options
        wh, wx = opt.hidden_weight.value(values), opt.input_weight.value(values)
        xs, zs, hs = _steps(lt.a_in, opt), lt.cache["z_steps"], lt.cache["h_steps"]
        from_output = np.split(g, opt.steps, axis=-2) if opt.output == "all" else [0.0] * (opt.steps - 1) + [g]
        carried = 0.0
        deltas, dxs = [None] * opt.steps, [None] * opt.steps
        for t in reversed(range(opt.steps)):
            delta = _activation_step(layer, from_output[t] + carried, zs[t], hs[t], lt.argument, grads)
            h_prev = hs[t - 1] if t > 0 else np.broadcast_to(lt.cache["h0"], np.shape(delta))  # h0 may be (n, 1)
            _accumulate(grads, opt.bias, delta)
            _accumulate(grads, opt.hidden_weight, delta @ np.swapaxes(h_prev, -1, -2))
            _accumulate(grads, opt.input_weight, delta @ np.swapaxes(xs[t], -1, -2))
            dxs[t] = np.swapaxes(wx, -1, -2) @ delta
            carried = np.swapaxes(wh, -1, -2) @ delta
            deltas[t] = delta
        _accumulate(grads, opt.init, carried)
        return np.concatenate(dxs, axis=-2), np.concatenate(deltas, axis=-2)

    @staticmethod
    def footprint(layer: Layer) -> int:
        """z and h of every step, and the output."""
        opt, m = layer.options, layer.in_shape[1]
        return 2 * opt.steps * opt.hidden * m + layer.out_shape[0] * m


def _steps(a_in, opt) -> list:
    """x_1..x_T: the T blocks of d rows of the recurrent layer's input."""
    return [a_in[..., t * opt.inputs:(t + 1) * opt.inputs, :] for t in range(opt.steps)]


def _apply(layer: Layer, z, argument):
    """a = f(z), broadcast to z's shape at least."""
    out = layer.activation.row.forward(z, argument)
    if np.shape(out) != np.shape(z):  # a custom f may return less (a constant); a batched argument more
        out = np.broadcast_to(out, np.broadcast_shapes(np.shape(out), np.shape(z)))
    return out


def _activate(layer: Layer, a_in, z, values, **cache) -> LayerTrace:
    """Apply the layer's activation to z and record the trace."""
    argument = _argument(layer, values)
    return LayerTrace(layer, a_in, z, _apply(layer, z, argument), argument, cache)


def _activation_backward(lt: LayerTrace, g, grads):
    """δ = g·f′(z); a param used as the activation's argument collects g·∂a/∂c."""
    return _activation_step(lt.layer, g, lt.z, lt.a, lt.argument, grads)


def _activation_step(layer: Layer, g, z, a, argument, grads):
    """δ = g·f′(z) at one application of the layer's activation (one time step of a recurrent layer)."""
    row, arg = layer.activation.row, layer.activation.argument
    if arg is not None and arg.name in grads:
        _accumulate(grads, arg, row.argument_grad(g, z, a, argument))
    return row.backward(g, z, a, argument)


# Layer kinds by name: each has forward(layer, a_in, values) -> LayerTrace,
# backward(trace, g, values, grads) -> (∂J/∂a_in, δ at z) and footprint(layer) -> numbers held.
LAYER_KINDS = {"dense": Dense, "conv": Conv, "maxpool": MaxPool, "recurrent": Recurrent}


def footprint(model: Model) -> int:
    """Numbers one forward evaluation holds (every layer's z and a, and kind-specific work), to size batches."""
    total = 0
    for term in model.terms:
        for layer in term.layers:
            total += LAYER_KINDS[layer.kind].footprint(layer)
        total += term.layers[0].in_shape[0] * term.layers[0].in_shape[1] if term.layers else 1
    return max(total, 1)


def _argument(layer: Layer, values):
    """The activation's argument: a value, the value env (custom rows), or None."""
    use = layer.activation
    if use.argument is not None:
        return use.argument.value(values)
    return values if use.row.takes_argument else None


def _accumulate(grads: dict, ref: Ref | None, contribution) -> None:
    """grads[name] += contribution, transposed back for `.T` uses and summed over broadcast axes."""
    if ref is None or ref.name is None or ref.name not in grads:
        return
    contribution = np.asarray(contribution, dtype=float)
    if ref.transposed:
        contribution = np.swapaxes(contribution, -1, -2)
    grads[ref.name] += unbroadcast(contribution, grads[ref.name].shape)


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum g down to `shape`, undoing numpy broadcasting (a bias (n, 1) used over m columns)."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _columns(a: np.ndarray) -> int:
    return a.shape[-1]


def entry_loss(obj: Objective, a, y):
    """The objective's summand at each entry: J_term = objective_scale · Σ entry_loss."""
    if obj.kind in ("sum", "mean"):
        return a
    if obj.kind == "squared_error":
        return 0.5 * np.square(a - y)
    if obj.kind == "binary_cross_entropy":
        return -y * np.log(a) - (1.0 - y) * np.log1p(-a)
    return -y * np.log(a)  # cross_entropy


def objective_scale(obj: Objective, shape) -> float:
    """The factor before the sum: 1/(n·m) for `mean`, 1/m for a loss with `reduce: mean`, else 1."""
    rows, cols = shape[-2:]
    if obj.kind == "mean":
        return 1.0 / (rows * cols)
    return 1.0 / cols if obj.kind != "sum" and obj.reduce == "mean" else 1.0


def _objective_value(obj: Objective, a: np.ndarray, values) -> np.ndarray:
    """J_term with keepdims (batch + (1, 1))."""
    y = None if obj.target is None else obj.target.value(values)
    per_entry = entry_loss(obj, a, y)
    per_entry = np.broadcast_to(per_entry, np.broadcast_shapes(np.shape(per_entry), np.shape(a)))
    return objective_scale(obj, np.shape(a)) * np.sum(per_entry, axis=(-2, -1), keepdims=True)


def _objective_grad(obj: Objective, a: np.ndarray, values):
    """(∂J_term/∂a, ∂J_term/∂target or None): the δ that starts backprop."""
    if obj.kind == "sum":
        return np.ones_like(a), None
    if obj.kind == "mean":
        return np.full_like(a, 1.0 / (a.shape[-1] * a.shape[-2])), None
    y = obj.target.value(values)
    if obj.kind == "squared_error":
        da, dy = a - y, y - a
    elif obj.kind == "binary_cross_entropy":
        da, dy = (a - y) / (a * (1.0 - a)), np.log1p(-a) - np.log(a)
    else:  # cross_entropy
        da, dy = -y / a, -np.log(a)
    scale = 1.0 / _columns(a) if obj.reduce == "mean" else 1.0
    return scale * np.broadcast_to(da, a.shape), scale * dy


def _require_finite(x, where, what: str) -> None:
    if not np.all(np.isfinite(x)):
        raise NonFinite(where, what)
