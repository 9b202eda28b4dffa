"""The JSON Schema and the loader agree: every bundled spec validates, structural errors are rejected by both."""

import json
import re
import tomllib

import jsonschema
import pytest

import gradcheck
from conftest import FIXTURES, ROOT, SPECS, invoke
from gradcheck.activations import with_argument, without_argument
from gradcheck.schema import load_schema
from gradcheck.kinds.conv import KEYS as CONV_KEYS
from gradcheck.kinds.maxpool import KEYS as POOL_KEYS
from gradcheck.kinds.recurrent import KEYS as RECURRENT_KEYS
from gradcheck.losses import with_target
from gradcheck.declarations import INIT_OPTIONS
from gradcheck.check_section import CHECK_KEYS
from gradcheck.loader import LAYER_KEYS, TERM_KEYS, TOP_KEYS
from gradcheck.options import METHODS
from gradcheck.yamlsrc import parse_yaml

SCHEMA = load_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# Loader messages that are about structure (keys, kinds of values, registry names), which a schema can
# express; names, shapes, expressions and YAML-level refusals (aliases, tags, duplicates) are not.
STRUCTURAL = re.compile(r"unknown key|no such (activation|loss|init|objective)|must be a (mapping|list)"
                        r"|declares no params|needs a (shape|target)|needs an argument|is not a valid name"
                        r"|is reserved|must be (positive|a number|a whole number)")


