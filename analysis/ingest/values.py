"""Typed answers from text cells: numbers, choice names, select_multiple summaries and option columns,
timestamps; numbers typed in other ways (full-width digits, Excel dates) are noted for the cleaning log.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis.csvtext import arrow_text
from analysis.distinct import by_distinct
from analysis.form_logic import ExpressionError, evaluate_bool
from analysis.ingest.headers import Mapping
from analysis.ingest.schema import Schema

EXCEL_EPOCH = pd.Timestamp("1899-12-30")  # day 0 of Excel's 1900 date system for serials from 61 on
EXCEL_LEAP_BUG = pd.Timestamp("1900-03-01")  # before it, serials are one less (Excel counts a 1900-02-29)
OPTION_LIST = r"^([0-9A-Za-z_.-]+( [0-9A-Za-z_.-]+)*)?$"  # a summary needing no tidying: names, one space
MISSING_MARKERS = {"-2", "-3", "(跳过)", "(空)"}  # 问卷星's structural missing codes (skipped, empty)


def to_choice(values: pd.Series, lookup: dict[str, str], names: list[str]) -> pd.Series:
    """Labels to choice names when the column holds labels (fewer than half of its answers are choice
    names: a label export, 问卷星 text file or SPSS value labels). In a column of names, a stray label or
    variant is left as it is, for the cleaning checks to log and recode."""
    stripped = values.str.strip()
    answered = stripped != ""
    if stripped[answered].isin(names).mean() >= 0.5:
        return stripped
    return stripped.map(lookup).fillna(stripped)


def select_multiple(
    summary: pd.Series | None,
    dummy_cols: dict[str, pd.Series],
    options: list[str],
    lookup: dict[str, str],
    multi_sep: str | None,
) -> pd.Series | None:
    """One space-separated summary column from the summary as answered (order kept; labels, as in a
    问卷星 ``┋`` text file, mapped to choice names; tokens that are not options kept for the checks), or,
    when the export has only 0/1 option columns, from those in form order. None when the export has
    neither (the question is absent)."""
    if summary is not None and ((summary.fillna("") != "").any() or not dummy_cols):
        text = summary.fillna("").astype(str)
        if not multi_sep and pc.all(pc.match_substring_regex(arrow_text(text), OPTION_LIST)).as_py():
            return text.astype(object)  # already option names with one space between them
        if multi_sep or not text.str.fullmatch(r"[\s\w.-]*").all():
            splitter = multi_sep or None
            text = text.map(
                lambda v: " ".join(
                    lookup.get(t.strip(), t.strip()).replace(" ", "_") for t in v.split(splitter) if t.strip()
                )
            )
        return text.astype(object).str.split().str.join(" ").fillna("").astype(object)
    if not dummy_cols:
        return None
    picked = pd.DataFrame(
        {
            o: dummy_cols[o].str.strip().str.lower().isin(["1", "1.0", "true"])
            for o in options
            if o in dummy_cols
        }
    )
    answered = pd.DataFrame({o: dummy_cols[o].str.strip() != "" for o in dummy_cols}).any(axis=1)
    text = picked.apply(lambda col: col.map({True: col.name + " ", False: ""})).sum(axis=1).str.strip()
    return text.where(answered, "").astype(object)


def option_columns(summary: pd.Series, options: list[str], name: str, asked: pd.Series) -> pd.DataFrame:
    """``<name>.<option>`` 0/1 columns from a summary column: 0 where the question was asked and the
    option not picked (nothing picked means none applies), missing where it was not asked."""
    text = summary.fillna("")
    answered = (text != "") | asked
    # option o is picked when " o " is in " <summary> ", i.e. o is one of the summary's space-separated
    # fields: split once and look the fields up, instead of one substring search per option
    fields = pc.split_pattern(arrow_text(text.astype(str)), " ")
    row = pc.list_parent_indices(fields).to_numpy()
    known = pa.array([str(o) for o in options], type=pa.large_string())
    option = pc.fill_null(pc.index_in(pc.list_flatten(fields), value_set=known), -1).to_numpy()
    picked = np.zeros((len(text), len(options)), dtype=bool)
    picked[row[option >= 0], option[option >= 0]] = True
    padded = " " + text + " "
    return pd.DataFrame(
        {
            f"{name}.{o}": pd.Series(
                picked[:, k] if o and " " not in o else padded.str.contains(f" {o} ", regex=False).to_numpy(),
                index=summary.index,
            )
            .astype(float)
            .where(answered)
            for k, o in enumerate(options)
        },
        index=summary.index,
    )


def _number(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.str.strip().replace("", None), errors="coerce").astype(float)


def timestamps(values: pd.Series) -> pd.Series:
    """Wall-clock timestamps as recorded (a trailing UTC offset is dropped; the interview is one place)."""
    text = values.str.strip().str.replace(r"(Z|[+-]\d{2}:?\d{2})$", "", regex=True).str.replace("/", "-")
    return pd.to_datetime(text.replace("", None), errors="coerce", format="mixed")


def typed(
    raw: pd.DataFrame,
    dummy_cols: dict[str, dict[str, pd.Series]],
    fields: pd.DataFrame,
    form: Schema,
    multi_sep: str | None,
    positional: bool,
) -> pd.DataFrame:
    """Typed columns by bare field name: numbers as float, selects as choice names, times as datetimes,
    text stripped with line breaks written ``\\n``.

    select_multiple fields come last so that their relevance (was the question shown?) can be evaluated
    on the other answers: an unanswered question that was shown gets 0 in every option column. Where the
    export's own option columns hold answers they are kept as written, and an option left blank beside
    answered ones stays blank (added in a later form version, it was not offered to that respondent).
    """
    out = {}
    multi = fields[fields["base_type"] == "select_multiple"]
    for row in fields[fields["base_type"] != "select_multiple"].itertuples(index=False):  # per field, not row
        name, base = row.name, row.base_type
        values = raw.get(name)
        if values is None:
            continue
        if base in ("integer", "decimal", "range"):
            out[name] = by_distinct(values, _number)
        elif base == "select_one":
            lookup = form.lookup(name)
            if positional and values.str.fullmatch(r"\d+").fillna(True).all():
                by_position = {str(i): n for i, n in enumerate(form.choice_names(name), start=1)}
                values = values.str.strip().map(by_position).fillna(values)
            out[name] = to_choice(values, lookup, form.choice_names(name)).replace("", None)
        elif base in ("start", "end", "today", "date", "datetime"):
            out[name] = by_distinct(values, timestamps)
        else:  # text; line breaks as "\n" whichever way the file wrote them ("\r\n" in a CSV, "\n" in xlsx)
            out[name] = by_distinct(
                values, lambda v: v.str.replace("\r\n?", "\n", regex=True).str.strip().replace("", None)
            )
    typed = pd.DataFrame(out, index=raw.index)
    summaries = {}
    for row in multi.itertuples(index=False):
        summary = select_multiple(
            raw.get(row.name),
            dummy_cols.get(row.name, {}),
            form.choice_names(row.name),
            form.lookup(row.name),
            multi_sep,
        )
        if summary is not None:
            summaries[row.name] = summary.replace("", None)
    context = pd.concat([typed, pd.DataFrame(summaries, index=raw.index)], axis=1)
    parts = [typed]
    for row in multi[multi["name"].isin(list(summaries))].itertuples(index=False):
        try:
            asked = (
                evaluate_bool(row.relevant_all, context)
                if row.relevant_all
                else pd.Series(True, index=raw.index)
            )
        except ExpressionError:  # relevance refers to a question outside this table: count answers only
            asked = pd.Series(False, index=raw.index)
        parts.append(summaries[row.name].rename(row.name).to_frame())
        options = option_columns(summaries[row.name], form.choice_names(row.name), row.name, asked)
        written = {o: c.str.strip().str.lower() for o, c in dummy_cols.get(row.name, {}).items()}
        answered = pd.DataFrame({o: c != "" for o, c in written.items()}, index=raw.index).any(axis=1)
        for option, flag in written.items():  # an option blank beside answered ones was not offered: blank
            column = f"{row.name}.{option}"
            options[column] = options[column].where(
                ~answered,
                np.where(
                    flag.isin(["1", "1.0", "true"]),
                    1.0,
                    np.where(flag.isin(["0", "0.0", "false"]), 0.0, np.nan),
                ),
            )
        parts.append(options)
    return pd.concat(parts, axis=1)


def form_order(frame: pd.DataFrame, fields: pd.DataFrame) -> pd.DataFrame:
    """Answer columns in form order, each select_multiple followed by its option columns."""
    order = []
    for name in fields["name"]:
        if name in frame:
            order.append(name)
            order += [c for c in frame.columns if c.startswith(name + ".") and c not in order]
    return frame[order]


def numbers(
    table: pd.DataFrame, headers: dict[str, str], fields: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric answers as plain number text, and a note for each one that was not.

    Full-width digits (１２, typed with a Chinese input method) are folded to ASCII (NFKC); a date where a
    number belongs (an Excel cell formatted as a date: 45 shows as 1900-02-14) becomes its Excel serial;
    anything else that is not a number is left to be blanked. ``headers``: column -> bare field name.
    Each distinct answer of a column is read once. Returns the table and notes (row position, question,
    old_value, new_value, issue).
    """
    numeric = set(
        fields.loc[fields["base_type"].isin(["integer", "decimal", "range"]) & ~fields["pii"], "name"]
    )
    table = table.copy()
    notes = []
    for header, name in headers.items():
        if name not in numeric or header not in table:
            continue
        row_codes, distinct = pd.factorize(table[header].astype(str), use_na_sentinel=False)
        text = pd.Series(distinct).str.strip()
        folded = text.map(lambda v: unicodedata.normalize("NFKC", v) if not v.isascii() else v)
        number = pd.to_numeric(folded.replace("", None), errors="coerce")
        date = pd.to_datetime(
            folded.where(number.isna() & folded.str.match(r"^\d{4}-\d{2}-\d{2}")),
            errors="coerce",
            format="mixed",
        )
        days = (date - EXCEL_EPOCH) / pd.Timedelta(days=1) - (date < EXCEL_LEAP_BUG)  # Excel's 1900-02-29
        serial = days.map(lambda v: f"{v:g}", na_action="ignore")
        new = folded.where(date.isna(), serial)
        kinds = [
            ("full-width digits read as a number", (folded != text) & number.notna(), new),
            (
                (
                    "a date where a number belongs (Excel date-formatted cell): read as its Excel serial "
                    "number; "
                    "check the value"
                ),
                date.notna(),
                new,
            ),
            (
                "not a number: the answer is left blank",
                number.isna() & date.isna() & (folded != ""),
                pd.Series(None, index=new.index, dtype=object),
            ),
        ]
        for issue, hit, value in kinds:
            position = np.flatnonzero(hit.to_numpy(dtype=bool)[row_codes])
            notes.append(
                pd.DataFrame(
                    {
                        "position": position,
                        "question": name,
                        "old_value": text.to_numpy()[row_codes[position]],
                        "new_value": value.to_numpy()[row_codes[position]],
                        "issue": issue,
                    }
                )
            )
        table[header] = new.take(row_codes).set_axis(table.index)
    notes = (
        pd.concat(notes, ignore_index=True)
        if notes
        else pd.DataFrame(columns=["position", "question", "old_value", "new_value", "issue"])
    )
    return table, notes


