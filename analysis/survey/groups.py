"""Group codes and group sums: the building blocks every estimator reduces to.

Rows carry integer codes (strata, sampling units, domains, calibration cells) numbered 0..k-1 in
order of first appearance; sums within codes are one sparse indicator product, so no loop runs over
rows and the same sums map onto partitioned data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.errors import DesignError


def as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def check_columns(df: pd.DataFrame, names, role: str) -> None:
    for name in names:
        if name not in df.columns:
            shown = ", ".join(map(str, list(df.columns)[:12]))
            raise DesignError(
                f"unknown column given as {role}", column=str(name), hint=f"the data has: {shown}"
            )


def _factorize(values) -> tuple[np.ndarray, int]:
    """(codes in order of first appearance, number of distinct values). A sorted numeric column (survey
    files are often sorted by stratum and sampling unit) is coded from its runs, without hashing."""
    a = values.to_numpy() if isinstance(values, pd.Series) else values
    if isinstance(a, np.ndarray) and a.dtype.kind in "iuf" and len(a) > 1:
        step = a[1:] != a[:-1]
        if np.all(a[1:] >= a[:-1]) or np.all(a[1:] <= a[:-1]):
            codes = np.zeros(len(a), dtype=np.int64)
            np.cumsum(step, out=codes[1:])
            return codes, int(codes[-1]) + 1
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64, copy=False), len(uniques)


def codes_of(df: pd.DataFrame, columns: list[str], role: str) -> np.ndarray:
    """Integer codes (0..k-1, order of first appearance) of the combination of ``columns``."""
    combined = np.zeros(len(df), dtype=np.int64)
    for name in columns:
        col = df[name]
        if col.isna().any():
            row = int(np.flatnonzero(col.isna().to_numpy())[0])
            raise DesignError(
                f"{role} has {int(col.isna().sum())} missing values (first at data row {row})",
                column=name,
                hint=f"every row needs a {role}",
            )
        codes, k = _factorize(col)
        if len(columns) == 1:
            return codes
        combined = combined * k + codes
    return _factorize(combined)[0]


def _first_appearance(codes: np.ndarray) -> bool:
    """True when ``codes`` are already numbered 0..k-1 in order of first appearance."""
    if len(codes) == 0:
        return True
    seen = np.maximum.accumulate(codes)
    return codes[0] == 0 and bool(np.all(codes[1:] <= seen[:-1] + 1))


def combine(*codes: np.ndarray) -> np.ndarray:
    """Codes of the combination of several code vectors (order of first appearance)."""
    if len(codes) == 1:
        return codes[0] if _first_appearance(codes[0]) else _factorize(codes[0])[0]
    combined = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        combined = combined * (int(c.max()) + 1 if len(c) else 1) + c
    return _factorize(combined)[0]


def first_rows(codes: np.ndarray) -> np.ndarray:
    """Row of the first occurrence of each code, for codes numbered in order of first appearance."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.empty(len(codes), dtype=bool)
    new[0] = True
    new[1:] = codes[1:] > np.maximum.accumulate(codes)[:-1]
    return np.flatnonzero(new)


STACK_ROWS = 4096  # rows of the matrix filled at a time by :func:`stacked` (a block stays in the CPU cache)


def stacked(arrays: list[np.ndarray], n: int, dtype=float) -> np.ndarray:
    """n × len(arrays) matrix of ``dtype`` with the arrays as columns (booleans as 0/1), as
    ``np.column_stack(arrays).astype(dtype)``.

    Filled a block of rows at a time, each column in turn: writing whole columns one after the other
    passes over the entire matrix once per column (0.12 s for 460,000 × 40; by blocks 0.06 s, and
    ``np.column_stack`` 0.3 s)."""
    arrays = [np.asarray(x) for x in arrays]
    out = np.empty((n, len(arrays)), dtype=dtype)
    for start in range(0, n, STACK_ROWS):
        block = out[start : start + STACK_ROWS]
        for j, x in enumerate(arrays):
            block[:, j] = x[start : start + STACK_ROWS]
    return out


BINCOUNT_COLUMNS = 4  # up to this many columns, np.bincount per column is faster than a sparse product


def groupsum(x: np.ndarray, codes: np.ndarray, size: int) -> np.ndarray:
    """Column sums of ``x`` (n or n×k) within groups ``codes`` (0..size-1): size×k.

    One sparse product (size × n indicator matrix times x) for all columns, or ``np.bincount`` per
    column for a few (building the indicator costs more than four passes over x); both add the rows in
    their order, so the result is the same to the last bit either way.
    """
    x = np.asarray(x, dtype=float)
    columns = x[:, None] if x.ndim == 1 else x
    if columns.shape[1] <= BINCOUNT_COLUMNS:
        out = np.empty((size, columns.shape[1]))
        for j in range(columns.shape[1]):
            out[:, j] = np.bincount(codes, weights=columns[:, j], minlength=size)
        return out
    return summed(indicator_matrix(codes, size), columns)


def indicator_matrix(codes: np.ndarray, size: int, weights: np.ndarray | None = None) -> sparse.csr_matrix:
    """The size × n matrix with a 1 (or ``weights[i]``) at (code of row i, i): its product with x sums x
    (weighted) by group."""
    n = len(codes)
    values = np.ones(n) if weights is None else weights
    return sparse.csr_matrix((values, (codes, np.arange(n))), shape=(size, n))


def summed(indicator: sparse.csr_matrix, x: np.ndarray) -> np.ndarray:
    """Group sums of x (n or n×k) with a prebuilt :func:`indicator_matrix`: size×k."""
    x = np.asarray(x, dtype=float)
    return np.asarray(indicator @ np.ascontiguousarray(x[:, None] if x.ndim == 1 else x))


def numeric(df: pd.DataFrame, name: str) -> np.ndarray:
    col = df[name]
    if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
        raise DesignError(
            f"is not numeric (dtype {col.dtype}); means, totals, ratios and quantiles need numbers",
            column=name,
            hint="use proportion() for a categorical variable, or recode it to numbers",
        )
    return col.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
