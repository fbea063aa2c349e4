"""Writing a stage's figures: now, or in a second process while the next stage runs.

Owns: drafting figure files in a temporary folder and moving them into place whole
(:func:`write_figures`), and the background writer of a headless run (:class:`BackgroundFigures`).

Drawing is about a third of a run on the bundled survey and needs nothing the later stages make, so a
headless run hands each figure to a worker process (started with ``spawn``: no state is inherited from
this process) and goes on with the next stage. When the stages are done, the figures not yet started are
taken back and drawn here, so both cores work until the end. Each figure is drawn by the same function
from the same tables as in the stage itself, with its layout pinned
(:func:`analysis.figures.style.pin_layout`), so the files are the same bytes either way (tested).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path


def write_figures(draw: Callable[..., dict], fig_dir: str | Path, arguments: dict) -> dict[str, list[Path]]:
    """Draw the figures (``draw(**arguments)`` returns them by name) and write each (PNG and SVG) into
    ``fig_dir``, each file drafted in a temporary folder and moved into place whole; returns the paths by
    figure name."""
    from analysis import figures

    made = draw(**arguments)
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".figures-", dir=fig_dir))
    try:
        drafts = figures.save_figures(made, tmp)
        for paths in drafts.values():
            for path in paths:
                os.replace(path, fig_dir / path.name)
    finally:
        shutil.rmtree(tmp)
    return {name: [fig_dir / p.name for p in paths] for name, paths in drafts.items()}


def _ready() -> None:
    """The worker's first job: import the drawing code and register the fonts before any figure is due."""
    from analysis import figures

    figures.load_labels("zh")


class _Job:
    """One figure: running in the worker, or taken back and drawn in this process."""

    def __init__(self, future: Future, draw: Callable, fig_dir: Path, arguments: dict):
        self.future, self.draw, self.fig_dir, self.arguments = future, draw, fig_dir, arguments
        self.drawn_here: dict | None = None

    def take_back(self) -> None:
        """Draw the figure here when the worker has not started it."""
        if self.future.cancel():
            self.drawn_here = write_figures(self.draw, self.fig_dir, self.arguments)

    def result(self) -> dict[str, list[Path]]:
        if self.drawn_here is None:
            try:
                return self.future.result()
            except BrokenProcessPool:  # the worker died (killed, or could not start): draw it here
                self.drawn_here = write_figures(self.draw, self.fig_dir, self.arguments)
        return self.drawn_here


class Drawing(Mapping):
    """Figure paths by name from jobs that may still be running; reading it waits for them (and raises the
    error of a figure that failed)."""

    def __init__(self, jobs: list[_Job]):
        self._jobs = jobs
        self._written: dict[str, list[Path]] | None = None

    def _paths(self) -> dict[str, list[Path]]:
        if self._written is None:
            paths = {}
            for job in self._jobs:
                paths.update(job.result())
            self._written = paths
        return self._written

    def __getitem__(self, name: str) -> list[Path]:
        return self._paths()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths())

    def __len__(self) -> int:
        return len(self._paths())


class BackgroundFigures:
    """Figures drawn in ``workers`` spawned processes (default: one fewer than the machine's cores, at least
    one and at most four — a run has nine figures, and each worker pays about 2 CPU s of imports) while the
    caller goes on; use as a context manager and call :meth:`finish` before reading the files."""

    def __init__(self, workers: int | None = None):
        workers = workers or min(4, max(1, (os.cpu_count() or 2) - 1))
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        self._jobs: list[_Job] = []
        self._pool.submit(_ready)  # start the worker now, while the first stage runs

    def submit(self, draw: Callable[..., dict], fig_dir: str | Path, names: tuple[str, ...], arguments: dict):
        """Queue one job per figure in ``names`` (``draw(names=(name,), **arguments)``); returns a
        :class:`Drawing` of their paths."""
        jobs = []
        for name in names:
            one = {**arguments, "names": (name,)}
            try:
                future = self._pool.submit(write_figures, draw, Path(fig_dir), one)
            except BrokenProcessPool:
                future = Future()
                future.set_exception(BrokenProcessPool("the figure worker stopped"))
            jobs.append(_Job(future, draw, fig_dir, one))
        self._jobs += jobs
        return Drawing(jobs)

    def finish(self) -> None:
        """Draw here every figure the worker has not started (the last queued first), then wait for the
        rest. A failed figure raises its error when its :class:`Drawing` is read."""
        for job in reversed(self._jobs):
            job.take_back()
        wait([job.future for job in self._jobs if job.drawn_here is None])

    def __enter__(self) -> BackgroundFigures:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
