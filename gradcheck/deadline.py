"""The time limit of one piece of work (checking, validating, explaining or sweeping one spec).

A SIGALRM interval timer armed around the work, so it works wherever that work runs in a main
thread: the CLI's loop or a worker process of a pool. Where there is no SIGALRM (Windows) or the
caller is not the main thread, the work runs unlimited. Light: nothing but the standard library.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

from .errors import SpecError
from .limits import hint


class SpecTimeout(BaseException):
    """Raised by the alarm inside a spec's check; a BaseException so no `except Exception` swallows it."""


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


def timeout_error(path: str, seconds: float) -> SpecError:
    """The row of a spec that ran out of time (at file:1:1: the time went to no one place)."""
    return SpecError(f"gave up after {seconds:g} s, the time limit per spec ({hint('timeout')}); the spec may ask "
                     f"for more work than it seems (large params, many layers)", path, 1, 1)
