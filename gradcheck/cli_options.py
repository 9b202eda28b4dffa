"""The click options shared by gradcheck's commands, and the typed values they parse into.

Light on purpose: nothing heavy is imported here, so `gradcheck --help` starts fast.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Iterator

import click

from .formats import FORMAT_NAMES
from .limits import DEFAULT as DEFAULT_LIMITS
from .limits import EXPRESSION_DEPTH_CEILING, HELP, OPTIONS, parse_size
from .options import MAX_SEED, MAX_TIMEOUT, Mode, setting_problem

MAX_LIMIT = 2**62  # any limit above this is no limit, and larger numbers overflow the estimates' arithmetic

COLOR_CHOICES = {"auto": None, "always": True, "never": False}


@dataclass(frozen=True)
class Output:
    """Where and how a report is written."""

    fmt: str | None = None
    path: str | None = None
    color: str = "auto"
    width: int | None = None
    quiet: bool = False
    verbose: bool = False

    @property
    def format(self) -> str:
        """The format asked for; else github inside GitHub Actions, else human."""
        if self.fmt:
            return self.fmt
        return "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "human"

    def render_options(self, command: str) -> dict:
        return {"color": COLOR_CHOICES[self.color], "width": self.width, "quiet": self.quiet,
                "verbose": self.verbose, "command": command}

    @contextmanager
    def stream(self) -> Iterator[IO[str]]:
        """stdout, or the -o file, written atomically (see `atomic_file`)."""
        if self.path in (None, "-"):
            yield sys.stdout
            return
        with atomic_file(self.path) as handle:
            yield handle


COMMIT_ON_EXIT = (0, 1, 130, 143)  # a report that was rendered: passed, failed, or the rows done before Ctrl-C or SIGTERM


@contextmanager
def atomic_file(path: str) -> Iterator[IO[str]]:
    """A temporary file in `path`'s folder, renamed onto `path` once the report is complete.

    Two runs writing the same -o file each rename a whole report into place (the last one wins)
    instead of interleaving; a run that fails leaves the old file as it was. The temporary file is
    created at once, so an unwritable place is a usage error before any work. Something that is
    not a regular file (/dev/stdout, a FIFO) is written in place: renaming over it would replace it.
    """
    if os.path.exists(path) and not os.path.isfile(path):
        handle = _open_or_usage_error(lambda: open(path, "w", encoding="utf-8"), path)
        try:
            yield handle
        except BaseException:
            try:
                handle.close()
            except OSError:  # the writer met it first and said so: no second message
                pass
            raise
        handle.close()
        return
    import tempfile

    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = _open_or_usage_error(lambda: tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                                              dir=folder), path)
    done, stopped = False, None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            try:
                yield handle
                done = True
            except SystemExit as stop:  # the CLI exits from inside: 130 after Ctrl-C still has a report
                done, stopped = stop.code in COMMIT_ON_EXIT, stop
        if done:
            os.chmod(temp, _mode_for(path))
            os.replace(temp, path)
        if stopped is not None:
            raise stopped
    finally:
        if not done or os.path.exists(temp):
            try:
                os.unlink(temp)
            except OSError:
                pass


def _open_or_usage_error(opener, path: str):
    """Open for writing; an OSError is a usage error naming -o."""
    try:
        return opener()
    except OSError as exc:
        raise click.BadParameter(f"cannot write {path}: {exc.strerror or exc}",
                                 param_hint="'-o' / '--output'") from None


def _mode_for(path: str) -> int:
    """The permissions the report gets: the old file's, else what open() would give (0666 less the umask)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


RUN_VERBOSE = ("Also each param's 10 worst entries, and a heatmap of the per-entry error of a failing param, "
               "each spec's time and its notes (info).")


def output_options(formats=FORMAT_NAMES, levels: bool = True, verbose_help: str = RUN_VERBOSE):
    """--format, -o, --color, --width (and -q/-v): shared by the commands that print reports."""

    def decorate(command):
        options = [
            click.option("--format", "fmt", type=click.Choice(formats),
                         help=f"Report format: {', '.join(formats)} (default human; github when "
                              f"GITHUB_ACTIONS=true)." if "github" in formats else "Output format (default human)."),
            click.option("-o", "--output", metavar="FILE", help="Write the report to FILE instead of stdout."),
            click.option("--color", type=click.Choice(list(COLOR_CHOICES)), default="auto", show_default=True,
                         help="Colour in human output; auto means on a terminal, unless NO_COLOR is set."),
            click.option("--width", type=click.IntRange(40, 10_000), metavar="N",
                         help="Line width of human output (default: the terminal's; 200 off a terminal)."),
        ]
        if levels:
            options += [
                click.option("-q", "--quiet", is_flag=True, help="Only failures, errors and the summary."),
                click.option("-v", "--verbose", is_flag=True, help=verbose_help),
            ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


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
        if not 1 <= found <= MAX_LIMIT:
            self.fail(f"must be from 1 byte to {MAX_LIMIT:,} bytes", param, ctx)
        return found


class SettingType(click.ParamType):
    """rtol, atol or eps: a finite float within its valid range (options.SETTING_RANGES), else a usage error."""

    name = "number"

    def __init__(self, setting: str):
        self.setting = setting

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"not a number: {value!r}", param, ctx)
        problem = setting_problem(self.setting, number)
        if problem:
            self.fail(problem, param, ctx)
        return number


