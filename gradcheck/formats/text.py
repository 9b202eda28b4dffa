"""Text helpers shared by every report format: numbers, indices, status labels, the console.

report.py (human, JSON, sweep plots) and the renderers in this package import these; nothing here
imports a renderer, so the formats never import each other back.
"""

from __future__ import annotations

import os
from typing import IO

from rich.console import Console
from rich.text import Text

from ..results import ParamResult, RunResult, SpecResult
from ..verdict import Comparison
from .escape import CommandSafeStream, human

STATUS_STYLE = {"pass": ("PASS", "bold green"), "fail": ("FAIL", "bold red"), "error": ("ERROR", "bold red")}
VALIDATE_STYLE = {"pass": ("VALID", "bold green"), "error": ("INVALID", "bold red")}


def fmt_err(value: float | None) -> str:
    return "—" if value is None else f"{value:.1e}"


def fmt_num(value: float | None) -> str:
    return "—" if value is None else f"{value + 0.0:.10g}"  # + 0.0 turns -0.0 into 0


def fmt_index(index) -> str:
    return "—" if index is None else "[" + ", ".join(map(str, index)) + "]"


def fmt_entry(c: Comparison) -> str:
    """The worst index, and for a kernel what it means: '[1, 5] (filter 1, channel 0, row 1, column 2)'."""
    text = fmt_index(c.worst_index)
    if c.worst_entry:
        text += " (" + ", ".join(f"{name} {value}" for name, value in c.worst_entry) + ")"
    return text


def worse_side(p: ParamResult) -> tuple[str, Comparison]:
    """The comparison that explains the verdict: a failing one first, else the larger error."""
    sides = [("backprop", p.backprop)] + ([("expect", p.expect)] if p.expect else [])
    failing = [s for s in sides if not s[1].passed]
    if failing:
        return failing[-1] if failing[-1][0] == "expect" and p.backprop.passed else failing[0]
    return max(sides, key=lambda s: s[1].max_rel_error or 0.0)


def failure_lines(s: SpecResult) -> list[Text]:
    """One line per failing comparison: analytic and numeric side by side; then what the mistake looks like."""
    lines = []
    for p in s.params:
        for side, c in [("backprop", p.backprop), ("expect", p.expect)]:
            if c is None or c.passed:
                continue
            lines.append(_failure_line(f"{p.name} {side}", "analytic", c))
        if p.diagnosis:
            lines.append(Text(f"    ↳ {p.name}: {p.diagnosis}", style="bold yellow"))
    for r in s.second:  # hessian / hvp formulas: the formula against the numeric derivative of backprop's gradient
        c = r.formula
        if c.passed:
            continue
        lines.append(_failure_line(r.label, "formula", c))
        if r.diagnosis:
            lines.append(Text(f"    ↳ {r.label}: {r.diagnosis}", style="bold yellow"))
    return lines


def _failure_line(label: str, analytic_name: str, c: Comparison) -> Text:
    """'✗ W backprop vs numeric at [2, 0]: analytic … numeric … (rel error …)', or the comparison's own message."""
    if c.message:
        return Text(f"  ✗ {label}: {c.message}", style="red")
    return Text(f"  ✗ {label} vs numeric at {fmt_entry(c)}: {analytic_name} {fmt_num(c.analytic)}  numeric "
                f"{fmt_num(c.numeric)}  (rel error {fmt_err(c.max_rel_error)}, abs {fmt_err(c.max_abs_error)}"
                f"{in_error_units(c)})", style="red")


def in_error_units(c: Comparison) -> str:
    """', 3.1e+04× the numeric error 2.2e-10': the mismatch in units of what the finite difference can tell."""
    if not c.numeric_error or c.max_abs_error is None or c.analytic is None:
        return ""
    return f"; {abs(c.analytic - c.numeric) / c.numeric_error:.1e}× the numeric error {c.numeric_error:.1e}"


def tolerance_label(st) -> str:
    """The rule's figures as the header line says them: rtol, an absolute floor if one was given."""
    floor = f", atol {st.atol:.1e}" if st.atol else ""
    return f"rtol {st.rtol:.1e}{floor}, floor: each entry's numeric error + backprop's round-off"


def printable(text: str) -> str:
    """Text safe to show on a terminal or a CI log (the human format's escaping, formats.escape.human)."""
    return human(text)


def summary_text(run: RunResult, command: str = "run") -> Text:
    sm = run.summary
    text = Text(f"{sm['total']} spec{'s' * (sm['total'] != 1)}: ")
    if command == "validate":
        text.append(f"{sm['pass']} valid", style="green" if sm["pass"] else "")
        text.append(", ")
        text.append(f"{sm['error']} invalid", style="bold red" if sm["error"] else "")
        return text
    text.append(f"{sm['pass']} passed", style="green" if sm["pass"] else "")
    text.append(", ")
    text.append(f"{sm['fail']} failed", style="bold red" if sm["fail"] else "")
    text.append(", ")
    text.append(f"{sm['error']} error{'s' * (sm['error'] != 1)}", style="bold red" if sm["error"] else "")
    return text


class PipeSafeConsole(Console):
    """rich's Console, but a closed pipe is left to the CLI (rich would exit 1, the code for a failed spec)."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError("the reader of the report went away")


def make_console(out: IO[str], color: bool | None, width: int | None) -> Console:
    """A console that never truncates numbers: off a terminal it is wide and colourless.

    On a terminal, or with --width, long lines are wrapped between words (`say`); off a terminal with no
    width they stay whole, so that a `file:line:col: message` line stays one line for grep and editors.
    """
    terminal = hasattr(out, "isatty") and out.isatty()
    if color is None:
        color = terminal and not os.environ.get("NO_COLOR")
    console = PipeSafeConsole(file=CommandSafeStream(out), force_terminal=color, no_color=not color,
                              color_system="auto" if color else None, width=width or (None if terminal else 200),
                              highlight=False, soft_wrap=False, emoji=False)
    console.wraps = terminal or width is not None
    return console


def say(console: Console, text: Text) -> None:
    """One line of prose: wrapped between words where the console wraps (never inside a number or a symbol)."""
    console.print(text, soft_wrap=not getattr(console, "wraps", False))


def fits(console: Console, renderable) -> bool:
    """Whether a table fits the console at its natural width, so that no cell has to wrap."""
    natural = console.measure(renderable, options=console.options.update_width(10**6)).maximum
    return natural <= console.width
