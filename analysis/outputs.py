"""Writing a stage's output folder whole or not at all.

Owns: the one way a stage replaces its folder under the output directory (``clean/``, ``weights/``, …):
files are written into a temporary folder beside it, which replaces the old folder only once everything
was written, so a failed stage leaves the previous outputs whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
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
