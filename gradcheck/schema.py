"""The JSON Schema (draft 2020-12) of the spec format, built from the rule tables.

Editors use it for completion and validation through a first line such as
`# yaml-language-server: $schema=gradcheck-spec.schema.json` (write it with `gradcheck schema -o`).
It describes structure (keys, kinds of values, names of activations, losses and inits); names, shapes
and expressions are checked by the loader (`gradcheck validate`). The parts that name rules (the
activations, the losses, the layer kinds and their keys) are filled in from the tables, so a new row
appears here without touching this module; the rest is package data (schema_base.json).
tests/test_schema.py keeps the schema and the loader in agreement.
"""

from __future__ import annotations

import json
from importlib import resources
from itertools import combinations

from .activations import with_argument, without_argument
from .kinds import KEYED, KINDS
from .losses import plain, with_target
from .merges import MERGES


def schema_text() -> str:
    """The schema as the file `gradcheck schema` writes."""
    return json.dumps(load_schema(), indent=2, ensure_ascii=False) + "\n"


def load_schema() -> dict:
    """The schema as a dict: the package's base with every table's names filled in."""
    return _built()


def _built() -> dict:
    schema = json.loads(resources.files(__package__).joinpath("schema_base.json").read_text(encoding="utf-8"))
    defs = schema["$defs"]
    layer = defs["layer"]
    for key in KEYED:
        layer["properties"][key] = KINDS[key].schema
    for key, row in MERGES.items():
        layer["properties"][key] = _merge_schema(key, row.arity)
    # without an input, the first layer says what it reads (`input:` or a merge)
    reads = {"required": ["layers"], "properties": {"layers": {"prefixItems": [
        {"anyOf": [{"required": [key]} for key in ("input", *MERGES)]}]}}}
    schema["oneOf"][0]["anyOf"][1] = reads
    defs["term"]["anyOf"][1] = reads
    layer["not"]["anyOf"] = [{"required": list(pair)} for pair in combinations(["weight", *KEYED], 2)
                             if pair[0] != "weight"] + [{"required": ["weight", key]} for key in KEYED] + \
                            [{"required": list(pair)} for pair in combinations(["input", *MERGES], 2)]
    simple, by_argument = defs["activation"]["oneOf"][1:3]
    simple["enum"] = list(without_argument())
    by_argument["properties"] = {name: {"$ref": "#/$defs/expression"} for name in with_argument()}
    bare, loss = defs["objective"]["oneOf"]
    bare["enum"] = list(plain())
    loss["properties"]["loss"]["enum"] = list(with_target())
    return schema


def _merge_schema(key: str, arity: int | None) -> dict:
    """A merge key's value: a list of names (`slice`: the input and its rows)."""
    if key == "slice":
        return {"type": "object", "additionalProperties": False, "required": ["input", "rows"],
                "properties": {"input": {"$ref": "#/$defs/transposableName"},
                               "rows": {"type": "array", "minItems": 2, "maxItems": 2,
                                        "items": {"$ref": "#/$defs/integer"}}},
                "description": "Rows start..stop−1 of a layer, param or data name."}
    names = {"type": "array", "items": {"$ref": "#/$defs/transposableName"}, "minItems": arity or 2}
    if arity is not None:
        names["maxItems"] = arity
    return {**names, "description": f"{key} of the named layers, params or data (NAME.T allowed)."}
