"""JUnit XML: one <testcase> per spec, <failure> for failing params, <error> for invalid specs.

The layout (testsuites > testsuite > testcase with classname, name, file, time) is the one pytest
writes, which GitLab, Jenkins, Azure Pipelines and the common GitHub test-report actions read.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from typing import IO

from ..results import RunResult, SpecResult
from .escape import xml
from .text import failure_lines, fmt_err, fmt_index, fmt_num, tolerance_label, worse_side

xml_text = xml  # the name this module had; formats.escape holds the one definition


def classname(path: str) -> str:
    """A dotted class name from a spec's path, as pytest derives one from a test file."""
    stem = os.path.splitext(os.path.normpath(path))[0]
    parts = [p for p in re.split(r"[\\/]+", stem) if p not in ("", ".", "..")]
    return ".".join(parts) or "spec"


def failure_message(s: SpecResult) -> str:
    """One line: which params failed, with the worst entry of each."""
    parts = []
    for p in s.params:
        if p.status != "fail":
            continue
        side, c = worse_side(p)
        if c.message:
            parts.append(f"{p.name} ({side}): {c.message}")
        else:
            parts.append(f"{p.name} ({side}) at {fmt_index(c.worst_index)}: analytic {fmt_num(c.analytic)} "
                         f"vs numeric {fmt_num(c.numeric)}, rel error {fmt_err(c.max_rel_error)}")
        if p.diagnosis:
            parts[-1] += f" ({p.diagnosis})"
    for r in s.second:  # a hessian/hvp formula fails on its own, with no param failing
        if r.status != "fail":
            continue
        c = r.formula
        parts.append(f"{r.label}: {c.message}" if c.message else
                     f"{r.label} at {fmt_index(c.worst_index)}: formula {fmt_num(c.analytic)} "
                     f"vs numeric {fmt_num(c.numeric)}, rel error {fmt_err(c.max_rel_error)}")
        if r.diagnosis:
            parts[-1] += f" ({r.diagnosis})"
    return "; ".join(parts)


def failure_text(s: SpecResult) -> str:
    """The failing comparisons, one per line, analytic and numeric side by side; then the settings."""
    lines = [line.plain.strip() for line in failure_lines(s)]
    if s.settings is not None:
        st = s.settings
        lines.append(f"J = {s.objective:.12g}; method {st.method}, step {st.step_label}, {tolerance_label(st)}")
    return "\n".join(lines)


def first_line(s: SpecResult) -> int | None:
    """The line a report should open the spec at: the first problem, else the first failing formula or param."""
    if s.problems and s.status == "error":
        return s.problems[0].line
    for p in s.params:
        if p.status == "fail":
            place = p.expect_place if p.expect is not None and not p.expect.passed and p.expect_place else p.place
            return place.line if place else None
    for r in s.second:
        if r.status == "fail":
            return r.place.line if r.place else None
    return None


def testcase(suite: ET.Element, s: SpecResult) -> None:
    line = first_line(s)
    case = ET.SubElement(suite, "testcase", classname=xml_text(classname(s.path)), name=xml_text(s.name),
                         file=xml_text(s.path), **({"line": str(line)} if line else {}), time=f"{s.seconds:.3f}")
    if s.status == "fail":
        failure = ET.SubElement(case, "failure", message=xml_text(failure_message(s)), type="GradientMismatch")
        failure.text = xml_text(failure_text(s))
    elif s.status == "error":
        error = ET.SubElement(case, "error", message=xml_text(s.message or "error"), type="SpecError")
        error.text = xml_text("\n".join(map(str, s.problems)) or s.message or "")


def render_junit(run: RunResult, out: IO[str], command: str = "run", **_) -> None:
    """The whole run as one JUnit XML document."""
    sm = run.summary
    counts = {"tests": str(sm["total"]), "failures": str(sm["fail"]), "errors": str(sm["error"]), "skipped": "0",
              "time": f"{sum(s.seconds for s in run.specs):.3f}"}
    root = ET.Element("testsuites", name="gradcheck", **counts)
    suite = ET.SubElement(root, "testsuite", name=f"gradcheck {command}", **counts)
    for s in run.specs:
        testcase(suite, s)
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")
