"""The command line: a command parses its flags into one RunOptions, calls `execute`, renders by format name.

Nothing heavy is imported at module level (numpy, yaml and rich load inside the commands), so
`gradcheck --help` starts fast; benchmarks/startup.py measures it.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import IO

import click

from . import __version__
from .batch import collect, execute, execute_validate
from .cli_options import (COLOR_CHOICES, SEED, Output, SettingType, exclude_options, jobs_option, limit_options,
                          limits_from, make_output, output_options, parse_mode, run_context, settings_from_option,
                          stdin_paths, strict_option, timeout_option)
from .config import ConfiguredCommand
from .formats import reporter
from .options import BATCH_MEMORY, METHODS, RunOptions

EXIT_INTERNAL = 2  # a usage error, or a bug of ours
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM: CI cancellation, `timeout`; reported like Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader went away (`gradcheck run specs/ | head`)
WRITE_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}  # output trouble


def require_specs(paths, options: RunOptions | None = None) -> list[str]:
    """The spec files under `paths`; none at all is a usage error."""
    files = collect(paths) if options is None else collect(paths, options.exclude, options.force_exclude)
    if not files:
        raise click.UsageError(f"no spec files (*.yaml, *.yml) under {', '.join(paths)}")
    return files


def report(run_specs, out: Output, command: str, total: int) -> None:
    """Run (with a progress bar on a terminal's stderr), render through the chosen format, exit.

    Ctrl-C renders the rows finished so far and exits 130; a closed stdout exits 141 quietly; a row
    where gradcheck itself failed (an internal error) is reported with the others, then exits 2.
    """
    import signal

    from .results import summarize
    from .runner import Interrupted, Terminated, progress

    render = reporter(out.format)
    options = out.render_options(command)
    with out.stream() as stream:
        try:
            with Terminated.as_interrupt(), progress(0 if out.quiet else total) as on_done:
                result = run_specs(on_done)
        except Interrupted as stop:
            emit(render, summarize(stop.done), stream, options)
            terminated = stop.signal == signal.SIGTERM
            click.echo(f"gradcheck: {'terminated' if terminated else 'interrupted'} after {len(stop.done)} of "
                       f"{stop.total} specs", err=True)
            sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: exit 2 with one line, never a traceback
            say(f"gradcheck: internal error: {type(exc).__name__}: {exc}")
            sys.exit(EXIT_INTERNAL)
        emit(render, result, stream, options)
    sys.exit(EXIT_INTERNAL if internal_errors(result) else result.exit_code)


def emit(render, result, stream: IO[str], options: dict) -> None:
    """Render; if the reader has gone (a closed pipe), stop quietly with 141."""
    try:
        render(result, stream, **options)
        stream.flush()
    except BrokenPipeError:
        silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
    except OSError as exc:  # a full disk, /dev/full, a quota: say so, not "internal error"
        cannot_write(exc)
    except Exception as exc:  # noqa: BLE001 - a bug of ours in a reporter
        say(f"gradcheck: internal error: {type(exc).__name__}: {exc}")
        sys.exit(EXIT_INTERNAL)


def cannot_write(exc: OSError):
    """The report could not be written (no space left, an I/O error): one clear line, exit 2."""
    say(f"gradcheck: cannot write the report: {exc.strerror or exc}")
    silence_stdout()  # the interpreter's last flush of stdout would fail again
    sys.exit(EXIT_INTERNAL)


def internal_errors(result) -> list:
    """Rows where gradcheck itself failed (reported with the others; then the run exits 2)."""
    from .guard import InternalError

    bugs = [s for s in result.specs if isinstance(s.error, InternalError)]
    for s in bugs:
        say(f"gradcheck: {s.message}")
    return bugs


def say(message: str) -> None:
    """One line on stderr, escaped as the human format escapes (a path or a spec's text may be in it)."""
    from .formats.escape import human

    click.echo(human(message), err=True)


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (tests capture stdout)
        pass


# ----------------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gradcheck")
def main():
    """Check hand-derived gradients of matrix functions written as YAML specs.

    Exit status: 0 all specs pass, 1 a spec failed or is invalid, 2 usage or internal error,
    130 interrupted (Ctrl-C; the specs checked so far are reported), 143 terminated (SIGTERM: reported
    the same way), 141 output pipe closed.
    """


SPEC_PATHS = click.Path(exists=True, allow_dash=True)


@main.command(cls=ConfiguredCommand)
@click.argument("paths", nargs=-1, required=True, type=SPEC_PATHS)
@output_options()
@jobs_option
@click.option("--rtol", type=SettingType("rtol"), help="Relative tolerance, 1e-15 to 0.1 (default 1e-6 for central).")
@click.option("--atol", type=SettingType("atol"),
              help="Absolute floor under each entry's numeric error, 0 to 1e-3 (default 0).")
@click.option("--eps", type=SettingType("eps"),
              help="Finite-difference step base, 1e-300 to 0.1; the step is eps·max(1,|θ|) (default cbrt(machine eps)).")
@click.option("--seed", type=SEED, help="Seed for random values (0 to 2**128 - 1), overriding the spec's.")
@settings_from_option
@click.option("--method", type=click.Choice(METHODS),
              help="Finite-difference method (default central, or the spec's check.method).")
@click.option("--mode", callback=parse_mode, metavar="full|fast|sample:K",
              help="Check every entry (full, default), K random entries per param, or random directions (fast).")
@click.option("--memory", type=click.IntRange(1, 2**20), metavar="MB", default=BATCH_MEMORY // 2**20,
              show_default=True,
              help="Memory budget for one batch of perturbed evaluations (less if --max-memory needs it).")
@strict_option
@exclude_options
@limit_options()
def run(paths, fmt, output, color, width, quiet, verbose, jobs, rtol, atol, eps, seed, settings_from, method, mode,
        memory, strict, exclude, extend_exclude, force_exclude, **limit_values):
    """Check the specs in PATHS (files, or folders searched for *.yaml and *.yml; - reads one from stdin).

    Options may also be set in [tool.gradcheck] of pyproject.toml or as GRADCHECK_<OPTION> variables
    (the command line wins; see the README, "Configuration").

    Exit status: 0 all specs pass, 1 a spec failed or is invalid (or over a limit), 2 usage or
    internal error, 130 interrupted (Ctrl-C; the specs checked so far are reported), 143 terminated
    (SIGTERM; the same), 141 output pipe closed.
    """
    out = make_output(fmt, output, color, width, quiet, verbose)
    limits = limits_from(limit_values)
    paths = stdin_paths(paths, limits)
    options = RunOptions(rtol=rtol, atol=atol, eps=eps, seed=seed, method=method, mode=mode, memory=memory * 2**20,
                         limits=limits, jobs=jobs, settings_from=settings_from,
                         keep_entries=(out.verbose and out.format == "human") or out.format == "html",  # drawn there only
                         strict=bool(strict), **run_context(exclude, extend_exclude, force_exclude))
    files = require_specs(paths, options)
    report(lambda on_done: execute(paths, options, on_done), out, "run", len(files))


@main.command(cls=ConfiguredCommand)
@click.argument("paths", nargs=-1, required=True, type=SPEC_PATHS)
@output_options(verbose_help="Also each spec's time, and its notes (info: params without an expect formula).")
@jobs_option
@strict_option
@exclude_options
@limit_options()
def validate(paths, fmt, output, color, width, quiet, verbose, jobs, strict, exclude, extend_exclude, force_exclude,
             **limit_values):
    """Validate the specs in PATHS without computing anything.

    Loads each spec and checks its keys, names, layer shapes and expressions (and that every expect
    has its param's shape); draws no numbers and evaluates nothing. Same formats and exit status
    as run: 0 all valid, 1 a spec is invalid, 2 usage or internal error.
    """
    out = make_output(fmt, output, color, width, quiet, verbose)
    limits = limits_from(limit_values)
    paths = stdin_paths(paths, limits)
    options = RunOptions(limits=limits, jobs=jobs, strict=bool(strict),
                         **run_context(exclude, extend_exclude, force_exclude))
    files = require_specs(paths, options)
    report(lambda on_done: execute_validate(paths, options, on_done), out, "validate", len(files))


@main.command(name="explain")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@output_options(formats=("human", "json"), levels=False)
@click.option("--emit", type=click.Choice(["python"]),
              help="Instead, print a standalone numpy function computing J and every gradient.")
@timeout_option
def explain_command(spec, fmt, output, color, width, emit, timeout):
    """Derive the gradients of SPEC symbolically, as UFLDL's backpropagation tables.

    Per term, a table with each layer's weight, f, f′, error signal δ and input z, in the spec's own
    names; then, per param, the gradient as one expression of the expression language, ready to
    paste under expect:. Exit status: 0 done, 1 invalid spec (or no closed form for --emit), 2 usage.
    """
    out = make_output(fmt or "human", output, color, width)
    from .errors import SpecError

    from .deadline import SpecTimeout, time_limit, timeout_error

    with out.stream() as stream:
        try:
            with time_limit(timeout):
                status = explain_spec(spec, out, emit, stream)
        except SpecTimeout:
            status = explain_error(out, stream, spec, str(timeout_error(spec, timeout)))
        except SpecError as exc:
            from .problems import problems_of

            status = explain_error(out, stream, spec, str(exc), problems_of(exc))
    sys.exit(status)


def explain_spec(path: str, out: Output, emit: str | None, stream: IO[str]) -> int:
    """Render the explanation (or the emitted code) of one spec; the exit status."""
    from .emit import emit_python
    from .explain import explain
    from .loader import build_model
    from .source import for_argument
    from .spec import read
    from .symbolic import NoClosedForm
    from .yamlsrc import parse_yaml

    model = build_model(parse_yaml(read(for_argument(path)), path))
    if emit == "python":
        try:
            stream.write(emit_python(model))
        except NoClosedForm as exc:
            say(f"gradcheck: {path}: cannot emit python: {exc}")
            return 1
        return 0
    explanation = explain(model)
    if out.fmt == "json":
        from .formats.explanation import render_explanation_json

        render_explanation_json(explanation, stream)
    else:
        from .formats.explanation import render_explanation

        render_explanation(explanation, stream, COLOR_CHOICES[out.color], out.width)
    return 0


def explain_error(out: Output, stream: IO[str], path: str, message: str, problems=()) -> int:
    """An invalid spec, through the chosen format (every problem of it): exit status 1."""
    if out.fmt == "json":
        import json

        from .formats.escape import json_text

        data = {"path": path, "error": message, "problems": [p.to_json() for p in problems]}
        stream.write(json_text(json.dumps(data, indent=2, ensure_ascii=False)) + "\n")
    else:
        for line in map(str, problems) if problems else [message]:
            say(line)
    return 1


@main.command()
@click.option("-o", "--output", metavar="FILE", help="Write the schema to FILE instead of stdout.")
def schema(output):
    """Print the JSON Schema (draft 2020-12) of the spec format, for editors and CI validators."""
    from .schema import schema_text

    with Output(path=output).stream() as stream:
        stream.write(schema_text())


def _register_more_commands() -> None:
    """sweep and watch (cli_extra.py) share run's settings; they live beside this module to keep it small."""
    from .cli_extra import sweep, watch

    main.add_command(sweep)
    main.add_command(watch)


_register_more_commands()


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
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            say(f"gradcheck: internal error: {type(exc).__name__}: {exc}")
            sys.exit(EXIT_INTERNAL)
        cannot_write(exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence at the CLI edge
        say(f"gradcheck: internal error: {type(exc).__name__}: {exc}")
        sys.exit(2)
