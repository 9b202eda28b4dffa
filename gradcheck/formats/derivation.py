"""What the HTML report adds to a spec's row: its V-curves (sweep) and its derivation (explain), as HTML.

Both are computed again from the spec file, with the settings the run used (method, step, seed),
under a time limit; whatever cannot be computed becomes a one-line note instead.
"""

from __future__ import annotations

from ..results import SpecResult
from .escape import html
from .explanation import ROWS_NOTE, expect_block, table_cells

STDIN = "<stdin>"  # the path of a spec read from standard input (`gradcheck run -`)


def spec_extras(s: SpecResult, max_curves: int, seconds: float):
    """(curves, explanation, note): the V-curves of the failing sides (every param's backprop when it
    passed), the symbolic derivation, and why something is missing (None when nothing is)."""
    from ..deadline import SpecTimeout, time_limit
    from ..errors import SpecError
    from ..explain import explain
    from ..spec import load
    from ..sweep import failing_curves

    curves, explanation, missing = [], None, []
    if s.path == STDIN:  # read once, and gone: nothing to load again
        return curves, explanation, "sweep and derivation left out: the spec came from standard input"
    try:
        with time_limit(seconds):
            spec = load(s.path)
            try:
                explanation = explain(spec.model)
            except SpecError as exc:
                missing.append(f"no derivation: {exc.message}")
            curves = failing_curves(spec, s, every_param=s.status == "pass")[:max_curves]
    except SpecTimeout:
        missing.append(f"sweep and derivation left out: they took over {seconds:g} s")
    except SpecError as exc:
        missing.append(f"sweep and derivation left out: {exc}")
    except Exception as exc:  # noqa: BLE001 - the report's extras must not cost the report
        missing.append(f"sweep and derivation left out: {type(exc).__name__}: {exc}")
    return curves, explanation, "; ".join(missing) or None


def derivation_html(ex, open_: bool = False) -> str:
    """explain's UFLDL table per term, each gradient as the sum of its uses, and the expect: block (folded
    unless `open_`: a failing spec shows it, to compare with the hand derivation)."""
    parts = [f'<details class="derivation"{" open" if open_ else ""}><summary>Derivation (gradcheck explain)</summary>',
             f'<p class="note">{html(ROWS_NOTE)}</p>']
    for term in ex.terms:
        coef = f"{term.coef} · " if term.coef else ""
        parts.append(f"<h4>{html(f'Term {term.index}: J = {coef}{term.objective}, a⁽¹⁾ = {term.input}')}</h4>")
        headers, cells = table_cells(term.rows)
        rows = ["<tr>" + "".join(f"<td>{html(cell)}</td>" for cell in row) + "</tr>" for row in cells]
        head = "".join(f"<th>{html(h)}</th>" for h in headers)
        parts.append(f'<table class="derivation"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
        if term.note:
            parts.append(f'<p class="note">{html(term.note)}</p>')
    lines = []
    for name in ex.params:
        uses = [u for u in ex.uses if u.param == name]
        if not uses:
            lines.append(f"∇{name}: {ex.notes.get(name, 'not used') if ex.params[name] is None else '0 (not used)'}")
        for i, use in enumerate(uses):
            lead = f"∇{name} = " if i == 0 else " " * (len(name) + 2) + "+ "
            lines.append(f"{lead}{use.formula}   ({use.where})")
    parts.append(f"<h4>Gradients</h4><pre>{_lines(lines)}</pre>")
    parts.append(f"<h4>Closed form (paste under expect:)</h4><pre>{_lines(expect_block(ex))}</pre>")
    parts.append("</details>")
    return "".join(parts)


def _lines(lines) -> str:
    """Lines for a <pre>: each escaped (a line break inside one would be shown as \\n), joined by line breaks."""
    return "\n".join(html(line) for line in lines)
