"""The output formats of `run` and `validate`: one row each, name -> "module:renderer".

Adding a format is one row in FORMATS. The renderers are named, not imported, so that the CLI can
offer the names while starting fast (rich and numpy load only when a report is rendered). Every
renderer is called as render(run_result, stream, color=, width=, quiet=, verbose=, command=).
"""

from __future__ import annotations

import importlib
from typing import Callable

FORMATS = {
    "human": "gradcheck.report:render_human",
    "json": "gradcheck.report:render_json",
    "junit": "gradcheck.formats.junit:render_junit",
    "github": "gradcheck.formats.github:render_github",
    "sarif": "gradcheck.formats.sarif:render_sarif",
    "gitlab": "gradcheck.formats.gitlab:render_gitlab",
    "html": "gradcheck.formats.html:render_html",
}
FORMAT_NAMES = tuple(FORMATS)


def reporter(name: str) -> Callable:
    """The renderer for a format name."""
    try:
        module, function = FORMATS[name].split(":")
    except KeyError:
        raise ValueError(f'no such format: "{name}"; available: {", ".join(FORMATS)}') from None
    return getattr(importlib.import_module(module), function)
