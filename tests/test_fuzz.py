"""Fuzzing: whatever the input, a result or one located SpecError comes back, quickly.

Random bytes, token soups, mutations of the bundled specs and random expressions (inside and
outside the grammar) go through the same path as `gradcheck run` (guard.check_one: load, check,
time limit). Each case must end in pass/fail, or in an error whose message is one line
`file:line:col: ...` with line and col >= 1 pointing inside the file, within a few seconds; no
other exception, no numpy warning, no timeout.

Budget: each test runs a few dozen examples by default, so that the whole file stays well under a
minute on a shared 2-core CI machine. Set GRADCHECK_FUZZ_EXAMPLES=N for N examples per test.
"""

from __future__ import annotations

import copy
import os
import time
import warnings

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.guard import InternalError, check_one
from gradcheck.limits import Limits
from conftest import BUNDLED

pytestmark = pytest.mark.slow  # fuzzing: many generated cases

FUZZ_EXAMPLES = int(os.environ.get("GRADCHECK_FUZZ_EXAMPLES", "0"))
# Tight limits keep every accepted case cheap to check; the fuzz is about robustness, not size.
LIMITS = Limits(elements=20_000, total_elements=60_000, steps=4_000, memory=200 * 10**6, timeout=10)
SECONDS = 5.0  # "within a few seconds", per case
BUNDLED_TREES = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in BUNDLED}


def budget(default: int):
    """Hypothesis settings with this test's share of the time budget (or GRADCHECK_FUZZ_EXAMPLES)."""
    return settings(max_examples=FUZZ_EXAMPLES or default, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])


