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
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from functools import partial
from typing import IO, Callable, Iterator, Sequence

BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")

_numpy_loaded_before_limits: bool | None = None  # set in workers, for `worker_environment`


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a batch, carrying the rows finished before it (in path order) and the batch size."""

    def __init__(self, done: list, total: int):
        super().__init__()
        self.done = done
        self.total = total
        self.signal = Terminated.received or signal.SIGINT  # which signal stopped the batch (130 or 143)


class Terminated:
    """SIGTERM handled as Ctrl-C is: CI cancellation and `timeout` send it, and they deserve the partial report."""

    received: int | None = None

    @classmethod
    @contextmanager
    def as_interrupt(cls) -> Iterator[None]:
        """While the block runs (in the main thread), SIGTERM raises KeyboardInterrupt and is remembered."""
        cls.received = None
        try:
            previous = signal.signal(signal.SIGTERM, cls._handle)
        except (ValueError, OSError):  # not the main thread: leave SIGTERM as it was
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    @classmethod
    def _handle(cls, signum, _frame):
        cls.received = signum
        raise KeyboardInterrupt


def check_file(path: str, options):
    """Check one spec file (the per-file task of `gradcheck run`), within the options' limits and time limit."""
    from .guard import check_one

    result = check_one(path, options=options)
    return result if options.keep_entries else result.without_entries()


def validate_file(path: str, limits=None, strict: bool = False):
    """Validate one spec file (the per-file task of `gradcheck validate`)."""
    from .validate import validate_path

    return validate_path(path, limits, strict)


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
                _started(on_done, [path])
                results.append(task(path))
                if on_done:
                    on_done(path)
        except KeyboardInterrupt:
            raise Interrupted(results, len(paths)) from None
        return results
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=limit_blas_threads,
                               initargs=(os.getpid(),))
    futures: dict = {}
    try:
        futures = {pool.submit(task, path): path for path in paths}
        _started(on_done, paths[:jobs])
        for future in as_completed(futures):
            future.result()  # an internal error in a worker surfaces here, not after the rest ran
            if on_done:
                on_done(futures[future])
            _started(on_done, [p for f, p in futures.items() if not f.done()][:jobs])  # the oldest ones run
        return [future.result() for future in futures]  # dicts keep insertion (path) order
    except KeyboardInterrupt:
        done = [f.result() for f in futures if f.done() and not f.cancelled() and f.exception() is None]
        _stop_workers(pool)
        raise Interrupted(done, len(paths)) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _started(on_done, paths: Sequence[str]) -> None:
    """Tell the progress bar which specs are being checked now (a callback may not care: tests pass lambdas)."""
    started = getattr(on_done, "started", None)
    if started is not None:
        started(paths)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """On Ctrl-C: drop the queued specs and end the running ones now (workers ignore SIGINT themselves)."""
    # The pool's private `_processes` is read (defensively) because concurrent.futures offers no public
    # way to stop a task that is already running; without it a long spec would run on after Ctrl-C.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def limit_blas_threads(parent: int | None = None) -> None:
    """Worker initializer: one BLAS/OpenMP thread per worker, set before numpy is imported.

    Workers also ignore SIGINT: a Ctrl-C reaches the whole process group, and the parent alone
    decides what to report (the rows done so far) and stops the workers.
    """
    global _numpy_loaded_before_limits
    _numpy_loaded_before_limits = "numpy" in sys.modules
    for var in BLAS_THREAD_VARS:
        os.environ[var] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's terminate() must end a worker, not interrupt it
    die_with_parent(os.getppid() if parent is None else parent)


PARENT_POLL = 0.5  # seconds between a worker's looks at whether its parent is still there


def die_with_parent(parent: int) -> None:
    """End this worker when the parent goes, even by SIGKILL (which leaves the parent no chance to stop it).

    On Linux the kernel sends SIGKILL at once (PR_SET_PDEATHSIG); everywhere a daemon thread also polls
    the parent's pid, since PDEATHSIG is tied to the thread that started the worker, not the process.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="gradcheck-parent-watch", daemon=True).start()


def worker_environment(_path: str | None = None) -> dict:
    """What a worker sees: the BLAS variables, and whether numpy was loaded before they were set.

    Takes (and ignores) a path so that it can run as a task: tests/test_runner.py uses it.
    """
    return {"numpy_loaded_before_limits": _numpy_loaded_before_limits,
            **{var: os.environ.get(var) for var in BLAS_THREAD_VARS}}


def check_task(options) -> Callable:
    """A picklable per-file task for `run`, given the run's RunOptions."""
    return partial(check_file, options=options)


def validate_task(limits=None, strict: bool = False) -> Callable:
    """A picklable per-file task for `validate`."""
    return partial(validate_file, limits=limits, strict=strict)


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
               TimeElapsedColumn(), TextColumn("{task.fields[running]}", style="dim", markup=False))
    with Progress(*columns, console=console, transient=True) as bar:
        task_id = bar.add_task("checking", total=total, running="")
        yield Advance(bar, task_id)


class Advance:
    """The progress bar's callbacks: a spec done advances it; the specs being checked now are named."""

    def __init__(self, bar, task_id):
        self.bar, self.task_id = bar, task_id

    def __call__(self, path: str) -> None:
        self.bar.update(self.task_id, advance=1)

    def started(self, paths: Sequence[str]) -> None:
        self.bar.update(self.task_id, running=", ".join(os.path.basename(p) for p in paths))
