"""`gradcheck sweep` output: each curve as a text plot (human) or as data (json); --plot draws them with matplotlib.

A curve's heading names what it plots (which error, of which side, with which method), the entry, and
where the error is smallest; `┊` marks the step the check uses.
"""

from __future__ import annotations

import json
import math
from typing import IO

import numpy as np
from rich.text import Text

from .. import __version__
from .escape import human, json_text
from .text import fmt_index, fmt_num, make_console

PLOT_ROWS = 14
PLOT_WIDTH = 56
ERROR_FLOOR = 1e-17  # exact agreement is drawn at the bottom row


def sweep_plot(curve, width: int = PLOT_WIDTH) -> list[str]:
    """A log-log plot of error against step, as text: x = log10 step, y = log10 error."""
    xs = np.log10(np.array(curve.steps))
    ys = np.log10(np.maximum(np.array(curve.errors), ERROR_FLOOR))
    top, bottom = max(0.0, float(np.ceil(ys.max()))), float(np.floor(ys.min()))
    bottom = min(bottom, top - 2)  # at least two decades tall: a flat curve reads as flat
    left, right = float(xs.max()), float(xs.min())  # large steps on the left, as the V is usually drawn
    grid = [[" "] * width for _ in range(PLOT_ROWS)]

    def col(x):
        return int(round((left - x) / (left - right) * (width - 1))) if left != right else 0

    def row(y):
        return int(round((top - y) / (top - bottom) * (PLOT_ROWS - 1))) if top != bottom else 0

    chosen = col(np.log10(curve.chosen_step))
    for r in range(PLOT_ROWS):
        if 0 <= chosen < width:
            grid[r][chosen] = "┊"
    for x, y in zip(xs, ys):
        grid[row(y)][col(x)] = "●"
    labels = {}  # a row where a decade falls gets its label (every other decade when they crowd)
    every = max(1, math.ceil((top - bottom + 1) / (PLOT_ROWS // 2)))
    for exponent in range(int(top), int(bottom) - 1, -every):
        labels.setdefault(row(exponent), f"1e{exponent}")
    lines = []
    for r, cells in enumerate(grid):
        lines.append(f"{labels.get(r, ''):>7} │{''.join(cells)}".rstrip())
    lines.append(" " * 8 + "└" + "─" * width)
    lines.append(" " * 9 + f"step 1e{int(round(left))}".ljust(width - 6) + f"1e{int(round(right))}")
    lines.append(" " * 9 + f"┊ = the step the check uses ({curve.chosen_step:.2e}, {curve.method})")
    return lines


def curve_heading(curve) -> str:
    """'W at [1, 1], backprop: analytic 5.63; smallest error 6.2e-10 at step 1.0e-05'."""
    best = int(np.argmin(curve.errors))
    return (f"{curve.param} at {fmt_index(curve.index)}, {curve.side}: analytic {fmt_num(curve.analytic)}; "
            f"smallest error {curve.errors[best]:.1e} at step {curve.steps[best]:.1e}")


def render_sweep_human(swept, out: IO[str], color: bool | None = None, width: int | None = None) -> None:
    """Per spec a heading (or its located error), then each curve: what it plots, and the plot."""
    console = make_console(out, color, width)
    plot_width = max(20, min(PLOT_WIDTH, console.width - 12))
    for i, item in enumerate(swept):
        if len(swept) > 1 or item.error:
            head = Text()
            head.append(human(item.name), style="bold")
            head.append(f"  {human(item.path)}", style="dim")
            console.print(head, soft_wrap=True)
        if item.error:
            console.print(Text(f"  {human(str(item.error))}", style="red"), soft_wrap=True)
            console.print()
            continue
        for note in item.notes:
            console.print(Text(f"  note: {human(note)}", style="yellow"), soft_wrap=True)
        for curve in item.curves:
            console.print(Text(curve_heading(curve), style="bold"), soft_wrap=True)
            console.print(Text(f"  y: {curve.label}", style="dim"), soft_wrap=True)
            for line in sweep_plot(curve, plot_width):
                console.print(Text(line), soft_wrap=True)
            console.print()


def render_sweep_json(swept, out: IO[str], **_) -> None:
    """Every spec's curves as data: steps, numeric values, errors, and what the errors are."""
    data = {"version": __version__,
            "specs": [{"path": s.path, "name": s.name, "error": str(s.error) if s.error else None,
                       "notes": list(s.notes), "params": [c.to_json() for c in s.curves]} for s in swept]}
    out.write(json_text(json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False)) + "\n")


PLOT_SUFFIXES = (".png", ".svg")


def plot_files(swept, path: str) -> int:
    """Draw every curve into one figure (one panel per curve) with matplotlib; the number of panels."""
    from matplotlib.figure import Figure  # the optional extra: gradcheck[plot]

    panels = [(s, c) for s in swept for c in s.curves]
    cols = min(2, max(1, len(panels)))
    rows = max(1, -(-len(panels) // cols))
    figure = Figure(figsize=(6.4 * cols, 4.2 * rows), layout="constrained")
    for k, (s, c) in enumerate(panels):
        axes = figure.add_subplot(rows, cols, k + 1)
        axes.loglog(c.steps, np.maximum(c.errors, ERROR_FLOOR), "o-", markersize=3)
        axes.axvline(c.chosen_step, linestyle="--", color="gray", label=f"the step the check uses ({c.method})")
        axes.invert_xaxis()  # large steps on the left, as the text plot draws them
        axes.set_title(_mathtext_free(human(f"{s.name}: {c.param}{fmt_index(c.index)}, {c.side}")), fontsize=9)
        axes.set_xlabel("step")
        axes.set_ylabel("relative error |g − n| / max(|g|, |n|)", fontsize=8)
        axes.legend(fontsize=7)
    if not panels:
        figure.text(0.5, 0.5, "no curves", ha="center")
    figure.savefig(path)
    return len(panels)


def _mathtext_free(text: str) -> str:
    """A spec's text as matplotlib shows it literally: `$…$` would be parsed as TeX math (and can fail)."""
    return text.replace("$", r"\$")
