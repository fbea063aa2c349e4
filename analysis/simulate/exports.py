"""The export writers: one per format, used by the simulator and by the test fixtures.

- :func:`kobo_tables` — submissions and roster rows as KoboToolbox exports them ("XML values and
  headers", groups in headers, select_multiple "both"; docs/sources.md §5.4), as text tables;
- :func:`write_kobo_xlsx` / :func:`write_kobo_csv` — those tables as the Kobo workbook (one sheet per
  table) or as CSVs (UTF-8 with BOM);
- :func:`wjx_table` / :func:`write_wjx_csv` — the same submissions as a 问卷星 "按选项文本" export
  (GB18030; docs/sources.md §5.5).

The SPSS writer (``write_sav``) belongs to the ingest package, which reads what it writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

KOBO_ID_BASE = 4_200_000  # Kobo's _id = this + _index (any stable number works)
KOBO_VERSION = "vLeliu2012-04"  # Kobo's __version__ of the deployed form
WJX_ORIGIN = ("手机提交", "直接访问")  # 问卷星 来源, 来源详情


def as_text(values: pd.Series) -> pd.Series:
    """Render answers as export text: missing -> "", whole floats -> "13", the rest as str."""

    def one(v):
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v)

    return pd.Series([one(v) for v in values.tolist()], index=values.index, dtype=object)


def kobo_time(values: pd.Series) -> pd.Series:
    """Local times as Kobo writes ``start``/``end``: ISO 8601 with milliseconds and +08:00."""
    return pd.to_datetime(values).dt.strftime("%Y-%m-%dT%H:%M:%S.000+08:00")


def _repeat_name(form) -> str:
    repeats = form.data_fields()["repeat"].dropna().unique()
    if len(repeats) != 1:
        raise ValueError(f"the Kobo writer handles forms with exactly one repeat group, not {len(repeats)}")
    return str(repeats[0])


def _dummies(records: pd.DataFrame, name: str, options: list[str]) -> dict[str, pd.Series]:
    """0/1 text per option: the ``<name>.<option>`` columns when given, else read from the answer."""
    if all(f"{name}.{o}" in records for o in options):
        return {o: as_text(records[f"{name}.{o}"]) for o in options}
    answer = records[name] if name in records else pd.Series(None, index=records.index, dtype=object)
    padded = " " + as_text(answer) + " "
    return {
        o: padded.str.contains(f" {o} ", regex=False).astype(int).astype(str).where(answer.notna(), "")
        for o in options
    }


def kobo_tables(
    records: pd.DataFrame, persons: pd.DataFrame, form, sep: str = "/"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Kobo export of ``records`` (one row per submission) and ``persons`` (one row per roster member)
    as text tables: the main sheet (named by the form's ``form_id``) and the repeat sheet.

    ``records`` hold ``_uuid``, answers by bare field name (choice names as codes; select_multiple as the
    space-separated answer and/or ``<name>.<option>`` 0/1 columns), ``start``/``end`` (local times) and
    optionally ``today``, ``_submission_time`` (local) and ``_index``; without ``_index`` submissions are
    numbered in order of submission time. ``persons`` are linked by ``_parent_index`` or by ``_uuid`` (an
    exact duplicate submission shares its uuid, and its roster is listed again under the second
    submission). Headers carry the group path joined with ``sep``; option columns are blank when the
    household did not consent. Missing answers are "".
    """
    records = records.copy()
    if "_index" not in records:
        order = [c for c in ("_submission_time", "_uuid") if c in records]
        records = records.sort_values(order, kind="stable").reset_index(drop=True)
        records["_index"] = np.arange(1, len(records) + 1)
    records = records.reset_index(drop=True)
    submitted = pd.to_datetime(
        records["_submission_time"] if "_submission_time" in records else records["end"]
    )
    consented = records["consent"] == "yes"
    out = {}
    fields = form.data_fields()
    for _, row in fields[fields["repeat"].isna()].iterrows():
        name, header = row["name"], form.export_column(row["name"], sep)
        if name in ("start", "end"):
            out[header] = kobo_time(records[name])
        elif name == "today" and name not in records:
            out[header] = pd.to_datetime(records["start"]).dt.strftime("%Y-%m-%d")
        else:
            out[header] = (
                as_text(records[name])
                if name in records
                else pd.Series("", index=records.index, dtype=object)
            )
        if row["base_type"] == "select_multiple":
            for option, values in _dummies(records, name, form.choice_names(name)).items():
                out[f"{header}{sep}{option}"] = values.where(consented, "")
    ids = (KOBO_ID_BASE + records["_index"].astype(int)).astype(str)
    out["_id"] = ids
    out["_uuid"] = records["_uuid"]
    out["_submission_time"] = (submitted - pd.Timedelta(hours=8)).dt.strftime(
        "%Y-%m-%dT%H:%M:%S"
    )  # Kobo: UTC
    out["_validation_status"] = ""
    out["_status"] = "submitted_via_web"
    out["_submitted_by"] = ""
    out["__version__"] = KOBO_VERSION
    out["_index"] = records["_index"].astype(str)
    households = pd.DataFrame(out)

    by_index = households.set_index(records["_index"].astype(int))
    if "_parent_index" in persons:
        persons = persons.assign(_parent_index=persons["_parent_index"].astype(int))
        persons = persons.assign(_uuid=persons["_parent_index"].map(by_index["_uuid"]))
        persons = persons.sort_values("_parent_index", kind="stable").reset_index(drop=True)
    else:
        listed = records.groupby("_uuid")["_index"].agg(list)
        persons = persons.assign(_parent_list=persons["_uuid"].map(listed)).explode("_parent_list")
        persons = persons.drop_duplicates(["person_id", "_parent_list", "_uuid"])
        persons = persons.assign(_parent_index=persons["_parent_list"].astype(int))
        persons = persons.sort_values(["_parent_index", "person_id"], kind="stable").reset_index(drop=True)
    roster = {}
    for _, row in fields[fields["repeat"] == _repeat_name(form)].iterrows():
        name = row["name"]
        roster[form.export_column(name, sep)] = (
            as_text(persons[name]) if name in persons else pd.Series("", index=persons.index, dtype=object)
        )
    roster["_index"] = pd.Series(np.arange(1, len(persons) + 1), index=persons.index).astype(str)
    roster["_parent_table_name"] = form.settings["form_id"]
    roster["_parent_index"] = persons["_parent_index"].astype(str)
    roster["_submission__id"] = persons["_parent_index"].map(by_index["_id"]).astype(str)
    roster["_submission__uuid"] = persons["_uuid"]
    roster["_submission__submission_time"] = persons["_parent_index"].map(by_index["_submission_time"])
    return households, pd.DataFrame(roster)


