"""Design-based estimation: the survey design object and its estimators.

Mirrors R's ``survey`` package (Lumley; conventions of version 4.1-1, the reference values in
``tests/reference/survey_reference.json`` come from it): :class:`Design` is ``svydesign`` (strata,
one or more stages of clusters, fpc as population sizes or sampling fractions per stage),
:class:`ReplicateDesign` is ``svrepdesign`` / ``as.svrepdesign``. Every estimator is a ratio of
weighted totals, so the whole core is sums of per-row contributions reduced with group sums
(sparse indicator products) to PSU totals: no loop runs over rows, and the same sums map onto partitioned data.

Conventions (as R ``survey``):

- Taylor linearisation; without fpc, with-replacement (ultimate cluster) variance; with fpc at every
  stage, each later stage adds its own term weighted by the earlier sampling fractions.
- Domains (``by=``) keep the full design: rows outside the domain contribute zero. With
  ``na_rm=True`` missing values are out of the domain. As ``svyby`` on an uncalibrated design, strata
  without any domain row are left out of the lonely-PSU rules; a calibrated design keeps them all.
- Degrees of freedom = PSUs − strata among the rows of the domain with positive weight
  (``degf``); replicate designs: rank of the replicate weights − 1.
- Intervals: ``ci="wald"`` is estimate ± normal quantile × SE (``confint``); proportions also take
  ``"logit"`` and ``"beta"`` (``svyciprop``, t quantile with the domain's df); quantiles use
  Woodruff's interval with the t quantile (``svyquantile``, ``qrule="math"``, ``interval.type="mean"``).
- Design effects as ``deff=TRUE``: variance over that of a without-replacement SRS of the same size.
- Post-stratification, raking and linear (GREG) calibration return a new design whose variance
  accounts for the calibration (residuals as ``postStratify``/``rake``/``calibrate``); replicate
  designs recalibrate every replicate (R's ``rake`` rakes replicates in lock step with the sample).
  ``rake(tol=)`` is relative to Σ weights (R ``control$epsilon < 1``); unlike R, failing to
  converge, an empty margin cell or margins no weights can meet raise :class:`DesignError`.
- Lonely PSUs: ``lonely_psu`` = fail (default, error naming the stratum), remove, certainty (both add
  no variance, as in R's code), adjust (centre on zero, i.e. the grand mean), average (mean of the
  other strata); replicate jackknives follow R's ``jknweights`` for each rule.
- Replicates: ``replicate("JK1"|"JKn"|"bootstrap")``. The bootstrap is Rao–Wu's rescaling bootstrap
  (n_h − 1 PSUs drawn with replacement), which is R's ``type="subbootstrap"``; R's
  ``type="bootstrap"`` (Canty–Davison, n_h draws) is not provided. Variance = scale × Σ rscales ×
  (θ_r − mean θ_r)², or around θ with ``mse=True`` (``svrVar``).
- Quirks kept for agreement: ``svyciprop(method="beta")`` counts all rows of a calibrated design as
  its n; ``svyquantile`` uses the df of the domain after removing missing values.

Results are tidy DataFrames: the ``by`` columns, ``variable`` (and ``level`` or ``quantile``), then
``estimate, se, ci_low, ci_high, df, deff, n`` (n = rows of the domain used). For replicate-weight
work downstream: :meth:`ReplicateDesign.replicate_weights` (n × R array),
:meth:`ReplicateDesign.replicate_totals` (W.T @ y without forming W) and
:meth:`ReplicateDesign.replicate_variance`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse, stats

from analysis.errors import DesignError

LONELY_PSU = ("fail", "remove", "adjust", "average", "certainty")
RESULT_COLUMNS = ["estimate", "se", "ci_low", "ci_high", "df", "deff", "n"]
_FPC_ZERO = 1e-7  # R survey: a stratum whose fpc factor is below this adds no variance (onestrat)
_RAKE_RESIDUAL_SWEEPS = 10  # R survey's svyrecvar projects raking residuals with 10 sweeps
_CHUNK_COLUMNS = 64  # calibrated variance: columns of the n × columns influence matrix held at once


# ---------------------------------------------------------------------------------------------
# small helpers


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _check_columns(df: pd.DataFrame, names, role: str) -> None:
    for name in names:
        if name not in df.columns:
            shown = ", ".join(map(str, list(df.columns)[:12]))
            raise DesignError(
                f"unknown column given as {role}", column=str(name), hint=f"the data has: {shown}"
            )


def _codes(df: pd.DataFrame, columns: list[str], role: str) -> np.ndarray:
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
        codes, uniques = pd.factorize(col, sort=False)
        if len(columns) == 1:
            return codes.astype(np.int64)
        combined = combined * len(uniques) + codes
    return pd.factorize(combined, sort=False)[0].astype(np.int64)


def _combine(*codes: np.ndarray) -> np.ndarray:
    """Codes of the combination of several code vectors (order of first appearance)."""
    if len(codes) == 1:
        return codes[0]
    combined = np.zeros(len(codes[0]), dtype=np.int64)
    for c in codes:
        combined = combined * (int(c.max()) + 1 if len(c) else 1) + c
    return pd.factorize(combined, sort=False)[0].astype(np.int64)


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """Row of the first occurrence of each code, for codes numbered in order of first appearance."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.empty(len(codes), dtype=bool)
    new[0] = True
    new[1:] = codes[1:] > np.maximum.accumulate(codes)[:-1]
    return np.flatnonzero(new)


def _groupsum(x: np.ndarray, codes: np.ndarray, size: int) -> np.ndarray:
    """Column sums of ``x`` (n or n×k) within groups ``codes`` (0..size-1): size×k.

    One sparse product (size × n indicator matrix times x) for all columns; each sum adds the rows
    in their order, as ``np.bincount`` would, so the result is the same to the last bit.
    """
    return _summed(_indicator(codes, size), x)


def _indicator(codes: np.ndarray, size: int) -> sparse.csr_matrix:
    """The size × n matrix with a 1 at (code of row i, i): its product with x sums x by group."""
    n = len(codes)
    return sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(size, n))


def _summed(indicator: sparse.csr_matrix, x: np.ndarray) -> np.ndarray:
    """Group sums of x (n or n×k) with a prebuilt :func:`_indicator`: size×k."""
    x = np.asarray(x, dtype=float)
    return np.asarray(indicator @ np.ascontiguousarray(x[:, None] if x.ndim == 1 else x))


def _numeric(df: pd.DataFrame, name: str) -> np.ndarray:
    col = df[name]
    if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
        raise DesignError(
            f"is not numeric (dtype {col.dtype}); means, totals, ratios and quantiles need numbers",
            column=name,
            hint="use proportion() for a categorical variable, or recode it to numbers",
        )
    return col.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)


def _svr_var(thetas: np.ndarray, estimate: np.ndarray, scale: float, rscales: np.ndarray, mse: bool):
    """Replicate variance (R ``svrVar``): scale × Σ rscale_r (θ_r − centre)², per column."""
    centre = estimate if mse else thetas[rscales > 0].mean(axis=0)
    return scale * (rscales[:, None] * (thetas - centre) ** 2).sum(axis=0)


