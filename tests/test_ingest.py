"""Every export format gives the same tables; personal data never passes ingest; bad files fail clearly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ingest_fixtures as fx
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.errors import IngestError
from analysis.ingest import REDACTED, read_export, sha256

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def form():
    return fx.form()


@pytest.fixture(scope="module")
def rows(form):
    return fx.responses(form, n=12)


@pytest.fixture(scope="module")
def exports(form, rows, tmp_path_factory):
    return fx.write_all(form, *rows, tmp_path_factory.mktemp("exports"))


@pytest.fixture(scope="module")
def before(exports):
    return {k: sha256(p) for k, p in exports.items()}


@pytest.fixture(scope="module")
def reads(form, exports, before):
    return {k: read_export(p, form) for k, p in exports.items()}


def _answers(table):
    """The answers of a read table: without the raw row number and the Kobo metadata (``_index`` …), which
    only some formats carry."""
    return table.drop(
        columns=["row", *[c for c in table.columns if c.startswith("_")]], errors="ignore"
    ).reset_index(drop=True)


def _same(a, b):
    pd.testing.assert_frame_equal(_answers(a), _answers(b), check_dtype=False)


@pytest.mark.parametrize("fmt", ["kobo_csv", "wjx_csv", "spss"])
def test_every_format_reads_to_the_same_tables_as_kobo_xlsx(reads, fmt):
    reference, other = reads["kobo_xlsx"], reads[fmt]
    assert other.source_format == fmt
    assert other.unmapped_columns == () and other.missing_columns == ()
    _same(reference.households, other.households)
    _same(reference.persons, other.persons)


@pytest.mark.slow
def test_wjx_without_a_uuid_column_keys_on_its_serial_number(form, rows, reads, tmp_path):
    path = fx.write_wjx_csv(form, *rows, tmp_path / "wjx.csv", with_uuid=False)
    reference, other = reads["kobo_xlsx"], read_export(path, form)
    assert other.households["uuid"].tolist() == [f"wjx-{i}" for i in range(1, 13)]
    keys = ["uuid", "household_id", "person_id"]
    _same(
        reference.households.drop(columns=keys, errors="ignore"),
        other.households.drop(columns=keys, errors="ignore"),
    )
    _same(reference.persons.drop(columns=keys), other.persons.drop(columns=keys))


@pytest.mark.parametrize("sep", [".", "-"])
def test_group_separator_is_detected(form, rows, reads, tmp_path, sep):
    reference = reads["kobo_csv"]
    other = read_export(fx.write_kobo_csv(form, *rows, tmp_path / "other", sep=sep), form)
    assert other.separator == sep
    _same(reference.households, other.households)


@pytest.mark.parametrize("keep", ["summary", "details"])
def test_select_multiple_in_summary_or_details_form(form, rows, reads, tmp_path, keep):
    main, roster = fx.kobo_tables(form, *rows)
    multi = form.data_fields().query("base_type == 'select_multiple'")["name"]
    summaries = [form.export_column(n) for n in multi]
    details = [c for c in main.columns if any(c.startswith(s + "/") for s in summaries)]
    main = main.drop(columns=details if keep == "summary" else summaries)
    folder = tmp_path / keep
    folder.mkdir()
    main.to_csv(folder / "leliu_needs.csv", index=False)  # UTF-8 without BOM
    roster.to_csv(folder / "roster.csv", index=False)
    reference = reads["kobo_xlsx"]
    _same(reference.households, read_export(folder / "leliu_needs.csv", form).households)


def test_gbk_encoded_kobo_csv(form, rows, reads, tmp_path):
    main, roster = fx.kobo_tables(form, *rows)
    main.to_csv(tmp_path / "leliu_needs.csv", index=False, encoding="gb18030")
    roster.to_csv(tmp_path / "roster.csv", index=False, encoding="gb18030")
    reference = reads["kobo_xlsx"]
    _same(reference.households, read_export(tmp_path / "leliu_needs.csv", form).households)


def test_spss_keeps_value_labels(exports):
    import pyreadstat

    _, meta = pyreadstat.read_sav(str(exports["spss"]))
    assert meta.variable_value_labels["consent"] == {1.0: "是", 2.0: "否"}


def test_personal_data_is_dropped_at_the_door(rows, reads):
    hh, people = rows
    secrets = (
        set(hh["resp_name"])
        | set(hh["phone"])
        | set(hh["id_number"])
        | set(hh["address"])
        | set(people["member_name"])
    )
    for raw in reads.values():
        assert not {"resp_name", "phone", "address", "id_number", "member_name"} & set(raw.households.columns)
        text = raw.households.to_csv() + raw.persons.to_csv()
        assert not [s for s in secrets if s in text]
        assert (
            raw.households["comments"].str.contains(REDACTED, regex=False).sum()
            == (hh["comments"] != "很好").sum()
        )
        assert len(raw.redactions) == (hh["comments"] != "很好").sum()


def test_keys_are_pseudonymous_and_stable(reads):
    a, b = reads["kobo_xlsx"], reads["kobo_csv"]
    assert a.households["household_id"].is_unique
    assert a.households["household_id"].str.fullmatch(r"H[0-9a-f]{10}").all()
    assert (a.persons["person_id"] == b.persons["person_id"]).all()
    assert not a.households["household_id"].str.contains("uuid").any()


def test_raw_files_are_not_modified_and_their_checksums_recorded(exports, before, reads):
    for key, path in exports.items():
        assert reads[key].checksums[path.name] == before[key]
    assert before == {k: sha256(p) for k, p in exports.items()}


# ----- bad input: one IngestError naming the file and the problem ---------------------------------------


def _bad_files(form, rows, folder: Path) -> dict[str, tuple[Path, str]]:
    main, _ = fx.kobo_tables(form, *rows)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    (folder / "empty.csv").write_bytes(b"")
    out["empty"] = (folder / "empty.csv", "empty")
    pd.DataFrame({"q1": [1, 2], "q2": ["a", "b"], "_uuid": ["x", "y"]}).to_csv(
        folder / "other.csv", index=False
    )
    out["another survey"] = (folder / "other.csv", "another survey")
    good = fx.write_kobo_xlsx(form, *rows, folder / "good.xlsx").read_bytes()
    (folder / "truncated.xlsx").write_bytes(good[: len(good) // 2])
    out["truncated xlsx"] = (folder / "truncated.xlsx", "truncated")
    (folder / "utf16.csv").write_bytes(main.to_csv(index=False).encode("utf-16"))
    out["unknown encoding"] = (folder / "utf16.csv", "encoding")
    duplicated = main.to_csv(index=False).splitlines()
    duplicated[0] = duplicated[0].replace("household/housing,", "household/hh_size,", 1)
    (folder / "dupcols.csv").write_text("\n".join(duplicated), encoding="utf-8")
    out["duplicate column names"] = (folder / "dupcols.csv", "duplicate column")
    return out


@pytest.mark.parametrize(
    "case", ["empty", "another survey", "truncated xlsx", "unknown encoding", "duplicate column names"]
)
def test_bad_input_gives_one_clear_error(form, rows, tmp_path, case):
    path, words = _bad_files(form, rows, tmp_path)[case]
    with pytest.raises(IngestError) as error:
        read_export(path, form)
    message = str(error.value)
    assert path.name in message and words in message, message


@pytest.mark.slow
def test_cli_exits_non_zero_with_one_line_and_writes_nothing(form, rows, tmp_path):
    path, _ = _bad_files(form, rows, tmp_path / "bad")["truncated xlsx"]
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "clean",
            "--form",
            str(fx.FORM_DIR),
            "--data",
            str(path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "truncated.xlsx" in done.stderr
    assert not (out / "clean").exists()


@pytest.mark.slow
def test_bundled_wjx_export_reads_to_the_same_answers_as_the_bundled_kobo_export(form):
    kobo_path = ROOT / "survey" / "raw" / "kobo" / "leliu_needs.csv"
    wjx_path = ROOT / "survey" / "raw" / "wjx" / "leliu_needs_wjx.csv"
    if not (kobo_path.exists() and wjx_path.exists()):
        pytest.skip("bundled survey not generated")
    kobo, wjx = read_export(kobo_path, form), read_export(wjx_path, form)
    assert wjx.source_format == "wjx_csv" and wjx.unmapped_columns == () and wjx.missing_columns == ()
    # 问卷星 has no uuid, device id or start time (start = 提交答卷时间 − 所用时间); its text file holds
    # labels, so 村居 written as a label variant is mapped at the door where Kobo's code column keeps it
    # for the cleaning log
    keys = ["uuid", "household_id", "row", "person_id", "today", "deviceid", "start", "end", "cunju"]
    _same(
        kobo.households.drop(columns=keys, errors="ignore"),
        wjx.households.drop(columns=keys, errors="ignore"),
    )
    _same(kobo.persons.drop(columns=keys, errors="ignore"), wjx.persons.drop(columns=keys, errors="ignore"))
    variants = kobo.households["cunju"].fillna("") != wjx.households["cunju"].fillna("")
    assert variants.sum() <= 14 and not kobo.households.loc[variants, "cunju"].str.fullmatch(r"c\d\d").any()


@pytest.mark.slow
def test_wjx_xlsx_reads_like_the_wjx_csv(form, rows, reads, tmp_path):
    csv_path = fx.write_wjx_csv(form, *rows, tmp_path / "wjx.csv")
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="gb18030")
    table.to_excel(tmp_path / "wjx.xlsx", index=False)
    other = read_export(tmp_path / "wjx.xlsx", form)
    assert other.source_format == "wjx_xlsx"
    _same(reads["wjx_csv"].households, other.households)
    _same(reads["wjx_csv"].persons, other.persons)


# ----- any export of the form: only structural columns are required -------------------------------------


def _kobo_csv(form, hh, people, folder: Path, change=None) -> Path:
    """Kobo CSVs of ``hh``/``people``; ``change(main, roster)`` edits the tables before they are written."""
    main, roster = fx.kobo_tables(form, hh, people)
    if change is not None:
        main, roster = change(main, roster)
    folder.mkdir(parents=True, exist_ok=True)
    main.to_csv(folder / "leliu_needs.csv", index=False)
    if roster is not None:
        roster.to_csv(folder / "roster.csv", index=False)
    return folder / "leliu_needs.csv"


def test_questions_without_a_column_are_listed_not_fatal(form, rows, tmp_path):
    """A required question and a select_multiple with neither summary nor option columns: read, listed."""

    def drop(main, roster):
        gone = [c for c in main.columns if c == "household/hh_size" or c.startswith("services/need_elderly")]
        return main.drop(columns=gone), roster.drop(columns=["roster/age"])

    raw = read_export(_kobo_csv(form, *rows, tmp_path, drop), form)
    assert {"hh_size", "need_elderly", "age"} <= set(raw.missing_columns)
    assert "need_elderly" not in raw.households and "need_elderly.meal" not in raw.households
    assert len(raw.households) == 12 and raw.households["housing"].notna().all()


def test_a_missing_repeat_table_is_refused_unless_the_settings_say_it_is_absent(form, rows, tmp_path):
    path = _kobo_csv(form, *rows, tmp_path, lambda main, roster: (main, None))
    with pytest.raises(IngestError, match="no table for the repeat group 'roster'"):
        read_export(path, form)
    raw = read_export(path, form, absent_repeats=["roster"])
    assert raw.persons.empty and "age" in raw.missing_columns


def test_select_multiple_answer_order_is_kept(form, rows, tmp_path):
    hh, people = rows[0].copy(), rows[1]
    hh.loc[0, "need_elderly"] = "meal home_visit"  # the form lists home_visit first
    raw = read_export(_kobo_csv(form, hh, people, tmp_path), form)
    assert raw.households.loc[0, "need_elderly"] == "meal home_visit"
    assert raw.households.loc[0, ["need_elderly.home_visit", "need_elderly.meal"]].tolist() == [1, 1]


def test_kobo_metadata_columns_are_kept_and_personal_ones_dropped(form, rows, tmp_path):
    def add(main, roster):
        main = main.assign(
            _id=range(100, 112),
            _submission_time="2012-05-03T10:00:00",
            _status="submitted_via_web",
            _submitted_by="enumerator_account",
            _geolocation="[22.8, 113.1]",
        )
        return main, roster

    raw = read_export(_kobo_csv(form, *rows, tmp_path, add), form)
    assert raw.households["_submission_time"].eq("2012-05-03T10:00:00").all()
    assert raw.households["_id"].tolist() == [str(i) for i in range(100, 112)]
    assert {"_index", "_status"} <= set(raw.households.columns)
    assert not {"_submitted_by", "_geolocation"} & set(raw.households.columns)
    assert "_index" in raw.persons and raw.persons["_parent_index"].notna().all()


def test_headers_spelt_by_r_and_odk_briefcase_keys_are_read(form, rows, reads, tmp_path):
    """R's read.csv writes a byte-order mark as ``X.U.FEFF.`` and ``_uuid`` as ``X_uuid``; ODK Briefcase
    links repeat rows by ``PARENT_KEY``."""

    def briefcase(main, roster):
        main = main.rename(columns={"_uuid": "KEY"})
        main["KEY"] = "uuid:" + main["KEY"]
        main = main.rename(columns={main.columns[0]: "X.U.FEFF." + main.columns[0]})
        roster = roster.assign(PARENT_KEY="uuid:" + roster["_submission__uuid"]).drop(
            columns=["_parent_index", "_submission__uuid"]
        )
        return main, roster

    other = read_export(_kobo_csv(form, *rows, tmp_path, briefcase), form)
    _same(reads["kobo_xlsx"].households, other.households)
    _same(reads["kobo_xlsx"].persons, other.persons)


def test_repeat_rows_keyed_by_their_submission_id_are_linked(form, rows, reads, tmp_path):
    """R exports of Kobo loops keep the submission's uuid in the loop table (``X_uuid``) and nothing else."""

    def loop(main, roster):
        return main, roster.drop(columns=["_parent_index"]).rename(columns={"_submission__uuid": "X_uuid"})

    other = read_export(_kobo_csv(form, *rows, tmp_path, loop), form)
    _same(reads["kobo_xlsx"].persons, other.persons)


