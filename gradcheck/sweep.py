"""Error against step size at a param's worst entry: the V of truncation against round-off.

A sweep uses the run's settings (the spec's `check:` merged with the options, as `run` does): its
method, so "the step the check uses" is that method's step, and its seed. Each curve says which
error it plots: the relative error |g − n| / max(|g|, |n|) of one analytic side (backprop, or the
spec's `expect` formula) against the numeric derivative at every step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import network, numeric
from .check import check
from .options import FULL, RunOptions
from .perturb import Perturber
from .results import Settings, SpecResult
from .spec import Spec
from .verdict import relative_errors

SIDES = ("backprop", "expect")
ERROR_NAME = "relative error |g − n| / max(|g|, |n|)"  # the check's metric without rtol's floor


@dataclass(frozen=True)
class SweepCurve:
    """One param: errors of the numeric derivative at one entry, step by step."""

    param: str
    index: tuple[int, ...]
    analytic: float
    chosen_step: float  # the step the check uses at this entry (the method's own step)
    steps: tuple[float, ...]
    numeric: tuple[float, ...]
    errors: tuple[float, ...]  # relative error (the check's metric, without the atol floor)
    side: str = "backprop"  # which analytic gradient the errors compare: "backprop" or "expect"
    method: str = "central"

    @property
    def label(self) -> str:
        """What the curve plots, in words."""
        what = "backprop" if self.side == "backprop" else "the expect formula"
        return f"{ERROR_NAME} of {what} against {self.method} differences"

    def to_json(self) -> dict:
        return self.__dict__ | {"index": list(self.index), "error": ERROR_NAME}


def default_steps() -> np.ndarray:
    return np.logspace(-1, -14, 27)


def sweep(spec: Spec, options: RunOptions | None = None, side: str = "backprop",
          steps: np.ndarray | None = None, method: str | None = None, seed: int | None = None) -> list[SweepCurve]:
    """For the worst entry of each param (from a full check with the run's settings), the error at every step.

    side "expect" sweeps each param's expect formula instead (params without one are left out).
    `method` and `seed` are shorthands for the same RunOptions fields.
    """
    options = options or RunOptions()
    options = replace(options, mode=FULL, method=method or options.method,
                      seed=options.seed if seed is None else seed)
    if options.seed is not None and options.seed != spec.model.seed:
        spec = spec.reseeded(options.seed)  # the sweep's own points must be the checked ones
    result = check(spec, options)  # full: it keeps the per-entry arrays
    if result.status == "error":
        raise result.error
    wanted = []
    for p in result.params:
        comparison = p.backprop if side == "backprop" else p.expect
        if comparison is None or p.entries is None or p.entries.analytic(side) is None:
            continue
        index = comparison.worst_index or (0,) * len(p.shape)
        wanted.append((p.name, side, tuple(index), float(p.entries.analytic(side)[tuple(index)])))
    return curves(spec, result.settings, wanted, steps)


def failing_curves(spec: Spec, result: SpecResult, steps: np.ndarray | None = None,
                   every_param: bool = False) -> list[SweepCurve]:
    """The curve of every failing side of `result`'s params, at the worst entry the check reported
    (with every_param, also each passing param's backprop)."""
    if result.settings is None:
        return []
    if result.settings.seed != spec.model.seed:
        spec = spec.reseeded(result.settings.seed)
    wanted = []
    for p in result.params:
        for side, c in (("backprop", p.backprop), ("expect", p.expect)):
            wanted_side = c is not None and (not c.passed or (every_param and side == "backprop"))
            if wanted_side and c.worst_index is not None and c.analytic is not None:
                wanted.append((p.name, side, tuple(c.worst_index), float(c.analytic)))
    return curves(spec, result.settings, wanted, steps)


def curves(spec: Spec, settings: Settings, wanted, steps: np.ndarray | None = None) -> list[SweepCurve]:
    """One curve per (param, side, index, analytic value) in `wanted`, with the method and step of `settings`."""
    steps = default_steps() if steps is None else np.asarray(steps, dtype=float)
    if not wanted:
        return []
    values = dict(spec.values)
    with np.errstate(all="ignore"):
        traces = network.forward(spec.model, values)  # one base pass, shared by every param's perturber
        return [_curve(Perturber(spec.model, values, name, traces), values[name], side, index, analytic,
                       settings, steps) for name, side, index, analytic in wanted]


def _curve(perturber: Perturber, theta: np.ndarray, side: str, index, analytic: float, settings: Settings,
           steps: np.ndarray) -> SweepCurve:
    method = settings.method
    flat = int(np.ravel_multi_index(index, theta.shape))
    scale = max(1.0, abs(float(theta.flat[flat])))
    estimates = [numeric.estimate(perturber, theta, np.array([flat]), method, float(h)).values[0] for h in steps]
    errors = relative_errors(np.full(len(steps), analytic), np.array(estimates), 1.0, 0.0)
    chosen = numeric.steps(theta.flat[flat:flat + 1], settings.eps, method)[0]
    return SweepCurve(perturber.name, tuple(int(i) for i in index), analytic, float(chosen),
                      tuple(float(h * scale) for h in steps), tuple(map(float, estimates)),
                      tuple(map(float, errors)), side, method)
