"""A run over many files: find the spec files under the paths given, run one task per file, summarize.

Imports nothing heavy at module level (the CLI collects paths before numpy loads).
"""

from __future__ import annotations

import os

from .options import DEFAULT_EXCLUDE, RunOptions
from .source import SpecPath, StdinSpec, for_argument

SPEC_SUFFIXES = (".yaml", ".yml")


def collect(paths, exclude=DEFAULT_EXCLUDE, force_exclude: bool = False) -> list[str]:
    """Spec files from files and folders (folders recursively, *.yaml/*.yml, in path order).

    The path policy (README, Safety): symlinked folders inside a folder are not followed (no loops,
    nothing outside); each file found carries the folder it must stay inside (a symlinked file
    whose target leaves it is an error row, not read), and a file named on its own must stay in its
    own folder. A folder that cannot be listed is returned as a path of its own, so that it gets an
    error row instead of vanishing. `exclude` globs drop files and folders met while walking a folder
    (a file named on the command line is checked unless `force_exclude`, as ruff does: pre-commit names
    files); standard input stays as read.
    """
    found: list[str] = []
    for path in paths:
        if isinstance(path, StdinSpec):
            found.append(path)
        elif os.path.isdir(path):
            found.extend(walk(path, tuple(exclude)))
        elif force_exclude and excluded(path, tuple(exclude)):
            continue
        else:
            found.append(for_argument(path))
    return found


def excluded(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether a glob matches the file or folder name, or the end of its path (`vendor/*`, `specs/x/*.yaml`)."""
    if not patterns:
        return False
    from fnmatch import fnmatch

    name, full = os.path.basename(path), os.path.normpath(os.path.abspath(path))
    return any(fnmatch(name, p) or fnmatch(full, p) or fnmatch(full, "*/" + p)
               for p in (pattern.rstrip("/") for pattern in patterns))


def walk(top: str, exclude: tuple[str, ...] = ()) -> list[SpecPath]:
    """The spec files under one folder, in path order, each bound to `top` (the scanned root).

    Iterative, with its own stack: a tree 1,000 folders deep is just a long path, not a
    RecursionError (os.walk recurses before Python 3.12).
    """
    found: list[SpecPath] = []
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            found.append(SpecPath(folder, top))  # gets a row of its own ("cannot read folder")
            continue
        subfolders = []
        for entry in entries:
            if excluded(entry.path, exclude):
                continue
            if _is_folder(entry):
                if not entry.is_symlink():  # symlinked folders are not followed: no loops, nothing outside
                    subfolders.append(entry.path)
            elif entry.name.endswith(SPEC_SUFFIXES):
                found.append(SpecPath(entry.path, top))
        stack.extend(reversed(subfolders))
    return found


def _is_folder(entry: os.DirEntry) -> bool:
    """Whether an entry is a folder (or a symlink to one), as os.walk sorts them."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def execute(paths, options: RunOptions, on_done=None):
    """Check every spec under `paths` (a RunResult); one bad file costs only its own row.

    Each spec is checked within `options.limits` (its time limit included), in `options.jobs`
    processes. Ctrl-C raises runner.Interrupted carrying the rows finished before it.
    """
    from .results import summarize
    from .runner import check_task, run_all

    return summarize(run_all(check_task(options), collect(paths, options.exclude, options.force_exclude), options.jobs, on_done))


def execute_validate(paths, options: RunOptions, on_done=None):
    """Validate every spec under `paths` (structure, names, shapes, expressions; no numbers): a RunResult."""
    from .results import summarize
    from .runner import run_all, validate_task

    return summarize(run_all(validate_task(options.limits, options.strict), collect(paths, options.exclude, options.force_exclude), options.jobs,
                             on_done))
