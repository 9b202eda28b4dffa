"""Compare backprop and the user's `expect` formulas with finite differences; results are values.

Error metric, per entry i of a param (analytic a, numeric n):

    err_i = |a_i − n_i| / max(|a_i|, |n_i|, atol / rtol)

and a comparison passes when max_i err_i <= rtol. Equivalently |a − n| <= max(rtol·max(|a|,|n|), atol):
relative where the gradient is large, absolute where both sides are ~0 (where a relative error is
meaningless). atol defaults to the round-off floor of a central difference, which grows with |J|.

Entries whose stencil crossed a non-smooth point (relu/abs at 0, a max tie) and whose one-sided
slopes disagree are kinks: the central value means nothing there. Such an entry is a `kink`
(not a failure) when the analytic value lies between the one-sided slopes, and fails otherwise.
"""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from . import budget, hazards, network, numeric
from .errors import SpecError
from .kinds import KINDS
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits
from .model import Model, Place
from .perturb import Perturber, base_traces
from .spec import MODE_HELP, Spec, load, normalize_mode

# Default (rtol, atol per unit of max(1, |J|)) by method, each ~100× above what the method achieves
# on correct smooth specs (central ~1e-9, Richardson ~1e-11, complex step ~1e-15 relative).
DEFAULT_TOLERANCES = {"central": (1e-6, 1e-8), "richardson": (1e-8, 1e-10), "complex-step": (1e-11, 1e-13)}
MEMORY_BUDGET = 256 * 2**20  # bytes for one batch of perturbed evaluations
FAST_DIRECTIONS = 2
KINK_LIST_LIMIT = 20


@dataclass(frozen=True)
class Settings:
    """What a check used, after spec values and overrides were merged."""

    method: str
    mode: str
    eps: float | None
    rtol: float
    atol: float
    seed: int
    memory: int = MEMORY_BUDGET

    @property
    def step_label(self) -> str:
        base = numeric.default_eps(self.method) if self.eps is None else self.eps
        return f"{base:.3g}·max(1,|θ|)"


@dataclass(frozen=True)
class Kink:
    """An entry whose stencil crossed a non-smooth point, with the one-sided slopes there."""

    index: tuple[int, ...]
    analytic: float
    left: float
    right: float
    status: str  # "kink" (analytic between the slopes) | "fail"


@dataclass(frozen=True)
class Comparison:
    """One side (backprop or expect) against the numeric gradient."""

    max_rel_error: float | None
    max_abs_error: float | None
    worst_index: tuple[int, ...] | None
    analytic: float | None
    numeric: float | None
    passed: bool
    message: str | None = None
    kinks: tuple[Kink, ...] = ()
    worst_entry: tuple[tuple[str, int], ...] | None = None  # e.g. (("filter", 1), ("channel", 0), ...)
    checked: int = 0  # entries (or directions, in fast mode) compared

    @property
    def kink_count(self) -> int:
        return sum(k.status == "kink" for k in self.kinks)


@dataclass(frozen=True)
class Entries:
    """The per-entry arrays behind a ParamResult, for verbose reports and assertion messages (not JSON)."""

    backprop: np.ndarray
    numeric: np.ndarray
    expect: np.ndarray | None
    rtol: float
    atol: float
    kinks: frozenset = frozenset()  # indices at a kink: reported as kinks, not as errors

    def analytic(self, side: str) -> np.ndarray | None:
        """The analytic array of a side: "backprop" or "expect"."""
        return self.backprop if side == "backprop" else self.expect

    def errors(self, side: str) -> np.ndarray:
        """Per-entry relative error of a side against the numeric gradient (the metric above); 0 at kinks."""
        errors = relative_errors(self.analytic(side), self.numeric, self.rtol, self.atol)
        for index in self.kinks:
            errors[index] = 0.0
        return errors

    def worst(self, side: str, count: int = 10) -> list[tuple[tuple[int, ...], float, float, float]]:
        """The `count` entries with the largest error: (index, analytic, numeric, relative error)."""
        errors = self.errors(side)
        order = np.argsort(-errors, axis=None, kind="stable")[:count]
        analytic = self.analytic(side)
        out = []
        for flat in order:
            index = tuple(int(i) for i in np.unravel_index(int(flat), errors.shape))
            out.append((index, float(analytic[index]), float(self.numeric[index]), float(errors[index])))
        return out


