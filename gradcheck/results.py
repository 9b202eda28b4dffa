"""What a check produces: plain, picklable values (the reporters render them, workers send them back)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace

import numpy as np

from . import numeric
from .errors import SpecError
from .model import Place
from .options import BATCH_MEMORY, Mode
from .problems import Problem, problems_of
from .verdict import Comparison, relative_errors


@dataclass(frozen=True)
class Settings:
    """What a check used, after the run's options and the spec's `check:` section were merged."""

    method: str
    mode: Mode
    eps: float | None
    rtol: float
    atol: float
    seed: int
    memory: int = BATCH_MEMORY

    @property
    def step_label(self) -> str:
        base = numeric.default_eps(self.method) if self.eps is None else self.eps
        return f"{base:.3g}·max(1,|θ|)"


@dataclass(frozen=True)
class Entries:
    """The per-entry arrays behind a ParamResult, for verbose reports and assertion messages (not JSON)."""

    backprop: np.ndarray
    numeric: np.ndarray
    expect: np.ndarray | None
    rtol: float
    atol: float
    kinks: frozenset = frozenset()  # indices at a kink: reported as kinks, not as errors
    numeric_error: np.ndarray | float = 0.0  # the estimated error of each numeric value
    analytic_error: np.ndarray | float = 0.0  # backprop's estimated round-off per entry (gradcheck.roundoff)

    def analytic(self, side: str) -> np.ndarray | None:
        """The analytic array of a side: "backprop" or "expect"."""
        return self.backprop if side == "backprop" else self.expect

    def errors(self, side: str) -> np.ndarray:
        """Per-entry relative error of a side against the numeric gradient (gradcheck.verdict); 0 at kinks."""
        floor = np.maximum(self.numeric_error + self.analytic_error, self.atol)
        errors = relative_errors(self.analytic(side), self.numeric, self.rtol, floor)
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
    entries: Entries | None = field(default=None, compare=False, repr=False)
    place: Place | None = None  # where the param is declared
    expect_place: Place | None = None  # where its `expect` formula stands
    diagnosis: str | None = None  # what a failing expect formula's mistake looks like, when a pattern fits

    @property
    def kinks(self) -> int:
        return self.backprop.kink_count


@dataclass(frozen=True)
class SecondResult:
    """The verdict on one `hessian:` or `hvp:` formula, against finite differences of the backprop gradient."""

    name: str  # the param
    section: str  # "hessian" | "hvp"
    shape: tuple[int, int]  # of what was compared: n×n for a Hessian, the param's for H·V
    status: str  # "pass" | "fail"
    formula: Comparison  # the worst over every column (hessian) or direction (hvp)
    probes: int  # the directions gradients were differenced along: n unit columns, or the random V
    note: str | None = None  # e.g. entries where backprop's gradient is not differentiable
    diagnosis: str | None = None
    place: Place | None = None  # where the formula stands
    # the arrays of the worst column set or direction: formula, numeric, error, direction (V; None for a Hessian)
    arrays: dict | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        """How reports name the row: 'w hessian', 'W hvp'."""
        return f"{self.name} {self.section}"

    @property
    def kinks(self) -> int:
        return self.formula.kink_count


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
    second: tuple[SecondResult, ...] = ()  # the hessian: and hvp: formulas (gradcheck.second)
    problems: tuple[Problem, ...] = ()  # every error of an invalid spec; warnings and notes of a checked one

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def with_problems(self, found, strict: bool = False, failing: str = "fail") -> SpecResult:
        """This result with warnings and notes added; under --strict a warning fails a spec that passed.

        `failing` is the status it then gets: "fail" for run, "error" (invalid) for validate.
        """
        problems = self.problems + tuple(found)
        failed = strict and self.status == "pass" and any(p.severity == "warning" for p in problems)
        return replace(self, problems=problems, status=failing if failed else self.status)

    @property
    def kinks(self) -> int:
        return sum(p.kinks for p in self.params)

    def timed(self, started: float) -> SpecResult:
        """This result, timed from `started` (a time.perf_counter() reading) until now."""
        return replace(self, seconds=time.perf_counter() - started)

    def without_entries(self) -> SpecResult:
        """This result without its per-entry arrays: smaller to send between processes and to keep."""
        if all(p.entries is None for p in self.params) and all(r.arrays is None for r in self.second):
            return self
        return replace(self, params=tuple(replace(p, entries=None) for p in self.params),
                       second=tuple(replace(r, arrays=None) for r in self.second))


@dataclass(frozen=True)
class RunResult:
    """All specs of one run, in path order."""

    specs: tuple[SpecResult, ...]
    summary: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if all(s.passed for s in self.specs) else 1


def error_result(path: str, exc: SpecError, name: str | None = None) -> SpecResult:
    """The result row of a spec that could not be checked."""
    return SpecResult(path=path, name=name or _stem(path), status="error", message=str(exc), error=exc,
                      problems=problems_of(exc))


def summarize(results) -> RunResult:
    """Count pass/fail/error over results kept in the order given."""
    results = tuple(results)
    summary = {"total": len(results)}
    for status in ("pass", "fail", "error"):
        summary[status] = sum(r.status == status for r in results)
    return RunResult(results, summary)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]
