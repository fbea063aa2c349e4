"""Work on more than one core: how many threads numpy and scipy work is given, and handing back the memory
the threads leave behind.

Numpy's array loops and scipy's sparse products release the GIL, so a few hot spots split their work over
:data:`THREADS` threads (the calibrated variance's groups of variables, the list of analyses' batches, the
soft-duplicate comparison), each keeping its results in order so that the outputs are the same bits as
with one thread.

glibc keeps memory freed by worker threads in their own malloc arenas for later reuse. After the demand
stage's estimates, made two batches at a time, that was about half a gigabyte at 150,000 households which
the process held without using it (peak 4.14 GB against 3.63 GB when it is handed back).
``malloc_trim(0)`` hands it back; where the C library has no such call (macOS, Windows, musl) nothing is
done.
"""

from __future__ import annotations

import ctypes
import functools
import os

THREADS = min(2, os.cpu_count() or 1)  # threads for GIL-releasing numpy work (two cores measured)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return None


def release_free_memory() -> None:
    """Return the heap's free memory to the operating system (glibc ``malloc_trim``; else nothing)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
