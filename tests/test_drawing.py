"""Figures drawn in the background worker: the same files and bytes as drawn in the stage, every figure
written before the run returns, a figure's input error reaches the caller with its file and column, and a
worker that dies costs time, not figures."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import figures_fixtures as fx
import pytest

from analysis import drawing, figures
from analysis.errors import AnalysisError

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("demand_by_team", "top_services", "unmet_need", "staffing_vs_even", "sensitivity_tornado")


@pytest.fixture(scope="module")
def arguments():
    clean = fx.clean()
    note = figures.data_note(clean["households"], clean["persons"], clean["provenance"])
    outputs = {"results": fx.results(), **fx.staffing()}
    return {"outputs": outputs, "labels": figures.load_labels("zh"), "note": note}


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.slow
def test_figures_drawn_in_the_worker_are_the_bytes_drawn_here(tmp_path, arguments):
    here = drawing.write_figures(figures.make_figures, tmp_path / "here", {**arguments, "names": NAMES})
    with drawing.BackgroundFigures(workers=1) as pool:
        drawn = pool.submit(figures.make_figures, tmp_path / "worker", NAMES, arguments)
        pool.finish()
        assert sorted(drawn) == sorted(here) == sorted(NAMES)
        assert {name: [p.name for p in paths] for name, paths in drawn.items()} == {
            name: [p.name for p in paths] for name, paths in here.items()
        }
    assert len(_bytes(tmp_path / "here")) == 2 * len(NAMES)  # PNG and SVG, no temporary folder left
    assert _bytes(tmp_path / "worker") == _bytes(tmp_path / "here")


@pytest.mark.slow
def test_finish_leaves_every_figure_written_whoever_drew_it(tmp_path, arguments):
    with drawing.BackgroundFigures(workers=1) as pool:
        drawn = [pool.submit(figures.make_figures, tmp_path, NAMES, arguments) for _ in range(2)]
        pool.finish()
        for job in pool._jobs:
            assert job.drawn_here is not None or job.future.done()
    assert all(path.is_file() for d in drawn for paths in d.values() for path in paths)


@pytest.mark.slow
def test_a_figures_input_error_reaches_the_caller_with_its_file_and_column(tmp_path, arguments):
    allocation = arguments["outputs"]["allocation"].drop(columns="required")
    broken = {**arguments, "outputs": {**arguments["outputs"], "allocation": allocation}}
    with drawing.BackgroundFigures(workers=1) as pool:
        drawn = pool.submit(figures.make_figures, tmp_path, ("staffing_vs_even",), broken)
        assert drawn._jobs[0].future.exception() is not None  # drawn (and failed) in the worker
        pool.finish()
        with pytest.raises(AnalysisError, match=r"lacks columns \['required'\]") as error:
            dict(drawn)
    assert error.value.file == "staffing/allocation.csv"
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.slow
def test_a_worker_that_dies_costs_time_not_figures(tmp_path, arguments):
    with drawing.BackgroundFigures(workers=1) as pool:
        pool._pool.submit(int).result()  # the worker is up
        for pid in list(pool._pool._processes):
            os.kill(pid, signal.SIGKILL)
        drawn = pool.submit(figures.make_figures, tmp_path, NAMES[:2], arguments)
        pool.finish()
        paths = dict(drawn)
    assert sorted(paths) == sorted(NAMES[:2])
    assert all(path.is_file() for ps in paths.values() for path in ps)
