"""Second order: a user's `hessian:` and `hvp:` formulas against finite differences of the backprop gradient.

Backprop's gradient g(θ) is exact to rounding, so its central differences are as sound a reference for
second derivatives as first order's differences of J are for the first: column j of the Hessian of an
n×1 param is d/dt g(θ + t·e_j), and H·V is d/dt g(θ + t·V) for seeded random directions V. Each entry of
H (or of H·V) is one scalar derivative to numeric.py: the same step, round-off and truncation estimates,
ladders and step search as first order; one gradient at a moved point serves every entry that shares the
move. Entries whose two gradients sit on different sides of a kink (relu at 0, a max tie) are not
differentiable there: reported as such, never as failures.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from . import network, numeric
from .diagnosis import diagnose
from .kinds import KINDS
from .model import Model, SecondFormula
from .results import SecondResult, Settings
from .rowpatch import term_uses
from .second_load import DIRECTION, DIRECTIONS
from .trace import discrete_state
from .verdict import Comparison, Kink, judge, kink_mask, tolerance

SEARCH_ROUNDS = 3  # step-search rounds per undecided entry, as first order's (check.SEARCH_ROUNDS)
DEFAULT_RTOL = {"central": 1e-6, "richardson": 1e-8}  # as first order's defaults for these methods
TRUTH = {"hessian": "the Hessian", "hvp": "H·V"}


def check_formulas(model: Model, values: dict, traces: list, grads: dict,
                   settings: Settings) -> tuple[SecondResult, ...]:
    """Every hessian and hvp formula of the spec, judged entry by entry."""
    if not model.second:
        return ()
    env = _environment(model, values)
    probes: dict[str, GradientProbe] = {}
    out = []
    for formula in model.second:
        probe = probes.get(formula.name) or GradientProbe(model, values, formula.name, traces, grads[formula.name])
        probes[formula.name] = probe
        out.append(_check_formula(probe, formula, env, settings))
    return tuple(out)


def method_for(settings: Settings) -> tuple[str, float]:
    """The method and rtol of second order: the run's, except that the complex step (which would need a
    complex backward pass) gives way to central differences, at central's tolerance or the run's if looser."""
    if settings.method in DEFAULT_RTOL:
        return settings.method, settings.rtol
    return "central", max(settings.rtol, DEFAULT_RTOL["central"])


# ----------------------------------------------------------------------------- gradients at moved points


class GradientProbe:
    """Backprop's gradient of one param at moved values of it, with the discrete state each move reached."""

    def __init__(self, model: Model, values: dict, name: str, traces: list, grad: np.ndarray):
        self.model, self.values, self.name = model, values, name
        self.theta = np.asarray(values[name], dtype=float)
        self.grad = np.asarray(grad, dtype=float)
        self.state = _states(model, name, traces)
        # backprop sums products through every layer: its round-off is taken at the scale of the largest entry
        self.spread = float(np.max(np.abs(self.grad))) if self.grad.size else 0.0

    def at(self, theta: np.ndarray) -> tuple[np.ndarray, bool]:
        """(g at θ, whether some discrete state differs from the base point's)."""
        moved = dict(self.values)
        moved[self.name] = theta
        traces = network.forward(self.model, moved)
        g = network.backward(self.model, traces, moved, check_finite=False)[self.name]
        state = _states(self.model, self.name, traces)
        return g, any(not np.array_equal(a, b) for a, b in zip(state, self.state))

    def difference(self, g: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(g − g₀, the size of what each entry summed) at flat `rows`: the ΔJ and size numeric.py expects."""
        flat, base = g.reshape(-1)[rows], self.grad.reshape(-1)[rows]
        return flat - base, np.abs(flat) + np.abs(base) + self.spread


def _states(model: Model, name: str, traces: list) -> list:
    """The discrete choices (kink sides, pooling winners) of every layer of the terms that read the param."""
    out = []
    for trace in traces:
        if not term_uses(trace.term, name):
            continue
        for lt in trace.layers:
            out += [s for s in (discrete_state(lt.layer, lt.z), KINDS[lt.layer.kind].state(lt)) if s is not None]
    return out


def column_evaluator(probe: GradientProbe):
    """numeric.py's evaluator over the n×n Hessian: entry (i, j) moved by δ is g_i(θ + δ e_j) − g_i(θ)."""
    n = probe.theta.shape[0]

    def evaluate(flat: np.ndarray, delta: np.ndarray):
        rows, cols = np.divmod(np.asarray(flat), n)
        return _grouped(probe, rows, delta, cols, lambda j, d: _moved_entry(probe.theta, j, d))

    return evaluate


def direction_evaluator(probe: GradientProbe, v: np.ndarray):
    """numeric.py's evaluator over H·V: entry i moved by δ is g_i(θ + δ V) − g_i(θ)."""
    def evaluate(flat: np.ndarray, delta: np.ndarray):
        flat = np.asarray(flat)
        return _grouped(probe, flat, delta, np.zeros_like(flat), lambda _, d: probe.theta + d * v)

    return evaluate


def _moved_entry(theta: np.ndarray, j: int, delta: float) -> np.ndarray:
    moved = theta.copy()
    moved.reshape(-1)[j] += delta
    return moved


def _grouped(probe: GradientProbe, rows, delta, keys, point):
    """One gradient per distinct (key, δ): every entry that shares the move reads the same evaluation."""
    delta = np.asarray(delta)
    dJ, size = np.zeros(rows.shape, dtype=float), np.zeros(rows.shape, dtype=float)
    crossed = np.zeros(rows.shape, dtype=bool)
    steps, step_index = np.unique(np.real(delta), return_inverse=True)  # 1-D uniques: sorting pairs is slow
    pairs, inverse = np.unique(keys.astype(np.int64) * steps.size + step_index.reshape(-1), return_inverse=True)
    inverse = inverse.reshape(-1)
    groups = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    for pair, members in zip(pairs, groups):
        key, d = divmod(int(pair), steps.size)
        g, moved = probe.at(point(key, float(steps[d])))
        dJ[members], size[members] = probe.difference(g, rows[members])
        crossed[members] = moved
    return dJ, crossed, size


# ----------------------------------------------------------------------------- one formula


def _check_formula(probe: GradientProbe, formula: SecondFormula, env: dict, settings: Settings) -> SecondResult:
    method, rtol = method_for(settings)
    theta = probe.theta
    if formula.section == "hessian":
        n = theta.shape[0]
        value = formula.expression.evaluate(env)
        plans = [(column_evaluator(probe), np.broadcast_to(theta.reshape(1, n), (n, n)), value, None)]
    else:
        rng = np.random.default_rng([settings.seed, zlib.crc32(formula.name.encode()), 4])
        scale = float(np.max(np.abs(theta))) if theta.size else 0.0
        plans = []
        for _ in range(DIRECTIONS):
            v = rng.standard_normal(theta.shape)
            v /= np.max(np.abs(v))
            plans.append((direction_evaluator(probe, v), np.full(theta.shape, scale),
                          formula.expression.evaluate({**env, DIRECTION: v}), v))
    results = [(*_judged(formula, evaluate, like, value, method, rtol, settings), v)
               for evaluate, like, value, v in plans]
    comparison, est, value, v = max(results, key=_badness)
    return _result(probe, formula, comparison, est, value, v, rtol, settings,
                   len(plans) if formula.section == "hvp" else theta.shape[0])


def _judged(formula: SecondFormula, evaluate, like: np.ndarray, value: np.ndarray, method: str, rtol: float,
            settings: Settings):
    """(comparison, estimate, formula value) of one plan: every column of a Hessian, or one direction."""
    problem = _problem(formula, value, like.shape)
    if problem is not None:
        return problem, None, value
    est = _estimate(formula, evaluate, like, value, method, rtol, settings)
    c = judge(value, est, rtol, settings.atol)
    if c.kinks:  # backprop's gradient jumps there: no second derivative to compare with
        kinks = tuple(replace(k, status="kink") for k in c.kinks)
        c = replace(c, kinks=kinks, message=None, passed=c.max_rel_error is None or c.max_rel_error <= rtol)
    return c, est, value


def _badness(found) -> tuple:
    c = found[0]
    return (not c.passed, c.max_rel_error or 0.0)


def _problem(formula: SecondFormula, value: np.ndarray, shape) -> Comparison | None:
    """A failed comparison for a formula that cannot be compared (a shape the loader did not foresee, NaN)."""
    if value.shape != tuple(shape):
        return Comparison(None, None, None, None, None, False, f"{formula.section} for {formula.name} has shape "
                          f"{value.shape}, not {tuple(shape)}")
    if not np.all(np.isfinite(value)):
        return Comparison(None, None, None, None, None, False,
                          f"{formula.section} for {formula.name} is not finite (NaN or Inf)")
    return None


def _estimate(formula: SecondFormula, evaluate, like, value, method: str, rtol: float, settings: Settings):
    """The numeric second derivatives with their errors, refined and searched as first order's (check._estimate)."""
    batch = 2 * like.size + 2  # one call per rung: the evaluator shares gradients between entries itself
    eps, atol = settings.eps, settings.atol
    est = numeric.estimate(evaluate, like, None, method, eps, batch)
    a = value.reshape(-1)
    doubtful = est.crossed | ~np.isfinite(est.values) | (np.abs(a - est.values) > est.error)
    est = numeric.refine(evaluate, like, est, doubtful & ~est.measured, method, eps, batch)
    for _ in range(SEARCH_ROUNDS if eps is None else 0):  # the user's eps wins: no search
        diff = np.abs(a - est.values)
        by_error = (diff > np.maximum(rtol * np.maximum(np.abs(a), np.abs(est.values)), atol)) & (diff <= est.error)
        undecided = (~(np.isfinite(est.values) & np.isfinite(est.error)) | by_error) & est.measured
        undecided &= ~kink_mask(est, rtol, atol)
        if not undecided.any():
            break
        est = numeric.search(evaluate, like, est, undecided, batch)
    if not np.all(np.isfinite(est.values)):
        raise formula.place.error(f"{formula.section} {formula.name}: the backprop gradient of {formula.name} is not "
                                  f"finite at a moved point θ ± step: the step leaves the domain of an activation "
                                  f"(log or sqrt near 0?) or overflows")
    return est


def _result(probe: GradientProbe, formula: SecondFormula, c: Comparison, est, value, v, rtol: float,
            settings: Settings, probes: int) -> SecondResult:
    note = diagnosis = None
    if settings.method not in DEFAULT_RTOL:
        note = (f"second order by central differences of the gradient (the complex step would need a complex "
                f"backward pass), rtol {rtol:.1e}")
    if c.kinks:
        k: Kink = c.kinks[0]
        along = "e_j" if formula.section == "hessian" else "V"
        note = (f"{note}; " if note else "") + (
                f"backprop's gradient of {formula.name} is not differentiable at this point: at {len(c.kinks)} "
                f"entr{'y' if len(c.kinks) == 1 else 'ies'} its one-sided derivatives differ (a kink lies between "
                f"θ − t·{along} and θ + t·{along}), e.g. {list(k.index)}: {k.left:.6g} and {k.right:.6g}; "
                f"not judged there")
    if not c.passed and est is not None and not c.kinks:
        numeric_values = est.values.reshape(value.shape)
        allowed = tolerance(value, numeric_values, est.error.reshape(value.shape), rtol, settings.atol)
        found = diagnose(value, numeric_values, allowed, (), _columns(probe))
        diagnosis = _reworded(found, formula.section) if found else None
    arrays = None if est is None else {"formula": value, "numeric": est.values.reshape(value.shape),
                                       "error": est.error.reshape(value.shape), "direction": v, "rtol": rtol}
    return SecondResult(formula.name, formula.section, tuple(value.shape), "pass" if c.passed else "fail", c, probes,
                        note=note, diagnosis=diagnosis, place=formula.place, arrays=arrays)


def _reworded(sentence: str, section: str) -> str:
    """diagnosis.py speaks of `expect` and the gradient; here they are the formula and the second derivative."""
    return sentence.replace("expect", f"the {section} formula", 1).replace("the gradient", TRUTH[section])


def _columns(probe: GradientProbe) -> int | None:
    """m, the columns (examples) of the first term that reads the param: for a missing 1/m."""
    for term in probe.model.terms:
        if term_uses(term, probe.name):
            last = term.layers[-1].out_shape if term.layers else np.shape(term.input.value(probe.values))
            return int(last[-1])
    return None


def _environment(model: Model, values: dict) -> dict:
    """The values and every `define`, evaluated in order (formulas read both)."""
    env = dict(values)
    for name, expression in model.defines:
        env[name] = expression.evaluate(env)
    return env
