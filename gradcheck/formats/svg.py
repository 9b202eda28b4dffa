"""Small inline SVG drawings for the HTML report: a per-entry error heatmap and a step-size V-curve.

Drawn by hand (a few dozen elements each) so that the report needs no plotting library and no
network: every text in them goes through formats.escape.html. Tooltips are SVG <title> elements,
which browsers show without any script.
"""

from __future__ import annotations

import math

import numpy as np

from .detail import LEGEND, error_levels, pooled
from .escape import html
from .text import fmt_err, fmt_index, fmt_num

LEVEL_COLORS = ("#2e9e44", "#e3c31b", "#f08a24", "#d7301f", "#7f0000")  # ≤ rtol … > 1000·rtol
MAX_CELLS = 48  # a side of the heatmap, in cells; larger matrices are pooled (each cell the worst of a block)
ERROR_FLOOR = 1e-17


def heatmap_svg(errors: np.ndarray, rtol: float, title: str) -> str:
    """One coloured cell per entry (or per block, keeping its worst), with indices and a legend."""
    errors = np.atleast_2d(errors)
    rows, cols = errors.shape
    levels, block_r, block_c = pooled(error_levels(errors, rtol), MAX_CELLS, MAX_CELLS)
    worst = _pooled_values(errors, block_r, block_c, levels.shape)
    size = max(8, min(22, 480 // max(levels.shape)))
    left, top = 34, 18
    width, height = max(left + levels.shape[1] * size + 8, left + 370), top + levels.shape[0] * size + 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{html(title)}">']
    for c in range(0, levels.shape[1], _tick_every(levels.shape[1])):
        parts.append(f'<text x="{left + c * size + size / 2:.1f}" y="{top - 5}" class="tick" '
                     f'text-anchor="middle">{c * block_c}</text>')
    for r in range(levels.shape[0]):
        if r % _tick_every(levels.shape[0]) == 0:
            parts.append(f'<text x="{left - 4}" y="{top + r * size + size * 0.75:.1f}" class="tick" '
                         f'text-anchor="end">{r * block_r}</text>')
        for c in range(levels.shape[1]):
            where = (f"[{r}, {c}]" if block_r == block_c == 1 else
                     f"rows {r * block_r}–{min(rows, (r + 1) * block_r) - 1}, "
                     f"columns {c * block_c}–{min(cols, (c + 1) * block_c) - 1}")
            parts.append(f'<rect x="{left + c * size}" y="{top + r * size}" width="{size}" height="{size}" '
                         f'fill="{LEVEL_COLORS[levels[r, c]]}"><title>{where}: rel error '
                         f'{fmt_err(float(worst[r, c]))}</title></rect>')
    y = top + levels.shape[0] * size + 16
    for k, (color, words) in enumerate(zip(LEVEL_COLORS, LEGEND)):
        x = left + (k % 3) * 120
        row_y = y + (k // 3) * 16
        parts.append(f'<rect x="{x}" y="{row_y - 9}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x + 14}" y="{row_y}" class="tick">{html(words)}</text>')
    if block_r > 1 or block_c > 1:
        parts.append(f'<text x="{left}" y="{y + 38}" class="tick">each cell: the worst of {block_r}×{block_c} '
                     f'entries</text>')
    parts.append("</svg>")
    return "".join(parts)


def _pooled_values(errors: np.ndarray, block_r: int, block_c: int, shape) -> np.ndarray:
    """The largest error in each block (NaN counts as infinite), for the cells' tooltips."""
    out = np.zeros(shape)
    clean = np.where(np.isfinite(errors), errors, np.inf)
    for r in range(shape[0]):
        for c in range(shape[1]):
            out[r, c] = clean[r * block_r:(r + 1) * block_r, c * block_c:(c + 1) * block_c].max()
    return out


def _tick_every(cells: int) -> int:
    return 1 if cells <= 12 else 5 if cells <= 30 else 10


def vcurve_svg(curve, title: str) -> str:
    """Error against step on log-log axes (large steps on the left), the step the check uses dashed."""
    width, height, left, right, top, bottom = 460, 250, 56, 22, 12, 40
    xs = np.log10(np.asarray(curve.steps, dtype=float))
    ys = np.log10(np.maximum(np.asarray(curve.errors, dtype=float), ERROR_FLOOR))
    ys = np.where(np.isfinite(ys), ys, 1.0)
    x_hi, x_lo = math.ceil(float(xs.max())), math.floor(float(xs.min()))
    y_hi, y_lo = max(0, math.ceil(float(ys.max()))), math.floor(float(ys.min()))
    y_lo = min(y_lo, y_hi - 1)

    def px(x):  # large steps on the left
        return left + (x_hi - x) / max(1e-9, x_hi - x_lo) * (width - left - right)

    def py(y):
        return top + (y_hi - y) / max(1e-9, y_hi - y_lo) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="vcurve" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{html(title)}">',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
             f'class="frame"/>']
    for e in range(x_lo, x_hi + 1, _decade_step(x_hi - x_lo)):
        parts.append(f'<line x1="{px(e):.1f}" x2="{px(e):.1f}" y1="{top}" y2="{height - bottom}" class="grid"/>'
                     f'<text x="{px(e):.1f}" y="{height - bottom + 14}" class="tick" text-anchor="middle">'
                     f'1e{e}</text>')
    for e in range(y_lo, y_hi + 1, _decade_step(y_hi - y_lo)):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(e):.1f}" y2="{py(e):.1f}" class="grid"/>'
                     f'<text x="{left - 4}" y="{py(e) + 4:.1f}" class="tick" text-anchor="end">1e{e}</text>')
    chosen = math.log10(curve.chosen_step)
    if x_lo <= chosen <= x_hi:
        parts.append(f'<line x1="{px(chosen):.1f}" x2="{px(chosen):.1f}" y1="{top}" y2="{height - bottom}" '
                     f'class="chosen"><title>the step the check uses: {curve.chosen_step:.2e} ({html(curve.method)})'
                     f'</title></line>')
    points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys))
    parts.append(f'<polyline points="{points}" class="curve"/>')
    for step, error, x, y in zip(curve.steps, curve.errors, xs, ys):
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.6" class="point"><title>step {step:.2e}: '
                     f'error {fmt_err(error)}</title></circle>')
    parts.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 6}" class="axis" text-anchor="middle">'
                 f'step (large → small)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _decade_step(span: int) -> int:
    return 1 if span <= 8 else 2 if span <= 16 else 4


def curve_caption(curve) -> str:
    """What a V-curve shows, as the text sweep says it (escaped)."""
    best = int(np.argmin(curve.errors))
    return html(f"{curve.param} {fmt_index(curve.index)}, {curve.side}: analytic {fmt_num(curve.analytic)}; "
                f"smallest error {curve.errors[best]:.1e} at step {curve.steps[best]:.1e}; dashed: the step the check "
                f"uses ({curve.chosen_step:.2e}, {curve.method}). y: {curve.label}")
