"""A corpus of malformed inputs, generated from the bundled simulated export, with the expected outcome.

Every :class:`Case` writes its files into a folder and says what the stage must do with them:

- ``error``: one :class:`analysis.errors.AnalysisError` whose message names ``names`` (the file, the
  column, the row) and gives a hint; nothing is written (the CLI exits 2 without a traceback);
- ``ok``: a correct result, with the problem recorded where a reader will see it (``check`` asserts both).

Stages and their public entry points (tests/test_bad_input.py runs them):

- ``clean``: ``analysis.clean.clean_survey(form, data, out)`` / ``python -m analysis clean``;
- ``weights``: ``analysis.weights.build_weights`` on small clean tables with a sample design and frame
  built from them (:func:`weighting_inputs`; the unmodified inputs weight without error);
- ``assumptions``: ``analysis.staffing.load_assumptions``;
- ``design``: ``analysis.survey.Design`` and its estimators;
- ``analyse``: ``analysis.analyse.analyse_files(data, loa, out)`` / ``python -m analysis analyse`` on
  analysistools' template data with a list of analyses that has one bad row or column.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FORM = ROOT / "survey" / "instrument"
KOBO = ROOT / "survey" / "raw" / "kobo"
WJX = ROOT / "survey" / "raw" / "wjx" / "leliu_needs_wjx.csv"
FRAME = ROOT / "survey" / "frame"
ASSUMPTIONS = ROOT / "analysis" / "assumptions.yaml"
MAIN, ROSTER = "leliu_needs.csv", "roster.csv"


@dataclass(frozen=True)
class Case:
    """One malformed input: ``make(folder)`` writes it and returns the entry point's keyword arguments."""

    name: str
    stage: str
    make: Callable[[Path], dict]
    outcome: str  # "error" or "ok"
    names: tuple[str, ...] = ()  # what the error message must contain (file name, column, row)
    check: Callable | None = field(default=None, compare=False)  # ok cases: check(result) asserts


# ----- material from the bundled export ---------------------------------------------------------------


