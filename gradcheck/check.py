"""Compare backprop and the user's `expect` formulas with finite differences; results are values.

Error metric, per entry i of a param (analytic a, numeric n):

    err_i = |a_i − n_i| / max(|a_i|, |n_i|, atol / rtol)

and a comparison passes when max_i err_i <= rtol. Equivalently |a − n| <= max(rtol·max(|a|,|n|), atol):
relative where the gradient is large, absolute where both sides are ~0 (where a relative error is
meaningless). atol defaults to the round-off floor of a central difference, which grows with |J|.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

from . import network, numeric
from .errors import SpecError
from .model import Model, Place
from .spec import Spec, load

DEFAULT_RTOL = 1e-6
ATOL_PER_J = 1e-8  # atol = ATOL_PER_J · max(1, |J|) unless given
MEMORY_BUDGET = 256 * 2**20  # bytes for one batch of perturbed evaluations


@dataclass(frozen=True)
class Settings:
    """What a check used, after spec values and overrides were merged."""

    method: str
    eps: float | None
    rtol: float
    atol: float
    seed: int

    @property
    def step_label(self) -> str:
        base = numeric.DEFAULT_EPS if self.eps is None else self.eps
        return f"{base:.3g}·max(1,|θ|)"


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


@dataclass(frozen=True)
class Entries:
    """The per-entry arrays behind a ParamResult, for verbose reports and assertion messages (not JSON)."""

    backprop: np.ndarray
    numeric: np.ndarray
    expect: np.ndarray | None
    rtol: float
    atol: float

    def analytic(self, side: str) -> np.ndarray | None:
        """The analytic array of a side: "backprop" or "expect"."""
        return self.backprop if side == "backprop" else self.expect

    def errors(self, side: str) -> np.ndarray:
        """Per-entry relative error of a side against the numeric gradient (the metric above)."""
        return relative_errors(self.analytic(side), self.numeric, self.rtol, self.atol)

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


@dataclass(frozen=True)
class RunResult:
    """All specs of one run, in path order."""

    specs: tuple[SpecResult, ...]
    summary: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if all(s.passed for s in self.specs) else 1


def compare(analytic: np.ndarray, numeric_grad: np.ndarray, rtol: float, atol: float) -> Comparison:
    """The error metric above, with the worst entry side by side."""
    diff = np.abs(analytic - numeric_grad)
    floor = atol / rtol if rtol > 0 else np.inf
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric_grad)), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(diff == 0, 0.0, diff / scale)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
    max_rel = float(rel[worst])
    return Comparison(
        max_rel_error=max_rel,
        max_abs_error=float(diff.max()),
        worst_index=tuple(int(i) for i in worst),
        analytic=float(analytic[worst]),
        numeric=float(numeric_grad[worst]),
        passed=bool(max_rel <= rtol),
    )


def relative_errors(analytic: np.ndarray, numeric_grad: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Per-entry |a − n| / max(|a|, |n|, atol / rtol), 0 where a == n: the metric `compare` maximises."""
    diff = np.abs(analytic - numeric_grad)
    floor = atol / rtol if rtol > 0 else np.inf
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric_grad)), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(diff == 0, 0.0, diff / scale)


def settings_for(spec: Spec, objective: float, rtol=None, atol=None, eps=None, seed=None) -> Settings:
    """Overrides beat the spec's `check:` section, which beats the defaults."""
    opts = spec.model.check
    rtol = rtol if rtol is not None else opts.rtol if opts.rtol is not None else DEFAULT_RTOL
    if atol is None:
        atol = opts.atol if opts.atol is not None else ATOL_PER_J * max(1.0, abs(objective))
    eps = eps if eps is not None else opts.eps
    return Settings("central", eps, float(rtol), float(atol), spec.model.seed if seed is None else seed)


def check(spec: Spec, rtol: float | None = None, atol: float | None = None, eps: float | None = None,
          seed: int | None = None, memory: int = MEMORY_BUDGET) -> SpecResult:
    """Check every param of `spec`: backprop and expect formulas against central differences."""
    started = time.perf_counter()
    if seed is not None and seed != spec.model.seed:
        spec = spec.reseeded(seed)
    try:
        with np.errstate(all="ignore"):
            result = _check(spec, rtol, atol, eps, memory)
    except SpecError as exc:
        result = error_result(spec.path, exc, spec.name)
    return _timed(result, started)


def check_path(path: str, **overrides) -> SpecResult:
    """Load and check one file; a bad file becomes an error result, never an exception."""
    started = time.perf_counter()
    try:
        spec = load(path)
    except SpecError as exc:
        return _timed(error_result(path, exc), started)
    return check(spec, **overrides)


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