def contained(path, raw: bytes) -> None:
    """The contract for one file: a result, or a located one-line SpecError, within SECONDS."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning may leak to the user's terminal
        result = check_one(str(path), LIMITS)
    elapsed = time.perf_counter() - started
    assert result.status in ("pass", "fail", "error")
    assert elapsed < SECONDS, f"took {elapsed:.1f} s"
    if result.status != "error":
        assert result.params and result.message is None
        return
    error = result.error
    note(result.message)
    assert isinstance(error, gradcheck.SpecError) and not isinstance(error, InternalError), result.message
    assert "gave up after" not in error.message, "a fuzz case ran into the time limit"
    assert error.file == str(path)
    lines = raw.count(b"\n") + 1
    assert error.line in range(1, lines + 2), (error.line, lines)
    assert error.col >= 1
    try:  # issue 15: no column past the end of its line (folded and multi-line scalars were); the place
        source_lines = raw.decode("utf-8").split("\n")  # just after the last character (an empty value) is fine
    except UnicodeDecodeError:
        source_lines = None
    if source_lines is not None and error.line <= len(source_lines):
        assert error.col <= len(source_lines[error.line - 1].rstrip("\r")) + 1, (error.line, error.col)
    assert result.message == f"{path}:{error.line}:{error.col}: {error.message}"
    assert error.message and "\n" not in result.message and "Traceback" not in result.message


def write(tmp_path_factory, raw: bytes):
    path = tmp_path_factory.mktemp("fuzz") / "case.yaml"
    path.write_bytes(raw)
    return path


def check_bytes(tmp_path_factory, raw: bytes) -> None:
    note(repr(raw[:2000]))
    contained(write(tmp_path_factory, raw), raw)


def check_text(tmp_path_factory, text: str) -> None:
    check_bytes(tmp_path_factory, text.encode("utf-8", "surrogatepass"))


# ----------------------------------------------------------------------------- bytes and token soups


@budget(300)
@given(st.binary(max_size=3000))
def test_random_bytes(tmp_path_factory, raw):
    check_bytes(tmp_path_factory, raw)


TOKENS = [
    "params:", "data:", "input:", "layers:", "objective:", "terms:", "define:", "expect:", "check:", "seed:",
    "name:", "shape:", "init:", "weight:", "bias:", "activation:", "loss:", "target:", "reduce:", "coef:",
    "f:", "df:", "eps:", "rtol:", "atol:", "low:", "high:", "std:", "mean:", "p:",
    "W", "W.T", "x", "y", "b", "I", "z", "r", "tanh", "sigmoid", "log", "sqrt", "relu", "softmax", "square",
    "exp", "abs", "power", "sub", "add", "scale", "sum", "mean", "normal", "uniform", "eye", "onehot",
    "binary", "cross_entropy", "squared_error", "binary_cross_entropy",
    "{", "}", "[", "]", ",", ":", "- ", "? ", "\n", "\n  ", "\n    ", "  ", " ", "\t", "#", "'", '"', "|", ">",
    "---", "...", "&a ", "*a", "!!python/object/apply:os.system ", "!!binary ", "!foo ", "<<: ", "%YAML 1.1\n",
    "0", "1", "-1", "2", "3", "1e-6", "1e308", "-1e308", "1e999", ".inf", "-.inf", ".nan", "99999999999999999999",
    "0.5", "[2, 3]", "[3, 2]", "[1000000, 1000000]", "[-1, 2]", "[0, 0]", "[[1, 2], [3, 4]]", "[1, 2, 3]",
    "W @ x", "W ** 2", "sum(W, axis=1)", "__import__('os')", "W.__class__", "lambda: 0", "[w for w in W]",
    "é", "∑", "\u202e", "\x1b[31m", "\ud800", "\x00", "\ufeff", "\\e", "\\x1b", "\\ud800", "ÿ",
]


@budget(400)
@given(st.lists(st.sampled_from(TOKENS), max_size=60))
def test_token_soup(tmp_path_factory, tokens):
    check_text(tmp_path_factory, "".join(tokens))


@budget(200)
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.sampled_from(BUNDLED))
def test_token_soup_spliced_into_a_bundled_spec(tmp_path_factory, tokens, path):
    text = path.read_text(encoding="utf-8")
    cut = len(text) // 2
    check_text(tmp_path_factory, text[:cut] + "".join(tokens) + text[cut:])


# ----------------------------------------------------------------------------- mutations of bundled specs

WRONG_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.sampled_from([0, -1, 1, 2, 10**12, -10**12]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 1e-308, 5e-324]),
    st.text(max_size=30), st.sampled_from(["", "W", "W.T", "x", "tanh", "log", "sum", "1e-6", "é∑", "I", "z"]),
    st.lists(st.integers(-3, 3), max_size=4), st.just({}), st.just([]), st.just([[1, 2], [3]]),
    st.just({"shape": [10**7, 10**7]}), st.just({"shape": [-2, 3]}), st.just({"shape": [0, 1]}),
    st.just({"shape": [2.5, 1]}), st.just({"shape": ["a", 1]}), st.just({"shape": [10**40, 1]}),
    st.just({"shape": [300, 300]}), st.just({"f": "z", "df": "1"}), st.just({"power": 0.5}),
    st.just({"loss": "cross_entropy", "target": "x"}), st.just({"sub": "x"}), st.just({"add": 1e308}),
    st.just("W @ W @ W"), st.just("exp(W) ** 64"), st.just("log(0 * W)"), st.just("1 / (W - W)"),
)
KEY_NAMES = st.one_of(st.sampled_from(["params", "data", "input", "layers", "objective", "terms", "define",
                                       "expect", "check", "seed", "name", "weight", "bias", "activation",
                                       "shape", "init", "W", "x", "layer", "param", "__class__", "é", ""]),
                      st.text(max_size=12))


def paths_in(tree, prefix=()):
    """Every (container path, key) in a YAML tree."""
    found = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            found.append(prefix + (k,))
            found += paths_in(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            found.append(prefix + (i,))
            found += paths_in(v, prefix + (i,))
    return found


def at(tree, path):
    for step in path:
        tree = tree[step]
    return tree


@st.composite
def mutated_specs(draw):
    """A bundled spec's YAML text after a few structural mutations (and maybe a textual one)."""
    name = draw(st.sampled_from(sorted(BUNDLED_TREES)))
    tree = yaml.safe_load(yaml.safe_dump(BUNDLED_TREES[name]))
    for _ in range(draw(st.integers(1, 3))):
        spots = paths_in(tree)
        if not spots:
            break
        path = draw(st.sampled_from(spots))
        parent, key = at(tree, path[:-1]), path[-1]
        kind = draw(st.sampled_from(["delete", "wrong", "rename", "wrong", "nest", "duplicate_item", "extreme"]))
        if kind == "delete":
            del parent[key]
        elif kind == "wrong":  # a copy: st.just and sampled_from hand out the same object every time
            parent[key] = copy.deepcopy(draw(WRONG_VALUES))
        elif kind == "rename" and isinstance(parent, dict):
            parent[draw(KEY_NAMES)] = parent.pop(key)
        elif kind == "nest":
            parent[key] = {"nested": parent[key]} if draw(st.booleans()) else [parent[key]]
        elif kind == "duplicate_item" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif kind == "extreme":
            parent[key] = copy.deepcopy(draw(st.sampled_from([1e308, -1e308, 1e-320, 10**20, -0.0, 1e6,
                                                              [[1e308, 1e308]], [[0.0] * 3] * 3, "\u202eW", "W" * 500])))
    text = yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, default_flow_style=None, width=10_000)
    edit = draw(st.sampled_from(["none", "none", "dup_line", "drop_line", "indent", "insert_char"]))
    lines = text.splitlines(keepends=True)
    if lines and edit != "none":
        i = draw(st.integers(0, len(lines) - 1))
        if edit == "dup_line":  # duplicate keys, or repeated list items
            lines.insert(i, lines[i])
        elif edit == "drop_line":
            del lines[i]
        elif edit == "indent":
            lines[i] = " " * draw(st.integers(1, 3)) + lines[i]
        else:
            j = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:j] + draw(st.sampled_from(list(":{}[],-&*!|>'\"#%@`\t") + ["é", "\x00"])) + lines[i][j:]
    return "".join(lines)


