"""Variance of estimated totals: Taylor linearisation over one or more sampling stages (R
``svyrecvar``, ``multistage``, ``onestage``, ``onestrat``), degrees of freedom (R ``degf``), and the
replicate-weight variance (R ``svrVar``).

Estimators hand in influence values Z (n × v, laid out as :class:`Columns`); the variance of their
column totals is the design's variance of the estimates.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from analysis.errors import DesignError
from analysis.survey.calibration import residual_steps
from analysis.survey.columns import Columns
from analysis.survey.groups import groupsum
from analysis.threads import THREADS  # calibrated variance: groups of variables worked on at once

FPC_ZERO = 1e-7  # R survey: a stratum whose fpc factor is below this adds no variance (onestrat)
CHUNK_CELLS = 1 << 24  # calibrated variance: values in the largest units × columns table held at once


def taylor_degf(design, cols: Columns) -> np.ndarray:
    """PSUs − strata among rows of each column's domain with positive weight (R ``degf``)."""
    st = design.stages[0]
    inset = (cols.ok & (design.weights[:, None] > 0)).astype(float)
    psu = cols.gsum(inset, st.unit, len(st.unit_first)) > 0
    strata = groupsum(psu.astype(float), st.stratum[st.unit_first], len(st.n_units)) > 0
    return psu.sum(axis=0) - strata.sum(axis=0)


def variance_stages(design) -> list:
    """The stages whose variance is added: all with an fpc at stage 1, else the first (R)."""
    return design.stages if design.stages[0].popsize is not None else design.stages[:1]


def taylor_variance(design, Z: np.ndarray, cols: Columns, whole: bool = False) -> np.ndarray:
    """Variance of the column totals of the influence values Z (n×v, laid out as ``cols``).

    A domain's variance visits the strata holding its rows, as R's subset does; ``whole`` visits
    every stratum, as R's ``svyby(covmat=TRUE)`` does for the covariance of domain estimates (the
    two differ only under the lonely-PSU rules).
    """
    if not design.calibrated:
        k = cols.D * Z.shape[1]
        return multistage(
            design,
            lambda s, st: cols.gsum(Z, st.unit, len(st.unit_first)),
            k,
            cols,
            None if whole else cols.ok,
        )
    return calibrated_variance(design, Z, cols)