@dataclass(frozen=True)
class ParamResult:
    """The verdict on one param."""

    name: str
    shape: tuple[int, int]
    status: str  # "pass" | "fail"
    backprop: Comparison
    expect: Comparison | None
    note: str | None = None  # e.g. how fast mode localized a mismatch
    kernel: bool = False  # a conv kernel: its worst entries are also named (filter, channel, row, column)

    @property
    def kinks(self) -> int:
        return self.backprop.kink_count
    entries: Entries | None = field(default=None, compare=False, repr=False)
    place: Place | None = None  # where the param is declared
    expect_place: Place | None = None  # where its `expect` formula stands


@dataclass(frozen=True)
class SpecResult:
    """The verdict on one spec file."""

    path: str
    name: str
    status: str  # "pass" | "fail" | "error"
    message: str | None = None
    objective: float | None = None
    params: tuple[ParamResult, ...] = ()
    settings: Settings | None = None
    error: SpecError | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def kinks(self) -> int:
        return sum(p.kinks for p in self.params)


@dataclass(frozen=True)
class RunResult:
    """All specs of one run, in path order."""

    specs: tuple[SpecResult, ...]
    summary: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if all(s.passed for s in self.specs) else 1


# ----------------------------------------------------------------------------- comparing


def relative_errors(analytic: np.ndarray, numeric_values: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """The per-entry error metric of the module docstring."""
    diff = np.abs(analytic - numeric_values)
    floor = atol / rtol if rtol > 0 else np.inf
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric_values)), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(diff == 0, 0.0, diff / scale)


def compare(analytic: np.ndarray, numeric_grad: np.ndarray, rtol: float, atol: float) -> Comparison:
    """Every entry of analytic against numeric, worst entry side by side."""
    rel = relative_errors(analytic, numeric_grad, rtol, atol)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
    max_rel = float(rel[worst])
    return Comparison(max_rel, float(np.abs(analytic - numeric_grad).max()), tuple(int(i) for i in worst),
                      float(analytic[worst]), float(numeric_grad[worst]), bool(max_rel <= rtol),
                      checked=int(rel.size))


def judge(analytic: np.ndarray, est: numeric.Estimate, rtol: float, atol: float) -> Comparison:
    """Compare at the estimated entries, setting kinks apart from ordinary entries."""
    shape = analytic.shape
    a = analytic.reshape(-1)[est.entries]
    lo, hi = np.minimum(est.left, est.right), np.maximum(est.left, est.right)
    # One-sided slopes differ by ~h·f″ on smooth ground; a real kink separates them by far more.
    disagree = relative_errors(est.left, est.right, 1e-3, atol) > 1e-3
    at_kink = est.crossed & disagree
    slack = atol + rtol * np.maximum(np.abs(lo), np.abs(hi))
    inside = (a >= lo - slack) & (a <= hi + slack)
    kinks = tuple(
        Kink(tuple(int(i) for i in np.unravel_index(int(est.entries[k]), shape)), float(a[k]),
             float(est.left[k]), float(est.right[k]), "kink" if inside[k] else "fail")
        for k in np.flatnonzero(at_kink))
    ordinary = ~at_kink
    if not ordinary.any():
        ok = all(k.status == "kink" for k in kinks)
        return Comparison(0.0, 0.0, None, None, None, ok, None, kinks=kinks, checked=int(a.size))
    rel = np.where(ordinary, relative_errors(a, est.values, rtol, atol), -1.0)
    worst = int(np.argmax(rel))
    max_rel = float(rel[worst])
    passed = max_rel <= rtol and all(k.status == "kink" for k in kinks)
    abs_err = float(np.abs(a - est.values)[ordinary].max())
    index = tuple(int(i) for i in np.unravel_index(int(est.entries[worst]), shape))
    message = None
    failed_kinks = [k for k in kinks if k.status == "fail"]
    if failed_kinks:
        k = failed_kinks[0]
        message = (f"at the kink {list(k.index)} the analytic value {k.analytic:.10g} lies outside the one-sided "
                   f"slopes [{min(k.left, k.right):.10g}, {max(k.left, k.right):.10g}]")
    return Comparison(max_rel, abs_err, index, float(a[worst]), float(est.values[worst]), bool(passed),
                      message, kinks=kinks, checked=int(a.size))


# ----------------------------------------------------------------------------- settings and entry points