def _numeric_for_xlsx(table: pd.DataFrame, integer_headers: list[str]) -> pd.DataFrame:
    """Text table -> workbook table: "" -> empty cell, integer questions and _id/_index as numbers."""
    out = table.replace("", None)
    for col in integer_headers:
        if col in out:
            numbers = pd.to_numeric(out[col], errors="coerce")
            out[col] = numbers.astype("Int64").astype(object).where(numbers.notna(), out[col])
    return out


def write_kobo_xlsx(
    households: pd.DataFrame, roster: pd.DataFrame, form, path: str | Path, sep: str = "/"
) -> Path:
    """The Kobo workbook of :func:`kobo_tables` (made with ``sep``): main sheet (``form_id``) and repeat
    sheet, integers as numbers, blanks empty; deterministic bytes (:func:`analysis.instrument.write_xlsx`)."""
    from analysis.instrument import write_xlsx

    integer_fields = form.survey.loc[form.survey["base_type"] == "integer", "name"]
    integer_headers = [form.export_column(n, sep) for n in integer_fields]
    return write_xlsx(
        {
            form.settings["form_id"]: _numeric_for_xlsx(households, integer_headers + ["_id", "_index"]),
            _repeat_name(form): _numeric_for_xlsx(
                roster, integer_headers + ["_index", "_parent_index", "_submission__id"]
            ),
        },
        path,
    )


