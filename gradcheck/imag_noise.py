"""The round-off an imaginary step leaves inside a layer, carried to the objective as a size in J's units.

The complex step's error is a few ε of the imaginary parts its sums added up (numeric.py): at the loss, Σ|Im L|
(network.entry_sizes). A layer that cancels imaginary parts inside itself (attention: a saturated softmax's
Im A = A ⊙ (Im s − Σ A·Im s) with one weight ≈ 1) leaves a round-off of a few ε of what it cancelled, which can
be far above the |Im| that reaches the loss. Such a kind puts, per entry of its z, Σ|Im| of the terms it summed in
its trace's cache (`imag_noise`), and trace.activate does the same for an activation row that cancels (softmax:
`imag_noise_a`, per entry of a); here that noise moves to the objective as an imaginary step of its own (first
order: each later layer's forward at the base values plus i·noise, magnitudes kept after each layer, since the
round-off's sign is unknown), and the objective's Σ|Im L| of it is added to the step's size.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from . import network
from .kinds import KINDS
from .trace import activate


def record(noise: dict, lt) -> None:
    """Keep what a layer's trace says it cancelled, (per entry of z, per entry of a), under the layer's key: its
    kind's `imag_noise` and its activation's `imag_noise_a` (trace.activate)."""
    cache = getattr(lt, "cache", {})
    z, a = cache.get("imag_noise"), cache.get("imag_noise_a")
    if z is not None or a is not None:
        noise[lt.layer.key] = (0.0 if z is None else z, 0.0 if a is None else a)


def carried(term, trace, values, noise: dict, batch: int) -> np.ndarray:
    """(B,) Σ|Im L| the term's objective sums when each layer in `noise` moves by i·noise (its base elsewhere),
    times the loss's factor (not the term's coef: the caller weighs it)."""
    if not noise:
        return np.zeros(batch)
    base = {lt.layer.key: lt for lt in trace.layers}

    def step(layer, a_in):
        lt, own = base[layer.key], noise.get(layer.key)
        if not np.iscomplexobj(a_in) and own is None:
            return SimpleNamespace(layer=layer, z=lt.z, a=lt.a)  # the noise has not reached it
        own_z, own_a = (0.0, 0.0) if own is None else own
        z = KINDS[layer.kind].forward(layer, a_in, values).z if np.iscomplexobj(a_in) else lt.z
        z = np.real(z) + 1j * (np.abs(np.imag(z)) + own_z)
        a = activate(layer, lt.a_in, z, values).a
        return SimpleNamespace(layer=layer, z=z, a=np.real(a) + 1j * (np.abs(np.imag(a)) + own_a))

    steps, a = network.walk_forward(term, network.numbers(values), step)
    if not np.iscomplexobj(a):
        return np.zeros(batch)
    obj, fused = term.objective, network.fused_loss(term)
    z = steps[term.output].z if fused is not None else None
    y = None if obj.target is None else obj.target.value(values)
    sizes = network.entry_sizes(network.entry_losses(obj, a, y, z, fused), None, z, y, fused)
    shape = trace.layers[term.output].a.shape
    total = np.broadcast_to(sizes, (batch,) + shape).reshape(batch, -1).sum(axis=1)
    return obj.row.scale(shape, obj.reduce) * total
