"""The cleaning log: its rows, a person's decisions read back and merged in, the log applied to the raw
tables, and the review of the result (cleaningtools ``create_clean_data`` / ``review_cleaning``).

Log rows are ``uuid, person_id, question, old_value, new_value, issue, check_id, change_type``;
``change_type`` is one of change_response / blank_response / remove_survey / no_action.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.distinct import each_distinct
from analysis.errors import ConfigError
from analysis.ingest import RawExport
from analysis.instrument import Form

LOG_COLUMNS = ["uuid", "person_id", "question", "old_value", "new_value", "issue", "check_id", "change_type"]
CHANGE_TYPES = ("change_response", "blank_response", "remove_survey", "no_action")
DELETION_COLUMNS = ["uuid", "household_id", "enumerator", "deviceid", "check_id", "issue", "reason"]
REVIEWER_REASON = "removed by reviewer"
# column names a cleaning log may use for each of ours (cleaningtools writes uuid/_uuid/X_uuid, question(s))
LOG_ALIASES = {
    "uuid": ("uuid", "_uuid", "X_uuid"),
    "question": ("question", "questions", "name"),
    "change_type": ("change_type",),
    "new_value": ("new_value",),
    "old_value": ("old_value",),
    "issue": ("issue",),
    "check_id": ("check_id",),
    "person_id": ("person_id",),
}


def text(values: pd.Series) -> pd.Series:
    """Values as log text: whole numbers without '.0', times as ISO, missing as ''."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%dT%H:%M:%S").fillna("")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype(float)
        whole = numbers.notna() & (numbers == np.round(numbers))
        return pd.Series(
            np.where(whole, numbers.round().astype("Int64").astype(str), numbers.astype(str)),
            index=values.index,
        ).where(numbers.notna(), "")
    return values.astype(object).where(values.notna(), "").astype(str)


def _arrow_text(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


def isin(values: pd.Series, members) -> pd.Series:
    """``values.isin(members)``, hashed in Arrow for Arrow-backed text: pandas 3 turns every member into
    an Arrow scalar in Python first (seconds for the 150,000 uuids of a census-size export). Same result:
    members that are not text are ignored, a missing member matches missing values. ``members`` may be a
    Series (best: an Arrow-backed one, never turned into Python strings)."""
    if not _arrow_text(values):
        return values.isin(members)
    if isinstance(members, pd.Series) and _arrow_text(members):  # hashed without leaving Arrow
        arrow = values.array.__arrow_array__()
        found = pc.is_in(arrow, value_set=members.array.__arrow_array__().combine_chunks().cast(arrow.type))
        return pd.Series(np.array(found, dtype=bool), index=values.index, name=values.name)
    members = list(members)
    texts = [m for m in members if isinstance(m, str)]
    missing = any(not isinstance(m, str) and pd.api.types.is_scalar(m) and pd.isna(m) for m in members)
    if not texts and not missing:
        return pd.Series(False, index=values.index, name=values.name)
    arrow = values.array.__arrow_array__()
    found = pc.is_in(arrow, value_set=pa.array(texts + [None] * missing, type=arrow.type))
    return pd.Series(np.array(found, dtype=bool), index=values.index, name=values.name)


def log_rows(uuid, person_id, question, old, new, issue, check_id, change_type, index=None) -> pd.DataFrame:
    """Cleaning-log rows from columns (scalars are repeated)."""
    frame = pd.DataFrame(
        {
            "uuid": uuid,
            "person_id": person_id,
            "question": question,
            "old_value": old,
            "new_value": new,
            "issue": issue,
            "check_id": check_id,
            "change_type": change_type,
        },
        index=index,
    )
    return frame.reset_index(drop=True)[LOG_COLUMNS]


def empty_log() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in LOG_COLUMNS})


