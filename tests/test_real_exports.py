"""Real exports of other surveys (tests/fixtures/README.md): they clean from CSV and from xlsx with every row
accounted for, and a team's reviewed cleaning log applied alone reproduces that team's clean data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.clean import clean_survey
from analysis.errors import ConfigError
from analysis.instrument import write_xlsx

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TAL_AFAR = FIXTURES / "tal_afar_wash_2021"
EXPORTS = {  # fixture: (main export file, repeat tables beside it)
    "tal_afar_wash_2021": ("tal_afar_raw.csv", []),
    "epfl_wash_abidjan_2022": ("households.csv", ["Rep_Bio_HH.csv"]),
    "epfl_wash_nairobi_2021": ("households.csv", ["Rep_Bio_HH.csv"]),
}


def _clean(name: str, out: Path, data: Path | None = None, **kwargs):
    folder = FIXTURES / name
    return clean_survey(
        folder / "form.xlsx",
        data or folder / EXPORTS[name][0],
        out,
        settings=kwargs.pop("settings", folder / "cleaning.yaml"),
        **kwargs,
    )


def _as_xlsx(name: str, folder: Path) -> Path:
    """The fixture's CSVs as one workbook, a sheet per table (repeat sheets named after the repeat), numbers
    written as numbers, as a Kobo xlsx export holds them."""

    def typed(table: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for column in table.columns:
            text = table[column]
            number = pd.to_numeric(text.where(text != ""), errors="coerce")
            numeric = (text != "").any() and (number.notna() | (text == "")).all()
            out[column] = (
                number.astype(object).where(text != "", None) if numeric else text.where(text != "", None)
            )
        return pd.DataFrame(out)

    main, repeats = EXPORTS[name]
    sheets = {"data": FIXTURES / name / main} | {Path(r).stem: FIXTURES / name / r for r in repeats}
    tables = {
        sheet: typed(pd.read_csv(path, dtype=str, keep_default_na=False)) for sheet, path in sheets.items()
    }
    return write_xlsx(tables, folder / f"{name}.xlsx")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_calamine_reads_a_real_export_workbook_as_openpyxl_does(name, tmp_path, monkeypatch):
    from analysis.ingest import files

    workbook = _as_xlsx(name, tmp_path)
    fast = files.read_xlsx(workbook)
    monkeypatch.setattr(files, "_calamine_sheets", files._openpyxl_sheets)
    slow = files.read_xlsx(workbook)
    assert list(fast) == list(slow)
    for sheet in fast:
        pd.testing.assert_frame_equal(fast[sheet], slow[sheet], check_exact=True, obj=sheet)


def _accounted(result) -> None:
    raw, counts = result.raw, result.counts
    assert len(raw.households) == counts["clean_households"] + counts["deleted_households"]
    assert set(raw.households["uuid"]) == set(result.households["uuid"]) | set(result.deletion_log["uuid"])
    assert result.deletion_log["issue"].str.len().gt(0).all()
    deleted_persons = raw.persons["uuid"].isin(set(result.deletion_log["uuid"])).sum()
    assert len(raw.persons) == counts["clean_persons"] + deleted_persons


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_a_real_export_cleans_from_csv_and_from_xlsx_with_every_row_accounted_for(name, tmp_path):
    from_csv = _clean(name, tmp_path / "csv")
    from_xlsx = _clean(name, tmp_path / "xlsx", data=_as_xlsx(name, tmp_path))
    for result in (from_csv, from_xlsx):
        _accounted(result)
        assert result.raw.missing_columns, "these published exports lack some of their form's questions"
        dictionary = pd.read_csv(result.out_dir / "data_dictionary.csv", dtype=str, keep_default_na=False)
        absent = set(dictionary.loc[dictionary["in_export"] == "no", "variable"])
        assert absent == set(result.raw.missing_columns)
    for table in ("households", "persons"):
        a, b = getattr(from_csv, table), getattr(from_xlsx, table)
        pd.testing.assert_frame_equal(
            a.drop(columns="row"), b.drop(columns="row"), check_dtype=False
        ) if table == "households" else pd.testing.assert_frame_equal(a, b, check_dtype=False)


@pytest.mark.slow
def test_the_cli_cleans_a_real_export_with_exit_0_and_no_traceback(tmp_path):
    main, _ = EXPORTS["tal_afar_wash_2021"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "clean",
            "--form",
            str(TAL_AFAR / "form.xlsx"),
            "--data",
            str(TAL_AFAR / main),
            "--settings",
            str(TAL_AFAR / "cleaning.yaml"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "632 submissions" in done.stdout and "not in the export" in done.stdout


def test_repeat_rows_link_to_their_submission_by_its_id_column_and_plain_labels_are_read(tmp_path):
    """The EPFL exports carry the submission's KEY in the member table (no _parent_index); the form has one
    plain ``label`` column (French for Abidjan)."""
    result = _clean("epfl_wash_abidjan_2022", tmp_path)
    members = pd.read_csv(
        FIXTURES / "epfl_wash_abidjan_2022" / "Rep_Bio_HH.csv", dtype=str, keep_default_na=False
    )
    assert len(result.raw.persons) == len(members)
    per_household = members["KEY"].str.removeprefix("uuid:").value_counts()
    assert result.raw.persons.groupby("uuid").size().to_dict() == per_household.to_dict()
    dictionary = pd.read_csv(result.out_dir / "data_dictionary.csv", dtype=str, keep_default_na=False)
    assert (
        dictionary.set_index("variable").loc["Sex", "label_en"]
        == "[OBSERVEZ] Quel est le sexe de ${Name_bio} ?"
    )


def test_checks_whose_fields_were_not_published_say_so(tmp_path):
    summary = _clean("epfl_wash_nairobi_2021", tmp_path).check_summary.set_index("check_id")
    assert summary.loc["no_consent", "status"] == "skipped"
    assert "'Informed_consent' is not in the export" in summary.loc["no_consent", "detail"]
    assert summary.loc["soft_duplicate", "detail"] == "turned off in the cleaning settings (skip_checks)"
    assert summary.loc["roster_heads", "status"] == "ran"


# ----- their own cleaning: cleaningtools' package data ----------------------------------------------------


def _canonical(column: str) -> str:
    """cleaningtools' column names (R's read.csv spelling of Kobo's) as ours: X_uuid -> uuid, X_id -> _id."""
    column = column.removeprefix("X.U.FEFF.")
    if column == "X_uuid":
        return "uuid"
    return "_" + column[2:] if column.startswith("X_") else column


