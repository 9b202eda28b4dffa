"""GitHub Actions workflow commands: one `::error` line per failing comparison or invalid spec.

Each line points into the spec file: a failing `expect` at its formula, a failing backprop at the
param's declaration, an invalid spec at the place of the problem. GitHub shows them as annotations
on the pull request's diff.
"""

from __future__ import annotations

from typing import IO

from ..problems import problems_of
from ..results import ParamResult, RunResult, SpecResult
from ..verdict import Comparison
from .escape import github_data, github_property
from .text import fmt_err, fmt_index, fmt_num, in_error_units, summary_text


LEVELS = {"error": "error", "warning": "warning", "info": "notice"}  # a problem's severity as a workflow command
escape_data = github_data  # the names this module had; formats.escape holds the one definition
escape_property = github_property


def workflow_command(kind: str, message: str, file: str, line: int | None = None, col: int | None = None,
            title: str | None = None) -> str:
    """`::kind file=…,line=…,col=…,title=…::message`, every part escaped."""
    props = [("file", file)]
    if line is not None:
        props.append(("line", str(line)))
    if col is not None:
        props.append(("col", str(col)))
    if title:
        props.append(("title", title))
    joined = ",".join(f"{key}={escape_property(value)}" for key, value in props)
    return f"::{kind} {joined}::{escape_data(message)}"


def comparison_message(p: ParamResult, side: str, c: Comparison, rtol: float | None) -> str:
    if c.message:
        return c.message
    limit = f" > rtol {rtol:.1e}" if rtol is not None else ""
    diagnosis = f"; {p.diagnosis}" if side == "expect" and p.diagnosis else ""
    return (f"{side} gradient of {p.name} disagrees with finite differences at {fmt_index(c.worst_index)}: "
            f"analytic {fmt_num(c.analytic)}, numeric {fmt_num(c.numeric)} "
            f"(rel error {fmt_err(c.max_rel_error)}{limit}{in_error_units(c)}){diagnosis}")


def spec_annotations(s: SpecResult) -> list[str]:
    """The annotation lines of one spec (none when it passed)."""
    if s.status == "error":
        e = s.error
        if e is None:
            return [workflow_command("error", s.message or "error", s.path, title="gradcheck: invalid spec")]
        return [workflow_command("error", p.message, p.file, p.line, p.col, title="gradcheck: invalid spec")
                for p in s.problems or problems_of(e)]
    lines = [workflow_command(LEVELS[p.severity], p.message, p.file, p.line, p.col, title=f"gradcheck: {p.severity}")
             for p in s.problems if p.severity != "error"]
    rtol = s.settings.rtol if s.settings else None
    for p in s.params:
        for side, c in (("backprop", p.backprop), ("expect", p.expect)):
            if c is None or c.passed:
                continue
            place = p.expect_place if side == "expect" and p.expect_place else p.place
            where = (place.file, place.line, place.col) if place else (s.path, None, None)
            lines.append(workflow_command("error", comparison_message(p, side, c, rtol), *where,
                                 title=f"gradcheck: {p.name} {side}"))
    for r in s.second:  # a failing hessian/hvp formula, annotated where it stands
        if r.formula.passed:
            continue
        c = r.formula
        message = c.message or (f"{r.section} of {r.name} disagrees with finite differences of the backprop gradient "
                                f"at {fmt_index(c.worst_index)}: formula {fmt_num(c.analytic)}, numeric "
                                f"{fmt_num(c.numeric)} (rel error {fmt_err(c.max_rel_error)}{in_error_units(c)})"
                                + (f"; {r.diagnosis}" if r.diagnosis else ""))
        where = (r.place.file, r.place.line, r.place.col) if r.place else (s.path, None, None)
        lines.append(workflow_command("error", message, *where, title=f"gradcheck: {r.label}"))
    return lines


def render_github(run: RunResult, out: IO[str], quiet: bool = False, command: str = "run", **_) -> None:
    """Annotation lines for every problem, then (unless quiet) the summary as a plain log line."""
    for s in run.specs:
        for line in spec_annotations(s):
            out.write(line + "\n")
    if not quiet:
        out.write(summary_text(run, command).plain + "\n")