def present(values: pd.Series) -> pd.Series:
    """Answered: not missing and, for text, not blank."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return values.notna()
    # each distinct answer converted and stripped once (Python objects kept as they are until converted)
    answered = each_distinct(
        values,
        lambda distinct: (
            pd.Series(distinct, dtype=object if values.dtype == object else None)
            .astype("string")
            .str.strip()
            .fillna("")
            != ""
        ).to_numpy(dtype=bool),
        False,
    )
    return pd.Series(answered, index=values.index)


# ----- a person's log ---------------------------------------------------------------------------------


def read_log_file(path: str | Path, what: str = "decisions") -> pd.DataFrame:
    """A cleaning log a person edited (CSV or XLSX, first sheet or sheet 'cleaning_log') as text columns
    named as ours (cleaningtools' names accepted), with ``_row``: the row of the file as a spreadsheet
    shows it (header = row 1)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} file not found", file=path)
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            sheets = pd.read_excel(path, sheet_name=None, dtype=str, keep_default_na=False, engine="openpyxl")
            frame = sheets.get("cleaning_log", next(iter(sheets.values())))
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read the {what} file ({exc})", file=path) from exc
    frame.columns = [str(c).strip().removeprefix("\ufeff") for c in frame.columns]
    renamed = {}
    for ours, names in LOG_ALIASES.items():
        found = next((n for n in names if n in frame.columns), None)
        if found is not None:
            renamed[found] = ours
    missing = [c for c in ("uuid", "question", "change_type") if c not in renamed.values()]
    if missing:
        raise ConfigError(
            f"{what} file lacks column(s) {', '.join(missing)}",
            file=path,
            row=1,
            hint="a cleaning log needs uuid, question and change_type columns (cleaningtools' "
            "X_uuid/_uuid and questions are accepted)",
        )
    frame = frame[list(renamed)].rename(columns=renamed).reindex(columns=LOG_COLUMNS, fill_value="")
    frame = frame.fillna("").astype(str).apply(lambda c: c.str.strip())
    bad = ~frame["change_type"].isin(CHANGE_TYPES)
    if bad.any():
        raise ConfigError(
            f"change_type '{frame['change_type'][bad].iloc[0]}' is not one of {', '.join(CHANGE_TYPES)}",
            file=path,
            row=int(np.flatnonzero(bad)[0]) + 2,
            column="change_type",
        )
    return frame.assign(_row=np.arange(2, len(frame) + 2))


def read_decisions(path: str | Path) -> pd.DataFrame:
    """An edited cleaning log (see :func:`read_log_file`)."""
    return read_log_file(path, "decisions")


CELL = ["uuid", "person_id", "question"]


def apply_decisions(log: pd.DataFrame, decisions: pd.DataFrame | None) -> pd.DataFrame:
    """The log with a person's decisions: every row for the same answer (uuid, person_id, question; for
    a whole interview the question is empty) takes the person's change_type and new_value, whatever
    check made it; rows for answers no check raised are appended. Where the person's file holds several
    rows for one answer, the last wins. ``decision_row`` keeps the row of the person's file."""
    log = log.assign(decision_row=pd.Series(pd.NA, index=log.index, dtype="Int64"))
    if decisions is None or decisions.empty:
        return log
    left = log.assign(**{k: log[k].fillna("").astype(str) for k in CELL})
    right = decisions.assign(**{k: decisions[k].fillna("").astype(str) for k in CELL})
    right = right.drop_duplicates(CELL, keep="last").rename(columns={"_row": "decision_row"})
    if "decision_row" not in right:  # decisions built in code rather than read from a file
        right["decision_row"] = pd.array(np.arange(2, len(right) + 2), dtype="Int64")
    right = right.reindex(columns=list(dict.fromkeys(LOG_COLUMNS + ["decision_row"])), fill_value="")
    merged = left.drop(columns="decision_row").merge(
        right[CELL + ["change_type", "new_value", "decision_row"]],
        on=CELL,
        how="left",
        suffixes=("", "_person"),
    )
    decided = merged["decision_row"].notna()
    merged.loc[decided, "change_type"] = merged.loc[decided, "change_type_person"]
    merged.loc[decided, "new_value"] = merged.loc[decided, "new_value_person"].replace("", None)
    added = right.merge(left[CELL].drop_duplicates(), on=CELL, how="left", indicator=True)
    added = added[added["_merge"] == "left_only"]
    added = added.assign(check_id=added["check_id"].replace("", "reviewer"))
    columns = LOG_COLUMNS + ["decision_row"]
    out = pd.concat([merged[columns], added[columns]], ignore_index=True)
    out["decision_row"] = out["decision_row"].astype("Int64")
    return out.replace({"person_id": {"": None}, "question": {"": None}})


