"""Read a raw survey export into household and person tables keyed to the XLSForm, dropping personal data.

Formats (shared docs/sources.md §5.4–5.5):

- KoboToolbox / ODK ``.xlsx``: the first sheet holds submissions, one sheet per repeat group (named after
  the repeat) holds its rows, linked by ``_index`` / ``_parent_index`` (or ``_submission__uuid``).
- Kobo CSVs: ``<form>.csv`` plus ``<repeat>.csv`` in the same folder.
- 问卷星 (Wenjuanxing) text file ("按选项文本") as CSV or xlsx: metadata columns ``序号, 提交答卷时间,
  所用时间, …``; questions headed ``"<n>、<label>"`` (matched to the form's labels in form order, so
  repeated labels go to successive questions); multi-choice joined by ``┋``; ``-2``/``-3``/``(空)`` are
  structural missing; a custom-parameter column ``自定义字段`` (or ``uuid``) is taken as the submission id,
  else ``序号``. 问卷星 has no repeat groups: roster members are blocks of columns ``"<n>、成员<j>：<label>"``.
  The code file ("按选项序号") is read for single-choice position codes; its multi-choice option columns
  ``"第<n>题(<option>)"`` are mapped only when question ``<n>`` also has its own column (a code file
  without them reports those columns as unmapped — not tested on a real code file).
- SPSS ``.sav`` (value labels kept): ``<stem>.sav`` plus ``<stem>_<repeat>.sav``.

Group separators ``/`` (Kobo), ``.`` (R's ``read.csv``) and ``-`` (ODK Briefcase) are detected.
select_multiple answers arrive as a space-separated summary, as ``<q>/<option>`` 0/1 columns, or both;
they leave as the clean-table convention: the summary column plus ``<name>.<option>`` 0/1 columns.

Personal data never leaves this module: fields the form marks ``pii = yes`` are dropped, and mobile
numbers (11 digits starting 13–19), 18-character ID numbers and the submission's own personal answers
(names, address) found in free text are replaced by :data:`REDACTED`. Keys are pseudonymous: a keyed
BLAKE2 hash of the submission uuid (``household_id``) and ``<household_id>-<member number>``
(``person_id``). Raw files are only read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import IngestError
from analysis.form_logic import ExpressionError, evaluate_bool
from analysis.instrument import METADATA_TYPES, Form

REDACTED = "[已删除/removed]"
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
ENCODINGS = ("utf-8-sig", "gb18030")
SEPARATORS = ("/", ".", "-")
WJX_META = {"序号": "wjx_serial", "uuid": "uuid", "自定义字段": "uuid", "提交答卷时间": "end", "所用时间": "duration_seconds", "来源": None,
            "来源详情": None, "来自IP": None, "总分": None, "答题序号": None, "来自": None}
WJX_MISSING = {"-2", "-3", "(跳过)", "(空)"}
WJX_MEMBER = re.compile(r"^成员(\d+)[-_—:：](.+)$")
SYSTEM_ALIASES = {
    "_uuid": "uuid", "X_uuid": "uuid", "uuid": "uuid", "meta/instanceID": "uuid", "instanceID": "uuid",
    "_index": "index", "X_index": "index", "index": "index",
    "_parent_index": "parent_index", "X_parent_index": "parent_index", "parent_index": "parent_index",
    "_submission__uuid": "parent_uuid", "X_submission__uuid": "parent_uuid", "parent_uuid": "parent_uuid",
}
CONVERSION_COLUMNS = ["uuid", "person_id", "question", "old_value", "new_value", "issue"]
EXCEL_EPOCH = pd.Timestamp("1899-12-30")  # day 0 of Excel's 1900 date system for serials from 61 on
EXCEL_LEAP_BUG = pd.Timestamp("1900-03-01")  # before it, serials are one less (Excel counts a 1900-02-29)
MIN_MAPPED_SHARE = 0.5  # below this share of form fields found, the file is another survey's export


@dataclass(frozen=True)
class RawExport:
    """A raw export mapped onto the form, personal data removed.

    ``households``: ``uuid``, ``household_id``, ``row`` (1-based submission number in the file), then
    the household fields by bare name; ``persons``: ``uuid``, ``household_id``, ``person_id``, ``member``
    (1-based order in the household), then repeat fields. ``redactions``: one row per free-text answer
    from which personal data was removed (uuid, person_id, question, issue). ``conversions``: one row per
    numeric answer that was not a plain number (full-width digits, an Excel date, text), with what was
    read (uuid, person_id, question, old_value, new_value, issue).
    """

    households: pd.DataFrame
    persons: pd.DataFrame
    source_format: str
    files: tuple[Path, ...]
    checksums: dict[str, str]
    separator: str | None
    unmapped_columns: tuple[str, ...]
    missing_columns: tuple[str, ...]
    redactions: pd.DataFrame
    provenance: dict = field(default_factory=dict)
    conversions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CONVERSION_COLUMNS))


class _Schema:
    """A :class:`Form` with its per-field look-ups computed once (a form has ~150 fields; an export
    reader asks for them thousands of times)."""

    def __init__(self, form: Form):
        self.form = form
        self.survey, self.choices, self.settings = form.survey, form.choices, form.settings
        self._data = form.data_fields()
        self._rows = {r["name"]: r for r in form.survey.to_dict("records")}
        by_list = {k: g for k, g in form.choices.groupby("list_name", sort=False)}
        empty = form.choices.iloc[:0]
        self._choices = {n: by_list.get(r["list_name"], empty) for n, r in self._rows.items()}
        self._lookup: dict[str, dict[str, str]] = {}

    def data_fields(self) -> pd.DataFrame:
        return self._data

    def field(self, name: str) -> dict:
        if name not in self._rows:
            return self.form.field(name)  # raises the form's error
        return self._rows[name]

    def choice_names(self, name: str) -> list[str]:
        return self._choices[name]["name"].tolist()

    def choice_rows(self, name: str) -> pd.DataFrame:
        return self._choices[name]

    def export_column(self, name: str, sep: str = "/") -> str:
        return self.form.export_column(name, sep)

    def lookup(self, name: str) -> dict[str, str]:
        """Choice name, Chinese label and English label -> choice name (names win over labels)."""
        if name not in self._lookup:
            rows = self._choices[name]
            table = {}
            for col in ("label_en", "label_zh", "name"):
                table.update({str(k).strip(): n for k, n in zip(rows[col], rows["name"]) if str(k).strip()})
            self._lookup[name] = table
        return self._lookup[name]


# ----- files ------------------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes (read only)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _decode(path: Path) -> tuple[str, str]:
    """The file's text and encoding: UTF-8 (with or without BOM), then GB18030 (a superset of GBK)."""
    data = path.read_bytes()
    if not data.strip():
        raise IngestError("the file is empty", file=path, hint="export the data again")
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    lines = data.split(b"\n")
    utf8 = np.array([_decodes(line, "utf-8") for line in lines])
    if utf8.any() and any(not line.isascii() for line in np.array(lines, dtype=object)[utf8]):
        raise IngestError("mixed text encodings: this line is not UTF-8 but others are (two exports pasted "
                          "together?)", file=path, row=int(np.flatnonzero(~utf8)[0]) + 1,
                          hint="save the whole file again as UTF-8")
    raise IngestError("unknown text encoding (neither UTF-8 nor GBK/GB18030)", file=path,
                      hint="save the CSV as UTF-8")


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _check_headers(headers: list[str], path: Path, sheet: str | None = None) -> None:
    where = f" (sheet {sheet})" if sheet else ""
    if not any(h.strip() for h in headers):
        raise IngestError(f"the file has no header row{where}", file=path, row=1)
    seen: set[str] = set()
    for h in headers:
        if h in seen and h.strip():
            raise IngestError(f"duplicate column name{where}", file=path, row=1, column=h,
                              hint="every column header must be unique; re-export or rename one")
        seen.add(h)


