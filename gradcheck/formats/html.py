"""The HTML report: one self-contained file to open in a browser (`--format html -o report.html`).

Per spec: its table, its located findings, a heatmap of the per-entry error of each failing side,
the step-size V-curves of `sweep` (failing sides; every param's backprop for a passing spec) and
`explain`'s derivation tables. No script, no stylesheet, font or image from elsewhere: a Content
Security Policy in the page forbids them all, so even a spec text that slipped past the escaping
could neither run nor fetch anything. Every text from a spec or a path goes through escape.html.
"""

from __future__ import annotations

from typing import IO

from .. import __version__
from ..results import RunResult, SpecResult
from .escape import html
from .findings import spec_findings
from .page import CSP, STYLE
from .svg import curve_caption, heatmap_svg, vcurve_svg
from .text import STATUS_STYLE, VALIDATE_STYLE, fmt_entry, fmt_err, fmt_num, tolerance_label, worse_side

EXTRAS_SECONDS = 60.0  # time for one spec's sweeps and explanation; past it they are left out with a note
MAX_CURVES = 12  # V-curves drawn per spec


def render_html(run: RunResult, out: IO[str], command: str = "run", **_) -> None:
    """The whole run as one HTML document."""
    sm = run.summary
    title = html(f"gradcheck {command}: {_summary_words(run, command)}")
    out.write(f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
              f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
              f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
              f'<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n')
    out.write(f'<header><h1>gradcheck {html(command)}</h1><p class="summary">{html(_summary_words(run, command))}'
              f'</p><p class="meta">gradcheck {html(__version__)} · {sm.get("total", 0)} spec files</p></header>\n')
    out.write('<nav><ul>')
    for i, s in enumerate(run.specs):
        label, kind = _label(s, command)
        out.write(f'<li><a href="#spec-{i}"><span class="badge {kind}">{label}</span> {html(s.name)}</a></li>')
    out.write('</ul></nav>\n<main>\n')
    for i, s in enumerate(run.specs):
        out.write(spec_section(s, i, command))
    out.write('</main>\n</body>\n</html>\n')


def _summary_words(run: RunResult, command: str) -> str:
    sm = run.summary
    total = f"{sm['total']} spec{'s' * (sm['total'] != 1)}"
    if command == "validate":
        return f"{total}: {sm['pass']} valid, {sm['error']} invalid"
    return f"{total}: {sm['pass']} passed, {sm['fail']} failed, {sm['error']} error{'s' * (sm['error'] != 1)}"


def _label(s: SpecResult, command: str) -> tuple[str, str]:
    label = (VALIDATE_STYLE if command == "validate" else STATUS_STYLE)[s.status][0]
    return label, s.status


def spec_section(s: SpecResult, i: int, command: str) -> str:
    """One spec: heading, settings, table, findings, heatmaps, V-curves, derivation."""
    label, kind = _label(s, command)
    parts = [f'<section id="spec-{i}" class="spec {kind}">',
             f'<h2><span class="badge {kind}">{label}</span> <span class="name">{html(s.name)}</span> '
             f'<code class="path">{html(s.path)}</code></h2>']
    if s.settings is not None:
        st = s.settings
        mode = "" if st.mode.kind == "full" else f", mode {st.mode}"
        parts.append(f'<p class="settings">J = {html(fmt_num(s.objective))} · method {html(st.method)}{html(mode)}, '
                     f'step {html(st.step_label)}, {html(tolerance_label(st))}, seed {st.seed}</p>')
        parts.append(params_table(s))
    parts.append(findings_list(s))
    if s.settings is not None:
        parts.append(heatmaps(s))
        parts.append(extras(s))
    parts.append('</section>\n')
    return "".join(parts)


PARAM_COLUMNS = ("param", "shape", "backprop err", "expect err", "worst", "analytic", "numeric", "status")


def params_table(s: SpecResult) -> str:
    """The table of the human report, one row per param."""
    rows = []
    for p in s.params:
        side, c = worse_side(p)
        expect_err = "—" if p.expect is None else ("n/a" if p.expect.max_rel_error is None and not p.expect.kinks
                                                     else fmt_err(p.expect.max_rel_error))
        worst = fmt_entry(c) + (f" ({side})" if p.expect is not None and c.worst_index else "")
        status = STATUS_STYLE[p.status][0] + (f" ({p.kinks} kink{'s' * (p.kinks != 1)})" if p.kinks else "")
        cells = [p.name, "×".join(map(str, p.shape)), fmt_err(p.backprop.max_rel_error), expect_err, worst,
                 fmt_num(c.analytic), fmt_num(c.numeric)]
        rows.append(f'<tr class="{p.status}">' + "".join(f"<td>{html(cell)}</td>" for cell in cells) +
                    f'<td><span class="badge {p.status}">{html(status)}</span></td></tr>')
    head = "".join(f"<th>{name}</th>" for name in PARAM_COLUMNS)
    return f'<table class="params"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def findings_list(s: SpecResult) -> str:
    """Each located finding as `file:line:col: message`, then the notes (kinks, fast mode)."""
    items = []
    for f in spec_findings(s):
        where = ":".join(str(part) for part in (f.file, f.line, f.col) if part)
        items.append(f'<li class="{f.severity}"><code>{html(where)}</code>: {html(f.message)}</li>')
    for p in s.params:
        if p.kinks:
            items.append(f'<li class="info">{html(p.name)} has {p.kinks} entr{"y" if p.kinks == 1 else "ies"} at a kink '
                         f'(non-differentiable point); not counted as failures</li>')
        if p.note and p.status == "fail":
            items.append(f'<li class="info">{html(p.name)}: {html(p.note)}</li>')
    return f'<ul class="findings">{"".join(items)}</ul>' if items else ""


def heatmaps(s: SpecResult) -> str:
    """A heatmap of the per-entry relative error of every failing side that kept its entries."""
    parts = []
    for p in s.params:
        entries = p.entries
        for side, c in (("backprop", p.backprop), ("expect", p.expect)):
            if c is None or c.passed or entries is None or entries.analytic(side) is None:
                continue
            title = f"{p.name} {side}: relative error per entry (rtol {entries.rtol:.1e})"
            parts.append(f'<figure class="heatmap"><figcaption>{html(title)}</figcaption>'
                         f'{heatmap_svg(entries.errors(side), entries.rtol, title)}</figure>')
    return f'<div class="figures"><h3>Error per entry</h3>{"".join(parts)}</div>' if parts else ""


def extras(s: SpecResult) -> str:
    """The V-curves and the derivation, computed again from the spec file; a note if that cannot be done."""
    from .derivation import derivation_html, spec_extras

    curves, explanation, problem = spec_extras(s, MAX_CURVES, EXTRAS_SECONDS)
    parts = []
    if curves:
        figures = "".join(f'<figure class="vcurve"><figcaption>{curve_caption(c)}</figcaption>'
                          f'{vcurve_svg(c, f"{c.param} {c.side} against step")}</figure>' for c in curves)
        parts.append(f'<div class="figures"><h3>Error against step (sweep)</h3>{figures}</div>')
    if explanation is not None:
        parts.append(derivation_html(explanation, open_=s.status == "fail"))
    if problem:
        parts.append(f'<p class="note">{html(problem)}</p>')
    return "".join(parts)
