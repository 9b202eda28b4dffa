"""Check one loaded spec: backprop and the user's `expect` formulas against finite differences.

One forward pass at the spec's values serves J, backprop and every param's perturbations. Each param
is then estimated entry by entry (full or sample mode) or along random directions (fast mode: joint ones across
every param first, gradcheck.fast, then each param's own where those cannot settle it), and judged by
gradcheck.verdict; problems that leave no verdict are located errors (gradcheck.refusals).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import replace

import numpy as np

from . import budget, fast, heap, network, numeric, roundoff, second, symmetric
from .errors import SpecError
from .model import CheckOptions, Model
from .options import FAST_DIRECTIONS, FULL, RunOptions
from .perturb import Perturber
from .rowpatch import term_uses
from .refusals import (non_finite_error, outside_domain_error, refuse_non_analytic, refuse_unreliable_stencil,
                       require_finite_estimate, require_usable_steps)
from .lint import zero_gradients
from .results import Entries, ParamResult, Settings, SpecResult, error_result
from .spec import Spec
from .diagnosis import Use, diagnose
from .verdict import Comparison, compare, judge, kink_mask, tolerance

# Default relative tolerance by method, ~100× above what the method achieves on correct smooth specs
# (central ~1e-9, Richardson ~1e-11, complex step ~1e-15 relative). There is no default absolute floor:
# where a finite difference cannot resolve an entry, the floor is its own estimated error.
DEFAULT_RTOL = {"central": 1e-6, "richardson": 1e-8, "complex-step": 1e-11}
SEARCH_ROUNDS = 3  # ladders moved per undecided entry, at most (8× each: 512× the step either way)
NARROW = 4.0  # a fail within this many tolerances, its error truncation's, takes a ladder further down first


def settings_for(spec: Spec, objective: float, options: RunOptions) -> Settings:
    """The run's options beat the spec's `check:` section, which beats [tool.gradcheck]'s tolerances, then defaults.

    With settings_from "cli" the spec's `check:` is ignored: a run can pin its settings so that a
    handed-in spec cannot loosen them.
    """
    opts = spec.model.check if options.settings_from == "spec" else CheckOptions()
    project = dict(options.project)  # [tool.gradcheck]: a spec's own tolerance beats it (gradcheck.config)
    method = options.method or opts.method or "central"
    rtol = _first(options.rtol, opts.rtol, project.get("rtol"), DEFAULT_RTOL[method])
    atol = _first(options.atol, opts.atol, project.get("atol"), 0.0)
    return Settings(method=method, mode=options.mode or opts.mode or FULL,
                    eps=_first(options.eps, opts.eps, project.get("eps")),
                    rtol=float(rtol), atol=float(atol), seed=_first(options.seed, spec.model.seed),
                    memory=int(options.batch_memory))


def _first(*values):
    """The first value that is not None."""
    return next((v for v in values if v is not None), None)


def check(spec: Spec, options: RunOptions | None = None, **keywords) -> SpecResult:
    """Check every param of `spec`: backprop and expect formulas against finite differences.

    Give the options as one RunOptions, or as keywords (rtol, atol, eps, seed, method, mode, memory).
    """
    if options is not None and keywords:
        raise TypeError("give either a RunOptions or keyword options, not both")
    options = options if options is not None else RunOptions.of(**keywords)
    started = time.perf_counter()
    heap.keep_freed_memory()  # batches reuse their temporaries' memory instead of page-faulting it in again
    if options.seed is not None and options.seed != spec.model.seed:
        spec = spec.reseeded(options.seed)
    try:
        with np.errstate(all="ignore"):
            result = _check(spec, options)
    except SpecError as exc:
        result = error_result(spec.path, exc, spec.name)
    return result.timed(started)


def _check(spec: Spec, options: RunOptions) -> SpecResult:
    model, values = spec.model, dict(spec.values)
    try:
        traces = network.forward(model, values, check_finite=True)  # the one base pass
        objective = float(network.value_of(traces))
        settings = settings_for(spec, objective, options)
        if settings.method == "complex-step":
            refuse_non_analytic(model)
        grads = network.backward(model, traces, values, check_finite=True)
    except network.NonFinite as exc:
        raise non_finite_error(model, exc, values) from None
    except network.OutsideDomain as exc:
        raise outside_domain_error(exc) from None
    expected = _expectations(model, values)
    bounds = roundoff.Bounds(model, traces, values, grads, settings.seed)  # part of a floor, measured where needed
    if settings.mode.kind == "fast":
        params = _fast_params(model, values, traces, grads, bounds, expected, settings, options.limits.steps)
    else:  # one param's perturber at a time
        params = tuple(_check_param(*_sides(model, values, name, traces, grads[name], expected), settings,
                                    options.limits.steps, _bound(model, name, bounds))
                       for name in model.param_names)
    formulas = second.check_formulas(model, values, traces, grads, settings)  # hessian: and hvp:
    status = "pass" if all(p.status == "pass" for p in params + formulas) else "fail"
    return SpecResult(spec.path, spec.name, status, None, objective, params, settings, second=formulas,
                      problems=zero_gradients(model, grads))


def _sides(model: Model, values, name: str, traces, grad, expected: dict):
    """(perturber, backprop, expectations) of a param; a symmetric one moves (i, j) and (j, i) together and has its
    analytic sides mapped to the symmetric space, G + Gᵀ − diag(G) (gradcheck.symmetric)."""
    perturber = Perturber(model, values, name, traces)
    grad, expected = _analytic(model, name, grad, expected)
    return (symmetric.Moves(perturber) if name in model.symmetric_params else perturber), grad, expected


def _bound(model: Model, name: str, bounds: roundoff.Bounds):
    """A function making backprop's round-off for a param as compared (b + bᵀ − diag(b) for a symmetric one, its
    space), called only where a comparison fails without it."""
    if name in model.symmetric_params:
        return lambda: symmetric.to_space(bounds()[name])
    return lambda: bounds()[name]


def _analytic(model: Model, name: str, grad, expected: dict):
    """(backprop, expectations) of a param as compared: mapped to the symmetric space for a symmetric param."""
    if name not in model.symmetric_params:
        return grad, expected
    mapped = dict(expected)
    if name in mapped and np.shape(mapped[name]) == grad.shape:
        mapped[name] = symmetric.to_space(mapped[name])
    return symmetric.to_space(grad), mapped


def _fast_params(model: Model, values, traces, grads: dict, bounds: roundoff.Bounds, expected: dict, settings: Settings,
                 max_steps: int) -> tuple:
    """Fast mode: joint random directions across every param first (gradcheck.fast); a param they do not vouch
    for gets the per-param check, whose directions are its components of the joint ones (the same seeded draws)."""
    found = [_fast_side(model, values[name], name, *_analytic(model, name, grads[name], expected), settings,
                        _bound(model, name, bounds)) for name in model.param_names]
    vouched = fast.joint(model, values, traces, found, settings)
    out = []
    for name in model.param_names:
        if name not in vouched:  # its perturber only now: the joint directions need none
            out.append(_check_param(*_sides(model, values, name, traces, grads[name], expected), settings, max_steps,
                                    _bound(model, name, bounds)))
            continue
        backprop, expect = vouched[name]
        note = fast.note(len(found))
        if name in model.symmetric_params:
            note = f"{symmetric.CONVENTION}; {note}"
        out.append(ParamResult(name, tuple(values[name].shape), "pass", backprop, expect, note=note,
                               kernel=model.is_kernel(name), **_places(model, name)))
    return tuple(out)


def _fast_side(model: Model, theta, name: str, grad, expected: dict, settings: Settings, bound) -> fast.Side:
    """A param's analytic sides for the joint directions (an expect that cannot be compared: None)."""
    comparable = name in expected and _expect_problem(name, expected[name], theta.shape) is None
    return fast.Side(name, theta, name in model.symmetric_params, grad, expected[name] if comparable else None,
                     settings.seed, broken_expect=name in expected and not comparable, bound=bound)


