"""Weighted quantiles with Woodruff intervals (R ``svyquantile``, ``interval.type="mean"``).

The interval maps an interval for the share of weight below the estimate back through the
weighted distribution function (Woodruff 1952); se = interval width / (2 q), q the interval's
normal or t quantile, as R. Quantile rules ``math`` and ``school`` as R's ``qrule``.
"""

from __future__ import annotations

import numpy as np

from analysis.errors import DesignError
from analysis.survey.columns import Columns
from analysis.survey.intervals import critical


def _position(cumw: np.ndarray, total: float, p: float) -> tuple[int, bool]:
    """Last position whose cumulative weight is at most p × total (first if none, as R's ``qs``),
    and whether the cumulative share there equals p exactly."""
    below = np.flatnonzero(cumw <= p * total)
    pos = int(below[-1]) if len(below) else 0
    return pos, p - cumw[pos] / total == 0


def qrule_math(x_sorted: np.ndarray, cumw: np.ndarray, total: float, p: float) -> float:
    """Weighted quantile, R survey ``qrule_math``: the first x whose cumulative share reaches p.

    ``cumw`` is the running sum of weights in the order of ``x_sorted`` accumulated in extended
    precision, and ``total`` their sum, as R's ``cumsum``/``sum`` do (they use long double), so that
    ties between a cumulative share and p resolve as in R.
    """
    if np.isnan(p) or p < 0 or p > 1:
        return np.nan
    pos, exact = _position(cumw, total, p)
    return float(x_sorted[pos] if exact else x_sorted[min(pos + 1, len(x_sorted) - 1)])


def qrule_school(x_sorted: np.ndarray, cumw: np.ndarray, total: float, p: float) -> float:
    """Weighted quantile, R survey ``qrule_school``: as ``qrule_math``, but where the cumulative
    share equals p exactly, the midpoint of that value and the next (the school-book median of an
    even number of equal weights)."""
    if np.isnan(p) or p < 0 or p > 1:
        return np.nan
    pos, exact = _position(cumw, total, p)
    following = float(x_sorted[min(pos + 1, len(x_sorted) - 1)])
    return (float(x_sorted[pos]) + following) / 2 if exact else following


QRULES = {"math": qrule_math, "school": qrule_school}


def woodruff(design, pairs, cols: Columns, level: float, df="domain", qrule: str = "math") -> dict:
    """Quantile estimates and Woodruff intervals for ``pairs`` ((meta with "quantile", values, _))
    laid out as ``cols``; returns the result columns (deff NaN: not defined for quantiles).

    As R: the share below the estimate gets a Wald interval with ``df`` (the domain's by default,
    ``svyquantile(df=degf(design))`` on the domain's subset), and ``qrule`` maps its ends back.
    """
    if qrule not in QRULES:
        raise DesignError(f"unknown qrule={qrule!r}", hint=f"use one of {', '.join(map(repr, QRULES))}")
    rule = QRULES[qrule]
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
            qhat[d, j] = rule(y[order], cumw, total, meta["quantile"])
    below = np.column_stack([pairs[j][1] for j in range(V)]) <= qhat[cols.dom]
    ind = Columns(np.where(cols.ok, below, 0.0), cols.ok.astype(float), cols.ok, cols.dom, D)
    res = design._core(ind, False)
    t = critical(level, design._interval_df(df, res))
    plow = res["estimate"] - t * res["se"]
    phigh = res["estimate"] + t * res["se"]
    low = np.array([rule(*s, p) for s, p in zip(sorters, plow)])
    high = np.array([rule(*s, p) for s, p in zip(sorters, phigh)])
    return {
        "estimate": qhat.ravel(),
        "se": (high - low) / (2 * t),
        "ci_low": low,
        "ci_high": high,
        "df": res["df"],
        "deff": np.full(D * V, np.nan),
        "n": res["n"],
    }
