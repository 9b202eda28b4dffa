"""Report formats and output options through the CLI: junit, github, -o, --color, --width, -q, -v."""

import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from conftest import FIXTURES, ICA, SHAPE_WRONG, UNKNOWN_KEY, WRONG, YAML_SYNTAX, invoke
from gradcheck.formats import FORMAT_NAMES, reporter
from gradcheck.formats.detail import heatmap
from gradcheck.formats.github import escape_data, escape_property


# J = sum(W²): the gradient 2W is exact, so the numbers in the message are too (3 vs 2, 6 vs 4).
EXACT = """\
params:
  W: [[1.0, 2.0]]
input: W
expect: {W: 3 * W}
layers: [{activation: square}]
"""


def test_every_format_name_has_a_reporter():
    assert all(callable(reporter(name)) for name in FORMAT_NAMES)


def test_an_unknown_format_name_is_refused_by_name():
    with pytest.raises(ValueError, match='no such format: "x"'):
        reporter("x")


# ----------------------------------------------------------------------------- junit


def test_junit_one_testcase_per_spec_with_failure_and_error():
    result = invoke("run", "--format", "junit", ICA, WRONG, YAML_SYNTAX)
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    ok, bad, invalid = suite.findall("testcase")
    assert ok.get("classname").endswith("specs.ufldl_ica_reconstruction")
    assert ok.get("name") == "ICA reconstruction cost" and ok.get("file") == str(ICA) and list(ok) == []
    assert float(ok.get("time")) >= 0
    failure = bad.find("failure")
    assert failure.get("type") == "GradientMismatch"
    assert failure.get("message").startswith("b2 (expect) at [2, 0]: analytic")
    assert "✗ b2 expect vs numeric at [2, 0]" in failure.text and "numeric" in failure.text
    error = invalid.find("error")
    assert error.get("message").startswith(f"{YAML_SYNTAX}:5:6: YAML syntax error")
    assert invalid.find("failure") is None


def test_junit_escapes_and_strips_what_xml_cannot_carry(tmp_path):
    # A control character inside a spec's text is refused at load (tests/hostile); one in a file name
    # still reaches the report.
    spec = tmp_path / "ctl\x01.yaml"
    spec.write_text('name: "a <b> & c"\nparams: {W: 1}\ninput: W\nlayers: [{activation: square}]\n'
                    'expect: {W: 3 * W}\n')
    root = ET.fromstring(invoke("run", "--format", "junit", str(spec)).stdout)  # parses: escaped, no raw \x01
    case = root.find("testsuite/testcase")
    assert case.get("name") == "a <b> & c" and case.find("failure") is not None
    assert case.get("file") == str(tmp_path / "ctl\\x01.yaml")


# ----------------------------------------------------------------------------- github


def test_github_lines_exactly(tmp_path):
    exact = tmp_path / "exact.yaml"
    exact.write_text(EXACT)
    result = invoke("run", "--format", "github", str(exact), SHAPE_WRONG, YAML_SYNTAX, ICA)
    assert result.exit_code == 1
    first, *rest = result.stdout.splitlines()
    assert re.fullmatch(
        re.escape(f"::error file={exact},line=4,col=13,title=gradcheck%3A W expect::expect gradient of W disagrees "
                  "with finite differences at [0, 0]: analytic 3, numeric 2 (rel error 3.3e-01 > rtol 1.0e-06; ")
        + r"[0-9.]+e\+[0-9]+× the numeric error [0-9.]+e-[0-9]+" + re.escape("); expect is 1.5 × the gradient"), first)
    assert rest == [
        f"::error file={SHAPE_WRONG},line=41,col=7,title=gradcheck%3A b2 expect::expect for b2 has shape (4, 1) "
        "but b2 has shape (1, 1)",
        f"::error file={YAML_SYNTAX},line=5,col=6,title=gradcheck%3A invalid spec::YAML syntax error: while "
        "parsing a flow sequence expected ',' or ']', but got ':'",
        "4 specs: 1 passed, 2 failed, 1 error",
    ]


