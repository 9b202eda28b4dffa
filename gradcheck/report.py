"""The human and JSON reports of a run; no maths here, only presentation.

gradcheck.formats maps each format name to its renderer; the shared text helpers are in formats/text.py.
"""

from __future__ import annotations

import json
from typing import IO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__
from .formats.text import (STATUS_STYLE, VALIDATE_STYLE, failure_lines, fits, fmt_entry, fmt_err, fmt_index, fmt_num,
                           make_console, printable, say, summary_text, tolerance_label, worse_side)
from .results import ParamResult, RunResult, SecondResult, SpecResult
from .verdict import Comparison

KINK_LIST_LIMIT = 20  # kink entries listed per param in the JSON report


# ----------------------------------------------------------------------------- json


def comparison_json(c: Comparison | None, with_message: bool = False, kernel: bool = False) -> dict | None:
    """The `backprop` / `expect` object of the JSON report (kernels add `worst_entry`)."""
    if c is None:
        return None
    out = {
        "max_rel_error": c.max_rel_error,
        "max_abs_error": c.max_abs_error,
        "worst_index": list(c.worst_index) if c.worst_index is not None else None,
        "analytic": c.analytic,
        "numeric": c.numeric,
        "numeric_error": c.numeric_error,
        "analytic_error": c.analytic_error,
    }
    if with_message:
        out["message"] = c.message
    if kernel:
        out["worst_entry"] = dict(c.worst_entry) if c.worst_entry is not None else None
    return out


def kink_json(k) -> dict:
    return {"index": list(k.index), "status": k.status, "analytic": k.analytic, "left": k.left, "right": k.right}


def param_json(p: ParamResult) -> dict:
    return {
        "name": p.name,
        "shape": list(p.shape),
        "status": p.status,
        "backprop": comparison_json(p.backprop, kernel=p.kernel),
        "expect": comparison_json(p.expect, with_message=True, kernel=p.kernel),
        "kinks": p.kinks,
        "kink_entries": [kink_json(k) for k in p.backprop.kinks[:KINK_LIST_LIMIT]],
        "checked": p.backprop.checked,
        "note": p.note,
        "diagnosis": p.diagnosis,
        "place": place_json(p.place),
        "expect_place": place_json(p.expect_place),
    }


def second_json(r: SecondResult) -> dict:
    """One `hessian`/`hvp` formula's verdict: `formula` has the keys of `expect`."""
    return {
        "name": r.name,
        "section": r.section,
        "shape": list(r.shape),
        "status": r.status,
        "formula": comparison_json(r.formula, with_message=True),
        "probes": r.probes,
        "kinks": r.kinks,
        "kink_entries": [kink_json(k) for k in r.formula.kinks[:KINK_LIST_LIMIT]],
        "note": r.note,
        "diagnosis": r.diagnosis,
        "place": place_json(r.place),  # where the formula stands, like a param's expect_place
    }


def place_json(place) -> dict | None:
    """A location as fields (not only inside a message): where a param is declared, where its formula stands."""
    return None if place is None else {"line": place.line, "col": place.col}  # in the spec's own file (path)


def spec_json(s: SpecResult) -> dict:
    st = s.settings
    extra = {"second_order": [second_json(r) for r in s.second]} if s.second else {}
    return {
        "path": s.path,
        "name": s.name,
        "status": s.status,
        "message": s.message,
        "objective": s.objective,
        "params": [param_json(p) for p in s.params],
        "settings": None if st is None else {"method": st.method, "mode": str(st.mode), "eps": st.eps,
                                             "rtol": st.rtol, "atol": st.atol, "seed": st.seed},
        **extra,
        "seconds": round(s.seconds, 6),
        "problems": [p.to_json() for p in s.problems],
    }


def run_json(run: RunResult) -> dict:
    """The whole report as plain data, keys as documented."""
    return {"version": __version__, "specs": [spec_json(s) for s in run.specs], "summary": dict(run.summary)}


def render_json(run: RunResult, out: IO[str], **_) -> None:
    """The JSON report (-q and -v do not change it: it is for programs)."""
    # dumped whole before writing: a value JSON cannot hold fails before the stream has half an object
    out.write(json.dumps(run_json(run), indent=2, allow_nan=False, default=_json_default) + "\n")


def _json_default(value):
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# ----------------------------------------------------------------------------- human


def param_cells(p: ParamResult) -> dict:
    """The texts of one param's row, shared by the full and the compact table."""
    side, c = worse_side(p)
    label, style = STATUS_STYLE[p.status]
    expect_err = "—" if p.expect is None else ("n/a" if p.expect.max_rel_error is None and not p.expect.kinks
                                                 else fmt_err(p.expect.max_rel_error))
    worst = fmt_entry(c) + (f" ({side})" if p.expect is not None and c.worst_index else "")
    if c.worst_index is None and c.kinks:  # every entry sits at a kink: the slopes judged them all
        worst = f"all {len(c.kinks)} at kinks"
    status = Text(label, style=style)
    if p.kinks:
        status.append(f" ({p.kinks} kink{'s' * (p.kinks != 1)})", style="yellow")
    return {"param": p.name, "shape": "×".join(map(str, p.shape)), "backprop err": fmt_err(p.backprop.max_rel_error),
            "expect err": expect_err, "worst": worst, "analytic": fmt_num(c.analytic), "numeric": fmt_num(c.numeric),
            "status": status}


FULL_COLUMNS = (("param", "left"), ("shape", "left"), ("backprop err", "right"), ("expect err", "right"),
                ("worst", "left"), ("analytic", "right"), ("numeric", "right"), ("status", "left"))
COMPACT_COLUMNS = (("param", "left"), ("shape", "left"), ("backprop err", "right"), ("expect err", "right"),
                   ("status", "left"))


