"""The command line: click parses options and hands them to `execute`; reporters render."""

from __future__ import annotations

import os
import sys

import click

from . import __version__

SPEC_SUFFIXES = (".yaml", ".yml")


def collect(paths) -> list[str]:
    """Spec files from files and folders (folders recursively, *.yaml/*.yml, in path order)."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs.sort()
                found.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(SPEC_SUFFIXES))
        else:
            found.append(path)
    return found


def execute(paths, overrides: dict):
    """Check every spec under `paths`; one bad file costs only its own row."""
    from .check import check_path, summarize

    return summarize(check_path(p, **overrides) for p in collect(paths))


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
@click.option("--method", type=click.Choice(["central", "richardson", "complex-step"]),
              help="Finite-difference method (default central, or the spec's check.method).")
@click.option("--mode", callback=lambda ctx, p, v: _mode(v), metavar="full|fast|sample:K",
              help="Check every entry (full, default), K random entries per param, or random directions (fast).")
@click.option("--memory", type=click.IntRange(min=1), metavar="MB", default=256, show_default=True,
              help="Memory budget for one batch of perturbed evaluations.")
def run(paths, fmt, rtol, atol, eps, seed, method, mode, memory):
    """Check the specs in PATHS (files, or folders searched for *.yaml and *.yml).

    Exit status: 0 all specs pass, 1 a spec failed or is invalid, 2 usage or internal error.
    """
    from .report import reporter

    if not collect(paths):
        raise click.UsageError(f"no spec files (*.yaml, *.yml) under {', '.join(paths)}")
    overrides = {"rtol": rtol, "atol": atol, "eps": eps, "seed": seed, "method": method, "mode": mode,
                 "memory": memory * 2**20}
    try:
        result = execute(paths, overrides)
        reporter(fmt)(result, sys.stdout)
    except Exception as exc:  # noqa: BLE001 - a bug of ours: exit 2 with one line, never a traceback
        click.echo(f"gradcheck: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
    sys.exit(result.exit_code)


@main.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--method", type=click.Choice(["central", "richardson", "complex-step"]), default="central",
              show_default=True, help="Finite-difference method to sweep.")
@click.option("--format", "fmt", type=click.Choice(["human", "json"]), default="human", show_default=True)
@click.option("--seed", type=int, help="Seed for random values, overriding the spec's.")
def sweep(spec, method, fmt, seed):
    """Plot error against step size (1e-1 … 1e-14) at each param's worst entry.

    Shows the V of truncation error (large steps) against round-off (small steps), with the step
    the check uses marked.
    """
    from .errors import SpecError
    from .report import render_sweep
    from .spec import load
    from .sweep import sweep as run_sweep

    try:
        curves = run_sweep(load(spec), method=method, seed=seed)
    except SpecError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    render_sweep(curves, sys.stdout, fmt, spec)


def _mode(value):
    """Validate --mode early, so a typo is a usage error (exit 2)."""
    if value is None:
        return None
    from .spec import parse_mode

    try:
        return parse_mode(value, _UsagePlace())
    except click.BadParameter:
        raise


class _UsagePlace:
    def error(self, message: str) -> click.BadParameter:
        return click.BadParameter(message, param_hint="--mode")


def entry() -> None:
    """Console-script entry: internal errors exit 2 with a one-line message, not a traceback."""
    try:
        main(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence at the CLI edge
        click.echo(f"gradcheck: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
