"""What a forward pass records per layer, and the steps every layer kind shares: apply the layer's
activation, take its derivative, and add a contribution to a gradient (micrograd's `+=`).

Arrays may carry leading batch axes: the finite-difference engine evaluates stacks of perturbed
values in one call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import exprgrad
from .model import Layer, Ref


@dataclass
class LayerTrace:
    """What the forward pass computed in one layer (plus whatever its kind needs for backward)."""

    layer: Layer
    a_in: np.ndarray
    z: np.ndarray
    a: np.ndarray
    argument: object
    cache: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)  # what the layer read, before its merge (set by the walk)


def argument_of(layer: Layer, values):
    """The activation's argument: a value, the value env (custom rows), or None."""
    use = layer.activation
    if use.argument is not None:
        return use.argument.value(values)
    return values if use.row.takes_argument else None


def apply(layer: Layer, z, argument):
    """a = f(z), broadcast to z's shape at least."""
    row = layer.activation.row
    out = row.forward(z, argument)
    # a custom f may return less (a constant), a batched argument more; a whole-matrix row has its own shape
    if row.elementwise and np.shape(out) != np.shape(z):
        out = np.broadcast_to(out, np.broadcast_shapes(np.shape(out), np.shape(z)))
    return out


def activate(layer: Layer, a_in, z, values, **cache) -> LayerTrace:
    """Apply the layer's activation to z and record the trace."""
    argument = argument_of(layer, values)
    a = apply(layer, z, argument)
    noise = layer.activation.row.imag_noise
    if noise is not None and np.iscomplexobj(z):  # an imaginary step: what f cancelled (imag_noise.py)
        cache["imag_noise_a"] = noise(z, a)
    return LayerTrace(layer, a_in, z, a, argument, cache)


@dataclass(frozen=True)
class AtZ:
    """An error signal already at z (a loss fused with the activation gave δ directly): f′ is not applied again."""

    delta: np.ndarray


def activation_backward(lt: LayerTrace, g, grads):
    """δ = g·f′(z); a param used as the activation's argument collects g·∂a/∂c."""
    if isinstance(g, AtZ):
        return g.delta
    return activation_step(lt.layer, g, lt.z, lt.a, lt.argument, grads)


def activation_step(layer: Layer, g, z, a, argument, grads):
    """δ = g·f′(z) at one application of the layer's activation (one time step of a recurrent layer)."""
    row, arg = layer.activation.row, layer.activation.argument
    if arg is not None and arg.name in grads:
        accumulate(grads, arg, row.argument_grad(g, z, a, argument))
    return row.backward(g, z, a, argument)


class Recorder(dict):
    """Gradients that also keep each use's contribution apart: [(where, ref, contribution, signal)].

    `where` is set by whoever walks (the label of the layer being stepped through); `signal` is the
    contribution before it was summed down to the param's shape (a bias's δ), for the diagnosis.
    """

    def __init__(self, grads: dict):
        super().__init__(grads)
        self.where = ""
        self.uses: list[tuple[str, Ref, np.ndarray, np.ndarray]] = []


def accumulate(grads: dict, ref: Ref | None, contribution) -> None:
    """grads[name] += contribution, transposed back for `.T` uses and summed over broadcast axes."""
    if ref is None or ref.name is None or ref.name not in grads:
        return
    contribution = np.asarray(contribution, dtype=float)
    signal = contribution
    if ref.transposed:
        contribution = np.swapaxes(contribution, -1, -2)
    summed = unbroadcast(contribution, grads[ref.name].shape)
    grads[ref.name] += summed
    if isinstance(grads, Recorder):
        grads.uses.append((grads.where, ref, summed, signal))


def accumulate_use(grads: dict, ref: Ref | None, contribution, values) -> None:
    """accumulate(), and for an expression that reads params (`W + I`) its backward pass to each of them."""
    if ref is None or not ref.params:
        accumulate(grads, ref, contribution)
        return
    if not any(name in grads for name in ref.params):
        return
    contribution = np.asarray(contribution, dtype=float)
    signal = contribution
    ops = exprgrad.NumberOps(ref.env(values))
    g = ops.reduce(contribution, np.shape(ref.value(values)))  # a column bias used over m columns

    def add(name, piece):
        if name in grads:
            grads[name] += piece
            if isinstance(grads, Recorder):
                grads.uses.append((grads.where, ref, piece, signal))

    exprgrad.backward(ref.expression.root, g, set(ref.params), ops, add)


unbroadcast = exprgrad.unbroadcast  # one definition; the walks import it from here


def discrete_state(layer: Layer, z):
    """Which side of each kink of the layer's activation every z lies on (None for smooth rows)."""
    kinks = layer.activation.row.kinks
    if not kinks:
        return None
    z = np.real(z)
    return np.stack([z > k for k in kinks], axis=-1) if len(kinks) > 1 else (z > kinks[0])