def settings_for(spec: Spec, objective: float, rtol=None, atol=None, eps=None, seed=None, method=None,
                 mode=None, memory=None) -> Settings:
    """Overrides beat the spec's `check:` section, which beats the defaults."""
    opts = spec.model.check
    method = method or opts.method or "central"
    default_rtol, atol_per_j = DEFAULT_TOLERANCES[method]
    rtol = rtol if rtol is not None else opts.rtol if opts.rtol is not None else default_rtol
    if atol is None:
        atol = opts.atol if opts.atol is not None else atol_per_j * max(1.0, abs(objective))
    return Settings(
        method=method,
        mode=_mode_argument(mode) if mode else opts.mode or "full",
        eps=eps if eps is not None else opts.eps,
        rtol=float(rtol), atol=float(atol),
        seed=spec.model.seed if seed is None else seed,
        memory=int(memory or MEMORY_BUDGET),
    )


def _mode_argument(text: str) -> str:
    """A mode given by a caller (not a spec): a bad one is a ValueError, not a SpecError."""
    mode = normalize_mode(text)
    if mode is None:
        raise ValueError(f'no such mode: "{text}"; {MODE_HELP}')
    return mode


def check(spec: Spec, rtol: float | None = None, atol: float | None = None, eps: float | None = None,
          seed: int | None = None, method: str | None = None, mode: str | None = None,
          memory: int | None = None) -> SpecResult:
    """Check every param of `spec`: backprop and expect formulas against finite differences."""
    started = time.perf_counter()
    if seed is not None and seed != spec.model.seed:
        spec = spec.reseeded(seed)
    try:
        with np.errstate(all="ignore"):
            result = _check(spec, dict(rtol=rtol, atol=atol, eps=eps, method=method, mode=mode, memory=memory))
    except SpecError as exc:
        result = error_result(spec.path, exc, spec.name)
    return _timed(result, started)


def check_path(path: str, limits: Limits | None = None, **overrides) -> SpecResult:
    """Load and check one file; a bad file becomes an error result, never an exception."""
    started = time.perf_counter()
    try:
        spec = load(path, limits)
    except SpecError as exc:
        return _timed(error_result(path, exc), started)
    wanted = overrides.pop("memory", None)  # --memory: the batch budget asked for, kept under --max-memory
    memory = budget.batch_memory(spec.model, limits or DEFAULT_LIMITS, wanted)
    return check(spec, memory=max(1, memory), **overrides)


def error_result(path: str, exc: SpecError, name: str | None = None) -> SpecResult:
    """The result row of a spec that could not be checked."""
    return SpecResult(path=path, name=name or _stem(path), status="error", message=str(exc), error=exc)


def summarize(results) -> RunResult:
    """Count pass/fail/error over results kept in the order given."""
    results = tuple(results)
    summary = {"total": len(results)}
    for status in ("pass", "fail", "error"):
        summary[status] = sum(r.status == status for r in results)
    return RunResult(results, summary)


# ----------------------------------------------------------------------------- internals


def _check(spec: Spec, overrides: dict) -> SpecResult:
    model, values = spec.model, dict(spec.values)
    objective = _finite_objective(model, values)
    settings = settings_for(spec, objective, **overrides)
    if settings.method == "complex-step":
        _refuse_non_analytic(model)
    grads = _finite_gradient(model, values)
    expected = _expectations(model, values)
    traces = base_traces(model, values)  # one base pass, shared by every param's perturbations
    params = tuple(_check_param(model, values, name, grads[name], expected, settings, traces)
                   for name in model.param_names)
    status = "pass" if all(p.status == "pass" for p in params) else "fail"
    return SpecResult(spec.path, spec.name, status, None, objective, params, settings)


def _check_param(model: Model, values: dict, name: str, grad, expected, settings: Settings, traces) -> ParamResult:
    perturber = Perturber(model, values, name, traces)
    if settings.mode == "fast":
        result = _fast_param(perturber, name, grad, expected, values, settings)
        if result.status == "pass":
            return result
        localized = _entrywise_param(perturber, name, grad, expected, values, settings, None)
        return replace(localized, note=f"fast mode found a mismatch along a random direction "
                                       f"({_fast_summary(result)}); full check of {name} shown")
    entries = None
    if settings.mode.startswith("sample:"):
        entries = _sample_entries(values[name].size, int(settings.mode[7:]), settings.seed, name)
    return _entrywise_param(perturber, name, grad, expected, values, settings, entries)