def bundled(n: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first ``n`` submissions of the bundled Kobo CSV export and their roster rows, all as text."""
    hh = pd.read_csv(KOBO / MAIN, dtype=str, keep_default_na=False, encoding="utf-8-sig").head(n)
    roster = pd.read_csv(KOBO / ROSTER, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return hh, roster[roster["_parent_index"].isin(hh["_index"])].reset_index(drop=True)


def write_kobo(
    folder: Path, hh: pd.DataFrame, roster: pd.DataFrame | None, encoding: str = "utf-8-sig"
) -> Path:
    """Kobo CSV pair (main + roster) in ``folder``; returns the main file."""
    folder.mkdir(parents=True, exist_ok=True)
    hh.to_csv(folder / MAIN, index=False, encoding=encoding)
    if roster is not None:
        roster.to_csv(folder / ROSTER, index=False, encoding=encoding)
    return folder / MAIN


def write_xlsx(path: Path, sheets: dict[str, pd.DataFrame]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, table in sheets.items():
            table.to_excel(writer, sheet_name=name, index=False)
    return path


def _clean_args(path: Path, **extra) -> dict:
    return {"form_path": FORM, "data_path": path, **extra}


def _kobo_case(
    change: Callable[[pd.DataFrame, pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame | None]],
) -> Callable[[Path], dict]:
    """A ``make`` that writes the bundled sample after ``change(hh, roster)``."""

    def make(folder: Path) -> dict:
        hh, roster = change(*bundled())
        return _clean_args(write_kobo(folder, hh, roster))

    return make


def _raw_bytes(name: str, content: bytes) -> Callable[[Path], dict]:
    def make(folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
        return _clean_args(folder / name)

    return make


def _garbage(size: int = 4096, seed: int = 7) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _small_xlsx(folder: Path, sheet_names: tuple[str, str] = ("leliu_needs", "roster")) -> Path:
    hh, roster = bundled(8)
    return write_xlsx(folder / "leliu_needs_survey.xlsx", {sheet_names[0]: hh, sheet_names[1]: roster})


def _truncated_xlsx(folder: Path) -> dict:
    whole = _small_xlsx(folder / "whole").read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leliu_needs_survey.xlsx").write_bytes(whole[: len(whole) // 2])
    return _clean_args(folder / "leliu_needs_survey.xlsx")


def _xlsx_sheets(names: tuple[str, str]) -> Callable[[Path], dict]:
    return lambda folder: _clean_args(_small_xlsx(folder, names))


def _xlsx_date_age(folder: Path) -> dict:
    """Roster ages typed into date-formatted cells: Excel stores the serial (45) and shows 1900-02-14."""
    path = _small_xlsx(folder)
    book = openpyxl.load_workbook(path)
    sheet = book["roster"]
    column = [c.value for c in sheet[1]].index("roster/age") + 1
    cell = sheet.cell(row=2, column=column)
    cell.value, cell.number_format = int(cell.value), "yyyy-mm-dd"
    book.save(path)
    return _clean_args(path)


def _mixed_encoding(folder: Path) -> dict:
    """One household line saved as GB18030 inside an otherwise UTF-8 file (two exports pasted together)."""
    hh, roster = bundled()
    path = write_kobo(folder, hh, roster)
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].decode("utf-8").encode("gb18030")
    path.write_bytes(b"\n".join(lines))
    return _clean_args(path)


def _other_survey(folder: Path) -> dict:
    rng = np.random.default_rng(1)
    other = pd.DataFrame(
        {
            "_uuid": [f"x{i}" for i in range(10)],
            "_index": range(1, 11),
            "q1_income": rng.integers(1000, 9000, 10),
            "q2_satisfaction": rng.integers(1, 6, 10),
            "q3_district": ["天河"] * 10,
        }
    )
    return _clean_args(write_kobo(folder, other.astype(str), None))


def _other_survey_wjx(folder: Path) -> dict:
    table = pd.DataFrame(
        {
            "序号": range(1, 6),
            "提交答卷时间": ["2012/5/2 10:00:00"] * 5,
            "所用时间": ["300秒"] * 5,
            "1、您对本商场的满意度": ["满意"] * 5,
            "2、您的月收入": ["5000"] * 5,
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "商场满意度.csv", index=False, encoding="gb18030")
    return _clean_args(folder / "商场满意度.csv")


def _wjx_truncated(folder: Path) -> dict:
    """The 问卷星 GB18030 export cut in the middle of a two-byte character (an interrupted download)."""
    data = WJX.read_bytes()[:20000]
    while data[-1] < 0x80:  # end inside a multi-byte character
        data = data[:-1]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WJX.name).write_bytes(data[:-1])
    return _clean_args(folder / WJX.name)


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _fullwidth(hh: pd.DataFrame, roster: pd.DataFrame):
    """Household size and age typed with full-width digits in the first ten submissions / roster rows."""
    hh, roster = hh.copy(), roster.copy()
    hh.loc[:9, "household/hh_size"] = hh.loc[:9, "household/hh_size"].str.translate(FULL_WIDTH)
    roster.loc[:9, "roster/age"] = roster.loc[:9, "roster/age"].str.translate(FULL_WIDTH)
    return hh, roster


def _logged(result, check_id: str) -> pd.DataFrame:
    """Conversions of kept submissions (value checks skip removed ones) and the log rows for them."""
    kept = result.raw.conversions[result.raw.conversions["uuid"].isin(result.households["uuid"])]
    log = result.cleaning_log[result.cleaning_log["check_id"] == check_id]
    assert len(kept) and len(log) == len(kept), (kept, log)
    return log


def _check_fullwidth(result) -> None:
    hh, roster = bundled()
    raw = result.raw

    def numbers(values: pd.Series) -> np.ndarray:  # a refused submission has no household size
        return pd.to_numeric(values.head(10).replace("", None)).to_numpy(dtype=float)

    np.testing.assert_array_equal(numbers(raw.households["hh_size"]), numbers(hh["household/hh_size"]))
    np.testing.assert_array_equal(numbers(raw.persons["age"]), numbers(roster["roster/age"]))
    log = _logged(result, "number_format")
    assert log["issue"].str.contains("full-width").all() and set(log["question"]) == {"hh_size", "age"}


def _check_date_age(result) -> None:
    expected = float(bundled(8)[1].loc[0, "roster/age"])
    assert result.raw.persons.loc[0, "age"] == expected, result.raw.persons.loc[0, "age"]
    assert result.raw.conversions["issue"].str.contains("Excel date").tolist() == [True]


def _check_not_a_number(result) -> None:
    assert pd.isna(result.raw.persons.loc[0, "age"])
    notes = result.raw.conversions
    assert notes[["question", "old_value"]].to_numpy().tolist() == [["age", "四十五"]], notes
    assert notes["issue"].str.contains("not a number").all()


def _check_duplicate_uuid(result) -> None:
    assert result.counts["raw_households"] == 21
    assert result.deletion_log["issue"].str.contains("duplicate", case=False).any(), result.deletion_log


def _check_absent(question: str):
    """A question without a column is not fatal: it is listed as absent, in the run summary and in the
    data dictionary, and a check that needs it says so in the check summary."""

    def check(result) -> None:
        assert question in result.raw.missing_columns
        assert question in str(result)
        dictionary = pd.read_csv(result.out_dir / "data_dictionary.csv", dtype=str, keep_default_na=False)
        assert dictionary.loc[dictionary["variable"] == question, "in_export"].tolist() == ["no"]
        summary = result.check_summary
        if question == "age":  # the roster's age checks name the field they lack
            assert (
                summary.loc[summary["check_id"] == "roster_generation", "detail"].str.contains("'age'").all()
            )

    return check


def _check_no_consent(result) -> None:
    assert result.counts["clean_households"] == 0
    assert result.counts["deleted_households"] == 20


def _with_settings(text: str, change=None) -> Callable[[Path], dict]:
    """The bundled sample (``change``d) cleaned with a settings file holding ``text``."""

    def make(folder: Path) -> dict:
        hh, roster = change(*bundled()) if change else bundled()
        path = write_kobo(folder / "data", hh, roster)
        (folder / "cleaning.yaml").write_text(text, encoding="utf-8")
        return _clean_args(path, settings=folder / "cleaning.yaml")

    return make


def _reviewed_log(rows: list[dict]) -> Callable[[Path], dict]:
    """The bundled sample with a reviewed log in cleaningtools' column names, applied alone (--apply-log)."""

    def make(folder: Path) -> dict:
        hh, roster = bundled()
        path = write_kobo(folder / "data", hh, roster)
        pd.DataFrame(rows).to_csv(folder / "reviewed.csv", index=False)
        return _clean_args(path, apply_log=folder / "reviewed.csv")

    return make


def _foreign_codes(hh, roster):
    """Five of 20 村居 answers written as codes the form does not have (another sample's area codes)."""
    hh = hh.copy()
    hh.loc[[3, 7, 11, 15, 17], "location/cunju"] = ["A2", "tr2", "A2", "A2", "b7"]
    return hh, roster


def _check_codes_kept(result) -> None:
    assert (
        result.households["cunju"].isin(["A2", "tr2", "b7"]).sum()
        == 5 - result.deletion_log["uuid"].isin(bundled()[0].loc[[3, 7, 11, 15, 17], "_uuid"]).sum()
    )
    summary = result.check_summary.set_index("check_id")
    assert "kept as they are" in summary.loc["invalid_choice", "detail"]


def _check_option_columns_absent(result) -> None:
    assert "need_elderly" in result.raw.missing_columns and "need_elderly" not in result.households
    assert result.counts["raw_households"] == 20


def _check_roster_absent(result) -> None:
    assert result.raw.persons.empty and result.counts["clean_persons"] == 0
    assert "age" in result.raw.missing_columns


def _check_removed_by_reviewer(uuid: str):
    def check(result) -> None:
        assert result.deletion_log.set_index("uuid").loc[uuid, "issue"] == "removed by reviewer"

    return check


def _decisions(rows: list[dict]) -> Callable[[Path], dict]:
    def make(folder: Path) -> dict:
        hh, roster = bundled()
        path = write_kobo(folder / "data", hh, roster)
        columns = [
            "uuid",
            "person_id",
            "question",
            "old_value",
            "new_value",
            "issue",
            "check_id",
            "change_type",
        ]
        pd.DataFrame(rows).reindex(columns=columns).to_csv(folder / "decisions.csv", index=False)
        return _clean_args(path, decisions=folder / "decisions.csv")

    return make


def _drop(columns: list[str], table: str = "hh"):
    def change(hh, roster):
        return (hh.drop(columns=columns), roster) if table == "hh" else (hh, roster.drop(columns=columns))

    return change


def _set(table: str, row: int, column: str, value: str):
    def change(hh, roster):
        hh, roster = hh.copy(), roster.copy()
        (hh if table == "hh" else roster).loc[row, column] = value
        return hh, roster

    return change


def _duplicate_column(hh, roster):
    return pd.concat([hh, hh[["location/cunju"]]], axis=1), roster


def clean_cases() -> list[Case]:
    """Cases for the cleaning stage (read + clean + write)."""
    first_uuid = bundled()[0].loc[0, "_uuid"]
    kept_uuid = bundled()[0].loc[3, "_uuid"]  # a submission no check removes (the first is a test submission)
    return [
        Case("zero_byte_csv", "clean", _raw_bytes(MAIN, b""), "error", (MAIN, "empty")),
        Case("whitespace_csv", "clean", _raw_bytes(MAIN, b" \r\n\r\n "), "error", (MAIN, "empty")),
        Case(
            "zero_byte_xlsx",
            "clean",
            _raw_bytes("leliu_needs_survey.xlsx", b""),
            "error",
            ("leliu_needs_survey.xlsx", "empty"),
        ),
        Case("binary_garbage_csv", "clean", _raw_bytes(MAIN, _garbage()), "error", (MAIN,)),
        Case(
            "binary_garbage_xlsx",
            "clean",
            _raw_bytes("leliu_needs_survey.xlsx", _garbage()),
            "error",
            ("leliu_needs_survey.xlsx", "xlsx"),
        ),
        Case(
            "zip_not_xlsx",
            "clean",
            _raw_bytes("leliu_needs_survey.xlsx", _zip_bytes()),
            "error",
            ("leliu_needs_survey.xlsx",),
        ),
        Case(
            "unsupported_suffix",
            "clean",
            _raw_bytes("leliu_needs.json", b'{"a": 1}'),
            "error",
            ("leliu_needs.json", "unsupported"),
        ),
        Case("truncated_xlsx", "clean", _truncated_xlsx, "error", ("leliu_needs_survey.xlsx", "xlsx")),
        Case(
            "xlsx_wrong_roster_sheet",
            "clean",
            _xlsx_sheets(("leliu_needs", "Sheet2")),
            "error",
            ("leliu_needs_survey.xlsx", "roster"),
        ),
        Case(
            "xlsx_roster_sheet_first",
            "clean",
            _xlsx_sheets(("roster", "leliu_needs")),
            "error",
            ("leliu_needs_survey.xlsx",),
        ),
        Case("other_survey_kobo", "clean", _other_survey, "error", (MAIN, "another survey")),
        Case("other_survey_wjx", "clean", _other_survey_wjx, "error", ("商场满意度.csv", "another survey")),
        Case(
            "header_only",
            "clean",
            _kobo_case(lambda hh, r: (hh.head(0), r.head(0))),
            "error",
            (MAIN, "no submissions"),
        ),
        Case("duplicate_column", "clean", _kobo_case(_duplicate_column), "error", (MAIN, "location/cunju")),
        Case(
            "question_without_column",
            "clean",
            _kobo_case(_drop(["location/cunju"])),
            "ok",
            check=_check_absent("cunju"),
        ),
        Case("missing_uuid_column", "clean", _kobo_case(_drop(["_uuid"])), "error", (MAIN, "_uuid")),
        Case(
            "empty_uuid", "clean", _kobo_case(_set("hh", 4, "_uuid", "")), "error", (MAIN, "row 6", "_uuid")
        ),
        Case(
            "roster_question_without_column",
            "clean",
            _kobo_case(_drop(["roster/age"], "roster")),
            "ok",
            check=_check_absent("age"),
        ),
        Case(
            "roster_no_link_column",
            "clean",
            _kobo_case(_drop(["_parent_index", "_submission__uuid"], "roster")),
            "error",
            ("_parent_index",),
        ),
        Case(
            "roster_orphan_row",
            "clean",
            _kobo_case(_set("roster", 2, "_parent_index", "99999")),
            "error",
            ("row 4", "_parent_index"),
        ),
        Case("roster_file_missing", "clean", _kobo_case(lambda hh, r: (hh, None)), "error", (ROSTER,)),
        Case("ragged_csv_row", "clean", _ragged, "error", (MAIN,)),
        Case("mixed_encodings", "clean", _mixed_encoding, "error", (MAIN, "row 4", "encoding")),
        Case("wjx_truncated_multibyte", "clean", _wjx_truncated, "error", (WJX.name,)),
        Case("fullwidth_digits", "clean", _kobo_case(_fullwidth), "ok", check=_check_fullwidth),
        Case("excel_date_in_age", "clean", _xlsx_date_age, "ok", check=_check_date_age),
        Case(
            "text_in_age",
            "clean",
            _kobo_case(_set("roster", 0, "roster/age", "四十五")),
            "ok",
            check=_check_not_a_number,
        ),
        Case(
            "duplicate_submission",
            "clean",
            _kobo_case(lambda hh, r: (pd.concat([hh, hh.head(1)], ignore_index=True), r)),
            "ok",
            check=_check_duplicate_uuid,
        ),
        Case(
            "no_consent_anywhere",
            "clean",
            _kobo_case(lambda hh, r: (hh.assign(consent="no"), r)),
            "ok",
            check=_check_no_consent,
        ),
        Case(
            "decisions_bad_change_type",
            "clean",
            _decisions([{"uuid": first_uuid, "question": "hh_size", "change_type": "delete_everything"}]),
            "error",
            ("decisions.csv", "change_type"),
        ),
        Case(
            "decisions_unknown_uuid",
            "clean",
            _decisions(
                [
                    {
                        "uuid": "no-such-uuid",
                        "question": "hh_size",
                        "old_value": "3",
                        "new_value": "4",
                        "change_type": "change_response",
                    }
                ]
            ),
            "error",
            ("decisions.csv", "uuid"),
        ),
        Case(
            "data_not_found",
            "clean",
            lambda folder: _clean_args(folder / "nothing_here.csv"),
            "error",
            ("nothing_here.csv", "not found"),
        ),
        # cleaning settings: one line naming the file, the line and the key
        Case(
            "settings_bad_value",
            "clean",
            _with_settings("consent:\n  field: consent\noutliers:\n  sd: -1\n"),
            "error",
            ("cleaning.yaml", "row 4", "outliers.sd"),
        ),
        Case(
            "settings_unknown_key",
            "clean",
            _with_settings("consnet: {field: consent}\n"),
            "error",
            ("cleaning.yaml", "row 1", "consnet", "unknown key"),
        ),
        Case(
            "settings_bad_expression",
            "clean",
            _with_settings("logic_checks:\n  - id: old\n    expression: ${age} >> 99\n"),
            "error",
            ("cleaning.yaml", "row 3", "logic_checks.0.expression"),
        ),
        Case(
            "settings_not_yaml",
            "clean",
            _with_settings("consent:\n  field: [consent\n"),
            "error",
            ("cleaning.yaml", "row"),
        ),
        Case(
            "settings_map_without_table",
            "clean",
            _with_settings("choices:\n  columns:\n    cunju: {action: map}\n"),
            "error",
            ("cleaning.yaml", "row 3", "choices.columns.cunju"),
        ),
        # a column mostly outside its choice list stops, naming it, its share, examples and the first row
        Case(
            "choice_list_mismatch",
            "clean",
            _kobo_case(_foreign_codes),
            "error",
            (MAIN, "row 5", "cunju", "33%", "'A2'"),
        ),
        Case(
            "choice_list_mismatch_kept",
            "clean",
            _with_settings("choices:\n  columns:\n    cunju: {action: keep}\n", _foreign_codes),
            "ok",
            check=_check_codes_kept,
        ),
        # a person's decisions: errors name the row of the file the person edited
        Case(
            "decisions_value_outside_choices",
            "clean",
            _decisions(
                [
                    {"uuid": kept_uuid, "question": "aware_centre", "change_type": "no_action"},
                    {"uuid": kept_uuid, "question": "hardship", "change_type": "no_action"},
                    {
                        "uuid": kept_uuid,
                        "question": "housing",
                        "change_type": "change_response",
                        "new_value": "flat",
                    },
                ]
            ),
            "error",
            ("decisions.csv", "row 4", "housing"),
        ),
        Case(
            "decisions_unknown_question",
            "clean",
            _decisions(
                [
                    {"uuid": kept_uuid, "question": "aware_centre", "change_type": "no_action"},
                    {"uuid": kept_uuid, "question": "no_such_question", "change_type": "blank_response"},
                ]
            ),
            "error",
            ("decisions.csv", "row 3", "question"),
        ),
        Case(
            "decisions_remove_without_issue",
            "clean",
            _decisions([{"uuid": kept_uuid, "question": "", "change_type": "remove_survey", "issue": ""}]),
            "ok",
            check=_check_removed_by_reviewer(kept_uuid),
        ),
        # --apply-log: a change the data cannot take names the log's row
        Case(
            "apply_log_unknown_uuid",
            "clean",
            _reviewed_log(
                [
                    {
                        "X_uuid": "not-a-submission",
                        "questions": "hh_size",
                        "change_type": "change_response",
                        "new_value": "3",
                    }
                ]
            ),
            "error",
            ("reviewed.csv", "row 2", "uuid"),
        ),
        Case(
            "apply_log_unknown_question",
            "clean",
            _reviewed_log(
                [
                    {"X_uuid": first_uuid, "questions": "hh_size", "change_type": "no_action"},
                    {"X_uuid": first_uuid, "questions": "rooms", "change_type": "blank_response"},
                ]
            ),
            "error",
            ("reviewed.csv", "row 3", "question"),
        ),
        Case(
            "apply_log_bad_change_type",
            "clean",
            _reviewed_log([{"X_uuid": first_uuid, "questions": "hh_size", "change_type": "Delete"}]),
            "error",
            ("reviewed.csv", "row 2", "change_type"),
        ),
        # not errors: a select_multiple without any column, a repeat group the settings say is absent
        Case(
            "select_multiple_without_columns",
            "clean",
            _kobo_case(
                lambda hh, r: (
                    hh.drop(columns=[c for c in hh.columns if c.startswith("services/need_elderly")]),
                    r,
                )
            ),
            "ok",
            check=_check_option_columns_absent,
        ),
        Case(
            "roster_absent_by_settings",
            "clean",
            _with_settings("absent_repeats: [roster]\n", lambda hh, r: (hh, None)),
            "ok",
            check=_check_roster_absent,
        ),
    ]


def _zip_bytes() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    return buffer.getvalue()


def _ragged(folder: Path) -> dict:
    hh, roster = bundled()
    path = write_kobo(folder, hh, roster)
    lines = path.read_bytes().split(b"\n")
    lines[5] = lines[5].rstrip(b"\r") + b",extra,fields,here\r"
    path.write_bytes(b"\n".join(lines))
    return _clean_args(path)


# ----- weighting stage ------------------------------------------------------------------------------------


def weighting_inputs(households: pd.DataFrame, persons: pd.DataFrame) -> dict:
    """A sample design (the bundled one's rows for the sampled PSUs) and a population frame whose
    categories are exactly those of ``persons`` (one age band 0-110; totals 10 × the sample count), so the
    unmodified inputs weight without error."""
    design = pd.read_csv(FRAME / "sample_design.csv")
    design = design[design["psu"].isin(households["psu"])].reset_index(drop=True)
    cells = persons.merge(households[["household_id", "cunju"]], on="household_id")
    frame = (
        cells.assign(age_band="0-110")
        .groupby(["cunju", "sex", "age_band", "registration"])
        .size()
        .mul(10)
        .rename("population")
        .reset_index()
    )
    return {
        "households": households,
        "persons": persons,
        "sample_design": design,
        "frame": frame,
        "replicates": 0,
    }


def _design_set(column: str, value, row: int = 0):
    def change(args: dict) -> dict:
        design = args["sample_design"].copy()
        design.loc[row, column] = value
        return {**args, "sample_design": design}

    return change


def _frame_relabel(column: str, mapping: dict):
    def change(args: dict) -> dict:
        return {**args, "frame": args["frame"].assign(**{column: args["frame"][column].replace(mapping)})}

    return change


def _frame_extra_band(args: dict) -> dict:
    frame = args["frame"]
    extra = frame.head(1).assign(age_band="111+", population=5)
    return {**args, "frame": pd.concat([frame.assign(age_band="0-110"), extra], ignore_index=True)}


def _frame_extra_cunju(args: dict) -> dict:
    frame = args["frame"]
    return {**args, "frame": pd.concat([frame, frame.head(2).assign(cunju="c99")], ignore_index=True)}


def _drop_cunju(args: dict) -> dict:
    """Every respondent of one 村居 removed (all refused) while the design still lists its PSUs."""
    hh = args["households"]
    gone = hh["cunju"].iloc[0]
    keep = hh[hh["cunju"] != gone]
    return {
        **args,
        "households": keep,
        "persons": args["persons"][args["persons"]["household_id"].isin(keep["household_id"])],
    }


def _huge_weight(args: dict) -> dict:
    return _design_set("p_hh", 1e-7)(args)


def _check_huge_weight(result) -> None:
    ratio = result.diagnostics.query(
        "section == 'weights' and stage == 'base' and category == 'max_over_median'"
    )
    assert float(ratio["value"].iloc[0]) > 1e4, ratio


def weights_cases() -> list[Case]:
    """Cases for ``build_weights``: ``make`` here maps the valid inputs to malformed ones."""
    return [
        Case(
            "negative_probability",
            "weights",
            _design_set("p_hh", -0.2),
            "error",
            ("sample_design.csv", "p_hh"),
        ),
        Case(
            "zero_probability", "weights", _design_set("p_psu", 0.0), "error", ("sample_design.csv", "p_psu")
        ),
        Case("probability_above_one", "weights", _design_set("p_psu", 3.0), "error", ("sample_design.csv",)),
        Case("blank_probability", "weights", _design_set("p_hh", np.nan), "error", ("sample_design.csv",)),
        Case("huge_weight", "weights", _huge_weight, "ok", check=_check_huge_weight),
        Case(
            "duplicate_psu_in_design",
            "weights",
            lambda a: {**a, "sample_design": pd.concat([a["sample_design"], a["sample_design"].head(1)])},
            "error",
            ("sample_design.csv", "psu"),
        ),
        Case(
            "psu_not_in_design",
            "weights",
            lambda a: {**a, "sample_design": a["sample_design"].iloc[1:]},
            "error",
            ("sample_design.csv", "psu"),
        ),
        Case(
            "frame_sex_codes_differ",
            "weights",
            _frame_relabel("sex", {"male": "M", "female": "F"}),
            "error",
            ("population_frame.csv", "sex_age"),
        ),
        Case(
            "frame_registration_codes_differ",
            "weights",
            _frame_relabel("registration", {"local": "本地", "nonlocal": "外地"}),
            "error",
            ("population_frame.csv", "registration"),
        ),
        Case(
            "frame_unreadable_age_band",
            "weights",
            _frame_relabel("age_band", {"0-110": "all ages"}),
            "error",
            ("population_frame.csv", "age_band"),
        ),
        Case(
            "frame_band_without_respondents",
            "weights",
            _frame_extra_band,
            "error",
            ("population_frame.csv", "111+"),
        ),
        Case(
            "frame_cunju_without_respondents",
            "weights",
            _frame_extra_cunju,
            "error",
            ("population_frame.csv", "c99"),
        ),
        Case("cunju_with_no_respondents", "weights", _drop_cunju, "error", ("sample_design.csv", "村居")),
    ]


# ----- assumptions and design ---------------------------------------------------------------------------


def _assumptions(edit: Callable[[str], str]) -> Callable[[Path], dict]:
    def make(folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "assumptions.yaml").write_text(
            edit(ASSUMPTIONS.read_text(encoding="utf-8")), encoding="utf-8"
        )
        return {"path": folder / "assumptions.yaml"}

    return make


def assumption_cases() -> list[Case]:
    return [
        Case(
            "assumption_missing_value",
            "assumptions",
            _assumptions(lambda t: t.replace("sick_leave:      {value: 5,  ", "sick_leave:      {")),
            "error",
            ("assumptions.yaml", "sick_leave"),
        ),
        Case(
            "assumption_non_numeric",
            "assumptions",
            _assumptions(lambda t: t.replace("sick_leave:      {value: 5,", "sick_leave:      {value: 五,")),
            "error",
            ("assumptions.yaml", "sick_leave"),
        ),
        Case(
            "assumption_not_yaml",
            "assumptions",
            _assumptions(lambda t: t.replace("working_time:", "working_time: [")),
            "error",
            ("assumptions.yaml", "YAML"),
        ),
        Case(
            "assumption_empty_file", "assumptions", _assumptions(lambda t: ""), "error", ("assumptions.yaml",)
        ),
        Case(
            "assumption_value_outside_range",
            "assumptions",
            _assumptions(lambda t: t.replace("sick_leave:      {value: 5,", "sick_leave:      {value: 50,")),
            "error",
            ("assumptions.yaml", "sick_leave"),
        ),
    ]


def design_cases() -> list[Case]:
    """Cases for ``analysis.survey.Design``: ``make`` returns the sample table and estimator call."""

    def sample(weight: np.ndarray, y=None) -> pd.DataFrame:
        n = len(weight)
        return pd.DataFrame(
            {
                "stratum": np.repeat(["a", "b"], n // 2),
                "psu": np.arange(n),
                "w": weight,
                "y": np.arange(n, dtype=float) if y is None else y,
                "grp": np.where(np.arange(n) % 2, "x", "z"),
            }
        )

    ok = np.full(8, 10.0)
    return [
        Case(
            "design_negative_weight", "design", lambda f: {"df": sample(np.r_[-5.0, ok[1:]])}, "error", ("w",)
        ),
        Case("design_nan_weight", "design", lambda f: {"df": sample(np.r_[np.nan, ok[1:]])}, "error", ("w",)),
        Case(
            "design_infinite_weight",
            "design",
            lambda f: {"df": sample(np.r_[np.inf, ok[1:]])},
            "error",
            ("w",),
        ),
        Case(
            "design_empty_domain",
            "design",
            lambda f: {
                "df": sample(ok, y=np.r_[np.full(4, np.nan), np.arange(4.0)]),
                "by": "stratum",
                "na_rm": True,
            },
            "ok",
            check=_check_empty_domain,
        ),
    ]


def _check_empty_domain(result: pd.DataFrame) -> None:
    """The domain with no observed values is reported as missing (not 0, not an error)."""
    row = result[result["stratum"] == "a"]
    assert len(row) == 1 and np.isnan(float(row["estimate"].iloc[0])), result


def _loa(rows: list[dict]) -> Callable[[Path], dict]:
    """A list of analyses (first row good, then ``rows``) on analysistools' template data."""

    def make(folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        good = {"analysis_type": "mean", "analysis_var": "income_v1_salaried_work", "group_var": "admin1"}
        pd.DataFrame([good, *rows]).fillna("").to_csv(folder / "loa.csv", index=False)
        return {
            "data": ROOT / "tests" / "fixtures" / "analysistools" / "MSNA_template_data.csv",
            "loa": folder / "loa.csv",
            "out": folder.parent / "out" / "results.csv",
        }

    return make


def analyse_cases() -> list[Case]:
    ratio = {"analysis_type": "ratio", "analysis_var_numerator": "income_v1_salaried_work", "group_var": ""}
    return [
        Case(
            "loa_unknown_variable",
            "analyse",
            _loa([{"analysis_type": "mean", "analysis_var": "incme"}]),
            "error",
            ("loa.csv", "row 3", "analysis_var", "incme"),
        ),
        Case(
            "loa_unknown_type",
            "analyse",
            _loa([{"analysis_type": "average", "analysis_var": "expenditure_debt"}]),
            "error",
            ("loa.csv", "row 3", "analysis_type", "average"),
        ),
        Case(
            "loa_group_variable_missing",
            "analyse",
            _loa(
                [
                    {
                        "analysis_type": "mean",
                        "analysis_var": "expenditure_debt",
                        "group_var": "admin1, district",
                    }
                ]
            ),
            "error",
            ("loa.csv", "row 3", "group_var", "district"),
        ),
        Case(
            "loa_ratio_without_denominator",
            "analyse",
            _loa([{**ratio, "analysis_var_denominator": ""}]),
            "error",
            ("loa.csv", "row 3", "analysis_var_denominator"),
        ),
        Case(
            "loa_ratio_without_denominator_column",
            "analyse",
            _loa([ratio]),
            "error",
            ("loa.csv", "row 3", "analysis_var_denominator"),
        ),
        Case(
            "loa_level_as_percent",
            "analyse",
            _loa([{"analysis_type": "mean", "analysis_var": "expenditure_debt", "level": "95%"}]),
            "error",
            ("loa.csv", "row 3", "level"),
        ),
    ]


def all_cases() -> list[Case]:
    return clean_cases() + weights_cases() + assumption_cases() + design_cases() + analyse_cases()
