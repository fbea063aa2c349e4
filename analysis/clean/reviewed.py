"""``--apply-log``: apply a reviewed cleaning log alone, with none of our checks, as cleaningtools'
``create_clean_data`` does.

The log's rows are applied in file order, the last change to a cell winning: ``change_response`` sets
``new_value``, ``blank_response`` blanks the cell, ``remove_survey`` removes the submission (with its
issue, or "removed by reviewer"), ``no_action`` does nothing. ``uuid`` ``all_data`` changes a whole
column. Column names are read as cleaningtools writes them (``uuid``/``_uuid``/``X_uuid``,
``question``/``questions``); a question may be a bare field name or a select_multiple option column
(``q/option``, ``q.option``). As in ``create_clean_data`` a change to a question or a uuid that is not in
the data is refused (here naming the row of the log). Values are not recomputed: a change to a
select_multiple answer leaves its option columns as the log leaves them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.clean.log import LOG_COLUMNS, deletion_log, isin, read_log_file, review_cleaning, set_values
from analysis.clean.output import write_outputs
from analysis.clean.settings import Settings
from analysis.errors import ConfigError
from analysis.ingest import RawExport, read_export
from analysis.instrument import Form, load_form


def _column_names(log: pd.DataFrame, raw: RawExport) -> pd.Series:
    """Log questions as clean-table columns: ``q/option`` and ``q.option`` become ``q.option``, group
    paths are dropped; names that match nothing are left as they are (and refused later)."""
    columns = set(raw.households.columns) | set(raw.persons.columns)

    def one(question: str) -> str:
        if question in columns or not question:
            return question
        parts = question.replace("/", ".").split(".")
        for start in range(len(parts)):
            candidate = ".".join(parts[start:])
            if candidate in columns:
                return candidate
        return question

    return log["question"].map(one)


def _refuse_unknown(log: pd.DataFrame, raw: RawExport, path: Path) -> None:
    """A change to a column or submission the data does not have: one error naming the log's row."""
    columns = set(raw.households.columns) | set(raw.persons.columns)
    changing = log["change_type"].isin(["change_response", "blank_response"])
    unknown_question = changing & ~log["question"].isin(columns)
    unknown_uuid = (log["change_type"] != "no_action") & ~log["uuid"].isin(
        set(raw.households["uuid"]) | {"all_data"}
    )
    for bad, column, what in ((unknown_question, "question", "question"), (unknown_uuid, "uuid", "uuid")):
        if bad.any():
            first = log[bad].iloc[0]
            raise ConfigError(
                f"{what} {first[column]!r} is not in the data",
                file=path,
                row=int(first["_row"]),
                column=column,
                hint="correct or delete that row of the log",
            )


def apply_reviewed(
    form: Form, raw: RawExport, log: pd.DataFrame, path: Path
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Clean households, clean persons, deletion log and the log as applied (our column names)."""
    log = log.assign(question=_column_names(log, raw))
    _refuse_unknown(log, raw, path)
    changes = log[log["change_type"].isin(["change_response", "blank_response"])]
    changes = changes.assign(
        new_value=changes["new_value"].where(changes["change_type"] == "change_response", None)
    )
    on_person = changes["question"].isin(set(raw.persons.columns) - set(raw.households.columns))
    households = set_values(raw.households, "uuid", changes[~on_person])
    persons = raw.persons
    if on_person.any():  # a roster change needs its member: person_id, else every member of the submission
        rows = changes[on_person]
        by_uuid = rows[rows["person_id"] == ""].merge(
            persons[["uuid", "person_id"]], on="uuid", suffixes=("_log", "")
        )
        persons = set_values(persons, "person_id", pd.concat([rows[rows["person_id"] != ""], by_uuid]))
    deletion = deletion_log(households, log[log["change_type"] == "remove_survey"])
    kept = ~isin(households["uuid"], deletion["uuid"])
    clean_hh = households[kept].reset_index(drop=True)
    clean_ps = persons[isin(persons["uuid"], clean_hh["uuid"])].reset_index(drop=True)
    applied = log.replace({"person_id": {"": None}, "question": {"": None}})
    return (
        clean_hh,
        clean_ps,
        deletion,
        applied.assign(decision_row=applied["_row"])[LOG_COLUMNS + ["decision_row"]],
    )


def apply_reviewed_log(
    form_path: str | Path,
    data_path: str | Path,
    log_path: str | Path,
    out_dir: str | Path,
    settings: Settings | str | Path | None = None,
):
    """Read the export, apply the reviewed log at ``log_path`` alone and write ``<out_dir>/clean/``.

    Returns a :class:`~analysis.clean.stage.CleanResult` (its check summary is empty: no check ran).
    """
    from analysis.clean.stage import CleanResult, _account, as_settings, settings_file

    form_path, data_path, log_path, out_dir = Path(form_path), Path(data_path), Path(log_path), Path(out_dir)
    s = as_settings(settings)
    form = load_form(form_path)
    raw = read_export(data_path, form, absent_repeats=s.absent_repeats)
    log = read_log_file(log_path, "reviewed log")
    households, persons, deletion, applied = apply_reviewed(form, raw, log, log_path)
    review = review_cleaning(form, raw, households, persons, applied, deletion)
    review = review[review["finding"] != "change_not_applied"]  # a later row may undo an earlier one
    counts = _account(raw, households, persons, deletion)
    result = CleanResult(
        households,
        persons,
        applied.drop(columns="decision_row"),
        deletion,
        review,
        raw,
        out_dir / "clean",
        counts,
    )
    write_outputs(out_dir, result, form, form_path, log_path, settings_file(settings), mode="apply_log")
    return result
