"""The project installs and runs itself: the lock, pyproject.toml and environment.yml agree; the CLI behaves
as documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import lock  # noqa: E402  (scripts/lock.py: the lock's own reader, not a package)


def _locked() -> dict[str, set[str]]:
    """Locked versions by normalised name (a name has two versions when a marker splits it)."""
    versions: dict[str, set[str]] = {}
    for name, version, _ in lock.pins():
        versions.setdefault(name, set()).add(version)
    return versions


def test_lock_is_made_from_the_current_pyproject():
    assert lock.fresh() == 0, "pyproject.toml's dependency lists changed since the lock: run `make lock`"


def test_every_dependency_is_locked_at_a_version_pyproject_allows():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    locked = _locked()
    for text in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(text)
        name = lock.normalise(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run `make lock`"
        assert all(v in requirement.specifier for v in locked[name]), (name, locked[name], str(requirement))


def test_every_locked_package_has_hashes_and_a_reason():
    """Each pin carries --hash lines (pip's --require-hashes needs them all) and says what needs it."""
    blocks = lock.blocks()
    assert len(blocks) == len(lock.pins()) >= 100
    for block in blocks:
        assert "--hash=sha256:" in block and "# via" in block, block[:200]


def test_the_lock_reader_sees_every_entry():
    """Negative control for the checks above: a pin without hashes, and one with a marker, are read."""
    text = (
        "# header\nalpha==1.0\n    # via beta\n"
        "gamma==2.0 ; python_full_version < '3.12' \\\n    --hash=sha256:ab\n"
    )
    assert lock.pins(text) == [("alpha", "1.0", ""), ("gamma", "2.0", "python_full_version < '3.12'")]
    assert [("--hash" in b) for b in lock.blocks(text)] == [False, True]


def test_lock_resolves_the_marker_branches_for_each_python():
    """Markers in the lock select one version of each package for every tested Python."""
    for python in lock.PYTHONS:
        environment = {
            "python_version": python,
            "python_full_version": f"{python}.0",
            "sys_platform": "linux",
            "os_name": "posix",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "platform_system": "Linux",
        }
        chosen = [n for n, _, m in lock.pins() if not m or Marker(m).evaluate(environment)]
        assert len(chosen) == len(set(chosen)), python
        assert {"numpy", "pandas", "matplotlib", "jupyterlab", "pytest"} <= set(chosen)


def test_environment_yml_pins_the_locked_versions():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    from_conda: dict[str, str] = {}
    for entry in environment["dependencies"]:
        for item in entry["pip"] if isinstance(entry, dict) else [entry]:
            if item.startswith("-e") or re.match(r"^(python|pip)\b(?!-)", item):
                continue
            name, spec = lock.requirement(item)
            from_conda[name] = spec
    locked = _locked()
    expected = dict(lock.requirement(r) for r in project["optional-dependencies"]["bench"])
    for text in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name = lock.normalise(Requirement(text).name)
        (version,) = locked[name]  # a direct dependency has one locked version (conda pins it)
        expected[name] = f"=={version}"
    assert from_conda == expected
    assert lock.environment_yml() == (ROOT / "environment.yml").read_text(encoding="utf-8"), (
        "environment.yml is not what `make lock` writes: run `make lock`"
    )


def test_a_package_at_another_version_than_the_lock_is_named(monkeypatch):
    """What the committed-figures and result-file checks report before skipping on other versions."""
    locked = _locked()["matplotlib"]
    real = metadata.version
    monkeypatch.setattr(
        metadata, "version", lambda name: "0.0" if lock.normalise(name) == "matplotlib" else real(name)
    )
    differ = lock.installed_differences()
    assert [d for d in differ if d.startswith("matplotlib ")] == [f"matplotlib 0.0 (lock {min(locked)})"]


def test_make_results_regenerates_every_committed_result_file():
    """Each file in tests/results/ is named by a script `make results` runs or by a test marked results
    (which `make results` runs with UPDATE_RESULTS=1), so none is left to go stale."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^results:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    producers = [ROOT / path for path in re.findall(r"\$\(PY\) (\S+\.py)", recipe)]
    producers += [
        path
        for path in (ROOT / "tests").glob("test_*.py")
        if "pytest.mark.results" in path.read_text(encoding="utf-8")
    ]
    assert "UPDATE_RESULTS=1" in recipe and all(p.exists() for p in producers), producers
    texts = [p.read_text(encoding="utf-8") for p in producers]
    committed = sorted(p.name for p in (ROOT / "tests" / "results").iterdir())
    assert committed
    assert [name for name in committed if not any(name in text for text in texts)] == []


@pytest.mark.slow
def test_run_with_no_notebooks_succeeds(tmp_path):
    empty = tmp_path / "notebooks"
    empty.mkdir()
    data = tmp_path / "export.csv"
    data.write_text("x\n1\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--notebooks",
            str(empty),
            "--data",
            str(data),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "nothing to run" in result.stdout


def _notebook(cells: list[str]) -> dict:
    return {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": ["parameters"]} if i == 0 else {},
                "source": src,
                "outputs": [],
                "execution_count": None,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.mark.slow
def test_run_names_the_failing_notebook_and_cell_and_passes_parameters(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "01_ok.ipynb").write_text(
        json.dumps(
            _notebook(
                [
                    "out_dir = 'unset'\nlang = 'unset'",
                    "from pathlib import Path\nPath(out_dir, 'lang.txt').write_text(lang)",
                ]
            )
        )
    )
    (notebooks / "02_broken.ipynb").write_text(json.dumps(_notebook(["x = 1", "1 / 0"])))
    (notebooks / "03_never.ipynb").write_text(json.dumps(_notebook(["open('never-run', 'w')"])))
    data = tmp_path / "export.csv"
    data.write_text("x\n1\n", encoding="utf-8")
    out = tmp_path / "out"

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--notebooks",
            str(notebooks),
            "--data",
            str(data),
            "--out",
            str(out),
            "--lang",
            "en",
        ],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "02_broken.ipynb: cell" in result.stderr and "ZeroDivisionError" in result.stderr
    assert "Traceback" not in result.stderr
    assert (out / "lang.txt").read_text() == "en"
    assert not (notebooks / "never-run").exists()


@pytest.mark.slow
def test_missing_export_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "run", "--data", str(tmp_path / "nope.xlsx")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "nope.xlsx" in result.stderr


def test_output_folder_says_when_its_tables_come_from_simulated_data(tmp_path):
    from analysis.pipeline import write_data_source_note

    (tmp_path / "clean").mkdir()
    provenance = tmp_path / "clean" / "provenance.json"
    provenance.write_text(json.dumps({"simulated": True}), encoding="utf-8")
    write_data_source_note(tmp_path)
    assert "模拟数据 / SIMULATED DATA" in (tmp_path / "DATA_SOURCE.txt").read_text(encoding="utf-8")

    provenance.write_text(json.dumps({"simulated": False}), encoding="utf-8")
    write_data_source_note(tmp_path)
    assert not (tmp_path / "DATA_SOURCE.txt").exists()
