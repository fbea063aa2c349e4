"""Cleaning finds the planted faults, accounts for every row, lets a person's decisions win, leaks nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ingest_fixtures as fx
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.clean import (
    Settings,
    apply_log,
    check_choices,
    check_other_text,
    check_outliers,
    check_required,
    check_roster,
    check_skip_logic,
    check_soft_duplicates,
    clean_raw,
    clean_survey,
    load_settings,
    review_cleaning,
)
from analysis.clean.answers import match_choice, normalise_name
from analysis.clean.settings import LogicCheck
from analysis.errors import ConfigError
from analysis.ingest import read_export
from analysis.validation import fault_detection

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "survey" / "raw" / "kobo" / "leliu_needs.csv"
FAULTS = ROOT / "survey" / "simulation" / "faults.csv"
OUTPUTS = [
    "households.parquet",
    "households.csv",
    "persons.parquet",
    "persons.csv",
    "cleaning_log.csv",
    "deletion_log.csv",
    "data_dictionary.csv",
    "provenance.json",
    "check_summary.csv",
    "other_texts.csv",
]


@pytest.fixture(scope="module")
def form():
    return fx.form()


@pytest.fixture(scope="module")
def bundled(form, tmp_path_factory):
    if not BUNDLED.exists():
        pytest.skip("bundled survey not generated")
    out = tmp_path_factory.mktemp("bundled")
    return clean_survey(fx.FORM_DIR, BUNDLED, out), out


@pytest.fixture(scope="module")
def faults():
    return pd.read_csv(FAULTS, dtype=str)


# ----- the planted faults -----------------------------------------------------------------------------


def test_checks_find_at_least_95_percent_of_every_planted_fault_kind(bundled, faults):
    by_kind, _ = fault_detection(bundled[0], faults)
    assert set(by_kind["kind"]) == set(faults["kind"])
    low = by_kind[by_kind["rate"] < 0.95]
    assert low.empty, low.to_string()


def test_checks_other_than_duration_flag_at_most_1_percent_of_fault_free_submissions(bundled, faults):
    result = bundled[0]
    log = result.cleaning_log
    without_duration = type(result)(
        result.households,
        result.persons,
        log[log["check_id"] != "duration"],
        result.deletion_log,
        result.review,
        result.raw,
    )
    _, summary = fault_detection(without_duration, faults)
    assert summary["false_positive_rate"] <= 0.01, summary


def test_duration_check_flags_exactly_the_interviews_outside_25_to_90_minutes(bundled):
    """Among interviews not already removed (duplicate, test, no consent)."""
    result = bundled[0]
    raw = result.raw.households
    minutes = (raw["end"] - raw["start"]).dt.total_seconds() / 60
    log = result.cleaning_log
    earlier = set(log.loc[log["check_id"].isin(["duplicate_uuid", "test_submission", "no_consent"]), "uuid"])
    expected = set(raw.loc[((minutes < 25) | (minutes > 90)) & ~raw["uuid"].isin(earlier), "uuid"])
    flagged = set(result.cleaning_log.loc[result.cleaning_log["check_id"] == "duration", "uuid"])
    assert flagged == expected


def test_all_checks_flag_at_most_1_percent_of_fault_free_submissions(bundled, faults):
    _, summary = fault_detection(bundled[0], faults)
    assert summary["false_positive_rate"] <= 0.01, summary


# ----- accounting and outputs ---------------------------------------------------------------------------


def test_every_raw_submission_is_clean_or_deleted_with_a_reason(bundled):
    result, out = bundled
    raw = result.raw
    assert len(raw.households) == len(result.households) + len(result.deletion_log)
    assert set(raw.households["uuid"]) == set(result.households["uuid"]) | set(result.deletion_log["uuid"])
    assert result.deletion_log["issue"].str.len().gt(0).all()
    assert (
        len(raw.persons) == len(result.persons) + raw.persons["uuid"].isin(result.deletion_log["uuid"]).sum()
    )
    for name in OUTPUTS:
        assert (out / "clean" / name).exists(), name
    written = pd.read_parquet(out / "clean" / "households.parquet")
    assert len(written) == len(result.households) and written["household_id"].is_unique
    assert result.review.empty


@pytest.mark.slow
def test_no_output_contains_personal_data_from_the_raw_export(bundled):
    _, out = bundled
    raw = pd.read_csv(BUNDLED, dtype=str, keep_default_na=False)
    roster = pd.read_csv(BUNDLED.with_name("roster.csv"), dtype=str, keep_default_na=False)
    secrets = set()
    for column in ["respondent/resp_name", "respondent/phone", "respondent/address", "respondent/id_number"]:
        secrets |= {v for v in raw[column] if len(v) >= 2}
    secrets |= {v for v in roster["roster/member_name"] if len(v) >= 2}
    secrets -= {"测试"}  # test submissions use the word 'test' as a name; it appears in their comments only
    texts = {
        p.name: p.read_bytes().decode("utf-8", errors="replace")
        for p in (out / "clean").iterdir()
        if p.suffix in (".csv", ".json")
    }
    texts.update({p.name: pd.read_parquet(p).to_csv() for p in (out / "clean").glob("*.parquet")})
    leaks = {(name, s) for name, text in texts.items() for s in secrets if s in text}
    assert not leaks, sorted(leaks)[:5]
    # a mobile number or ID number standing alone (not a piece of a uuid such as ...-15933218936)
    numbers = pd.Series(list(texts.values())).str.contains(
        r"(?<![0-9A-Za-z-])(?:1[3-9]\d{9}|\d{17}[\dX])(?![0-9A-Za-z-])", regex=True
    )
    assert not numbers.any()


@pytest.mark.slow
def test_outputs_are_deterministic(form, tmp_path):
    hh, people = fx.responses(form, n=20)
    path = fx.write_kobo_xlsx(form, hh, people, tmp_path / "k.xlsx")
    clean_survey(fx.FORM_DIR, path, tmp_path / "a")
    clean_survey(fx.FORM_DIR, path, tmp_path / "b")
    for name in OUTPUTS:
        assert (tmp_path / "a" / "clean" / name).read_bytes() == (
            tmp_path / "b" / "clean" / name
        ).read_bytes(), name


@pytest.mark.slow
def test_every_export_format_gives_the_same_clean_tables(form, tmp_path):
    hh, people = fx.responses(form, n=16)
    hh.loc[2, "hh_size"] = 99
    paths = fx.write_all(form, hh, people, tmp_path / "exports")
    results = {k: clean_survey(fx.FORM_DIR, p, tmp_path / k) for k, p in paths.items()}
    reference = results["kobo_xlsx"]
    for key, result in results.items():
        for table in ("households", "persons"):
            a, b = getattr(reference, table), getattr(result, table)
            metadata = [
                "row",
                *[c for c in a.columns.union(b.columns) if c.startswith("_")],
            ]  # Kobo-only columns
            pd.testing.assert_frame_equal(
                a.drop(columns=metadata, errors="ignore"),
                b.drop(columns=metadata, errors="ignore"),
                check_dtype=False,
                obj=key,
            )
        pd.testing.assert_frame_equal(reference.cleaning_log, result.cleaning_log, obj=key)


# ----- decisions ----------------------------------------------------------------------------------------


@pytest.fixture()
def small(form, tmp_path):
    hh, people = fx.responses(form, n=20)
    hh.loc[3, "end"] = (pd.Timestamp(hh.loc[3, "start"]) + pd.Timedelta(minutes=10)).isoformat()
    hh.loc[5, "caregiver_hours"] = 500  # care_dependent yes in row 5? ensure relevant
    hh.loc[5, "care_dependent"] = "yes"
    return fx.write_kobo_xlsx(form, hh, people, tmp_path / "k.xlsx"), tmp_path


@pytest.mark.slow
def test_a_persons_decisions_win(small):
    path, tmp = small
    first = clean_survey(fx.FORM_DIR, path, tmp / "first")
    log = pd.read_csv(tmp / "first" / "clean" / "cleaning_log.csv", dtype=str, keep_default_na=False)
    speeder = log["check_id"] == "duration"
    hours = (log["question"] == "caregiver_hours") & (log["check_id"] == "constraint")
    assert speeder.sum() == 1 and hours.sum() == 1
    log.loc[speeder, "change_type"] = "no_action"
    log.loc[hours, ["change_type", "new_value"]] = ["change_response", "50"]
    decisions = tmp / "decisions.xlsx"
    log.to_excel(decisions, index=False, sheet_name="cleaning_log")
    second = clean_survey(fx.FORM_DIR, path, tmp / "second", decisions=decisions)
    uuid = log.loc[speeder, "uuid"].iloc[0]
    assert uuid in set(first.deletion_log["uuid"]) and uuid not in set(second.deletion_log["uuid"])
    assert uuid in set(second.households["uuid"])
    changed = second.households.set_index("uuid").loc[log.loc[hours, "uuid"].iloc[0], "caregiver_hours"]
    assert changed == 50
    assert len(second.households) == len(first.households) + 1


@pytest.mark.slow
def test_a_decision_for_a_question_that_does_not_exist_is_refused(small):
    path, tmp = small
    clean_survey(fx.FORM_DIR, path, tmp / "first")
    log = pd.read_csv(tmp / "first" / "clean" / "cleaning_log.csv", dtype=str, keep_default_na=False)
    extra = log.iloc[[0]].assign(question="no_such_question", check_id="manual", change_type="blank_response")
    pd.concat([log, extra]).to_csv(tmp / "decisions.csv", index=False)
    with pytest.raises(ConfigError, match="no_such_question"):
        clean_survey(fx.FORM_DIR, path, tmp / "second", decisions=tmp / "decisions.csv")
    assert not (tmp / "second" / "clean").exists()


@pytest.mark.slow
def test_a_decision_setting_a_value_outside_the_forms_choices_is_refused(small):
    path, tmp = small
    first = clean_survey(fx.FORM_DIR, path, tmp / "first")
    log = pd.read_csv(tmp / "first" / "clean" / "cleaning_log.csv", dtype=str, keep_default_na=False)
    uuid = first.households["uuid"].iloc[0]
    typo = log.iloc[[0]].assign(
        uuid=uuid,
        question="housing",
        old_value="",
        check_id="manual",
        change_type="change_response",
        new_value="flat",
    )
    pd.concat([log, typo]).to_csv(tmp / "decisions.csv", index=False)
    with pytest.raises(ConfigError, match="'flat'") as error:
        clean_survey(fx.FORM_DIR, path, tmp / "second", decisions=tmp / "decisions.csv")
    assert error.value.column == "housing" and uuid in str(error.value)
    assert not (tmp / "second" / "clean").exists()


@pytest.mark.slow
def test_review_finds_a_change_not_applied_and_a_deleted_survey_still_present(form, small):
    path, _ = small
    raw = read_export(path, form)
    result = clean_raw(form, raw)
    changed = result.cleaning_log[result.cleaning_log["change_type"] == "blank_response"].iloc[0]
    tampered = result.households.copy()
    tampered.loc[tampered["uuid"] == changed["uuid"], changed["question"]] = 123.0
    deleted = result.raw.households[result.raw.households["uuid"].isin(result.deletion_log["uuid"])]
    tampered = pd.concat([tampered, deleted.iloc[:1]], ignore_index=True)
    review = review_cleaning(
        form, result.raw, tampered, result.persons, result.cleaning_log, result.deletion_log
    )
    assert {"change_not_applied", "deleted_survey_present"} <= set(review["finding"])


# ----- single checks on planted values ------------------------------------------------------------------


@pytest.mark.slow
def test_single_checks_on_planted_values(form, tmp_path):
    hh, people = fx.responses(form, n=20)
    hh.loc[1, "cunju"] = "黃連 社區"  # traditional characters and a space
    hh.loc[2, "need_youth_other"] = "四点半课堂/课后托管"  # names the 'afterschool' option
    hh.loc[2, "need_youth"] = "other"
    hh.loc[4, "caregiver_hours"] = 12  # care_dependent is 'no': not relevant
    hh.loc[4, "care_dependent"] = "no"
    people.loc[people["_parent_index"] == 7, "age"] = 3  # a 3-year-old head
    raw = read_export(fx.write_kobo_xlsx(form, hh, people, tmp_path / "k.xlsx"), form)
    ours = raw.households
    choices = check_choices(form, ours, raw.persons)
    assert choices.loc[choices["question"] == "cunju", ["new_value", "change_type"]].to_numpy().tolist() == [
        ["c02", "change_response"]
    ]
    other = check_other_text(form, ours, raw.persons)
    assert ("need_youth", "afterschool", "change_response") in set(
        zip(other["question"], other["new_value"], other["change_type"])
    )
    skips = check_skip_logic(form, ours, raw.persons)
    assert ("uuid-0004", "caregiver_hours") in set(zip(skips["uuid"], skips["question"]))
    roster = check_roster(ours, raw.persons, load_settings().roster, "hh_size")
    assert "roster_child_head" in set(roster.loc[roster["uuid"] == "uuid-0006", "check_id"])


def test_soft_duplicate_is_found_and_the_later_copy_removed(form, tmp_path):
    hh, people = fx.responses(form, n=20, seed=11)
    copy = hh.iloc[[6]].assign(
        _uuid="uuid-copy",
        _index=99,
        k6_nervous="4",
        start=(pd.Timestamp(hh.loc[6, "start"]) + pd.Timedelta(days=1)).isoformat(),
        end=(pd.Timestamp(hh.loc[6, "end"]) + pd.Timedelta(days=1)).isoformat(),
    )
    members = people[people["_parent_index"] == 7].assign(_parent_index=99)
    hh, people = pd.concat([hh, copy], ignore_index=True), pd.concat([people, members], ignore_index=True)
    raw = read_export(fx.write_kobo_xlsx(form, hh, people, tmp_path / "k.xlsx"), form)
    found = check_soft_duplicates(form, raw.households, raw.persons, block=None)
    assert found["uuid"].tolist() == ["uuid-copy"]
    assert "uuid-0006" in found["issue"].iloc[0]


@pytest.mark.slow
def test_apply_log_blanks_and_recodes_and_rebuilds_option_columns(form, tmp_path):
    hh, people = fx.responses(form, n=8)
    hh.loc[2, "need_youth_other"] = "课后托管"
    hh.loc[2, "need_youth"] = "other"
    raw = read_export(fx.write_kobo_xlsx(form, hh, people, tmp_path / "k.xlsx"), form)
    result = clean_raw(form, raw)
    row = result.households.set_index("uuid").loc["uuid-0002"]
    assert row["need_youth"] == "afterschool" and row["need_youth.afterschool"] == 1
    assert row["need_youth.other"] == 0 and pd.isna(row["need_youth_other"])
    clean, _, deletion = apply_log(form, raw, result.cleaning_log)
    assert len(clean) + len(deletion) == len(raw.households)


@pytest.mark.slow
def test_a_decision_for_all_data_applies_to_every_interview(form, small):
    path, _ = small
    raw = read_export(path, form)
    added = pd.DataFrame(
        [
            {
                "uuid": "all_data",
                "person_id": "",
                "question": "aware_centre",
                "old_value": "",
                "new_value": "yes",
                "issue": "centre publicised to everyone",
                "check_id": "manual",
                "change_type": "change_response",
            }
        ]
    )
    result = clean_raw(form, raw, decisions=added)
    assert (result.households["aware_centre"] == "yes").all()
    assert result.review.empty


# ----- settings ---------------------------------------------------------------------------------------------


def _settings(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cleaning.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        (
            "consent:\n  field: consent\noutliers:\n  method: sd\n  sd: -1\n",
            "outliers.sd",
            5,
            "greater than 0",
        ),
        ("choices:\n  simlarity: 0.9\n", "choices.simlarity", 2, "unknown key"),
        (
            "logic_checks:\n  - id: a\n    expression: ${age} <<< 3\n",
            "logic_checks.0.expression",
            3,
            "unexpected '<'",
        ),
        ("choices:\n  columns:\n    cunju: {action: map}\n", "choices.columns.cunju", 3, "recode table"),
    ],
)
def test_settings_errors_name_the_file_the_key_and_its_line(tmp_path, text, key, line, words):
    with pytest.raises(ConfigError) as error:
        load_settings(_settings(tmp_path, text))
    assert error.value.column == key and error.value.row == line and "cleaning.yaml" in error.value.file
    assert words in str(error.value)


def test_unquoted_yes_in_the_settings_is_the_answer_yes(tmp_path):
    assert load_settings(
        _settings(tmp_path, "consent: {field: consent, accept: [yes]}\n")
    ).consent.accept == ["yes"]


@pytest.mark.slow
def test_a_check_whose_field_is_missing_says_so_in_the_summary(small):
    path, tmp = small
    settings = _settings(
        tmp,
        "consent: {field: agreed}\nroster: {relation: relation, age: years}\n"
        "design: {household_size: hh_size, stratum: cunju, psu: psu}\n"
        "logic_checks:\n  - {id: big, expression: '${rooms} > 9'}\n",
    )
    result = clean_survey(fx.FORM_DIR, path, tmp / "out", settings=settings)
    summary = result.check_summary.set_index("check_id")
    assert (
        summary.loc["no_consent", "status"] == "skipped" and "'agreed'" in summary.loc["no_consent", "detail"]
    )
    assert (
        summary.loc["roster_generation", "status"] == "skipped"
        and "'years'" in summary.loc["roster_generation", "detail"]
    )
    assert summary.loc["logic:big", "status"] == "skipped" and "rooms" in summary.loc["logic:big", "detail"]
    assert summary.loc["roster_heads", "status"] == "ran"
    assert "check no_consent skipped" in str(result)
    written = pd.read_csv(tmp / "out" / "clean" / "check_summary.csv", dtype=str, keep_default_na=False)
    assert written["check_id"].tolist() == summary.index.tolist()


@pytest.mark.slow
def test_logic_checks_flag_the_answers_for_which_the_expression_is_true(form, tmp_path):
    hh, people = fx.responses(form, n=12)
    hh.loc[[1, 5], "housing"] = "dorm"  # and hh_size > 1 in both
    hh.loc[[1, 5], "hh_size"] = [3, 2]
    settings = load_settings().model_copy(
        update={
            "logic_checks": [
                LogicCheck(
                    id="dorm_family",
                    expression="${housing} = 'dorm' and ${hh_size} > 1",
                    question="housing",
                    description="a family in a dormitory",
                )
            ]
        }
    )
    result = clean_raw(
        form, read_export(fx.write_kobo_xlsx(form, hh, people, tmp_path / "k.xlsx"), form), settings=settings
    )
    rows = result.cleaning_log[result.cleaning_log["check_id"] == "logic:dorm_family"]
    assert sorted(rows["uuid"]) == ["uuid-0001", "uuid-0005"] and (rows["old_value"] == "dorm").all()


def test_outliers_include_fields_with_a_constraint_by_default(form, tmp_path):
    """caregiver_hours is constrained to 0–168: 160 is allowed, yet far from the rest (a soft range)."""
    hh, people = fx.responses(form, n=40, seed=5)
    hh["care_dependent"], hh["caregiver_strain"] = "yes", "no"
    hh["caregiver_hours"] = [4 + i % 12 for i in range(40)]
    hh.loc[7, "caregiver_hours"] = 160
    raw = read_export(fx.write_kobo_xlsx(form, hh, people, tmp_path / "k.xlsx"), form)
    flagged = check_outliers(form, raw.households, raw.persons, Settings().outliers)
    assert "uuid-0007" in set(flagged.loc[flagged["question"] == "caregiver_hours", "uuid"])
    hard_only = Settings().outliers.model_copy(update={"include_constrained": False})
    assert "caregiver_hours" not in set(
        check_outliers(form, raw.households, raw.persons, hard_only)["question"]
    )


def test_fuzzy_recoding_never_matches_fragments_shorter_than_the_minimum():
    index = {"aljazeera4": "al_jazeera4", "aljazeera1": "al_jazeera1", "askary2": "al_askary2"}
    texts = normalise_name(pd.Series(["A4", "al jazeera 4", "aljazera4", "askary", "zzz"]))
    matched = [m if isinstance(m, str) else None for m in match_choice(texts, index)]
    assert matched == [None, "al_jazeera4", "al_jazeera4", "al_askary2", None]
    assert match_choice(texts, index, min_length=2).tolist()[0] == "al_jazeera4"  # what min_length prevents


@pytest.mark.slow
def test_a_column_mostly_outside_its_choice_list_stops_unless_the_settings_say(form, tmp_path):
    hh, people = fx.responses(form, n=20)
    hh.loc[:5, "housing"] = "flat"  # 6 of 20: 30% of the answers are not choices
    path = fx.write_kobo_xlsx(form, hh, people, tmp_path / "k.xlsx")
    with pytest.raises(ConfigError) as error:
        clean_survey(fx.FORM_DIR, path, tmp_path / "stop")
    assert error.value.column == "housing" and error.value.row == 2 and "k.xlsx" in error.value.file
    assert "30%" in str(error.value) and "'flat'" in str(error.value)
    assert not (tmp_path / "stop" / "clean").exists()
    results = {}
    for action, extra in (("keep", ""), ("blank", ""), ("map", ", recode: {flat: rent}")):
        settings = _settings(tmp_path, f"choices:\n  columns:\n    housing: {{action: {action}{extra}}}\n")
        results[action] = clean_survey(fx.FORM_DIR, path, tmp_path / action, settings=settings).households
    assert (results["keep"]["housing"].iloc[:6] == "flat").all()
    assert results["blank"]["housing"].iloc[:6].isna().all()
    assert (results["map"]["housing"].iloc[:6] == "rent").all()


def test_required_means_answered_when_shown(form, tmp_path):
    hh, people = fx.responses(form, n=12)
    hh.loc[0, "caregiver_strain"] = None  # care_dependent yes: shown, so required
    hh.loc[1, ["caregiver_strain", "caregiver_hours"]] = None  # care_dependent no: not shown
    raw = read_export(fx.write_kobo_xlsx(form, hh, people, tmp_path / "k.xlsx"), form)
    flagged = check_required(form, raw.households, raw.persons)
    assert set(zip(flagged["uuid"], flagged["question"])) == {("uuid-0000", "caregiver_strain")}


@pytest.mark.slow
def test_other_texts_are_listed_for_review(form, tmp_path):
    hh, people = fx.responses(form, n=12)
    result = clean_raw(form, read_export(fx.write_kobo_xlsx(form, hh, people, tmp_path / "k.xlsx"), form))
    listed = set(zip(result.other_texts["uuid"], result.other_texts["question"], result.other_texts["text"]))
    assert {
        ("uuid-0004", "housing_other", "宿舍楼"),
        ("uuid-0002", "need_youth_other", "英语补习班"),
    } <= listed


# ----- a person's decisions ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_persons_decision_wins_whatever_check_id_it_carries(small):
    path, tmp = small
    first = clean_survey(fx.FORM_DIR, path, tmp / "first")
    log = first.cleaning_log
    hours = log[(log["question"] == "caregiver_hours") & (log["check_id"] == "constraint")].iloc[0]
    decision = pd.DataFrame(
        [
            {
                "uuid": hours["uuid"],
                "question": "caregiver_hours",
                "change_type": "change_response",
                "new_value": "50",
                "check_id": "my_review",
                "issue": "",
            }
        ]
    )
    decision.to_csv(tmp / "decisions.csv", index=False)
    second = clean_survey(fx.FORM_DIR, path, tmp / "second", decisions=tmp / "decisions.csv")
    assert second.households.set_index("uuid").loc[hours["uuid"], "caregiver_hours"] == 50
    cell = second.cleaning_log[
        (second.cleaning_log["uuid"] == hours["uuid"])
        & (second.cleaning_log["question"] == "caregiver_hours")
    ]
    assert (cell["change_type"] == "change_response").all() and (cell["new_value"] == "50").all()


@pytest.mark.slow
def test_remove_survey_without_an_issue_is_removed_by_reviewer(small):
    path, tmp = small
    first = clean_survey(fx.FORM_DIR, path, tmp / "first")
    uuid = first.households["uuid"].iloc[2]
    pd.DataFrame([{"X_uuid": uuid, "questions": "", "change_type": "remove_survey"}]).to_csv(
        tmp / "decisions.csv", index=False
    )  # cleaningtools' column names
    second = clean_survey(fx.FORM_DIR, path, tmp / "second", decisions=tmp / "decisions.csv")
    deleted = second.deletion_log.set_index("uuid")
    assert deleted.loc[uuid, "issue"] == "removed by reviewer" and deleted.loc[uuid, "check_id"] == "reviewer"
    assert second.counts["clean_households"] == first.counts["clean_households"] - 1


@pytest.mark.slow
def test_errors_name_the_row_of_the_decisions_file(small):
    path, tmp = small
    first = clean_survey(fx.FORM_DIR, path, tmp / "first")
    uuid = first.households["uuid"].iloc[0]
    rows = [
        {"uuid": uuid, "question": "aware_centre", "change_type": "change_response", "new_value": "yes"},
        {"uuid": uuid, "question": "hardship", "change_type": "no_action"},
        {"uuid": uuid, "question": "housing", "change_type": "change_response", "new_value": "flat"},
    ]
    pd.DataFrame(rows).to_csv(tmp / "decisions.csv", index=False)
    with pytest.raises(ConfigError) as error:
        clean_survey(fx.FORM_DIR, path, tmp / "second", decisions=tmp / "decisions.csv")
    assert (
        error.value.row == 4
        and error.value.file.endswith("decisions.csv")
        and error.value.column == "housing"
    )
    rows[2] = {"uuid": uuid, "question": "no_such_question", "change_type": "blank_response"}
    pd.DataFrame(rows).to_csv(tmp / "decisions.csv", index=False)
    with pytest.raises(ConfigError) as error:
        clean_survey(fx.FORM_DIR, path, tmp / "third", decisions=tmp / "decisions.csv")
    assert error.value.row == 4 and error.value.file.endswith("decisions.csv")


@pytest.mark.slow
def test_apply_log_applies_the_log_alone_in_order(small):
    path, tmp = small
    first = clean_survey(fx.FORM_DIR, path, tmp / "first")
    a, b = first.households["uuid"].iloc[:2]
    pd.DataFrame(
        [
            {
                "_uuid": a,
                "question": "household/housing",
                "change_type": "change_response",
                "new_value": "rent",
            },
            {"_uuid": a, "question": "housing", "change_type": "change_response", "new_value": "own"},
            {"_uuid": a, "question": "need_elderly/meal", "change_type": "change_response", "new_value": "0"},
            {"_uuid": b, "question": "", "change_type": "remove_survey"},
        ]
    ).to_csv(tmp / "reviewed.csv", index=False)
    result = clean_survey(fx.FORM_DIR, path, tmp / "applied", apply_log=tmp / "reviewed.csv")
    row = result.households.set_index("uuid").loc[a]
    assert (
        row["housing"] == "own" and row["need_elderly.meal"] == 0
    )  # last change wins; option column as given
    assert b not in set(result.households["uuid"]) and result.counts["deleted_households"] == 1
    assert result.check_summary.empty and len(result.households) == len(first.raw.households) - 1
    with pytest.raises(ConfigError, match="decisions and --apply-log"):
        clean_survey(
            fx.FORM_DIR, path, tmp / "both", decisions=tmp / "reviewed.csv", apply_log=tmp / "reviewed.csv"
        )


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(st.none(), st.sampled_from(["", " ", "Yes", "yes ", " YES", "no", "No", "ñ", "İ", "ß"])),
        max_size=30,
    )
)
def test_soft_duplicate_answer_codes_normalise_distinct_text_as_every_cell(values):
    """Coding a text column first and normalising its distinct answers after gives the codes of normalising
    every cell (stripped, lower-cased, blank as missing), for Arrow and Python string columns."""
    from analysis.clean.checks import _answer_codes

    for dtype in ("str", "string", object):
        column = pd.Series(values, dtype=dtype)
        every_cell = pd.factorize(column.astype("string").str.strip().str.lower().replace("", None))[0]
        assert list(_answer_codes(column)) == list(every_cell)


def test_roster_codes_for_soft_duplicates_match_the_wide_roster():
    """Each roster column coded once and spread over member slots compares households as the wide roster
    (one column per question and slot, coded on its own) does: same columns kept, same equal pairs."""
    import numpy as np

    from analysis.clean.checks import _answer_codes, _member_codes

    rng = np.random.default_rng(3)
    households = pd.DataFrame({"uuid": ["h1", "h2", "h3", "h4", "h2", "h5"]})  # h2 twice; h4, h5 no roster
    rows = [(h, m) for h, size in (("h1", 3), ("h2", 2), ("h3", 4), ("h9", 1)) for m in range(1, size + 1)]
    persons = pd.DataFrame(rows, columns=["uuid", "member"]).sample(frac=1, random_state=1)
    n = len(persons)
    persons["text"] = pd.Series(rng.choice(["Yes", " yes", "NO", "no ", "", None], n), dtype="str").to_numpy()
    persons["number"] = rng.choice([1.0, 2.0, np.nan], n)
    persons["blank"] = np.nan
    cols = ["text", "number", "blank"]
    wide = persons.set_index(["uuid", "member"])[cols].unstack("member").reindex(households["uuid"])
    expected = [code for c in wide.columns if ((code := _answer_codes(wide[c])) >= 0).any()]
    got = _member_codes(households, persons, cols)
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a < 0, b < 0)
        assert np.array_equal(a[:, None] == a[None, :], b[:, None] == b[None, :])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.none(), st.text(alphabet=" a\t\u3000\x1c", max_size=3), st.integers(0, 2), st.booleans()
        ),
        max_size=20,
    )
)
def test_answered_is_decided_once_per_distinct_answer_as_per_cell(values):
    """present() on Python objects and on Arrow text, one decision per distinct answer, equals converting
    every cell."""
    from analysis.clean.log import present

    text = [v if v is None or isinstance(v, str) else str(v) for v in values]
    for column in (
        pd.Series(values, dtype=object),
        pd.Series(text, dtype="str"),
        pd.Series(text, dtype="string"),
    ):
        every_cell = (column.notna() & (column.astype("string").str.strip().fillna("") != "")).astype(bool)
        pd.testing.assert_series_equal(present(column), every_cell)


def test_the_person_context_is_shared_by_the_checks_and_goes_with_its_tables():
    import gc

    from analysis.clean import answers

    households = pd.DataFrame({"uuid": ["a", "b"], "x": [1, 2]})
    persons = pd.DataFrame({"uuid": ["a", "a", "b"], "y": [1, 2, 3]})
    first = answers.person_context(households, persons)
    assert answers.person_context(households, persons) is first
    assert first["x"].tolist() == [1, 1, 2]
    other = persons.copy()
    assert answers.person_context(households, other) is not first
    del households, persons, other, first
    gc.collect()
    assert answers._last_context == []


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1, 1, 1))), max_size=12))
def test_clean_csv_times_are_strftime_text(values):
    """Times in the clean CSVs are ``strftime`` text (seconds truncated, missing stays missing), in and out of
    the years where numpy writes them."""
    from analysis.clean.output import TIME_FORMAT, _time_text

    column = pd.Series(values, dtype="datetime64[us]")
    pd.testing.assert_series_equal(_time_text(column), column.dt.strftime(TIME_FORMAT))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(st.none(), st.sampled_from(["", "a", "b", "a b", "b a", "a_b", "ab", "c b", " a "])),
        min_size=1,
        max_size=12,
    )
)
def test_option_columns_rebuilt_once_per_distinct_summary_as_per_cell(summaries):
    """Option columns rebuilt from each distinct select_multiple summary equal searching every cell for
    " <option> " (1/0 where answered or asked, missing elsewhere)."""
    import numpy as np

    from analysis.clean.log import _rebuild_dummies, present

    class Form:
        def data_fields(self):
            return pd.DataFrame({"name": ["q"], "base_type": ["select_multiple"]})

        def choice_names(self, name):
            return ["a", "b", "a_b"]

    table = pd.DataFrame({"q": pd.Series(summaries, dtype=object)})
    for option in ("a", "b", "a_b"):
        table[f"q.{option}"] = np.nan
    raw = table.copy()
    raw.loc[::2, "q.a"] = 0.0  # asked in every other interview
    rebuilt = _rebuild_dummies(Form(), table, raw, {"q"})
    answered = raw[["q.a", "q.b", "q.a_b"]].notna().any(axis=1) | present(table["q"])
    padded = " " + table["q"].fillna("") + " "
    for option in ("a", "b", "a_b"):
        every_cell = padded.str.contains(f" {option} ", regex=False).astype(float).where(answered)
        pd.testing.assert_series_equal(rebuilt[f"q.{option}"], every_cell, check_names=False)
