"""GitLab code quality (the Code Climate JSON subset GitLab reads): one issue per finding.

Publish it as `artifacts: reports: codequality: gl-code-quality-report.json`; GitLab shows each issue
in the merge request at its file and line. The fingerprint is stable from run to run (the spec's
path, the rule, the param and side, or the place of an invalid spec), so GitLab can tell a new
problem from one that was already there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePath
from typing import IO

from ..results import RunResult
from .escape import json_text
from .findings import Finding, findings

SEVERITY = {"error": "major", "warning": "minor", "info": "info"}


def fingerprint(f: Finding) -> str:
    """What identifies the finding across runs (not its numbers, which move with the seed and the step)."""
    if f.param:
        key = (f.file, f.rule, f.param, f.side)
    else:
        key = (f.file, f.rule, f.line, f.col, f.message)
    return hashlib.sha256("\0".join(map(str, key)).encode("utf-8", "surrogatepass")).hexdigest()


def issue(f: Finding) -> dict:
    begin = {"line": max(1, int(f.line or 1))}
    if f.col:
        begin["column"] = max(1, int(f.col))
    return {
        "type": "issue",
        "check_name": f"gradcheck/{f.rule}",
        "description": f.message,
        "categories": ["Bug Risk"],
        "severity": SEVERITY[f.severity],
        "fingerprint": fingerprint(f),
        "location": {"path": PurePath(f.file).as_posix(), "positions": {"begin": begin}},
    }


def render_gitlab(run: RunResult, out: IO[str], **_) -> None:
    """The code-quality report: a JSON array of issues (empty when every spec passed)."""
    report = [issue(f) for f in findings(run)]
    out.write(json_text(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)) + "\n")
