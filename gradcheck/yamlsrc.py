"""Read YAML as located, plain data: safe events only, no tags, aliases or duplicate keys."""

from __future__ import annotations

import re
import unicodedata
from typing import Union

import yaml

from .errors import Located, SpecError, excerpt, place_in

Scalar = Union[str, int, float, bool, None]

# YAML 1.1 (PyYAML) reads `1e-6` as a string; users mean a number, so scalars are resolved here.
_INT = re.compile(r"[-+]?[0-9]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_SPECIAL_FLOATS = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"), ".nan": float("nan")}
_BOOLS = {"true": True, "false": False}
_NULLS = {"", "~", "null"}
# Tags PyYAML's safe resolver gives plain nodes; any other (e.g. !!python/object, !!binary) was
# written explicitly in the file and is refused.
_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge", "value")
}
MAX_DEPTH = 64
# Bidirectional overrides and isolates reorder how text is displayed ("Trojan Source").
_BIDI_CONTROLS = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


class Node(Located):
    """A YAML value with its place: `value` is a dict[str, Node], list[Node] or a scalar. Read-only by use.

    A plain class with slots rather than a frozen dataclass: a 1 MB spec can hold 300,000 nodes,
    and a frozen dataclass's __init__ costs four times as much.
    """

    # "source": the whole spec text, on the root node only (set by parse_yaml; never assigned elsewhere,
    # so the other nodes pay nothing): where a multi-line expression's characters stand
    __slots__ = ("value", "file", "line", "col", "key_line", "key_col", "style", "end_line", "source")

    def __init__(self, value: object, file: str, line: int, col: int, key_line: int = 0, key_col: int = 0,
                 style: str | None = None, end_line: int = 0):
        self.value = value
        self.file = file
        self.line = line
        self.col = col
        self.key_line = key_line  # for a mapping value: where its key stands (for "unknown key" errors)
        self.key_col = key_col
        self.style = style  # scalar quoting style; None means plain
        self.end_line = end_line

    def __repr__(self) -> str:
        return f"Node({self.value!r}, {self.file!r}, {self.line}, {self.col})"

    def key_error(self, message: str) -> SpecError:
        """A SpecError at the key this value belongs to."""
        return SpecError(message, self.file, self.key_line or self.line, self.key_col or self.col)


# Every file is read by libyaml when it is present (a small spec in 0.6 ms against 4.2 ms for PyYAML's Python
# parser), through the same composer below: its events carry the same marks, so the tree, every location and
# every refusal are the Python parser's (tests/test_yaml_readers.py compares them on every bundled spec, fixture and
# hostile input). The Python parser is the fallback that says what it found: a file libyaml refuses is re-read
# by it (up to the error, for a file larger than PYTHON_PARSER_BYTES), and so is text with characters its
# reader refuses up front (control characters, lone surrogates), which it locates.
PYTHON_PARSER_BYTES = 64 * 1024
_NOT_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE


class _YamlProblem(Exception):
    """A refusal raised while composing, carrying PyYAML's mark."""

    def __init__(self, message, mark):
        super().__init__(message)
        self.message = message
        self.mark = mark


def parse_yaml(text: str, file: str) -> Node:
    """Parse one YAML document into located Nodes, or raise a located SpecError; the root keeps the text."""
    root = _parse_yaml(text, file)
    root.source = text
    return root


_YAML_ONLY_BREAKS = {"\x85": "NEXT LINE", "\u2028": "LINE SEPARATOR", "\u2029": "PARAGRAPH SEPARATOR"}


def _refuse_yaml_only_breaks(text: str, file: str) -> None:
    """U+0085, U+2028 and U+2029 end a line for YAML and not for editors, so every location after one would be a
    line off: the first is refused, located where an editor shows it."""
    found = [i for i in (text.find(ch) for ch in _YAML_ONLY_BREAKS) if i >= 0]
    if found:
        at = min(found)
        raise SpecError(f"character U+{ord(text[at]):04X} ({_YAML_ONLY_BREAKS[text[at]]}) ends a line for YAML but "
                        "not for editors; it is not allowed in a spec's text", file, *place_in(text, at))


