"""Resource limits for untrusted specs: one frozen table of figures, each with the option that raises it.

A spec can never raise its own limits; only the person running gradcheck can (CLI options, or
`Limits(...)` through the Python API). Every refusal names the figure, the limit and the option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

KB, MB, GB = 10**3, 10**6, 10**9

# The expression compiler and evaluator recurse once per nesting level (a few Python frames per
# level), so the depth limit may be raised only this far below the interpreter's recursion limit.
EXPRESSION_DEPTH_CEILING = 200


@dataclass(frozen=True)
class Limits:
    """What one spec may ask for. Defaults are generous for hand-written specs."""

    file_size: int = 1 * MB  # bytes of the spec file
    elements: int = 1_000_000  # numbers in any one matrix, declared or computed
    total_elements: int = 5_000_000  # numbers in all declared matrices together
    expression_length: int = 2000  # characters of one expression
    expression_depth: int = 40  # nesting levels of one expression
    layers: int = 256  # layers in one term
    terms: int = 64  # terms in one spec
    steps: int = 200_000  # finite-difference evaluations of J (two per param entry, central differences)
    recurrent_steps: int = 1000  # time steps one recurrent layer unrolls into
    unfolded: int = 10_000_000  # numbers a structured layer holds for one evaluation (im2col, outputs)
    memory: int = 1 * GB  # estimated peak bytes of the whole check
    timeout: float | None = 120.0  # seconds per spec in a batch run; None or 0: no limit

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "timeout":
                if value is not None and not 0 <= value <= 1e6:  # NaN and infinity fail this too
                    raise ValueError(f"timeout must be from 0 to 1e6 seconds, not {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"limit {f.name} must be a whole number >= 1, not {value!r}")
        if self.expression_depth > EXPRESSION_DEPTH_CEILING:
            raise ValueError(f"expression depth cannot exceed {EXPRESSION_DEPTH_CEILING} "
                             f"(the interpreter's recursion bounds it)")

    def raised(self, **changes) -> "Limits":
        """A copy with some figures changed; None values keep the current figure."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


DEFAULT = Limits()

# Limits field -> (CLI option, unit shown in help). The option names appear in every refusal.
OPTIONS = {
    "file_size": ("--max-file-size", "SIZE"),
    "elements": ("--max-elements", "N"),
    "total_elements": ("--max-total-elements", "N"),
    "expression_length": ("--max-expression-length", "N"),
    "expression_depth": ("--max-expression-depth", "N"),
    "layers": ("--max-layers", "N"),
    "terms": ("--max-terms", "N"),
    "steps": ("--max-steps", "N"),
    "recurrent_steps": ("--max-recurrent-steps", "N"),
    "unfolded": ("--max-unfolded", "N"),
    "memory": ("--max-memory", "SIZE"),
    "timeout": ("--timeout", "SECONDS"),
}

HELP = {
    "file_size": "Largest spec file, in bytes (suffixes K, M, G allowed).",
    "elements": "Most numbers in any one matrix, declared or computed (a layer's z, an expression's intermediate).",
    "total_elements": "Most numbers in all declared matrices of a spec together.",
    "expression_length": "Longest expression, in characters.",
    "expression_depth": f"Deepest nesting of an expression (at most {EXPRESSION_DEPTH_CEILING}).",
    "layers": "Most layers in one term.",
    "terms": "Most terms in one spec.",
    "steps": "Most finite-difference evaluations of J per spec (two per param entry for central differences).",
    "recurrent_steps": "Most time steps in one recurrent layer.",
    "unfolded": "Most numbers a conv, maxpool or recurrent layer holds for one evaluation (im2col, outputs).",
    "memory": "Largest estimated memory of one spec's check, in bytes (suffixes K, M, G allowed).",
    "timeout": "Seconds one spec may take (loading and checking); 0 means no limit.",
}


def hint(field: str) -> str:
    """How to raise a limit: 'raise it with --max-elements'."""
    return f"raise it with {OPTIONS[field][0]}"


def count(n: int | float) -> str:
    """A count as people read it: 1,000,000; absurd figures in scientific notation."""
    n = int(n)
    if abs(n) >= 10**15:  # digits, not float(): a dimension may be far beyond any float
        digits = str(abs(n))
        return f"{'-' * (n < 0)}{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"
    return f"{n:,}"


def size(n_bytes: int | float) -> str:
    """Bytes as people read them: 1.5 GB, 640 kB, 12 bytes."""
    for unit, scale in (("GB", GB), ("MB", MB), ("kB", KB)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{int(n_bytes)} bytes"


_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([kKmMgG]?)[bB]?\s*\Z")


def parse_size(text: str) -> int:
    """'5M', '200k', '1.5G', '1000000' -> bytes (decimal units); ValueError if it is none of those."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"not a size: {text!r} (write a number of bytes, optionally with K, M or G)")
    scale = {"": 1, "k": KB, "m": MB, "g": GB}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)