# ----- simulated or real: by checksum ---------------------------------------------------------------------


def _provenance(folder: Path, files: list[Path], simulated: bool = True) -> None:
    content = {
        "simulated": simulated,
        "generator": "analysis.simulate",
        "files": {p.stem: sha256(p) for p in files},
    }
    (folder / "PROVENANCE.json").write_text(json.dumps(content), encoding="utf-8")


@pytest.mark.slow
def test_an_export_is_simulated_only_when_the_simulators_provenance_lists_its_checksums(form, rows, tmp_path):
    path = fx.write_kobo_csv(form, *rows, tmp_path / "sim" / "kobo")
    _provenance(tmp_path / "sim", [path, path.with_name("roster.csv")])
    assert read_export(path, form).provenance["simulated"] is True
    real = fx.write_kobo_csv(form, *responses_other(form), tmp_path / "sim" / "mine")  # beside it, not listed
    assert read_export(real, form).provenance == {}
    copy = tmp_path / "elsewhere"
    shutil.copytree(path.parent, copy)  # the same bytes without any PROVENANCE.json above them
    assert read_export(copy / "leliu_needs.csv", form).provenance == {}


@pytest.mark.slow
def test_a_real_export_in_survey_raw_is_not_marked_simulated(form, rows, tmp_path):
    """The bundled survey/raw/PROVENANCE.json lists the simulator's files; an export dropped beside them is
    real."""
    bundled = ROOT / "survey" / "raw" / "kobo" / "leliu_needs.csv"
    if not bundled.exists():
        pytest.skip("bundled survey not generated")
    assert read_export(bundled, form).provenance["simulated"] is True
    folder = ROOT / "survey" / "raw" / f"test-real-{os.getpid()}"
    try:
        real = fx.write_kobo_csv(form, *rows, folder)
        assert read_export(real, form).provenance == {}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def responses_other(form):
    return fx.responses(form, n=5, seed=99)


