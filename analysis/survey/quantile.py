"""Weighted quantiles with Woodruff intervals (R ``svyquantile``, ``interval.type="mean"``).

The interval maps a t interval for the share of weight below the estimate back through the
weighted distribution function (Woodruff 1952); se = interval width / (2 t), as R.
"""

from __future__ import annotations

import numpy as np

from analysis.survey.columns import Columns
from analysis.survey.intervals import t_quantile


def qrule_math(x_sorted: np.ndarray, cumw: np.ndarray, total: float, p: float) -> float:
    """Weighted quantile, R survey ``qrule_math``: the first x whose cumulative share reaches p.

    ``cumw`` is the running sum of weights in the order of ``x_sorted`` accumulated in extended
    precision, and ``total`` their sum, as R's ``cumsum``/``sum`` do (they use long double), so that
    ties between a cumulative share and p resolve as in R.
    """
    if np.isnan(p) or p < 0 or p > 1:
        return np.nan
    below = np.flatnonzero(cumw <= p * total)
    pos = below[-1] if len(below) else 0
    if p - cumw[pos] / total == 0:
        return float(x_sorted[pos])
    return float(x_sorted[min(pos + 1, len(x_sorted) - 1)])


def woodruff(design, pairs, cols: Columns, level: float) -> dict:
    """Quantile estimates and Woodruff intervals for ``pairs`` ((meta with "quantile", values, _))
    laid out as ``cols``; returns the result columns (deff NaN: not defined for quantiles)."""
    w = design.weights
    D, V = cols.D, len(pairs)
    qhat = np.empty((D, V))
    sorters = []
    for d in range(D):
        for j, (meta, y, _) in enumerate(pairs):
            use = cols.ok[:, j] & (cols.dom == d) & (w > 0)
            order = np.flatnonzero(use)[np.argsort(y[use], kind="stable")]
            cumw = np.cumsum(w[order].astype(np.longdouble)).astype(np.float64)
            total = float(w[order].astype(np.longdouble).sum())
            sorters.append((y[order], cumw, total))
            qhat[d, j] = qrule_math(y[order], cumw, total, meta["quantile"])
    below = np.column_stack([pairs[j][1] for j in range(V)]) <= qhat[cols.dom]
    ind = Columns(np.where(cols.ok, below, 0.0), cols.ok.astype(float), cols.ok, cols.dom, D)
    res = design._core(ind, False)
    t = t_quantile(level, res["df"])
    plow = res["estimate"] - t * res["se"]
    phigh = res["estimate"] + t * res["se"]
    low = np.array([qrule_math(*s, p) for s, p in zip(sorters, plow)])
    high = np.array([qrule_math(*s, p) for s, p in zip(sorters, phigh)])
    return {
        "estimate": qhat.ravel(),
        "se": (high - low) / (2 * t),
        "ci_low": low,
        "ci_high": high,
        "df": res["df"],
        "deff": np.full(D * V, np.nan),
        "n": res["n"],
    }