def test_github_backprop_failure_points_at_the_declaration():
    path = str(FIXTURES / "wrong" / "custom_cubic_wrong_df.yaml")
    line = invoke("run", "--format", "github", "-q", path).stdout.splitlines()
    assert len(line) == 1 and line[0].startswith(f"::error file={path},line=13,col=3,title=gradcheck%3A W backprop::")


def test_github_escapes_properties_and_data(tmp_path):
    odd = tmp_path / "a,b:c.yaml"
    odd.write_text("params: {W: 1}\ninput: W\n'x%y': 1\n")
    lines = invoke("run", "--format", "github", "-q", str(odd)).stdout.splitlines()
    file_property = str(odd).replace(":", "%3A").replace(",", "%2C")
    assert lines == [f"::error file={file_property},line=3,col=1,title=gradcheck%3A invalid spec::"
                     'unknown key "x%25y" in the spec; allowed: name, description, seed, params, data, input, '
                     "layers, output, objective, terms, define, expect, check, hessian, hvp"]
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_github_is_chosen_inside_github_actions():
    result = invoke("run", UNKNOWN_KEY, env={"GITHUB_ACTIONS": "true"})
    assert result.stdout.startswith(f"::error file={UNKNOWN_KEY},line=5,col=1,")
    assert invoke("run", "--format", "human", UNKNOWN_KEY, env={"GITHUB_ACTIONS": "true"}).stdout.startswith("unknown_key")


@pytest.mark.parametrize("fmt", FORMAT_NAMES)
def test_yaml_syntax_errors_go_through_every_format(fmt):
    result = invoke("run", "--format", fmt, YAML_SYNTAX)
    assert result.exit_code == 1 and "Traceback" not in result.output
    out = result.stdout
    if fmt == "json":
        assert json.loads(out)["specs"][0]["message"].startswith(f"{YAML_SYNTAX}:5:6: YAML syntax error")
    elif fmt == "junit":
        assert ET.fromstring(out).find("testsuite/testcase/error") is not None
    elif fmt == "github":
        assert out.startswith(f"::error file={YAML_SYNTAX},line=5,col=6,")
    elif fmt == "sarif":
        found = json.loads(out)["runs"][0]["results"][0]
        assert found["message"]["text"].startswith("YAML syntax error")
        assert found["locations"][0]["physicalLocation"]["region"] == {"startLine": 5, "startColumn": 6}
    elif fmt == "gitlab":
        found = json.loads(out)[0]
        assert found["description"].startswith("YAML syntax error") and found["location"]["path"] == str(YAML_SYNTAX)
        assert found["location"]["positions"]["begin"] == {"line": 5, "column": 6}
    elif fmt == "html":
        assert f"{YAML_SYNTAX}:5:6: YAML syntax error" in re.sub("<[^>]+>", "", out)
    else:
        assert f"{YAML_SYNTAX}:5:6: YAML syntax error" in out


# ----------------------------------------------------------------------------- -o, --color, --width


def test_output_file_gets_the_report_and_stdout_nothing(tmp_path):
    target = tmp_path / "report.xml"
    result = invoke("run", "--format", "junit", "-o", str(target), ICA, WRONG)
    assert result.exit_code == 1 and result.stdout == ""
    assert ET.parse(target).getroot().find("testsuite").get("failures") == "1"


def test_output_to_a_missing_folder_is_a_usage_error(tmp_path):
    result = invoke("run", "-o", str(tmp_path / "no" / "such" / "r.json"), ICA)
    assert result.exit_code == 2 and "cannot write" in result.output


@pytest.mark.parametrize("args, env, coloured", [
    (["--color", "always"], {}, True),
    (["--color", "never"], {}, False),
    ([], {}, False),  # auto, off a terminal
    ([], {"NO_COLOR": "1"}, False),
    (["--color", "always"], {"NO_COLOR": "1"}, True),  # an explicit flag beats the environment
])
def test_color(args, env, coloured):
    assert ("\x1b[" in invoke("run", *args, WRONG, env=env).stdout) is coloured