def _qrule_math(x_sorted: np.ndarray, cumw: np.ndarray, total: float, p: float) -> float:
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


# ---------------------------------------------------------------------------------------------
# population margins for calibration


def _population_series(population, columns: list[str]) -> pd.Series:
    """Population counts keyed by the string form of the level (a tuple of them for several columns)."""
    if isinstance(population, pd.DataFrame):
        count_cols = [c for c in population.columns if c not in columns]
        if len(count_cols) != 1:
            raise DesignError(
                "population table needs the stratifying columns plus exactly one count column",
                column=",".join(columns),
            )
        keys = [tuple(str(v) for v in row) for row in population[columns].itertuples(index=False)]
        values = population[count_cols[0]].to_numpy(dtype=float)
    else:
        items = dict(population).items()
        keys = [tuple(str(v) for v in (k if isinstance(k, tuple) else (k,))) for k, _ in items]
        values = np.array([float(v) for _, v in items])
    if len(columns) == 1:
        keys = [k[0] for k in keys]
    if np.any(~np.isfinite(values)) or np.any(values < 0):
        raise DesignError("population counts must be finite and not negative", column=",".join(columns))
    return pd.Series(values, index=pd.Index(keys, tupleize_cols=False), dtype=float)


def _cells(df: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, list]:
    """Cell code per row (0..C-1) and each cell's label: the text of its level (a tuple for several)."""
    combined = np.zeros(len(df), dtype=np.int64)
    per_column = []
    for name in columns:
        if df[name].isna().any():
            raise DesignError(
                "has missing values; post-stratification and raking need every row in a cell",
                column=name,
                hint="impute or recode the missing values first",
            )
        codes, uniques = pd.factorize(df[name], sort=True)
        per_column.append([str(u) for u in uniques])
        combined = combined * len(uniques) + codes
    cells, keys = pd.factorize(combined, sort=True)
    labels = []
    for key in keys:
        parts = []
        for levels in reversed(per_column):
            key, r = divmod(int(key), len(levels))
            parts.append(levels[r])
        parts.reverse()
        labels.append(parts[0] if len(parts) == 1 else tuple(parts))
    return cells.astype(np.int64), labels