SEED = click.IntRange(0, MAX_SEED - 1)  # the range a spec's seed: has
class FiniteRange(click.FloatRange):
    """A FloatRange that also refuses NaN (which compares false with both ends, so FloatRange lets it in)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail("nan is not a number of seconds", param, ctx)
        return number


TIMEOUT = FiniteRange(0, MAX_TIMEOUT)


def limit_type(field: str):
    """The click type of a limit's option."""
    if field in ("file_size", "memory"):
        return SizeType()
    if field == "timeout":
        return TIMEOUT
    if field == "expression_depth":
        return click.IntRange(1, EXPRESSION_DEPTH_CEILING)
    return click.IntRange(1, MAX_LIMIT)


def limit_options(fields=tuple(OPTIONS)):
    """One option per resource limit (gradcheck.limits); every refusal names its option."""

    def decorate(command):
        for field in reversed(fields):
            option, metavar = OPTIONS[field]
            default = getattr(DEFAULT_LIMITS, field)
            shown = f"{default:g}" if isinstance(default, float) else f"{default:,}"
            command = click.option(option, f"limit_{field}", type=limit_type(field), default=None, metavar=metavar,
                                   help=f"{HELP[field]} [default: {shown}]")(command)
        return command

    return decorate


def limits_from(values: dict):
    """The Limits the command-line options ask for (None keeps a default)."""
    return DEFAULT_LIMITS.raised(**{k[len("limit_"):]: v for k, v in values.items()})


def timeout_option(command):
    """--timeout for the commands that take one spec (explain, sweep); run and validate have it per spec."""
    default = DEFAULT_LIMITS.timeout
    return click.option("--timeout", type=TIMEOUT, default=default, show_default=True, metavar="SECONDS",
                        help="Seconds the spec may take (0: no limit).")(command)


SETTINGS_FROM = ("spec", "cli")


def settings_from_option(command):
    """--settings-from spec|cli: whether a spec's own check: may fill in (and so loosen) the run's settings."""
    return click.option("--settings-from", type=click.Choice(SETTINGS_FROM), default="spec", show_default=True,
                        envvar="GRADCHECK_SETTINGS_FROM", show_envvar=True,
                        help="spec: a spec's check: section sets what the command line leaves open; cli: "
                             "it is ignored, the command line and the defaults decide (for specs from "
                             "others: students, pull requests).")(command)


def jobs_option(command):
    """-j/--jobs: how many worker processes."""
    return click.option("-j", "--jobs", type=click.IntRange(0, 1024), default=1, show_default=True, metavar="N",
                        help="Work in N processes (0: one per CPU); results stay in path order.")(command)


def make_output(fmt, output, color, width, quiet=False, verbose=False) -> Output:
    """The Output the options ask for; -q with -v is a usage error."""
    if quiet and verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose cannot be used together")
    return Output(fmt, output, color, width, quiet, verbose)


def parse_mode(ctx, param, value) -> Mode | None:
    """Validate --mode early, so a typo is a usage error (exit 2)."""
    if value is None:
        return None
    try:
        return Mode.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--mode") from None


def strict_option(command):
    """--strict: a warning (unused param or define, a gradient zero everywhere) fails the spec."""
    return click.option("--strict", is_flag=True, default=None,
                        help="Fail a spec that has warnings (an unused param or define, a gradient that is zero "
                             "at every entry); without it they are reported and the exit status is unchanged.")(command)


def exclude_options(command):
    """--exclude / --extend-exclude: globs of files and folders a folder's walk skips."""
    from .options import DEFAULT_EXCLUDE

    command = click.option("--force-exclude", is_flag=True, default=False,
                           help="Apply the exclude globs to files named on the command line too (for pre-commit, "
                                "which names every changed file).")(command)
    command = click.option("--extend-exclude", multiple=True, metavar="GLOB",
                           help="More globs to skip, added to --exclude (repeatable).")(command)
    return click.option("--exclude", multiple=True, metavar="GLOB", default=DEFAULT_EXCLUDE,
                        help=f"Skip files and folders matching GLOB (a name, or the end of a path: vendor/*) when "
                             f"walking a folder; files named on the command line are checked unless "
                             f"--force-exclude (repeatable; replaces the default {', '.join(DEFAULT_EXCLUDE)}).")(command)


def run_context(exclude, extend_exclude, force_exclude=False) -> dict:
    """What [tool.gradcheck] adds to the options: the project tolerances, and its extend-exclude globs."""
    ctx = click.get_current_context()
    project = ctx.meta.get("gradcheck.project", {})
    extend = tuple(ctx.meta.get("gradcheck.extend_exclude", ())) + tuple(extend_exclude)
    return {"project": tuple(sorted(project.items())), "exclude": tuple(exclude) + extend,
            "force_exclude": bool(force_exclude)}


def stdin_paths(paths, limits) -> list:
    """The paths, `-` replaced by the spec read from standard input (once; a second `-` is a usage error)."""
    if list(paths).count("-") > 1:
        raise click.UsageError("- (standard input) can be given once")
    from .source import read_stdin

    return [read_stdin(limits.file_size) if path == "-" else path for path in paths]