def test_width_limits_tables():
    narrow = invoke("run", "--width", "60", ICA).stdout.splitlines()
    wide = invoke("run", "--width", "200", ICA).stdout.splitlines()
    rule = [len(line) for line in narrow if "───" in line]
    assert rule and max(rule) <= 60
    assert max(len(line) for line in wide if "───" in line) > 60
    assert "…" not in "".join(narrow)


def test_quiet_and_verbose_are_exclusive():
    assert invoke("run", "-q", "-v", ICA).exit_code == 2


# ----------------------------------------------------------------------------- quiet, verbose


def test_quiet_shows_failures_and_summary_only():
    result = invoke("run", "-q", ICA, WRONG, UNKNOWN_KEY)
    out = result.stdout
    assert "ICA reconstruction cost" not in out and "param   shape" not in out
    assert "✗ b2 expect vs numeric" in out and f"{UNKNOWN_KEY}:5:1" in out
    assert out.rstrip().endswith("3 specs: 1 passed, 1 failed, 1 error")


def test_verbose_shows_worst_entries_per_param():
    out = invoke("run", "-v", ICA).stdout
    assert "W backprop: worst 10 of 24 entries" in out and "W expect: worst 10 of 24 entries" in out
    assert "relative error per entry" not in out  # heatmaps are for failing params


def _heatmap_rows(output: str, rows: int) -> list[str]:
    """The cells of the heatmap under 'relative error per entry' (row label stripped)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "relative error per entry" in line) + 2
    return [line.split(maxsplit=1)[1] for line in lines[start:start + rows]]


SQUARE = """\
params:
  W: {{shape: [6, 6]}}
data:
  x: {{shape: [6, 4]}}
  R: {R}
input: x
layers: [{{weight: W, activation: tanh}}]
define:
  G: (1 - tanh(W @ x) ** 2) @ x.T
expect:
  W: {expect}
"""


def test_verbose_heatmap_shows_a_transposed_gradient_as_its_diagonal(tmp_path):
    spec = tmp_path / "transposed.yaml"
    spec.write_text(SQUARE.format(R=0, expect="G.T"))
    result = invoke("run", "-v", str(spec))
    assert result.exit_code == 1
    cells = _heatmap_rows(result.stdout, 6)
    for i, row in enumerate(cells):
        assert row[2 * i:2 * i + 2] == "··", row  # the diagonal of G.T is right
    off = [row[2 * j] for i, row in enumerate(cells) for j in range(6) if j != i]
    assert off.count("█") >= 0.8 * len(off)


def test_verbose_heatmap_shows_a_wrong_row_as_a_stripe(tmp_path):
    spec = tmp_path / "row.yaml"
    rows = [[1.0] * 6 if i == 2 else [0.0] * 6 for i in range(6)]
    spec.write_text(SQUARE.format(R=json.dumps(rows), expect="G * (1 + 0.001 * R)"))
    cells = _heatmap_rows(invoke("run", "-v", str(spec)).stdout, 6)
    assert cells[2] == "▓" * 12  # row 2 off by a relative ~1e-3: between 100·rtol and 1000·rtol
    assert all(row == "·" * 12 for i, row in enumerate(cells) if i != 2)


def test_heatmap_pools_large_matrices_keeping_the_worst():
    errors = np.zeros((100, 300))
    errors[57, 211] = 1.0
    lines = [line.plain for line in heatmap(errors, 1e-6, width=80, max_rows=20)]
    body = lines[1:-1]
    assert len(body) == 20 and all(len(line.split(maxsplit=1)[1]) <= 80 for line in body)
    assert sum(line.count("█") for line in body) == 1
    assert "(each cell: the worst of 5×" in lines[-1]


def test_heatmap_levels_are_decades_above_rtol():
    errors = np.array([[0.0, 1e-6, 5e-6, 5e-5, 5e-4, 5e-3]])
    row = heatmap(errors, 1e-6, width=80)[1].plain.split(maxsplit=1)[1]
    assert row == "····░░▒▒▓▓██"