def spec_table(s: SpecResult, columns=FULL_COLUMNS) -> Table:
    """The params of a spec, one row each; cells never wrap (the compact layout is for narrow consoles)."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=header != "worst", overflow="fold")
    for cells in all_cells(s):
        table.add_row(*(cells[header] for header, _ in columns))
    return table


def all_cells(s: SpecResult) -> list[dict]:
    """Every row's texts: the params, then the hessian / hvp formulas."""
    return [param_cells(p) for p in s.params] + [second_cells(r) for r in s.second]


def second_cells(r: SecondResult) -> dict:
    """A `hessian`/`hvp` row of the table: no backprop of its own; the formula's error in the expect column."""
    c = r.formula
    label, style = STATUS_STYLE[r.status]
    worst = fmt_entry(c) + f" ({r.section})" if c.worst_index else (c.message and "n/a") or "—"
    if c.worst_index is None and c.kinks:
        worst = f"all {len(c.kinks)} at kinks"
    status = Text(label, style=style)
    if r.kinks:
        status.append(f" ({r.kinks} kink{'s' * (r.kinks != 1)})", style="yellow")
    err = "n/a" if c.max_rel_error is None and not c.kinks else fmt_err(c.max_rel_error)
    return {"param": r.label, "shape": "×".join(map(str, r.shape)), "backprop err": "—", "expect err": err,
            "worst": worst, "analytic": fmt_num(c.analytic), "numeric": fmt_num(c.numeric), "status": status}


def print_table(console: Console, s: SpecResult) -> None:
    """The full table where it fits; else fewer columns, and each param's worst entry on a line of its own."""
    full = spec_table(s)
    if fits(console, full):
        console.print(full)
        return
    console.print(spec_table(s, COMPACT_COLUMNS))
    for cells in all_cells(s):
        say(console, Text(f"  {cells['param']} worst {cells['worst']}: analytic {cells['analytic']}  numeric "
                          f"{cells['numeric']}", style="dim"))


def note_lines(s: SpecResult) -> list[Text]:
    """Kinks and mode notes: visible, but not failures."""
    lines = []
    for p in s.params:
        if p.kinks:
            first = next(k for k in p.backprop.kinks if k.status == "kink")
            lines.append(Text(f"  note: {p.name} has {p.kinks} entr{'y' if p.kinks == 1 else 'ies'} at a kink "
                              f"(non-differentiable point), e.g. {fmt_index(first.index)}: analytic "
                              f"{fmt_num(first.analytic)} lies between the one-sided slopes {fmt_num(first.left)} "
                              f"and {fmt_num(first.right)}; not counted as failures", style="yellow"))
        if p.note and p.status == "fail":
            lines.append(Text(f"  note: {p.name}: {p.note}", style="yellow"))
    lines += [Text(f"  note: {r.label}: {r.note}", style="yellow") for r in s.second if r.note]
    return lines


PROBLEM_STYLE = {"error": "red", "warning": "yellow", "info": "dim"}


def problem_lines(s: SpecResult, verbose: bool = False) -> list[Text]:
    """Warnings of a checked spec (and its notes, with -v), each located."""
    return [Text(f"  {p.severity}: {printable(str(p))}", style=PROBLEM_STYLE[p.severity])
            for p in s.problems if p.severity == "warning" or (verbose and p.severity == "info")]


def render_spec(console: Console, s: SpecResult, quiet: bool = False, verbose: bool = False,
                command: str = "run") -> None:
    """One spec: header, settings, table, failures (quiet: only the header and the failures)."""
    label, style = (VALIDATE_STYLE if command == "validate" else STATUS_STYLE)[s.status]
    head = Text()
    head.append(printable(s.name), style="bold")
    head.append(f"  {printable(s.path)}  ", style="dim")
    head.append(label, style=style)
    if verbose:
        head.append(f"  {s.seconds:.3f} s", style="dim")
    say(console, head)
    if s.status == "error" and s.error is not None:
        for problem in s.problems or ():
            say(console, Text(f"  {printable(str(problem))}", style="red"))
        if not s.problems:
            say(console, Text(f"  {printable(s.message)}", style="red"))
        console.print()
        return
    if s.settings is None:  # validated only: there are no numbers to show
        for line in problem_lines(s, verbose):
            say(console, line)
        return
    if not quiet:
        st = s.settings
        mode = "" if st.mode.kind == "full" else f", mode {st.mode}"
        say(console, Text(f"  J = {s.objective:.12g}   method {st.method}{mode}, step {st.step_label}, "
                           f"{tolerance_label(st)}", style="dim"))
        print_table(console, s)
    for line in failure_lines(s) + note_lines(s) + problem_lines(s, verbose):
        say(console, line)
    if verbose:
        from .formats.detail import render_param_detail, render_second_detail

        console.print()
        for p in s.params:
            render_param_detail(console, p, console.width)
        for r in s.second:
            render_second_detail(console, r, console.width, s.settings.atol)
    else:
        console.print()


def render_human(run: RunResult, out: IO[str], color: bool | None = None, width: int | None = None,
                 quiet: bool = False, verbose: bool = False, command: str = "run") -> None:
    """Per spec a header and a table; a summary line last. Plain text off a terminal or with NO_COLOR.

    quiet: only the specs that failed or are invalid (header and failures), then the summary.
    verbose: also each param's worst entries, and a heatmap of the per-entry error of a failing one.
    """
    console = make_console(out, color, width)
    for s in run.specs:
        if quiet and s.status == "pass":
            continue
        render_spec(console, s, quiet=quiet, verbose=verbose, command=command)
    console.print(summary_text(run, command))
