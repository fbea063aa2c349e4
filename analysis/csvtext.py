"""CSV files with the bytes of ``DataFrame.to_csv(path, index=False)``, written column-wise.

pandas hands every cell to Python's ``csv`` writer one row at a time (18 of the cleaning stage's 89 s at
150,000 households). Here each column becomes Arrow text at once — numbers formatted by the same numpy
call pandas makes, text quoted by the same rule as ``csv.QUOTE_MINIMAL`` — and the rows are joined in
Arrow. Tables this writer cannot promise the same bytes for (categories, nullable integers, mixed
objects, a text cell with a carriage return, a single column) go to pandas; the tests compare the two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

NEEDS_QUOTES = ',"\n'  # csv.QUOTE_MINIMAL quotes a field holding the delimiter, the quote or a line break


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """``table.to_csv(path, index=False, encoding="utf-8")``, the same bytes (date columns must already
    be text)."""
    header = pa.array([str(c) for c in table.columns], type=pa.large_string())
    columns = None if _has_carriage_return(header) else _columns_as_text(table)
    if columns is None:
        table.to_csv(path, index=False, encoding="utf-8")
        return
    with open(path, "wb") as out:
        out.write((",".join(_quoted(header).to_pylist()) + "\n").encode("utf-8"))
        if len(table):
            rows = pc.binary_join_element_wise(*columns, _text_scalar(","))  # the last argument: separator
            out.write(_data(pc.binary_join_element_wise(rows, _text_scalar("\n"), _text_scalar(""))))


def _columns_as_text(table: pd.DataFrame) -> list[pa.Array] | None:
    """Each column as quoted Arrow text, or None when pandas must write the table."""
    if table.shape[1] < 2 or table.columns.has_duplicates:
        return None
    out = []
    for name in table.columns:
        text = _text(table[name])
        if text is None or _has_carriage_return(text):
            return None
        out.append(_quoted(text))
    return out


def arrow_text(column: pd.Series) -> pa.Array:
    """A column of text as one Arrow large_string array (missing values as nulls)."""
    text = pa.array(column, type=pa.large_string(), from_pandas=True)
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text  # pandas' Arrow text


def _text(column: pd.Series) -> pa.Array | None:
    """A column as pandas writes its cells: numbers by numpy's ``astype(str)``, missing as empty text."""
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype) or (
        pd.api.types.is_object_dtype(dtype)
        and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")
    ):
        return pc.fill_null(arrow_text(column), "")
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        return _numbers(column.to_numpy())
    return None


def _numbers(values: np.ndarray) -> pa.Array:
    """Numbers as numpy's ``astype(str)`` writes them (NaN as empty text). Survey answers repeat a few
    values, so each distinct value is formatted once (80 columns of 150,000 answers: 6.7 → 0.8 s; found by
    hashing rather than sorting, 65 columns of 400,000: 2.1 → 1.0 s);
    a negative zero, which counts as zero there, keeps the cell-by-cell way."""
    if values.dtype.kind == "f" and bool(np.any((values == 0) & np.signbit(values))):
        text = values.astype(str)
        text[np.isnan(values)] = ""
        return pa.array(text, type=pa.large_string())
    where, distinct = pd.factorize(values)  # hashed, not sorted; NaN is code -1
    text = np.append(distinct.astype(str), "")  # the last entry, for NaN
    where = np.where(where < 0, len(distinct), where)
    return pa.array(text, type=pa.large_string()).take(pa.array(where))


def _has_carriage_return(text: pa.Array) -> bool:
    return bool((_data(text) == ord("\r")).any())


def _quoted(text: pa.Array) -> pa.Array:
    """Fields holding a comma, quote or line break in quotes, their quotes doubled."""
    data = _data(text)  # these ASCII bytes never occur inside a UTF-8 multi-byte character
    if not any((data == ord(c)).any() for c in NEEDS_QUOTES):
        return text
    needs = pc.or_(pc.match_substring(text, ","), pc.match_substring(text, '"'))
    needs = pc.or_(needs, pc.match_substring(text, "\n"))
    quote = _text_scalar('"')
    quoted = pc.binary_join_element_wise(
        quote, pc.replace_substring(text, '"', '""'), quote, _text_scalar("")
    )
    return pc.if_else(needs, quoted, text)


def _text_scalar(value: str) -> pa.Scalar:
    return pa.scalar(value, type=pa.large_string())


def _data(text: pa.Array) -> np.ndarray:
    """The bytes of a large_string array's values, end to end (a view, not a copy)."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    _, offsets, data = text.buffers()[:3]
    if len(text) == 0 or data is None or data.size == 0:
        return np.zeros(0, dtype=np.uint8)
    ends = np.frombuffer(offsets, dtype=np.int64)[[text.offset, text.offset + len(text)]]
    return np.frombuffer(data, dtype=np.uint8)[ends[0] : ends[1]]