def _check_param(perturber: Perturber, grad, expected: dict, settings: Settings, max_steps: int,
                 bound) -> ParamResult:
    """One param's verdict; `bound` is backprop's round-off per entry (gradcheck.roundoff), part of the floor."""
    result = _param(perturber, grad, expected, settings, max_steps, bound)
    if isinstance(perturber, symmetric.Moves):
        result = replace(result, note=symmetric.CONVENTION + (f"; {result.note}" if result.note else ""))
    return result


def _param(perturber: Perturber, grad, expected: dict, settings: Settings, max_steps: int, bound) -> ParamResult:
    if settings.mode.kind != "fast":
        return _entrywise_param(perturber, grad, expected, settings, _sample_entries(perturber, settings), bound)
    result = _fast_param(perturber, grad, expected, settings, bound)
    if result.status == "pass":
        return result
    needed = budget.evaluations(FULL, settings.method, grad.size)
    if needed > max_steps:  # the limit counted fast mode's directions: localizing must stay within it too
        return replace(result, note=f"fast mode found a mismatch along a random direction ({_fast_summary(result)}); "
                                    f"not localized: a full check of {perturber.name} needs {needed:,} evaluations "
                                    f"of J, above the limit of {max_steps:,}")
    localized = _entrywise_param(perturber, grad, expected, settings, None, bound)
    return replace(localized, note=f"fast mode found a mismatch along a random direction "
                                   f"({_fast_summary(result)}); full check of {perturber.name} shown")


