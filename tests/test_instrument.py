"""The XLSForm instrument: converts with pyxform, bilingual throughout, PII flagged, builds
deterministically."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.errors import IngestError
from analysis.instrument import build_xlsx, load_form, validate_form

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "survey" / "instrument"
XLSX = SRC / "leliu_needs_survey.xlsx"


def test_pyxform_converts_the_csv_source_and_the_built_workbook_without_errors():
    for path in (SRC, XLSX):
        result = validate_form(path)
        assert '<translation lang="Chinese (zh)" default="true()">' in result.xform
        assert '<translation lang="English (en)">' in result.xform


def test_no_unnamed_label_column_and_default_language_is_chinese():
    header = pd.read_csv(SRC / "survey.csv", nrows=0).columns
    assert "label" not in header and "hint" not in header
    settings = pd.read_csv(SRC / "settings.csv", dtype=str)
    assert settings.loc[0, "default_language"] == "Chinese (zh)"


def test_every_label_hint_and_choice_has_both_languages():
    form = load_form(SRC)
    labelled = form.survey[
        form.survey["base_type"].isin(
            ["text", "integer", "select_one", "select_multiple", "note", "begin_group", "begin_repeat"]
        )
    ]
    assert (labelled["label_zh"] != "").all() and (labelled["label_en"] != "").all()
    assert ((form.survey["hint_zh"] != "") == (form.survey["hint_en"] != "")).all()
    assert (form.choices["label_zh"] != "").all() and (form.choices["label_en"] != "").all()
    raw = pd.read_csv(SRC / "survey.csv", dtype=str, keep_default_na=False)
    zh, en = raw["constraint_message::Chinese (zh)"] != "", raw["constraint_message::English (en)"] != ""
    assert (zh == en).all()


def test_contract_field_names_and_service_lines_are_present():
    form = load_form(SRC)
    names = set(form.survey["name"])
    for team, lines in {
        "elderly": ["home_visit", "meal", "day_care", "health", "activity"],
        "disability": ["rehab", "assistive", "respite", "employment", "inclusion"],
        "youth": ["afterschool", "tutoring", "counselling", "skills", "leisure"],
        "family": ["counselling", "parenting", "mediation", "assistance", "newcomer"],
    }.items():
        assert {f"need_{team}", f"receiving_{team}", f"would_use_{team}", f"need_{team}_other"} <= names
        assert form.choice_names(f"need_{team}") == lines + ["other"]
    assert form.field("wg_selfcare")["group"] == "roster/wg"
    assert form.field("wg_selfcare")["repeat"] == "roster"
    assert form.field("cunju")["group"] == "location" and form.field("cunju")["repeat"] is None
    assert form.choice_names("iadl_housekeeping") == ["1", "2", "3", "4", "5"]
    assert form.export_column("need_youth") == "services/need_youth"


def test_personal_data_fields_are_flagged_pii():
    form = load_form(XLSX)
    pii = set(form.survey.loc[form.survey["pii"], "name"])
    assert pii == {"resp_name", "phone", "address", "id_number", "member_name"}


def test_codebook_has_one_row_per_variable_with_universe():
    form = load_form(SRC)
    book = form.codebook()
    assert list(book.columns[:6]) == ["variable", "label_zh", "label_en", "type", "values", "universe"]
    assert book["variable"].is_unique
    row = book.set_index("variable").loc["adl_bathing"]
    assert "age >= 60" in row["universe"] and "1=独立完成" in row["values"]
    assert "need_elderly.meal" in set(book["variable"])


def test_workbook_build_is_deterministic_and_matches_the_committed_file(tmp_path):
    first, second = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    build_xlsx(SRC, first)
    build_xlsx(SRC, second)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() == XLSX.read_bytes(), "rebuild survey/instrument/leliu_needs_survey.xlsx"


def test_a_broken_form_raises_ingest_error(tmp_path):
    for sheet in ("survey", "choices", "settings"):
        (tmp_path / f"{sheet}.csv").write_text(
            (SRC / f"{sheet}.csv").read_text(encoding="utf-8"), encoding="utf-8"
        )
    text = (tmp_path / "survey.csv").read_text(encoding="utf-8")
    (tmp_path / "survey.csv").write_text(
        text.replace("select_one wg,wg_seeing", "select_one nolist,wg_seeing"), encoding="utf-8"
    )
    with pytest.raises(IngestError):
        validate_form(tmp_path)
    with pytest.raises(IngestError):
        load_form(tmp_path / "missing")


@pytest.mark.parametrize(
    ("columns", "zh", "en"),
    [
        ({"label::English (en)": "Age", "label::Arabic (ar)": "العمر"}, "Age", "Age"),
        ({"label": "Âge"}, "Âge", "Âge"),
        ({"label::Français (fr)": "Âge", "label::中文": "年龄"}, "年龄", "Âge"),
    ],
)
def test_labels_are_read_from_any_language_column_or_a_plain_label(tmp_path, columns, zh, en):
    """Chinese labels fill ``label_zh`` and English ``label_en`` when the form has them, else the plain or
    first label; every language is kept as ``label::<language>`` (choices likewise)."""
    survey = pd.DataFrame(
        [{"type": "integer", "name": "age", **columns}, {"type": "select_one yn", "name": "ok", **columns}]
    )
    choices = pd.DataFrame([{"list_name": "yn", "name": "yes", **columns}])
    with pd.ExcelWriter(tmp_path / "form.xlsx") as writer:
        survey.to_excel(writer, sheet_name="survey", index=False)
        choices.to_excel(writer, sheet_name="choices", index=False)
    form = load_form(tmp_path / "form.xlsx")
    assert form.field("age")["label_zh"] == zh and form.field("age")["label_en"] == en
    assert form.choices.loc[0, "label_zh"] == zh
    for column, text in columns.items():
        key = column if "::" in column else "label"
        assert form.field("age")[key] == text and form.choices.loc[0, key] == text


def test_a_field_name_used_twice_is_read_once_with_a_warning(tmp_path):
    survey = pd.DataFrame(
        [
            {"type": "integer", "name": "x", "relevant": ""},
            {"type": "integer", "name": "x", "relevant": "${x} > 1"},
            {"type": "begin_group", "name": "g"},
            {"type": "end_group", "name": ""},
            {"type": "begin_group", "name": "g"},
            {"type": "end_group", "name": ""},
        ]
    )
    with pd.ExcelWriter(tmp_path / "form.xlsx") as writer:
        survey.to_excel(writer, sheet_name="survey", index=False)
        pd.DataFrame(columns=["list_name", "name", "label"]).to_excel(
            writer, sheet_name="choices", index=False
        )
    form = load_form(tmp_path / "form.xlsx")
    assert form.data_fields()["name"].tolist() == ["x"] and form.field("x")["relevant"] == ""
    assert form.warnings == ("field name 'x' is used twice in the form; its later row is ignored",)
