"""What a run was asked for, as typed values: the check mode and the run's options, built once at the edge.

Light on purpose (no numpy): the CLI builds a RunOptions from its flags before anything heavy loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import Limits

# bytes one batch of perturbed evaluations may use, unless --memory says otherwise: small enough to stay in
# cache (measured, benchmarks/results.md: 4-16 MiB beat 256 MiB by up to 2x at N = 1e5, and hold less)
BATCH_MEMORY = 8 * 2**20
FAST_DIRECTIONS = 2  # random directions per param in fast mode (gradcheck.check)
METHODS = ("central", "richardson", "complex-step")  # finite-difference methods (gradcheck.numeric)
MODE_HELP = "valid: full, fast, sample:K (K entries per param)"


@dataclass(frozen=True)
class Mode:
    """How many entries a check compares: every one (full), K random ones (sample), or random directions (fast)."""

    kind: str  # "full" | "fast" | "sample"
    k: int | None = None  # entries per param, for "sample"

    @classmethod
    def parse(cls, text: str) -> Mode:
        """`full`, `fast` or `sample:K` (K a positive whole number); ValueError naming the valid ones otherwise."""
        stripped = text.strip()
        if stripped in ("full", "fast"):
            return cls(stripped)
        head, colon, count = stripped.partition(":")
        if head == "sample" and colon and count.strip().isdigit():
            k = _whole(count)
            if k is not None and k > 0:
                return cls("sample", k)
        raise ValueError(f'no such mode: "{text}"; {MODE_HELP}')

    def __str__(self) -> str:
        return f"sample:{self.k}" if self.kind == "sample" else self.kind

    def entries(self, size: int) -> int:
        """Entries of a param of `size` entries this mode compares (fast mode may fall back to all of them)."""
        return min(size, self.k) if self.kind == "sample" else size


FULL = Mode("full")


def _whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:  # a digit int() does not read, such as "²"
        return None


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
    keep_entries: bool = False  # keep per-entry arrays in results (verbose human output draws them)

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