def _read_csv(path: Path) -> pd.DataFrame:
    """All-string table from a CSV in any supported encoding; headers checked for duplicates."""
    text, _ = _decode(path)
    header = next(csv.reader(io.StringIO(text)), None)
    if not header:
        raise IngestError("the file is empty", file=path)
    headers = [h.strip() for h in header]
    _check_headers(headers, path)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, header=0,
                            skip_blank_lines=True, engine="c")
    except (pd.errors.ParserError, ValueError) as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise IngestError(f"not a readable CSV ({str(exc).strip()})", file=path,
                          row=int(line.group(1)) if line else None) from exc
    frame.columns = headers
    frame = frame.astype(object)
    return frame[frame.ne("").any(axis=1)].reset_index(drop=True)


def _cell_text(values: pd.Series) -> pd.Series:
    """Spreadsheet cells as text: whole floats without '.0', missing as ''."""
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
        return str(v)
    return values.map(one).astype(object)


def _open_workbook(path: Path):
    """An openpyxl read-only workbook, or an IngestError for an empty, damaged or truncated file."""
    if path.stat().st_size == 0:
        raise IngestError("the file is empty", file=path)
    if not zipfile.is_zipfile(path):
        raise IngestError("not a readable .xlsx (damaged or truncated file)", file=path,
                          hint="download the export again")
    try:
        import openpyxl
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl and zipfile raise many unrelated types for damaged files
        raise IngestError(f"not a readable .xlsx ({type(exc).__name__}: {exc})", file=path,
                          hint="download the export again") from exc


def _xlsx_first_headers(path: Path) -> list[str]:
    """Header row of the first non-empty sheet, read without loading the data (format detection)."""
    book = _open_workbook(path)
    try:
        for ws in book.worksheets:
            first = next(ws.iter_rows(max_row=1, values_only=True), None)
            if first:
                return ["" if h is None else str(h).strip() for h in first]
    except Exception as exc:  # see _open_workbook
        raise IngestError(f"not a readable .xlsx ({type(exc).__name__}: {exc})", file=path,
                          hint="download the export again") from exc
    finally:
        book.close()
    raise IngestError("the workbook has no data", file=path)


def _read_xlsx(path: Path) -> dict[str, pd.DataFrame]:
    """All sheets of a workbook as all-string tables (headers checked)."""
    book = _open_workbook(path)
    try:
        sheets = {}
        for ws in book.worksheets:
            rows = list(ws.iter_rows(values_only=True))
            if not rows:
                continue
            headers = ["" if h is None else str(h).strip() for h in rows[0]]
            _check_headers(headers, path, ws.title)
            frame = pd.DataFrame(rows[1:], columns=headers, dtype=object)
            frame = frame.apply(_cell_text) if len(frame) else frame.astype(object)
            sheets[ws.title] = frame[(frame != "").any(axis=1)].reset_index(drop=True)
        book.close()
    except IngestError:
        raise
    except Exception as exc:  # openpyxl and zipfile raise many unrelated types for damaged files
        raise IngestError(f"not a readable .xlsx ({type(exc).__name__}: {exc})", file=path,
                          hint="download the export again") from exc
    if not sheets:
        raise IngestError("the workbook has no data", file=path)
    return sheets


def _read_sav(path: Path) -> tuple[pd.DataFrame, dict[str, dict]]:
    """An SPSS file as an all-string table plus its value labels {column: {value text: label}}."""
    import pyreadstat
    if path.stat().st_size == 0:
        raise IngestError("the file is empty", file=path)
    try:
        frame, meta = pyreadstat.read_sav(str(path), apply_value_formats=False)
    except Exception as exc:  # pyreadstat.ReadstatError and others
        raise IngestError(f"not a readable SPSS file ({exc})", file=path) from exc
    _check_headers(list(frame.columns), path)
    labels = {col: {_cell_text(pd.Series([k])).iloc[0]: str(v) for k, v in meta.value_labels[name].items()}
              for col, name in meta.variable_to_label.items()}
    return frame.astype(object).apply(_cell_text) if len(frame) else frame.astype(object), labels


