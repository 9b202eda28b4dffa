"""Error against step size at each param's worst entry: the V of truncation against round-off."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import network, numeric
from .check import check
from .options import FULL, RunOptions
from .perturb import Perturber
from .spec import Spec
from .verdict import relative_errors


@dataclass(frozen=True)
class SweepCurve:
    """One param: errors of the numeric derivative at one entry, step by step."""

    param: str
    index: tuple[int, ...]
    analytic: float
    chosen_step: float  # the step the check uses at this entry
    steps: tuple[float, ...]
    numeric: tuple[float, ...]
    errors: tuple[float, ...]  # relative error (the check's metric, without the atol floor)


def sweep(spec: Spec, method: str = "central", steps: np.ndarray | None = None,
          seed: int | None = None) -> list[SweepCurve]:
    """For the worst entry of each param (from a full check), the error at every step in `steps`."""
    steps = np.logspace(-1, -14, 27) if steps is None else np.asarray(steps, dtype=float)
    if seed is not None and seed != spec.model.seed:
        spec = spec.reseeded(seed)  # the sweep's own points must be the checked ones
    result = check(spec, RunOptions(method=method, mode=FULL))  # full: it keeps per-entry arrays
    if result.status == "error":
        raise result.error
    values = dict(spec.values)
    with np.errstate(all="ignore"):
        traces = network.forward(spec.model, values)  # one base pass, shared by every param's perturber
    curves = []
    for p in result.params:
        index = p.backprop.worst_index or (0, 0)
        theta = values[p.name]
        flat = int(np.ravel_multi_index(index, theta.shape))
        perturber = Perturber(spec.model, values, p.name, traces)
        analytic = float(p.entries.backprop[index])  # the full check kept its backprop gradient
        scale = max(1.0, abs(float(theta.flat[flat])))
        estimates = [numeric.estimate(perturber, theta, np.array([flat]), method, float(h)).values[0] for h in steps]
        errors = relative_errors(np.full(len(steps), analytic), np.array(estimates), 1.0, 0.0)
        chosen = numeric.steps(theta.flat[flat:flat + 1], result.settings.eps, method)[0]
        curves.append(SweepCurve(p.name, tuple(index), analytic, float(chosen),
                                 tuple(float(h * scale) for h in steps), tuple(map(float, estimates)),
                                 tuple(map(float, errors))))
    return curves
