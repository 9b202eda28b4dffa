"""One escaping function per output format: every text that comes from a spec or a path goes through it.

- human: control, C1 and bidirectional characters escaped (`\\x1b`, `\\u202e`), and no line of the
  stream may begin (after blanks) with `::` or `##[`: CI runners read such a line as a workflow
  command (GitHub Actions trims leading blanks before it looks), so a spec named
  `::error file=README.md::…` could raise annotations, mask text or stop command processing.
- github: the toolkit's escapes (%, CR, LF; in properties also `:` and `,`) after the human ones.
- junit: the human escapes line by line, then whatever XML 1.0 cannot carry at all.
- html: the human escapes of non-printable characters (no command defusing: a browser runs no CI
  commands), then &, <, >, " and ' as entities (the HTML report, its inline SVG too).
- json: by construction (json.dumps), plus DEL, C1 and bidi characters as \\uXXXX so that a raw
  report shown on a terminal cannot act on it.

Kept free of rich and numpy: stderr messages use it before anything heavy loads.
"""

from __future__ import annotations

import re
from typing import IO

# A line a CI runner would take for a command: `::name …` (GitHub), `##[…` / `##vso[…` (Azure).
_COMMAND = re.compile(r"^(\s*)(::|##(?:vso)?\[)", re.MULTILINE)


def _escaped(ch: str) -> str:
    return ch.encode("unicode_escape", "backslashreplace").decode("ascii")


def human(text: str) -> str:
    """Text for a terminal or a log: every non-printable character escaped (C0, DEL, C1, bidi, line
    separators, tab and newline: `\x1b`, `\u202e`), and no command-like line start."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() or ch == " " else _escaped(ch) for ch in text)
    return defuse(text)


def defuse(text: str) -> str:
    """Every line that would read as a CI workflow command gets a backslash before its `::` or `##`."""
    return _COMMAND.sub(r"\1\\\2", text)


def github_data(text: str) -> str:
    """A workflow command's message: GitHub's escapes (%, CR, LF), then the human ones for the rest."""
    return human(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def github_property(text: str) -> str:
    """A workflow command's property value (file, title): also ':' and ','."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml(text: str) -> str:
    """Text for an XML attribute or element: human escapes line by line, no character XML 1.0 forbids."""
    text = "\n".join(human(line) for line in text.split("\n"))
    return _NOT_XML.sub(lambda m: _escaped(m.group()), text)


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def json_text(dumped: str) -> str:
    """A json.dumps result with DEL, C1 and bidi characters as \\uXXXX (the same JSON value)."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


class CommandSafeStream:
    """A text stream that defuses command-like line starts, whatever wrote the line (rich wraps long lines).

    Whole lines are passed on as they end; a partial line waits for its end, or for close().
    """

    def __init__(self, out: IO[str]):
        self.out = out
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        cut = self.pending.rfind("\n") + 1
        if cut:
            self.out.write(defuse(self.pending[:cut]))
            self.pending = self.pending[cut:]
        return len(text)

    def flush(self) -> None:
        """Pass on a partial line too once its start is settled (it cannot become a command any more)."""
        head = self.pending.lstrip()
        if head and not _COMMAND.match(head) and head[:2] not in (":", "#", "##"):
            self.out.write(self.pending)
            self.pending = ""
        self.out.flush()

    def close(self) -> None:
        """Write the last, unfinished line."""
        if self.pending:
            self.out.write(defuse(self.pending))
            self.pending = ""
        self.out.flush()

    def __getattr__(self, name):  # isatty, fileno, encoding: the real stream's
        return getattr(self.out, name)


def html(text: str) -> str:
    """Text for HTML (and inline SVG) content or a quoted attribute: non-printable characters shown escaped
    as the human format shows them, then &, <, >, " and ' as entities, so a spec cannot add markup."""
    import html as html_module

    if not text.isprintable():
        text = "".join(ch if ch.isprintable() or ch == " " else _escaped(ch) for ch in text)
    return html_module.escape(text, quote=True)
