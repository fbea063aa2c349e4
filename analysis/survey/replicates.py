"""Replicate-weight designs (R ``svrepdesign``, ``as.svrepdesign``): user-supplied replicate weights
and replicates built from a Taylor design — delete-one-PSU jackknives (JK1, JKn) and Rao–Wu's
rescaling bootstrap — with calibration redone on every replicate.

A method of building replicates is a function ``(design, replicates, seed) -> (groups, factors,
scale, rscales)``: ``groups`` gives each row's group (e.g. its PSU, codes 0..G-1), ``factors`` the
G × R multipliers of the base weights, ``scale`` and ``rscales`` the variance constants
(variance = scale × Σ rscales_r (θ_r − θ̄)²). Registered in :data:`METHODS`, it is available as
``Design.replicate(method=...)``.
"""

from __future__ import annotations

import re

import numpy as np

from analysis.errors import DesignError
from analysis.survey.calibration import Margin, calibration_matrix, check_margin_totals, rake_weights
from analysis.survey.columns import Columns
from analysis.survey.estimators import Estimators
from analysis.survey.groups import as_list, check_columns, combine, first_rows, groupsum, numeric
from analysis.survey.mrb import mrb_bootstrap
from analysis.survey.variance import svr_var


def first_stage(design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per first-stage unit (PSU): its stratum code, the PSUs sampled in its stratum n_h, and its
    fpc factor (N_h − n_h)/N_h (1 without fpc or with N_h infinite)."""
    st = design.stages[0]
    unit_stratum = st.stratum[st.unit_first]
    nh = st.n_units[unit_stratum].astype(float)
    if st.popsize is None:
        return unit_stratum, nh, np.ones(len(nh))
    N = st.popsize[st.unit_first]
    return unit_stratum, nh, np.where(np.isinf(N), 1.0, (N - nh) / N)


def lonely_error(design, stratum_code: int) -> DesignError:
    st = design.stages[0]
    return DesignError(
        f"stratum {st.label[stratum_code]} has only one PSU at stage 1",
        column=design.strata_name,
        hint="choose lonely_psu='adjust', 'average', 'certainty' or 'remove', or merge the stratum",
    )


def jk1(design, replicates=None, seed=None):
    """Delete-one-PSU jackknife of an unstratified design (R ``jk1weights``), first-stage fpc as R."""
    unit_stratum, _, fpc = first_stage(design)
    U = len(unit_stratum)
    if design.spec["strata"]:
        raise DesignError("JK1 needs an unstratified design", column=design.strata_name, hint="use 'JKn'")
    if len(np.unique(fpc)) > 1:
        raise DesignError("JK1 needs a single fpc value", column=",".join(design.spec["fpc"]))
    F = np.full((U, U), U / (U - 1))
    np.fill_diagonal(F, 0.0)
    return design.stages[0].unit, F, float(fpc[0] * (U - 1) / U), np.ones(U)


def jkn(design, replicates=None, seed=None):
    """Stratified jackknife (R ``jknweights``), one replicate per PSU, strata in order; each lonely-PSU
    rule as R's, first-stage fpc as R."""
    if not design.spec["strata"]:
        raise DesignError("JKn needs a stratified design", hint="use 'JK1' or 'bootstrap'")
    unit_stratum, nh, fpc = first_stage(design)
    U = len(unit_stratum)
    H = int(unit_stratum.max()) + 1
    order = np.argsort(unit_stratum, kind="stable")  # units grouped by stratum (first-appearance codes)
    lonely = np.bincount(unit_stratum, minlength=H) == 1
    fpc_h = np.zeros(H)
    fpc_h[unit_stratum] = fpc
    if design.lonely_psu == "fail" and (lonely & (fpc_h != 0)).any():
        raise lonely_error(design, int(np.flatnonzero(lonely & (fpc_h != 0))[0]))
    cols, rscales = [], []
    keep = ~lonely[unit_stratum[order]] | (fpc_h[unit_stratum[order]] == 0)
    regular = order[keep]
    same = unit_stratum[:, None] == unit_stratum[regular][None, :]
    F = np.where(same, (nh / np.maximum(nh - 1, 1))[:, None], 1.0)
    F[regular, np.arange(len(regular))] = 0.0
    cols.append(F)
    rscales.append(fpc[regular] * (nh[regular] - 1) / nh[regular])
    if design.lonely_psu == "adjust":
        for h in np.flatnonzero(lonely & (fpc_h != 0)):
            col = np.where(unit_stratum == h, 0.0, H / (H - 1))
            cols.append(col[:, None])
            rscales.append(np.array([(H - 1) / H]))
    F = np.hstack(cols)
    scale = 1.0
    if design.lonely_psu == "average" and F.shape[1] < U:
        scale = U / F.shape[1]
    return design.stages[0].unit, F, scale, np.concatenate(rscales)


def rao_wu(design, replicates=50, seed=None):
    """Rao–Wu (1988) rescaling bootstrap: n_h − 1 PSU draws with replacement per stratum, factor
    count·n_h/(n_h − 1) (R ``type="subbootstrap"``; it ignores the fpc, as R does)."""
    unit_stratum, nh, _ = first_stage(design)
    if replicates < 2:
        raise DesignError("the bootstrap needs at least 2 replicates")
    U = len(unit_stratum)
    H = int(unit_stratum.max()) + 1
    n_h = np.bincount(unit_stratum, minlength=H)
    lonely = n_h == 1
    if design.lonely_psu == "fail" and lonely.any():
        raise lonely_error(design, int(np.flatnonzero(lonely)[0]))
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
    return design.stages[0].unit, F, 1.0 / (replicates - 1), np.ones(replicates)


METHODS = {"JK1": jk1, "JKn": jkn, "bootstrap": rao_wu, "mrbbootstrap": mrb_bootstrap}


def replicate(design, method: str = "JK1", replicates: int = 50, seed: int | None = None, mse: bool = False):
    """The replicate design of a Taylor ``design`` (see ``Design.replicate``); calibrations replayed."""
    if method not in METHODS:
        raise DesignError(
            f"unknown replicate method {method!r}", hint=f"use one of {', '.join(map(repr, METHODS))}"
        )
    groups, F, scale, rscales = METHODS[method](design, replicates, seed)
    base = design.base_weights
    rep = ReplicateDesign._from_parts(design.data, base, base, groups, F, scale, rscales, mse, method)
    for step in design.calibration_steps:
        kind, parts, options = step.recipe
        if kind == "post":
            ((cols, pop),) = parts
            rep = rep.poststratify(list(cols), pop, **options)
        elif kind == "greg":
            rep = rep.calibrate(parts)
        else:
            rep = rep.rake({c if len(c) > 1 else c[0]: p for c, p in parts}, **options)
    return rep


class ReplicateDesign(Estimators):
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
        self,
        df,
        weights,
        repweights,
        type="other",
        scale=None,
        rscales=None,
        mse=False,
        combined_weights=True,
        rho=None,
    ):
        if isinstance(repweights, str):
            cols = [c for c in df.columns if re.search(repweights, str(c))]
        else:
            cols = list(repweights)
        if not cols:
            raise DesignError("no replicate weight columns given or matched", column=str(repweights))
        check_columns(df, cols + [weights], "replicate weight")
        w = numeric(df, weights)
        W = np.column_stack([numeric(df, c) for c in cols])
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
        return self._F.T @ groupsum(self._base[:, None] * y2, self._groups, self._F.shape[0])

    def replicate_variance(self, replicate_estimates, estimate) -> np.ndarray:
        """Variance from replicate estimates (R×k) around ``estimate`` (k), R ``svrVar``."""
        thetas = np.asarray(replicate_estimates, float)
        thetas = thetas[:, None] if thetas.ndim == 1 else thetas
        return svr_var(thetas, np.atleast_1d(np.asarray(estimate, float)), self.scale, self.rscales, self.mse)

    def _rep_var(self, thetas, estimate):
        return svr_var(thetas, estimate, self.scale, self.rscales, self.mse)

    def _degf(self, cols: Columns) -> np.ndarray:
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
        return int(self._degf(Columns.whole(len(self.data)))[0])

    def _rep_totals(self, cols: Columns, x: np.ndarray) -> np.ndarray:
        return self._F.T @ cols.gsum(self._base[:, None] * x, self._groups, self._F.shape[0])

    def _core(self, cols: Columns, total: bool) -> dict:
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

    def _beta_rows(self, cols: Columns):
        return cols.total(cols.ok.astype(float))

    def _difference(self, cols: Columns, total: bool, sign: np.ndarray, target: Columns, plus, minus):
        """Estimates and SEs of est[plus] − est[minus]: the replicate variance of the replicate
        differences (R ``svyby(covmat=TRUE)`` then ``svycontrast`` on a replicate design)."""
        res = self._core(cols, total)
        est = res["estimate"][plus] - res["estimate"][minus]
        return est, np.sqrt(self._rep_var(res["reps"][:, plus] - res["reps"][:, minus], est))

    # -- calibration of every replicate -------------------------------------------------------

    def _regroup(self, margins: list[Margin]):
        """Split the factor groups so each is inside one cell of every margin."""
        groups = combine(self._groups, *[m.cells for m in margins])
        first = first_rows(groups)
        F = self._F[self._groups[first]]
        base_sum = np.bincount(groups, weights=self._base)
        cells = [m.cells[first] for m in margins]
        return groups, F, base_sum, cells

    def poststratify(self, strata, population, partial: bool = False) -> ReplicateDesign:
        """Post-stratify the full-sample weights and each replicate (R ``postStratify``)."""
        m = Margin.build(self.data, self.weights, strata, population, partial)
        C = len(m.population)
        w = self.weights * m.factor(np.bincount(m.cells, weights=self.weights, minlength=C))[m.cells]
        groups, F, base_sum, (cells,) = self._regroup([m])
        F = F * m.factor(groupsum(base_sum[:, None] * F, cells, C))[cells]
        return self._copy(weights=w, _groups=groups, _F=F, calibrated=True)

    def rake(self, margins: dict, tol: float = 1e-10, max_iter: int = 100) -> ReplicateDesign:
        """Rake the full-sample weights and, in lock step, every replicate (R ``rake``)."""
        built = [Margin.build(self.data, self.weights, list(as_list(c)), p) for c, p in margins.items()]
        check_margin_totals(built, tol)
        groups, F, base_sum, cells = self._regroup(built)
        index = {id(m): c for m, c in zip(built, cells)}
        state = {"F": F}

        def step(m):
            c = index[id(m)]
            f = state["F"]
            state["F"] = f * m.factor(groupsum(base_sum[:, None] * f, c, len(m.population)))[c]

        _, w, _ = rake_weights(self.weights, built, tol, max_iter, on_step=step)
        return self._copy(weights=w, _groups=groups, _F=state["F"], calibrated=True)

    def calibrate(self, totals: dict) -> ReplicateDesign:
        """Linear (GREG) calibration of the full-sample weights and of each replicate (R ``calibrate``)."""
        X, pop, _ = calibration_matrix(self.data, totals)
        w = self.weights
        g = 1 + X @ np.linalg.solve(X.T @ (w[:, None] * X), pop - X.T @ w)
        W = self._base[:, None] * self._F[self._groups]  # n × R: calibration moves every row
        M = np.einsum("ir,ip,iq->rpq", W, X, X)
        lam = np.linalg.solve(M, (pop[None, :] - W.T @ X)[:, :, None])[:, :, 0]
        F = W * (1 + X @ lam.T)
        return self._copy(
            weights=w * g, _base=np.ones(len(w)), _groups=np.arange(len(w)), _F=F, calibrated=True
        )