@dataclass(frozen=True)
class _Margin:
    """One post-stratification margin: cell code per row and the population count per cell."""

    columns: tuple[str, ...]
    cells: np.ndarray  # per row, 0..C-1
    population: np.ndarray  # per cell

    @classmethod
    def build(cls, df: pd.DataFrame, weights: np.ndarray, columns, population, partial: bool = False):
        columns = _as_list(columns)
        _check_columns(df, columns, "post-stratification variable")
        codes, levels = _cells(df, columns)
        pop = _population_series(population, columns)
        sample = np.bincount(codes, weights=weights, minlength=len(levels))
        pop_for_level = pop.reindex(pd.Index(list(levels), tupleize_cols=False))
        missing = pop_for_level.isna().to_numpy() | (pop_for_level.to_numpy() == 0)
        bad = missing & (sample > 0)
        name = ",".join(columns)
        if bad.any():
            raise DesignError(
                f"sample cell {levels[np.flatnonzero(bad)[0]]!r} is absent from the population counts",
                column=name,
                hint="give a population count for every level present in the data",
            )
        empty = [k for k, v in pop.items() if v > 0 and (k not in set(levels) or sample[list(levels).index(k)] == 0)]
        if empty and not partial:
            raise DesignError(
                f"population cell {empty[0]!r} has no sampled weight (empty margin cell)",
                column=name,
                hint="collapse that cell with a neighbour, or pass partial=True to ignore it",
            )
        return cls(tuple(columns), codes.astype(np.int64), pop_for_level.fillna(0).to_numpy())

    def factor(self, totals: np.ndarray) -> np.ndarray:
        """Per-cell multiplier population/total (cells with no weight and no population keep 1)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            f = self.population[:, None] / totals if totals.ndim == 2 else self.population / totals
        return np.where(np.isfinite(f), f, 1.0)


@dataclass(frozen=True)
class _CalStep:
    """A calibration applied to the design, kept so its variance residuals and replicates can follow."""

    kind: str  # "post", "rake" or "greg"
    margins: tuple[_Margin, ...]
    old_weights: np.ndarray | None  # post: weights before
    new_weights: tuple[np.ndarray, ...]  # post: (after,); rake: per margin, after its last step; greg: (g·√w,)
    recipe: tuple  # (kind, [(columns, population)] or totals, options) to replay on replicate designs
    basis: np.ndarray | None = None  # greg: orthonormal basis of √w·X (R keeps its QR)
    joint: np.ndarray | None = None  # rake: joint cell of each row (new_weights are joint-cell multipliers)


def _rake_weights(weights, margins, tol, max_iter, on_step=None):
    """Iterative proportional fitting as R ``rake``: convergence when the joint table of all margin
    variables moves by less than ``tol`` × Σ weights in one sweep (R's ``epsilon < 1`` rule).

    Every row of a joint cell (a combination of margin levels) gets the same multiplier, so the
    fitting runs on the joint table and touches the rows once. Returns the joint cell of each row,
    the raked weights and, per margin, the joint-cell multiplier after its step in the last sweep.
    """
    joint = _combine(*[m.cells for m in margins])
    size = int(joint.max()) + 1
    first = _first_rows(joint)
    cells = [m.cells[first] for m in margins]
    base = np.bincount(joint, weights=weights, minlength=size)
    eps = tol * weights.sum()
    mult = np.ones(size)
    old = base
    for _ in range(max_iter):
        after = []
        for m, c in zip(margins, cells):
            totals = np.bincount(c, weights=base * mult, minlength=len(m.population))
            mult = mult * m.factor(totals)[c]
            after.append(mult)
            if on_step is not None:
                on_step(m)
        new = base * mult
        if np.max(np.abs(old - new)) < eps:
            for m, c in zip(margins, cells):
                got = np.bincount(c, weights=new, minlength=len(m.population))
                if np.max(np.abs(got - m.population)) > 1e-6 * m.population.sum():
                    raise DesignError(
                        "raking settled on weights that miss this margin: no weights meet all margins",
                        column=",".join(m.columns),
                        hint="a combination of levels needed by the margins has no sampled rows; collapse levels",
                    )
            return joint, weights * mult[joint], tuple(after)
        old = new
    names = "; ".join(",".join(m.columns) for m in margins)
    raise DesignError(
        f"raking did not converge to tol={tol} in {max_iter} iterations",
        column=names,
        hint="check that the margins describe the same population total, or raise max_iter",
    )


def _calibration_matrix(df: pd.DataFrame, totals: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Auxiliary matrix X (n×p) and its population totals for linear calibration.

    ``totals`` maps a numeric column to its population total, or a categorical column to a dict
    level → population count (one indicator column per level, compared as text); the key
    ``"(Intercept)"`` adds a column of ones with the population size.
    """
    cols, pops, names = [], [], []
    for name, total in totals.items():
        if name == "(Intercept)":
            cols.append(np.ones(len(df)))
            pops.append(float(total))
            names.append(name)
            continue
        _check_columns(df, [name], "calibration variable")
        if isinstance(total, (dict, pd.Series)):
            codes, labels = _cells(df, [name])
            pop = _population_series(total, [name])
            missing = [lab for lab in labels if lab not in pop.index]
            if missing:
                raise DesignError(f"level {missing[0]!r} has no population count", column=name)
            for i, lab in enumerate(labels):
                cols.append((codes == i).astype(float))
                pops.append(float(pop[lab]))
                names.append(f"{name}={lab}")
        else:
            x = _numeric(df, name)
            if np.isnan(x).any():
                raise DesignError("calibration variable has missing values", column=name)
            cols.append(x)
            pops.append(float(total))
            names.append(name)
    return np.column_stack(cols), np.array(pops), names


def _check_margin_totals(margins: list[_Margin], tol: float) -> None:
    totals = np.array([m.population.sum() for m in margins])
    if np.max(np.abs(totals - totals[0])) > max(tol, 1e-9) * totals[0]:
        names = ", ".join(f"{','.join(m.columns)}={t:g}" for m, t in zip(margins, totals))
        raise DesignError(
            f"raking margins have different population totals ({names})",
            hint="raking can only converge when every margin sums to the same total",
        )


# ---------------------------------------------------------------------------------------------
# the shared estimator layer


@dataclass(frozen=True)
class _Cols:
    """Analysis columns over domains, kept as n × v arrays plus each row's domain.

    Column (d, j), numbered d·v + j, is variable j on the rows of domain d: a row belongs to one
    domain, so group sums by (group, domain) give every column at once and no n × (domains·v)
    matrix is ever formed. ``ok`` is False outside every domain and where a value is missing.
    """

    a: np.ndarray  # n×v numerators (0 where not ok)
    b: np.ndarray  # n×v denominators: 1 for means and totals (0 where not ok)
    ok: np.ndarray  # n×v bool
    dom: np.ndarray  # n, domain code 0..D-1
    D: int

    @classmethod
    def whole(cls, n: int) -> _Cols:
        one = np.ones((n, 1))
        return cls(one, one, np.ones((n, 1), dtype=bool), np.zeros(n, dtype=np.int64), 1)

    def gsum(self, x: np.ndarray, codes: np.ndarray, size: int) -> np.ndarray:
        """Sums of x (n×v) within groups ``codes`` for every column: size × (D·v)."""
        key = codes if self.D == 1 else codes * self.D + self.dom
        return _groupsum(x, key, size * self.D).reshape(size, self.D * x.shape[1])

    def total(self, x: np.ndarray) -> np.ndarray:
        """Column sums of x over each column's domain: D·v."""
        if self.D == 1:
            return x.sum(axis=0)
        return _groupsum(x, self.dom, self.D).ravel()

    def per_row(self, values: np.ndarray) -> np.ndarray:
        """For each row and variable, the value of the row's own column (n×v, or 1×v when there is
        one domain); NaN read as 0."""
        table = np.nan_to_num(values.reshape(self.D, -1), nan=0.0, posinf=0.0, neginf=0.0)
        return table if self.D == 1 else table[self.dom]

    def dense(self, x: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Columns lo..hi-1 (all by default) of x spread into its columns: n × (hi − lo), zero
        outside each column's domain."""
        n, v = x.shape
        hi = self.D * v if hi is None else hi
        out = np.zeros((n, hi - lo))
        column = self.dom[:, None] * v + np.arange(v) - lo  # n×v: each value's column in the chunk
        inside = (column >= 0) & (column < hi - lo)
        out[np.nonzero(inside)[0], column[inside]] = x[inside]
        return out


class _Estimators:
    """Estimators shared by Taylor and replicate designs; each is a ratio of weighted totals."""

    data: pd.DataFrame
    weights: np.ndarray

    # subclasses provide _core(cols, total) -> dict(estimate, se, df, n, reps) and _beta_rows(cols)
    def _domains(self, by) -> tuple[np.ndarray, pd.DataFrame]:
        by = _as_list(by)
        if not by:
            return np.zeros(len(self.data), dtype=np.int64), pd.DataFrame(index=[0])
        _check_columns(self.data, by, "by")
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
        _check_columns(self.data, [name], "analysis variable")
        y = _numeric(self.data, name)
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
        return _Cols(a, b, ok, np.where(inside, codes, 0), len(labels)), rows, labels

    def _estimate(self, cols, total: bool, level: float) -> dict:
        res = self._core(cols, total)
        z = stats.norm.ppf(0.5 + level / 2)
        res["ci_low"] = res["estimate"] - z * res["se"]
        res["ci_high"] = res["estimate"] + z * res["se"]
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
        pairs = [({"variable": v}, y, np.ones_like(y)) for v in _as_list(variables) for y in [self._values(v, na_rm)]]
        cols, rows, labels = self._columns(pairs, by)
        return self._frame(labels, rows, self._estimate(cols, False, level))

    def total(self, variables, by=None, na_rm: bool = False, level: float = 0.95) -> pd.DataFrame:
        """Weighted total(s) (R ``svytotal``)."""
        pairs = [({"variable": v}, y, np.ones_like(y)) for v in _as_list(variables) for y in [self._values(v, na_rm)]]
        cols, rows, labels = self._columns(pairs, by)
        return self._frame(labels, rows, self._estimate(cols, True, level))

    def ratio(self, numerator, denominator, by=None, na_rm: bool = False, level: float = 0.95) -> pd.DataFrame:
        """Ratio of totals Σw·num / Σw·den (R ``svyratio``, combined ratio)."""
        pairs = []
        for num in _as_list(numerator):
            for den in _as_list(denominator):
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
        _check_columns(self.data, [variable], "analysis variable")
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
        p, var, df = res["estimate"], res["se"] ** 2, res["df"].astype(float)
        alpha = 1 - level
        with np.errstate(divide="ignore", invalid="ignore"):
            if ci == "logit":
                if res.get("reps") is not None:
                    lr = np.log(res["reps"] / (1 - res["reps"]))
                    se_logit = np.sqrt(self._rep_var(lr, np.log(p / (1 - p))))
                else:
                    se_logit = np.sqrt(var) / (p * (1 - p))
                t = stats.t.ppf(1 - alpha / 2, df)
                eta = np.log(p / (1 - p))
                return 1 / (1 + np.exp(-(eta - t * se_logit))), 1 / (1 + np.exp(-(eta + t * se_logit)))
            rows = self._beta_rows(cols).astype(float)
            n_eff = p * (1 - p) / var * (stats.t.ppf(alpha / 2, rows - 1) / stats.t.ppf(alpha / 2, df)) ** 2
            low = stats.beta.ppf(alpha / 2, n_eff * p, n_eff * (1 - p) + 1)
            high = stats.beta.ppf(1 - alpha / 2, n_eff * p + 1, n_eff * (1 - p))
        return low, high

    def quantile(
        self, variable, q=0.5, by=None, na_rm: bool = False, level: float = 0.95
    ) -> pd.DataFrame:
        """Weighted quantile(s) with Woodruff interval (R ``svyquantile``, ``qrule="math"``).

        The interval maps a t interval for the share below the estimate back through the weighted
        distribution; se = interval width / (2 t). ``deff`` is not defined for quantiles (NaN).
        """
        qs = [float(v) for v in _as_list(q)]
        if any(not 0 <= v <= 1 for v in qs):
            raise DesignError(f"quantiles must lie in [0, 1], got {qs}")
        w = self.weights
        ys = [(v, self._values(v, na_rm)) for v in _as_list(variable)]
        pairs = [({"variable": v, "quantile": p}, y, np.ones_like(y)) for v, y in ys for p in qs]
        cols, rows, labels = self._columns(pairs, by)
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
                qhat[d, j] = _qrule_math(y[order], cumw, total, meta["quantile"])
        below = np.column_stack([pairs[j][1] for j in range(V)]) <= qhat[cols.dom]
        ind = _Cols(np.where(cols.ok, below, 0.0), cols.ok.astype(float), cols.ok, cols.dom, D)
        res = self._core(ind, False)
        t = stats.t.ppf(1 - (1 - level) / 2, res["df"].astype(float))
        plow = res["estimate"] - t * res["se"]
        phigh = res["estimate"] + t * res["se"]
        low = np.array([_qrule_math(*s, p) for s, p in zip(sorters, plow)])
        high = np.array([_qrule_math(*s, p) for s, p in zip(sorters, phigh)])
        out = {
            "estimate": qhat.ravel(),
            "se": (high - low) / (2 * t),
            "ci_low": low,
            "ci_high": high,
            "df": res["df"],
            "deff": np.full(D * V, np.nan),
            "n": res["n"],
        }
        return self._frame(labels, rows, out)


# ---------------------------------------------------------------------------------------------
# Taylor-linearisation design


@dataclass(frozen=True)
class _Stage:
    unit: np.ndarray  # per row: code of the sampling unit at this stage (global)
    stratum: np.ndarray  # per row: code of the stratum at this stage (global)
    n_units: np.ndarray  # per stratum: units sampled in it (full design)
    popsize: np.ndarray | None  # per row: population units in the stratum (inf = with replacement)
    group: np.ndarray  # per stratum: enclosing unit at the previous stage (0 at stage 1)
    label: list  # per stratum: readable name for messages
    unit_first: np.ndarray  # per unit: its first row
    stratum_first: np.ndarray  # per stratum: its first row


class Design(_Estimators):
    """A survey design for Taylor-linearisation estimates (R ``svydesign``).

    Parameters
    ----------
    df : the sample, one row per responding unit.
    weights : column of sampling weights (inverse inclusion probabilities); optional when ``fpc``
        gives population sizes, then weight = Π over stages N/n (as R).
    strata : stratum column (or one per stage).
    ids : cluster column(s), one per stage, outermost first; None = each row its own PSU.
    fpc : per stage, population sizes (all ≥ 1) or sampling fractions (all ≤ 1).
    nest : cluster ids repeat across strata (R ``nest=TRUE``).
    lonely_psu : rule for strata with one PSU: fail (default), remove, adjust, average, certainty
        (R ``options(survey.lonely.psu=)``).
    """

    _count_positive = True

    def __init__(self, df, weights=None, strata=None, ids=None, fpc=None, nest=False, lonely_psu="fail"):
        if not isinstance(df, pd.DataFrame):
            raise DesignError("the sample must be a pandas DataFrame")
        if lonely_psu not in LONELY_PSU:
            raise DesignError(f"unknown lonely_psu={lonely_psu!r}", hint=f"use one of {', '.join(LONELY_PSU)}")
        ids, strata, fpc = _as_list(ids), _as_list(strata), _as_list(fpc)
        _check_columns(df, ids, "cluster id")
        _check_columns(df, strata, "stratum")
        _check_columns(df, fpc, "fpc")
        if weights is not None:
            _check_columns(df, [weights], "weights")
        n = len(df)
        if n == 0:
            raise DesignError("the sample has no rows")
        n_stages = max(len(ids), 1)
        if fpc and len(fpc) != n_stages:
            raise DesignError(
                f"{len(fpc)} fpc column(s) for {n_stages} stage(s) of ids",
                column=",".join(fpc),
                hint="give one fpc per stage, or only the first-stage ids",
            )
        self.data = df
        self.lonely_psu = lonely_psu
        self.spec = {"weights": weights, "strata": strata, "ids": ids, "fpc": fpc, "nest": nest}
        self._strata_name = ",".join(strata) if strata else "(none)"

        stratum_codes = [_codes(df, [s], "stratum") for s in strata] or [np.zeros(n, dtype=np.int64)]
        id_codes = [_codes(df, [c], "cluster id") for c in ids] or [np.arange(n, dtype=np.int64)]
        units, strat = [], []
        for s in range(n_stages):
            unit = _combine(*id_codes[: s + 1])
            if nest and strata:
                unit = _combine(*stratum_codes[: min(s + 1, len(stratum_codes))], unit)
            units.append(unit)
        if not nest and strata:
            first = stratum_codes[0][_first_rows(units[0])]
            if (stratum_codes[0] != first[units[0]]).any():
                raise DesignError(
                    "clusters are not nested in strata: a cluster id appears in more than one stratum",
                    column=ids[0] if ids else None,
                    hint="pass nest=True if cluster ids restart within each stratum",
                )
        if units[0].max() == 0 and not (nest and strata):
            raise DesignError("the design has only one primary sampling unit", column=ids[0] if ids else None)
        for s in range(n_stages):
            if s == 0:
                strat.append(stratum_codes[0])
            else:
                strat.append(_combine(stratum_codes[min(s, len(stratum_codes) - 1)], units[s - 1]))

        stages = []
        for s in range(n_stages):
            H = int(strat[s].max()) + 1
            first_unit = _first_rows(units[s])
            unit_stratum = strat[s][first_unit]
            n_units = np.bincount(unit_stratum, minlength=H)
            first_row = _first_rows(strat[s])
            group = np.zeros(H, dtype=np.int64) if s == 0 else units[s - 1][first_row]
            if s == 0 and strata:
                label = [str(v) for v in df[strata[0]].to_numpy()[first_row]]
            elif s == 0:
                label = ["(all)"]
            else:
                parent_ids = df[ids[s - 1]].to_numpy()[first_row]
                label = [f"within PSU {v!r}" for v in parent_ids]
            stages.append(_Stage(units[s], strat[s], n_units, None, group, label, first_unit, first_row))
        if fpc:
            stages = self._attach_fpc(df, fpc, stages)
        self._stages = stages
        self._base_weights = self._make_weights(df, weights, stages)
        self.weights = self._base_weights
        self._calibration: tuple[_CalStep, ...] = ()

    @staticmethod
    def _attach_fpc(df, fpc, stages):
        values = [_numeric(df, c) for c in fpc]
        for c, v in zip(fpc, values):
            if np.isnan(v).any():
                raise DesignError("fpc has missing values", column=c)
            if (v <= 0).any():
                raise DesignError("fpc must be positive (population sizes or sampling fractions)", column=c)
        allv = np.concatenate(values)
        is_popsize = bool((allv > 1).any())
        if is_popsize and not (allv >= 1).all():
            raise DesignError(
                "fpc mixes population sizes (>1) and sampling fractions (<1)",
                column=",".join(fpc),
                hint="give all population sizes or all fractions",
            )
        out = []
        for c, v, st in zip(fpc, values, stages):
            sampled = st.n_units[st.stratum].astype(float)
            popsize = v if is_popsize else sampled / v
            small = popsize < sampled
            if small.any():
                r = int(np.flatnonzero(small)[0])
                raise DesignError(
                    f"fpc smaller than the sample: population {popsize[r]:g} but {int(sampled[r])} units "
                    f"sampled in stratum {st.label[st.stratum[r]]} (data row {r})",
                    column=c,
                    hint="fpc is the number of units in the population of the stratum (or the sampling fraction)",
                )
            out.append(_Stage(st.unit, st.stratum, st.n_units, popsize, st.group, st.label, st.unit_first, st.stratum_first))
        return out

    @staticmethod
    def _make_weights(df, weights, stages):
        if weights is None:
            if stages[0].popsize is None:
                return np.ones(len(df))
            w = np.ones(len(df))
            for st in stages:
                w = w * st.popsize / st.n_units[st.stratum]
            return w
        w = _numeric(df, weights)
        if np.isnan(w).any():
            r = int(np.flatnonzero(np.isnan(w))[0])
            raise DesignError(
                f"{int(np.isnan(w).sum())} missing weights (first at data row {r})",
                column=weights,
                hint="every sampled row needs a weight",
            )
        if (w < 0).any() or not np.isfinite(w).all():
            r = int(np.flatnonzero((w < 0) | ~np.isfinite(w))[0])
            raise DesignError(f"negative or infinite weight {w[r]:g} at data row {r}", column=weights)
        return w

    # -- structure ---------------------------------------------------------------------------

    @property
    def calibrated(self) -> bool:
        return bool(self._calibration)

    def _copy(self, weights, calibration) -> Design:
        new = object.__new__(Design)
        new.__dict__.update(self.__dict__)
        new.weights = weights
        new._calibration = calibration
        return new

    def _degf(self, cols: _Cols) -> np.ndarray:
        """PSUs − strata among rows of each column's domain with positive weight (R ``degf``)."""
        st = self._stages[0]
        inset = (cols.ok & (self.weights[:, None] > 0)).astype(float)
        psu = cols.gsum(inset, st.unit, len(st.unit_first)) > 0
        strata = _groupsum(psu.astype(float), st.stratum[st.unit_first], len(st.n_units)) > 0
        return psu.sum(axis=0) - strata.sum(axis=0)

    @property
    def degf(self) -> int:
        """Degrees of freedom of the whole design: PSUs − strata."""
        return int(self._degf(_Cols.whole(len(self.data)))[0])

    # -- variance ----------------------------------------------------------------------------

    def _residualise(self, X: np.ndarray) -> np.ndarray:
        """Replace influence values by their residuals from each calibration (R ``svyrecvar``)."""
        for step in self._calibration:
            if step.kind == "post":
                m, old, psw = step.margins[0], step.old_weights, step.new_weights[0]
                psw = np.where((psw == 0) & (old == 0), 1.0, psw)
                C = len(m.population)
                means = _groupsum(X * (old / psw)[:, None], m.cells, C) / np.bincount(
                    m.cells, weights=old, minlength=C
                )[:, None]
                X = X - means[m.cells] * psw[:, None]
            elif step.kind == "greg":
                q, wcal = step.basis, step.new_weights[0]
                U = X / wcal[:, None]
                X = (U - q @ (q.T @ U)) * wcal[:, None]
            else:
                # R sweeps x <- x - psw * ave(x / psw, margin) ten times, psw = w0 * multiplier of the
                # row's joint cell; the sweeps only move per-joint-cell sums, so run them on those
                joint, w0 = step.joint, step.old_weights
                J = len(step.new_weights[0])
                first = _first_rows(joint)
                n_j = np.bincount(joint, minlength=J).astype(float)
                with np.errstate(divide="ignore", invalid="ignore"):
                    per_weight = X / w0[:, None]
                per_weight[~(w0 > 0)] = 0.0
                S = _groupsum(per_weight, joint, J)
                del per_weight
                shift = np.zeros_like(S)
                margins = [(m.cells[first], len(m.population)) for m in step.margins]
                sums = [(c, _indicator(c, C), np.bincount(c, weights=n_j, minlength=C)[:, None]) for c, C in margins]
                for _ in range(_RAKE_RESIDUAL_SWEEPS):
                    for (c, indicator, count), mult in zip(sums, step.new_weights):
                        ave = _summed(indicator, S / mult[:, None]) / count
                        S = S - (n_j * mult)[:, None] * ave[c]
                        shift = shift + mult[:, None] * ave[c]
                moved = shift[joint]
                moved *= w0[:, None]
                X = np.subtract(X, moved, out=moved)
        return X

    def _variance(self, Z: np.ndarray, cols: _Cols) -> np.ndarray:
        """Variance of the column totals of the influence values Z (n×v, laid out as ``cols``)."""
        if not self.calibrated:
            return self._multistage(Z, cols, cols.ok)
        # calibration residuals spread beyond the domain: work on the dense n × columns matrix, a
        # chunk of columns at a time (never fewer than two columns, so sums keep one order)
        k = cols.D * Z.shape[1]
        m = max(1, -(-k // _CHUNK_COLUMNS))
        var = np.empty(k)
        for lo, hi in [(i * k // m, (i + 1) * k // m) for i in range(m)]:
            X = self._residualise(cols.dense(Z, lo, hi))
            flat = _Cols(X, X, np.ones((len(X), 1), dtype=bool), np.zeros(len(X), dtype=np.int64), 1)
            var[lo:hi] = self._multistage(X, flat, None)
        return var

    def _multistage(self, X: np.ndarray, cols: _Cols, present) -> np.ndarray:
        """Multistage with-/without-replacement variance (R ``multistage``/``onestage``/``onestrat``).

        ``present`` (n×v bool) marks the rows of each column's (sub)design: R visits only strata
        with such rows; None = all rows (a calibrated design keeps every row, as R).
        """
        k = cols.D * X.shape[1]
        total = np.zeros(k)
        prefix = np.ones(len(X))  # product of earlier-stage sampling fractions n/N, per row
        last = len(self._stages) if self._stages[0].popsize is not None else 1
        for s, st in enumerate(self._stages[:last]):
            H = len(st.n_units)
            U = len(st.unit_first)
            first_unit = st.unit_first
            unit_stratum = st.stratum[first_unit]
            if st.popsize is None:
                f_unit = np.ones(U)
            else:
                f_row = np.where(np.isinf(st.popsize), 1.0, (st.popsize - st.n_units[st.stratum]) / st.popsize)
                f_unit = f_row[first_unit]
            nh = st.n_units.astype(float)
            lonely = nh == 1
            uncentred = lonely[unit_stratum] & (self.lonely_psu == "adjust")
            T = cols.gsum(X, st.unit, U)
            means = _groupsum(T, unit_stratum, H) / nh[:, None]
            dev = np.where(uncentred[:, None], T, T - means[unit_stratum])
            scale = np.where(lonely[unit_stratum], f_unit, f_unit * nh[unit_stratum] / np.maximum(nh - 1, 1)[unit_stratum])
            contrib = _groupsum(scale[:, None] * dev**2, unit_stratum, H)  # H×k
            if st.popsize is None:
                zero_f = np.zeros(H, dtype=bool)
            else:
                zero_f = np.bincount(st.stratum, weights=(f_row >= _FPC_ZERO).astype(float), minlength=H) == 0
            contrib[zero_f] = 0.0
            if present is None or (cols.D == 1 and present.all()):
                active = np.ones((H, k), dtype=bool)
            else:
                active = cols.gsum(present.astype(float), st.stratum, H) > 0  # H×k
            lone = lonely & ~zero_f
            if self.lonely_psu == "fail" and (lone[:, None] & active).any():
                h = int(np.flatnonzero((lone[:, None] & active).any(axis=1))[0])
                raise DesignError(
                    f"stratum {st.label[h]} has only one PSU at stage {s + 1}",
                    column=self._strata_name if s == 0 else ",".join(self.spec["ids"][: s + 1]),
                    hint="choose lonely_psu='adjust', 'average', 'certainty' or 'remove', or merge the stratum",
                )
            if self.lonely_psu in ("remove", "certainty"):
                contrib[lone] = 0.0
            contrib = contrib * prefix[st.stratum_first][:, None]
            contrib = np.where(active, contrib, 0.0)
            if self.lonely_psu == "average":
                ok = active & ~lone[:, None]
                G = int(st.group.max()) + 1
                n_active = _groupsum(active.astype(float), st.group, G)
                n_ok = _groupsum(ok.astype(float), st.group, G)
                summed = _groupsum(np.where(ok, contrib, 0.0), st.group, G)
                with np.errstate(divide="ignore", invalid="ignore"):
                    per_group = np.where(n_active > 0, summed * n_active / n_ok, 0.0)
                total += per_group.sum(axis=0)
            else:
                total += contrib.sum(axis=0)
            if st.popsize is not None:
                prefix = prefix * st.n_units[st.stratum] / st.popsize
        return total

    def _core(self, cols: _Cols, total: bool) -> dict:
        w = self.weights[:, None]
        TA = cols.total(w * cols.a)
        if total:
            est = TA
            Z = w * cols.a
        else:
            TB = cols.total(w * cols.b)
            with np.errstate(divide="ignore", invalid="ignore"):
                est = TA / TB
                Z = np.where(cols.ok, w * (cols.a - cols.per_row(est) * cols.b) / cols.per_row(TB), 0.0)
        var = self._variance(Z, cols)
        n = cols.total(cols.ok.astype(float)).astype(np.int64)
        return {"estimate": est, "se": np.sqrt(var), "df": self._degf(cols), "n": n, "reps": None}

    def _beta_rows(self, cols: _Cols):
        """Rows R's ``svyciprop(method="beta")`` counts: the domain's, or all rows once calibrated."""
        n = cols.total(cols.ok.astype(float))
        return np.full(len(n), len(self.data)) if self.calibrated else n

    # -- calibration -------------------------------------------------------------------------

    def poststratify(self, strata, population, partial: bool = False) -> Design:
        """Post-stratify to population counts (R ``postStratify``); returns a new Design.

        ``population``: dict level → count (tuple keys for several columns), a Series, or a
        DataFrame of the stratifying columns plus one count column.
        """
        m = _Margin.build(self.data, self.weights, strata, population, partial)
        totals = np.bincount(m.cells, weights=self.weights, minlength=len(m.population))
        new = self.weights * m.factor(totals)[m.cells]
        recipe = ("post", ((tuple(m.columns), population),), {"partial": partial})
        step = _CalStep("post", (m,), self.weights, (new,), recipe)
        return self._copy(new, self._calibration + (step,))

    def rake(self, margins: dict, tol: float = 1e-10, max_iter: int = 100) -> Design:
        """Rake to several margins by iterative proportional fitting (R ``rake``); returns a new Design.

        ``margins`` maps a column (or tuple of columns) to its population counts. Converged when a
        full sweep moves the joint weighted table by less than ``tol`` × Σ weights.
        """
        built = [_Margin.build(self.data, self.weights, list(_as_list(c)), p) for c, p in margins.items()]
        _check_margin_totals(built, tol)
        joint, new, after = _rake_weights(self.weights, built, tol, max_iter)
        recipe = ("rake", tuple((tuple(_as_list(c)), p) for c, p in margins.items()), {"tol": tol, "max_iter": max_iter})
        step = _CalStep("rake", tuple(built), self.weights, after, recipe, joint=joint)
        return self._copy(new, self._calibration + (step,))

    def calibrate(self, totals: dict) -> Design:
        """Linear (GREG) calibration to population totals (R ``calibrate``, ``calfun="linear"``).

        ``totals``: numeric column → total, categorical column → {level: count}, and optionally
        ``"(Intercept)"`` → population size. g-weights g = 1 + xᵀλ with Σ w g x = totals; the SE
        uses the residuals of the weighted regression on x, as R. Weights may turn negative.
        """
        X, pop, _ = _calibration_matrix(self.data, totals)
        w = self.weights
        T = X.T @ (w[:, None] * X)
        if np.linalg.matrix_rank(T) < X.shape[1]:
            raise DesignError(
                "calibration variables are collinear (e.g. an intercept and every level of a factor)",
                column=",".join(totals), hint="drop '(Intercept)' or one variable",
            )
        g = 1 + X @ np.linalg.solve(T, pop - X.T @ w)
        q, _ = np.linalg.qr(X * np.sqrt(w)[:, None])
        step = _CalStep("greg", (), None, (g * np.sqrt(w),), ("greg", totals, {}), basis=q)
        return self._copy(w * g, self._calibration + (step,))

    # -- replicate designs -------------------------------------------------------------------

    def replicate(self, method: str = "JK1", replicates: int = 50, seed: int | None = None, mse: bool = False):
        """Convert to a replicate-weight design (R ``as.svrepdesign``).

        ``"JK1"`` (unstratified delete-one-PSU jackknife), ``"JKn"`` (stratified jackknife), or
        ``"bootstrap"``: the Rao–Wu rescaling bootstrap drawing n_h − 1 PSUs with replacement in
        each stratum (R ``type="subbootstrap"``; it ignores the fpc, as R does). The jackknives
        use the first-stage fpc, as R. Any post-stratification or raking of this design is redone
        on every replicate.
        """
        st = self._stages[0]
        U = len(st.unit_first)
        first_unit = st.unit_first
        unit_stratum = st.stratum[first_unit]
        nh = st.n_units[unit_stratum].astype(float)
        if st.popsize is None:
            fpc = np.ones(U)
        else:
            N = st.popsize[first_unit]
            fpc = np.where(np.isinf(N), 1.0, (N - nh) / N)
        has_strata = bool(self.spec["strata"])
        if method == "JK1":
            if has_strata:
                raise DesignError("JK1 needs an unstratified design", column=self._strata_name, hint="use 'JKn'")
            if len(np.unique(fpc)) > 1:
                raise DesignError("JK1 needs a single fpc value", column=",".join(self.spec["fpc"]))
            F = np.full((U, U), U / (U - 1))
            np.fill_diagonal(F, 0.0)
            scale, rscales = float(fpc[0] * (U - 1) / U), np.ones(U)
        elif method == "JKn":
            if not has_strata:
                raise DesignError("JKn needs a stratified design", hint="use 'JK1' or 'bootstrap'")
            F, scale, rscales = self._jkn(unit_stratum, nh, fpc)
        elif method == "bootstrap":
            F, scale, rscales = self._rao_wu(unit_stratum, nh, replicates, seed)
        else:
            raise DesignError(f"unknown replicate method {method!r}", hint="use 'JK1', 'JKn' or 'bootstrap'")
        rep = ReplicateDesign._from_parts(
            self.data, self._base_weights, self._base_weights, st.unit, F, scale, rscales, mse, method
        )
        for step in self._calibration:
            kind, parts, options = step.recipe
            if kind == "post":
                (cols, pop), = parts
                rep = rep.poststratify(list(cols), pop, **options)
            elif kind == "greg":
                rep = rep.calibrate(parts)
            else:
                rep = rep.rake({c if len(c) > 1 else c[0]: p for c, p in parts}, **options)
        return rep

    def _lonely_error(self, stratum_code):
        st = self._stages[0]
        return DesignError(
            f"stratum {st.label[stratum_code]} has only one PSU at stage 1",
            column=self._strata_name,
            hint="choose lonely_psu='adjust', 'average', 'certainty' or 'remove', or merge the stratum",
        )

    def _jkn(self, unit_stratum, nh, fpc):
        """Stratified jackknife factors (R ``jknweights``), one replicate per PSU, strata in order."""
        U = len(unit_stratum)
        H = int(unit_stratum.max()) + 1
        order = np.argsort(unit_stratum, kind="stable")  # units grouped by stratum (first-appearance codes)
        lonely = np.bincount(unit_stratum, minlength=H) == 1
        fpc_h = np.zeros(H)
        fpc_h[unit_stratum] = fpc
        if self.lonely_psu == "fail" and (lonely & (fpc_h != 0)).any():
            raise self._lonely_error(int(np.flatnonzero(lonely & (fpc_h != 0))[0]))
        cols, rscales = [], []
        keep = ~lonely[unit_stratum[order]] | (fpc_h[unit_stratum[order]] == 0)
        regular = order[keep]
        same = unit_stratum[:, None] == unit_stratum[regular][None, :]
        F = np.where(same, (nh / np.maximum(nh - 1, 1))[:, None], 1.0)
        F[regular, np.arange(len(regular))] = 0.0
        cols.append(F)
        rscales.append(fpc[regular] * (nh[regular] - 1) / nh[regular])
        if self.lonely_psu == "adjust":
            for h in np.flatnonzero(lonely & (fpc_h != 0)):
                col = np.where(unit_stratum == h, 0.0, H / (H - 1))
                cols.append(col[:, None])
                rscales.append(np.array([(H - 1) / H]))
        F = np.hstack(cols)
        scale = 1.0
        if self.lonely_psu == "average" and F.shape[1] < U:
            scale = U / F.shape[1]
        return F, scale, np.concatenate(rscales)

    def _rao_wu(self, unit_stratum, nh, replicates, seed):
        """Rao–Wu (1988) rescaling bootstrap: n_h − 1 draws with replacement, factor count·n_h/(n_h − 1)."""
        if replicates < 2:
            raise DesignError("the bootstrap needs at least 2 replicates")
        U = len(unit_stratum)
        H = int(unit_stratum.max()) + 1
        n_h = np.bincount(unit_stratum, minlength=H)
        lonely = n_h == 1
        if self.lonely_psu == "fail" and lonely.any():
            raise self._lonely_error(int(np.flatnonzero(lonely)[0]))
        order = np.argsort(unit_stratum, kind="stable")
        start = np.concatenate([[0], np.cumsum(n_h)[:-1]])
        draws_stratum = np.repeat(np.arange(H), np.maximum(n_h - 1, 0))
        rng = np.random.default_rng(seed)
        u = rng.random((replicates, len(draws_stratum)))
        pos = start[draws_stratum] + np.floor(u * n_h[draws_stratum]).astype(np.int64)
        unit = order[pos]  # replicates × draws
        counts = np.bincount((np.arange(replicates)[:, None] * U + unit).ravel(), minlength=replicates * U)
        F = counts.reshape(replicates, U).T * (nh / np.maximum(nh - 1, 1))[:, None]
        F[lonely[unit_stratum]] = 1.0
        return F, 1.0 / (replicates - 1), np.ones(replicates)


# ---------------------------------------------------------------------------------------------
# replicate-weight design


class ReplicateDesign(_Estimators):
    """A design whose variance comes from replicate weights (R ``svrepdesign``).

    Replicate weight of row i in replicate r = base_i × F[g_i, r]: PSU-level factors for
    jackknife/bootstrap designs built here (so 1,000,000 rows × 200 replicates never need an n×R
    array), or the full columns a user supplies.

    User-supplied weights: ``ReplicateDesign(df, weights="wt", repweights=["r1", ...], type="JK1",
    scale=None, rscales=None, mse=False, combined_weights=True)``; defaults for scale as R
    (BRR 1/R, Fay 1/(R(1−rho)²), bootstrap 1/(R−1), JK1 (R−1)/R, other 1; JKn needs ``rscales``).
    """

    _count_positive = False

    def __init__(
        self, df, weights, repweights, type="other", scale=None, rscales=None, mse=False,
        combined_weights=True, rho=None,
    ):
        if isinstance(repweights, str):
            cols = [c for c in df.columns if re.search(repweights, str(c))]
        else:
            cols = list(repweights)
        if not cols:
            raise DesignError("no replicate weight columns given or matched", column=str(repweights))
        _check_columns(df, cols + [weights], "replicate weight")
        w = _numeric(df, weights)
        W = np.column_stack([_numeric(df, c) for c in cols])
        for name, v in [(weights, w)] + list(zip(cols, W.T)):
            if np.isnan(v).any():
                raise DesignError("missing weights", column=name)
            if (v < 0).any():
                raise DesignError("negative weights", column=name)
        R = len(cols)
        if type == "BRR":
            scale = 1.0 / R
        elif type == "Fay":
            if rho is None:
                raise DesignError("type='Fay' needs rho")
            scale = 1.0 / (R * (1 - rho) ** 2)
        elif type == "bootstrap" and scale is None:
            scale = 1.0 / (R - 1)
        elif type == "JK1" and scale is None:
            scale = (R - 1) / R
        elif type == "JKn" and rscales is None:
            raise DesignError("type='JKn' needs rscales", hint="rscales are (n_h − 1)/n_h per replicate")
        elif type not in ("JK1", "JKn", "bootstrap", "other"):
            raise DesignError(f"unknown replicate type {type!r}")
        scale = 1.0 if scale is None else float(scale)
        rs = np.ones(R) if rscales is None else np.broadcast_to(np.asarray(rscales, float), (R,)).copy()
        base = np.ones(len(df)) if combined_weights else w
        rep = self._from_parts(df, w, base, np.arange(len(df)), W, scale, rs, mse, type)
        self.__dict__.update(rep.__dict__)

    @classmethod
    def _from_parts(cls, df, weights, base, groups, factors, scale, rscales, mse, type_):
        new = object.__new__(cls)
        new.data = df
        new.weights = np.asarray(weights, float)
        new._base = np.asarray(base, float)
        new._groups = np.asarray(groups, np.int64)
        new._F = np.asarray(factors, float)
        new.scale = float(scale)
        new.rscales = np.asarray(rscales, float)
        new.mse = bool(mse)
        new.type = type_
        new.calibrated = False
        return new

    def _copy(self, **changes) -> ReplicateDesign:
        new = object.__new__(ReplicateDesign)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new

    @property
    def replicates(self) -> int:
        return self._F.shape[1]

    def replicate_weights(self) -> np.ndarray:
        """The n × R matrix of replicate weights (memory n·R·8 bytes)."""
        return self._base[:, None] * self._F[self._groups]

    def replicate_totals(self, y) -> np.ndarray:
        """Weighted totals of y (n or n×k) under every replicate, R×k (= W.T @ y without forming W)."""
        y = np.asarray(y, float)
        y2 = y[:, None] if y.ndim == 1 else y
        return self._F.T @ _groupsum(self._base[:, None] * y2, self._groups, self._F.shape[0])

    def replicate_variance(self, replicate_estimates, estimate) -> np.ndarray:
        """Variance from replicate estimates (R×k) around ``estimate`` (k), R ``svrVar``."""
        thetas = np.asarray(replicate_estimates, float)
        thetas = thetas[:, None] if thetas.ndim == 1 else thetas
        return _svr_var(thetas, np.atleast_1d(np.asarray(estimate, float)), self.scale, self.rscales, self.mse)

    def _rep_var(self, thetas, estimate):
        return _svr_var(thetas, estimate, self.scale, self.rscales, self.mse)

    def _degf(self, cols: _Cols) -> np.ndarray:
        """Rank of the replicate weights of each column's rows − 1 (R ``degf``: QR rank, tol 1e-5).

        The rank is read from the eigenvalues of the smaller cross-product of the factor rows in
        use (rows scaled by their base weight keep the rank): those above 1e-10 of the largest,
        i.e. singular values above 1e-5 of the largest.
        """
        K = self._F.shape[0]
        used = cols.gsum((cols.ok & (self._base != 0)[:, None]).astype(float), self._groups, K) > 0
        out = np.empty(used.shape[1], dtype=np.int64)
        cache: dict[bytes, int] = {}
        for j in range(used.shape[1]):
            key = np.packbits(used[:, j]).tobytes()
            if key not in cache:
                sub = self._F[used[:, j]]
                if len(sub) == 0:
                    cache[key] = -1
                else:
                    gram = sub.T @ sub if sub.shape[1] <= sub.shape[0] else sub @ sub.T
                    eig = np.linalg.eigvalsh(gram)
                    cache[key] = int((eig > 1e-10 * eig.max()).sum()) - 1
            out[j] = cache[key]
        return out

    @property
    def degf(self) -> int:
        """Degrees of freedom: rank of the replicate weights − 1, as R."""
        return int(self._degf(_Cols.whole(len(self.data)))[0])

    def _rep_totals(self, cols: _Cols, x: np.ndarray) -> np.ndarray:
        return self._F.T @ cols.gsum(self._base[:, None] * x, self._groups, self._F.shape[0])

    def _core(self, cols: _Cols, total: bool) -> dict:
        w = self.weights[:, None]
        TA, RA = cols.total(w * cols.a), self._rep_totals(cols, cols.a)
        if total:
            est, reps = TA, RA
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                est, reps = TA / cols.total(w * cols.b), RA / self._rep_totals(cols, cols.b)
        var = self._rep_var(reps, est)
        n = cols.total(cols.ok.astype(float)).astype(np.int64)
        return {"estimate": est, "se": np.sqrt(var), "df": self._degf(cols), "n": n, "reps": reps}

    def _beta_rows(self, cols: _Cols):
        return cols.total(cols.ok.astype(float))

    # -- calibration of every replicate -------------------------------------------------------

    def _regroup(self, margins: list[_Margin]):
        """Split the factor groups so each is inside one cell of every margin."""
        groups = _combine(self._groups, *[m.cells for m in margins])
        first = _first_rows(groups)
        F = self._F[self._groups[first]]
        base_sum = np.bincount(groups, weights=self._base)
        cells = [m.cells[first] for m in margins]
        return groups, F, base_sum, cells

    def poststratify(self, strata, population, partial: bool = False) -> ReplicateDesign:
        """Post-stratify the full-sample weights and each replicate (R ``postStratify``)."""
        m = _Margin.build(self.data, self.weights, strata, population, partial)
        C = len(m.population)
        w = self.weights * m.factor(np.bincount(m.cells, weights=self.weights, minlength=C))[m.cells]
        groups, F, base_sum, (cells,) = self._regroup([m])
        F = F * m.factor(_groupsum(base_sum[:, None] * F, cells, C))[cells]
        return self._copy(weights=w, _groups=groups, _F=F, calibrated=True)

    def rake(self, margins: dict, tol: float = 1e-10, max_iter: int = 100) -> ReplicateDesign:
        """Rake the full-sample weights and, in lock step, every replicate (R ``rake``)."""
        built = [_Margin.build(self.data, self.weights, list(_as_list(c)), p) for c, p in margins.items()]
        _check_margin_totals(built, tol)
        groups, F, base_sum, cells = self._regroup(built)
        index = {id(m): c for m, c in zip(built, cells)}
        state = {"F": F}

        def step(m):
            c = index[id(m)]
            f = state["F"]
            state["F"] = f * m.factor(_groupsum(base_sum[:, None] * f, c, len(m.population)))[c]

        _, w, _ = _rake_weights(self.weights, built, tol, max_iter, on_step=step)
        return self._copy(weights=w, _groups=groups, _F=state["F"], calibrated=True)

    def calibrate(self, totals: dict) -> ReplicateDesign:
        """Linear (GREG) calibration of the full-sample weights and of each replicate (R ``calibrate``)."""
        X, pop, _ = _calibration_matrix(self.data, totals)
        w = self.weights
        g = 1 + X @ np.linalg.solve(X.T @ (w[:, None] * X), pop - X.T @ w)
        W = self._base[:, None] * self._F[self._groups]  # n × R: calibration moves every row
        M = np.einsum("ir,ip,iq->rpq", W, X, X)
        lam = np.linalg.solve(M, (pop[None, :] - W.T @ X)[:, :, None])[:, :, 0]
        F = W * (1 + X @ lam.T)
        return self._copy(weights=w * g, _base=np.ones(len(w)), _groups=np.arange(len(w)), _F=F, calibrated=True)
