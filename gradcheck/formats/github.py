"""GitHub Actions workflow commands: one `::error` line per failing comparison or invalid spec.

Each line points into the spec file: a failing `expect` at its formula, a failing backprop at the
param's declaration, an invalid spec at the place of the problem. GitHub shows them as annotations
on the pull request's diff.
"""

from __future__ import annotations

from typing import IO

from ..results import RunResult, SpecResult
from .escape import github_data, github_property
from .findings import Finding, spec_findings
from .text import summary_text


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


def spec_annotations(s: SpecResult) -> list[str]:
    """The annotation lines of one spec (none when it passed): its located findings, each at its place."""
    return [workflow_command(LEVELS[f.severity], f.message, f.file, f.line, f.col, title=_title(f))
            for f in spec_findings(s)]


def _title(f: Finding) -> str:
    """The annotation's title: what kind of finding, and for a mismatch which param and side."""
    if f.rule == "invalid-spec":
        return "gradcheck: invalid spec"
    if f.rule == "spec-problem":
        return f"gradcheck: {f.severity}"
    return f"gradcheck: {f.param} {f.side}"  # "W expect", "w hessian"


def render_github(run: RunResult, out: IO[str], quiet: bool = False, command: str = "run", **_) -> None:
    """Annotation lines for every problem, then (unless quiet) the summary as a plain log line."""
    for s in run.specs:
        for line in spec_annotations(s):
            out.write(line + "\n")
    if not quiet:
        out.write(summary_text(run, command).plain + "\n")