def write_kobo_csv(
    households: pd.DataFrame, roster: pd.DataFrame, folder: str | Path, form
) -> tuple[Path, Path]:
    """The Kobo CSV export: ``<form_id>.csv`` and ``<repeat>.csv`` in ``folder`` (UTF-8 with BOM, "\\n")."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / f"{form.settings['form_id']}.csv", folder / f"{_repeat_name(form)}.csv"
    for table, path in zip((households, roster), paths):
        table.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")
    return paths


def wjx_table(
    kobo_households: pd.DataFrame,
    kobo_roster: pd.DataFrame,
    form,
    respondent_key: bool = False,
    unrecorded: tuple[str, ...] = ("start", "end", "today", "deviceid"),
) -> pd.DataFrame:
    """The submissions of :func:`kobo_tables` (separator "/") as a 问卷星 "按选项文本" export
    (docs/sources.md §5.5).

    Six metadata columns (序号 = Kobo ``_index``, 提交答卷时间, 所用时间 "528秒", 来源, 来源详情, 来自IP from
    the
    192.0.2.0/24 documentation range; with ``respondent_key`` also 自定义字段 = the submission's uuid, as
    a survey sent from a sample list carries its respondent key), then one column per question headed
    "<n>、<中文题目>" in form order, except the form's metadata that 问卷星 does not record (``unrecorded``,
    by question type).
    问卷星 has no repeat groups, so the roster is flattened as blocks "成员k：<题目>" for k = 1..K (K = the
    largest roster in the export), as a 问卷星 form would repeat the member questions. Answers are Chinese
    labels; select_multiple joined with "┋"; -2 = skipped by jump logic (not relevant, or after refusal),
    -3 = member slot not shown (household has fewer members), "(空)" = optional text left blank.
    """
    labels = form.choices.set_index(["list_name", "name"])["label_zh"]
    fields = form.data_fields()
    fields = fields[~fields["base_type"].isin(unrecorded)]
    consented = kobo_households["consent"] == "yes"
    start = pd.to_datetime(kobo_households["start"].str[:19])
    end = pd.to_datetime(kobo_households["end"].str[:19])
    out = {
        "序号": kobo_households["_index"],
        "提交答卷时间": end.dt.strftime("%Y/%m/%d %H:%M:%S"),
        "所用时间": ((end - start).dt.total_seconds().astype(int).astype(str) + "秒"),
        "来源": WJX_ORIGIN[0],
        "来源详情": WJX_ORIGIN[1],
        "来自IP": "192.0.2." + (kobo_households["_index"].astype(int) % 250 + 1).astype(str) + "(广东-佛山)",
    }
    if respondent_key:
        out["自定义字段"] = kobo_households["_uuid"]

    def render(row, values: pd.Series, asked: pd.Series) -> pd.Series:
        kind, list_name = row["base_type"], row["list_name"]
        if kind == "select_one":
            text = values.map(lambda v: labels.get((list_name, v), v) if v else v)
        elif kind == "select_multiple":
            text = values.map(
                lambda v: "┋".join(labels.get((list_name, c), c) for c in v.split()) if v else v
            )
        else:
            text = values
        blank = "(空)" if kind == "text" and not row["relevant"] else "-2"
        return text.where(values != "", np.where(asked, blank, "-2")).where(asked, "-2")

    repeat = _repeat_name(form)
    roster = kobo_roster.assign(_k=kobo_roster.groupby("_parent_index").cumcount() + 1)
    k_max = int(roster["_k"].max()) if len(roster) else 0
    n, roster_done = 1, False
    for _, row in fields.iterrows():
        if row["repeat"] == repeat:
            if roster_done:
                continue
            roster_done = True
            roster_fields = fields[fields["repeat"] == repeat]
            for k in range(1, k_max + 1):
                slot = roster[roster["_k"] == k].set_index("_parent_index")
                present = kobo_households["_index"].isin(slot.index)
                for _, rrow in roster_fields.iterrows():
                    header = form.export_column(rrow["name"])
                    values = kobo_households["_index"].map(slot[header]).fillna("")
                    cell = render(rrow, values, consented & present)
                    out[f"{n}、成员{k}：{rrow['label_zh'] or rrow['name']}"] = cell.where(
                        present | ~consented, "-3"
                    )
                    n += 1
            continue
        values = kobo_households[form.export_column(row["name"])]
        asked = consented | (row["relevant_all"] == "")  # questions before consent are always asked
        out[f"{n}、{row['label_zh'] or row['name']}"] = render(
            row, values, pd.Series(asked, index=values.index)
        )
        n += 1
    return pd.DataFrame(out)


def write_wjx_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """The 问卷星 text file as its CSV download: GB18030, CRLF line ends."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, encoding="gb18030", lineterminator="\r\n")
    return path