# ----- column mapping -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Mapping:
    fields: dict[str, str]          # header -> field name
    dummies: dict[str, tuple]       # header -> (select_multiple field, option)
    system: dict[str, str]          # header -> uuid / index / parent_index / parent_uuid
    unmapped: list[str]


def _map_headers(headers: list[str], form: Form, sep: str) -> _Mapping:
    """Map export headers to bare field names, select_multiple option columns and system columns."""
    data = form.data_fields()
    names = set(data["name"])
    multi = {n: set(form.choice_names(n)) for n in data.loc[data["base_type"] == "select_multiple", "name"]}
    fields, dummies, system, unmapped = {}, {}, {}, []
    for header in headers:
        parts = header.split(sep) if sep else [header]
        if header in SYSTEM_ALIASES:
            system[header] = SYSTEM_ALIASES[header]
        elif header in names:
            fields[header] = header
        elif parts[-1] in names and len(parts) > 1:
            fields[header] = parts[-1]
        elif len(parts) > 1 and parts[-2] in multi and parts[-1] in multi[parts[-2]]:
            dummies[header] = (parts[-2], parts[-1])
        elif header.startswith(("_", "X_", "meta", "formhub", "__")) or header == "":
            continue  # Kobo/ODK system columns (docs/sources.md §5.4); not survey answers
        else:
            unmapped.append(header)
    return _Mapping(fields, dummies, system, unmapped)


def _best_mapping(headers: list[str], form: Form, group_sep: str | None) -> tuple[str, _Mapping]:
    """The separator that maps most headers (``/`` wins ties), or the one the caller gave."""
    candidates = [group_sep] if group_sep else list(SEPARATORS)
    scored = [(len(m.fields) + len(m.dummies), -i, sep, m)
              for i, sep in enumerate(candidates) for m in [_map_headers(headers, form, sep)]]
    _, _, sep, mapping = max(scored, key=lambda t: (t[0], t[1]))
    return sep, mapping


def _check_duplicate_targets(mapping: _Mapping, path: Path) -> None:
    seen: dict[object, str] = {}
    for header, target in list(mapping.fields.items()) + list(mapping.dummies.items()):
        if target in seen:
            raise IngestError(f"columns '{seen[target]}' and '{header}' both hold field {target}", file=path,
                              row=1, column=header, hint="remove one of the duplicated columns")
        seen[target] = header


# ----- values -------------------------------------------------------------------------------------------

def _choice_lookup(form: _Schema, field_name: str) -> dict[str, str]:
    """Choice name, Chinese label and English label -> choice name, for one select field."""
    return form.lookup(field_name)


def _to_choice(values: pd.Series, lookup: dict[str, str], names: list[str]) -> pd.Series:
    """Labels to choice names when the column holds labels (fewer than half of its answers are choice
    names: a label export, 问卷星 text file or SPSS value labels). In a column of names, a stray label or
    variant is left as it is, for the cleaning checks to log and recode."""
    stripped = values.str.strip()
    answered = stripped != ""
    if stripped[answered].isin(names).mean() >= 0.5:
        return stripped
    return stripped.map(lookup).fillna(stripped)


def _select_multiple(summary: pd.Series | None, dummy_cols: dict[str, pd.Series], options: list[str],
                     lookup: dict[str, str], multi_sep: str | None) -> pd.Series:
    """One space-separated summary column (choice names in form order) from summary and/or 0/1 columns.

    Options are picked with one vectorised test per option; only answers holding labels (问卷星 ``┋``
    text) or tokens that are not options are handled token by token, and unknown tokens are kept at the
    end for the checks to see."""
    if summary is not None and (summary != "").any() or not dummy_cols:
        text = summary if summary is not None else pd.Series("", index=next(iter(dummy_cols.values())).index)
        text = text.fillna("").astype(str)
        if multi_sep or not text.str.fullmatch(r"[\s\w.-]*").all():
            splitter = multi_sep or None
            text = text.map(lambda v: " ".join(lookup.get(t.strip(), t.strip()).replace(" ", "_")
                                               for t in v.split(splitter) if t.strip()))
        padded = " " + text.str.split().str.join(" ").fillna("") + " "
        out = np.full(len(text), "", dtype=object)
        n_known = np.zeros(len(text), dtype=int)
        for option in options:
            hit = padded.str.contains(f" {option} ", regex=False).to_numpy(dtype=bool)
            out = out + np.where(hit, option + " ", "")
            n_known += hit
        out = pd.Series(out, index=text.index).str.strip()
        unknown = text.str.split().str.len().fillna(0).to_numpy() > n_known
        if unknown.any():  # keep tokens that are not options, after the options, for the checks
            known = set(options)
            out[unknown] = [" ".join([o for o in options if o in set(t.split())] +
                                     [x for x in dict.fromkeys(t.split()) if x not in known])
                            for t in text[unknown]]
        return out
    picked = pd.DataFrame({o: dummy_cols[o].str.strip().str.lower().isin(["1", "1.0", "true"])
                           for o in options if o in dummy_cols})
    answered = pd.DataFrame({o: dummy_cols[o].str.strip() != "" for o in dummy_cols}).any(axis=1)
    text = picked.apply(lambda col: col.map({True: col.name + " ", False: ""})).sum(axis=1).str.strip()
    return text.where(answered, "")


def _dummies(summary: pd.Series, options: list[str], name: str, asked: pd.Series) -> pd.DataFrame:
    """``<name>.<option>`` 0/1 columns from a summary column: 0 where the question was asked and the
    option not picked (nothing picked means none applies), missing where it was not asked."""
    padded = " " + summary.fillna("") + " "
    answered = (summary.fillna("") != "") | asked
    return pd.DataFrame({f"{name}.{o}": padded.str.contains(f" {o} ", regex=False).astype(float).where(answered)
                         for o in options}, index=summary.index)


