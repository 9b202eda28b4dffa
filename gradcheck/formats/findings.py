"""The located findings of a run: one per failing comparison, invalid spec or problem, with file, line, column.

The CI formats that point into files (SARIF, GitLab code quality, the HTML report's list) read these, so
every one of them carries the same places: a failing `expect` at its formula, a failing backprop at
the param's declaration, an invalid spec at the place of the problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..results import ParamResult, RunResult, SecondResult, SpecResult
from ..verdict import Comparison
from .text import fmt_err, fmt_index, fmt_num, in_error_units

# rule id -> (short description, help): the rules a finding can break, as SARIF's driver lists them
RULES = {
    "backprop-mismatch": ("Backpropagation disagrees with finite differences",
                          "The gradient gradcheck derived by backpropagation differs from the numeric gradient "
                          "by more than the tolerance: a wrong custom df, or a step across a non-smooth point."),
    "expect-mismatch": ("A hand-derived expect formula disagrees with finite differences",
                        "The param's expect: formula differs from the numeric gradient by more than the tolerance "
                        "at the entry shown: the hand derivation is wrong there."),
    "formula-mismatch": ("A hand-derived hessian or hvp formula disagrees with finite differences",
                         "The hessian: or hvp: formula differs from central differences of the backprop gradient "
                         "by more than the tolerance at the entry shown: the second-order derivation is wrong there."),
    "invalid-spec": ("The spec cannot be checked",
                     "A YAML, structure, name, shape or expression problem, or a resource limit; located at the "
                     "place in the spec that caused it."),
    "spec-problem": ("A warning or note on the spec",
                     "A located warning or note on a spec that could be checked (an unused param or define, "
                     "a gradient that is zero everywhere, a param without expect)."),
}
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One thing to show at a place in a spec file."""

    rule: str  # a key of RULES
    severity: str  # "error" | "warning" | "info"
    message: str
    file: str
    line: int | None
    col: int | None
    spec: str  # the spec's name
    param: str | None = None
    side: str | None = None  # "backprop" | "expect" for a mismatch, "hessian" | "hvp" for a formula


def comparison_message(p: ParamResult, side: str, c: Comparison, rtol: float | None) -> str:
    """One sentence: which gradient of which param disagrees, where, by how much (and the slip, if named)."""
    if c.message:
        return c.message
    limit = f" > rtol {rtol:.1e}" if rtol is not None else ""
    diagnosis = f"; {p.diagnosis}" if side == "expect" and p.diagnosis else ""
    return (f"{side} gradient of {p.name} disagrees with finite differences at {fmt_index(c.worst_index)}: "
            f"analytic {fmt_num(c.analytic)}, numeric {fmt_num(c.numeric)} "
            f"(rel error {fmt_err(c.max_rel_error)}{limit}{in_error_units(c)}){diagnosis}")


def second_message(r: SecondResult) -> str:
    """One sentence for a failing hessian/hvp formula: where it disagrees, by how much, and the slip if named."""
    c = r.formula
    return c.message or (f"{r.section} of {r.name} disagrees with finite differences of the backprop gradient "
                         f"at {fmt_index(c.worst_index)}: formula {fmt_num(c.analytic)}, numeric "
                         f"{fmt_num(c.numeric)} (rel error {fmt_err(c.max_rel_error)}{in_error_units(c)})"
                         + (f"; {r.diagnosis}" if r.diagnosis else ""))


def spec_findings(s: SpecResult) -> list[Finding]:
    """The findings of one spec, in file order where the places are known: problems, then failing params."""
    found = []
    for pr in getattr(s, "problems", None) or ():
        severity = _severity(pr)
        rule = "invalid-spec" if severity == "error" and s.status == "error" else "spec-problem"
        found.append(Finding(rule, severity, str(_get(pr, "message")), _get(pr, "file") or s.path,
                             _get(pr, "line"), _get(pr, "col"), s.name))
    if s.status == "error" and not found:
        e = s.error
        where = (e.file, e.line, e.col) if e is not None else (s.path, None, None)
        found.append(Finding("invalid-spec", "error", e.message if e is not None else (s.message or "error"),
                             *where, s.name))
    rtol = s.settings.rtol if s.settings else None
    for p in s.params:
        for side, c in (("backprop", p.backprop), ("expect", p.expect)):
            if c is None or c.passed:
                continue
            place = p.expect_place if side == "expect" and p.expect_place else p.place
            where = (place.file, place.line, place.col) if place else (s.path, None, None)
            found.append(Finding(f"{side}-mismatch", "error", comparison_message(p, side, c, rtol), *where,
                                 s.name, p.name, side))
    for r in getattr(s, "second", ()):  # a failing hessian/hvp formula, where it stands
        if not r.formula.passed:
            where = (r.place.file, r.place.line, r.place.col) if r.place else (s.path, None, None)
            found.append(Finding("formula-mismatch", "error", second_message(r), *where, s.name, r.name, r.section))
    return found


def findings(run: RunResult) -> list[Finding]:
    """Every finding of the run, spec by spec in the run's order."""
    return [f for s in run.specs for f in spec_findings(s)]


def _get(problem, key: str):
    """A field of a problem, whether it is a mapping or an object with attributes."""
    return problem.get(key) if isinstance(problem, dict) else getattr(problem, key, None)


def _severity(problem) -> str:
    severity = str(_get(problem, "severity") or "error").lower()
    return severity if severity in SEVERITIES else "error"
