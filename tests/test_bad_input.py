"""Malformed inputs (tests/bad_inputs.py) through the public entry points: one clear error or a logged fix.

Error cases must raise one AnalysisError naming the file/row/column (``Case.names``) with a hint, and leave
no output behind; a few run through ``python -m analysis clean`` to check exit status 2, one line on
stderr and no traceback. Ok cases must give the correct value and record the problem.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bad_inputs
import pandas as pd
import pytest
from bad_inputs import ROOT, Case

from analysis.analyse import analyse_files
from analysis.clean import clean_survey
from analysis.errors import AnalysisError
from analysis.staffing import load_assumptions
from analysis.survey import Design
from analysis.weights import build_weights

CASES = bad_inputs.all_cases()
CLI_CASES = [
    "zero_byte_csv",
    "truncated_xlsx",
    "other_survey_kobo",
    "mixed_encodings",
    "roster_orphan_row",
    "settings_bad_value",
    "choice_list_mismatch",
    "decisions_value_outside_choices",
    "apply_log_unknown_uuid",
]
CLI_FLAGS = {"settings": "--settings", "decisions": "--decisions", "apply_log": "--apply-log"}


def test_corpus_has_at_least_30_distinct_cases():
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


def _assert_clear(error: AnalysisError, case: Case) -> None:
    message = str(error)
    assert "\n" not in message, message
    for name in case.names:
        assert name in message, f"{case.name}: {name!r} not named in: {message}"


@pytest.fixture(scope="module")
def small_clean(tmp_path_factory):
    """Clean tables of the bundled export's first 40 submissions (the weighting cases start from them)."""
    hh, roster = bad_inputs.bundled(40)
    folder = tmp_path_factory.mktemp("small")
    result = clean_survey(bad_inputs.FORM, bad_inputs.write_kobo(folder / "raw", hh, roster), folder / "out")
    return result.households, result.persons


def _run(case: Case, folder: Path, small_clean):
    if case.stage == "clean":
        return clean_survey(out_dir=folder / "out", **case.make(folder / "in"))
    if case.stage == "weights":
        return build_weights(**case.make(bad_inputs.weighting_inputs(*small_clean)))
    if case.stage == "assumptions":
        return load_assumptions(**case.make(folder))
    if case.stage == "analyse":
        return analyse_files(**case.make(folder / "in"))
    args = case.make(folder)
    design = Design(args.pop("df"), weights="w", strata="stratum", ids="psu")
    return design.mean("y", **args)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, tmp_path, small_clean):
    if case.outcome == "error":
        with pytest.raises(AnalysisError) as caught:
            _run(case, tmp_path, small_clean)
        _assert_clear(caught.value, case)
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), (
            f"partial output left: {list((tmp_path / 'out').rglob('*'))}"
        )
    else:
        case.check(_run(case, tmp_path, small_clean))


def test_valid_weighting_inputs_weight(small_clean):
    """The unmodified inputs of the weighting cases weight (so each case fails for its own fault)."""
    result = build_weights(**bad_inputs.weighting_inputs(*small_clean))
    assert result.persons["weight"].gt(0).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_exit_2_one_line_no_traceback(name, tmp_path):
    case = next(c for c in CASES if c.name == name)
    args = case.make(tmp_path / "in")
    flags = [part for key, flag in CLI_FLAGS.items() if key in args for part in (flag, str(args[key]))]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "clean",
            "--form",
            str(args["form_path"]),
            "--data",
            str(args["data_path"]),
            "--out",
            str(tmp_path / "out"),
            *flags,
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for part in case.names:
        assert part in lines[0]
    assert not (tmp_path / "out" / "clean").exists()


@pytest.mark.slow
def test_valid_sample_cleans(tmp_path):
    """The material the corpus is made from cleans without error (each case fails for its fault only)."""
    hh, roster = bad_inputs.bundled()
    result = clean_survey(
        bad_inputs.FORM, bad_inputs.write_kobo(tmp_path / "in", hh, roster), tmp_path / "out"
    )
    assert result.counts["raw_households"] == 20
    assert (
        pd.read_csv(tmp_path / "out" / "clean" / "households.csv").shape[0]
        == result.counts["clean_households"]
    )


@pytest.mark.slow
def test_run_with_a_bad_export_exits_2_and_leaves_no_files(tmp_path):
    """The main job on a zero-byte export: exit 2, the message names the file, no traceback, no files."""
    case = next(c for c in CASES if c.name == "zero_byte_csv")
    data = case.make(tmp_path / "in")["data_path"]
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "run",
            "--data",
            str(data),
            "--out",
            str(out),
            "--figures",
            str(out / "figures"),
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: clean stage: ") and data.name in last and "empty" in last, last
    assert not [p for p in out.rglob("*") if p.is_file()], list(out.rglob("*"))
