"""A run over many files: find the spec files under the paths given, run one task per file, summarize.

Imports nothing heavy at module level (the CLI collects paths before numpy loads).
"""

from __future__ import annotations

import os

from .options import RunOptions

SPEC_SUFFIXES = (".yaml", ".yml")


def collect(paths) -> list[str]:
    """Spec files from files and folders (folders recursively, *.yaml/*.yml, in path order).

    Symlinked folders inside a folder are not followed (no loops); a folder that cannot be listed
    is returned as a path of its own, so that it gets an error row instead of vanishing.
    """
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path, followlinks=False, onerror=lambda e: found.append(e.filename)):
                dirs.sort()
                found.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(SPEC_SUFFIXES))
        else:
            found.append(path)
    return found


def execute(paths, options: RunOptions, on_done=None):
    """Check every spec under `paths` (a RunResult); one bad file costs only its own row.

    Each spec is checked within `options.limits` (its time limit included), in `options.jobs`
    processes. Ctrl-C raises runner.Interrupted carrying the rows finished before it.
    """
    from .results import summarize
    from .runner import check_task, run_all

    return summarize(run_all(check_task(options), collect(paths), options.jobs, on_done))


def execute_validate(paths, options: RunOptions, on_done=None):
    """Validate every spec under `paths` (structure, names, shapes, expressions; no numbers): a RunResult."""
    from .results import summarize
    from .runner import run_all, validate_task

    return summarize(run_all(validate_task(options.limits), collect(paths), options.jobs, on_done))
