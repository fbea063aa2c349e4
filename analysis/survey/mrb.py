"""Preston's multistage rescaled bootstrap (R ``survey``: ``as.svrepdesign(type="mrbbootstrap")``).

Preston, J. (2009), "Rescaled bootstrap for stratified multistage sampling", Survey Methodology
35(2), 227–234; R ``survey``'s ``mrbweights``. Unlike Rao–Wu's bootstrap, which treats the first
stage as drawn with replacement, it keeps every stage's sampling fraction, so a large first-stage
fraction does not inflate the variance.

In every replicate and at every stage, each stratum (at stage s ≥ 2: the units sampled inside one
unit of stage s − 1) keeps a simple random half-sample of m = ⌊n/2⌋ of its n sampled units, without
replacement. With f the stratum's sampling fraction n/N and c_s = f_1 ⋯ f_{s−1} the fractions of the
stages above, a final-stage unit's replicate factor is

    1 + Σ_s a_s · λ_s · (k_s · n/m − 1),   λ_s = √(c_s · m · (1 − f_s) / (n − m)),
    a_s = Π_{t<s} k_t · √(n_t/m_t),

where k_s = 1 if the unit's stage-s ancestor is in the half-sample. The variance is
Σ_r (θ_r − θ̄)² / (R − 1) (R: ``scale`` 1, ``rscales`` 1/(R − 1)); for a total its expectation over
replicates is the unbiased variance of stratified multistage sampling without replacement, fpc at
every stage (R ``svydesign`` with fpc at both stages). As R: a stratum with one sampled unit
(m = 0) adds nothing at its stage or below; without fpc only the first stage is used, with f = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.errors import DesignError

CHUNK = 32  # replicates drawn and built together (memory: final-stage units × CHUNK per array)


@dataclass(frozen=True)
class _Level:
    """One stage seen from the final-stage units: for each, its ancestor at this stage and constants."""

    unit_stratum: np.ndarray  # per unit of this stage: its stratum code
    ancestor: np.ndarray  # per final-stage unit: code of its unit at this stage
    lam: np.ndarray  # per final-stage unit: λ_s (0 when m = 0)
    gain: np.ndarray  # per final-stage unit: n/m (0 when m = 0)
    carry: np.ndarray  # per final-stage unit: √(n/m) (0 when m = 0)


def levels(design) -> tuple[np.ndarray, list[_Level]]:
    """Each row's final-stage unit and, per stage, what the factors need (R ``mrbweights`` setup)."""
    stages = design.stages if design.stages[0].popsize is not None else design.stages[:1]
    leaf_rows = stages[-1].unit_first
    out, cumulative = [], np.ones(len(leaf_rows))
    for st in stages:
        unit_stratum = st.stratum[st.unit_first]
        n = st.n_units[st.stratum[leaf_rows]].astype(float)
        m = np.floor(n / 2)
        popsize = np.full(len(leaf_rows), np.inf) if st.popsize is None else st.popsize[leaf_rows]
        f = n / popsize
        some = m > 0
        safe_m = np.where(some, m, 1.0)
        lam = np.where(some, np.sqrt(cumulative * safe_m * (1 - f) / np.where(some, n - m, 1.0)), 0.0)
        out.append(
            _Level(
                unit_stratum,
                st.unit[leaf_rows],
                lam,
                np.where(some, n / safe_m, 0.0),
                np.where(some, np.sqrt(n / safe_m), 0.0),
            )
        )
        cumulative = cumulative * f
    return stages[-1].unit, out


def half_samples(unit_stratum: np.ndarray, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Units × replicates, True where the replicate keeps the unit: in every stratum a simple random
    sample of ⌊n/2⌋ of its n units (a uniform random key per unit, the smallest keys kept; of equal keys,
    the earlier unit)."""
    U = len(unit_stratum)
    n = np.bincount(unit_stratum)
    order = np.argsort(unit_stratum, kind="stable")  # units grouped by stratum
    grouped = unit_stratum[order]
    place = np.arange(U) - np.concatenate([[0], np.cumsum(n)[:-1]])[grouped]  # place inside its stratum
    first = place < (n // 2)[grouped]
    keys = grouped + rng.random((replicates, U))  # sorting a row keeps the strata's blocks in order
    kept = np.zeros((U, replicates), dtype=bool)
    width = int(n.max()) if U else 0
    if width < 2:  # strata of one unit keep none (the keys are drawn all the same, for the next stages)
        return kept
    if len(n) * width <= 2 * U:  # strata of similar size: the cut-off key of each, from a table of strata
        table = np.full((replicates, len(n), width), np.inf)
        table[:, grouped, place] = keys
        table.sort(axis=2)
        half = n // 2
        cut = np.where(half > 0, table[:, np.arange(len(n)), np.maximum(half - 1, 0)], -np.inf)
        del table
        below = keys <= cut[:, grouped]
        kept[order] = below.T
        # a key equal to its stratum's cut-off would keep one unit too many: that replicate is sorted
        redo = np.flatnonzero(below.sum(axis=1) != half.sum())
    else:
        redo = np.arange(replicates)
    for r in redo:  # the first ⌊n/2⌋ places of each block in a stable sort of the keys
        kept[:, r] = False
        kept[order[np.argsort(keys[r], kind="stable")[first]], r] = True
    return kept


def factors(parts: list[_Level], kept: list[np.ndarray]) -> np.ndarray:
    """Final-stage units × replicates factors from the half-samples ``kept`` (one units × replicates
    boolean array per stage), as R ``mrbweights``."""
    total = np.zeros((len(parts[0].ancestor), kept[0].shape[1]))
    carry = np.ones_like(total)
    step = np.empty_like(total)  # the same operations as total += carry·(λ·(gain·k − 1)), in place
    for level, keep in zip(parts, kept):
        k = keep[level.ancestor]
        np.multiply(level.gain[:, None], k, out=step)
        step -= 1.0
        np.multiply(level.lam[:, None], step, out=step)
        np.multiply(carry, step, out=step)
        total += step
        np.multiply(level.carry[:, None], k, out=step)
        carry *= step
    total += 1.0
    return total


def mrb_bootstrap(design, replicates: int = 50, seed: int | None = None):
    """Replicate groups (each row's final-stage unit), factors, scale and rscales of ``design``."""
    if replicates < 2:
        raise DesignError("the bootstrap needs at least 2 replicates")
    first = design.stages[0]
    lonely = first.n_units == 1
    if design.lonely_psu == "fail" and lonely.any():
        h = int(np.flatnonzero(lonely)[0])
        raise DesignError(
            f"stratum {first.label[h]} has only one PSU at stage 1",
            column=design.strata_name,
            hint="choose another lonely_psu rule (the mrbbootstrap gives such a PSU no variance), "
            "or merge the stratum",
        )
    groups, parts = levels(design)
    rng = np.random.default_rng(seed)
    F = np.empty((len(parts[0].ancestor), replicates))
    for lo in range(0, replicates, CHUNK):
        size = min(CHUNK, replicates - lo)
        kept = [half_samples(level.unit_stratum, size, rng) for level in parts]
        F[:, lo : lo + size] = factors(parts, kept)
    return groups, F, 1.0, np.full(replicates, 1.0 / (replicates - 1))