def _both_readers(path: Path, monkeypatch) -> tuple[dict, dict]:
    """read_xlsx as it runs (calamine) and with openpyxl in calamine's place."""
    from analysis.ingest import files

    fast = files.read_xlsx(path)
    with monkeypatch.context() as patch:
        patch.setattr(files, "_calamine_sheets", files._openpyxl_sheets)
        slow = files.read_xlsx(path)
    return fast, slow


def _assert_same_sheets(fast: dict, slow: dict) -> None:
    assert list(fast) == list(slow)
    for sheet in fast:
        pd.testing.assert_frame_equal(fast[sheet], slow[sheet], check_exact=True, obj=sheet)


@pytest.mark.parametrize(
    "workbook",
    [
        "survey/raw/kobo/leliu_needs_survey.xlsx",
        "survey/waves/2013/raw/kobo/leliu_needs_survey.xlsx",
        "survey/instrument/leliu_needs_survey.xlsx",
        "tests/fixtures/tal_afar_wash_2021/form.xlsx",
    ],
)
@pytest.mark.slow
def test_calamine_reads_the_text_openpyxl_reads(workbook, monkeypatch):
    _assert_same_sheets(*_both_readers(ROOT / workbook, monkeypatch))


def test_calamine_reads_dates_times_numbers_and_padding_as_openpyxl_does(tmp_path, monkeypatch):
    """Cells whose Python types differ between the readers (a midnight date: calamine's date, openpyxl's
    datetime; whole numbers: float against int) and a sheet formatted beyond its last value."""
    import datetime as dt

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "data"
    sheet.append(["n", "x", "when", "day", "clock", "span", "flag", "phone", "text"])
    sheet.append([1, 1.5, dt.datetime(2012, 5, 7, 10, 30, 15, 250000), dt.date(2012, 5, 7), dt.time(8, 15),
                  dt.timedelta(hours=30), True, 13800138000, "中文"])  # fmt: skip
    sheet.append([None, 0.1, dt.datetime(2012, 5, 7), None, None, None, False, 1e20, " a\nb "])
    sheet.append([None] * 9)
    sheet.append([-3, 1 / 3, None, None, None, None, None, -0.0, "=1+2"])
    sheet.cell(row=9, column=12).number_format = "0.00"  # formatted, empty: openpyxl reads up to here
    book.create_sheet("empty")
    book.save(tmp_path / "cells.xlsx")
    fast, slow = _both_readers(tmp_path / "cells.xlsx", monkeypatch)
    _assert_same_sheets(fast, slow)
    row = fast["data"].iloc[0]
    assert (row["n"], row["day"], row["phone"]) == ("1", "2012-05-07 00:00:00", "13800138000")
    assert list(fast) == ["data"] and list(fast["data"].columns)[-1] == "text"