def calibrated_variance(design, Z: np.ndarray, cols: Columns) -> np.ndarray:
    """Variance of a calibrated design (R ``svyrecvar``).

    The influence values' residuals from each calibration spread beyond each column's domain (every
    row stays in a calibrated design), so R works on the dense n × columns matrix. Here each
    calibration is a linear operator acting through its cells' sums
    (:class:`~analysis.survey.calibration.ResidualStep`): a sampling unit's total of the residuals is
    its total of Z minus a units × cells table times the cells' values, and no n × columns matrix is
    formed. Variables are taken a few at a time (at least two), so that the largest units × columns table
    stays near ``CHUNK_CELLS`` values, in ``THREADS`` threads; each column's arithmetic is the same
    whatever the grouping, so the result is the same to the last bit.
    """
    v = Z.shape[1]
    if v == 0:
        return np.zeros(0)
    stages = variance_stages(design)
    steps = residual_steps(design.calibration_steps)
    lefts = [cols.by_domain(step.left) for step in steps]
    # how each earlier step's correction reaches a later step's sums, and each stage's unit totals (the
    # design's own operators are built once and kept by its stages and steps)
    later = [[step.after(earlier) for earlier in steps[:e]] for e, step in enumerate(steps)]
    units = [[step.spread_over(st.unit_sums) for step in steps] for st in stages]
    within = [cols.by_domain(st.unit_sums) for st in stages]  # built once, not once per group of variables
    rows = max([len(st.unit_first) for st in stages] + [step.left.shape[0] for step in steps])
    threads = min(THREADS, v)
    width = max(2, min(CHUNK_CELLS // (cols.D * rows), -(-v // threads)))
    # groups of nearly equal size, each of two columns or more (unless v = 1): a single column would take
    # other steps (numpy's pairwise sum, BLAS's matrix-vector product) and differ in the last bits
    groups = np.array_split(np.arange(v), max(1, v // width))

    def variance_of(group: np.ndarray) -> np.ndarray:
        z = np.ascontiguousarray(Z[:, group[0] : group[-1] + 1])
        k = cols.D * z.shape[1]
        values = []
        for e, step in enumerate(steps):
            S = np.asarray(lefts[e] @ z).reshape(step.left.shape[0], k)
            for through, C in zip(later[e], values):
                S = S - through @ C
            values.append(step.solve(S))

        def unit_totals(s, st):
            T = np.asarray(within[s] @ z).reshape(len(st.unit_first), k)
            for through, C in zip(units[s], values):
                T -= through @ C
            return T

        return multistage(design, unit_totals, k, cols, None).reshape(cols.D, -1)

    if threads > 1 and len(groups) > 1:  # numpy and scipy's sparse products release the GIL
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(variance_of, groups))
    else:
        parts = [variance_of(group) for group in groups]
    return np.concatenate(parts, axis=1).ravel()


def multistage(design, unit_totals, k: int, cols: Columns, present) -> np.ndarray:
    """Multistage with-/without-replacement variance (R ``multistage``/``onestage``/``onestrat``).

    ``unit_totals(s, stage)`` gives the totals (units × k) of the influence values within each
    sampling unit of stage s, as a new array (it is overwritten). ``present`` (n×v bool) marks the
    rows of each column's (sub)design: R visits only strata with such rows; None = all rows (a
    calibrated design keeps every row, as R).
    """
    total = np.zeros(k)
    prefix = np.ones(len(design.weights))  # product of earlier-stage sampling fractions n/N, per row
    for s, st in enumerate(variance_stages(design)):
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
        uncentred = lonely[unit_stratum] & (design.lonely_psu == "adjust")
        T = unit_totals(s, st)  # units × k, worked on in place: deviation, its square, scaled
        means = groupsum(T, unit_stratum, H) / nh[:, None]
        centre = means[unit_stratum]
        centre[uncentred] = 0.0  # a lonely unit under "adjust" deviates from zero (x − 0 is x exactly)
        np.subtract(T, centre, out=T)
        del centre
        scale = np.where(
            lonely[unit_stratum], f_unit, f_unit * nh[unit_stratum] / np.maximum(nh - 1, 1)[unit_stratum]
        )
        np.square(T, out=T)
        np.multiply(scale[:, None], T, out=T)
        contrib = groupsum(T, unit_stratum, H)  # H×k
        if st.popsize is None:
            zero_f = np.zeros(H, dtype=bool)
        else:
            zero_f = np.bincount(st.stratum, weights=(f_row >= FPC_ZERO).astype(float), minlength=H) == 0
        contrib[zero_f] = 0.0
        if present is None or (cols.D == 1 and present.all()):
            active = np.ones((H, k), dtype=bool)
        else:
            active = cols.gsum(present.astype(float), st.stratum, H) > 0  # H×k
        lone = lonely & ~zero_f
        if design.lonely_psu == "fail" and (lone[:, None] & active).any():
            h = int(np.flatnonzero((lone[:, None] & active).any(axis=1))[0])
            raise DesignError(
                f"stratum {st.label[h]} has only one PSU at stage {s + 1}",
                column=design.strata_name if s == 0 else ",".join(design.spec["ids"][: s + 1]),
                hint="choose lonely_psu='adjust', 'average', 'certainty' or 'remove', or merge the stratum",
            )
        if design.lonely_psu in ("remove", "certainty"):
            contrib[lone] = 0.0
        contrib = contrib * prefix[st.stratum_first][:, None]
        contrib = np.where(active, contrib, 0.0)
        if design.lonely_psu == "average":
            ok = active & ~lone[:, None]
            G = int(st.group.max()) + 1
            n_active = groupsum(active.astype(float), st.group, G)
            n_ok = groupsum(ok.astype(float), st.group, G)
            summed = groupsum(np.where(ok, contrib, 0.0), st.group, G)
            with np.errstate(divide="ignore", invalid="ignore"):
                per_group = np.where(n_active > 0, summed * n_active / n_ok, 0.0)
            total += per_group.sum(axis=0)
        else:
            total += contrib.sum(axis=0)
        if st.popsize is not None:
            prefix = prefix * st.n_units[st.stratum] / st.popsize
    return total


def svr_var(thetas: np.ndarray, estimate: np.ndarray, scale: float, rscales: np.ndarray, mse: bool):
    """Replicate variance (R ``svrVar``): scale × Σ rscale_r (θ_r − centre)², per column."""
    centre = estimate if mse else thetas[rscales > 0].mean(axis=0)
    return scale * (rscales[:, None] * (thetas - centre) ** 2).sum(axis=0)
