"""Calibration: post-stratification, raking and linear (GREG) calibration (R ``postStratify``,
``rake``, ``calibrate``), and the residual operators through which their variance accounts for
them (R ``svyrecvar``).

Each calibration of a :class:`~analysis.survey.Design` is kept as a :class:`CalStep` (what was
done and how to replay it), so the variance can use the calibration residuals and replicate designs
can recalibrate every replicate.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.errors import DesignError
from analysis.survey.groups import (
    as_list,
    check_columns,
    combine,
    first_rows,
    indicator_matrix,
    numeric,
    summed,
)

RAKE_RESIDUAL_SWEEPS = 10  # R survey's svyrecvar projects raking residuals with 10 sweeps


def population_series(population, columns: list[str]) -> pd.Series:
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


def cells_of(df: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, list]:
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
class Margin:
    """One post-stratification margin: cell code per row and the population count per cell."""

    columns: tuple[str, ...]
    cells: np.ndarray  # per row, 0..C-1
    population: np.ndarray  # per cell

    @classmethod
    def build(cls, df: pd.DataFrame, weights: np.ndarray, columns, population, partial: bool = False):
        columns = as_list(columns)
        check_columns(df, columns, "post-stratification variable")
        codes, levels = cells_of(df, columns)
        pop = population_series(population, columns)
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
        empty = [
            k
            for k, v in pop.items()
            if v > 0 and (k not in set(levels) or sample[list(levels).index(k)] == 0)
        ]
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
class CalStep:
    """A calibration applied to the design, kept so its variance residuals and replicates can follow."""

    kind: str  # "post", "rake" or "greg"
    margins: tuple[Margin, ...]
    old_weights: np.ndarray | None  # post: weights before
    new_weights: tuple[
        np.ndarray, ...
    ]  # post: (after,); rake: per margin, after its last step; greg: (g·√w,)
    recipe: tuple  # (kind, [(columns, population)] or totals, options) to replay on replicate designs
    basis: np.ndarray | None = None  # greg: orthonormal basis of √w·X (R keeps its QR)
    joint: np.ndarray | None = None  # rake: joint cell of each row (new_weights are joint-cell multipliers)

    @functools.cached_property
    def residual(self) -> ResidualStep:
        """This calibration as the variance residuals see it, built once: every estimate on the design (and
        on its copies, which share their calibration steps) reuses it."""
        return _residual_step(self)


def rake_weights(weights, margins, tol, max_iter, on_step=None):
    """Iterative proportional fitting as R ``rake``: convergence when the joint table of all margin
    variables moves by less than ``tol`` × Σ weights in one sweep (R's ``epsilon < 1`` rule; the margin
    total instead when it is smaller).

    Every row of a joint cell (a combination of margin levels) gets the same multiplier, so the
    fitting runs on the joint table and touches the rows once. Returns the joint cell of each row,
    the raked weights and, per margin, the joint-cell multiplier after its step in the last sweep.
    """
    joint = combine(*[m.cells for m in margins])
    size = int(joint.max()) + 1
    first = first_rows(joint)
    cells = [m.cells[first] for m in margins]
    base = np.bincount(joint, weights=weights, minlength=size)
    # R measures the move against Σ weights; a single wild weight (1e8) would then end the fitting early,
    # so the smaller of Σ weights and the margin total sets the scale (the same when weights are sane).
    eps = tol * min(weights.sum(), margins[0].population.sum())
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
                        hint=(
                            "a combination of levels needed by the margins has no sampled rows; "
                            "collapse levels"
                        ),
                    )
            return joint, weights * mult[joint], tuple(after)
        old = new
    names = "; ".join(",".join(m.columns) for m in margins)
    raise DesignError(
        f"raking did not converge to tol={tol} in {max_iter} iterations",
        column=names,
        hint="check that the margins describe the same population total, or raise max_iter",
    )


def calibration_matrix(df: pd.DataFrame, totals: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
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
        check_columns(df, [name], "calibration variable")
        if isinstance(total, (dict, pd.Series)):
            codes, labels = cells_of(df, [name])
            pop = population_series(total, [name])
            missing = [lab for lab in labels if lab not in pop.index]
            if missing:
                raise DesignError(f"level {missing[0]!r} has no population count", column=name)
            for i, lab in enumerate(labels):
                cols.append((codes == i).astype(float))
                pops.append(float(pop[lab]))
                names.append(f"{name}={lab}")
        else:
            x = numeric(df, name)
            if np.isnan(x).any():
                raise DesignError("calibration variable has missing values", column=name)
            cols.append(x)
            pops.append(float(total))
            names.append(name)
    return np.column_stack(cols), np.array(pops), names


def check_margin_totals(margins: list[Margin], tol: float) -> None:
    totals = np.array([m.population.sum() for m in margins])
    if np.max(np.abs(totals - totals[0])) > max(tol, 1e-9) * totals[0]:
        names = ", ".join(f"{','.join(m.columns)}={t:g}" for m, t in zip(margins, totals))
        raise DesignError(
            f"raking margins have different population totals ({names})",
            hint="raking can only converge when every margin sums to the same total",
        )


@dataclass(frozen=True)
class ResidualStep:
    """One calibration as its variance residuals see it (R ``svyrecvar``): every row's influence value
    x_i loses ``right[i] · (C_j)``, where C = ``solve(left @ x)``.

    ``left`` (m × n) sums the values into the calibration's m cells (post-stratification, raking) or
    basis columns (GREG); ``right`` (n × m) spreads the cell values back over the rows. Because the
    step is linear in x and acts through m sums, the variance can follow it on group totals and never
    form the residuals row by row.
    """

    left: sparse.csr_matrix
    right: sparse.csr_matrix
    solve: Callable[[np.ndarray], np.ndarray]
    # products with the design's other operators, kept: id(operand) -> (operand, product)
    products: dict = field(default_factory=dict, compare=False, repr=False)

    def after(self, earlier: ResidualStep) -> sparse.csr_matrix:
        """``left @ earlier.right``: how an earlier calibration's correction reaches this one's sums."""
        return self._kept(earlier, lambda: self.left @ earlier.right)

    def spread_over(self, units: sparse.csr_matrix) -> sparse.csr_matrix:
        """``units @ right``: the cell values' spread summed within sampling units (``units``: a units × n
        sums matrix, kept by its owner)."""
        return self._kept(units, lambda: units @ self.right)

    def _kept(self, operand, build: Callable[[], sparse.csr_matrix]) -> sparse.csr_matrix:
        kept = self.products.get(id(operand))
        if kept is None or kept[0] is not operand:
            kept = self.products[id(operand)] = (operand, build())
        return kept[1]


def residual_steps(steps: tuple[CalStep, ...]) -> list[ResidualStep]:
    """The residual operators of a design's calibrations, in the order they were applied."""
    return [step.residual for step in steps]


