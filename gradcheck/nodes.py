"""Reading the located YAML tree: where a node stands, and what kind of value it must hold."""

from __future__ import annotations

import math

from .errors import excerpt
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
