"""Run one task per spec file, in worker processes with `-j N`; results come back in path order.

Workers are started with the "spawn" method, so each begins with a fresh interpreter: the BLAS
thread limits below are set in the worker before it first imports numpy (with "fork" a parent
that had already imported numpy would pass on its thread pools, and the limits would do nothing).
N workers each using every core would fight over the cores; one BLAS thread per worker does not.

This module imports neither numpy nor the engine at import time, so a worker's initializer runs
before numpy is loaded.
"""

from __future__ import annotations

import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from functools import partial
from typing import IO, Callable, Iterator, Sequence

BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")

_numpy_loaded_before_limits: bool | None = None  # set in workers, for `worker_environment`


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a batch, carrying the rows finished before it (in path order) and the batch size."""

    def __init__(self, done: list, total: int):
        super().__init__()
        self.done = done
        self.total = total


def check_file(path: str, options):
    """Check one spec file (the per-file task of `gradcheck run`), within the options' limits and time limit."""
    from .guard import check_one

    result = check_one(path, options=options)
    return result if options.keep_entries else result.without_entries()


def validate_file(path: str, limits=None):
    """Validate one spec file (the per-file task of `gradcheck validate`)."""
    from .validate import validate_path

    return validate_path(path, limits)


def resolve_jobs(jobs: int) -> int:
    """0 means one worker per CPU."""
    return max(1, os.cpu_count() or 1) if jobs == 0 else jobs


def run_all(task: Callable, paths: Sequence[str], jobs: int = 1,
            on_done: Callable[[str], None] | None = None) -> list:
    """task(path) for every path, in `jobs` processes; the results are in the order of `paths`."""
    jobs = min(resolve_jobs(jobs), len(paths))
    if jobs <= 1:
        results = []
        try:
            for path in paths:
                results.append(task(path))
                if on_done:
                    on_done(path)
        except KeyboardInterrupt:
            raise Interrupted(results, len(paths)) from None
        return results
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=limit_blas_threads)
    futures: dict = {}
    try:
        futures = {pool.submit(task, path): path for path in paths}
        for future in as_completed(futures):
            future.result()  # an internal error in a worker surfaces here, not after the rest ran
            if on_done:
                on_done(futures[future])
        return [future.result() for future in futures]  # dicts keep insertion (path) order
    except KeyboardInterrupt:
        done = [f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None]
        _stop_workers(pool)
        raise Interrupted(done, len(paths)) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """On Ctrl-C: drop the queued specs and end the running ones now (workers ignore SIGINT themselves)."""
    # The pool's private `_processes` is read (defensively) because concurrent.futures offers no public
    # way to stop a task that is already running; without it a long spec would run on after Ctrl-C.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def limit_blas_threads() -> None:
    """Worker initializer: one BLAS/OpenMP thread per worker, set before numpy is imported.

    Workers also ignore SIGINT: a Ctrl-C reaches the whole process group, and the parent alone
    decides what to report (the rows done so far) and stops the workers.
    """
    global _numpy_loaded_before_limits
    _numpy_loaded_before_limits = "numpy" in sys.modules
    for var in BLAS_THREAD_VARS:
        os.environ[var] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def worker_environment(_path: str | None = None) -> dict:
    """What a worker sees: the BLAS variables, and whether numpy was loaded before they were set.

    Takes (and ignores) a path so that it can run as a task: tests/test_runner.py uses it.
    """
    return {"numpy_loaded_before_limits": _numpy_loaded_before_limits,
            **{var: os.environ.get(var) for var in BLAS_THREAD_VARS}}


def check_task(options) -> Callable:
    """A picklable per-file task for `run`, given the run's RunOptions."""
    return partial(check_file, options=options)


def validate_task(limits=None) -> Callable:
    """A picklable per-file task for `validate`."""
    return partial(validate_file, limits=limits)


@contextmanager
def progress(total: int, stream: IO[str] | None = None) -> Iterator[Callable[[str], None] | None]:
    """A progress bar on `stream` (stderr) while specs run, only when it is a terminal; else None."""
    stream = sys.stderr if stream is None else stream
    if total < 1 or not (hasattr(stream, "isatty") and stream.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=stream, force_terminal=True)
    columns = (TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[last]}", style="dim"))
    with Progress(*columns, console=console, transient=True) as bar:
        task_id = bar.add_task("checking", total=total, last="")

        def advance(path: str) -> None:
            bar.update(task_id, advance=1, last=os.path.basename(path))

        yield advance
