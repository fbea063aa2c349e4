"""The XLSForm instrument as a schema: questions, choices, skip logic, constraints and PII flags.

The reviewable source is one UTF-8 CSV per XLSForm sheet in ``survey/instrument/`` (survey, choices,
settings); ``build_xlsx`` turns them into the deployable ``.xlsx`` with identical bytes on every run.
Language columns follow the XLSForm convention ``label::<language>`` (this project: ``label::Chinese (zh)``
and ``label::English (en)``; ODK "Form Language"; docs/sources.md §5.3) or a plain ``label``; any
languages are read: ``label_zh`` holds the Chinese labels (else the form's first language), ``label_en``
the English ones (else the plain or first label), and every language is kept as ``label::<language>``. Fields
holding personal data carry ``pii = yes``; pyxform
ignores unknown columns, so the flag travels with the form without affecting the XForm.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from analysis.errors import IngestError

SHEETS = ("survey", "choices", "settings")
ZH, EN = "Chinese (zh)", "English (en)"
CHINESE = re.compile(r"chinese|中文|汉语|漢語|\bzh\b", re.IGNORECASE)
ENGLISH = re.compile(r"english|\ben\b", re.IGNORECASE)
# Fixed timestamp written into every xlsx so that builds are byte-identical (the centre opened April 2012).
FIXED_ZIP_TIME = (2012, 4, 11, 0, 0, 0)
FIXED_CORE_TIME = "2012-04-11T00:00:00Z"
STRUCTURAL = {"begin_group", "end_group", "begin_repeat", "end_repeat"}
METADATA_TYPES = {"start", "end", "today", "deviceid", "audit", "username", "phonenumber", "simserial"}
NON_DATA_TYPES = STRUCTURAL | {"note"}


@dataclass(frozen=True)
class Form:
    """A parsed XLSForm.

    ``survey`` has one row per survey-sheet row except ``end_group``/``end_repeat``, with columns
    type, base_type, list_name, name, group, repeat, label_zh, label_en, hint_zh, hint_en, relevant,
    relevant_all (own relevance and-ed with every enclosing group's), constraint, required, pii,
    calculation, appearance. ``group`` is the slash path of enclosing groups and repeats ("roster/wg");
    ``repeat`` the name of the enclosing repeat or None. ``choices`` has list_name, name, label_zh, label_en.
    ``warnings``: what was wrong with the form but could be read around (a repeated field name).
    """

    survey: pd.DataFrame
    choices: pd.DataFrame
    settings: dict
    warnings: tuple = ()

    @cached_property
    def _first_row(self) -> dict:
        """Position in ``survey`` of the first row of each field name (the form's tables are not edited)."""
        return {name: i for i, name in reversed(list(enumerate(self.survey["name"])))}

    @cached_property
    def _choice_lists(self) -> dict:
        """Choice names of each list, in form order."""
        lists: dict = {}
        for list_name, name in zip(self.choices["list_name"], self.choices["name"], strict=True):
            lists.setdefault(list_name, []).append(name)
        return lists

    def field(self, name: str) -> pd.Series:
        """The survey row of field ``name``; IngestError if the form has no such field."""
        if name not in self._first_row:
            raise IngestError(
                f"the form has no field named '{name}'",
                column=name,
                hint="use the bare XLSForm name, without group prefix",
            )
        return self.survey.iloc[self._first_row[name]]

    def choice_names(self, field_name: str) -> list[str]:
        """The choice names (codes) of a select field, in form order."""
        list_name = self.field(field_name)["list_name"]
        if not list_name:
            raise IngestError(f"field '{field_name}' is not a select question", column=field_name)
        return list(self._choice_lists.get(list_name, []))

    def data_fields(self) -> pd.DataFrame:
        """Survey rows that hold answers (no groups, repeats or notes)."""
        return self.survey[~self.survey["base_type"].isin(NON_DATA_TYPES)]

    def export_column(self, name: str, sep: str = "/") -> str:
        """The header a Kobo export gives field ``name`` (group path prefixed with ``sep``)."""
        row = self.field(name)
        return f"{row['group'].replace('/', sep)}{sep}{name}" if row["group"] else name

    def codebook(self) -> pd.DataFrame:
        """One row per variable (and per select_multiple 0/1 column ``<name>.<option>``).

        Columns: variable, label_zh, label_en, type, values ("code=中文 label; …" or the constraint),
        universe (who is asked: the enclosing relevance conditions with ``${}`` removed; "all").
        """
        fields = self.data_fields()
        labels = self.choices.assign(pair=self.choices["name"] + "=" + self.choices["label_zh"])
        values_by_list = labels.groupby("list_name", sort=False)["pair"].agg("; ".join)
        universe = fields["relevant_all"].str.replace(r"\$\{(\w+)\}", r"\1", regex=True).replace("", "all")
        main = pd.DataFrame(
            {
                "variable": fields["name"],
                "label_zh": fields["label_zh"],
                "label_en": fields["label_en"],
                "type": fields["base_type"],
                "values": fields["list_name"].map(values_by_list).fillna(fields["constraint"]),
                "universe": universe,
                "pii": fields["pii"],
            }
        )
        multi = fields[fields["base_type"] == "select_multiple"][
            ["name", "list_name", "label_zh", "label_en"]
        ]
        dummies = multi.merge(self.choices, on="list_name", suffixes=("", "_choice"))
        dummies = pd.DataFrame(
            {
                "variable": dummies["name"] + "." + dummies["name_choice"],
                "label_zh": dummies["label_zh"] + "：" + dummies["label_zh_choice"],
                "label_en": dummies["label_en"] + ": " + dummies["label_en_choice"],
                "type": "binary",
                "values": "1=selected; 0=not selected",
                "universe": dummies["name"].map(main.set_index("variable")["universe"]),
                "pii": False,
            }
        )
        order = {name: i for i, name in enumerate(fields["name"])}
        out = pd.concat([main, dummies], ignore_index=True)
        out["_order"] = out["variable"].str.split(".").str[0].map(order)
        return (
            out.sort_values(["_order", "variable"], kind="stable")
            .drop(columns="_order")
            .reset_index(drop=True)
        )


def _read_sheets(path: Path) -> dict[str, pd.DataFrame]:
    """Read the three sheets as all-string DataFrames from an .xlsx or a folder of CSVs."""
    path = Path(path)
    if path.is_dir():
        missing = [s for s in SHEETS if not (path / f"{s}.csv").exists()]
        if missing:
            raise IngestError(
                f"missing sheet file(s) {', '.join(s + '.csv' for s in missing)}",
                file=path,
                hint="the instrument folder needs survey.csv, choices.csv and settings.csv",
            )
        return {
            s: pd.read_csv(path / f"{s}.csv", dtype=str, keep_default_na=False, encoding="utf-8")
            for s in SHEETS
        }
    if not path.exists():
        raise IngestError(
            "instrument not found", file=path, hint="pass the .xlsx or the folder of sheet CSVs"
        )
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=str, keep_default_na=False, engine="openpyxl")
    except Exception as exc:  # openpyxl raises several unrelated types for a damaged file
        raise IngestError(
            f"cannot read the workbook ({exc})",
            file=path,
            hint="is it an XLSForm? save it as .xlsx (the old .xls format is not read)",
        ) from exc
    missing = [s for s in ("survey", "choices") if s not in sheets]
    if missing:
        raise IngestError(f"workbook has no sheet(s) {', '.join(missing)}", file=path)
    sheets.setdefault("settings", pd.DataFrame())
    return {s: sheets[s] for s in SHEETS}


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name].astype(str).str.strip() if name in frame else pd.Series("", index=frame.index)


