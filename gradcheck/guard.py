"""Load and check one spec file under the run's guards: a per-spec time limit, and memory trouble as a row.

The time limit is a SIGALRM interval timer armed around loading and checking one path, so it works
wherever that path is checked in a main thread: the CLI's loop or a worker process of a pool.
Where there is no SIGALRM (Windows) or the caller is not the main thread, specs run unlimited.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import replace

from . import budget
from .check import check
from .errors import SpecError
from .limits import Limits, hint, size
from .options import RunOptions
from .results import SpecResult, error_result
from .spec import load


class SpecTimeout(BaseException):
    """Raised by the alarm inside a spec's check; a BaseException so no `except Exception` swallows it."""


class InternalError(SpecError):
    """A bug of gradcheck's met while checking one spec: the row says so, the batch goes on, the run exits 2."""


def can_time_out() -> bool:
    """Whether a time limit can be enforced here (SIGALRM exists and this is the main thread)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None):
    """Raise SpecTimeout in this thread once `seconds` have passed; no limit for None or 0."""
    if not seconds or not can_time_out():
        yield
        return

    def expire(signum, frame):
        raise SpecTimeout()

    previous_handler = signal.signal(signal.SIGALRM, expire)
    previous_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay:  # someone else's alarm was pending: give back what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(previous_delay - (time.monotonic() - started), 1e-3))


UNCOUNTED = 2**62  # a steps limit the loader never reaches: check_path counts with the run's own mode


def check_path(path: str, options: RunOptions | None = None) -> SpecResult:
    """Load and check one file; a bad file becomes an error result, never an exception."""
    options = options or RunOptions()
    started = time.perf_counter()
    try:
        if options.mode is None and options.method is None:
            spec = load(path, options.limits)
        else:  # the run's mode or method beats the spec's: count the evaluations that run will really make
            spec = load(path, replace(options.limits, steps=UNCOUNTED))
            budget.require_steps(spec.model, options.limits, options.mode, options.method)
    except SpecError as exc:
        return error_result(path, exc).timed(started)
    # --memory is the batch budget asked for; the check gets less if --max-memory needs it
    memory = budget.batch_memory(spec.model, options.limits, options.memory)
    return check(spec, replace(options, memory=max(1, memory)))


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
        message = (f"gave up after {options.limits.timeout:g} s, the time limit per spec ({hint('timeout')}); "
                   f"the spec may ask for more work than it seems (large params, many layers)")
        return error_result(path, SpecError(message, path, 1, 1)).timed(started)
    except MemoryError:
        message = (f"ran out of memory while checking: the machine had less free memory than the estimate "
                   f"allowed (the limit is {size(options.limits.memory)}); use smaller matrices, or lower "
                   f"--max-memory so that such specs are refused before they start")
        return error_result(path, SpecError(message, path, 1, 1)).timed(started)
    except Exception as exc:  # noqa: BLE001 - a bug of ours must not cost the other specs their rows
        message = f"internal error (a bug in gradcheck, please report it): {type(exc).__name__}: {exc}"
        return error_result(path, InternalError(message, path, 1, 1)).timed(started)
