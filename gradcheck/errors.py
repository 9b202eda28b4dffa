"""The one domain exception: a problem in a spec, located at file:line:col."""

from __future__ import annotations


class SpecError(Exception):
    """An invalid or unusable spec, with the place in the file that caused it."""

    def __init__(self, message: str, file: str = "<spec>", line: int = 1, col: int = 1):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.col = col

    def __reduce__(self):
        # Exceptions pickle only `args`; keep the place too (results cross process boundaries with -j).
        return (SpecError, (self.message, self.file, self.line, self.col))

    @property
    def location(self) -> str:
        """The `file:line:col` prefix editors and CI annotations understand."""
        return f"{self.file}:{self.line}:{self.col}"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class Located:
    """Something with a place in the spec file; `error()` builds a SpecError there."""

    file: str
    line: int
    col: int

    def error(self, message: str) -> SpecError:
        """A SpecError pointing at this place."""
        return SpecError(message, self.file, self.line, self.col)
