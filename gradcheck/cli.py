"""The command line: click parses options and hands them to `execute`; reporters render."""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import EXPRESSION_DEPTH_CEILING, HELP, OPTIONS, parse_size

SPEC_SUFFIXES = (".yaml", ".yml")
EXIT_INTERNAL = 2  # a usage error, or a bug of ours
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader went away (`gradcheck run specs/ | head`)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a batch, carrying the results of the specs checked before it."""

    def __init__(self, partial, total: int):
        super().__init__()
        self.partial = partial
        self.total = total


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


def execute(paths, overrides: dict, limits=None):
    """Check every spec under `paths`; one bad file costs only its own row."""
    from .check import summarize
    from .guard import check_one

    results = []
    found = collect(paths)
    try:
        for p in found:
            results.append(check_one(p, limits, **overrides))
    except KeyboardInterrupt:
        raise Interrupted(summarize(results), len(found)) from None
    return summarize(results)


class SizeType(click.ParamType):
    """A number of bytes, optionally with a K, M or G suffix (decimal)."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            found = parse_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if found < 1:
            self.fail("must be at least 1 byte", param, ctx)
        return found


def _limit_type(field: str):
    if field in ("file_size", "memory"):
        return SizeType()
    if field == "timeout":
        return click.FloatRange(min=0)
    if field == "expression_depth":
        return click.IntRange(1, EXPRESSION_DEPTH_CEILING)
    return click.IntRange(min=1)


def limit_options(command):
    """Add one option per resource limit (see gradcheck.limits); each refusal names its option."""
    for field, (option, metavar) in reversed(OPTIONS.items()):
        default = getattr(DEFAULT_LIMITS, field)
        shown = f"{default:g}" if isinstance(default, float) else f"{default:,}"
        command = click.option(option, field, type=_limit_type(field), default=None, metavar=metavar,
                               help=f"{HELP[field]} [default: {shown}]")(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradcheck")
def main():
    """Check hand-derived gradients of matrix functions written as YAML specs."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["human", "json"]), default="human", show_default=True,
              help="Report format.")
@click.option("--rtol", type=click.FloatRange(min=0, min_open=True), help="Relative tolerance (default 1e-6).")
@click.option("--atol", type=click.FloatRange(min=0), help="Absolute tolerance (default 1e-8·max(1,|J|)).")
@click.option("--eps", type=click.FloatRange(min=0, min_open=True),
              help="Finite-difference step base; the step is eps·max(1,|θ|) (default cbrt(machine eps)).")
@click.option("--seed", type=int, help="Seed for random values, overriding the spec's.")
@limit_options
def run(paths, fmt, rtol, atol, eps, seed, **limit_values):
    """Check the specs in PATHS (files, or folders searched for *.yaml and *.yml).

    Exit status: 0 all specs pass, 1 a spec failed or is invalid, 2 usage or internal error,
    130 interrupted (Ctrl-C; the specs checked so far are reported), 141 output pipe closed.
    """
    from .report import reporter

    if not collect(paths):
        raise click.UsageError(f"no spec files (*.yaml, *.yml) under {', '.join(paths)}")
    overrides = {"rtol": rtol, "atol": atol, "eps": eps, "seed": seed}
    limits = DEFAULT_LIMITS.raised(**limit_values)
    try:
        result = execute(paths, overrides, limits)
    except Interrupted as stop:
        emit(reporter(fmt), stop.partial)
        click.echo(f"gradcheck: interrupted after {len(stop.partial.specs)} of {stop.total} specs", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - a bug of ours: exit 2 with one line, never a traceback
        click.echo(f"gradcheck: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
    emit(reporter(fmt), result)
    sys.exit(EXIT_INTERNAL if internal_errors(result) else result.exit_code)


def internal_errors(result) -> list:
    """Rows where gradcheck itself failed (reported, then the run exits 2)."""
    from .guard import InternalError

    bugs = [s for s in result.specs if isinstance(s.error, InternalError)]
    for s in bugs:
        click.echo(f"gradcheck: {s.message}", err=True)
    return bugs


def emit(render, result) -> None:
    """Render to stdout; if the reader has gone (a closed pipe), stop quietly with 141."""
    try:
        render(result, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
    except Exception as exc:  # noqa: BLE001 - a bug of ours in a reporter
        click.echo(f"gradcheck: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (tests capture stdout)
        pass


def entry() -> None:
    """Console-script entry: internal errors exit 2 with a one-line message, not a traceback."""
    try:
        main(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
    except Exception as exc:  # noqa: BLE001 - the last line of defence at the CLI edge
        click.echo(f"gradcheck: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
