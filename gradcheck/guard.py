"""Load and check one spec file under the run's guards: a per-spec time limit, and memory trouble as a row.

The time limit is a SIGALRM interval timer armed around loading and checking one path, so it works
wherever that path is checked in a main thread: the CLI's loop or a worker process of a pool.
Where there is no SIGALRM (Windows) or the caller is not the main thread, specs run unlimited.
"""

from __future__ import annotations

import time
from dataclasses import replace

from . import budget
from .check import check
from .deadline import SpecTimeout, can_time_out, time_limit, timeout_error  # noqa: F401 - also used from here
from .errors import SpecError
from .limits import Limits, size
from .lint import lint
from .model import CheckOptions
from .options import RunOptions
from .results import SpecResult, error_result
from .spec import load


UNCOUNTED = 2**62  # a steps limit the loader never reaches: check_path counts with the run's own mode


class InternalError(SpecError):
    """A bug of gradcheck's met while checking one spec: the row says so, the batch goes on, the run exits 2."""


def check_path(path: str, options: RunOptions | None = None) -> SpecResult:
    """Load and check one file; a bad file becomes an error result, never an exception."""
    options = options or RunOptions()
    started = time.perf_counter()
    try:
        recount = options.mode is not None or options.method is not None or options.settings_from == "cli"
        # the run's mode or method beats the spec's: the loader must not refuse by the spec's own count
        spec = load(path, replace(options.limits, steps=UNCOUNTED) if recount else options.limits)
        model = budgeted_model(spec.model, options)
        if recount or model is not spec.model:  # the budget of the work that will really run
            budget.require(model, options.limits)
    except SpecError as exc:
        return error_result(path, exc).timed(started)
    # --memory is the batch budget asked for; the check gets less if --max-memory needs it
    memory = budget.batch_memory(model, options.limits, options.memory)
    result = check(spec, replace(options, memory=max(1, memory)))
    return result.with_problems(lint(spec.model), options.strict).timed(started)  # seconds include loading


def budgeted_model(model, options: RunOptions):
    """The model with the method and mode the run will use, for the budget (the loader saw the spec's own).

    Without it, `check: {mode: "sample:1"}` passes the step limit at load while --settings-from cli
    (or --mode full) then checks every entry.
    """
    own = model.check if options.settings_from == "spec" else CheckOptions()
    method, mode = options.method or own.method, options.mode or own.mode
    if (method, mode) == (model.check.method, model.check.mode):
        return model
    return replace(model, check=replace(model.check, method=method, mode=mode))


def check_one(path: str, limits: Limits | None = None, options: RunOptions | None = None) -> SpecResult:
    """Load and check one file within the limits; whatever happens, one result row comes back.

    `limits`, when given, replaces the options' limits (the older way of calling this).
    """
    options = options or RunOptions()
    if limits is not None:
        options = replace(options, limits=limits)
    started = time.perf_counter()
    try:
        with time_limit(options.limits.timeout):
            return check_path(path, options)
    except SpecTimeout:
        return error_result(path, timeout_error(path, options.limits.timeout)).timed(started)
    except MemoryError:
        message = (f"ran out of memory while checking: the machine had less free memory than the estimate "
                   f"allowed (the limit is {size(options.limits.memory)}); use smaller matrices, or lower "
                   f"--max-memory so that such specs are refused before they start")
        return error_result(path, SpecError(message, path, 1, 1)).timed(started)
    except Exception as exc:  # noqa: BLE001 - a bug of ours must not cost the other specs their rows
        message = f"internal error (a bug in gradcheck, please report it): {type(exc).__name__}: {exc}"
        return error_result(path, InternalError(message, path, 1, 1)).timed(started)
