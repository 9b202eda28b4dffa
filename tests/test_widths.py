"""Human output at narrow widths: a number or a symbol is never cut across two lines (issue 14, item 1).

Every bundled spec and wrong fixture is rendered (run, run -v, explain) at 60, 80, 100 and 120 columns.
Each number the report prints (the JSON values, formatted as the human format formats them) must
appear whole on one line, every number-looking token must parse back, and table lines fit the width.
"""

from __future__ import annotations

import io
import re

import pytest
from conftest import BUNDLED, FIXTURES, ROOT

from gradcheck.formats.explanation import render_explanation
from gradcheck.formats.text import fmt_err, fmt_num, worse_side
from gradcheck.guard import check_one
from gradcheck.explain import explain
from gradcheck.options import RunOptions
from gradcheck.report import render_human
from gradcheck.results import summarize
from gradcheck.spec import load

WIDTHS = (60, 80, 100, 120)
# the narrow widths run in the fast suite; the wide ones (where the full table mostly fits) only in the full one
PARAMS = [60, *(pytest.param(w, marks=pytest.mark.slow) for w in (80, 100, 120))]  # 60 is the narrowest: the quick loop keeps it
PATHS = [*BUNDLED, *sorted((FIXTURES / "wrong").glob("*.yaml"))]
NUMBER = re.compile(r"(?<![\w.⁽⁾])[-+]?\d+(?:\.\d*)?(?:e[-+]?\d*)?(?![\w.])")
SUPERSCRIPT = re.compile(r"[⁽⁾⁰¹²³⁴⁵⁶⁷⁸⁹ⁿˡ⁺⁻]+")


@pytest.fixture(scope="module")
def results():
    options = RunOptions(keep_entries=True)
    return {path: check_one(str(path.relative_to(ROOT)), options=options) for path in PATHS}


def printed_numbers(result) -> set[str]:
    """The numbers the human report prints for a spec, as it formats them."""
    found = set()
    for p in result.params:
        _, c = worse_side(p)
        found |= {fmt_num(c.analytic), fmt_num(c.numeric), fmt_err(p.backprop.max_rel_error)}
        if p.expect is not None and p.expect.max_rel_error is not None:
            found.add(fmt_err(p.expect.max_rel_error))
    return found - {"—"}


def whole_on_a_line(token: str, text: str) -> bool:
    pattern = re.compile(rf"(?<![\w.]){re.escape(token)}(?![\w.])")
    return any(pattern.search(line) for line in text.splitlines())


def assert_numbers_parse(text: str) -> None:
    for line in text.splitlines():
        for match in NUMBER.finditer(line):
            float(match.group())  # "-4.958910132e-" or "e-" alone would not parse


def rendered(result, width: int, verbose: bool) -> str:
    out = io.StringIO()
    render_human(summarize([result]), out, color=False, width=width, verbose=verbose)
    return out.getvalue()


@pytest.mark.parametrize("width", PARAMS)
@pytest.mark.parametrize("verbose", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["run", "run-v"])
def test_run_never_breaks_a_number(results, width, verbose):
    for path, result in results.items():
        text = rendered(result, width, verbose)
        assert_numbers_parse(text)
        for token in printed_numbers(result):
            assert whole_on_a_line(token, text), f"{path.name} at {width}: {token} is not whole on one line\n{text}"
        table = [line for line in text.splitlines() if line.startswith(("param", "index", "─"))]
        assert all(len(line.rstrip()) <= width for line in table), f"{path.name} at {width}:\n{text}"


def test_the_full_table_is_kept_where_it_fits(results):
    result = results[FIXTURES / "wrong" / "two_layer_db2_typo_square.yaml"]
    header = next(line for line in rendered(result, 120, False).splitlines() if line.startswith("param"))
    assert "analytic" in header and "worst" in header
    narrow = rendered(result, 80, False)
    assert "b2 worst [2, 0] (expect): analytic -4.958910132e-05  numeric 0.2389315029" in narrow


def symbols(text: str) -> list[str]:
    """Tokens with superscripts, such as z⁽²⁾ or δ⁽ˡ⁺¹⁾: each must end its bracket on the same line."""
    return re.findall(r"\S*⁽[^\s]*", text)


@pytest.mark.parametrize("width", PARAMS)
def test_explain_never_splits_a_symbol(width):
    for path in PATHS:
        out = io.StringIO()
        render_explanation(explain(load(path).model), out, color=False, width=width)
        for token in symbols(out.getvalue()):
            assert token.count("⁽") == token.count("⁾"), f"{path.name} at {width}: {token!r} is cut"
