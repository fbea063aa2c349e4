"""The estimators shared by Taylor and replicate designs (R ``svymean``, ``svytotal``, ``svyratio``,
``svyby``): each is a ratio of weighted totals over domains; the design supplies its variance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import DesignError
from analysis.survey import intervals
from analysis.survey.columns import Columns
from analysis.survey.groups import as_list, check_columns, numeric
from analysis.survey.quantile import woodruff

RESULT_COLUMNS = ["estimate", "se", "ci_low", "ci_high", "df", "deff", "n"]


class Estimators:
    """Estimators shared by Taylor and replicate designs; each is a ratio of weighted totals."""

    data: pd.DataFrame
    weights: np.ndarray

    # subclasses provide _core(cols, total) -> dict(estimate, se, df, n, reps) and _beta_rows(cols)
    def _domains(self, by) -> tuple[np.ndarray, pd.DataFrame]:
        by = as_list(by)
        if not by:
            return np.zeros(len(self.data), dtype=np.int64), pd.DataFrame(index=[0])
        check_columns(self.data, by, "by")
        missing = np.zeros(len(self.data), dtype=bool)
        combined = np.zeros(len(self.data), dtype=np.int64)
        uniques = []
        for name in by:  # sorted levels (category order for categoricals), as svyby
            c, u = pd.factorize(self.data[name], sort=True)
            missing |= c < 0
            combined = combined * len(u) + np.maximum(c, 0)
            uniques.append(u)
        codes, keys = pd.factorize(combined, sort=True) if len(by) > 1 else (combined, None)
        size = len(uniques[0]) if keys is None else len(keys)
        codes = np.where(missing, -1, codes)
        present = np.bincount(codes[(codes >= 0) & (self.weights > 0)], minlength=size) > 0
        remap = np.cumsum(present) - 1
        codes = np.where(codes >= 0, np.where(present[np.maximum(codes, 0)], remap[np.maximum(codes, 0)], -1), -1)
        keys = np.arange(size) if keys is None else keys
        parts, rest = [], keys[present]
        for u in reversed(uniques):
            rest, r = np.divmod(rest, len(u))
            parts.append(np.asarray(u)[r])
        labels = pd.DataFrame(dict(zip(by, reversed(parts))))
        for name in by:
            if isinstance(self.data[name].dtype, pd.CategoricalDtype):
                labels[name] = pd.Categorical(labels[name], categories=self.data[name].cat.categories)
        return codes, labels

    def _values(self, name: str, na_rm: bool) -> np.ndarray:
        check_columns(self.data, [name], "analysis variable")
        y = numeric(self.data, name)
        if not na_rm and np.isnan(y).any():
            raise DesignError(
                f"has {int(np.isnan(y).sum())} missing values",
                column=name,
                hint="pass na_rm=True to treat them as outside the domain",
            )
        return y

    def _frame(self, labels: pd.DataFrame, rows: list[dict], res: dict) -> pd.DataFrame:
        out = pd.DataFrame(rows)
        for key in RESULT_COLUMNS:
            out[key] = res[key]
        by_cols = [c for c in labels.columns]
        if by_cols:
            dom = labels.iloc[out.pop("_domain").to_numpy()].reset_index(drop=True)
            out = pd.concat([dom, out], axis=1)
        else:
            out = out.drop(columns="_domain")
        return out

    def _columns(self, pairs, by):
        """Analysis columns for (meta, numerator, denominator) value pairs over the domains of ``by``."""
        codes, labels = self._domains(by)
        n, v = len(self.data), len(pairs)
        a, b, ok = np.zeros((n, v)), np.zeros((n, v)), np.zeros((n, v), dtype=bool)
        inside = codes >= 0
        for j, (_, x, y) in enumerate(pairs):
            ok[:, j] = inside & ~np.isnan(x) & ~np.isnan(y)
            a[:, j] = np.where(ok[:, j], x, 0.0)
            b[:, j] = np.where(ok[:, j], y, 0.0)
        rows = [{"_domain": d, **meta} for d in range(len(labels)) for meta, _, _ in pairs]
        return Columns(a, b, ok, np.where(inside, codes, 0), len(labels)), rows, labels

    def _estimate(self, cols, total: bool, level: float) -> dict:
        res = self._core(cols, total)
        res["ci_low"], res["ci_high"] = intervals.wald(res["estimate"], res["se"], intervals.z_quantile(level))
        res["deff"] = self._deff(res, total, cols)
        return res

    def _deff(self, res, total: bool, cols) -> np.ndarray:
        """R ``deff=TRUE``: design variance / variance of a without-replacement SRS of n from W."""
        w = self.weights[:, None]
        okf = cols.ok.astype(float)
        n = cols.total(okf * (w > 0)) if self._count_positive else cols.total(okf)
        W = cols.total(w * okf)
        with np.errstate(divide="ignore", invalid="ignore"):
            if total:
                centre = cols.per_row(cols.total(w * cols.a) / W)
                S = cols.total(w * (cols.a - centre * cols.b) ** 2)
                vsrs = n / (n - 1) * S * (W - n) / n
            else:
                TB = cols.total(w * cols.b)
                S = cols.total(w * (cols.a - cols.per_row(res["estimate"]) * cols.b) ** 2)
                vsrs = n / (n - 1) * S * (W - n) / (TB**2 * n)
            return res["se"] ** 2 / np.where(W > n, vsrs, np.nan)

    # -- public estimators ------------------------------------------------------------------

    def mean(self, variables, by=None, na_rm: bool = False, level: float = 0.95) -> pd.DataFrame:
        """Weighted mean(s) with SE, Wald interval, df, deff, n (R ``svymean``/``svyby``)."""
        pairs = [({"variable": v}, y, np.ones_like(y)) for v in as_list(variables) for y in [self._values(v, na_rm)]]
        cols, rows, labels = self._columns(pairs, by)
        return self._frame(labels, rows, self._estimate(cols, False, level))

    def total(self, variables, by=None, na_rm: bool = False, level: float = 0.95) -> pd.DataFrame:
        """Weighted total(s) (R ``svytotal``)."""
        pairs = [({"variable": v}, y, np.ones_like(y)) for v in as_list(variables) for y in [self._values(v, na_rm)]]
        cols, rows, labels = self._columns(pairs, by)
        return self._frame(labels, rows, self._estimate(cols, True, level))

    def ratio(self, numerator, denominator, by=None, na_rm: bool = False, level: float = 0.95) -> pd.DataFrame:
        """Ratio of totals Σw·num / Σw·den (R ``svyratio``, combined ratio)."""
        pairs = []
        for num in as_list(numerator):
            for den in as_list(denominator):
                a, b = self._values(num, na_rm), self._values(den, na_rm)
                pairs.append(({"variable": f"{num}/{den}"}, a, b))
        cols, rows, labels = self._columns(pairs, by)
        return self._frame(labels, rows, self._estimate(cols, False, level))

    def proportion(
        self, variable: str, by=None, na_rm: bool = False, ci: str = "logit", level: float = 0.95
    ) -> pd.DataFrame:
        """Share of each level of ``variable`` (R ``svymean`` on a factor), one row per level.

        ``ci``: ``"logit"`` (default, as ``svyciprop``), ``"beta"`` (Korn–Graubard) or ``"wald"``.
        Logit and beta intervals use the t quantile with the domain's df, as ``svyciprop``.
        """
        if ci not in ("wald", "logit", "beta"):
            raise DesignError(f"unknown ci={ci!r}", hint="use 'wald', 'logit' or 'beta'")
        check_columns(self.data, [variable], "analysis variable")
        col = self.data[variable]
        if not na_rm and col.isna().any():
            raise DesignError(
                f"has {int(col.isna().sum())} missing values",
                column=variable,
                hint="pass na_rm=True to treat them as outside the domain",
            )
        if isinstance(col.dtype, pd.CategoricalDtype):
            levels = list(col.cat.categories)
        else:
            levels = sorted(col.dropna().unique().tolist())
        miss = col.isna().to_numpy()
        values = col.to_numpy()
        pairs = []
        for lev in levels:
            ind = np.where(miss, np.nan, (values == lev).astype(float))
            pairs.append(({"variable": variable, "level": lev}, ind, np.where(miss, np.nan, 1.0)))
        cols, rows, labels = self._columns(pairs, by)
        res = self._estimate(cols, False, level)
        if ci != "wald":
            res["ci_low"], res["ci_high"] = self._prop_ci(res, ci, level, cols)
        return self._frame(labels, rows, res)

    def _prop_ci(self, res, ci, level, cols):
        p, df = res["estimate"], res["df"]
        if ci == "beta":
            return intervals.beta_interval(p, res["se"], df, self._beta_rows(cols), level)
        se_logit = None
        if res.get("reps") is not None:  # replicate designs: the replicate variance of logit p
            with np.errstate(divide="ignore", invalid="ignore"):
                logits = np.log(res["reps"] / (1 - res["reps"]))
                se_logit = np.sqrt(self._rep_var(logits, np.log(p / (1 - p))))
        return intervals.logit_interval(p, res["se"], df, level, se_logit=se_logit)

    def quantile(
        self, variable, q=0.5, by=None, na_rm: bool = False, level: float = 0.95
    ) -> pd.DataFrame:
        """Weighted quantile(s) with Woodruff interval (R ``svyquantile``, ``qrule="math"``).

        The interval maps a t interval for the share below the estimate back through the weighted
        distribution; se = interval width / (2 t). ``deff`` is not defined for quantiles (NaN).
        """
        qs = [float(v) for v in as_list(q)]
        if any(not 0 <= v <= 1 for v in qs):
            raise DesignError(f"quantiles must lie in [0, 1], got {qs}")
        ys = [(v, self._values(v, na_rm)) for v in as_list(variable)]
        pairs = [({"variable": v, "quantile": p}, y, np.ones_like(y)) for v, y in ys for p in qs]
        cols, rows, labels = self._columns(pairs, by)
        return self._frame(labels, rows, woodruff(self, pairs, cols, level))
