"""The project installs and runs itself: dependency lists agree, the CLI behaves as documented."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _requirement(text: str) -> tuple[str, str]:
    """Split 'name>=1.0' into a normalised name and its version specifier."""
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", text)
    name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
    return name, match.group(2).replace(" ", "")


def test_environment_yml_and_pyproject_list_the_same_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    from_pyproject = dict(_requirement(r) for r in project["dependencies"]
                          + project["optional-dependencies"]["dev"] + project["optional-dependencies"]["bench"])

    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    from_conda: dict[str, str] = {}
    for entry in environment["dependencies"]:
        entries = entry["pip"] if isinstance(entry, dict) else [entry]
        for item in entries:
            if item.startswith("-e") or item.split("=")[0] in {"python", "pip"}:
                continue
            name, spec = _requirement(item)
            from_conda[name] = spec

    assert from_conda == from_pyproject


def test_run_with_no_notebooks_succeeds(tmp_path):
    empty = tmp_path / "notebooks"
    empty.mkdir()
    data = tmp_path / "export.csv"
    data.write_text("x\n1\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "run", "--notebooks", str(empty), "--data", str(data),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "nothing to run" in result.stdout


def _notebook(cells: list[str]) -> dict:
    return {
        "cells": [
            {"cell_type": "code", "metadata": {"tags": ["parameters"]} if i == 0 else {}, "source": src,
             "outputs": [], "execution_count": None}
            for i, src in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_run_names_the_failing_notebook_and_cell_and_passes_parameters(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "01_ok.ipynb").write_text(json.dumps(_notebook([
        "out_dir = 'unset'\nlang = 'unset'",
        "from pathlib import Path\nPath(out_dir, 'lang.txt').write_text(lang)",
    ])))
    (notebooks / "02_broken.ipynb").write_text(json.dumps(_notebook(["x = 1", "1 / 0"])))
    (notebooks / "03_never.ipynb").write_text(json.dumps(_notebook(["open('never-run', 'w')"])))
    data = tmp_path / "export.csv"
    data.write_text("x\n1\n", encoding="utf-8")
    out = tmp_path / "out"

    result = subprocess.run(
        [sys.executable, "-m", "analysis", "run", "--notebooks", str(notebooks), "--data", str(data),
         "--out", str(out), "--lang", "en"],
        capture_output=True, text=True, check=False,
    )

    assert result.returncode == 1
    assert "02_broken.ipynb: cell" in result.stderr and "ZeroDivisionError" in result.stderr
    assert "Traceback" not in result.stderr
    assert (out / "lang.txt").read_text() == "en"
    assert not (notebooks / "never-run").exists()


def test_missing_export_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "run", "--data", str(tmp_path / "nope.xlsx")],
        capture_output=True, text=True, check=False,
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
