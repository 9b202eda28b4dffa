"""libyaml reads every spec through the same composer as PyYAML's Python parser: the same located tree.

yamlsrc.parse_yaml uses libyaml (CSafeLoader) for every file and the Python parser only as the fallback that
says what it found. These tests prove the two give the same tree, the same locations and the same refusals,
on every bundled spec, fixture and hostile input and on inputs made to find differences (non-ASCII before a
value, CRLF, a BOM, tabs, block and flow scalars, anchors, tags, duplicate keys, `1e-6`).
"""

import glob

import pytest
import yaml

from gradcheck import yamlsrc
from gradcheck.errors import SpecError

pytestmark = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")

FILES = sorted(set(glob.glob("specs/**/*.yaml", recursive=True) + glob.glob("tests/**/*.yaml", recursive=True)
                   + glob.glob("examples/**/*.yaml", recursive=True)))
MADE = {
    "non_ascii_before_values": "name: café ünïcødé — spec\nparams: {Wé: {shape: [2, 3]}, b: 1e-6}\nx: [1, 2, 'é', 3]\n",
    "crlf": "name: crlf\r\nparams:\r\n  W: {shape: [2, 2]}\r\nlayers:\r\n  - {weight: W}\r\n",
    "bom": "\ufeffname: bom\nparams: {W: 1}\n",
    "tabs_in_values": "name: \"a\\tb\"\ntext: 'x\ty'\n",
    "block_scalars": "expect:\n  W: |\n    2 * W\n    + 1\n  b: >-\n    folded\n    text\nc: \"multi\n  line\"\n",
    "flow_nested": "a: {b: [1, {c: [2, 3]}, -.inf, .nan, ~, true, 0x1F, 1_000]}\n",
    "numbers": "a: 1e-6\nb: -2.5E+3\nc: .5\nd: '1e-6'\ne: 007\nf: +1\n",
    "anchor": "a: &x 1\nb: *x\n",
    "alias_key": "a: 1\n*x : 2\n",
    "merge": "base: &b {x: 1}\nother: {<<: *b}\n",
    "python_tag": "a: !!python/object:os.system ls\n",
    "binary_tag": "a: !!binary aGVsbG8=\n",
    "local_tag": "a: !custom 1\n",
    "duplicate_key": "a: 1\nb: 2\na: 3\n",
    "two_documents": "a: 1\n---\nb: 2\n",
    "empty": "",
    "comment_only": "# nothing\n",
    "complex_key": "? [1, 2]\n: 3\n",
    "syntax": "a: [1, 2\nb: 3\n",
    "bad_indent": "a:\n  b: 1\n c: 2\n",
    "unicode_escape": "a: \"\\u00e9\\U0001F600\"\n",
    "wide_chars_then_error": "name: 漢字漢字: x\n",
    "deep_block": "".join("  " * i + f"k{i}:\n" for i in range(70)) + "  " * 70 + "v: 1\n",
}


def tree(node):
    """Everything a Node says, recursively: value, kind, file, places, style."""
    value = node.value
    if isinstance(value, dict):
        value = tuple((key, tree(child)) for key, child in value.items())
    elif isinstance(value, list):
        value = tuple(tree(child) for child in value)
    elif isinstance(value, float) and value != value:
        value = "nan"
    return (value, type(node.value).__name__, node.file, node.line, node.col, node.key_line, node.key_col,
            node.style, node.end_line)


def outcome(parse):
    try:
        return tree(parse())
    except SpecError as error:
        return ("error", error.line, error.col, str(error))


def python_parser(text):
    return outcome(lambda: yamlsrc._parse_with(yaml.SafeLoader, text, "s.yaml"))


def read(path):
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", errors="surrogateescape")


# the made-up edge cases and the hostile files in the quick loop; every bundled spec and fixture in the full suite
CASES = [(path, None) if "hostile" in path else pytest.param(path, None, marks=pytest.mark.slow) for path in FILES] + \
    [(name, text) for name, text in MADE.items()]


@pytest.mark.parametrize("name, text", CASES, ids=[c.values[0] if hasattr(c, "values") else c[0] for c in CASES])
def test_libyaml_gives_the_python_parsers_tree_locations_and_refusals(name, text):
    text = read(name) if text is None else text
    want = python_parser(text)
    assert outcome(lambda: yamlsrc.parse_yaml(text, "s.yaml")) == want
    if want[0] != "error" and not yamlsrc._NOT_PRINTABLE.search(text):  # libyaml itself, not a fallback
        assert outcome(lambda: yamlsrc._parse_with(yaml.CSafeLoader, text, "s.yaml")) == want


def test_every_valid_bundled_spec_is_read_by_libyaml(monkeypatch):
    """The Python parser is not called on valid files (it is the error fallback)."""
    def refuse(*args):
        raise AssertionError("the Python parser was used")
    monkeypatch.setattr(yaml, "SafeLoader", refuse)
    for path in sorted(glob.glob("specs/*.yaml")):
        yamlsrc.parse_yaml(read(path), path)