def _languages(frame: pd.DataFrame, kind: str) -> dict[str, str]:
    """Language name -> column for ``<kind>::<language>`` columns, plus "" for a plain ``<kind>`` column."""
    out = {}
    for column in frame.columns:
        name = str(column).strip()
        if name.lower() == kind:
            out[""] = column
        elif name.lower().startswith(kind + "::"):
            out[name.split("::", 1)[1].strip()] = column
    return out


def _in_language(frame: pd.DataFrame, kind: str, pattern: re.Pattern, plain_first: bool) -> pd.Series:
    """The ``kind`` text in the language matching ``pattern``; else the plain column (when ``plain_first``)
    or the first language column; else empty."""
    languages = _languages(frame, kind)
    chosen = next((c for lang, c in languages.items() if lang and pattern.search(lang)), None)
    if chosen is None and plain_first and "" in languages:
        chosen = languages[""]
    if chosen is None and languages:
        chosen = next(iter(languages.values()))
    return _col(frame, chosen) if chosen is not None else pd.Series("", index=frame.index)


def _all_labels(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Every label column as ``label::<language>`` (a plain ``label`` as ``label``)."""
    return {
        f"label::{lang}" if lang else "label": _col(frame, column)
        for lang, column in _languages(frame, "label").items()
    }


def _nesting(types: list[str], names: list[str], relevants: list[str]) -> tuple[list, list, list]:
    """Enclosing group path, repeat name and and-ed group relevance for each form row.

    Nesting is a stack, so this walks the form's rows in order (a form has ~100 rows; no data rows).
    """
    stack: list[tuple[str, str, str]] = []  # (name, kind, relevant)
    groups, repeats, conditions = [], [], []
    for kind, name, relevant in zip(types, names, relevants):
        if kind in ("end_group", "end_repeat"):
            if stack:
                stack.pop()
            groups.append(None)
            repeats.append(None)
            conditions.append(None)
            continue
        groups.append("/".join(s[0] for s in stack))
        inner = [s for s in stack if s[1] == "begin_repeat"]
        repeats.append(inner[-1][0] if inner else None)
        conditions.append([s[2] for s in stack if s[2]])
        if kind in ("begin_group", "begin_repeat"):
            stack.append((name, kind, relevant))
    return groups, repeats, conditions


def load_form(path: str | Path) -> Form:
    """Parse an XLSForm (.xlsx or folder of sheet CSVs) into a :class:`Form`."""
    sheets = _read_sheets(Path(path))
    raw = sheets["survey"]
    if "type" not in raw or "name" not in raw:
        raise IngestError("survey sheet needs 'type' and 'name' columns", file=path)
    raw = raw[_col(raw, "type") != ""].reset_index(drop=True)
    types = _col(raw, "type").str.replace(r"\s+", " ", regex=True)
    base = types.str.split(" ").str[0].replace({"begin group": "begin_group"})
    relevant = _col(raw, "relevant")
    groups, repeats, conditions = _nesting(base.tolist(), _col(raw, "name").tolist(), relevant.tolist())
    own = relevant.tolist()
    relevant_all = [
        None if c is None else " and ".join(f"({x})" if " or " in x else x for x in c + ([r] if r else []))
        for c, r in zip(conditions, own)
    ]
    survey = pd.DataFrame(
        {
            "type": types,
            "base_type": base,
            "list_name": types.map(lambda t: t.split(" ")[1] if " " in t else "").where(
                base.str.startswith("select_"), ""
            ),
            "name": _col(raw, "name"),
            "group": groups,
            "repeat": pd.Series(repeats, dtype=object),
            "label_zh": _in_language(raw, "label", CHINESE, plain_first=False),
            "label_en": _in_language(raw, "label", ENGLISH, plain_first=True),
            "hint_zh": _in_language(raw, "hint", CHINESE, plain_first=False),
            "hint_en": _in_language(raw, "hint", ENGLISH, plain_first=True),
            "relevant": relevant,
            "relevant_all": relevant_all,
            "constraint": _col(raw, "constraint"),
            "required": _col(raw, "required").str.lower().isin(["yes", "true", "true()", "1"]),
            "pii": _col(raw, "pii").str.lower().isin(["yes", "true", "1"]),
            "calculation": _col(raw, "calculation"),
            "appearance": _col(raw, "appearance"),
            **_all_labels(raw),
        }
    )
    survey = survey[~survey["base_type"].isin(["end_group", "end_repeat"])].reset_index(drop=True)
    ch = sheets["choices"]
    ch = ch[_col(ch, "list_name") != ""]
    choices = pd.DataFrame(
        {
            "list_name": _col(ch, "list_name"),
            "name": _col(ch, "name"),
            "label_zh": _in_language(ch, "label", CHINESE, plain_first=False),
            "label_en": _in_language(ch, "label", ENGLISH, plain_first=True),
            **_all_labels(ch),
        }
    ).reset_index(drop=True)
    settings = sheets["settings"].iloc[0].to_dict() if len(sheets["settings"]) else {}
    # groups may share a name; an answer field named twice (pyxform refuses it, yet deployed forms have it)
    # cannot be told apart in an export: the first row is kept and the form's warnings say so
    answer = ~survey["base_type"].isin(NON_DATA_TYPES) & (survey["name"] != "")
    repeated = answer & survey["name"].where(answer).duplicated()
    warnings = tuple(
        f"field name '{n}' is used twice in the form; its later row is ignored"
        for n in dict.fromkeys(survey.loc[repeated, "name"])
    )
    survey = survey[~repeated].reset_index(drop=True)
    return Form(survey=survey, choices=choices, settings=settings, warnings=warnings)


def xlsx_bytes(sheets: dict[str, pd.DataFrame]) -> bytes:
    """DataFrames as sheets of an .xlsx whose bytes depend only on the data.

    openpyxl stamps the save time into docProps/core.xml and into every zip entry; both are replaced
    with a fixed time (2012-04-11) so the same tables always give the same file.
    """
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)",
                    rb"\g<1>" + FIXED_CORE_TIME.encode() + rb"\g<2>",
                    data,
                )
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            dst.writestr(entry, data)
    return out.getvalue()


def write_xlsx(sheets: dict[str, pd.DataFrame], xlsx_path: str | Path) -> Path:
    """Write DataFrames as sheets of an .xlsx with deterministic bytes (see :func:`xlsx_bytes`)."""
    xlsx_path = Path(xlsx_path)
    xlsx_path.parent.mkdir(parents=True, exist_ok=True)
    xlsx_path.write_bytes(xlsx_bytes(sheets))
    return xlsx_path


def build_xlsx(src_dir: str | Path, xlsx_path: str | Path) -> Path:
    """Build the deployable XLSForm workbook from the sheet CSVs (deterministic bytes)."""
    sheets = _read_sheets(Path(src_dir))
    return write_xlsx(sheets, xlsx_path)


def validate_form(path: str | Path):
    """Convert the form with pyxform (no Java validation); IngestError on any pyxform error.

    Returns pyxform's ConvertResult (xform text, warnings, itemsets).
    """
    from pyxform.errors import PyXFormError
    from pyxform.xls2xform import convert

    path = Path(path)
    xlsform = xlsx_bytes(_read_sheets(path)) if path.is_dir() else str(path)
    try:
        return convert(xlsform=xlsform, validate=False, pretty_print=False)
    except PyXFormError as exc:
        raise IngestError(
            f"pyxform rejects the form: {exc}", file=path, hint="fix the XLSForm row named in the message"
        ) from exc
