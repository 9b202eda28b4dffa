"""Check one spec file under the run's guards: a per-spec time limit, and memory trouble as a row.

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

from .check import SpecResult, check_path, error_result
from .errors import SpecError
from .limits import DEFAULT, Limits, hint, size


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


def check_one(path: str, limits: Limits | None = None, **overrides) -> SpecResult:
    """Load and check one file within the limits; whatever happens, one result row comes back."""
    limits = limits or DEFAULT
    started = time.perf_counter()
    try:
        with time_limit(limits.timeout):
            return check_path(path, limits, **overrides)
    except SpecTimeout:
        message = (f"gave up after {limits.timeout:g} s, the time limit per spec ({hint('timeout')}); "
                   f"the spec may ask for more work than it seems (large params, many layers)")
        return _row(path, SpecError(message, path, 1, 1), started)
    except MemoryError:
        message = (f"ran out of memory while checking: the machine had less free memory than the estimate "
                   f"allowed (the limit is {size(limits.memory)}); use smaller matrices, or lower --max-memory so "
                   f"that such specs are refused before they start")
        return _row(path, SpecError(message, path, 1, 1), started)
    except Exception as exc:  # noqa: BLE001 - a bug of ours must not cost the other specs their rows
        message = f"internal error (a bug in gradcheck, please report it): {type(exc).__name__}: {exc}"
        return _row(path, InternalError(message, path, 1, 1), started)


def _row(path: str, error: SpecError, started: float) -> SpecResult:
    return replace(error_result(path, error), seconds=time.perf_counter() - started)
