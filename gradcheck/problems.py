"""Every problem of a spec as a value, the yamllint way: collected section by section, reported in file order.

The loader reads each independent piece (a top-level key, a declaration, a term, a define, an expect,
a check setting) inside `Collector.isolated()`: a SpecError there is recorded and loading goes on.
A problem that only follows from one already recorded (a define using a name whose declaration was
wrong) is a `Cascade`, and is dropped. Warnings and notes (lint.py) are Problems too.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from .errors import SpecError

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Problem:
    """One located finding in a spec: an error (the spec cannot be checked), a warning, or a note (info)."""

    message: str
    file: str
    line: int
    col: int
    severity: str = "error"

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"

    def to_json(self) -> dict:
        return {"line": self.line, "col": self.col, "message": self.message, "severity": self.severity}


def problem_of(exc: SpecError) -> Problem:
    """A SpecError as an error Problem."""
    return Problem(exc.message, exc.file, exc.line, exc.col)


class Cascade(SpecError):
    """A problem caused by one already reported (a name whose declaration failed): not reported again."""


class SpecProblems(SpecError):
    """Several independent errors in one spec; as a SpecError it is the first of them, in file order."""

    def __init__(self, problems):
        problems = tuple(problems)
        first = problems[0]
        super().__init__(first.message, first.file, first.line, first.col)
        self.problems = problems

    def __reduce__(self):  # crosses process boundaries with -j, problems included
        return (SpecProblems, (self.problems,))


def problems_of(exc: SpecError) -> tuple[Problem, ...]:
    """Every problem an error carries (one, unless the loader collected several)."""
    return getattr(exc, "problems", None) or (problem_of(exc),)


class Collector:
    """The errors found so far while loading one spec."""

    def __init__(self):
        self.found: list[Problem] = []
        self.raised: list[SpecError] = []

    @contextmanager
    def isolated(self) -> Iterator[None]:
        """Run one independent piece: its SpecError is recorded (a Cascade dropped), and loading goes on."""
        try:
            yield
        except Cascade:
            pass
        except SpecError as exc:
            self.raised.append(exc)
            self.found.extend(problems_of(exc))

    def raise_any(self) -> None:
        """Raise what was found, in file order: the SpecError itself when there is one, SpecProblems for more."""
        if not self.found:
            return
        if len(self.found) == 1:
            raise self.raised[0]
        raise SpecProblems(sorted(self.found, key=lambda p: (p.line, p.col)))
