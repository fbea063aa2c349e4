"""The Taylor-linearisation design (R ``svydesign``): strata, one or more stages of clusters, fpc as
population sizes or sampling fractions per stage, lonely-PSU rules, degrees of freedom; calibration
returns a new design and ``replicate`` converts to a replicate-weight design."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.errors import DesignError
from analysis.survey import replicates as replicates_module
from analysis.survey.calibration import CalStep, Margin, calibration_matrix, check_margin_totals, rake_weights
from analysis.survey.columns import Columns
from analysis.survey.estimators import Estimators
from analysis.survey.groups import (
    as_list,
    check_columns,
    codes_of,
    combine,
    first_rows,
    indicator_matrix,
    numeric,
)
from analysis.survey.variance import taylor_degf, taylor_variance

LONELY_PSU = ("fail", "remove", "adjust", "average", "certainty")


@dataclass(frozen=True)
class Stage:
    unit: np.ndarray  # per row: code of the sampling unit at this stage (global)
    stratum: np.ndarray  # per row: code of the stratum at this stage (global)
    n_units: np.ndarray  # per stratum: units sampled in it (full design)
    popsize: np.ndarray | None  # per row: population units in the stratum (inf = with replacement)
    group: np.ndarray  # per stratum: enclosing unit at the previous stage (0 at stage 1)
    label: list  # per stratum: readable name for messages
    unit_first: np.ndarray  # per unit: its first row
    stratum_first: np.ndarray  # per stratum: its first row

    @functools.cached_property
    def unit_sums(self) -> sparse.csr_matrix:
        """The units × rows matrix summing each sampling unit's rows (built once per design)."""
        return indicator_matrix(self.unit, len(self.unit_first))