def frame_for(
    table: pd.DataFrame,
    mapping: Mapping,
    fields: pd.DataFrame,
    form: Schema,
    multi_sep: str | None,
    positional: bool,
    labels: dict[str, dict],
    label_prefix: str = "",
) -> pd.DataFrame:
    """Typed frame for one table (main or a repeat) from its raw headers."""
    wanted = set(fields["name"])
    headers = {h: f for h, f in mapping.fields.items() if f in wanted}
    raw = table[list(headers)].astype(str).set_axis(list(headers.values()), axis=1)
    raw = raw.mask(raw.isin(MISSING_MARKERS), "")
    for header, name in headers.items():  # SPSS value labels: code -> label (choice label)
        value_labels = labels.get(label_prefix + header)
        if value_labels and form.field(name)["base_type"] in ("select_one", "select_multiple"):
            raw[name] = raw[name].map(value_labels).fillna(raw[name])
    dummy_cols: dict[str, dict[str, pd.Series]] = {}
    dummies = {h: t for h, t in mapping.dummies.items() if t[0] in wanted}
    if dummies:
        block = table[list(dummies)].astype(str)
        block = block.mask(block.isin(MISSING_MARKERS), "")
        for header, (name, option) in dummies.items():
            dummy_cols.setdefault(name, {})[option] = block[header]
    return typed(raw, dummy_cols, fields, form, multi_sep, positional)