def _datetime(values: pd.Series) -> pd.Series:
    """Wall-clock timestamps as recorded (a trailing UTC offset is dropped; the interview is one place)."""
    text = values.str.strip().str.replace(r"(Z|[+-]\d{2}:?\d{2})$", "", regex=True).str.replace("/", "-")
    return pd.to_datetime(text.replace("", None), errors="coerce", format="mixed")


def _typed(raw: pd.DataFrame, dummy_cols: dict[str, dict[str, pd.Series]], fields: pd.DataFrame, form: Form,
           multi_sep: str | None, positional: bool) -> pd.DataFrame:
    """Typed columns by bare field name: numbers as float, selects as choice names, times as datetimes.

    select_multiple fields come last so that their relevance (was the question shown?) can be evaluated
    on the other answers: an unanswered question that was shown gets 0 in every option column.
    """
    out = {}
    multi = fields[fields["base_type"] == "select_multiple"]
    for row in fields[fields["base_type"] != "select_multiple"].itertuples(index=False):  # per field, not row
        name, base = row.name, row.base_type
        values = raw.get(name)
        if values is None:
            continue
        if base in ("integer", "decimal", "range"):
            out[name] = pd.to_numeric(values.str.strip().replace("", None), errors="coerce").astype(float)
        elif base == "select_one":
            lookup = _choice_lookup(form, name)
            if positional and values.str.fullmatch(r"\d+").fillna(True).all():
                by_position = {str(i): n for i, n in enumerate(form.choice_names(name), start=1)}
                values = values.str.strip().map(by_position).fillna(values)
            out[name] = _to_choice(values, lookup, form.choice_names(name)).replace("", None)
        elif base in ("start", "end", "today", "date", "datetime"):
            out[name] = _datetime(values)
        else:
            out[name] = values.str.strip().replace("", None)
    typed = pd.DataFrame(out, index=raw.index)
    summaries = {}
    for row in multi.itertuples(index=False):
        options = form.choice_names(row.name)
        summaries[row.name] = _select_multiple(raw.get(row.name),
                                               dummy_cols.get(row.name, {}), options,
                                               _choice_lookup(form, row.name), multi_sep).replace("", None)
    context = pd.concat([typed, pd.DataFrame(summaries, index=raw.index)], axis=1)
    parts = [typed]
    for row in multi.itertuples(index=False):
        try:
            asked = evaluate_bool(row.relevant_all, context) if row.relevant_all else pd.Series(True, index=raw.index)
        except ExpressionError:  # relevance refers to a question outside this table: count answers only
            asked = pd.Series(False, index=raw.index)
        parts.append(summaries[row.name].rename(row.name).to_frame())
        parts.append(_dummies(summaries[row.name], form.choice_names(row.name), row.name, asked))
    return pd.concat(parts, axis=1)


def _form_order(frame: pd.DataFrame, fields: pd.DataFrame) -> pd.DataFrame:
    """Answer columns in form order, each select_multiple followed by its option columns."""
    order = []
    for name in fields["name"]:
        if name in frame:
            order.append(name)
            order += [c for c in frame.columns if c.startswith(name + ".") and c not in order]
    return frame[order]


# ----- personal data ------------------------------------------------------------------------------------

def _own_secrets(pii_top: pd.DataFrame, pii_persons: pd.DataFrame) -> pd.Series:
    """Per submission (index of the main table), the personal answers it gave (names, address …) that
    are at least 2 characters long, longest first, as a tuple to scrub from its free text."""
    long = pd.concat([pii_top.stack(), pii_persons.set_index("_parent").stack()]) if len(pii_persons.columns) > 1 \
        else pii_top.stack()
    long = long[long.astype(str).str.strip().str.len() >= 2].astype(str).str.strip()
    grouped = long.groupby(level=0).agg(lambda s: tuple(sorted(set(s), key=len, reverse=True)))
    return grouped.reindex(pii_top.index).map(lambda v: v if isinstance(v, tuple) else ())


