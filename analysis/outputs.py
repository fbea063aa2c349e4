"""Writing a stage's output folder whole or not at all.

Owns: the one way a stage replaces its folder under the output directory (``clean/``, ``weights/``, …):
files are written into a temporary folder beside it, which replaces the old folder only once everything
was written, so a failed stage leaves the previous outputs whole; and writing some files in a background
thread while the stage writes the others (:func:`aside`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def publishing(out: str | Path, name: str) -> Iterator[Path]:
    """A temporary folder beside ``out/name`` that replaces ``out/name`` when the block ends without an
    error."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out))
    try:
        yield tmp
        target = out / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


@contextmanager
def aside() -> Iterator[Callable]:
    """``write(function, *args, **kwargs)`` calls ``function`` in one background thread, in the order given,
    while the block goes on; leaving the block waits for them and raises the first one's error. Arrow's
    Parquet and CSV writers release the GIL, so a large Parquet file is written while the block writes the
    other files (each file the same bytes as when written alone)."""
    with ThreadPoolExecutor(1) as pool:
        futures = []
        yield lambda function, *args, **kwargs: futures.append(pool.submit(function, *args, **kwargs))
        for future in futures:
            future.result()
