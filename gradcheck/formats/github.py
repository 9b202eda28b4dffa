"""GitHub Actions workflow commands: one `::error` line per failing comparison or invalid spec.

Each line points into the spec file: a failing `expect` at its formula, a failing backprop at the
param's declaration, an invalid spec at the place of the problem. GitHub shows them as annotations
on the pull request's diff.
"""

from __future__ import annotations

from typing import IO

from ..results import RunResult, SpecResult
from .escape import github_data, github_property
from .findings import comparison_message
from .text import summary_text


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


def spec_annotations(s: SpecResult) -> list[str]:
    """The annotation lines of one spec (none when it passed)."""
    if s.status == "error":
        e = s.error
        if e is None:
            return [workflow_command("error", s.message or "error", s.path, title="gradcheck: invalid spec")]
        return [workflow_command("error", e.message, e.file, e.line, e.col, title="gradcheck: invalid spec")]
    lines = []
    rtol = s.settings.rtol if s.settings else None
    for p in s.params:
        for side, c in (("backprop", p.backprop), ("expect", p.expect)):
            if c is None or c.passed:
                continue
            place = p.expect_place if side == "expect" and p.expect_place else p.place
            where = (place.file, place.line, place.col) if place else (s.path, None, None)
            lines.append(workflow_command("error", comparison_message(p, side, c, rtol), *where,
                                 title=f"gradcheck: {p.name} {side}"))
    return lines


def render_github(run: RunResult, out: IO[str], quiet: bool = False, command: str = "run", **_) -> None:
    """Annotation lines for every problem, then (unless quiet) the summary as a plain log line."""
    for s in run.specs:
        for line in spec_annotations(s):
            out.write(line + "\n")
    if not quiet:
        out.write(summary_text(run, command).plain + "\n")
