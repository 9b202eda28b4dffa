"""The commands beside run and validate that share their settings: `sweep` (error against step) and `watch`.

Registered on the `gradcheck` group by cli.py. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import importlib
import sys

import click

from .cli_options import (COLOR_CHOICES, SEED, SettingType, jobs_option, limit_options, limits_from, make_output,
                          output_options, settings_from_option, timeout_option)
from .options import METHODS, RunOptions

EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


def setting_options(command):
    """--rtol, --atol, --eps, --seed, --settings-from, --method: the check settings `run` takes, the same way."""
    options = [
        click.option("--rtol", type=SettingType("rtol"), help="Relative tolerance, 1e-15 to 0.1 (as run)."),
        click.option("--atol", type=SettingType("atol"), help="Absolute floor, 0 to 1e-3 (as run)."),
        click.option("--eps", type=SettingType("eps"), help="Finite-difference step base, 1e-300 to 0.1 (as run)."),
        click.option("--seed", type=SEED, help="Seed for random values (0 to 2**128 - 1), overriding the spec's."),
        settings_from_option,
        click.option("--method", type=click.Choice(METHODS),
                     help="Finite-difference method (default: the spec's check.method, else central; as run)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run_options(rtol, atol, eps, seed, method, settings_from, **fields) -> RunOptions:
    return RunOptions(rtol=rtol, atol=atol, eps=eps, seed=seed, method=method, settings_from=settings_from, **fields)


# ----------------------------------------------------------------------------- sweep


def plot_path(ctx, param, value):
    """--plot FILE.png|svg: the suffix chooses the format; matplotlib (gradcheck[plot]) must be installed."""
    if value is None:
        return None
    from .formats.sweepplot import PLOT_SUFFIXES

    if not value.lower().endswith(PLOT_SUFFIXES):
        raise click.BadParameter(f"{value}: the file name must end in .png or .svg", param_hint="'--plot'")
    try:
        importlib.import_module("matplotlib")  # only asking whether the optional extra is there
    except ImportError:
        raise click.BadParameter('needs matplotlib, an optional extra: pip install "gradcheck[plot]" '
                                 '(the text plot and --format json need nothing more)', param_hint="'--plot'") from None
    return value


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--against", type=click.Choice(["backprop", "expect"]), default="backprop", show_default=True,
              help="The analytic gradient whose error is plotted: backprop, or the spec's expect formula.")
@setting_options
@output_options(formats=("human", "json"), levels=False)
@click.option("--plot", "plot", metavar="FILE.png|svg", callback=plot_path,
              help='Also draw the curves into FILE with matplotlib (pip install "gradcheck[plot]").')
@timeout_option
def sweep(paths, against, rtol, atol, eps, seed, settings_from, method, fmt, output, color, width, plot, timeout):
    """Plot error against step size (1e-1 … 1e-14) at each param's worst entry, for the specs in PATHS.

    Uses run's settings: the spec's check: section (its method, so the step marked is the step the
    check uses), merged with the options as run merges them. Plots the relative error
    |g − n| / max(|g|, |n|) of backprop (or, with --against expect, of the expect formula) against the
    numeric derivative: the V of truncation error (large steps) against round-off (small steps).
    Exit status: 0 done, 1 a spec is invalid, 2 usage error.
    """
    from .cli import emit, require_specs
    from .formats.sweepplot import plot_files, render_sweep_human, render_sweep_json

    out = make_output(fmt or "human", output, color, width)
    options = run_options(rtol, atol, eps, seed, method, settings_from)
    swept = [sweep_one(path, options, against, timeout) for path in require_specs(paths)]
    with out.stream() as stream:  # a closed pipe or a full disk end as run's do (141, or one line and 2)
        if out.fmt == "json":
            emit(lambda data, to: render_sweep_json(data, to), swept, stream, {})
        else:
            emit(lambda data, to: render_sweep_human(data, to, COLOR_CHOICES[out.color], out.width), swept, stream, {})
    if plot:
        panels = plot_files(swept, plot)
        click.echo(f"gradcheck: {panels} curve{'s' * (panels != 1)} drawn in {plot}", err=True)
    sys.exit(1 if any(s.error for s in swept) else 0)


class Swept:
    """One spec's sweep: its curves, or the located error that stopped it."""

    def __init__(self, path: str, name: str, curves=(), notes=(), error=None):
        self.path, self.name, self.curves, self.notes, self.error = path, name, list(curves), list(notes), error


def sweep_one(path: str, options: RunOptions, against: str, timeout: float) -> Swept:
    """Load and sweep one spec within its time limit; a bad spec is its located error."""
    import os

    from .deadline import SpecTimeout, time_limit, timeout_error
    from .errors import SpecError
    from .spec import load
    from .sweep import sweep as run_sweep

    name = os.path.splitext(os.path.basename(path))[0]
    try:
        with time_limit(timeout):
            spec = load(path)
            name = spec.name
            curves = run_sweep(spec, options, side=against)
    except SpecTimeout:
        return Swept(path, name, error=timeout_error(path, timeout))
    except SpecError as exc:
        return Swept(path, name, error=exc)
    left_out = [p for p in spec.param_names if p not in {c.param for c in curves}]
    notes = [f"no expect formula for {', '.join(left_out)}: nothing to sweep there"] if left_out else []
    return Swept(path, name, curves, notes)


# ----------------------------------------------------------------------------- watch


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@setting_options
@click.option("--color", type=click.Choice(list(COLOR_CHOICES)), default="auto", show_default=True,
              help="Colour; auto means on a terminal, unless NO_COLOR is set.")
@click.option("--width", type=click.IntRange(40, 10_000), metavar="N", help="Line width (default: the terminal's).")
@click.option("-q", "--quiet", is_flag=True, help="Only failures, errors and the summary.")
@click.option("-v", "--verbose", is_flag=True, help="Also each param's worst entries, and heatmaps of failing ones.")
@jobs_option
@click.option("--interval", type=click.FloatRange(0.05, 60), default=0.5, show_default=True, metavar="SECONDS",
              help="How often to look for changed files.")
@click.option("--all", "every_spec", is_flag=True,
              help="Re-check every spec under PATHS whenever any of them changes (default: only the changed ones).")
@limit_options()
def watch(paths, rtol, atol, eps, seed, settings_from, method, color, width, quiet, verbose, jobs, interval,
          every_spec, **limit_values):
    """Check the specs in PATHS, then re-check each one you save, redrawing the report.

    Looks at the files' modification times every --interval seconds (no extra dependency); a spec that
    changed is checked again (with --all, every spec), a new file under a folder is picked up, a deleted
    one dropped. Stop with Ctrl-C (exit 130) or SIGTERM (exit 143).
    """
    from .watch import Watcher

    out = make_output("human", None, color, width, quiet, verbose)
    options = run_options(rtol, atol, eps, seed, method, settings_from, limits=limits_from(limit_values), jobs=jobs,
                          keep_entries=verbose)
    status = Watcher(paths, options, out, interval, every_spec=every_spec).run()
    sys.exit(status)
