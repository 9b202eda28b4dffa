"""Read YAML as located, plain data: safe events only, no tags, aliases or duplicate keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

import yaml

from .errors import Located, SpecError

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


@dataclass(frozen=True, eq=False)
class Node(Located):
    """A YAML value with its place: `value` is a dict[str, Node], list[Node] or a scalar."""

    value: object
    file: str
    line: int
    col: int
    key_line: int = 0  # for a mapping value: where its key stands (for "unknown key" errors)
    key_col: int = 0
    style: str | None = None  # scalar quoting style; None means plain
    end_line: int = 0

    def key_error(self, message: str) -> SpecError:
        """A SpecError at the key this value belongs to."""
        return SpecError(message, self.file, self.key_line or self.line, self.key_col or self.col)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses aliases (alias bombs) before expanding anything."""

    def compose_node(self, parent, index):  # noqa: D401 - PyYAML hook
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _YamlProblem("YAML aliases (*name) are not allowed in specs", event.start_mark)
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _YamlProblem(f"YAML anchors (&{anchor}) are not allowed in specs", event.start_mark)
        return super().compose_node(parent, index)


class _YamlProblem(Exception):
    """A refusal raised inside the composer, carrying PyYAML's mark."""

    def __init__(self, message, mark):
        super().__init__(message)
        self.message = message
        self.mark = mark


def parse_yaml(text: str, file: str) -> Node:
    """Parse one YAML document into located Nodes, or raise a located SpecError."""
    try:
        loader = _NoAliasLoader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except _YamlProblem as problem:
        raise SpecError(problem.message, file, problem.mark.line + 1, problem.mark.column + 1) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError(f"YAML syntax error: {message}", file, line, col) from None
    except yaml.YAMLError as exc:  # reader errors: control characters, bad encodings
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError(f"YAML error: {getattr(exc, 'problem', None) or exc}", file, line, col) from None
    except RecursionError:
        raise SpecError(f"YAML nesting is too deep (limit {MAX_DEPTH})", file, 1, 1) from None
    if root is None:
        raise SpecError("the spec is empty", file, 1, 1)
    return _convert(root, file, 0)


def _convert(node: yaml.Node, file: str, depth: int, key: yaml.Node | None = None) -> Node:
    """Turn a composed PyYAML node into a located Node, resolving scalars ourselves."""
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    if depth > MAX_DEPTH:
        raise SpecError(f"YAML nesting is too deep (limit {MAX_DEPTH})", file, line, col)
    if node.tag not in _STANDARD_TAGS:
        raise SpecError(f"YAML tag {node.tag!r} is not allowed in specs", file, line, col)
    extra = {"end_line": node.end_mark.line + 1}
    if key is not None:
        extra.update(key_line=key.start_mark.line + 1, key_col=key.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise SpecError("mapping keys must be plain words", file, k.start_mark.line + 1, k.start_mark.column + 1)
            name = str(k.value)
            if name in out:
                raise SpecError(
                    f'duplicate key "{name}" (first at line {out[name].key_line})',
                    file, k.start_mark.line + 1, k.start_mark.column + 1,
                )
            out[name] = _convert(v, file, depth + 1, key=k)
        return Node(out, file, line, col, **extra)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(v, file, depth + 1) for v in node.value], file, line, col, **extra)
    return Node(_resolve_scalar(node), file, line, col, style=node.style, **extra)


def _resolve_scalar(node: yaml.ScalarNode) -> Scalar:
    """Plain scalars become numbers, booleans or null; quoted ones stay strings."""
    text = node.value
    if node.style is not None:
        return text
    low = text.strip().lower()
    if _INT.match(low):
        return int(low)
    if _FLOAT.match(low):
        return float(low)
    if low in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[low]
    if low in _BOOLS:
        return _BOOLS[low]
    if low in _NULLS:
        return None
    return text

