"""Backprop's own round-off, measured: how far its gradient moves when what it reads moves by one rounding.
Measured once per spec, and only when a comparison fails without it (`Bounds`): most checks never pay for it.

Backprop is not exact either. Where a tanh unit saturates, a = tanh(z) rounds to ±1 and f′ = 1 − a² comes
out 0 (or an absolute ~ε) where the true value is 1e-20; an entry fed mainly through such units carries an
absolute error of about ε times the magnitudes its sums ran over, which can be far above its own size, while
a complex step resolves it to ~ε relative. The verdict must allow for that, or it fails correct gradients.

The estimate is empirical and the same for every layer kind: the backward pass again, on copies of the base
trace whose stored floating-point values (each layer's input, z, a and its kind's cache, the objective's J)
and whose signal into every layer are each moved by a random relative ±ε: at least one unit in the last place
of each, up or down (x·(1 ± ε/2) can round back to x at the bottom of a binade: 1 + ε/2 rounds to 1). Four
such passes; per entry, the largest move from backprop's own gradient (at least ε of the gradient itself),
times a safety factor, is backprop's round-off estimate. A relative move keeps every sign and every zero
(relu's side, a dropout mask, a masked attention key), and integer caches (maxpool's argmax, embedding
indices) are left alone, so each pass takes the same discrete path as the base one. The same estimate stands for an `expect` formula: written as
1 − a², it rounds the same way.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Mapping

import numpy as np

from . import network
from .model import Model
from .numeric import MACHINE_EPS
from .trace import LayerTrace

# Jittered backward passes per spec (not per entry), and the factor on their largest move: over 1,200 jittered
# passes of the two saturated specs of tests/fixtures/roundoff, 4 passes and 4× covered the real round-off (a
# 60-digit oracle's) of every entry in every group of 4; 2 passes missed in 0.2-3% of groups.
PASSES = 4
SAFETY = 4.0
SEED_TAG = 0x726F756E  # the jitter's own stream under the run's seed
POOL = 4096  # signs drawn at once


class Bounds:
    """backprop_error for a spec, measured on the first call and kept: a check that passes without it never pays."""

    def __init__(self, model: Model, traces: list, values: Mapping[str, np.ndarray], grads: dict, seed: int | None):
        self.args, self.found = (model, traces, values, grads, seed), None

    def __call__(self) -> dict[str, np.ndarray]:
        if self.found is None:
            self.found = backprop_error(*self.args)
        return self.found


def backprop_error(model: Model, traces: list, values: Mapping[str, np.ndarray], grads: dict,
                   seed: int | None) -> dict[str, np.ndarray]:
    """Per param, the estimated round-off of backprop's gradient `grads` (0 where it cannot be measured)."""
    rng = np.random.default_rng([SEED_TAG, 0 if seed is None else int(seed)])
    spread = {name: np.zeros(np.shape(g), dtype=float) for name, g in grads.items()}
    for _ in range(PASSES):
        moved = {name: np.zeros_like(values[name], dtype=float) for name in model.param_names}
        jitter = _Jitter(rng)
        with np.errstate(all="ignore"):
            for trace in traces:
                network.backward_term(jitter.term(trace), values, moved, signal=jitter)
        for name, g in spread.items():
            gap = np.abs(moved[name] - grads[name])
            np.maximum(g, np.where(np.isfinite(gap), gap, 0.0), out=g)  # a pass that broke says nothing
    # at least one rounding of the result itself, which opposite moves of its factors can hide from the passes
    return {name: SAFETY * np.maximum(g, MACHINE_EPS * np.abs(grads[name])) for name, g in spread.items()}


class _Jitter:
    """Moves every floating-point number it is given by a random relative ±ε (new draws each call)."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.pool, self.at = rng, np.zeros(0), 0

    def __call__(self, x):
        if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
            return x * self._factors(x.shape)
        if isinstance(x, (float, np.floating)):
            return x * float(self._factors(()))
        if isinstance(x, (list, tuple)):
            return type(x)(self(v) for v in x)
        if isinstance(x, dict):
            return {k: self(v) for k, v in x.items()}
        return x  # integers, booleans, None, objects: discrete state stays as it was

    def _factors(self, shape) -> np.ndarray:
        """1 − ε or 1 + ε, each with probability ½, the next ones of a pool (one draw per many small arrays)."""
        size = math.prod(shape)
        if self.at + size > self.pool.size:
            signs = self.rng.integers(0, 2, size=max(size, POOL), dtype=np.int8)
            self.pool, self.at = np.where(signs == 1, 1.0 + MACHINE_EPS, 1.0 - MACHINE_EPS), 0
        self.at += size
        return self.pool[self.at - size:self.at].reshape(shape)

    def layer(self, lt: LayerTrace) -> LayerTrace:
        """A copy of one layer's trace with its stored values moved."""
        return LayerTrace(lt.layer, self(lt.a_in), self(lt.z), self(lt.a), lt.argument, self(lt.cache),
                          self(list(lt.inputs)))

    def term(self, trace: network.TermTrace) -> network.TermTrace:
        """A copy of one term's trace with every layer's stored values and J_term moved."""
        return replace(trace, layers=[self.layer(lt) for lt in trace.layers], value=self(trace.value))