# ----- applying the log ---------------------------------------------------------------------------------


def cast(values: pd.Series, like: pd.Series) -> pd.Series:
    """Log text cast to the column's type (numbers, times, text)."""
    if pd.api.types.is_datetime64_any_dtype(like):
        return pd.to_datetime(values, errors="coerce", format="mixed")
    if pd.api.types.is_numeric_dtype(like):
        return pd.to_numeric(values, errors="coerce")
    return values.astype(object)


def _rebuild_dummies(form: Form, table: pd.DataFrame, raw_table: pd.DataFrame, changed: set) -> pd.DataFrame:
    """``<name>.<option>`` columns recomputed from the changed select_multiple summaries in ``changed``
    (asked/not asked kept from the raw dummies; a blanked question becomes not asked)."""
    table = table.copy()
    multi = form.data_fields().loc[lambda f: f["base_type"] == "select_multiple", "name"]
    for name in [c for c in multi if c in table and c in changed]:
        options = form.choice_names(name)
        cols = [f"{name}.{o}" for o in options if f"{name}.{o}" in table]
        if not cols:
            continue
        asked = raw_table[cols].notna().any(axis=1).reindex(table.index).fillna(False)
        answered = asked | present(table[name])
        which, summaries = pd.factorize(table[name].fillna(""))  # each distinct summary searched once
        padded = " " + pd.Series(summaries, dtype=object) + " "
        for option in options:
            column = f"{name}.{option}"
            if column in table:
                picked = padded.str.contains(f" {option} ", regex=False).astype(float).to_numpy()
                table[column] = pd.Series(picked[which], index=table.index).where(answered)
    return table