@budget(500)
@given(mutated_specs())
def test_mutated_bundled_specs(tmp_path_factory, text):
    check_text(tmp_path_factory, text)


# ----------------------------------------------------------------------------- expressions

EXPR_BASE = """\
params:
  W: {shape: [3, 4]}
  b: {shape: [3, 1]}
data:
  x: {shape: [4, 5]}
  c: 0.5
input: x
layers:
  - {weight: W, bias: b, activation: tanh}
define:
  Z: W @ x + b
"""
NAMES = ["W", "b", "x", "c", "Z"]
FUNCS1 = ["exp", "log", "sqrt", "tanh", "sigmoid", "abs", "sign", "softmax", "ones_like", "zeros_like"]


def grammar_expressions():
    """Expressions over the documented grammar (shapes may or may not agree)."""
    leaves = st.one_of(st.sampled_from(NAMES), st.sampled_from(["0", "1", "2.5", "1e-6", "1e308", "0.0"]))

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "@"]), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, st.sampled_from(["2", "-1", "0.5", "64", "-64", "3"])).map(lambda t: f"{t[0]} ** {t[1]}"),
            inner.map(lambda e: f"-{e}"),
            inner.map(lambda e: f"({e}).T"),
            st.tuples(st.sampled_from(FUNCS1), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(st.sampled_from(["maximum", "minimum"]), inner, inner).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
            st.tuples(st.sampled_from(["sum", "mean"]), inner, st.sampled_from(["", ", axis=0", ", axis=1"]))
            .map(lambda t: f"{t[0]}({t[1]}{t[2]})"),
        )

    return st.recursive(leaves, extend, max_leaves=12)


OUTSIDE = [
    "__import__('os').system('true')", "W.__class__.__mro__", "().__class__", "getattr(W, 'T')", "globals()",
    "'{0.__class__}'.format(W)", "f'{W}'", "lambda: W", "[w for w in W]", "{k: 1 for k in W}", "(v := W)",
    "sum(*W)", "sum(**W)", "exp[0]", "W[0]", "W[0:1]", "W if c else x", "W < x", "W and x", "not W", "~W",
    "W // 2", "W % 2", "W << 1", "W ** W", "W ** 1e10", "9 ** 9 ** 9", "await W", "yield W", "b'x'", "...",
    "None", "True", "1j", "W.T.T.T", "W.t", "exp", "exp()", "exp(W, W)", "sum(W, axis=2)", "sum(W, axis=True)",
    "sum(W, keepdims=1)", "x @ 2", "#", "\\", "W\n+ x", "W +", ")", "(" * 60 + "W" + ")" * 60,
    "-" * 1000 + "W", "W" + " + W" * 700, "1" * 3000, "é", "\u202eW", "W\x00", "ℌ", "ｗ",
]


@budget(300)
@given(grammar_expressions(), st.sampled_from(["expect: {W: %s}", "expect: {b: %s}", "define: {Y: %s}",
                                               "custom"]))
def test_random_expressions_over_the_grammar(tmp_path_factory, expression, where):
    check_text(tmp_path_factory, with_expression(expression, where))


@budget(250)
@given(st.one_of(st.sampled_from(OUTSIDE), st.text(max_size=40),
                 st.lists(st.sampled_from(OUTSIDE + NAMES + ["+", "(", ")", ".", ",", "=", "*", "@"]), max_size=8)
                 .map(" ".join)),
       st.sampled_from(["expect: {W: %s}", "define: {Y: %s}", "custom"]))
def test_expressions_outside_the_grammar(tmp_path_factory, expression, where):
    check_text(tmp_path_factory, with_expression(expression, where))


def with_expression(expression: str, where: str) -> str:
    quoted = yaml.safe_dump(expression, allow_unicode=True, width=10**6).strip()
    if quoted.endswith("\n..."):
        quoted = quoted[:-4].strip()
    if where == "custom":
        return EXPR_BASE.replace("activation: tanh", "activation: {f: %s, df: %s}" % (quoted, quoted)) \
            .replace("define:\n  Z: W @ x + b\n", "")
    if where.startswith("define"):
        return EXPR_BASE.replace("define:\n", "define:\n  Y: " + quoted + "\n")
    return EXPR_BASE + where % quoted + "\n"


# ----------------------------------------------------------------------------- the Python API


@budget(200)
@given(mutated_specs())
def test_api_raises_only_spec_error(text):
    """gradcheck.loads raises SpecError or returns a spec; gradcheck.check never raises."""
    try:
        spec = gradcheck.loads(text, "api.yaml", LIMITS)
    except gradcheck.SpecError as exc:
        assert exc.file == "api.yaml" and exc.line >= 1 and exc.col >= 1
        return
    assume(sum(v.size for v in spec.values.values()) < 10_000)
    result = gradcheck.check(spec)
    assert result.status in ("pass", "fail", "error")
