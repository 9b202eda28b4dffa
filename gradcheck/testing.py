"""Use gradcheck in your own test suite: `gradcheck.assert_gradients("specs/my.yaml")` in one line.

A failure raises AssertionError whose message shows, for every failing param, the worst entries with
analytic and numeric values side by side (pytest prints it as the reason of the failure).
"""

from __future__ import annotations

import os

from .check import check
from .formats.text import fmt_err, fmt_index, fmt_num, tolerance_label
from .guard import check_path
from .options import RunOptions
from .results import ParamResult, SpecResult
from .spec import Spec

SHOWN_ENTRIES = 5


def assert_gradients(spec_or_path: Spec | str | os.PathLike, **overrides) -> SpecResult:
    """Check a spec (object or file) and raise AssertionError unless every gradient matches.

    Keyword arguments override the spec's settings: rtol, atol, eps, seed (also method, mode, memory).
    Returns the result when everything passed, so a test can look further.
    """
    __tracebackhide__ = True  # pytest shows the test's line and this message, not gradcheck's own frames
    options = RunOptions.of(**overrides)
    if isinstance(spec_or_path, Spec):
        result = check(spec_or_path, options)
    else:
        result = check_path(os.fspath(spec_or_path), options)
    if result.status == "error":
        raise AssertionError(f"spec {result.name!r} could not be checked:\n  {result.message}")
    if result.status != "pass":
        raise AssertionError(failure_message(result))
    return result


def failure_message(result: SpecResult) -> str:
    """Readable: which params failed, and their worst entries side by side."""
    st = result.settings
    failing = [p for p in result.params if p.status == "fail"]
    second = [r for r in result.second if r.status == "fail"]  # hessian/hvp formulas
    lines = [f"gradients of {result.name!r} ({result.path}) do not match finite differences: "
             f"{', '.join([p.name for p in failing] + [r.label for r in second])} failed ({tolerance_label(st)})"]
    for p in failing:
        lines += _param_lines(p)
        if p.diagnosis:
            lines.append(f"  {p.name}: {p.diagnosis}")
    for r in second:
        c = r.formula
        lines.append(f"  {r.label}: {c.message}" if c.message else
                     f"  {r.label} vs numeric: max rel error {fmt_err(c.max_rel_error)} at {fmt_index(c.worst_index)}: "
                     f"formula {fmt_num(c.analytic)}, numeric {fmt_num(c.numeric)}")
        if r.diagnosis:
            lines.append(f"  {r.label}: {r.diagnosis}")
    return "\n".join(lines)


def _param_lines(p: ParamResult) -> list[str]:
    lines = []
    for side, c in (("backprop", p.backprop), ("expect", p.expect)):
        if c is None or c.passed:
            continue
        if c.message:
            lines.append(f"  {p.name} {side}: {c.message}")
            continue
        lines.append(f"  {p.name} {side} vs numeric: max rel error {fmt_err(c.max_rel_error)} at "
                     f"{fmt_index(c.worst_index)}")
        rows = [("index", "analytic", "numeric", "rel error")]
        if p.entries is not None and p.entries.analytic(side) is not None:
            worst = p.entries.worst(side, SHOWN_ENTRIES)
        else:
            worst = [(c.worst_index, c.analytic, c.numeric, c.max_rel_error)]
        rows += [(fmt_index(i), fmt_num(a), fmt_num(n), fmt_err(e)) for i, a, n, e in worst]
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        for row in rows:
            lines.append("    " + "  ".join(cell.rjust(w) if k else cell.ljust(w)
                                             for k, (cell, w) in enumerate(zip(row, widths))))
    return lines
