"""The one domain exception: a problem in a spec, located at file:line:col."""

from __future__ import annotations


class SpecError(Exception):
    """An invalid or unusable spec, with the place in the file that caused it."""

    def __init__(self, message: str, file: str = "<spec>", line: int = 1, col: int = 1):
        message = one_line(message)
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.col = col

    def __reduce__(self):
        # Exceptions pickle only `args`; keep the place too (results cross process boundaries with -j),
        # and the subclass (an internal-error row must stay one).
        return (type(self), (self.message, self.file, self.line, self.col))

    @property
    def location(self) -> str:
        """The `file:line:col` prefix editors and CI annotations understand."""
        return f"{self.file}:{self.line}:{self.col}"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


def place_in(text: str | bytes, offset: int) -> tuple[int, int]:
    """(line, column), both from 1, of a character (or byte) offset, lines counted by newline as editors do."""
    newline = b"\n" if isinstance(text, bytes) else "\n"
    return text.count(newline, 0, offset) + 1, offset - (text.rfind(newline, 0, offset) + 1) + 1


MAX_MESSAGE = 2000  # characters; longer messages are user text echoed back (a 1 MB key name)


def one_line(message: str) -> str:
    """A message as one line (a report row, a CI annotation): line breaks escaped, runaway length cut."""
    message = message.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")
    if len(message) > MAX_MESSAGE:
        cut = len(message) - MAX_MESSAGE
        message = f"{message[:MAX_MESSAGE // 2]} … ({cut:,} characters left out) … {message[-MAX_MESSAGE // 2:]}"
    return message


EXCERPT = 24  # characters of a text that is not (yet) known to be a spec's own words


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """A short excerpt of user text for a message: at most `limit` characters, control characters escaped.

    A file that is not a spec (a token someone named *.yaml) must not be echoed whole into a CI log.
    """
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in cut)
    return cut + (f"… ({len(text):,} characters)" if len(text) > limit else "")


class Located:
    """Something with a place in the spec file; `error()` builds a SpecError there."""

    file: str
    line: int
    col: int

    def error(self, message: str) -> SpecError:
        """A SpecError pointing at this place."""
        return SpecError(message, self.file, self.line, self.col)


class TopOfFile(Located):
    """The first line of a spec file: where a problem without a better place is reported."""

    def __init__(self, file: str):
        self.file, self.line, self.col = file, 1, 1
