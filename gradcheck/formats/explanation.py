"""Render `gradcheck explain`: the UFLDL tables, each param's uses, and an `expect:` block to paste."""

from __future__ import annotations

import json
import re
from typing import IO

from rich import box
from rich.table import Table
from rich.text import Text

from ..explain import Explanation, sup
from .escape import human, json_text
from .text import fits, make_console, say

_PLAIN_START = re.compile(r"[A-Za-z_0-9(]")


def yaml_scalar(text: str) -> str:
    """The expression as a YAML value: plain when YAML reads it back unchanged, else double-quoted."""
    if _PLAIN_START.match(text) and ": " not in text and " #" not in text and not text.endswith(":"):
        return text
    return json.dumps(text, ensure_ascii=False)


def expect_block(ex: Explanation) -> list[str]:
    """`expect:` with every param that has a closed form; a comment for the others."""
    lines = ["expect:"]
    for name, text in ex.params.items():
        if text is None:
            lines.append(f"  # {name}: {ex.notes.get(name, 'no closed form')}")
        elif name in ex.notes:  # printed, but commented out: expect would refuse it
            lines.append(f"  # {name}: {ex.notes[name]}")
            lines.append(f"  # {name}: {text}")
        else:
            lines.append(f"  {name}: {yaml_scalar(text)}")
    return lines


ROWS_NOTE = ("Rows are UFLDL's l, 1 the input: the spec's layer k (as run numbers layers) has its weight in row k "
             "and its f in row k + 1. δ⁽ⁿˡ⁾ = ∂J/∂a⁽ⁿˡ⁾ • f′(z⁽ⁿˡ⁾) (for J = sum: f′(z⁽ⁿˡ⁾)); "
             "δ⁽ˡ⁾ = (W⁽ˡ⁾ᵀ δ⁽ˡ⁺¹⁾) • f′(z⁽ˡ⁾).")


def table_cells(rows) -> tuple[list[str], list[list[str]]]:
    """The UFLDL table as texts (headers, rows), shared by the console and the HTML report."""
    has_bias = any(r.bias for r in rows)
    network = any(r.reads is not None for r in rows)  # a network's rows: each layer with what it reads
    headers = ["l", "f of"] + (["reads"] if network else []) + ["weight W⁽ˡ⁾"] + (["bias"] if has_bias else []) + \
        ["f(z)", "f′(z)", "δ⁽ˡ⁾", "z⁽ˡ⁾ (input to f)"]
    cells = []
    for r in rows:
        layer = f"{r.layer} {r.name}" if network and r.name else str(r.layer)
        cells.append([layer, spec_layer(r.layer)] + ([r.reads] if network else []) + [r.weight] +
                     ([r.bias or ""] if has_bias else []) + [r.f, r.df, r.delta, r.z])
    return headers, cells


def term_table(rows) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    headers, cells = table_cells(rows)
    for header in headers:
        table.add_column(header, no_wrap=True)
    for row in cells:
        table.add_row(*row)
    return table


def spec_layer(level: int) -> str:
    """Whose f a UFLDL row l holds, in the numbering of the spec (and of run's messages): layer l - 1."""
    return "input" if level == 1 else f"layer {level - 1}"


def print_term(console, rows) -> None:
    """The term's table where it fits whole; else one block per layer, each formula wrapped between symbols."""
    table = term_table(rows)
    if fits(console, table):
        console.print(table)
        return
    for r in rows:
        bias = f"   bias {r.bias}" if r.bias else ""
        console.print(Text(f"l = {r.layer} (f of {spec_layer(r.layer)})   weight W⁽ˡ⁾ {r.weight}{bias}", style="bold"))
        for label, text in (("f(z)", r.f), ("f′(z)", r.df), ("δ⁽ˡ⁾", r.delta), ("z⁽ˡ⁾ (input)", r.z)):
            say(console, Text(f"  {label} = {text}"))


def render_explanation(ex: Explanation, out: IO[str], color: bool | None = None, width: int | None = None) -> None:
    """The derivation as UFLDL writes it, then the closed forms."""
    console = make_console(out, color, width)
    head = Text()
    head.append(human(ex.name), style="bold")
    head.append(f"  {human(ex.path)}", style="dim")
    say(console, head)
    say(console, Text(ROWS_NOTE, style="dim"))
    for term in ex.terms:
        console.print()
        coef = f"{term.coef} · " if term.coef else ""
        say(console, Text(f"Term {term.index}: J{_sub(term.index)} = {coef}{term.objective}, "
                          f"a{sup(1)} = {term.input}", style="bold"))
        print_term(console, term.rows)
        if term.note:
            say(console, Text(f"  {term.note}", style="yellow"))
    console.print()
    say(console, Text("Gradients: each use adds δ⁽ˡ⁺¹⁾ a⁽ˡ⁾ᵀ for a weight (transposed back for a use W.T), "
                      "Σ over columns of δ⁽ˡ⁺¹⁾ for a bias, δ⁽¹⁾ for the input; the uses of a param are summed.",
                      style="dim"))
    for name in ex.params:
        uses = [u for u in ex.uses if u.param == name]
        if not uses and ex.params[name] is None:  # read by a layer with no closed form
            say(console, Text(f"  ∇{name}: {ex.notes.get(name, 'no closed form')}", style="yellow"))
        elif not uses:
            say(console, Text(f"  ∇{name} = 0  (not used)"))
        pad = max((len(u.formula) for u in uses), default=0)
        for i, use in enumerate(uses):
            lead = f"  ∇{name} = " if i == 0 else " " * (len(name) + 4) + "+ "
            term = f"term {use.term}, " if len(ex.terms) > 1 else ""
            line = Text(lead + use.formula.ljust(pad) + "   ", style="bold")
            say(console, line.append(f"{term}{use.where}", style="dim"))
    console.print()
    say(console, Text("Closed form, in the expression language (paste under expect: to check it):", style="dim"))
    for line in expect_block(ex):  # YAML to paste: never wrapped
        console.print(Text(line), soft_wrap=True)
    if ex.second:
        console.print()
        console.print(Text("Second order, as the spec writes it (run checks each against central differences of "
                           "the backprop gradient: a Hessian column by column, H·V along seeded random V):",
                           style="dim"), soft_wrap=True)
        for section, name, formula in ex.second:
            console.print(Text(f"  {section} {name}: {human(formula)}"), soft_wrap=True)


def render_explanation_json(ex: Explanation, out: IO[str], **_) -> None:
    out.write(json_text(json.dumps(ex.to_json(), indent=2, ensure_ascii=False)) + "\n")


def _sub(k: int) -> str:
    return str(k).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))

