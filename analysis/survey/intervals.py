"""Confidence intervals: every rule in one place (R ``confint``, ``svyciprop``, ``svyquantile``).

- ``wald``: estimate ± q × SE, q the normal quantile (R ``confint`` on ``svymean`` etc.).
- ``logit``: expit(logit p ± t_df × SE / (p(1 − p))) (R ``svyciprop(method="logit")``); stays inside
  [0, 1] and is asymmetric near 0 and 1, where small domains make the Wald interval cover too rarely.
- ``beta``: Korn–Graubard, a Clopper–Pearson interval at the effective sample size
  (R ``svyciprop(method="beta")``).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def z_quantile(level: float) -> float:
    """Two-sided normal quantile for a ``level`` interval (1.959964 at 0.95)."""
    return float(stats.norm.ppf(0.5 + level / 2))


def t_quantile(level: float, df) -> np.ndarray:
    """Two-sided t quantile with ``df`` degrees of freedom (NaN where df < 1)."""
    return stats.t.ppf(1 - (1 - level) / 2, np.asarray(df, dtype=float))


def wald(estimate, se, q) -> tuple[np.ndarray, np.ndarray]:
    """estimate ± q × se."""
    estimate, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    return estimate - q * se, estimate + q * se


def logit_interval(estimate, se, df, level: float = 0.95, se_logit=None) -> tuple[np.ndarray, np.ndarray]:
    """Interval of a proportion on the logit scale, as R ``svyciprop(method="logit")``.

    expit(logit p ± t_df · se / (p(1−p))), t with ``df`` degrees of freedom (the domain's, as
    ``svyciprop``). ``se_logit`` replaces se / (p(1−p)) when the SE of logit p is known directly
    (replicate designs: the replicate variance of logit p). p = 0 or 1 gives the degenerate
    interval [p, p].
    """
    p = np.asarray(estimate, dtype=float)
    t = t_quantile(level, df)
    with np.errstate(divide="ignore", invalid="ignore"):
        if se_logit is None:
            se_logit = np.asarray(se, dtype=float) / (p * (1 - p))
        eta = np.log(p / (1 - p))
        low, high = 1 / (1 + np.exp(-(eta - t * se_logit))), 1 / (1 + np.exp(-(eta + t * se_logit)))
    edge = (p <= 0) | (p >= 1)
    return np.where(edge, p, low), np.where(edge, p, high)


def beta_interval(estimate, se, df, rows, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Korn–Graubard interval (R ``svyciprop(method="beta")``): Clopper–Pearson at the effective size
    n_eff = p(1−p)/var × (t_{rows−1} / t_df)², ``rows`` the rows R counts for the domain."""
    p, var = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float) ** 2
    alpha = 1 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = stats.t.ppf(alpha / 2, np.asarray(rows, float) - 1) / stats.t.ppf(alpha / 2, np.asarray(df, float))
        n_eff = p * (1 - p) / var * ratio**2
        low = stats.beta.ppf(alpha / 2, n_eff * p, n_eff * (1 - p) + 1)
        high = stats.beta.ppf(1 - alpha / 2, n_eff * p + 1, n_eff * (1 - p))
    return low, high
