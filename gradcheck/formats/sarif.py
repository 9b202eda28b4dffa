"""SARIF 2.1.0 (GitHub code scanning): one result per finding, at its file, line and column.

Upload it with github/codeql-action/upload-sarif; GitHub shows each result on the spec's line in the
pull request. Paths are written as relative URIs (forward slashes, percent-encoded), which code
scanning resolves against the repository root.
"""

from __future__ import annotations

import json
import os
from pathlib import PurePath
from typing import IO
from urllib.parse import quote

from .. import __version__
from ..results import RunResult
from .escape import json_text
from .findings import RULES, Finding, findings

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}
INFORMATION_URI = "https://pypi.org/project/gradcheck/"


def artifact_uri(path: str) -> str:
    """A spec's path as a URI reference: relative paths stay relative, absolute ones become file: URIs."""
    posix = PurePath(path).as_posix()
    if os.path.isabs(path):
        return "file://" + quote(posix if posix.startswith("/") else "/" + posix, safe="/:")
    return quote(posix, safe="/")


def region(f: Finding) -> dict | None:
    """The place in the file (lines and columns from 1), or None when only the file is known."""
    if not f.line:
        return None
    out = {"startLine": max(1, int(f.line))}
    if f.col:
        out["startColumn"] = max(1, int(f.col))
    return out


def result(f: Finding, rule_index: dict) -> dict:
    location = {"artifactLocation": {"uri": artifact_uri(f.file)}}
    place = region(f)
    if place:
        location["region"] = place
    out = {"ruleId": f.rule, "ruleIndex": rule_index[f.rule], "level": LEVEL[f.severity],
           "message": {"text": f.message},
           "locations": [{"physicalLocation": location}]}
    properties = {"spec": f.spec} | ({"param": f.param} if f.param else {}) | ({"side": f.side} if f.side else {})
    out["properties"] = properties
    return out


def sarif_log(run: RunResult) -> dict:
    """The whole run as one SARIF log with one run."""
    rules = [{"id": rule, "name": rule.replace("-", " ").title().replace(" ", ""),
              "shortDescription": {"text": short}, "fullDescription": {"text": full},
              "defaultConfiguration": {"level": "error" if rule != "spec-problem" else "warning"}}
             for rule, (short, full) in RULES.items()]
    rule_index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = [result(f, rule_index) for f in findings(run)]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "gradcheck", "version": __version__, "informationUri": INFORMATION_URI,
                                "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
            "properties": {"summary": dict(run.summary)},
        }],
    }


def render_sarif(run: RunResult, out: IO[str], **_) -> None:
    """The SARIF log as JSON (-q and -v do not change it: it is for programs)."""
    out.write(json_text(json.dumps(sarif_log(run), indent=2, ensure_ascii=False, allow_nan=False)) + "\n")