def _entrywise_param(perturber: Perturber, grad, expected: dict, settings: Settings, entries,
                     bound) -> ParamResult:
    model, values, name = perturber.model, perturber.values, perturber.name
    require_usable_steps(model, name, values[name], settings)
    comparable = _comparable(name, expected, grad.shape)
    est = _estimate(perturber, [grad] if comparable is None else [grad, comparable], settings, entries)
    backprop = _named(model, name, judge(grad, est, settings.rtol, settings.atol, bound))
    # a stencil across a domain edge is no verdict on the gradient, also where backprop's round-off alone passes it
    strict = backprop if not backprop.passed or backprop.analytic_error is None else \
        judge(grad, est, settings.rtol, settings.atol)
    if not strict.passed:
        refuse_unreliable_stencil(model, values, name, strict.worst_index, settings)
    expect = None
    if name in expected:
        expect = _expect_problem(name, expected[name], values[name].shape) or \
            _named(model, name, judge(expected[name], est, settings.rtol, settings.atol, bound))
    ok = backprop.passed and (expect is None or expect.passed)
    diagnosis = None
    if entries is None and comparable is not None and backprop.passed and not expect.passed:
        diagnosis = _diagnosis(perturber, grad, comparable, est, settings, bound())
    per_entry = None
    if entries is None:  # a full check: keep the arrays for verbose reports and assertion messages
        kinks = frozenset(k.index for k in backprop.kinks if k.status == "kink")
        used = any(getattr(c, "analytic_error", None) is not None for c in (backprop, expect))
        per_entry = Entries(grad, est.values.reshape(grad.shape), comparable, settings.rtol, settings.atol, kinks,
                            est.error.reshape(grad.shape), bound() if used else 0.0)
    return ParamResult(name, tuple(values[name].shape), "pass" if ok else "fail", backprop, expect,
                       kernel=model.is_kernel(name), entries=per_entry, diagnosis=diagnosis, **_places(model, name))


def _diagnosis(perturber: Perturber, grad, expect, est: numeric.Estimate, settings: Settings,
               bound) -> str | None:
    """What the failing expect's mistake looks like, judged with the verdict's own per-entry allowance.

    Only when backprop passed: then backprop is the true gradient, and a pattern between it and the
    formula says something about the formula (never about a wrong custom df).
    """
    model, values, name = perturber.model, perturber.values, perturber.name
    numeric_values, error = est.values.reshape(grad.shape), est.error.reshape(grad.shape)
    allowed = tolerance(expect, numeric_values, error + bound, settings.rtol, settings.atol)
    found = network.uses_of(model, perturber.traces, values, name)
    merged: dict = {}
    for label, role, contribution, signal in found:  # a recurrent layer adds once per step: one use
        key = (label, role)
        previous = merged.get(key)
        usable = signal if role == "bias" and np.ndim(signal) == 2 and signal.shape[0] == grad.shape[0] else None
        merged[key] = (contribution if previous is None else previous[0] + contribution,
                       usable if previous is None else None)
    uses = [Use(label, role, contribution, signal) for (label, role), (contribution, signal) in merged.items()]
    mirrored = isinstance(perturber, symmetric.Moves)  # the uses add up to G, not to the symmetric-space truth
    return diagnose(expect, grad, allowed, [] if mirrored else uses, _columns(perturber), mirrored)