def _residual_step(step: CalStep) -> ResidualStep:
    if step.kind == "post":
        # x − psw · Σ_cell x·old/psw / Σ_cell old
        m, old, psw = step.margins[0], step.old_weights, step.new_weights[0]
        psw = np.where((psw == 0) & (old == 0), 1.0, psw)
        C = len(m.population)
        count = np.bincount(m.cells, weights=old, minlength=C)[:, None]
        return ResidualStep(
            indicator_matrix(m.cells, C, old / psw),
            indicator_matrix(m.cells, C, psw).T.tocsr(),
            lambda S: S / count,
        )
    if step.kind == "greg":
        # x − wcal · q qᵀ (x / wcal): q an orthonormal basis of √w·X
        q, wcal = step.basis, step.new_weights[0]
        return ResidualStep(
            sparse.csr_matrix((q / wcal[:, None]).T), sparse.csr_matrix(q * wcal[:, None]), lambda S: S
        )
    # raking: R sweeps x <- x - psw * ave(x / psw, margin) ten times, psw = w0 * multiplier of the row's
    # joint cell; the sweeps only move per-joint-cell sums S of x / w0, so they run on those
    joint, w0 = step.joint, step.old_weights
    J = len(step.new_weights[0])
    first = first_rows(joint)
    n_j = np.bincount(joint, minlength=J).astype(float)
    sums = [
        (c, indicator_matrix(c, C), np.bincount(c, weights=n_j, minlength=C)[:, None])
        for c, C in ((m.cells[first], len(m.population)) for m in step.margins)
    ]

    def sweeps(S: np.ndarray) -> np.ndarray:
        shift = np.zeros_like(S)
        for _ in range(RAKE_RESIDUAL_SWEEPS):
            for (c, indicator, count), mult in zip(sums, step.new_weights):
                ave = summed(indicator, S / mult[:, None]) / count
                S = S - (n_j * mult)[:, None] * ave[c]
                shift = shift + mult[:, None] * ave[c]
        return shift

    per_weight = np.divide(1.0, w0, out=np.zeros(len(w0)), where=w0 > 0)
    return ResidualStep(
        indicator_matrix(joint, J, per_weight), indicator_matrix(joint, J, w0).T.tocsr(), sweeps
    )
