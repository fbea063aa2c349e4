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
