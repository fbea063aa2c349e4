"""Confidence intervals: every rule in one place (R ``confint``, ``svyciprop``, ``svyquantile``).

- ``wald``: estimate ± q × SE (R ``confint``; ``df=`` as ``confint(..., df=)``).
- ``logit``: expit(logit p ± q × SE / (p(1 − p))) (R ``svyciprop(method="logit")``); stays inside
  [0, 1] and is asymmetric near 0 and 1, where small domains make the Wald interval cover too rarely.
- ``beta``: Korn–Graubard, a Clopper–Pearson interval at the effective sample size
  (R ``svyciprop(method="beta")``).

q is the normal quantile or the t quantile with the interval's degrees of freedom, chosen by the
estimators' ``df=`` option (:func:`interval_df`): ``"z"`` (the normal quantile), ``"design"`` (the
whole design's df, as ``confint(..., df=degf(design))`` and srvyr), ``"domain"`` (each estimate's
own df: PSUs with a row in the domain minus strata with such PSUs, as ``degf`` of the subset that
``svyciprop`` and ``svyquantile`` use), or a number.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import special

from analysis.errors import DesignError

DF_CHOICES = ("z", "design", "domain")


def interval_df(choice, domain_df, design_df) -> np.ndarray:
    """Degrees of freedom per estimate for ``choice`` ("z" → infinite); ``design_df`` may be a
    callable (the design's df is computed only when asked for)."""
    domain_df = np.asarray(domain_df, dtype=float)
    if isinstance(choice, str) and choice in DF_CHOICES:
        if choice == "z":
            return np.full(domain_df.shape, np.inf)
        if choice == "domain":
            return domain_df
        return np.full(domain_df.shape, float(design_df() if callable(design_df) else design_df))
    if isinstance(choice, numbers.Real) and not isinstance(choice, bool) and choice > 0:
        return np.full(domain_df.shape, float(choice))
    raise DesignError(f"unknown df={choice!r}", hint="use 'z', 'design', 'domain' or a positive number")


def critical(level: float, df) -> np.ndarray:
    """Two-sided quantile for a ``level`` interval: normal where df is infinite, else t with df
    (NaN where df ≤ 0, e.g. a domain whose rows lie in one PSU: no interval)."""
    df = np.asarray(df, dtype=float)
    p = 1 - (1 - level) / 2
    if not 0 < p < 1:  # the edges, as scipy.stats has them
        from scipy import stats

        with np.errstate(invalid="ignore"):
            t = stats.t.ppf(p, np.where(np.isinf(df), 1.0, df))
        return np.where(np.isinf(df), stats.norm.ppf(p), t)
    # scipy.stats' t.ppf and norm.ppf are these functions where df > 0 (importing scipy.stats takes 0.6 s)
    with np.errstate(invalid="ignore"):
        t = np.where(df > 0, special.stdtrit(np.where(np.isinf(df) | ~(df > 0), 1.0, df), p), np.nan)
    return np.where(np.isinf(df), special.ndtri(p), t)


def wald(estimate, se, q) -> tuple[np.ndarray, np.ndarray]:
    """estimate ± q × se."""
    estimate, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    return estimate - q * se, estimate + q * se


def logit_interval(estimate, se, df, level: float = 0.95, se_logit=None) -> tuple[np.ndarray, np.ndarray]:
    """Interval of a proportion on the logit scale, as R ``svyciprop(method="logit")``.

    expit(logit p ± q · se / (p(1−p))), q the t quantile with ``df`` degrees of freedom (normal
    where df is infinite). ``se_logit`` replaces se / (p(1−p)) when the SE of logit p is known
    directly (replicate designs: the replicate variance of logit p). p = 0 or 1 gives the
    degenerate interval [p, p].
    """
    p = np.asarray(estimate, dtype=float)
    q = critical(level, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        if se_logit is None:
            se_logit = np.asarray(se, dtype=float) / (p * (1 - p))
        eta = np.log(p / (1 - p))
        low, high = 1 / (1 + np.exp(-(eta - q * se_logit))), 1 / (1 + np.exp(-(eta + q * se_logit)))
    edge = (p <= 0) | (p >= 1)
    return np.where(edge, p, low), np.where(edge, p, high)


def beta_interval(estimate, se, df, rows, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Korn–Graubard interval (R ``svyciprop(method="beta")``): Clopper–Pearson at the effective size
    n_eff = p(1−p)/var × (t_{rows−1} / t_df)², ``rows`` the rows R counts for the domain. R always
    uses the domain's df here (its ``df`` argument does not reach this rule)."""
    from scipy import stats

    p, var = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float) ** 2
    alpha = 1 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = p * (1 - p) / var * (critical(level, np.asarray(rows, float) - 1) / critical(level, df)) ** 2
        low = stats.beta.ppf(alpha / 2, n_eff * p, n_eff * (1 - p) + 1)
        high = stats.beta.ppf(1 - alpha / 2, n_eff * p + 1, n_eff * (1 - p))
    return low, high
