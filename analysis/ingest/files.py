"""Reading export files as all-text tables: CSV in any supported encoding, xlsx workbooks, SPSS .sav.

Every reader returns strings only ('' for a blank cell), so that the value readers decide how to type
each column from the form. Damaged, empty or unreadable files raise :class:`IngestError` naming the file.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from analysis.errors import IngestError

ENCODINGS = ("utf-8-sig", "gb18030")


def sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes (read only)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_decoded_csv: dict = {}  # a CSV decoded whole for format detection, kept for the read that follows it


def _decoded(path: Path) -> tuple[bytes, str, str]:
    """The file's bytes, text and encoding: UTF-8 (with or without BOM), then GB18030 (a superset of GBK).
    The decoding :func:`csv_header` kept is used when the file is unchanged since."""
    kept = _decoded_csv.pop(_file_key(path), None) if _decoded_csv else None
    if kept is not None:
        return kept
    data = path.read_bytes()
    if not data or data.isspace():  # as ``not data.strip()``, without copying the file
        raise IngestError("the file is empty", file=path, hint="export the data again")
    for encoding in ENCODINGS:
        try:
            return data, data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    lines = data.split(b"\n")
    utf8 = np.array([_decodes(line, "utf-8") for line in lines])
    if utf8.any() and any(not line.isascii() for line in np.array(lines, dtype=object)[utf8]):
        raise IngestError(
            "mixed text encodings: this line is not UTF-8 but others are (two exports pasted together?)",
            file=path,
            row=int(np.flatnonzero(~utf8)[0]) + 1,
            hint="save the whole file again as UTF-8",
        )
    raise IngestError(
        "unknown text encoding (neither UTF-8 nor GBK/GB18030)", file=path, hint="save the CSV as UTF-8"
    )


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def check_headers(headers: list[str], path: Path, sheet: str | None = None) -> None:
    """Refuse a table without a header row or with a repeated column name."""
    where = f" (sheet {sheet})" if sheet else ""
    if not any(h.strip() for h in headers):
        raise IngestError(f"the file has no header row{where}", file=path, row=1)
    seen: set[str] = set()
    for h in headers:
        if h in seen and h.strip():
            raise IngestError(
                f"duplicate column name{where}",
                file=path,
                row=1,
                column=h,
                hint="every column header must be unique; re-export or rename one",
            )
        seen.add(h)


def csv_header(path: Path) -> list[str]:
    """The first record of a CSV, as Python's csv module reads it (format detection). The file is decoded
    whole and kept for :func:`read_csv` of the same, unchanged file."""
    decoded = _decoded(path)
    _decoded_csv.clear()
    _decoded_csv[_file_key(path)] = decoded
    return next(csv.reader(_lines(decoded[1])), [])


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text``, each with its "\n", as iterating ``io.StringIO(text)`` gives them, one at a
    time (without copying the whole text)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def read_csv(path: Path) -> pd.DataFrame:
    """All-string table from a CSV in any supported encoding; headers checked for duplicates."""
    data, text, encoding = _decoded(path)
    header = next(csv.reader(_lines(text)), None)
    if not header:
        raise IngestError("the file is empty", file=path)
    headers = [h.strip() for h in header]
    check_headers(headers, path)
    # Arrow reads UTF-8: a UTF-8 file's own bytes (without the BOM the decoding dropped) are the text's
    utf8 = data.removeprefix(codecs.BOM_UTF8) if encoding == "utf-8-sig" else text.encode("utf-8")
    frame = _arrow_parse(utf8, header)
    if frame is None:  # a file Arrow reads differently or refuses (ragged rows, blank-looking lines)
        try:
            frame = pd.read_csv(
                io.StringIO(text),
                dtype=str,
                keep_default_na=False,
                header=0,
                skip_blank_lines=True,
                engine="c",
            )
        except (pd.errors.ParserError, ValueError) as exc:
            line = re.search(r"line (\d+)", str(exc))
            raise IngestError(
                f"not a readable CSV ({str(exc).strip()})",
                file=path,
                row=int(line.group(1)) if line else None,
            ) from exc
        frame = frame[frame.ne("").any(axis=1)]
    frame.columns = headers
    return frame.astype("str").reset_index(drop=True)


def _arrow_parse(utf8: bytes, header: list[str]) -> pd.DataFrame | None:
    """The table as pandas' C parser reads it (every cell text, rows with only blank cells dropped),
    parsed by Arrow: 6 times faster on a 93 MB export. None — and pandas reads the file — unless every
    row has the header's number of fields and Arrow's first row is the header as Python's csv module
    reads it."""
    if len(header) < 2:  # a one-column file: a line of spaces is a row to Arrow, maybe not to pandas
        return None
    names = [f"c{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            io.BytesIO(utf8),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    if table.num_rows == 0 or [table.column(n)[0].as_py() for n in names] != header:
        return None
    table = table.slice(1)
    blank = functools.reduce(pc.and_, [pc.equal(table.column(n), "") for n in names])
    return table.filter(pc.invert(blank)).to_pandas()


def cell_text(values: pd.Series) -> pd.Series:
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


def _unreadable(path: Path, exc: Exception) -> IngestError:
    return IngestError(
        f"not a readable .xlsx ({type(exc).__name__}: {exc})", file=path, hint="download the export again"
    )


def _check_workbook(path: Path) -> None:
    """An IngestError for an empty, damaged or truncated file."""
    if path.stat().st_size == 0:
        raise IngestError("the file is empty", file=path)
    if not zipfile.is_zipfile(path):
        raise IngestError(
            "not a readable .xlsx (damaged or truncated file)", file=path, hint="download the export again"
        )


ERROR_CELL = re.compile(rb"""<c\b[^>]*\bt=["']e["']""")


def _has_error_cells(path: Path) -> bool:
    """Whether a worksheet holds an Excel error value (#N/A, #REF! …; cell type "e" in the sheet XML)."""
    with zipfile.ZipFile(path) as archive:
        return any(
            ERROR_CELL.search(archive.read(name))
            for name in archive.namelist()
            if name.startswith("xl/worksheets/") and name.endswith(".xml")
        )


def _calamine_sheets(path: Path) -> list[tuple[str, list]]:
    """(sheet name, rows of cell values) of every worksheet, read with calamine (Rust). A date-formatted
    cell at midnight comes as a date; it is made the datetime openpyxl reads there."""
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    def midnight(v):
        return dt.datetime(v.year, v.month, v.day) if type(v) is dt.date else v

    book = CalamineWorkbook.from_path(str(path))
    try:
        sheets = []
        for sheet in book.sheets_metadata:
            if sheet.typ == SheetTypeEnum.WorkSheet:
                rows = book.get_sheet_by_name(sheet.name).to_python(skip_empty_area=False)
                sheets.append((sheet.name, [[midnight(v) for v in row] for row in rows]))
        return sheets
    finally:
        book.close()


def _openpyxl_sheets(path: Path) -> list[tuple[str, list]]:
    """The same with openpyxl, which keeps an error cell's text ('#N/A') where calamine gives ''."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        return [(ws.title, list(ws.iter_rows(values_only=True))) for ws in book.worksheets]
    finally:
        book.close()


def _sheet_rows(path: Path) -> list[tuple[str, list]]:
    """Every worksheet's rows. Read by calamine, ~15× faster than openpyxl on the bundled export with the
    same text after :func:`cell_text` (tested on every workbook the project ships or writes); a
    workbook with Excel error cells goes to openpyxl, so that '#N/A' stays an answer to flag, not a blank.
    One difference is kept: calamine decodes the OOXML escape '_x000D_' to the carriage return it stands
    for (as the CSV export of the same data holds it); openpyxl leaves the escape as text."""
    _check_workbook(path)
    try:
        read = _openpyxl_sheets if _has_error_cells(path) else _calamine_sheets
        return read(path)
    except Exception as exc:  # calamine, openpyxl and zipfile raise many unrelated types for damaged files
        raise _unreadable(path, exc) from exc


def _blank(row) -> bool:
    return all(v is None or v == "" for v in row)


_detected: dict = {}  # the workbook format detection read whole, kept for the read that follows it


def _file_key(path: Path) -> tuple:
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns


def xlsx_first_headers(path: Path) -> list[str]:
    """Header row of the first non-empty sheet (format detection). The workbook is read whole (calamine
    parses every sheet even for one row) and kept for :func:`read_xlsx` of the same, unchanged file."""
    sheets = _sheet_rows(path)
    _detected.clear()
    _detected[_file_key(path)] = sheets
    for _, rows in sheets:
        if rows and not _blank(rows[0]):
            return ["" if h is None else str(h).strip() for h in rows[0]]
    raise IngestError("the workbook has no data", file=path)


def read_xlsx(path: Path) -> dict[str, pd.DataFrame]:
    """All sheets of a workbook as all-string tables (headers checked)."""
    sheets = {}
    kept = _detected.pop(_file_key(path), None) if _detected else None
    for title, rows in kept if kept is not None else _sheet_rows(path):
        if not rows or all(_blank(row) for row in rows):
            continue
        headers = ["" if h is None else str(h).strip() for h in rows[0]]
        check_headers(headers, path, title)
        frame = pd.DataFrame(rows[1:], columns=headers, dtype=object)
        frame = frame.apply(cell_text) if len(frame) else frame.astype(object)
        # a column without header or value is the sheet's formatted area, not data (openpyxl reads up to
        # the sheet's recorded dimension, calamine up to the last value)
        frame = frame.loc[:, [bool(h) or frame.iloc[:, i].ne("").any() for i, h in enumerate(headers)]]
        sheets[title] = frame[(frame != "").any(axis=1)].reset_index(drop=True)
    if not sheets:
        raise IngestError("the workbook has no data", file=path)
    return sheets
