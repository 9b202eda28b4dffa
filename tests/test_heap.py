"""heap.keep_freed_memory: after it, a freed batch-sized array stays in the process's heap (glibc's mallinfo2)."""

from __future__ import annotations

import ctypes
import platform

import numpy as np
import pytest

from gradcheck import heap


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mallinfo2():
    try:
        call = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        pytest.skip("no glibc mallinfo2 here")
    call.restype = _MallInfo2
    return call


def test_freed_batch_memory_stays_in_the_heap():
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    mallinfo2 = _mallinfo2()
    assert heap.keep_freed_memory() is True
    assert heap.keep_freed_memory() is True  # once per process, the same answer again
    size = 4 << 20
    array = np.ones(size // 8)
    assert mallinfo2().hblkhd < size  # not a fresh mapping of its own
    del array
    assert mallinfo2().fordblks >= size  # freed, and kept for the next batch rather than handed back
