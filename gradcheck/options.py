"""What a run was asked for, as typed values: the check mode and the run's options, built once at the edge.

Light on purpose (no numpy): the CLI builds a RunOptions from its flags before anything heavy loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import excerpt
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits

# bytes one batch of perturbed evaluations may use, unless --memory says otherwise: small enough to stay in
# cache (measured, benchmarks/results.md: 4-16 MiB beat 256 MiB by up to 2x at N = 1e5, and hold less)
BATCH_MEMORY = 8 * 2**20
FAST_DIRECTIONS = 2  # random directions in fast mode: joint across every param (gradcheck.fast), and each param's own
METHODS = ("central", "richardson", "complex-step")  # finite-difference methods (gradcheck.numeric)
MODE_HELP = "valid: full, fast, sample:K (K entries per param)"
DEFAULT_EXCLUDE = (".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "node_modules", "__pycache__")
MAX_SAMPLE = 10**9  # entries per param a sample may ask for (more than any param the limits allow)


# The valid range of every check setting, from a spec's `check:` or the command line (README, "Settings").
# Outside them a setting would hide a wrong derivation or break the arithmetic: rtol 1e-320 makes
# atol/rtol overflow to infinity (every error counts as 0); rtol or atol large enough, or a step so
# large that truncation swamps everything, passes any gradient; NaN and infinity compare false.
SETTING_RANGES = {
    "rtol": (1e-15, 0.1),  # relative tolerance: above round-off of float64, below "anything goes"
    "atol": (0.0, 1e-3),  # absolute floor under the per-entry numeric error
    "eps": (1e-300, 0.1),  # base step (normal floats: a subnormal step is no step)
}
MAX_SEED = 2**128  # seeds are 0 .. 2**128 - 1 (numpy's SeedSequence takes any; a bound keeps text short)
MAX_TIMEOUT = 1e6  # seconds (11.5 days): setitimer needs a finite number


def setting_problem(name: str, value: float) -> str | None:
    """Why `value` is not a valid `name` (rtol, atol, eps), or None when it is."""
    low, high = SETTING_RANGES[name]
    if not math.isfinite(value):
        return f"{name} must be a finite number, not {value}"
    if not low <= value <= high:
        shown = repr(value) if 0 < abs(value) < 1e-300 else f"{value:g}"  # subnormals print oddly with :g
        return f"{name} must be from {low:g} to {high:g}, not {shown}"
    return None


@dataclass(frozen=True)
class Mode:
    """How many entries a check compares: every one (full), K random ones (sample), or random directions (fast)."""

    kind: str  # "full" | "fast" | "sample"
    k: int | None = None  # entries per param, for "sample"

    @classmethod
    def parse(cls, text: str) -> Mode:
        """`full`, `fast` or `sample:K` (K an ASCII whole number, 1 to MAX_SAMPLE); ValueError naming the valid ones otherwise."""
        stripped = text.strip()
        if stripped in ("full", "fast"):
            return cls(stripped)
        head, colon, count = stripped.partition(":")
        if head == "sample" and colon:
            try:
                return cls("sample", whole_number(count, 1, MAX_SAMPLE, "K of sample:K"))
            except ValueError as exc:
                raise ValueError(f'mode "{excerpt(text)}": {exc}; {MODE_HELP}') from None  # the mode exists: K is wrong
        raise ValueError(f'no such mode: "{excerpt(text)}"; {MODE_HELP}')

    def __str__(self) -> str:
        return f"sample:{self.k}" if self.kind == "sample" else self.kind

    def entries(self, size: int) -> int:
        """Entries of a param of `size` entries this mode compares (fast mode may fall back to all of them)."""
        return min(size, self.k) if self.kind == "sample" else size


FULL = Mode("full")


def whole_number(text: str, low: int, high: int, what: str) -> int:
    """An ASCII whole number from `low` to `high`; ValueError saying why not, without echoing a long text.

    The one integer parser for text: int() alone reads Unicode digits ("١٢" is 12, "²" fails oddly)
    and spends quadratic time on (or refuses past 4,300) digits, so length and digits are checked first.
    """
    digits = text.strip().replace("_", "")
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"{what} must be a whole number written with the digits 0-9")
    if len(digits) > len(str(high)) or not low <= int(digits) <= high:
        raise ValueError(f"{what} must be from {low:,} to {high:,}")
    return int(digits)


@dataclass(frozen=True)
class RunOptions:
    """Everything a run was asked for; None means "the spec's `check:` value, else the default"."""

    rtol: float | None = None
    atol: float | None = None
    eps: float | None = None
    seed: int | None = None
    method: str | None = None
    mode: Mode | None = None
    memory: int | None = None  # bytes wanted for one batch of perturbed evaluations (None: BATCH_MEMORY)
    limits: Limits = DEFAULT_LIMITS
    jobs: int = 1
    settings_from: str = "spec"  # "spec": a spec's check: fills what the run left open; "cli": it is ignored
    keep_entries: bool = False  # keep per-entry arrays in results (verbose human output draws them)
    strict: bool = False  # a warning (lint.py) fails the spec
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE  # globs of files and folders not collected from folders
    force_exclude: bool = False  # --exclude applies to files named on the command line too (pre-commit)
    project: tuple[tuple[str, float], ...] = ()  # rtol/atol/eps of [tool.gradcheck]: below a spec's check:

    @classmethod
    def of(cls, mode: Mode | str | None = None, limits: Limits | None = None, **fields) -> RunOptions:
        """Options from keyword arguments (the Python API): a mode may be text, limits None."""
        if isinstance(mode, str):
            mode = Mode.parse(mode)
        return cls(mode=mode, limits=limits or DEFAULT_LIMITS, **fields)

    @property
    def batch_memory(self) -> int:
        """The batch budget asked for."""
        return self.memory or BATCH_MEMORY
