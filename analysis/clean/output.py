"""What the cleaning stage writes: clean tables, logs, the check summary, "other" texts for review, the
data dictionary (with the form's questions absent from the export), provenance; and the contract the
clean tables must meet before they are written."""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis import csvtext
from analysis.clean.log import isin
from analysis.errors import ConfigError
from analysis.ingest import RawExport, sha256
from analysis.instrument import Form
from analysis.outputs import aside, publishing

if TYPE_CHECKING:
    from analysis.clean.stage import CleanResult

KEY_VARIABLES = pd.DataFrame(
    {
        "variable": ["uuid", "household_id", "row", "person_id", "member", "duration_min"],
        "label_zh": [
            "提交编号",
            "住户编号（假名化）",
            "原始文件中的行号",
            "成员编号（假名化）",
            "成员序号",
            "访问时长（分钟）",
        ],
        "label_en": [
            "submission uuid",
            "household key (pseudonymous)",
            "row in the raw file",
            "person key (pseudonymous)",
            "member number in the household",
            "interview length (minutes, end − start)",
        ],
        "type": ["text", "text", "integer", "text", "integer", "decimal"],
        "values": "",
        "universe": "all",
    }
)
DICTIONARY_COLUMNS = ["table", "variable", "label_zh", "label_en", "type", "values", "universe", "in_export"]


def _versions() -> dict[str, str]:
    names = [
        "leliu-needs",
        "pandas",
        "numpy",
        "scipy",
        "pyarrow",
        "openpyxl",
        "python-calamine",
        "pyreadstat",
        "pyxform",
        "pyyaml",
        "pydantic",
        "matplotlib",
        "seaborn",
        "papermill",
    ]
    out = {"python": sys.version.split()[0]}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def data_dictionary(
    form: Form, households: pd.DataFrame, persons: pd.DataFrame, missing: tuple = ()
) -> pd.DataFrame:
    """One row per clean column: table, variable, labels (zh/en), type, values, universe (from the form),
    ``in_export`` yes; then one row per question of the form absent from the export (``in_export`` no)."""
    book = form.codebook().drop(columns="pii")
    rows = (
        pd.concat([KEY_VARIABLES, book], ignore_index=True).drop_duplicates("variable").set_index("variable")
    )
    parts = []
    for name, table in (("households", households), ("persons", persons)):
        known = [c for c in table.columns if c in rows.index]
        other = pd.DataFrame(
            {
                "variable": [c for c in table.columns if c not in rows.index],
                "type": "text",
                "label_en": "export metadata column",
            }
        )
        part = pd.concat([rows.loc[known].reset_index(), other], ignore_index=True)
        part = part.set_index("variable").reindex(list(table.columns)).reset_index()
        parts.append(part.assign(table=name, in_export="yes"))
    if missing:
        repeat = form.survey.set_index("name")["repeat"]
        absent = rows.reindex(list(missing)).reset_index().rename(columns={"index": "variable"})
        absent["table"] = ["persons" if pd.notna(repeat.get(v)) else "households" for v in absent["variable"]]
        parts.append(absent.assign(in_export="no"))
    return pd.concat(parts, ignore_index=True).reindex(columns=DICTIONARY_COLUMNS).fillna("")


def contract_schemas(
    form: Form, households: pd.DataFrame, persons: pd.DataFrame, keep: set = frozenset()
) -> dict:
    """pandera schemas of the clean tables (docs/contracts.md), built from the form.

    Keys are unique and never missing; every select_one answer is one of the form's choice names (except
    in columns the settings keep as they are); every select_multiple option column holds 0, 1 or missing;
    every person belongs to a clean household.
    """
    import pandera.pandas as pa

    def columns(table: pd.DataFrame, key: str) -> dict:
        cols = {key: pa.Column(None, nullable=False, unique=True)}
        for question in form.survey.loc[form.survey["base_type"] == "select_one", "name"]:
            if question in table.columns and question not in keep:
                cols[question] = pa.Column(None, pa.Check.isin(form.choice_names(question)), nullable=True)
        for question in form.survey.loc[form.survey["base_type"] == "select_multiple", "name"]:
            for column in table.columns[table.columns.str.startswith(f"{question}.")]:
                cols[column] = pa.Column(None, pa.Check.isin([0, 1]), nullable=True)
        return cols

    known = set(households["household_id"])
    member = pa.Column(
        None, pa.Check(lambda ids: isin(ids, known), error="belongs to a clean household"), nullable=False
    )
    return {
        "households": pa.DataFrameSchema(columns(households, "household_id")),
        "persons": pa.DataFrameSchema({**columns(persons, "person_id"), "household_id": member}),
    }


