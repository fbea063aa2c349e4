"""KoboToolbox / ODK exports: an ``.xlsx`` whose first sheet holds submissions and one sheet per repeat group
(named after the repeat, cut to Excel's 31 characters), or ``<form>.csv`` with ``<repeat>.csv`` beside it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.errors import IngestError
from analysis.ingest.files import read_csv, read_xlsx
from analysis.ingest.schema import Schema, repeat_names


def xlsx_tables(path: Path, form: Schema) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], list[Path]]:
    """Main table, repeat tables by repeat name, and the files read, from a Kobo workbook."""
    repeats = repeat_names(form)
    sheets = read_xlsx(path)
    main_name = next((s for s in sheets if s not in repeats), None)
    if main_name is None:
        raise IngestError("no submissions sheet (only repeat sheets)", file=path)
    return sheets[main_name], {r: sheets[s] for s in sheets for r in repeats if s == r[:31]}, [path]


def csv_tables(path: Path, form: Schema) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], list[Path]]:
    """Main table, repeat tables by repeat name, and the files read, from Kobo CSVs."""
    siblings = {r: path.with_name(f"{r}.csv") for r in repeat_names(form)}
    siblings = {r: p for r, p in siblings.items() if p.exists()}
    return read_csv(path), {r: read_csv(p) for r, p in siblings.items()}, [path, *siblings.values()]