def set_values(table: pd.DataFrame, key: str, changes: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each change (key value, question, new_value; None blanks) applied in order, the last
    change of a cell winning; ``all_data`` as the key value sets the whole column."""
    table = table.copy()
    for question, rows in changes.groupby("question", sort=False):
        if question not in table:
            continue
        every = rows[rows[key] == "all_data"]
        if len(every):
            table[question] = cast(pd.Series(every["new_value"].iloc[-1], index=table.index), table[question])
            rows = rows.loc[rows.index > every.index[-1]]
        mapping = pd.Series(rows["new_value"].to_numpy(), index=rows[key].to_numpy())
        mapping = mapping[~mapping.index.duplicated(keep="last")]
        hit = table[key].isin(mapping.index)
        updated = cast(table.loc[hit, key].map(mapping), table[question])
        if table[question].dtype == object or pd.api.types.is_string_dtype(table[question]):
            table[question] = table[question].astype(object)
        table.loc[hit, question] = updated.to_numpy()
    return table


def deletion_log(households: pd.DataFrame, removals: pd.DataFrame) -> pd.DataFrame:
    """One row per removed submission with the checks and issues that removed it; a person's removal
    without an issue is 'removed by reviewer'."""
    removals = removals.assign(
        issue=removals["issue"].fillna("").replace("", REVIEWER_REASON),
        check_id=removals["check_id"].fillna("").replace("", "reviewer"),
    )
    reasons = removals.groupby("uuid", sort=False).agg(
        check_id=("check_id", lambda s: ";".join(dict.fromkeys(s))),
        issue=("issue", lambda s: " | ".join(dict.fromkeys(s))),
    )
    deleted = households[isin(households["uuid"], reasons.index)]
    return pd.DataFrame(
        {
            "uuid": deleted["uuid"],
            "household_id": deleted["household_id"],
            "enumerator": deleted.get("enumerator"),
            "deviceid": deleted.get("deviceid"),
            "check_id": deleted["uuid"].map(reasons["check_id"]),
            "issue": deleted["uuid"].map(reasons["issue"]),
            "reason": "remove_survey",
        }
    )[DELETION_COLUMNS].reset_index(drop=True)


def apply_log(
    form: Form, raw: RawExport, log: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Clean households, clean persons and the deletion log from the raw tables and a decided log."""
    remove = log[log["change_type"] == "remove_survey"]
    if (remove["uuid"] == "all_data").any():
        raise ConfigError("remove_survey with uuid 'all_data' would delete every submission")
    changes = log[log["change_type"].isin(["change_response", "blank_response"]) & log["question"].notna()]
    changes = changes.assign(
        new_value=changes["new_value"].where(changes["change_type"] == "change_response", None)
    )
    on_person = changes["person_id"].notna()
    hh = set_values(raw.households, "uuid", changes[~on_person])
    ps = set_values(raw.persons, "person_id", changes[on_person])
    changed = set(changes["question"])
    hh = _rebuild_dummies(form, hh, raw.households, changed)
    ps = _rebuild_dummies(form, ps, raw.persons, changed)
    deletion = deletion_log(hh, remove)
    clean_hh = hh[~isin(hh["uuid"], deletion["uuid"])].reset_index(drop=True)
    clean_ps = ps[isin(ps["uuid"], clean_hh["uuid"])].reset_index(drop=True)
    return clean_hh, clean_ps, deletion


def review_cleaning(
    form: Form,
    raw: RawExport,
    households: pd.DataFrame,
    persons: pd.DataFrame,
    log: pd.DataFrame,
    deletion: pd.DataFrame,
) -> pd.DataFrame:
    """Audit as cleaningtools' ``review_cleaning``/``review_cleaning_log``: a change to a question or uuid
    not in the data, missing change_type, a change not applied, a deleted survey still present. Returns one
    row per finding (uuid, person_id, question, finding, decision_row)."""
    findings = []
    questions = set(raw.households.columns) | set(raw.persons.columns)
    known_uuid = set(raw.households["uuid"]) | {"all_data"}
    q = log["question"].fillna("")
    changing = log["change_type"].isin(["change_response", "blank_response"])
    findings.append(log[changing & (q != "") & ~q.isin(questions)].assign(finding="question_does_not_exist"))
    findings.append(log[~isin(log["uuid"], known_uuid)].assign(finding="uuid_does_not_exist"))
    findings.append(log[~log["change_type"].isin(CHANGE_TYPES)].assign(finding="na_in_change_type"))
    findings.append(
        deletion[isin(deletion["uuid"], households["uuid"])].assign(finding="deleted_survey_present")
    )
    changes = log[changing & q.isin(questions) & ~isin(log["uuid"], set(deletion["uuid"]) | {"all_data"})]
    where = {True: pd.Index(persons["person_id"]), False: pd.Index(households["uuid"])}
    for (question, is_person), rows in changes.groupby([changes["question"], changes["person_id"].notna()]):
        table = persons if is_person else households
        if question not in table:
            continue
        target = rows["person_id"] if is_person else rows["uuid"]
        last = rows.assign(_target=target.to_numpy()).drop_duplicates("_target", keep="last")
        position = where[bool(is_person)].get_indexer(last["_target"])
        current = text(table[question].iloc[np.maximum(position, 0)]).to_numpy() if len(table) else ""
        actual = np.where(position >= 0, current, "<row missing>")
        wanted = last["new_value"].where(last["change_type"] == "change_response", "").fillna("")
        wanted = text(cast(wanted.replace("", None), table[question])).to_numpy()
        findings.append(last[actual != wanted].drop(columns="_target").assign(finding="change_not_applied"))
    out = pd.concat(findings, ignore_index=True) if findings else pd.DataFrame()
    return out.reindex(columns=["uuid", "person_id", "question", "finding", "decision_row"]).reset_index(
        drop=True
    )
