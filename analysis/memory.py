"""Handing memory that was freed back to the operating system.

glibc keeps memory freed by worker threads in their own malloc arenas for later reuse. After the demand
stage's estimates, made two batches at a time in threads, that was about half a gigabyte at 150,000
households which the process held without using it (peak 4.14 GB against 3.63 GB when it is handed
back). ``malloc_trim(0)`` hands it back; where the C library has no such call (macOS, Windows, musl)
nothing is done.
"""

from __future__ import annotations

import ctypes
import functools


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
