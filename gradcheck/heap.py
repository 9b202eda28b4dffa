"""Keep freed batch memory in the process (glibc's malloc tuned once, by mallopt).

A full check evaluates thousands of batches, each allocating and freeing the same few temporaries of a few
hundred KiB. By default glibc maps such arrays afresh (mmap) or hands the freed top of its heap back to the
OS (trim), so every batch page-faults its temporaries in again: measured up to 2× the whole run for dense
perturbations (layer norm after a dense layer, dropout, attention; benchmarks/results.md). Raising both
thresholds keeps that memory for the next batch; it is bounded by the batch memory (options.BATCH_MEMORY).
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts on 64-bit; a batch's arrays are below it
TRIM_THRESHOLD = 64 << 20  # free memory kept at the top of the heap before it goes back to the OS

_tuned: list[bool] = []  # once per process


def keep_freed_memory() -> bool:
    """Tune glibc's malloc once for repeated batches; False where there is no glibc mallopt (other platforms)."""
    if not _tuned:
        _tuned.append(_tune())
    return _tuned[0]


def _tune() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
