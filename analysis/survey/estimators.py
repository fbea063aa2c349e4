"""The estimators shared by Taylor and replicate designs (R ``svymean``, ``svytotal``, ``svyratio``,
``svyby``): each is a ratio of weighted totals over domains; the design supplies its variance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import DesignError
from analysis.survey import intervals
from analysis.survey.columns import Columns
from analysis.survey.compare import compare
from analysis.survey.groups import as_list, check_columns, numeric, stacked
from analysis.survey.quantile import woodruff

RESULT_COLUMNS = ["estimate", "se", "ci_low", "ci_high", "df", "deff", "n"]
MAX_COLUMNS = 20  # variables estimated at once: each n × variables work matrix is n · 20 · 8 bytes at most
# (the list of analyses runs analysis.threads.THREADS batches at once)


def _spread(w: np.ndarray, a: np.ndarray, centred: np.ndarray) -> np.ndarray:
    """w·(a − centred)², computed in ``centred``'s n×v buffer (= centre·b, from
    :meth:`Columns.per_row_times`; the same operations, in the same order)."""
    out = centred
    np.subtract(a, out, out=out)
    np.square(out, out=out)
    np.multiply(w, out, out=out)
    return out


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
        codes = np.where(
            codes >= 0, np.where(present[np.maximum(codes, 0)], remap[np.maximum(codes, 0)], -1), -1
        )
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

    def _in_parts(self, pairs, by, total: bool, level: float, df, deff: bool = True) -> pd.DataFrame:
        """The result frame of ``pairs`` over the domains of ``by``, estimated in parts of at most
        :data:`MAX_COLUMNS` variables of nearly equal size, so that memory stays bounded however many
        variables are asked for. Every part has two variables or more: a column's sums then take the
        same steps as when all are estimated together, so the numbers are the same to the last bit."""
        domains = self._domains(by)
        parts = max(1, -(-len(pairs) // MAX_COLUMNS))
        chunks = np.array_split(np.arange(len(pairs)), parts)
        results = []
        for chunk in chunks:
            cols, rows, labels = self._columns([pairs[i] for i in chunk], by, domains)
            results.append(self._estimate(cols, total, level, df, deff))
        if parts == 1:
            return self._frame(labels, rows, results[0])
        D = len(labels)  # each part's numbers are laid out domain by domain: d · v + j
        merged = {
            key: np.hstack(
                [np.asarray(r[key]).reshape(D, len(c)) for r, c in zip(results, chunks, strict=True)]
            ).ravel()
            for key in RESULT_COLUMNS
        }
        rows = [{"_domain": d, **meta} for d in range(D) for meta, _, _ in pairs]
        return self._frame(labels, rows, merged)

    def _columns(self, pairs, by, domains=None):
        """Analysis columns for (meta, numerator, denominator) value pairs over the domains of ``by``
        (``domains``: :meth:`_domains`' answer, when already known); a denominator None stands for 1
        (means and totals)."""
        codes, labels = self._domains(by) if domains is None else domains
        n, v = len(self.data), len(pairs)
        inside = codes >= 0
        if v:  # numerators and denominators as n×v arrays, zeroed where not ok
            a = stacked([pair[1] for pair in pairs], n)
            ok = inside[:, None] & ~np.isnan(a)
            if all(pair[2] is None for pair in pairs):  # means and totals: every denominator is 1
                b = ok.astype(float)
            else:
                b = stacked([pair[2] for pair in pairs], n)
                ok &= ~np.isnan(b)
                np.copyto(b, 0.0, where=~ok)
            np.copyto(a, 0.0, where=~ok)
        else:
            a, b, ok = np.zeros((n, v)), np.zeros((n, v)), np.zeros((n, v), dtype=bool)
        rows = [{"_domain": d, **meta} for d in range(len(labels)) for meta, _, _ in pairs]
        return Columns(a, b, ok, np.where(inside, codes, 0), len(labels)), rows, labels

    def _interval_df(self, df, res) -> np.ndarray:
        """Degrees of freedom of each interval for the ``df=`` option (see :mod:`.intervals`)."""
        return intervals.interval_df(df, res["df"], lambda: self.degf)

    def _estimate(self, cols, total: bool, level: float, df="z", deff: bool = True) -> dict:
        res = self._core(cols, total)
        q = intervals.critical(level, self._interval_df(df, res))
        res["ci_low"], res["ci_high"] = intervals.wald(res["estimate"], res["se"], q)
        res["deff"] = self._deff(res, total, cols) if deff else np.full(len(res["estimate"]), np.nan)
        return res

    def _deff(self, res, total: bool, cols) -> np.ndarray:
        """R ``deff=TRUE``: design variance / variance of a without-replacement SRS of n from W."""
        w = self.weights[:, None]
        okf = cols.ok.astype(float)
        n = cols.total(okf * (w > 0)) if self._count_positive else cols.total(okf)
        W = cols.total(w * okf)
        del okf  # n×v: not held with the spread's buffers below
        with np.errstate(divide="ignore", invalid="ignore"):
            if total:
                S = cols.total(_spread(w, cols.a, cols.per_row_times(cols.total(w * cols.a) / W, cols.b)))
                vsrs = n / (n - 1) * S * (W - n) / n
            else:
                TB = cols.total(w * cols.b)
                S = cols.total(_spread(w, cols.a, cols.per_row_times(res["estimate"], cols.b)))
                vsrs = n / (n - 1) * S * (W - n) / (TB**2 * n)
            return res["se"] ** 2 / np.where(n < W, vsrs, np.nan)

    # -- public estimators ------------------------------------------------------------------
    #
    # ``df`` chooses the degrees of freedom of the interval: "z" (normal quantile), "design",
    # "domain" or a number (see analysis.survey.intervals); the default is R survey's for each
    # estimator. The ``df`` column of the result is always the domain's df (R ``degf`` of the subset).

    def mean(
        self, variables, by=None, na_rm: bool = False, level: float = 0.95, df="z", deff: bool = True
    ) -> pd.DataFrame:
        """Weighted mean(s) with SE, Wald interval, df, deff, n (R ``svymean``/``svyby``). ``deff=False``
        leaves the design effect out (NaN; it costs a pass over every variable), as R's default."""
        pairs = [({"variable": v}, y, None) for v in as_list(variables) for y in [self._values(v, na_rm)]]
        return self._in_parts(pairs, by, False, level, df, deff)

    def total(
        self, variables, by=None, na_rm: bool = False, level: float = 0.95, df="z", deff: bool = True
    ) -> pd.DataFrame:
        """Weighted total(s) (R ``svytotal``); ``deff`` as for :meth:`mean`."""
        pairs = [({"variable": v}, y, None) for v in as_list(variables) for y in [self._values(v, na_rm)]]
        return self._in_parts(pairs, by, True, level, df, deff)

    def ratio(
        self,
        numerator,
        denominator,
        by=None,
        na_rm: bool = False,
        level: float = 0.95,
        df="z",
        numerator_na_to_0: bool = False,
        filter_denominator_0: bool = False,
        deff: bool = True,
    ) -> pd.DataFrame:
        """Ratio of totals Σw·num / Σw·den (R ``svyratio``, combined ratio); ``deff`` as for :meth:`mean`.

        Missing values as analysistools' ``create_analysis_ratio``: ``numerator_na_to_0`` counts a
        missing numerator as 0 (a skipped question: none); ``filter_denominator_0`` puts rows whose
        denominator is 0 out of the domain (they change n and df, not the ratio unless their
        numerator is not 0). Both default to False (R ``svyratio``); analysistools defaults both to
        True, and with its ``numerator_NA_to_0 = FALSE`` it also drops its denominator filter.
        """
        pairs = []
        for num in as_list(numerator):
            for den in as_list(denominator):
                a = self._values(num, na_rm or numerator_na_to_0)
                b = self._values(den, na_rm)
                if numerator_na_to_0:
                    a = np.where(np.isnan(a), 0.0, a)
                if filter_denominator_0:
                    b = np.where(b == 0, np.nan, b)
                pairs.append(({"variable": f"{num}/{den}"}, a, b))
        return self._in_parts(pairs, by, False, level, df, deff)

    def proportion(
        self,
        variable: str,
        by=None,
        na_rm: bool = False,
        ci: str = "logit",
        level: float = 0.95,
        df=None,
        options=None,
        respondents=None,
    ) -> pd.DataFrame:
        """Share of each level of ``variable`` (R ``svymean`` on a factor), one row per level.

        ``ci``: ``"logit"`` (default, as ``svyciprop``), ``"beta"`` (Korn–Graubard) or ``"wald"``.
        ``df`` default (None): the domain's for logit and beta (as ``svyciprop``), "z" for wald
        (as ``confint``).

        A select_multiple question: ``options`` lists its 0/1 columns (or maps each to its level
        label; from a list, the label is the column name without a ``<variable>/`` or
        ``<variable>.`` prefix); each row is the share choosing that option among the question's
        respondents (R ``svymean`` of the option's dummy on the subset of respondents).
        ``respondents``: a column or boolean array of who answered; default: the rows where
        ``variable`` (when it is a column) or else every option is not missing.
        """
        if ci not in ("wald", "logit", "beta"):
            raise DesignError(f"unknown ci={ci!r}", hint="use 'wald', 'logit' or 'beta'")
        if options is None:
            pairs = self._level_pairs(variable, na_rm)
        else:
            pairs = self._option_pairs(variable, options, respondents, na_rm)
        cols, rows, labels = self._columns(pairs, by)
        if ci == "wald":
            res = self._estimate(cols, False, level, "z" if df is None else df)
        else:
            res = self._estimate(cols, False, level, "z")
            res["ci_low"], res["ci_high"] = self._prop_ci(
                res, ci, level, cols, "domain" if df is None else df
            )
        return self._frame(labels, rows, res)

    def _level_pairs(self, variable: str, na_rm: bool) -> list:
        """(meta, indicator, denominator) of each level of a categorical column."""
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
        return pairs

    def _option_pairs(self, variable: str, options, respondents, na_rm: bool) -> list:
        """(meta, dummy, denominator) of each option of a select_multiple question, NaN outside its
        respondents."""
        if isinstance(options, dict):
            labelled = [(str(c), lab) for c, lab in options.items()]
        else:
            prefixes = (f"{variable}/", f"{variable}.")
            labelled = [
                (str(c), next((str(c)[len(p) :] for p in prefixes if str(c).startswith(p)), str(c)))
                for c in as_list(options)
            ]
        if not labelled:
            raise DesignError("a select_multiple question needs at least one option column", column=variable)
        check_columns(self.data, [c for c, _ in labelled], f"option of {variable}")
        dummies = np.column_stack([numeric(self.data, c) for c, _ in labelled])
        if respondents is None:
            if variable in self.data.columns:
                answered = self.data[variable].notna().to_numpy()
            else:
                answered = ~np.isnan(dummies).any(axis=1)
        elif isinstance(respondents, str):
            check_columns(self.data, [respondents], "respondents")
            answered = self.data[respondents].fillna(False).astype(bool).to_numpy()
        else:
            answered = np.asarray(respondents, dtype=bool)
            if answered.shape != (len(self.data),):
                raise DesignError(
                    f"respondents has {answered.size} values for {len(self.data)} rows", column=variable
                )
        for j, (c, _) in enumerate(labelled):
            x = dummies[answered, j]
            if not na_rm and np.isnan(x).any():
                raise DesignError(
                    f"has {int(np.isnan(x).sum())} missing values among the question's respondents",
                    column=c,
                    hint="pass na_rm=True to leave them out",
                )
            if not np.isin(x[~np.isnan(x)], (0.0, 1.0)).all():
                raise DesignError(
                    "an option column must hold 0 or 1",
                    column=c,
                    hint="select_multiple options are 0/1 dummies (1 = chosen)",
                )
        base = np.where(answered, 1.0, np.nan)
        return [
            ({"variable": variable, "level": lab}, np.where(answered, dummies[:, j], np.nan), base)
            for j, (_, lab) in enumerate(labelled)
        ]

    def _prop_ci(self, res, ci, level, cols, df):
        p, dof = res["estimate"], self._interval_df(df, res)
        if ci == "beta":
            return intervals.beta_interval(p, res["se"], dof, self._beta_rows(cols), level)
        se_logit = None
        if res.get("reps") is not None:  # replicate designs: the replicate variance of logit p
            with np.errstate(divide="ignore", invalid="ignore"):
                logits = np.log(res["reps"] / (1 - res["reps"]))
                se_logit = np.sqrt(self._rep_var(logits, np.log(p / (1 - p))))
        return intervals.logit_interval(p, res["se"], dof, level, se_logit=se_logit)

    def quantile(
        self,
        variable,
        q=0.5,
        by=None,
        na_rm: bool = False,
        level: float = 0.95,
        df="domain",
        qrule="math",
    ) -> pd.DataFrame:
        """Weighted quantile(s) with Woodruff interval (R ``svyquantile``, ``interval.type="mean"``).

        ``qrule``: ``"math"`` (the first value whose cumulative weight share reaches q) or
        ``"school"`` (the midpoint of the two values when a share equals q exactly), as R. The
        interval maps an interval for the share below the estimate back through the weighted
        distribution; se = interval width / (2 q). Default df: the domain's, as R.
        ``deff`` is not defined for quantiles (NaN).
        """
        qs = [float(v) for v in as_list(q)]
        if any(not 0 <= v <= 1 for v in qs):
            raise DesignError(f"quantiles must lie in [0, 1], got {qs}")
        ys = [(v, self._values(v, na_rm)) for v in as_list(variable)]
        pairs = [({"variable": v, "quantile": p}, y, np.ones_like(y)) for v, y in ys for p in qs]
        cols, rows, labels = self._columns(pairs, by)
        return self._frame(labels, rows, woodruff(self, pairs, cols, level, df, qrule))

    def compare(
        self,
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
        """Change of a mean, total or proportion from wave ``first`` to wave ``second`` of column ``by``,
        from one design holding both waves (R ``svyby(~y, ~wave, design, svymean, covmat=TRUE)`` then
        ``svycontrast(..., c(-1, 1))``): units sampled in both waves (same ids) carry their covariance.

        One row per domain of ``domains`` (and per level for ``statistic="proportion"``):
        ``estimate`` = second − first, ``se``, ``ci_low``, ``ci_high`` (Wald; ``df`` as the other
        estimators, default z as R's ``confint``), ``df`` (the domain's df over both waves) and
        ``n`` (rows of both waves used). Without ``first``/``second`` the two waves of ``by`` in order.
        """
        return compare(self, variable, by, first, second, statistic, domains, na_rm, level, df)