def _entrywise_param(perturber, name, grad, expected, values, settings, entries) -> ParamResult:
    batch = max(2, settings.memory // perturber.per_sample_bytes())
    _require_usable_steps(perturber.model, name, values[name], settings)
    est = numeric.estimate(perturber, values[name], entries, settings.method, settings.eps, batch)
    _require_finite_estimate(perturber.model, name, values[name].shape, est, values, settings)
    model = perturber.model
    backprop = _named(model, name, judge(grad, est, settings.rtol, settings.atol))
    if not backprop.passed:  # a stencil near a domain edge (or across one) is no verdict on the gradient
        _refuse_unreliable_stencil(model, values, name, backprop.worst_index, settings)
    expect = None
    if name in expected:
        expect = _expect_problem(name, expected[name], values[name].shape) or \
            _named(model, name, judge(expected[name], est, settings.rtol, settings.atol))
    ok = backprop.passed and (expect is None or expect.passed)
    per_entry = None
    if entries is None:  # a full check: keep the arrays for verbose reports and assertion messages
        kinks = frozenset(k.index for k in backprop.kinks if k.status == "kink")
        per_entry = Entries(grad, est.values.reshape(grad.shape), _comparable(name, expected, grad.shape),
                            settings.rtol, settings.atol, kinks)
    return ParamResult(name, tuple(values[name].shape), "pass" if ok else "fail", backprop, expect,
                       kernel=model.is_kernel(name), entries=per_entry, **_places(model, name))


def _fast_param(perturber, name, grad, expected, values, settings) -> ParamResult:
    """A few random-direction derivatives: O(1) evaluations whatever the size of the param."""
    rng = np.random.default_rng([settings.seed, zlib.crc32(name.encode()), 2])
    theta = values[name]
    scale = float(np.max(np.abs(theta))) if theta.size else 1.0
    sides = {"backprop": (grad, [], [])}
    exp_problem = _expect_problem(name, expected[name], theta.shape) if name in expected else None
    if name in expected and exp_problem is None:
        sides["expect"] = (expected[name], [], [])
    for _ in range(FAST_DIRECTIONS):
        v = rng.standard_normal(theta.shape)
        v /= np.max(np.abs(v))

        def along(ts, v=v):
            return perturber.along(theta[None] + np.asarray(ts)[:, None, None] * v[None])[0]

        n = numeric.directional(along, scale, settings.method, settings.eps)
        for analytic, a_list, n_list in sides.values():
            a_list.append(float(np.sum(analytic * v)))
            n_list.append(n)
    comps = {side: compare(np.array(a), np.array(n), settings.rtol, settings.atol)
             for side, (_, a, n) in sides.items()}
    comps = {side: replace(c, worst_index=None) for side, c in comps.items()}
    expect = exp_problem or comps.get("expect")
    ok = comps["backprop"].passed and (expect is None or expect.passed)
    return ParamResult(name, tuple(theta.shape), "pass" if ok else "fail", comps["backprop"], expect,
                       note=f"fast mode: {FAST_DIRECTIONS} random directions", kernel=perturber.model.is_kernel(name),
                       **_places(perturber.model, name))


def _fast_summary(result: ParamResult) -> str:
    side = result.backprop if not result.backprop.passed else result.expect
    which = "backprop" if side is result.backprop else "expect"
    return f"{which} {side.analytic:.6g} vs numeric {side.numeric:.6g}"


def _comparable(name: str, expected: dict, shape) -> np.ndarray | None:
    """The evaluated `expect` array when it can be compared entry by entry."""
    value = expected.get(name)
    return value if value is not None and value.shape == shape else None


def _places(model: Model, name: str) -> dict:
    """Where a param is declared and where its `expect` stands, for annotations into the file."""
    decl = next((d.place for d in model.decls if d.name == name), None)
    expect = next((place for n, _, place in model.expects if n == name), None)
    return {"place": decl, "expect_place": expect}


def _sample_entries(size: int, k: int, seed: int, name: str) -> np.ndarray:
    """K distinct entries, the same for the same (seed, name)."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 1])
    return np.sort(rng.choice(size, size=min(k, size), replace=False))


def _expect_problem(name: str, value: np.ndarray, shape) -> Comparison | None:
    """A failed comparison when an expect value cannot be compared at all."""
    if value.shape != shape:
        got = "(" + ", ".join(map(str, value.shape)) + ")"
        want = "(" + ", ".join(map(str, shape)) + ")"
        return Comparison(None, None, None, None, None, False, f"expect for {name} has shape {got} but {name} has shape {want}")
    if not np.all(np.isfinite(value)):
        return Comparison(None, None, None, None, None, False, f"expect for {name} is not finite (NaN or Inf)")
    return None


def _refuse_non_analytic(model: Model) -> None:
    """The complex step needs every operation to be holomorphic; name the first that is not."""
    for term in model.terms:
        for layer in term.layers:
            row = layer.activation.row
            if not KINDS[layer.kind].analytic:
                raise layer.place.error(f"complex-step needs every operation to be analytic; {layer.label} is a "
                                        f"{layer.kind} layer, which is not: use --method central or richardson")
            if not row.analytic:
                what = f"custom f = {layer.activation.f_text}" if row.name == "custom" else row.name
                place = layer.activation.place or layer.place
                raise place.error(f"complex-step needs every operation to be analytic; {what} in {layer.label} "
                                  f"is not: use --method central or richardson")


def _named(model: Model, name: str, c: Comparison | None) -> Comparison | None:
    """The comparison with its worst entry's structured coordinates, when the param has them (kernels)."""
    if c is None or c.worst_index is None:
        return c
    coords = model.entry_coordinates(name, c.worst_index)
    return c if coords is None else replace(c, worst_entry=coords)


def _finite_objective(model: Model, values) -> float:
    """J, or a SpecError at the layer where a NaN/Inf first appeared."""
    try:
        return float(network.objective(model, values, check_finite=True))
    except network.NonFinite as exc:
        raise _non_finite_error(model, exc, values) from None


def _finite_gradient(model: Model, values) -> dict:
    try:
        return network.gradient(model, values, check_finite=True)
    except network.NonFinite as exc:
        raise _non_finite_error(model, exc, values) from None


def _non_finite_error(model: Model, exc: network.NonFinite, values=None) -> SpecError:
    """Where the first NaN/Inf appeared and, re-run with numpy errors raised, which operation made it."""
    where = exc.where
    found = hazards.operation(model, values, where) if values is not None else None
    backward = where is None and found is not None and found.where is not None
    if backward:
        where = found.where
    place = getattr(where, "place", None) or model.places.get("params")
    label = getattr(where, "label", None)
    at = f" in {label}" if label and hasattr(where, "index") else ""
    if backward:
        at = f" in the backward pass, in {label if hasattr(where, 'index') else 'the objective ' + label}"
    cause = found.text if found else "log or sqrt of a negative, or overflow?"
    message = f"non-finite value (NaN or Inf) first appeared{at}: {exc.what} ({cause})"
    if place is None:
        return SpecError(message, model.path, 1, 1)
    return place.error(message)


def _refuse_unreliable_stencil(model: Model, values, name: str, index, settings: Settings) -> None:
    """An error naming param, entry and layer when the failing entry's stencil straddles a kink or domain edge."""
    if index is None:
        return
    found = hazards.stencil(model, values, name, tuple(index), settings.eps, settings.rtol, settings.method)
    if found:
        raise _decl_place(model, name).error(found)


def _expectations(model: Model, values) -> dict:
    """Evaluate `define` in order, then every `expect`."""
    env = dict(values)
    for name, expression in model.defines:
        env[name] = expression.evaluate(env)
    return {name: expression.evaluate(env) for name, expression, _ in model.expects}


def _require_usable_steps(model: Model, name: str, theta: np.ndarray, settings: Settings) -> None:
    """A real step so small that θ ± h rounds back to θ would divide by zero: say so, at the param."""
    if settings.method == "complex-step":  # an imaginary step never rounds into θ
        return
    h = numeric.steps(theta, settings.eps, settings.method)
    frozen = (theta + h) == theta
    if frozen.any():
        bad = tuple(int(i) for i in np.argwhere(frozen)[0])
        raise _decl_place(model, name).error(
            f"the finite-difference step for {name}{list(bad)} rounds to nothing (θ = {theta[bad]:.6g}, step "
            f"{h[bad]:.2g}): eps is too small for float64; use eps >= 1e-12 or so")


def _require_finite_estimate(model: Model, name: str, shape, est: numeric.Estimate, values=None,
                             settings: Settings | None = None) -> None:
    bad = ~np.isfinite(est.values)
    if bad.any():
        index = tuple(int(i) for i in np.unravel_index(int(est.entries[np.argmax(bad)]), shape))
        found = None
        if values is not None and settings is not None:  # which layer the stencil left the domain in
            found = hazards.stencil(model, values, name, index, settings.eps, settings.rtol, settings.method)
        raise _decl_place(model, name).error(found or (
            f"the numeric gradient of {name} at {list(index)} is not finite: moving {name} by the step "
            f"leaves the domain of an activation (log or sqrt near 0?) or overflows"))


def _decl_place(model: Model, name: str):
    decl = next(d for d in model.decls if d.name == name)
    return decl.place if decl.place is not None else budget._Top(model.path)


def _timed(result: SpecResult, started: float) -> SpecResult:
    return replace(result, seconds=time.perf_counter() - started)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]
