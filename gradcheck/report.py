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
from .formats.text import (STATUS_STYLE, VALIDATE_STYLE, failure_lines, fmt_entry, fmt_err, fmt_index, fmt_num,
                           make_console, printable, summary_text, tolerance_label, worse_side)
from .results import ParamResult, RunResult, SpecResult
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
    }


def spec_json(s: SpecResult) -> dict:
    st = s.settings
    return {
        "path": s.path,
        "name": s.name,
        "status": s.status,
        "message": s.message,
        "objective": s.objective,
        "params": [param_json(p) for p in s.params],
        "settings": None if st is None else {"method": st.method, "mode": str(st.mode), "eps": st.eps,
                                             "rtol": st.rtol, "atol": st.atol, "seed": st.seed},
        "seconds": round(s.seconds, 6),
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


def spec_table(s: SpecResult) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header, justify in [("param", "left"), ("shape", "left"), ("backprop err", "right"),
                            ("expect err", "right"), ("worst", "left"), ("analytic", "right"),
                            ("numeric", "right"), ("status", "left")]:
        table.add_column(header, justify=justify, overflow="fold")
    for p in s.params:
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
        table.add_row(p.name, "×".join(map(str, p.shape)), fmt_err(p.backprop.max_rel_error), expect_err,
                      worst, fmt_num(c.analytic), fmt_num(c.numeric), status)
    return table


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
    return lines


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
    console.print(head, soft_wrap=True)
    if s.status == "error":
        console.print(Text(f"  {printable(s.message)}", style="red"), soft_wrap=True)
        console.print()
        return
    if s.settings is None:  # validated only: there are no numbers to show
        return
    if not quiet:
        st = s.settings
        mode = "" if st.mode.kind == "full" else f", mode {st.mode}"
        console.print(Text(f"  J = {s.objective:.12g}   method {st.method}{mode}, step {st.step_label}, "
                           f"{tolerance_label(st)}", style="dim"), soft_wrap=True)
        console.print(spec_table(s))
    for line in failure_lines(s) + note_lines(s):
        console.print(line, soft_wrap=True)
    if verbose:
        from .formats.detail import render_param_detail

        console.print()
        for p in s.params:
            render_param_detail(console, p, console.width)
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
