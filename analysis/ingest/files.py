"""Reading export files as all-text tables: CSV in any supported encoding, xlsx workbooks, SPSS .sav.

Every reader returns strings only ('' for a blank cell), so that the value readers decide how to type
each column from the form. Damaged, empty or unreadable files raise :class:`IngestError` naming the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import IngestError

ENCODINGS = ("utf-8-sig", "gb18030")


def sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes (read only)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def decode(path: Path) -> tuple[str, str]:
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


def read_csv(path: Path) -> pd.DataFrame:
    """All-string table from a CSV in any supported encoding; headers checked for duplicates."""
    text, _ = decode(path)
    header = next(csv.reader(io.StringIO(text)), None)
    if not header:
        raise IngestError("the file is empty", file=path)
    headers = [h.strip() for h in header]
    check_headers(headers, path)
    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, header=0, skip_blank_lines=True, engine="c"
        )
    except (pd.errors.ParserError, ValueError) as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise IngestError(
            f"not a readable CSV ({str(exc).strip()})", file=path, row=int(line.group(1)) if line else None
        ) from exc
    frame.columns = headers
    frame = frame.astype(object)
    return frame[frame.ne("").any(axis=1)].reset_index(drop=True)


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


def _open_workbook(path: Path):
    """An openpyxl read-only workbook, or an IngestError for an empty, damaged or truncated file."""
    if path.stat().st_size == 0:
        raise IngestError("the file is empty", file=path)
    if not zipfile.is_zipfile(path):
        raise IngestError(
            "not a readable .xlsx (damaged or truncated file)", file=path, hint="download the export again"
        )
    try:
        import openpyxl

        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl and zipfile raise many unrelated types for damaged files
        raise IngestError(
            f"not a readable .xlsx ({type(exc).__name__}: {exc})", file=path, hint="download the export again"
        ) from exc


def xlsx_first_headers(path: Path) -> list[str]:
    """Header row of the first non-empty sheet, read without loading the data (format detection)."""
    book = _open_workbook(path)
    try:
        for ws in book.worksheets:
            first = next(ws.iter_rows(max_row=1, values_only=True), None)
            if first:
                return ["" if h is None else str(h).strip() for h in first]
    except Exception as exc:  # see _open_workbook
        raise IngestError(
            f"not a readable .xlsx ({type(exc).__name__}: {exc})", file=path, hint="download the export again"
        ) from exc
    finally:
        book.close()
    raise IngestError("the workbook has no data", file=path)


def read_xlsx(path: Path) -> dict[str, pd.DataFrame]:
    """All sheets of a workbook as all-string tables (headers checked)."""
    book = _open_workbook(path)
    try:
        sheets = {}
        for ws in book.worksheets:
            rows = list(ws.iter_rows(values_only=True))
            if not rows:
                continue
            headers = ["" if h is None else str(h).strip() for h in rows[0]]
            check_headers(headers, path, ws.title)
            frame = pd.DataFrame(rows[1:], columns=headers, dtype=object)
            frame = frame.apply(cell_text) if len(frame) else frame.astype(object)
            sheets[ws.title] = frame[(frame != "").any(axis=1)].reset_index(drop=True)
        book.close()
    except IngestError:
        raise
    except Exception as exc:  # openpyxl and zipfile raise many unrelated types for damaged files
        raise IngestError(
            f"not a readable .xlsx ({type(exc).__name__}: {exc})", file=path, hint="download the export again"
        ) from exc
    if not sheets:
        raise IngestError("the workbook has no data", file=path)
    return sheets