def _columns(perturber: Perturber) -> int | None:
    """m, the columns (examples) of the first term that reads the param."""
    for trace in perturber.traces:
        if term_uses(trace.term, perturber.name):
            last = trace.layers[trace.term.output].a if trace.layers else trace.term.input.value(perturber.values)
            return int(np.shape(last)[-1])
    return None


def _estimate(perturber: Perturber, sides: list, settings: Settings, entries) -> numeric.Estimate:
    """The numeric gradient with its errors: one pass at the method's step; a ladder of steps where an entry
    differs from an analytic side by more than its round-off, crossed a kink or left a domain; a step search
    where the error is what decides, or where an entry fails narrowly on a truncation-measured error."""
    model, values, name = perturber.model, perturber.values, perturber.name
    theta = values[name]
    batch = max(2, settings.memory // perturber.per_sample_bytes(settings.method != "complex-step"))
    method, eps, rtol, atol = settings.method, settings.eps, settings.rtol, settings.atol
    est = numeric.estimate(perturber, theta, entries, method, eps, batch)
    unusable = ~np.isfinite(est.values)  # a stencil that left a domain: smaller steps may stay inside it
    # in doubt: an entry that differs from an analytic side by more than its round-off alone explains
    # (it fails, or passes only by rtol): its truncation is measured, so its reported error is honest
    doubtful = est.crossed | unusable | np.any([_beyond_noise(side, est) for side in sides], axis=0)
    est = numeric.refine(perturber, theta, est, doubtful & ~est.measured, method, eps, batch)
    for _ in range(SEARCH_ROUNDS if eps is None else 0):  # the user's eps wins: no search
        unusable = ~(np.isfinite(est.values) & np.isfinite(est.error))
        undecided = unusable | np.any([_decided_by_error(side, est, rtol, atol) |
                                       _failed_narrowly(side, est, rtol, atol) for side in sides], axis=0)
        undecided &= est.measured & ~kink_mask(est, rtol, atol)
        if not undecided.any():
            break
        est = numeric.search(perturber, theta, est, undecided, batch)
    require_finite_estimate(model, name, est, values, settings)
    return est


def _beyond_noise(analytic: np.ndarray, est: numeric.Estimate) -> np.ndarray:
    """Entries whose mismatch with `analytic` exceeds the error estimated so far."""
    return np.abs(analytic.reshape(-1)[est.entries] - est.values) > est.error


def _decided_by_error(analytic: np.ndarray, est: numeric.Estimate, rtol: float, atol: float) -> np.ndarray:
    """Entries that pass only because the numeric error estimate is large: a better step may decide them."""
    a = analytic.reshape(-1)[est.entries]
    diff = np.abs(a - est.values)
    return (diff > np.maximum(rtol * np.maximum(np.abs(a), np.abs(est.values)), atol)) & (diff <= est.error)


def _failed_narrowly(analytic: np.ndarray, est: numeric.Estimate, rtol: float, atol: float) -> np.ndarray:
    """Entries that fail by less than NARROW times their tolerance where truncation makes up the error: a ladder's
    gap is an estimate, not a bound (its h⁴ and h⁶ terms can cancel), and a ladder 8× down shrinks that term 4096×,
    so a correct entry there passes and a wrong one fails by far."""
    a = analytic.reshape(-1)[est.entries]
    diff, allowed = np.abs(a - est.values), tolerance(a, est.values, est.error, rtol, atol)
    return (diff > allowed) & (diff <= NARROW * allowed) & (est.error > 2.0 * est.noise)


def _fast_param(perturber: Perturber, grad, expected: dict, settings: Settings, bound) -> ParamResult:
    """A few random-direction derivatives of one param: O(1) evaluations whatever its size."""
    name, theta = perturber.name, perturber.values[perturber.name]
    mirrored = isinstance(perturber, symmetric.Moves)
    scale = float(np.max(np.abs(theta))) if theta.size else 1.0
    sides = {"backprop": (grad, [], [])}
    exp_problem = _expect_problem(name, expected[name], theta.shape) if name in expected else None
    if name in expected and exp_problem is None:
        sides["expect"] = (expected[name], [], [])
    for v in fast.directions(name, theta.shape, mirrored, settings.seed):

        def along(ts, v=v):
            dJ, _, size = perturber.along_direction(v, np.asarray(ts))
            return dJ, size

        n, e = numeric.directional(along, scale, settings.method, settings.eps)
        weights = symmetric.weights(v) if mirrored else v  # ⟨G, v⟩ from the symmetric-space G + Gᵀ − diag(G)
        for analytic, a_list, n_list in sides.values():
            a_list.append(float(np.dot(analytic.reshape(-1), weights.reshape(-1))))
            n_list.append((n, e))
    comps = {side: replace(compare(np.array(a), np.array([n for n, _ in ne]), settings.rtol, settings.atol,
                                   np.array([e for _, e in ne]), lambda: fast.rounding(bound(), name, theta.shape,
                                                                                       mirrored, settings.seed)),
                           worst_index=None)
             for side, (_, a, ne) in sides.items()}
    expect = exp_problem or comps.get("expect")
    ok = comps["backprop"].passed and (expect is None or expect.passed)
    return ParamResult(name, tuple(theta.shape), "pass" if ok else "fail", comps["backprop"], expect,
                       note=f"fast mode: {FAST_DIRECTIONS} random directions of this param alone",
                       kernel=perturber.model.is_kernel(name), **_places(perturber.model, name))


def _fast_summary(result: ParamResult) -> str:
    side = result.backprop if not result.backprop.passed else result.expect
    which = "backprop" if side is result.backprop else "expect"
    if side.analytic is None:  # no number to compare: the expect could not be evaluated against the param
        return f"{which}: {side.message}"
    return f"{which} {side.analytic:.6g} vs numeric {side.numeric:.6g}"


def _comparable(name: str, expected: dict, shape) -> np.ndarray | None:
    """The evaluated `expect` array when it can be compared entry by entry."""
    value = expected.get(name)
    return value if value is not None and value.shape == shape else None


def _places(model: Model, name: str) -> dict:
    """Where a param is declared and where its `expect` stands, for annotations into the file."""
    decl, expect = model.decl_places.get(name, (None, None))
    return {"place": decl, "expect_place": expect}


def _sample_entries(perturber: Perturber, settings: Settings) -> np.ndarray | None:
    """K distinct entries in sample mode, the same for the same (seed, name); None (every entry) otherwise."""
    if settings.mode.kind != "sample":
        return None
    size = perturber.values[perturber.name].size
    rng = np.random.default_rng([settings.seed, zlib.crc32(perturber.name.encode()), 1])
    return np.sort(rng.choice(size, size=settings.mode.entries(size), replace=False))


def _expect_problem(name: str, value: np.ndarray, shape) -> Comparison | None:
    """A failed comparison when an expect value cannot be compared at all."""
    if value.shape != shape:
        got = "(" + ", ".join(map(str, value.shape)) + ")"
        want = "(" + ", ".join(map(str, shape)) + ")"
        return Comparison(None, None, None, None, None, False, f"expect for {name} has shape {got} but {name} has shape {want}")
    if not np.all(np.isfinite(value)):
        return Comparison(None, None, None, None, None, False, f"expect for {name} is not finite (NaN or Inf)")
    return None


def _named(model: Model, name: str, c: Comparison | None) -> Comparison | None:
    """The comparison with its worst entry's structured coordinates, when the param has them (kernels)."""
    if c is None or c.worst_index is None:
        return c
    coords = model.entry_coordinates(name, c.worst_index)
    return c if coords is None else replace(c, worst_entry=coords)


def _expectations(model: Model, values) -> dict:
    """Evaluate `define` in order, then every `expect`."""
    env = dict(values)
    for name, expression in model.defines:
        env[name] = expression.evaluate(env)
    return {name: expression.evaluate(env) for name, expression, _ in model.expects}