def _parse_yaml(text: str, file: str) -> Node:
    fast = getattr(yaml, "CSafeLoader", None) if yaml.__with_libyaml__ else None
    if fast is None or _NOT_PRINTABLE.search(text):
        return _parse_with(yaml.SafeLoader, text, file)
    try:
        return _parse_with(fast, text, file)
    except SpecError as exc:
        if len(text) <= PYTHON_PARSER_BYTES:  # the Python parser's own message (or its tree, were it to accept)
            return _parse_with(yaml.SafeLoader, text, file)
        if isinstance(exc, _SyntaxError) and exc.index <= PYTHON_PARSER_BYTES:  # re-read up to the error
            try:
                _parse_with(yaml.SafeLoader, text[: _line_end(text, exc.index)], file)
            except SpecError as better:
                if (better.line, better.col) == (exc.line, exc.col):
                    raise better from None
        raise


class _SyntaxError(SpecError):
    """A YAML syntax error, remembering the character index where it was found."""

    index: int = 1 << 62


def _line_end(text: str, index: int) -> int:
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def _parse_with(loader_class, text: str, file: str) -> Node:
    """Run one loader's event stream through the composer below, turning every failure into a SpecError."""
    _refuse_yaml_only_breaks(text, file)  # before either parser: both would count lines past it differently
    try:
        loader = loader_class(text)
    except yaml.YAMLError as exc:  # the Python reader checks every character up front
        raise _located(exc, file, text) from None
    try:
        return _Composer(loader, file).document()
    except _YamlProblem as problem:
        raise SpecError(problem.message, file, problem.mark.line + 1, problem.mark.column + 1) from None
    except yaml.YAMLError as exc:
        raise _located(exc, file, text) from None
    except RecursionError:
        raise SpecError(f"YAML nesting is too deep (limit {MAX_DEPTH} levels)", file, 1, 1) from None
    finally:
        loader.dispose()


def _located(exc: yaml.YAMLError, file: str, text: str = "") -> SpecError:
    """A PyYAML or libyaml error as a located SpecError (syntax errors carry marks; reader errors positions)."""
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.character, int):
        name = unicodedata.name(chr(exc.character), "a control character")
        return SpecError(f"character U+{exc.character:04X} ({name}) is not allowed in YAML", file,
                         *place_in(text, exc.position))
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        error = _SyntaxError(f"YAML syntax error: {message}", file, *_mark(mark))
        if mark is not None:
            error.index = mark.index
        return error
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "mark", None)
    problem = getattr(exc, "reason", None) or getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return SpecError(f"YAML error: {problem}", file, *_mark(mark))