def _scrub(text: str, secrets: tuple) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _redact(texts: pd.DataFrame, own: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replace phone numbers, ID numbers and the row's own personal answers in free text with REDACTED.

    Only answered cells are touched. Returns the cleaned texts and a boolean frame of changed cells.
    """
    cleaned = texts.astype(object).copy()
    for col in texts.columns:
        answered = texts[col].notna()
        text = texts.loc[answered, col].astype(str)
        text = text.str.replace(PHONE, REDACTED, regex=True).str.replace(ID_NUMBER, REDACTED, regex=True)
        text = pd.Series([_scrub(t, o) for t, o in zip(text, own[answered])], index=text.index, dtype=object)
        cleaned.loc[answered, col] = text
    changed = cleaned.fillna("").ne(texts.astype(object).fillna(""))
    return cleaned, changed


def _keys(uuids: pd.Series, salt: str) -> pd.Series:
    """Pseudonymous household key: a BLAKE2b hash of the uuid keyed by the form id (stable, not reversible
    without the uuid)."""
    key = salt.encode("utf-8")[:64]
    return uuids.map(lambda u: "H" + hashlib.blake2b(u.encode("utf-8"), key=key, digest_size=5).hexdigest())


def _unique_uuids(uuids: pd.Series) -> pd.Series:
    """Repeated uuids get ``#2``, ``#3`` … in file order so every submission keeps its own key."""
    copy = uuids.groupby(uuids).cumcount() + 1
    return uuids.where(copy == 1, uuids + "#" + copy.astype(str))


# ----- formats -------------------------------------------------------------------------------------------

def detect_format(path: Path) -> str:
    """``kobo_xlsx``, ``kobo_csv``, ``wjx_csv``, ``wjx_xlsx`` or ``spss`` from the file name and headers."""
    suffix = path.suffix.lower()
    if suffix == ".sav":
        return "spss"
    if suffix in (".xlsx", ".xlsm"):
        return "wjx_xlsx" if "序号" in _xlsx_first_headers(path) else "kobo_xlsx"
    if suffix in (".csv", ".txt"):
        text, _ = _decode(path)
        header = next(csv.reader(io.StringIO(text)), [])
        return "wjx_csv" if any(h.strip().lstrip("\ufeff") == "序号" for h in header) else "kobo_csv"
    raise IngestError(f"unsupported file type '{suffix or path.name}'", file=path,
                      hint="use a Kobo/ODK .xlsx or .csv, a 问卷星 .csv/.xlsx, or an SPSS .sav")


def _repeat_names(form: Form) -> list[str]:
    return form.survey.loc[form.survey["base_type"] == "begin_repeat", "name"].tolist()


def _tables(path: Path, fmt: str, form: Form) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], list[Path], dict]:
    """Main table, repeat tables by repeat name, the files read, and SPSS value labels."""
    repeats = _repeat_names(form)
    if fmt == "kobo_xlsx":
        sheets = _read_xlsx(path)
        main_name = next((s for s in sheets if s not in repeats), None)
        if main_name is None:
            raise IngestError("no submissions sheet (only repeat sheets)", file=path)
        return sheets[main_name], {r: sheets[s] for s in sheets for r in repeats if s == r[:31]}, [path], {}
    if fmt == "kobo_csv":
        files = [path] + [path.with_name(f"{r}.csv") for r in repeats if path.with_name(f"{r}.csv").exists()]
        return (_read_csv(path), {r: _read_csv(path.with_name(f"{r}.csv")) for r in repeats
                                  if path.with_name(f"{r}.csv").exists()}, files, {})
    if fmt == "spss":
        main, labels = _read_sav(path)
        out, files = {}, [path]
        for r in repeats:
            sibling = path.with_name(f"{path.stem}_{r}.sav")
            if sibling.exists():
                out[r], more = _read_sav(sibling)
                labels = {**labels, **{f"{r}:{k}": v for k, v in more.items()}}
                files.append(sibling)
        return main, out, files, labels
    table = _read_csv(path) if fmt == "wjx_csv" else next(iter(_read_xlsx(path).values()))
    return table, {}, [path], {}


def _wjx_header(header: str) -> str:
    """A 问卷星 header without its question number: "12、年龄" -> "年龄"; "第5题(其他)" kept."""
    return re.sub(r"^\d+[、.．：:]\s*", "", header.strip())


def wjx_column(label: str, number: int, member: int | None = None) -> str:
    """The header 问卷星 shows for a question: ``"<n>、<label>"``, roster members ``"<n>、成员<j>-<label>"``."""
    return f"{number}、成员{member}-{label}" if member else f"{number}、{label}"


def _match_in_order(labels: list[str], fields: pd.DataFrame) -> list[str | None]:
    """Field name for each header label, matching labels to the form's fields in form order, so that
    repeated labels ("其他需要，请注明") go to successive fields."""
    keys = [{str(r.label_zh).strip(), str(r.label_en).strip(), r.name} - {""} for r in fields.itertuples(index=False)]
    names = fields["name"].tolist()
    out, pointer = [], 0
    for label in labels:
        hit = next((k for k in range(pointer, len(names)) if label in keys[k]), None)
        if hit is None:  # out of order: first match anywhere
            hit = next((k for k in range(len(names)) if label in keys[k]), None)
        out.append(None if hit is None else names[hit])
        pointer = pointer if hit is None else hit + 1
    return out


def _wjx_to_kobo(table: pd.DataFrame, form: Form) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], list[str]]:
    """Rename a 问卷星 table's headers to bare field names; split roster members into a repeat table."""
    data = form.data_fields()
    top, in_repeat = data[data["repeat"].isna()], data[data["repeat"].notna()]
    multi = {n: _choice_lookup(form, n) for n in data.loc[data["base_type"] == "select_multiple", "name"]}
    headers = [h for h in table.columns if h not in WJX_META]
    member = {h: WJX_MEMBER.match(_wjx_header(h)) for h in headers}
    main_headers = [h for h in headers if not member[h] and not re.match(r"^第\d+题\(", h.strip())]
    main_names = _match_in_order([_wjx_header(h) for h in main_headers], top)
    renamed = table[[h for h in table.columns if WJX_META.get(h)]].rename(columns=WJX_META)
    question_of, unmapped = {}, []
    for header, name in zip(main_headers, main_names):
        if name is None:
            unmapped.append(header)
            continue
        renamed[name] = table[header]
        number = re.match(r"^(\d+)[、.．：:]", header.strip())
        if number:
            question_of[number.group(1)] = name
    for header in headers:  # code-file multi-choice columns: 第<n>题(<option label>) -> <field>/<option>
        hit = re.match(r"^第(\d+)题\((.+)\)$", header.strip())
        if not hit:
            continue
        target = question_of.get(hit.group(1))
        if target in multi and hit.group(2).strip() in multi[target]:
            renamed[f"{target}/{multi[target][hit.group(2).strip()]}"] = table[header]
        else:
            unmapped.append(header)
    parent = table["序号"].astype(str) if "序号" in table else pd.Series(np.arange(1, len(table) + 1),
                                                                       index=table.index).astype(str)
    long = []
    for j in sorted({int(m.group(1)) for m in member.values() if m}):
        cols = [h for h in headers if member[h] and int(member[h].group(1)) == j]
        names = _match_in_order([member[h].group(2).strip() for h in cols], in_repeat)
        unmapped += [h for h, n in zip(cols, names) if n is None]
        part = pd.DataFrame({n: table[h] for h, n in zip(cols, names) if n}, index=table.index)
        present = part.apply(lambda c: ~c.astype(str).str.strip().isin(WJX_MISSING | {""})).any(axis=1)
        long.append(part.assign(parent_index=parent, _member=j)[present])
    repeats = {}
    if long and _repeat_names(form):
        members = pd.concat(long).sort_index(kind="stable")
        repeats[_repeat_names(form)[0]] = members.drop(columns="_member").reset_index(drop=True)
    renamed["index"] = parent
    return renamed, repeats, unmapped


