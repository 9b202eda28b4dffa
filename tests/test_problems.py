"""Every independent problem of a spec in one run, in file order, each located (issue 14, item 2)."""

from __future__ import annotations

import json
import pickle
import textwrap

import pytest
from conftest import invoke

from gradcheck.errors import SpecError
from gradcheck.problems import SpecProblems, problems_of
from gradcheck.spec import loads


def problems(text: str) -> list[tuple[int, int, str]]:
    """(line, col, message) of every problem loading `text` reports."""
    with pytest.raises(SpecError) as caught:
        loads(textwrap.dedent(text), "s.yaml")
    return [(p.line, p.col, p.message) for p in problems_of(caught.value)]


FOUR = """\
    params:
      W: {shape: [3, 4]}
    data:
      x: {shape: [4, 5]}
      n: {shape: [2, 2], init: normal, std: 1, sigma: 2}
    input: x
    objectve: sum
    layers:
      - {weight: W, activaton: tanh}
      - {activation: sigmod}
    define:
      r: W @ x + trace
    expect:
      W: W @ x @ x.T
"""


def test_four_mistakes_are_reported_at_once_in_file_order():
    found = problems(FOUR)
    assert [(line, col) for line, col, _ in found] == [(5, 44), (7, 1), (9, 17), (10, 18), (12, 14)]
    assert 'unknown key "objectve"' in found[1][2] and 'unknown key "activaton"' in found[2][2]
    assert 'no such activation: "sigmod"' in found[3][2] and 'undefined name "trace"' in found[4][2]


def test_what_follows_from_a_broken_name_is_not_reported_again():
    found = problems("""\
        params:
          W: {shape: [3, x]}
        data:
          x: {shape: [3, 5]}
        input: x
        layers: [{weight: W.T, activation: bogus}]
        define:
          r: W @ x
          s: r + 1
        expect:
          W: s @ x.T
    """)
    # W's shape is wrong: the layer, r, s and the expect that use W are not checked, and not reported
    assert [(line, col) for line, col, _ in found] == [(2, 18)]


def test_independent_defines_and_expects_each_report():
    found = problems("""\
        params:
          W: {shape: [3, 4]}
        data:
          x: {shape: [4, 5]}
        input: x
        layers: [{weight: W}]
        define:
          a: W @ @ x
          b: W @ x
          c: W @ nope
        expect:
          W: b @ x.T
          V: W
          W2: 1
    """)
    assert [line for line, _, _ in found] == [8, 10, 13, 14]


def test_every_unknown_key_of_a_mapping():
    found = problems("""\
        params: {W: {shape: [2, 2]}}
        input: W
        layers: [{weight: W, wieght: W, bais: W}]
        check: {rtool: 1e-6, method: cental}
    """)
    assert [(line, col) for line, col, _ in found] == [(3, 22), (3, 33), (4, 9), (4, 30)]


def test_one_problem_stays_the_plain_error():
    with pytest.raises(SpecError) as caught:
        loads("params: {W: {shape: [2, 2]}}\ninput: W\nlayers: [{activation: sigmod}]\n", "s.yaml")
    assert type(caught.value) is SpecError and caught.value.line == 3


def test_many_problems_cross_process_boundaries():
    many = SpecProblems(problems_of(SpecError("a", "f", 1, 2)) + problems_of(SpecError("b", "f", 3, 4)))
    back = pickle.loads(pickle.dumps(many))
    assert back.problems == many.problems and str(back) == "f:1:2: a"


def test_every_format_carries_each_problem_with_its_line_and_column(tmp_path):
    spec = tmp_path / "four.yaml"
    spec.write_text(textwrap.dedent(FOUR))
    data = json.loads(invoke("run", "--format", "json", spec).output)
    listed = data["specs"][0]["problems"]
    assert [(p["line"], p["col"], p["severity"]) for p in listed] == [(5, 44, "error"), (7, 1, "error"),
                                                                      (9, 17, "error"), (10, 18, "error"),
                                                                      (12, 14, "error")]
    human = invoke("run", spec).output
    assert all(f"{spec}:{p['line']}:{p['col']}: " in human for p in listed)
    github = invoke("run", "--format", "github", spec).output.splitlines()
    assert [line.split("::")[1].split(",title")[0] for line in github[:-1]] == \
        [f"error file={spec},line={p['line']},col={p['col']}" for p in listed]
    junit = invoke("run", "--format", "junit", spec).output
    assert 'line="5"' in junit and all(f"{spec}:{p['line']}:{p['col']}" in junit for p in listed)
    valid = json.loads(invoke("validate", "--format", "json", spec).output)["specs"][0]["problems"]
    assert valid == listed


def test_explain_lists_every_problem_too():
    from conftest import FIXTURES

    four = FIXTURES / "problems" / "four_mistakes.yaml"
    human = invoke("explain", four)
    assert human.exit_code == 1 and [line.split(": ")[0] for line in human.output.splitlines()] == \
        [f"{four}:{line}:{col}" for line, col in ((9, 1), (11, 26), (12, 18), (14, 6))]
    data = json.loads(invoke("explain", "--format", "json", four).output)
    assert [(p["line"], p["col"]) for p in data["problems"]] == [(9, 1), (11, 26), (12, 18), (14, 6)]