def _comparable(values: pd.Series) -> pd.Series:
    """Text up to number and date formatting: R's TRUE/FALSE as 1/0, numbers as %.10g, times to the second,
    line breaks as \\n (ingest writes a CSV's \\r\\n as \\n)."""
    text = (
        values.fillna("")
        .astype(str)
        .str.replace("\r\n", "\n")
        .str.strip()
        .replace({"TRUE": "1", "FALSE": "0"})
    )
    number = pd.to_numeric(text.where(text != ""), errors="coerce")
    stamp = pd.to_datetime(
        text.str.replace(r"(Z|[+-]\d{2}:?\d{2})$", "", regex=True).where(text != ""),
        errors="coerce",
        format="mixed",
    )
    out = text.copy()
    out[number.notna()] = number[number.notna()].map(lambda v: f"{v:.10g}")
    is_time = number.isna() & stamp.notna()
    out[is_time] = stamp[is_time].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out


@pytest.mark.slow
def test_applying_cleaningtools_reviewed_log_reproduces_cleaningtools_clean_data(tmp_path):
    result = _clean("tal_afar_wash_2021", tmp_path, apply_log=TAL_AFAR / "cleaning_log.csv")
    theirs = pd.read_csv(TAL_AFAR / "clean_data.csv.gz", dtype=str, keep_default_na=False)
    theirs.columns = [_canonical(c) for c in theirs.columns]
    ours = pd.read_csv(result.out_dir / "households.csv", dtype=str, keep_default_na=False)
    assert sorted(ours["uuid"]) == sorted(theirs["uuid"])
    assert result.counts == {
        "raw_households": 632,
        "clean_households": 578,
        "deleted_households": 54,
        "raw_persons": 0,
        "clean_persons": 0,
        "deleted_persons": 0,
    }
    assert result.check_summary.empty  # no check of ours ran
    theirs, ours = theirs.set_index("uuid").loc[ours["uuid"]], ours.set_index("uuid")
    common = [c for c in theirs.columns if c in ours.columns]
    # theirs has four more: two columns computed after cleaning,
    # and _notes/_submitted_by (dropped at the door)
    assert sorted(set(theirs.columns) - set(common)) == [
        "_notes",
        "_submitted_by",
        "socio_eco_division",
        "water_sector",
    ]
    assert len(common) == 345
    differ = {c: int((_comparable(ours[c]) != _comparable(theirs[c])).sum()) for c in common}
    assert {c: n for c, n in differ.items() if n} == {}


@pytest.mark.slow
def test_their_reviewed_log_as_decisions_removes_what_they_removed(tmp_path):
    """As --decisions (our checks plus their decisions): every submission their log removes is deleted, the
    32 removals without an issue as 'removed by reviewer'; their no_action rows do not undo our removals."""
    result = _clean("tal_afar_wash_2021", tmp_path, decisions=TAL_AFAR / "cleaning_log.csv")
    log = pd.read_csv(TAL_AFAR / "cleaning_log.csv", dtype=str, keep_default_na=False)
    removed = log.loc[log["change_type"] == "remove_survey"]
    deleted = result.deletion_log.set_index("uuid")
    assert set(removed["X_uuid"]) <= set(deleted.index)
    no_issue = set(removed.loc[removed["issue"] == "", "X_uuid"]) - set(
        removed.loc[removed["issue"] != "", "X_uuid"]
    )
    assert len(no_issue) == 32
    ours = set(_clean("tal_afar_wash_2021", tmp_path / "checks_only").deletion_log["uuid"])
    assert (deleted.loc[sorted(no_issue - ours), "issue"] == "removed by reviewer").all()
    _accounted(result)


@pytest.mark.slow
def test_the_default_settings_stop_on_a_column_whose_codes_are_not_in_the_form(tmp_path):
    """The sampling-area codes were anonymised by the publishers: 617 of the 617 answers kept after the
    removal checks match no choice. The cleaning stops naming the column, the share and examples."""
    with pytest.raises(ConfigError) as error:
        _clean("tal_afar_wash_2021", tmp_path, settings=None)
    message = str(error.value)
    assert error.value.column == "neighbourhood" and "100%" in message and "'A2'" in message
    assert "tal_afar_raw.csv" in message and "choices.columns.neighbourhood.action" in message
    assert not (tmp_path / "clean").exists()
