"""The reports for CI and for people: SARIF 2.1.0 (against the official schema), GitLab code quality, HTML.

The SARIF schema in tests/sarif-schema-2.1.0.json is the OASIS standard's own file (sarif-2.1/schema/
in the oasis-tcs/sarif-spec repository, errata 01). The HTML report is opened in a real headless
Chromium (tests/browser.py) when Debian's `chromium` is installed; that test is skipped otherwise.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import ICA, INVALID, ROOT, WRONG, invoke

SCHEMA = Path(__file__).resolve().parent / "sarif-schema-2.1.0.json"
HOSTILE_NAME = '<script>console.error("xss")</script><img src=x onerror="console.error(1)"> & "q" \'a\''
HOSTILE_SPEC = f"""\
name: {json.dumps(HOSTILE_NAME)}
params:
  W: [[1.0, 2.0], [3.0, -1.0]]
input: W
expect: {{W: 3 * W}}
layers: [{{activation: square}}]
"""


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # relative paths, as a CI job gives them


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def sarif_of(*paths) -> tuple[int, dict]:
    result = invoke("run", "--format", "sarif", *map(relative, paths))
    return result.exit_code, json.loads(result.stdout)


# ----------------------------------------------------------------------------- SARIF


def test_sarif_is_valid_against_the_official_2_1_0_schema():
    import jsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["title"].startswith("Static Analysis Results Format (SARIF) Version 2.1.0")
    code, log = sarif_of(ICA, WRONG, INVALID)
    assert code == 1
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=str)
    assert errors == [], errors[:3]
    broken = json.loads(json.dumps(log))
    broken["runs"][0]["results"][0]["level"] = "fatal"  # the schema is strict enough to refuse a wrong level
    assert list(validator.iter_errors(broken))


def test_sarif_results_point_at_the_formula_and_at_the_invalid_place():
    _, log = sarif_of(ICA, WRONG, INVALID)
    run = log["runs"][0]
    assert log["version"] == "2.1.0" and run["tool"]["driver"]["name"] == "gradcheck"
    results = run["results"]
    places = [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
               r["locations"][0]["physicalLocation"]["region"]) for r in results]
    assert places == [("expect-mismatch", relative(WRONG), {"startLine": 41, "startColumn": 7}),
                      ("invalid-spec", relative(INVALID), {"startLine": 6, "startColumn": 17})]
    expect_line = WRONG.read_text().splitlines()[40]
    assert expect_line.lstrip().startswith("b2:") and expect_line[6:].startswith("1 / m")  # the formula itself
    assert "b2" in results[0]["message"]["text"] and results[0]["properties"]["param"] == "b2"
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in results)


def test_sarif_of_a_passing_run_has_no_results():
    code, log = sarif_of(ICA)
    assert code == 0 and log["runs"][0]["results"] == []


def test_sarif_uris_are_percent_encoded():
    from gradcheck.formats.sarif import artifact_uri

    assert artifact_uri("specs/a b#1.yaml") == "specs/a%20b%231.yaml"
    assert artifact_uri("/tmp/x.yaml") == "file:///tmp/x.yaml"


# ----------------------------------------------------------------------------- GitLab code quality


def test_gitlab_code_quality_issues_have_path_line_column_and_stable_fingerprints():
    first = invoke("run", "--format", "gitlab", relative(WRONG), relative(INVALID))
    again = invoke("run", "--format", "gitlab", "--seed", "7", relative(WRONG), relative(INVALID))
    issues, reseeded = json.loads(first.stdout), json.loads(again.stdout)
    assert first.exit_code == 1
    assert [(i["location"]["path"], i["location"]["positions"]["begin"]) for i in issues] == [
        (relative(WRONG), {"line": 41, "column": 7}), (relative(INVALID), {"line": 6, "column": 17})]
    for i in issues:
        assert set(i) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert i["severity"] in ("info", "minor", "major", "critical", "blocker")
    assert issues[0]["description"] != reseeded[0]["description"]  # other numbers,
    assert [i["fingerprint"] for i in issues] == [i["fingerprint"] for i in reseeded]  # the same issue
    assert len({i["fingerprint"] for i in issues}) == 2
    assert json.loads(invoke("run", "--format", "gitlab", relative(ICA)).stdout) == []


def test_problems_held_by_a_result_become_located_findings():
    from gradcheck.formats.findings import spec_findings
    from gradcheck.results import SpecResult

    row = SpecResult("s.yaml", "s", "error", "two problems")
    object.__setattr__(row, "problems", ({"line": 3, "col": 5, "message": "no such key", "severity": "error"},
                                         {"line": 9, "col": 1, "message": "unused define", "severity": "warning"}))
    found = [(f.rule, f.line, f.col, f.severity, f.message) for f in spec_findings(row)]
    assert found == [("invalid-spec", 3, 5, "error", "no such key"), ("spec-problem", 9, 1, "warning", "unused define")]


# ----------------------------------------------------------------------------- HTML


def html_report(tmp_path, *paths) -> tuple[int, str]:
    target = tmp_path / "report.html"
    result = invoke("run", "--format", "html", "-o", target, *paths)
    assert result.stdout == "", result.output
    return result.exit_code, target.read_text(encoding="utf-8")


def test_the_html_report_is_one_self_contained_file(tmp_path):
    code, page = html_report(tmp_path, relative(ICA), relative(WRONG), relative(INVALID))
    assert code == 1 and page.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert re.findall(r"https?://[^\s\"'<>]+", page) == ["http://www.w3.org/2000/svg"] * page.count("<svg ")
    for forbidden in ("<script", "<link", "<iframe", "<object", "@import", "url(", " src="):
        assert forbidden not in page, forbidden
    assert "3 specs: 1 passed, 1 failed, 1 error" in page
    assert f"{relative(WRONG)}:41:7" in page and f"{relative(INVALID)}:6:17" in page  # located findings


def test_the_html_report_draws_the_heatmap_v_curves_and_derivation_of_a_failing_param(tmp_path):
    _, page = html_report(tmp_path, relative(WRONG))
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="heatmap"') == 1  # only b2's expect failed
    assert "b2 expect: relative error per entry" in page
    assert page.count('class="vcurve"') >= 2  # a figure and its svg
    assert "the step the check uses" in page and "relative error |g − n| / max(|g|, |n|)" in page
    assert "Derivation (gradcheck explain)" in page and "δ⁽ˡ⁾" in page and "<pre>expect:\n  " in page
    cells = re.findall(r'<rect x="\d+" y="\d+" width="\d+" height="\d+" fill="(#[0-9a-f]+)"><title>\[(\d), 0\]', page)
    assert [index for _, index in cells] == ["0", "1", "2"] and len({color for color, _ in cells}) >= 1


def test_a_passing_report_draws_every_params_curve_and_no_heatmap(tmp_path):
    code, page = html_report(tmp_path, relative(ICA))
    assert code == 0 and 'class="heatmap"' not in page and page.count("<svg ") >= 1


def test_spec_text_cannot_add_markup_to_the_html_report(tmp_path):
    spec = tmp_path / "hostile <b>.yaml"
    spec.write_text(HOSTILE_SPEC)
    _, page = html_report(tmp_path, spec)
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;console.error(&quot;xss&quot;)&lt;/script&gt;" in page
    assert "hostile &lt;b&gt;.yaml" in page


# ----------------------------------------------------------------------------- HTML in a real browser


@pytest.mark.slow
def test_the_html_report_opens_in_headless_chromium_without_console_errors(tmp_path):
    from browser import CHROMIUM, open_page

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(HOSTILE_SPEC)
    _, page_text = html_report(tmp_path, relative(ICA), relative(WRONG), relative(INVALID), hostile)
    queries = ("document.querySelectorAll('script, img, iframe').length",
               "document.querySelectorAll('svg').length",
               "document.querySelectorAll('table.params tbody tr').length",
               "[...document.querySelectorAll('h2 .name')].map(e => e.textContent).join('\\n')",
               "document.title")
    page = open_page(str(tmp_path / "report.html"), queries)
    assert page.console == [], page.console  # no error, no warning, nothing blocked, nothing fetched
    values = [page.values[q] for q in queries]
    assert values[0] == 0  # the hostile name stayed text
    assert values[1] >= 4  # V-curves and the heatmap
    assert values[2] == 1 + 4 + 1  # ICA's W, the wrong fixture's four params, the hostile spec's W
    assert HOSTILE_NAME in values[3].split("\n")
    assert values[4] == "gradcheck run: 4 specs: 1 passed, 2 failed, 1 error"
    shot = tmp_path / "report.png"
    shot.write_bytes(page.png)
    print(f"screenshot: {shot}")
    assert page.png.startswith(b"\x89PNG\r\n\x1a\n") and len(page.png) > 20_000
    width, height = int.from_bytes(page.png[16:20], "big"), int.from_bytes(page.png[20:24], "big")
    assert 1200 <= width <= 1280 and height > 1600  # the whole page (less a scroll bar), beyond the first screen


# ----------------------------------------------------------------------------- the README shows real output

README_COMMANDS = ("gradcheck sweep specs/", "gradcheck sweep --against expect", "gradcheck run --format gitlab")


def readme_console_blocks() -> list[tuple[str, str]]:
    """(command, output) of each ```console block of README.md that holds one command."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```console\n\$ (.*?)\n(.*?)```", text, flags=re.S)
    return [(command, output) for command, output in blocks if "\n$ " not in "\n" + output]


@pytest.mark.parametrize("prefix", README_COMMANDS)
def test_the_readme_shows_what_the_new_commands_print(prefix):
    import shlex

    found = [(c, o) for c, o in readme_console_blocks() if c.startswith(prefix)]
    assert found, prefix
    for command, output in found:
        args = shlex.split(command)[1:]
        result = invoke(*args)
        printed = "\n".join(line.rstrip() for line in result.stdout.splitlines())
        assert printed.rstrip("\n") == output.rstrip("\n"), command


def test_a_large_matrix_is_drawn_in_blocks_and_bad_values_do_not_break_the_drawings():
    import numpy as np

    from gradcheck.formats.svg import MAX_CELLS, heatmap_svg, vcurve_svg
    from gradcheck.sweep import SweepCurve

    errors = np.full((100, 100), 1e-9)
    errors[50, 7] = np.nan  # a NaN entry counts as the worst
    drawing = heatmap_svg(errors, 1e-6, "W <backprop>")
    assert drawing.count("<title>") == 34 * 34 <= MAX_CELLS ** 2  # 100 entries a side in blocks of 3
    assert "each cell: the worst of 3×3 entries" in drawing and "rows 48–50, columns 6–8: rel error inf" in drawing
    assert 'aria-label="W &lt;backprop&gt;"' in drawing
    steps = tuple(np.logspace(-1, -14, 27))
    curve = SweepCurve("W", (0, 0), 1.0, 6e-6, steps, (1.0,) * 27, (np.nan,) + (1e-9,) * 25 + (np.inf,))
    drawing = vcurve_svg(curve, "W")
    assert drawing.count("<circle") == 27
    assert not re.findall(r'="[^"]*(?:nan|inf)', drawing)  # every coordinate a number