def _check(spec: Spec, rtol, atol, eps, memory) -> SpecResult:
    model, values = spec.model, dict(spec.values)
    objective = _finite_objective(model, values)
    settings = settings_for(spec, objective, rtol, atol, eps)
    grads = _finite_gradient(model, values)
    expected = _expectations(model, values)
    batch = max(2, memory // max(1, 8 * 4 * network.footprint(model)))
    params = []
    for name in model.param_names:
        numeric_grad = _numeric(model, values, name, settings.eps, batch)
        backprop = compare(grads[name], numeric_grad, settings.rtol, settings.atol)
        expect = _compare_expect(name, expected, values[name].shape, numeric_grad, settings)
        ok = backprop.passed and (expect is None or expect.passed)
        entries = Entries(grads[name], numeric_grad, _expect_value(name, expected, values[name].shape),
                          settings.rtol, settings.atol)
        params.append(ParamResult(name, tuple(values[name].shape), "pass" if ok else "fail", backprop, expect,
                                  entries, *_places(model, name, expected)))
    status = "pass" if all(p.status == "pass" for p in params) else "fail"
    return SpecResult(spec.path, spec.name, status, None, objective, tuple(params), settings)


def _finite_objective(model: Model, values) -> float:
    """J, or a SpecError at the layer where a NaN/Inf first appeared."""
    try:
        return float(network.objective(model, values, check_finite=True))
    except network.NonFinite as exc:
        raise _non_finite_error(model, exc) from None


def _finite_gradient(model: Model, values) -> dict:
    try:
        return network.gradient(model, values, check_finite=True)
    except network.NonFinite as exc:
        raise _non_finite_error(model, exc) from None


def _non_finite_error(model: Model, exc: network.NonFinite) -> SpecError:
    where = exc.where
    place = getattr(where, "place", None) or model.places.get("params")
    label = getattr(where, "label", None)
    at = f" in {label}" if label and hasattr(where, "index") else ""
    message = f"non-finite value (NaN or Inf) first appeared{at}: {exc.what} (log or sqrt of a negative, or overflow?)"
    if place is None:
        return SpecError(message, model.path, 1, 1)
    return place.error(message)


def _expectations(model: Model, values) -> dict:
    """Evaluate `define` in order, then every `expect`; a failure is recorded, not raised."""
    env = dict(values)
    for name, expression in model.defines:
        env[name] = expression.evaluate(env)
    return {name: (expression, place, expression.evaluate(env)) for name, expression, place in model.expects}


def _compare_expect(name, expected, shape, numeric_grad, settings: Settings) -> Comparison | None:
    if name not in expected:
        return None
    expression, _, value = expected[name]
    if value.shape != shape:
        got = "(" + ", ".join(map(str, value.shape)) + ")"
        want = "(" + ", ".join(map(str, shape)) + ")"
        return Comparison(None, None, None, None, None, False,
                          f"expect for {name} has shape {got} but {name} has shape {want}")
    if not np.all(np.isfinite(value)):
        return Comparison(None, None, None, None, None, False, f"expect for {name} is not finite (NaN or Inf)")
    return compare(value, numeric_grad, settings.rtol, settings.atol)


def _expect_value(name, expected, shape) -> np.ndarray | None:
    """The evaluated `expect` array when it can be compared entry by entry."""
    value = expected[name][2] if name in expected else None
    return value if value is not None and value.shape == shape else None


def _places(model: Model, name: str, expected) -> tuple[Place | None, Place | None]:
    """(declaration, expect formula) places of a param, for annotations that point into the file."""
    decl = next((d.place for d in model.decls if d.name == name), None)
    return decl, expected[name][1] if name in expected else None


def _numeric(model: Model, values, name: str, eps, batch: int) -> np.ndarray:
    """Central differences of J in one param, the other values held fixed."""

    def f(stack):
        # J as one value per perturbed copy, even when J does not depend on this param at all
        return np.broadcast_to(network.objective(model, {**values, name: stack}), stack.shape[:-2])

    numeric_grad, _ = numeric.central_differences(f, values[name], eps, batch)
    if not np.all(np.isfinite(numeric_grad)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(numeric_grad))[0])
        decl = next(d for d in model.decls if d.name == name)
        raise decl.place.error(
            f"the numeric gradient of {name} at {list(bad)} is not finite: moving {name} by the step "
            f"leaves the domain of an activation (log or sqrt near 0?) or overflows")
    return numeric_grad


def _timed(result: SpecResult, started: float) -> SpecResult:
    return replace(result, seconds=time.perf_counter() - started)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]