def plain(node):
    """What the loader sees (its own scalar resolution: 1e-6 is a number), as plain data."""
    if isinstance(node.value, dict):
        return {k: plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [plain(v) for v in node.value]
    return node.value


def schema_accepts(text: str, path: str = "t.yaml") -> bool:
    return VALIDATOR.is_valid(plain(parse_yaml(text, path)))


def loader_error(text: str) -> gradcheck.SpecError | None:
    try:
        gradcheck.loads(text, "t.yaml")
    except gradcheck.SpecError as exc:
        return exc
    return None


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_cli_prints_the_packaged_schema():
    result = invoke("schema")
    assert result.exit_code == 0 and json.loads(result.stdout) == SCHEMA


def test_schema_ships_as_package_data():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "schema_base.json" in pyproject["tool"]["setuptools"]["package-data"]["gradcheck"]
    assert "jsonschema" not in " ".join(pyproject["project"]["dependencies"])  # test-only


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")) + sorted((FIXTURES / "wrong").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_loadable_spec_validates(path):
    text = path.read_text(encoding="utf-8")
    errors = [e.message for e in VALIDATOR.iter_errors(plain(parse_yaml(text, str(path))))]
    assert errors == []


def _message(path) -> str:
    from gradcheck.guard import check_path

    return check_path(str(path)).message


INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
STRUCTURAL_FIXTURES = [p for p in INVALID if STRUCTURAL.search(_message(p))]


def test_the_structural_fixtures_are_the_expected_ones():
    assert {p.name for p in STRUCTURAL_FIXTURES} >= {"bad_init.yaml", "no_params.yaml", "not_a_mapping.yaml",
                                                     "unknown_activation.yaml", "unknown_key.yaml",
                                                     "unknown_loss.yaml"}


@pytest.mark.parametrize("path", STRUCTURAL_FIXTURES, ids=lambda p: p.name)
def test_fixtures_rejected_for_a_structural_reason_are_rejected_by_the_schema(path):
    assert not schema_accepts(path.read_text(encoding="utf-8"), str(path))


def test_the_alias_bomb_is_rejected_by_the_schema_once_a_plain_yaml_reader_expands_it():
    import yaml

    path = FIXTURES / "invalid" / "alias_bomb.yaml"
    assert not VALIDATOR.is_valid(yaml.safe_load(path.read_text()))


BASE = "params: {W: {shape: [2, 3]}}\ndata: {x: {shape: [3, 4]}}\n"

STRUCTURAL_CASES = [
    "input: x\nlayers: [{weight: W, activaton: tanh}]\n",
    "input: x\nlayers: [{weight: W, activation: {pow: 2}}]\n",
    "input: x\nlayers: [{weight: W, activation: power}]\n",
    "input: x\nlayers: [{weight: W, activation: {f: z}}]\n",
    "input: x\nlayers: [{weight: W}]\nobjective: maximum\n",
    "input: x\nlayers: [{weight: W}]\nobjective: {loss: squared_error}\n",
    "input: x\nlayers: [{weight: W}]\nobjective: {loss: squared_error, target: x, reduce: median}\n",
    "input: x\nlayers: [{weight: W}]\ncheck: {rtol: 0}\n",
    "input: x\nlayers: [{weight: W}]\ncheck: {rtoll: 1}\n",
    "input: x\nlayers: {weight: W}\n",
    "input: x\nterms: [{input: x}]\n",
    "terms: [{input: x, layer: []}]\n",
    "terms: []\n",
    "layers: [{weight: W}]\n",
    "input: x\nseed: 1.5\n",
]


@pytest.mark.parametrize("tail", STRUCTURAL_CASES)
def test_structural_mistakes_are_rejected_by_both(tail):
    text = BASE + tail
    assert loader_error(text) is not None
    assert not schema_accepts(text)


@pytest.mark.parametrize("text", [
    "params: {w: {shape: [2, 2], init: uniform, low: -1, high: 1}, v: [1, 2], s: 2.5, M: [[1, 2], [3, 4]]}\n"
    "data: {e: 1e-6, Y: {shape: [2, 3], init: onehot}, B: {shape: [2, 2], init: binary, p: 0.3}}\n"
    "input: M.T\nlayers: [{weight: w.T, bias: v, activation: {power: 2}}, {activation: {f: 'z + e', df: '1'}}, {}]\n"
    "objective: {loss: squared_error, target: B, reduce: mean}\ncheck: {eps: 1e-5, atol: 0}\nseed: 3\n",
    "name: two terms\nparams: {A: {shape: [2, 2]}}\nterms:\n  - {input: A, coef: 0.5}\n  - input: A\n"
    "    layers: [{activation: softmax}]\n    objective: mean\n    coef: A_scale\n"
    "data: {A_scale: 2}\ndefine: {r: A @ A}\nexpect: {A: 0.5 * ones_like(A) + zeros_like(r)}\n",
])
def test_valid_variety_is_accepted_by_both(text):
    assert loader_error(text) is None
    assert schema_accepts(text)


def test_enumerations_follow_the_loader():
    defs = SCHEMA["$defs"]
    assert set(SCHEMA["properties"]) == set(TOP_KEYS)
    assert set(defs["layer"]["properties"]) == set(LAYER_KEYS)
    assert set(defs["term"]["properties"]) == set(TERM_KEYS)
    assert set(SCHEMA["properties"]["check"]["properties"]) == set(CHECK_KEYS)
    assert SCHEMA["properties"]["check"]["properties"]["method"]["enum"] == list(METHODS)
    layer = defs["layer"]["properties"]
    assert set(layer["conv"]["properties"]) == set(CONV_KEYS)
    assert set(layer["maxpool"]["properties"]) == set(POOL_KEYS)
    assert set(layer["recurrent"]["properties"]) == set(RECURRENT_KEYS)
    simple, by_argument, custom = defs["activation"]["oneOf"][1:]
    assert simple["enum"] == list(without_argument())
    assert set(by_argument["properties"]) == set(with_argument())
    assert set(custom["required"]) == {"f", "df"}
    loss = defs["objective"]["oneOf"][1]["properties"]["loss"]["enum"]
    assert loss == list(with_target())
    inits = {v["properties"]["init"]["const"] for v in defs["value"]["oneOf"][3]["oneOf"] if "init" in v["properties"]}
    assert inits == set(INIT_OPTIONS)


def test_readme_shows_the_editor_line():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "# yaml-language-server: $schema=" in readme
    assert "gradcheck schema" in readme