def _where(
    table: pd.DataFrame,
    position: int,
    column: str,
    raw: RawExport,
    decisions: pd.DataFrame | None,
    decisions_path: Path | None,
) -> tuple[Path | str, int | None]:
    """The file and row a person should edit for a bad clean cell: the decision that set it, else the
    submission's row in the raw export (header = row 1)."""
    uuid = table["uuid"].iloc[position]
    if decisions is not None and decisions_path is not None:
        person = table["person_id"].iloc[position] if "person_id" in table else ""
        hit = decisions[
            (decisions["question"] == column)
            & decisions["uuid"].isin([uuid, "all_data"])
            & decisions["person_id"].isin(["", person])
        ]
        if len(hit):
            return decisions_path, int(hit["_row"].iloc[-1])
    rows = raw.households.set_index("uuid")["row"]
    return raw.files[0], int(rows[uuid]) + 1 if uuid in rows.index else None


def validate_clean(
    form: Form,
    households: pd.DataFrame,
    persons: pd.DataFrame,
    raw: RawExport,
    decisions: pd.DataFrame | None = None,
    decisions_path: Path | None = None,
    keep: set = frozenset(),
) -> None:
    """Check the clean tables against :func:`contract_schemas`; the first failure names the file and row a
    person must edit (the decision that set the value, or the raw export's row), the column and uuid.

    Default rules never break these; an edited decision whose ``new_value`` is not one of the form's
    choices does, and is reported here instead of reaching the estimates.
    """
    import pandera.pandas as pa

    schemas = contract_schemas(form, households, persons, keep)
    for name, table in (("households", households), ("persons", persons)):
        try:
            schemas[name].validate(table, lazy=True, inplace=True)  # nothing is coerced: no copy needed
        except pa.errors.SchemaErrors as errors:
            first = errors.failure_cases.iloc[0]
            column, index = str(first["column"]), first["index"]
            position = None if pd.isna(index) else table.index.get_loc(index)
            uuid = None if position is None else table["uuid"].iloc[position]
            where, row = (
                (raw.files[0], None)
                if position is None
                else _where(table, position, column, raw, decisions, decisions_path)
            )
            raise ConfigError(
                f"clean {name} table breaks the contract: value {first['failure_case']!r} fails "
                f"{first['check']}" + (f" (uuid {uuid})" if uuid else ""),
                file=where,
                column=column,
                row=row,
                hint="a decision's new_value must be one of the form's choice names",
            ) from None


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # times in the clean CSVs


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """``table.to_csv(path, index=False, date_format=TIME_FORMAT)``, the same bytes, faster: the time
    columns are formatted first and the table written column-wise (:mod:`analysis.csvtext`)."""
    times = {c: _time_text(table[c]) for c, t in table.dtypes.items() if pd.api.types.is_datetime64_dtype(t)}
    csvtext.write_csv(table.assign(**times) if times else table, path)


def _time_text(column: pd.Series) -> pd.Series:
    """``column.dt.strftime(TIME_FORMAT)``; for years 1000–9999, where the two agree (seconds truncated,
    missing stays missing), numpy's ISO text: a quarter of the time."""
    values = column.to_numpy()
    known = values[~np.isnat(values)]
    low, high = np.datetime64("1000-01-01"), np.datetime64("10000-01-01")
    if len(known) and (known.min() < low or known.max() >= high):
        return column.dt.strftime(TIME_FORMAT)
    text = np.datetime_as_string(values, unit="s").astype(object)
    text[np.isnat(values)] = np.nan
    return pd.Series(text, index=column.index, dtype="str", name=column.name)


def write_outputs(
    out_dir: Path,
    result: CleanResult,
    form: Form,
    form_path: Path,
    decisions: Path | None,
    settings: Path | None,
    mode: str = "checks",
) -> None:
    """Write every output into a temporary folder beside ``out_dir/clean`` and move it into place."""
    with publishing(out_dir, "clean") as tmp, aside() as write:
        for name, table in (("households", result.households), ("persons", result.persons)):
            write(table.to_parquet, tmp / f"{name}.parquet", index=False)
        write(write_csv, result.persons, tmp / "persons.csv")
        write_csv(result.households, tmp / "households.csv")
        write_csv(result.cleaning_log, tmp / "cleaning_log.csv")
        write_csv(result.deletion_log, tmp / "deletion_log.csv")
        write_csv(result.check_summary, tmp / "check_summary.csv")
        write_csv(result.other_texts, tmp / "other_texts.csv")
        data_dictionary(form, result.households, result.persons, result.raw.missing_columns).to_csv(
            tmp / "data_dictionary.csv", index=False, encoding="utf-8"
        )
        provenance = {
            "simulated": bool(result.raw.provenance.get("simulated", False)),
            "mode": mode,
            "source_format": result.raw.source_format,
            "raw_sha256": result.raw.checksums,
            "form_sha256": {
                p.name: sha256(p)
                for p in ([form_path] if form_path.is_file() else sorted(form_path.glob("*.csv")))
            },
            "decisions_sha256": {decisions.name: sha256(decisions)} if decisions else {},
            "settings_sha256": {settings.name: sha256(settings)} if settings else {},
            "unmapped_columns": list(result.raw.unmapped_columns),
            "missing_columns": list(result.raw.missing_columns),
            "counts": result.counts,
            "packages": _versions(),
        }
        (tmp / "provenance.json").write_text(
            json.dumps(provenance, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8"
        )
