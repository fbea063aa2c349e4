"""Column work done once per distinct value.

Survey answers repeat a handful of values (codes, option lists, a few hundred texts), so converting,
normalising or testing each distinct value once and taking the results back to every row gives the
per-cell answer at a fraction of the cost on a census-size export.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd


def each_distinct(values: pd.Series, compute: Callable[[object], np.ndarray], missing) -> np.ndarray:
    """``compute(distinct)`` for every row: ``compute`` maps the column's distinct non-missing values (in
    order of first appearance) to one result each; a row whose value is missing gets ``missing``."""
    codes, distinct = pd.factorize(values)
    done = np.asarray(compute(distinct))
    if (codes < 0).any():
        done = np.append(done, missing)  # code −1 takes this last entry
    return done[codes]


def by_distinct(values: pd.Series, compute: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """``compute(values)`` for an element-by-element ``compute`` on text, worked out on the distinct values
    (missing counted as one of them) and taken back to every row, with ``values``' index. Columns that are
    not text are handed to ``compute`` whole (Python objects may hold missing values that text
    conversion tells apart)."""
    if not isinstance(values.dtype, pd.StringDtype):
        return compute(values)
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    done = compute(pd.Series(distinct, dtype=values.dtype, name=values.name))
    return done.take(codes).set_axis(values.index)
