"""Verbose detail for the human report: the worst entries of each param, and a heatmap of a failing one.

The heatmap draws one cell per entry (or per block of entries, keeping the block's worst, when the
matrix is larger than the terminal), shaded by how far the entry's relative error is above rtol, so
the pattern of a mistake shows at a glance: a missing transpose spares only the diagonal, a wrong
row or column is a stripe, a wrong scale fills everything.
"""

from __future__ import annotations

import math

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..results import Entries, ParamResult, SecondResult
from .text import fits, fmt_err, fmt_index, fmt_num, say

WORST_COUNT = 10
MAX_HEATMAP_ROWS = 24
# level 0: error <= rtol; level k (1..4): rtol·10^(k-1) < error <= rtol·10^k, level 4 open-ended
SHADES = ("·", "░", "▒", "▓", "█")
STYLES = ("green", "yellow", "dark_orange", "red", "bold red")
LEGEND = ("≤ rtol", "≤ 10·rtol", "≤ 100·rtol", "≤ 1000·rtol", "> 1000·rtol")


def worst_table(entries: Entries, side: str, count: int = WORST_COUNT) -> Table:
    """The `count` worst entries of one side: index, analytic, numeric, relative error."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header, justify in (("index", "left"), ("analytic", "right"), ("numeric", "right"), ("rel error", "right")):
        table.add_column(header, justify=justify, no_wrap=True)
    for index, analytic, numeric, error in entries.worst(side, count):
        style = "red" if error > entries.rtol else ""
        table.add_row(fmt_index(index), fmt_num(analytic), fmt_num(numeric), Text(fmt_err(error), style=style))
    return table


def error_levels(errors: np.ndarray, rtol: float) -> np.ndarray:
    """Shade level 0..4 of every entry: decades of relative error above rtol."""
    with np.errstate(divide="ignore", invalid="ignore"):
        decades = np.ceil(np.log10(np.maximum(errors, 1e-300) / rtol)) if rtol > 0 else np.full(errors.shape, 4.0)
    levels = np.where(errors <= rtol, 0, np.clip(decades, 1, 4))
    return np.where(np.isfinite(errors), levels, 4).astype(int)


def pooled(levels: np.ndarray, max_rows: int, max_cols: int) -> tuple[np.ndarray, int, int]:
    """Levels shrunk to fit (max over blocks), with the block height and width used."""
    rows, cols = levels.shape
    block_r, block_c = math.ceil(rows / max(1, max_rows)), math.ceil(cols / max(1, max_cols))
    if block_r == 1 and block_c == 1:
        return levels, 1, 1
    out_r, out_c = math.ceil(rows / block_r), math.ceil(cols / block_c)
    padded = np.zeros((out_r * block_r, out_c * block_c), dtype=int)
    padded[:rows, :cols] = levels
    return padded.reshape(out_r, block_r, out_c, block_c).max(axis=(1, 3)), block_r, block_c


def heatmap(errors: np.ndarray, rtol: float, width: int, max_rows: int = MAX_HEATMAP_ROWS) -> list[Text]:
    """Lines drawing the per-entry relative error of a matrix, with row/column indices and a legend."""
    rows, cols = errors.shape
    label = len(str(rows - 1))
    room = max(8, width - label - 6)
    cell = 2 if 2 * cols <= room else 1
    levels, block_r, block_c = pooled(error_levels(errors, rtol), max_rows, room // cell)
    lines = [_ruler(levels.shape[1], block_c, cell, label)]
    for i, row in enumerate(levels):
        line = Text()
        line.append(f"    {i * block_r:>{label}} ", style="dim")
        for level in row:
            line.append(SHADES[level] * cell, style=STYLES[level])
        lines.append(line)
    legend = Text("    ")
    for shade, style, words in zip(SHADES, STYLES, LEGEND):
        legend.append(shade, style=style)
        legend.append(f" {words}  ", style="dim")
    if block_r > 1 or block_c > 1:
        legend.append(f"(each cell: the worst of {block_r}×{block_c} entries)", style="dim")
    lines.append(legend)
    return lines


def _ruler(cells: int, block: int, cell: int, label: int) -> Text:
    """Column indices above the heatmap, every few cells where they fit."""
    text = [" "] * (cells * cell)
    step = max(1, math.ceil(len(str((cells - 1) * block)) / cell) + 1)
    step = 5 if cells > 10 and step < 5 else step
    for c in range(0, cells, step):
        digits = str(c * block)
        start = c * cell
        if start + len(digits) <= len(text) and all(ch == " " for ch in text[max(0, start - 1):start + len(digits)]):
            text[start:start + len(digits)] = digits
    return Text(" " * (4 + label + 1) + "".join(text).rstrip(), style="dim")


def render_param_detail(console: Console, p: ParamResult, width: int) -> None:
    """Worst entries of each side of a param; a heatmap for each failing side."""
    entries = p.entries
    if entries is None:
        return
    for side, comparison in (("backprop", p.backprop), ("expect", p.expect)):
        if comparison is None or entries.analytic(side) is None:
            continue
        size = entries.numeric.size
        shown = min(WORST_COUNT, size)
        say(console, Text(f"  {p.name} {side}: worst {shown} of {size} entries", style="bold"))
        table = worst_table(entries, side)
        if fits(console, table):
            console.print(table)
        else:  # too narrow for four columns: one entry a line, wrapped between its numbers
            for index, analytic, numeric, error in entries.worst(side, WORST_COUNT):
                say(console, Text(f"  {fmt_index(index)}  analytic {fmt_num(analytic)}  numeric {fmt_num(numeric)}  "
                                  f"rel error {fmt_err(error)}", style="red" if error > entries.rtol else ""))
        if not comparison.passed:
            say(console, Text(f"  {p.name} {side}: relative error per entry", style="bold"))
            for line in heatmap(entries.errors(side), entries.rtol, width):
                say(console, line)
        console.print()


def render_second_detail(console: Console, r: SecondResult, width: int, atol: float = 0.0) -> None:
    """Worst entries of a hessian/hvp formula (of its worst direction) and, when it fails, its heatmap."""
    arrays = r.arrays
    if arrays is None:
        return
    kinks = frozenset(k.index for k in r.formula.kinks)
    entries = Entries(arrays["formula"], arrays["numeric"], None, arrays["rtol"], atol, kinks, arrays["error"])
    size = entries.numeric.size
    console.print(Text(f"  {r.label}: worst {min(WORST_COUNT, size)} of {size} entries", style="bold"), soft_wrap=True)
    console.print(worst_table(entries, "backprop"), soft_wrap=False)  # the formula stands on the analytic side
    if not r.formula.passed:
        console.print(Text(f"  {r.label}: relative error per entry", style="bold"), soft_wrap=True)
        for line in heatmap(entries.errors("backprop"), entries.rtol, width):
            console.print(line, soft_wrap=True)
    console.print()