def test_a_workbook_with_excel_error_cells_keeps_the_error_text(tmp_path):
    """calamine reads '#N/A' as a blank; such a workbook is read by openpyxl, so the value stays visible
    to the checks instead of passing as a missing answer."""
    import openpyxl

    from analysis.ingest import files

    book = openpyxl.Workbook()
    book.active.append(["a", "b"])
    book.active.append(["x", "#N/A"])  # openpyxl stores '#N/A' as an error cell
    book.save(tmp_path / "errors.xlsx")
    assert files._has_error_cells(tmp_path / "errors.xlsx")
    assert files.read_xlsx(tmp_path / "errors.xlsx")["Sheet"].loc[0, "b"] == "#N/A"


def test_calamine_reads_a_1904_workbook_rich_text_merged_hidden_and_chart_sheets_as_openpyxl(
    tmp_path, monkeypatch
):
    """Workbook features of Mac Excel, WPS and hand-edited exports: the 1904 date system, rich text, a
    merged range, a hidden sheet and a chart sheet (which has no cells and is not a table)."""
    import datetime as dt

    import openpyxl
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont
    from openpyxl.chart import BarChart, Reference
    from openpyxl.utils.datetime import CALENDAR_MAC_1904

    book = openpyxl.Workbook()
    book.epoch = CALENDAR_MAC_1904
    sheet = book.active
    sheet.title = "data"
    sheet.append(["when", "n", "note"])
    sheet.append(
        [dt.datetime(2012, 5, 7, 9, 0), 3, CellRichText([TextBlock(InlineFont(b=True), "bold"), " plain"])]
    )
    sheet.append([dt.date(2013, 1, 1), 4, "x"])
    sheet.merge_cells("B4:C4")
    sheet["B4"] = "merged"
    hidden = book.create_sheet("hidden")
    hidden.append(["k"])
    hidden.append(["v"])
    hidden.sheet_state = "hidden"
    chart = BarChart()
    chart.add_data(Reference(sheet, min_col=2, min_row=1, max_row=3))
    book.create_chartsheet("chart").add_chart(chart)
    book.save(tmp_path / "features.xlsx")
    fast, slow = _both_readers(tmp_path / "features.xlsx", monkeypatch)
    _assert_same_sheets(fast, slow)
    assert list(fast) == ["data", "hidden"]
    assert fast["data"]["when"].tolist() == ["2012-05-07 09:00:00", "2013-01-01 00:00:00", ""]
    assert fast["data"].loc[0, "note"] == "bold plain"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["1", "2", "3", "10", " 1"])), max_size=6),
    st.lists(st.one_of(st.none(), st.sampled_from(["1", "2", "3", "10", "4"])), max_size=12),
)
def test_repeat_rows_find_their_submission_as_a_dict_lookup_does(keys, wanted):
    """Linking repeat rows by _parent_index gives what mapping through a dict of every submission gives
    (the last of repeated indices wins, blank or unknown: NaN), for Arrow and Python text."""
    from analysis.ingest.export import _lookup

    for dtype in ("str", object):
        index, rows = pd.Series(keys, dtype=dtype), pd.Series(wanted, dtype=dtype)
        values = pd.RangeIndex(len(keys))
        expected = rows.map(dict(zip(index, values)))
        pd.testing.assert_series_equal(_lookup(index, values, rows), expected)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["", " 12 ", "12", "1e3", "x", "2012-04-11 09:30", "2012/04/11", "a\r\nb"]),
        ),
        max_size=15,
    )
)
def test_answers_typed_once_per_distinct_value_as_every_cell(values):
    """Numbers, times and text typed once per distinct answer equal typing every cell (same values, dtype
    and index), missing answers included."""
    from analysis.distinct import by_distinct
    from analysis.ingest.values import _number, timestamps

    column = pd.Series(values, dtype="str", index=range(100, 100 + len(values)))
    for convert in (_number, timestamps, lambda v: v.str.replace("\r\n?", "\n", regex=True).str.strip()):
        pd.testing.assert_series_equal(by_distinct(column, convert), convert(column))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet='a,"\r\n序\u2028', max_size=20))
def test_csv_lines_are_those_of_a_text_stream(text):
    """The header is read from lines cut one at a time exactly as iterating io.StringIO does."""
    import io

    from analysis.ingest.files import _lines

    assert list(_lines(text)) == list(io.StringIO(text))


def test_a_csv_changed_after_format_detection_is_read_again(tmp_path):
    """The decoding kept from format detection is used only for the same, unchanged file."""
    import os

    from analysis.ingest.files import csv_header, read_csv

    path = tmp_path / "export.csv"
    path.write_bytes("\ufeffa,b\n1,2\n".encode())
    assert csv_header(path) == ["a", "b"]
    path.write_text("a,b\n3,4\n5,6\n", encoding="gb18030")
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    assert read_csv(path).to_dict("list") == {"a": ["3", "5"], "b": ["4", "6"]}