# ----- numbers ------------------------------------------------------------------------------------------

def _numbers(table: pd.DataFrame, headers: dict[str, str], fields: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric answers as plain number text, and a note for each one that was not.

    Full-width digits (１２, typed with a Chinese input method) are folded to ASCII (NFKC); a date where a
    number belongs (an Excel cell formatted as a date: 45 shows as 1900-02-14) becomes its Excel serial;
    anything else that is not a number is left to be blanked. ``headers``: column -> bare field name.
    Returns the table and notes (row position, question, old_value, new_value, issue).
    """
    numeric = set(fields.loc[fields["base_type"].isin(["integer", "decimal", "range"]) & ~fields["pii"], "name"])
    table = table.copy()
    notes = []
    for header, name in headers.items():
        if name not in numeric or header not in table:
            continue
        text = table[header].astype(str).str.strip()
        folded = text.map(lambda v: unicodedata.normalize("NFKC", v) if not v.isascii() else v)
        number = pd.to_numeric(folded.replace("", None), errors="coerce")
        date = pd.to_datetime(folded.where(number.isna() & folded.str.match(r"^\d{4}-\d{2}-\d{2}")),
                              errors="coerce", format="mixed")
        days = (date - EXCEL_EPOCH) / pd.Timedelta(days=1) - (date < EXCEL_LEAP_BUG)  # Excel's 1900-02-29
        serial = days.map(lambda v: f"{v:g}", na_action="ignore")
        new = folded.where(date.isna(), serial)
        kinds = [("full-width digits read as a number", (folded != text) & number.notna(), new),
                 (("a date where a number belongs (Excel date-formatted cell): read as its Excel serial number; "
                   "check the value"), date.notna(), new),
                 ("not a number: the answer is left blank", number.isna() & date.isna() & (folded != ""),
                  pd.Series(None, index=new.index, dtype=object))]
        for issue, hit, value in kinds:
            notes.append(pd.DataFrame({"position": np.flatnonzero(hit), "question": name,
                                       "old_value": text[hit].to_numpy(), "new_value": value[hit].to_numpy(),
                                       "issue": issue}))
        table[header] = new
    notes = pd.concat(notes, ignore_index=True) if notes else pd.DataFrame(
        columns=["position", "question", "old_value", "new_value", "issue"])
    return table, notes


# ----- assembly ----------------------------------------------------------------------------------------

def _frame_for(table: pd.DataFrame, mapping: _Mapping, fields: pd.DataFrame, form: Form, multi_sep: str | None,
               positional: bool, labels: dict[str, dict], label_prefix: str = "") -> pd.DataFrame:
    """Typed frame for one table (main or a repeat) from its raw headers."""
    wanted = set(fields["name"])
    headers = {h: f for h, f in mapping.fields.items() if f in wanted}
    raw = table[list(headers)].astype(str).set_axis(list(headers.values()), axis=1)
    raw = raw.mask(raw.isin(WJX_MISSING), "")
    for header, name in headers.items():  # SPSS value labels: code -> label (choice label)
        value_labels = labels.get(label_prefix + header)
        if value_labels and form.field(name)["base_type"] in ("select_one", "select_multiple"):
            raw[name] = raw[name].map(value_labels).fillna(raw[name])
    dummy_cols: dict[str, dict[str, pd.Series]] = {}
    dummies = {h: t for h, t in mapping.dummies.items() if t[0] in wanted}
    if dummies:
        block = table[list(dummies)].astype(str)
        block = block.mask(block.isin(WJX_MISSING), "")
        for header, (name, option) in dummies.items():
            dummy_cols.setdefault(name, {})[option] = block[header]
    return _typed(raw, dummy_cols, fields, form, multi_sep, positional)


def read_export(path: str | Path, form: Form, group_sep: str | None = None) -> RawExport:
    """Read any supported export of ``form`` into a :class:`RawExport` (see the module docstring).

    Raises IngestError naming the file (and row/column) for an empty or unreadable file, another survey's
    export, duplicate column names, or a missing required column.
    """
    path = Path(path)
    form = form if isinstance(form, _Schema) else _Schema(form)
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.suffix.lower() in (".xlsx", ".csv", ".sav")
                            and p.stem not in _repeat_names(form) and "_" + p.stem.split("_")[-1] not in
                            {f"_{r}" for r in _repeat_names(form)})
        if not candidates:
            raise IngestError("no export file in this folder", file=path)
        path = candidates[0]
    if not path.exists():
        raise IngestError("file not found", file=path)
    fmt = detect_format(path)
    main, repeats, files, labels = _tables(path, fmt, form)
    unmapped_extra: list[str] = []
    if fmt.startswith("wjx"):
        main, repeats, unmapped_extra = _wjx_to_kobo(main, form)
    if main.empty:
        raise IngestError("the export has a header but no submissions", file=path, row=2)

    data = form.data_fields()
    data = data[~data["base_type"].isin(["calculate"]) | data["name"].isin(main.columns)]
    in_repeat = data["repeat"].notna()
    sep, mapping = _best_mapping(list(main.columns), form, group_sep)
    _check_duplicate_targets(mapping, path)
    top = data[~in_repeat]
    found_top = set(mapping.fields.values()) | {n for n, _ in mapping.dummies.values()}
    share = len(found_top & set(top["name"])) / max(len(top), 1)
    if share < MIN_MAPPED_SHARE:
        raise IngestError(f"only {share:.0%} of the form's questions were found in the columns: this looks like "
                          f"another survey's export", file=path, row=1,
                          hint="check that --form is the instrument this export was collected with")
    multi_sep = "┋" if fmt.startswith("wjx") else None
    positional = fmt.startswith("wjx")

    pii_names = set(data.loc[data["pii"], "name"])
    top_fields = top[~top["pii"]]
    main, hh_notes = _numbers(main, mapping.fields, top)
    households = _frame_for(main, mapping, top_fields, form, multi_sep, positional, labels)
    pii_top = _frame_for(main, mapping, top[top["pii"]], form, multi_sep, positional, labels)

    system = {v: main[h].astype(str).str.strip() for h, v in mapping.system.items()}
    if fmt.startswith("wjx") and "uuid" not in system:  # no custom uuid parameter: key on 序号
        system["uuid"] = "wjx-" + main["index"].astype(str)
    if "uuid" not in system:
        raise IngestError("missing required column _uuid (the submission id)", file=path, row=1, column="_uuid",
                          hint="export with the _uuid column (Kobo 'include all versions/metadata')")
    uuid = system["uuid"].str.replace(r"^uuid:", "", regex=True)
    empty_uuid = uuid == ""
    if empty_uuid.any():
        raise IngestError("submission without a uuid", file=path, row=int(np.flatnonzero(empty_uuid)[0]) + 2,
                          column="_uuid")
    uuid = _unique_uuids(uuid)
    salt = str(form.settings.get("form_id", "form"))
    ids = pd.DataFrame({"uuid": uuid, "household_id": _keys(uuid, salt), "row": np.arange(1, len(main) + 1)},
                       index=main.index)
    if "duration_seconds" in main and "end" in households:  # 问卷星: 所用时间 "528秒"
        seconds = pd.to_numeric(main["duration_seconds"].astype(str).str.extract(r"(\d+)")[0], errors="coerce")
        households["start"] = households["end"] - pd.to_timedelta(seconds, unit="s")

    unmapped = [h for h in mapping.unmapped if h not in WJX_META.values()] + unmapped_extra
    person_frames, pii_person_frames, person_notes = [], [], []
    for repeat_name, table in repeats.items():
        rep_fields = data[data["repeat"] == repeat_name]
        _, rep_map = _best_mapping(list(table.columns), form, sep)
        _check_duplicate_targets(rep_map, path)
        unmapped += [f"{repeat_name}:{h}" for h in rep_map.unmapped]
        rep_system = {v: table[h].astype(str).str.strip() for h, v in rep_map.system.items()}
        if "parent_index" in rep_system and "index" in system:
            parent = rep_system["parent_index"].map(dict(zip(system["index"], ids.index)))
        elif "parent_uuid" in rep_system:
            parent = rep_system["parent_uuid"].str.replace(r"^uuid:", "", regex=True).map(
                dict(zip(system["uuid"].str.replace(r"^uuid:", "", regex=True)[~uuid.str.contains("#")],
                         ids.index[~uuid.str.contains("#")])))
        else:
            raise IngestError(f"repeat table '{repeat_name}' has no _parent_index column linking it to submissions",
                              file=path, column="_parent_index")
        table, rep_notes = _numbers(table, rep_map.fields, rep_fields)
        person_notes.append(rep_notes.assign(source=repeat_name + ":" + rep_notes["position"].astype(str)))
        orphans = parent.isna()
        if orphans.any():
            raise IngestError(f"repeat '{repeat_name}' row has no matching submission", file=path,
                              row=int(np.flatnonzero(orphans)[0]) + 2, column="_parent_index")
        frame = _frame_for(table, rep_map, rep_fields[~rep_fields["pii"]], form, multi_sep, positional, labels,
                           f"{repeat_name}:")
        frame.insert(0, "_parent", parent.astype(int).values)
        frame["_source"] = repeat_name + ":" + pd.Series(np.arange(len(frame)), index=frame.index).astype(str)
        person_frames.append(frame)
        pii_person_frames.append(_frame_for(table, rep_map, rep_fields[rep_fields["pii"]], form, multi_sep,
                                            positional, labels, f"{repeat_name}:").assign(_parent=parent.values))
        for name in rep_fields.loc[rep_fields["required"] & ~rep_fields["pii"], "name"]:
            if name not in frame:
                raise IngestError(f"missing required column for field '{name}' in repeat '{repeat_name}'",
                                  file=path, row=1, column=name)

    persons = pd.concat(person_frames, ignore_index=True) if person_frames else pd.DataFrame({"_parent": []})
    persons = persons.sort_values("_parent", kind="stable").reset_index(drop=True)
    member = persons.groupby("_parent").cumcount() + 1
    persons.insert(0, "uuid", persons["_parent"].map(ids["uuid"]))
    persons.insert(1, "household_id", persons["_parent"].map(ids["household_id"]))
    persons.insert(2, "person_id", persons["household_id"] + "-" + member.astype(str).str.zfill(2))
    persons.insert(3, "member", member.astype(int))
    person_notes = pd.concat(person_notes, ignore_index=True) if person_notes else hh_notes.iloc[:0].assign(source="")
    by_source = persons.set_index("_source") if "_source" in persons else pd.DataFrame(columns=["uuid", "person_id"])
    conversions = pd.concat([
        hh_notes.assign(uuid=ids["uuid"].to_numpy()[hh_notes["position"].astype(int)], person_id=None),
        person_notes.assign(uuid=person_notes["source"].map(by_source["uuid"]),
                            person_id=person_notes["source"].map(by_source["person_id"])),
    ], ignore_index=True)[CONVERSION_COLUMNS]

    for name in top.loc[top["required"] & ~top["pii"], "name"]:
        if name not in households:
            raise IngestError(f"missing required column for field '{name}'", file=path, row=1,
                              column=form.export_column(name, sep),
                              hint="re-export with all questions, or check --form")
    absent = [r for r in _repeat_names(form) if r not in repeats]
    if absent:
        raise IngestError(f"no table for the repeat group '{absent[0]}' (its sheet or {absent[0]}.csv is missing "
                          f"or renamed), so its rows would be lost", file=path,
                          hint=f"export with every repeat group: a sheet, or a CSV beside this one, named "
                               f"'{absent[0]}'")

    # personal data: free text scrubbed of phones, IDs and the household's own personal answers
    # free text: text questions without a constraint (codes such as the enumerator id are constrained)
    text_fields = data.loc[(data["base_type"] == "text") & ~data["pii"] & (data["constraint"] == ""), "name"]
    pii_persons = (pd.concat(pii_person_frames, ignore_index=True) if pii_person_frames
                   else pd.DataFrame({"_parent": []}))
    with_text = households[[c for c in text_fields if c in households]].notna().any(axis=1)
    if len(persons) and any(c in persons for c in text_fields):
        with_text |= households.index.isin(persons.loc[persons[[c for c in text_fields if c in persons]]
                                                       .notna().any(axis=1), "_parent"])
    own = _own_secrets(pii_top[with_text], pii_persons[pii_persons["_parent"].isin(households.index[with_text])]
                       ).reindex(pii_top.index).map(lambda v: v if isinstance(v, tuple) else ())
    redactions = []
    hh_text = [c for c in text_fields if c in households]
    if hh_text:
        households[hh_text], changed = _redact(households[hh_text], own)
        hit = changed.stack()
        hit = hit[hit]
        redactions.append(pd.DataFrame({"uuid": ids["uuid"].reindex(hit.index.get_level_values(0)).values,
                                        "person_id": None, "question": hit.index.get_level_values(1)}))
    ps_text = [c for c in text_fields if c in persons]
    if ps_text:
        persons[ps_text], changed = _redact(persons[ps_text], own.reindex(persons["_parent"]).set_axis(persons.index))
        hit = changed.stack()
        hit = hit[hit]
        redactions.append(pd.DataFrame({"uuid": persons["uuid"].reindex(hit.index.get_level_values(0)).values,
                                        "person_id": persons["person_id"].reindex(
                                            hit.index.get_level_values(0)).values,
                                        "question": hit.index.get_level_values(1)}))
    redactions = (pd.concat(redactions, ignore_index=True) if redactions
                  else pd.DataFrame(columns=["uuid", "person_id", "question"]))
    redactions["issue"] = "personal data (phone, ID number or name) removed from free text"

    households = pd.concat([ids, _form_order(households, data)], axis=1).reset_index(drop=True)
    persons = pd.concat([persons[["uuid", "household_id", "person_id", "member"]],
                         _form_order(persons, data)], axis=1)
    present = set(households.columns) | set(persons.columns)
    missing = tuple(n for n in data["name"] if n not in present and n not in pii_names
                    and form.field(n)["base_type"] not in METADATA_TYPES | {"calculate"})
    provenance_path = path.parent.parent / "PROVENANCE.json"
    provenance_path = provenance_path if provenance_path.exists() else path.parent / "PROVENANCE.json"
    provenance = json.loads(provenance_path.read_text(encoding="utf-8")) if provenance_path.exists() else {}
    return RawExport(
        households=households,
        persons=persons,
        source_format=fmt,
        files=tuple(files),
        checksums={p.name: sha256(p) for p in files},
        separator=sep,
        unmapped_columns=tuple(unmapped),
        missing_columns=missing,
        redactions=redactions,
        provenance=provenance,
        conversions=conversions,
    )


# ----- writers (tests and format conversion) ------------------------------------------------------------

def write_sav(households: pd.DataFrame, persons: dict[str, pd.DataFrame], form: Form, path: str | Path) -> list[Path]:
    """Write a Kobo-style export (bare or prefixed headers) as SPSS files with value labels.

    ``households`` and each repeat table in ``persons`` hold Kobo columns (``_uuid``, ``_index``,
    ``_parent_index``, ``<group>/<field>``, ``<q>/<option>``). Headers become bare SPSS names
    (``uuid``, ``index``, ``parent_index``, ``<field>``, ``<q>.<option>``); select_one answers whose choice
    names are not numbers are stored as 1..k with the Chinese labels as value labels, as SPSS exports do.
    Writes ``<path>`` and ``<stem>_<repeat>.sav``; returns the paths.
    """
    import pyreadstat
    path = Path(path)
    form = _Schema(form)
    written = []
    for table, target in [(households, path)] + [(t, path.with_name(f"{path.stem}_{r}.sav"))
                                                  for r, t in persons.items()]:
        _, mapping = _best_mapping(list(table.columns), form, "/")
        out, value_labels, variable_labels = {}, {}, {}
        for header in table.columns:
            if header in mapping.system:
                out[mapping.system[header]] = table[header].astype(str)
            elif header in mapping.fields:
                name = mapping.fields[header]
                row = form.field(name)
                values = table[header]
                if row["base_type"] == "select_one":
                    names = form.choice_names(name)
                    chosen = form.choice_rows(name)
                    if all(re.fullmatch(r"-?\d+", n) for n in names):
                        out[name] = pd.to_numeric(values, errors="coerce")
                        value_labels[name] = {int(n): lab for n, lab in zip(chosen["name"], chosen["label_zh"])}
                    else:
                        code = {n: i for i, n in enumerate(names, start=1)}
                        out[name] = values.map(code).astype(float)
                        value_labels[name] = {i: lab for i, lab in enumerate(chosen["label_zh"], start=1)}
                elif row["base_type"] in ("integer", "decimal"):
                    out[name] = pd.to_numeric(values, errors="coerce")
                else:
                    out[name] = values.astype(object).where(values.notna(), "").astype(str)
                variable_labels[name] = row["label_zh"] or name
            elif header in mapping.dummies:
                name, option = mapping.dummies[header]
                out[f"{name}.{option}"] = pd.to_numeric(table[header], errors="coerce")
        frame = pd.DataFrame(out)
        pyreadstat.write_sav(frame, str(target), variable_value_labels=value_labels,
                             column_labels={c: variable_labels.get(c, c) for c in frame.columns})
        written.append(target)
    return written