def _mark(mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


class _Composer:
    """Builds located Nodes straight from parser events, refusing what a spec may not contain.

    Aliases and anchors are refused as they are met, so an alias bomb is never expanded; nesting
    is counted, so `[[[[...` stops at the level that goes too deep; explicit tags other than the
    plain YAML ones (e.g. !!python/object) and duplicate keys are refused at their place.
    """

    def __init__(self, loader, file: str):
        self.loader = loader
        self.file = file

    def document(self) -> Node:
        get, check = self.loader.get_event, self.loader.check_event
        get()  # StreamStart
        if check(yaml.StreamEndEvent):
            raise SpecError("the spec is empty", self.file, 1, 1)
        get()  # DocumentStart
        root = self.node(0)
        get()  # DocumentEnd
        if not check(yaml.StreamEndEvent):
            event = self.loader.peek_event()
            raise _YamlProblem("YAML syntax error: expected a single document in the stream but found another "
                               "document", event.start_mark)
        get()
        return root

    def node(self, depth: int, key=None) -> Node:
        event = self.loader.get_event()
        kind = type(event)
        if kind is yaml.AliasEvent:
            raise _YamlProblem(f"YAML aliases (*{event.anchor}) are not allowed in specs", event.start_mark)
        if event.anchor is not None:
            raise _YamlProblem(f"YAML anchors (&{event.anchor}) are not allowed in specs", event.start_mark)
        if depth > MAX_DEPTH:
            raise _YamlProblem(f"YAML nesting is too deep (limit {MAX_DEPTH} levels)", event.start_mark)
        tag = event.tag
        if tag is not None and tag != "!" and tag not in _STANDARD_TAGS:
            raise _YamlProblem(f"YAML tag {tag!r} is not allowed in specs", event.start_mark)
        start = event.start_mark
        key_line, key_col = (key.start_mark.line + 1, key.start_mark.column + 1) if key is not None else (0, 0)
        if kind is yaml.ScalarEvent:  # the common case, kept short: a 1 MB list has 300,000 of them
            if not event.value.isprintable():
                _require_text(event, self.file)
            style = event.style or None  # libyaml says '' for plain, the Python parser None
            return Node(_resolve_scalar(event.value, style), self.file, start.line + 1, start.column + 1, key_line,
                        key_col, style, event.end_mark.line + 1)
        check = self.loader.check_event
        if kind is yaml.SequenceStartEvent:
            items = []
            while not check(yaml.SequenceEndEvent):
                items.append(self.node(depth + 1))
            end = self.loader.get_event()
            return Node(items, self.file, start.line + 1, start.column + 1, key_line, key_col,
                        end_line=end.end_mark.line + 1)
        out: dict[str, Node] = {}
        while not check(yaml.MappingEndEvent):
            k = self.loader.peek_event()
            if type(k) is not yaml.ScalarEvent:
                if type(k) is yaml.AliasEvent or getattr(k, "anchor", None) is not None:
                    self.node(depth + 1)  # raises the alias/anchor refusal
                raise _YamlProblem("mapping keys must be plain words", k.start_mark)
            key_node = self.node(depth + 1)
            name = str(k.value)
            if name in out:
                raise SpecError(f'duplicate key "{excerpt(name)}" (first at line {out[name].key_line})',
                                self.file, key_node.line, key_node.col)
            out[name] = self.node(depth + 1, key=k)
        end = self.loader.get_event()
        return Node(out, self.file, start.line + 1, start.column + 1, key_line, key_col,
                    end_line=end.end_mark.line + 1)


def _require_text(node, file: str) -> None:
    """Refuse scalars that cannot be printed or encoded: lone surrogates and control characters.

    A double-quoted YAML string can spell any code point (\\e, \\x1b, \\ud800); echoed into a report,
    such characters would drive the reader's terminal or crash the encoder.
    """
    text = node.value
    if not isinstance(text, str) or text.isprintable():
        return
    for ch in text:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF or code in _BIDI_CONTROLS or (unicodedata.category(ch) == "Cc"
                                                                  and ch not in "\t\n\r"):
            raise SpecError(f"character U+{code:04X} ({_char_name(ch)}) is not allowed in a spec's text",
                            file, node.start_mark.line + 1, node.start_mark.column + 1)


def _char_name(ch: str) -> str:
    """A character's Unicode name, or its category when it has none."""
    return unicodedata.name(ch, None) or {"Cc": "a control character", "Cs": "a lone surrogate"}.get(
        unicodedata.category(ch), "an unprintable character")


def _resolve_scalar(text: str, style: str | None) -> Scalar:
    """Plain scalars become numbers, booleans or null; quoted ones stay strings."""
    if style is not None:
        return text
    low = text.strip().lower()
    if _INT.match(low):
        # Python refuses to convert more than 4300 digits (a CPU guard); any such number is out of range
        return int(low) if len(low) <= 400 else float(low)
    if _FLOAT.match(low):
        return float(low)
    if low in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[low]
    if low in _BOOLS:
        return _BOOLS[low]
    if low in _NULLS:
        return None
    return text

