"""Change between two waves of a survey held in one stacked design (R ``svyby(..., covmat=TRUE)``
followed by ``svycontrast(..., c(-1, 1))``).

Both waves' rows sit in one design; a sampling unit visited in both waves keeps one id, so its two
contributions enter the same unit total and the covariance of the two estimates is counted: the
variance of second − first is that of the difference of the influence values (Taylor designs) or
of the replicate estimates (replicate designs). Fresh units in the second wave simply have their
own ids and no covariance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import DesignError
from analysis.survey import intervals
from analysis.survey.columns import Columns
from analysis.survey.groups import as_list, check_columns

STATISTICS = ("mean", "total", "proportion")


def waves_of(data: pd.DataFrame, by: str, first, second) -> tuple:
    """The two waves to compare; without ``first``/``second``, the two values of ``by`` in order."""
    check_columns(data, [by], "wave")
    values = sorted(pd.unique(data[by].dropna()).tolist())
    if first is None and second is None:
        if len(values) != 2:
            raise DesignError(
                f"has {len(values)} waves {values[:5]}; say which two to compare",
                column=by,
                hint="pass first= and second=",
            )
        return values[0], values[1]
    for wave in (first, second):
        if wave not in values:
            raise DesignError(f"has no wave {wave!r} (waves: {values[:10]})", column=by)
    if first == second:
        raise DesignError("first and second are the same wave", column=by)
    return first, second


def compare(
    design,
    variable,
    by: str = "wave",
    first=None,
    second=None,
    statistic: str = "mean",
    domains=None,
    na_rm: bool = False,
    level: float = 0.95,
    df="z",
) -> pd.DataFrame:
    """Change from wave ``first`` to wave ``second`` of ``by`` (see ``Estimators.compare``)."""
    if statistic not in STATISTICS:
        raise DesignError(f"unknown statistic={statistic!r}", hint=f"use one of {', '.join(STATISTICS)}")
    first, second = waves_of(design.data, by, first, second)
    if by in as_list(domains):
        raise DesignError("the wave column cannot also be a domain", column=by)
    wave = design.data[by].to_numpy()
    sign = np.where(wave == second, 1.0, np.where(wave == first, -1.0, 0.0))
    if statistic == "proportion":
        pairs = design._level_pairs(variable, na_rm)
    else:
        pairs = [({"variable": v}, y, None) for v in as_list(variable) for y in [design._values(v, na_rm)]]
    cols, rows, labels = design._columns(pairs, domains)
    in_waves = cols.ok & (sign != 0)[:, None]
    present = np.bincount(cols.dom[in_waves.any(axis=1)], minlength=cols.D) > 0
    T, v = cols.D, len(pairs)
    # estimation columns: domain t of wave s (0 first, 1 second) is domain 2t + s
    split = Columns(
        np.where(in_waves, cols.a, 0.0),
        np.where(in_waves, cols.b, 0.0),
        in_waves,
        2 * cols.dom + (sign > 0),
        2 * T,
    )
    target = Columns(split.a, split.b, in_waves, cols.dom, T)
    t, j = np.divmod(np.arange(T * v), v)  # target column t·v + j is (2t + 1)·v + j minus 2t·v + j
    plus, minus = (2 * t + 1) * v + j, 2 * t * v + j
    estimate, se = design._difference(split, statistic == "total", sign, target, plus, minus)
    domain_df = design._degf(target)
    res = {"estimate": estimate, "se": se, "df": domain_df}
    q = intervals.critical(level, design._interval_df(df, res))
    res["ci_low"], res["ci_high"] = intervals.wald(estimate, se, q)
    res["n"] = target.total(in_waves.astype(float)).astype(np.int64)
    out = pd.DataFrame(rows)
    for key in ("estimate", "se", "ci_low", "ci_high", "df", "n"):
        out[key] = res[key]
    out = out[np.repeat(present, v)].reset_index(drop=True)
    if labels.columns.empty:
        return out.drop(columns="_domain")
    dom = labels.iloc[out.pop("_domain").to_numpy()].reset_index(drop=True)
    return pd.concat([dom, out], axis=1)
