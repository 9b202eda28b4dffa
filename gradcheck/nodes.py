"""Reading the located YAML tree: where a node stands, and what kind of value it must hold."""

from __future__ import annotations

import math

from .errors import excerpt
from .expr import Where
from .model import Place
from .suggest import did_you_mean
from .yamlsrc import Node


def place_of(node: Node) -> Place:
    return Place(node.file, node.line, node.col)


def key_place(node: Node) -> Place:
    return Place(node.file, node.key_line or node.line, node.key_col or node.col)


def expect_mapping(node: Node, what: str) -> dict[str, Node]:
    if not isinstance(node.value, dict):
        raise node.error(f"{what} must be a mapping, not {describe(node.value)}")
    return node.value


def expect_list(node: Node, what: str) -> list[Node]:
    if not isinstance(node.value, list):
        raise node.error(f"{what} must be a list, not {describe(node.value)}")
    return node.value


def describe(value) -> str:
    """A value's kind as users say it."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the string "{excerpt(value)}"'
    return "a list" if isinstance(value, list) else "a mapping"


def check_keys(mapping: dict[str, Node], allowed, where: str) -> None:
    """Refuse unknown keys, suggesting the nearest allowed one."""
    for key, node in mapping.items():
        if key not in allowed:
            extra = did_you_mean(key, allowed) or f"; allowed: {', '.join(allowed)}"
            raise node.key_error(f'unknown key "{excerpt(key)}" in {where}{extra}')


def number(node: Node, what: str, positive: bool = False, integer: bool = False) -> float:
    """A finite number (YAML numbers, including `1e-6` that PyYAML leaves as a string)."""
    value = node.value
    if not positive and not integer:  # the common case, first: a literal matrix can hold 300,000 entries
        if type(value) is float and math.isfinite(value):
            return value
        if type(value) is int and -2**53 <= value <= 2**53:
            return float(value)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise node.error(f"{what} must be a number, not {describe(node.value)}")
    if isinstance(value, int) and not integer:
        try:
            value = float(value)
        except OverflowError:
            raise node.error(f"{what} is too large (a number of {len(str(abs(value)))} digits)") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise node.error(f"{what} must be finite, not {value}")
    if integer and isinstance(value, float):
        if value != int(value):
            raise node.error(f"{what} must be a whole number, not {value}")
        value = int(value)
    if positive and value <= 0:
        raise node.error(f"{what} must be positive, not {value}")
    return value if integer else float(value)


MAX_DIM = 10**9  # any one size, stride or padding: beyond every element limit, far from int64's end


def whole(node: Node, what: str, low: int, high: int = MAX_DIM) -> int:
    """A whole number from `low` to `high` (the one bounded integer reader of the loader).

    Bounds before use: sizes are multiplied together, and numpy's int64 wraps silently (an image
    [1, 274177, 67280421310721] "held" 1 number per column).
    """
    value = number(node, what, integer=True)
    if not low <= value <= high:
        raise node.error(f"{what} must be from {low:,} to {high:,}, not {shown_int(value)}")
    return value


def shown_int(value: int) -> str:
    """An integer as a message shows it: digits, or for a huge one how many digits it has."""
    digits = str(abs(value))
    return f"{value:,}" if len(digits) <= 24 else f"a number of {len(digits):,} digits"


def text(node: Node, what: str) -> str:
    """A scalar as text (a name, a mode, a loss); a mapping, a list or nothing is a located error."""
    if isinstance(node.value, (dict, list)) or node.value is None:
        raise node.error(f"{what} must be text, not {describe(node.value)}")
    return str(node.value)


def expression_where(node: Node, source_lines: list[str] | None = None) -> Where:
    """Where an expression's characters stand: after the quote of a quoted scalar; every character
    mapped to its own line and column when the text can be aligned with the file's."""
    if node.style in ("|", ">"):
        where = Where(node.file, node.line + 1, node.col + 2)
    else:
        where = Where(node.file, node.line, node.col + (1 if node.style in ("'", '"') else 0))
    start = (node.line + 1, 1) if node.style in ("|", ">") else (where.line, where.col)  # after indicator or quote
    positions = align(str(node.value), source_lines, *start) if source_lines else None
    if positions is None:
        return where
    text = str(node.value)
    starts = (0,) + tuple(i + 1 for i, ch in enumerate(text) if ch == "\n")
    return Where(where.file, where.line, where.col, positions, starts)


# What may stand in a scalar's source between the characters of its value: quotes, block
# indicators (`>-`, `|+2`), a backslash line continuation. Anything else means escapes: no alignment.
_SKIPPABLE = set("\"'>|+-\\0123456789")


def align(value: str, lines: list[str], line: int, col: int) -> tuple | None:
    """(line, col) in the file of each character of a scalar's value, or None when they cannot be matched.

    Folding turns a line break and the next line's indentation into one space; a block scalar
    starts after its indicator; the value's characters are otherwise the source's, in order.
    """
    out = []
    row, j = line - 1, col - 1  # 0-based place in `lines`
    for ch in value:
        while True:
            if row >= len(lines):
                return None
            text = lines[row]
            if j >= len(text):  # the end of a source line: a line break
                if ch == "\n" or (ch == " " and out):
                    break
                row, j = row + 1, 0
                continue
            if text[j] == ch:
                break
            if text[j] in " \t" or text[j] in _SKIPPABLE:
                j += 1
                continue
            return None
        if j >= len(lines[row]):  # a folded break (a space) or a kept one ("\n"): it stands at the line's end
            out.append((row + 1, max(len(lines[row]), 1)))
            row, j = row + 1, 0
        else:
            out.append((row + 1, j + 1))
            j += 1
    return tuple(out) or None