class Design(Estimators):
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
            raise DesignError(
                f"unknown lonely_psu={lonely_psu!r}", hint=f"use one of {', '.join(LONELY_PSU)}"
            )
        ids, strata, fpc = as_list(ids), as_list(strata), as_list(fpc)
        check_columns(df, ids, "cluster id")
        check_columns(df, strata, "stratum")
        check_columns(df, fpc, "fpc")
        if weights is not None:
            check_columns(df, [weights], "weights")
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
        self.strata_name = ",".join(strata) if strata else "(none)"

        stratum_codes = [codes_of(df, [s], "stratum") for s in strata] or [np.zeros(n, dtype=np.int64)]
        id_codes = [codes_of(df, [c], "cluster id") for c in ids] or [np.arange(n, dtype=np.int64)]
        units, strat = [], []
        for s in range(n_stages):
            unit = combine(*id_codes[: s + 1])
            if nest and strata:
                unit = combine(*stratum_codes[: min(s + 1, len(stratum_codes))], unit)
            units.append(unit)
        if not nest and strata:
            first = stratum_codes[0][first_rows(units[0])]
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
                strat.append(combine(stratum_codes[min(s, len(stratum_codes) - 1)], units[s - 1]))

        stages = []
        for s in range(n_stages):
            H = int(strat[s].max()) + 1
            first_unit = first_rows(units[s])
            unit_stratum = strat[s][first_unit]
            n_units = np.bincount(unit_stratum, minlength=H)
            first_row = first_rows(strat[s])
            group = np.zeros(H, dtype=np.int64) if s == 0 else units[s - 1][first_row]
            if s == 0 and strata:
                label = [str(v) for v in df[strata[0]].to_numpy()[first_row]]
            elif s == 0:
                label = ["(all)"]
            else:
                parent_ids = df[ids[s - 1]].to_numpy()[first_row]
                label = [f"within PSU {v!r}" for v in parent_ids]
            stages.append(Stage(units[s], strat[s], n_units, None, group, label, first_unit, first_row))
        if fpc:
            stages = self._attach_fpc(df, fpc, stages)
        self.stages = stages
        self.base_weights = self._make_weights(df, weights, stages)
        self.weights = self.base_weights
        self.calibration_steps: tuple[CalStep, ...] = ()

    @staticmethod
    def _attach_fpc(df, fpc, stages):
        values = [numeric(df, c) for c in fpc]
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
                    hint=(
                        "fpc is the number of units in the population of the stratum "
                        "(or the sampling fraction)"
                    ),
                )
            out.append(
                Stage(
                    st.unit,
                    st.stratum,
                    st.n_units,
                    popsize,
                    st.group,
                    st.label,
                    st.unit_first,
                    st.stratum_first,
                )
            )
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
        w = numeric(df, weights)
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
        return bool(self.calibration_steps)

    def _copy(self, weights, calibration) -> Design:
        new = object.__new__(Design)
        new.__dict__.update(self.__dict__)
        new.weights = weights
        new.calibration_steps = calibration
        return new

    def _degf(self, cols: Columns) -> np.ndarray:
        return taylor_degf(self, cols)

    @property
    def degf(self) -> int:
        """Degrees of freedom of the whole design: PSUs − strata."""
        return int(self._degf(Columns.whole(len(self.data)))[0])

    # -- variance ----------------------------------------------------------------------------

    def _variance(self, Z: np.ndarray, cols: Columns) -> np.ndarray:
        return taylor_variance(self, Z, cols)

    def _influence(self, cols: Columns, total: bool) -> tuple[np.ndarray, np.ndarray]:
        """Estimates (D·v) and each row's influence value on its own column (n×v)."""
        w = self.weights[:, None]
        weighted = w * cols.a
        TA = cols.total(weighted)
        if total:
            return TA, weighted
        del weighted
        TB = cols.total(w * cols.b)
        with np.errstate(divide="ignore", invalid="ignore"):
            est = TA / TB
            # w·(a − est·b)/TB outside-in, in one n×v buffer (the same operations as the expression)
            z = cols.per_row_times(est, cols.b)
            np.subtract(cols.a, z, out=z)
            np.multiply(w, z, out=z)
            cols.divide_per_row(z, TB)
            np.copyto(z, 0.0, where=~cols.ok)
            return est, z

    def _core(self, cols: Columns, total: bool) -> dict:
        est, Z = self._influence(cols, total)
        var = self._variance(Z, cols)
        n = cols.total(cols.ok.astype(float)).astype(np.int64)
        return {"estimate": est, "se": np.sqrt(var), "df": self._degf(cols), "n": n, "reps": None}

    def _difference(self, cols: Columns, total: bool, sign: np.ndarray, target: Columns, plus, minus):
        """Estimates and SEs of est[plus] − est[minus] (columns of ``cols``) laid out as ``target``:
        the variance of the signed influence values over the whole design (R ``svyby(covmat=TRUE)``
        then ``svycontrast``), so units in both columns carry their covariance."""
        est, Z = self._influence(cols, total)
        var = taylor_variance(self, Z * sign[:, None], target, whole=True)
        return est[plus] - est[minus], np.sqrt(var)

    def _beta_rows(self, cols: Columns):
        """Rows R's ``svyciprop(method="beta")`` counts: the domain's, or all rows once calibrated."""
        n = cols.total(cols.ok.astype(float))
        return np.full(len(n), len(self.data)) if self.calibrated else n

    # -- calibration -------------------------------------------------------------------------

    def poststratify(self, strata, population, partial: bool = False) -> Design:
        """Post-stratify to population counts (R ``postStratify``); returns a new Design.

        ``population``: dict level → count (tuple keys for several columns), a Series, or a
        DataFrame of the stratifying columns plus one count column.
        """
        m = Margin.build(self.data, self.weights, strata, population, partial)
        totals = np.bincount(m.cells, weights=self.weights, minlength=len(m.population))
        new = self.weights * m.factor(totals)[m.cells]
        recipe = ("post", ((tuple(m.columns), population),), {"partial": partial})
        step = CalStep("post", (m,), self.weights, (new,), recipe)
        return self._copy(new, self.calibration_steps + (step,))

    def rake(self, margins: dict, tol: float = 1e-10, max_iter: int = 100) -> Design:
        """Rake to several margins by iterative proportional fitting (R ``rake``); returns a new Design.

        ``margins`` maps a column (or tuple of columns) to its population counts. Converged when a
        full sweep moves the joint weighted table by less than ``tol`` × Σ weights.
        """
        built = [Margin.build(self.data, self.weights, list(as_list(c)), p) for c, p in margins.items()]
        check_margin_totals(built, tol)
        joint, new, after = rake_weights(self.weights, built, tol, max_iter)
        recipe = (
            "rake",
            tuple((tuple(as_list(c)), p) for c, p in margins.items()),
            {"tol": tol, "max_iter": max_iter},
        )
        step = CalStep("rake", tuple(built), self.weights, after, recipe, joint=joint)
        return self._copy(new, self.calibration_steps + (step,))

    def calibrate(self, totals: dict) -> Design:
        """Linear (GREG) calibration to population totals (R ``calibrate``, ``calfun="linear"``).

        ``totals``: numeric column → total, categorical column → {level: count}, and optionally
        ``"(Intercept)"`` → population size. g-weights g = 1 + xᵀλ with Σ w g x = totals; the SE
        uses the residuals of the weighted regression on x, as R. Weights may turn negative.
        """
        X, pop, _ = calibration_matrix(self.data, totals)
        w = self.weights
        T = X.T @ (w[:, None] * X)
        if np.linalg.matrix_rank(T) < X.shape[1]:
            raise DesignError(
                "calibration variables are collinear (e.g. an intercept and every level of a factor)",
                column=",".join(totals),
                hint="drop '(Intercept)' or one variable",
            )
        g = 1 + X @ np.linalg.solve(T, pop - X.T @ w)
        q, _ = np.linalg.qr(X * np.sqrt(w)[:, None])
        step = CalStep("greg", (), None, (g * np.sqrt(w),), ("greg", totals, {}), basis=q)
        return self._copy(w * g, self.calibration_steps + (step,))

    # -- replicate designs -------------------------------------------------------------------

    def replicate(
        self, method: str = "JK1", replicates: int = 50, seed: int | None = None, mse: bool = False
    ):
        """Convert to a replicate-weight design (R ``as.svrepdesign``).

        ``"JK1"`` (unstratified delete-one-PSU jackknife), ``"JKn"`` (stratified jackknife), or
        ``"bootstrap"``: the Rao–Wu rescaling bootstrap drawing n_h − 1 PSUs with replacement in
        each stratum (R ``type="subbootstrap"``; it ignores the fpc, as R does). The jackknives
        use the first-stage fpc, as R. Any post-stratification or raking of this design is redone
        on every replicate. Methods are listed in ``analysis.survey.replicates.METHODS``.
        """
        return replicates_module.replicate(self, method, replicates, seed, mse)
