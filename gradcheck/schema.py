"""The JSON Schema (draft 2020-12) of the spec format, shipped as package data (schema.json).

Editors use it for completion and validation through a first line such as
`# yaml-language-server: $schema=gradcheck-spec.schema.json`. It describes structure (keys, kinds
of values, names of activations, losses and inits); names, shapes and expressions are checked by
the loader (`gradcheck validate`). tests/test_schema.py keeps the two in agreement.
"""

from __future__ import annotations

import json
from importlib import resources


def schema_text() -> str:
    """The schema file's text."""
    return resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")


def load_schema() -> dict:
    """The schema as a dict."""
    return json.loads(schema_text())
