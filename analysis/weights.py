"""Survey weights: design weights, nonresponse adjustment, trimming, raking, bootstrap replicates.

Steps (each a function; ``build_weights`` runs them in order):

1. Base weight of a household = 1 / (p_psu × p_hh), the inclusion probabilities recorded per sampled
   PSU in ``survey/frame/sample_design.csv`` (stratified two-stage design: residential groups within
   村居, then households).
2. Nonresponse adjustment within weighting classes. The class is the PSU: households issued in the PSU
   (``households_issued``) over households that responded (are in the clean data). A PSU with fewer
   than ``min_respondents`` responding households is pooled with the other such PSUs of its 村居 and,
   if still short, with the whole 村居; classes never cross 村居 (strata).
3. Person weight = the household's weight (every member of a responding household is on the roster).
4. Optional trimming: weights above ``max_ratio`` × the median are cut to that cap and the excess is
   spread proportionally over the other persons of the same 村居, so 村居 totals are unchanged.
5. Raking (iterative proportional fitting) of person weights to the frame's margins — 村居, sex × age band,
   registration, and, when the frame folder has ``elderly_households.csv``, persons living in a household with
   or without a member aged 60+ (households with older members answer more often; the person margins alone
   leave their households over-weighted) — through :meth:`analysis.survey.Design.rake`, which returns a design
   whose standard errors account for the calibration. Household weight = the mean of its members' raked person
   weights, so a household total equals the person-level total of y_h / household size and both tables give
   the same answer.
6. Bootstrap replicate weights that redo steps 1–5: Preston's multistage rescaled bootstrap
   (:mod:`analysis.survey.mrb`, R ``as.svrepdesign(type="mrbbootstrap")``) on the issued sample —
   residential groups within 村居, then every issued household, responding or not, with each stage's
   sampling fraction (n/N of groups in the 村居, issued/households in the group) — gives each issued
   household a factor per replicate; its base weight × factor goes through the same nonresponse classes,
   trimming and raking (each replicate to its own convergence) as the full sample. The spread of the
   replicates is the standard error (variance Σ (θ_r − θ̄)² / (R − 1)): the staffing model reads it as
   the survey's uncertainty. The first-stage fraction uses the 村居's share of groups sampled, the usual
   approximation for the PPS first stage; a 村居 with one sampled group adds no first-stage variance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from analysis.errors import DesignError
from analysis.survey import Design
from analysis.survey.calibration import Margin, rake_weights
from analysis.survey.groups import codes_of, first_rows, groupsum
from analysis.survey.mrb import mrb_bootstrap

STRATUM = "cunju"
PSU = "psu"
RAKE_VARIABLES = {"cunju": "cunju", "sex_age": "sex_age", "rake_registration": "registration"}  # data: frame
COMPOSITION_FILE = "elderly_households.csv"  # optional, beside population_frame.csv
ELDERLY_AGE = 60  # years: a household with a member this old is an "elderly household" (docs/sources.md §1.4)


@dataclass(frozen=True)
class Weights:
    """Everything stage 02 writes (docs/contracts.md): weighted tables, replicates and diagnostics."""

    households: pd.DataFrame
    persons: pd.DataFrame
    person_replicates: pd.DataFrame
    household_replicates: pd.DataFrame
    diagnostics: pd.DataFrame


def base_weights(households: pd.DataFrame, sample_design: pd.DataFrame) -> pd.Series:
    """Design weight 1 / (p_psu × p_hh) of each household, from the recorded selection probabilities."""
    design = sample_design.set_index(PSU)
    if design.index.duplicated().any():
        raise DesignError(
            "a PSU appears twice in the sample design",
            file="sample_design.csv",
            column=PSU,
            row=str(design.index[design.index.duplicated()][0]),
        )
    unknown = ~households[PSU].isin(design.index)
    if unknown.any():
        raise DesignError(
            f"{int(unknown.sum())} households are in PSUs not listed in the sample design "
            f"(first: {households.loc[unknown, PSU].iloc[0]!r})",
            file="sample_design.csv",
            column=PSU,
            hint="every responding household's psu must be a sampled PSU",
        )
    for column in ("p_psu", "p_hh"):  # each stage's probability, not only their product
        stage = households[PSU].map(design[column])
        bad = ~((stage > 0) & (stage <= 1))
        if bad.any():
            raise DesignError(
                f"selection probabilities must be in (0, 1] (PSU {households.loc[bad, PSU].iloc[0]}: "
                f"{stage[bad].iloc[0]})",
                file="sample_design.csv",
                column=column,
            )
    probability = households[PSU].map(design["p_psu"] * design["p_hh"])
    return (1.0 / probability).rename("weight_base")


def nonresponse_classes(
    households: pd.DataFrame, sample_design: pd.DataFrame, min_respondents: int = 3
) -> pd.DataFrame:
    """Weighting classes for the nonresponse adjustment: one row per sampled PSU with its ``class``.

    A PSU is its own class when at least ``min_respondents`` households responded; the PSUs of a 村居
    below that are pooled, and if the pool is still below it the whole 村居 forms one class.
    Columns: psu, cunju, issued, responding, class.
    """
    responding = households.groupby(PSU).size()
    table = sample_design[[PSU, STRATUM, "households_issued"]].rename(columns={"households_issued": "issued"})
    table = table.assign(responding=table[PSU].map(responding).fillna(0).astype(int))
    small = table["responding"] < min_respondents
    pooled = table.loc[small].groupby(STRATUM)["responding"].transform("sum")
    table["class"] = np.where(small, table[STRATUM] + ":pooled", table[PSU])
    short_pool = table[STRATUM].isin(table.loc[small].loc[pooled < min_respondents, STRATUM])
    table.loc[short_pool, "class"] = table.loc[short_pool, STRATUM] + ":all"
    return table


def nonresponse_factors(
    households: pd.DataFrame, sample_design: pd.DataFrame, min_respondents: int = 3
) -> pd.Series:
    """Nonresponse adjustment factor per household: weighted issued / weighted responding in its class.

    Issued and responding households are weighted by their base weights; within a PSU these are equal,
    so a one-PSU class gets issued / responding.
    """
    classes = nonresponse_classes(households, sample_design, min_respondents)
    design = sample_design.set_index(PSU)
    base_per_psu = 1.0 / (design["p_psu"] * design["p_hh"])
    classes = classes.assign(
        issued_w=classes["issued"] * classes[PSU].map(base_per_psu),
        responding_w=classes["responding"] * classes[PSU].map(base_per_psu),
    )
    by_class = classes.groupby("class")[["issued_w", "responding_w"]].sum()
    if (by_class["responding_w"] == 0).any():
        empty = by_class.index[by_class["responding_w"] == 0][0]
        raise DesignError(
            f"weighting class {empty!r} has no responding household",
            file="sample_design.csv",
            hint="a 村居 with no respondents cannot be weighted",
        )
    factor = by_class["issued_w"] / by_class["responding_w"]
    return households[PSU].map(classes.set_index(PSU)["class"]).map(factor).rename("nonresponse_factor")


def trim_weights(weights: pd.Series, groups: pd.Series, max_ratio: float | None) -> pd.Series:
    """Cap weights at ``max_ratio`` × median; spread the excess over the uncapped weights of each group.

    ``groups`` (the 村居) keeps each group's weight total unchanged. One pass; ``None`` returns the
    weights unchanged.
    """
    if max_ratio is None:
        return weights
    codes, _ = pd.factorize(groups)
    trimmed = trim_columns(weights.to_numpy(dtype=float)[:, None], codes, np.ones(len(weights)), max_ratio)
    return pd.Series(trimmed[:, 0], index=weights.index, name=weights.name)


def counted_median(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of each column of ``values`` (n × R) with row i repeated ``counts[i]`` times (as
    ``np.median`` of the repeated column: the mean of the two middle values when the count is even)."""
    order = np.argsort(values, axis=0, kind="stable")
    ranked = np.take_along_axis(values, order, axis=0)
    cumulative = np.cumsum(counts[order], axis=0)
    total = cumulative[-1, 0]
    lower = np.argmax(cumulative > (total - 1) // 2, axis=0)
    upper = np.argmax(cumulative > total // 2, axis=0)
    columns = np.arange(values.shape[1])
    return (ranked[lower, columns] + ranked[upper, columns]) / 2


def trim_columns(weights: np.ndarray, groups: np.ndarray, counts: np.ndarray, max_ratio: float) -> np.ndarray:
    """:func:`trim_weights` on every column of ``weights`` (n × R) at once, each column with its own
    median; row i stands for ``counts[i]`` persons with that weight (a household's members).
    ``groups``: integer codes 0..G−1."""
    size = int(groups.max()) + 1
    cap = max_ratio * counted_median(weights, counts)
    capped = np.minimum(weights, cap)
    excess = groupsum(counts[:, None] * (weights - capped), groups, size)
    free = np.where(capped < cap, capped, 0.0)
    free_total = groupsum(counts[:, None] * free, groups, size)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(free_total[groups] > 0, free / free_total[groups], 0.0)
    return capped + excess[groups] * share


def parse_age_bands(labels) -> pd.DataFrame:
    """Age bands from frame labels such as "0-14", "15–24" or "80+": columns band, low, high (years)."""
    rows = []
    for label in pd.unique(pd.Series(labels).astype(str)):
        closed = re.fullmatch(r"\s*(\d+)\s*[-–~]\s*(\d+)\s*", label)
        open_ = re.fullmatch(r"\s*(\d+)\s*\+\s*", label)
        if closed:
            rows.append((label, int(closed[1]), int(closed[2])))
        elif open_:
            rows.append((label, int(open_[1]), np.inf))
        else:
            raise DesignError(
                f"cannot read age band {label!r}",
                file="population_frame.csv",
                column="age_band",
                hint='write bands as "15-24" or "80+"',
            )
    return pd.DataFrame(rows, columns=["band", "low", "high"]).sort_values("low", ignore_index=True)


def age_band(age: pd.Series, bands: pd.DataFrame) -> pd.Series:
    """The frame's age band of each age in years (NaN outside every band)."""
    age = pd.to_numeric(age, errors="coerce")
    edges = bands["low"].to_numpy()
    position = np.searchsorted(edges, age.fillna(-1).to_numpy(), side="right") - 1
    inside = (position >= 0) & (age.to_numpy() <= bands["high"].to_numpy()[position.clip(0)])
    labels = bands["band"].to_numpy()[position.clip(0)]
    return pd.Series(
        np.where(inside & age.notna().to_numpy(), labels, None), index=age.index, name="age_band"
    )


def add_rake_cells(persons: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``age_band`` (the frame's bands) and the raking cells ``sex_age`` and ``rake_registration``.

    Raking needs every person in a cell. A person whose sex, registration or age the cleaning left
    blank gets, for weighting only, the most common value among respondents with the same roster
    ``relation`` (overall mode if none); ``rake_imputed`` marks them. Their answers are untouched:
    a missing age still keeps the person out of every age-defined target group.

    ``elderly_household`` ("yes"/"no"): whether anyone on the person's roster is aged ``ELDERLY_AGE`` or
    more (a missing age counts by its imputed band's lower bound).
    """
    bands = parse_age_bands(frame["age_band"])
    band = age_band(persons["age"], bands)
    cells = persons[["sex", "registration"]].astype("object").assign(age_band=band.astype("object"))
    imputed = cells.isna().any(axis=1)
    relation = persons["relation"].astype(str)
    for column in cells.columns:
        mode = cells[column].groupby(relation).agg(lambda v: v.mode().iloc[0] if v.notna().any() else None)
        fill = relation.map(mode).fillna(cells[column].mode().iloc[0])
        cells[column] = cells[column].fillna(fill)
    age = pd.to_numeric(persons["age"], errors="coerce")
    old = age.fillna(cells["age_band"].map(bands.set_index("band")["low"])) >= ELDERLY_AGE
    return persons.assign(
        age_band=band,
        sex_age=cells["sex"] + "|" + cells["age_band"],
        rake_registration=cells["registration"],
        rake_imputed=imputed,
        elderly_household=np.where(old.groupby(persons["household_id"]).transform("any"), "yes", "no"),
    )


def frame_margins(
    frame: pd.DataFrame, composition: pd.DataFrame | None = None
) -> dict[str, dict[str, float]]:
    """Population totals for raking, keyed by the person table's raking columns: persons by 村居
    (``cunju``), by sex × age band (``sex_age``), by registration (``rake_registration``), and with
    ``composition`` (:func:`read_composition`) by ``elderly_household``."""
    frame = frame.assign(sex_age=frame["sex"].astype(str) + "|" + frame["age_band"].astype(str))
    margins = {
        var: frame.groupby(column)["population"].sum().astype(float).to_dict()
        for var, column in RAKE_VARIABLES.items()
    }
    if composition is not None:
        totals = composition.set_index("elderly_household")["population"].astype(float).to_dict()
        frame_total = float(frame["population"].sum())
        if abs(sum(totals.values()) - frame_total) > 1e-9 * frame_total:
            raise DesignError(
                f"persons by elderly household add up to {sum(totals.values()):,.0f}, the population frame "
                f"to {frame_total:,.0f}",
                file=COMPOSITION_FILE,
                column="population",
                hint="both files must count the same residents (same date and area)",
            )
        margins["elderly_household"] = totals
    return margins


def read_composition(folder) -> pd.DataFrame | None:
    """``elderly_households.csv`` of a frame folder, or None when the folder has none.

    Two rows, ``elderly_household`` = yes / no, and ``population``: the persons living in a household
    with (yes) or without (no) a member aged ``ELDERLY_AGE`` or more. They must add up to the
    population frame's total (checked when raking).
    """
    path = Path(folder) / COMPOSITION_FILE
    if not path.is_file():
        return None
    table = pd.read_csv(path, dtype={"elderly_household": str})
    missing = {"elderly_household", "population"} - set(table.columns)
    if missing:
        raise DesignError(
            f"missing column {sorted(missing)[0]!r}",
            file=str(path),
            hint="columns: elderly_household,population",
        )
    for row, (category, count) in enumerate(zip(table["elderly_household"], table["population"]), start=2):
        if category not in ("yes", "no"):
            raise DesignError(
                f"category {category!r} is not yes or no", file=str(path), row=row, column="elderly_household"
            )
        if not (isinstance(count, int | float | np.number) and np.isfinite(count) and count >= 0):
            raise DesignError(
                f"population {count!r} is not a count", file=str(path), row=row, column="population"
            )
    if sorted(table["elderly_household"]) != ["no", "yes"]:
        raise DesignError(
            "needs exactly one row for yes and one for no", file=str(path), column="elderly_household"
        )
    return table[["elderly_household", "population"]].astype({"population": float})


def check_rake_cells(persons: pd.DataFrame, margins: dict[str, dict[str, float]]) -> None:
    """Every person must fall in a margin category; every category must have a respondent."""
    for var, totals in margins.items():
        outside = ~persons[var].isin(list(totals))
        if outside.any():
            raise DesignError(
                f"{int(outside.sum())} persons have a {var} not in the population frame "
                f"(first: {persons.loc[outside, var].iloc[0]!r})",
                file="population_frame.csv",
                column=var,
                hint="clean values must match the frame's categories",
            )
        empty = sorted(set(totals) - set(persons[var].unique()))
        if empty:
            raise DesignError(
                f"no respondent in frame category {var}={empty[0]!r}; raking cannot reach it",
                file="population_frame.csv",
                column=var,
                hint="collapse that category with a neighbour in the frame",
            )


def design_for(persons: pd.DataFrame, weights: str = "weight_prerake"):
    """The stratified two-stage design of the person table (strata 村居, PSUs, households as stage 2).

    Stage sizes come from the sample design columns kept on the table (``stratum_psus``,
    ``psu_households``), so the design uses the finite-population correction at both stages (for the
    PPS first stage this is the usual without-replacement approximation). Persons are a census of
    each responding household. A 村居 left with one responding PSU is handled as R's
    ``survey.lonely.psu = "adjust"`` (its PSU deviates from the grand mean).
    """
    return Design(
        persons,
        weights=weights,
        strata=STRATUM,
        ids=[PSU, "household_id"],
        fpc=["stratum_psus", "psu_households"],
        lonely_psu="adjust",
    )


def rake_persons(
    persons: pd.DataFrame, frame: pd.DataFrame, tol: float = 1e-10, composition: pd.DataFrame | None = None
):
    """The person design raked to the frame's margins (a calibrated ``Design``)."""
    margins = frame_margins(frame, composition)
    check_rake_cells(persons, margins)
    return design_for(persons).rake(margins, tol=tol)


def weight_summary(weights: pd.Series, stage: str) -> pd.DataFrame:
    """Distribution of one set of weights and Kish's design effect due to weighting, n·Σw² / (Σw)²."""
    w = weights.to_numpy(dtype=float)
    stats = {
        "n": len(w),
        "sum": w.sum(),
        "min": w.min(),
        "p05": np.quantile(w, 0.05),
        "median": np.median(w),
        "p95": np.quantile(w, 0.95),
        "max": w.max(),
        "max_over_median": w.max() / np.median(w),
        "cv": w.std() / w.mean(),
        "kish_deff": len(w) * (w**2).sum() / w.sum() ** 2,
    }
    return pd.DataFrame(
        {
            "section": "weights",
            "variable": "weight",
            "category": list(stats),
            "stage": stage,
            "value": list(stats.values()),
        }
    )


def margin_table(
    persons: pd.DataFrame,
    frame: pd.DataFrame,
    columns: dict[str, str],
    composition: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Frame totals beside weighted totals of each weight column in ``columns`` (stage -> column)."""
    rows = []
    for var, totals in frame_margins(frame, composition).items():
        target = pd.Series(totals)
        rows.append(
            pd.DataFrame(
                {
                    "section": "margin",
                    "variable": var,
                    "category": target.index,
                    "stage": "frame",
                    "value": target.to_numpy(),
                }
            )
        )
        for stage, column in columns.items():
            got = persons.groupby(var)[column].sum().reindex(target.index, fill_value=0.0)
            rows.append(
                pd.DataFrame(
                    {
                        "section": "margin",
                        "variable": var,
                        "category": target.index,
                        "stage": stage,
                        "value": got.to_numpy(),
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def household_weights_from_persons(
    persons: pd.DataFrame, person_weights: pd.DataFrame | pd.Series, households: pd.DataFrame
) -> pd.DataFrame | pd.Series:
    """Household weight(s) = mean of the members' person weight(s), in the order of ``households``."""
    member = pd.Index(households["household_id"]).get_indexer(persons["household_id"])
    listed = member >= 0
    members = np.bincount(member[listed], minlength=len(households))
    if (members == 0).any():
        raise DesignError(
            "a household has no member on the roster",
            column="household_id",
            hint="cleaning must drop or fix households without persons",
        )
    frame = pd.DataFrame(person_weights)
    values = frame.to_numpy(dtype=float)
    if not listed.all():  # (a copy of every replicate column otherwise)
        values, member = values[listed], member[listed]
    sums = groupsum(values, member, len(households))
    out = pd.DataFrame(sums / members[:, None], index=households.index, columns=frame.columns)
    return out.iloc[:, 0] if isinstance(person_weights, pd.Series) else out


def issued_sample(households: pd.DataFrame, sample_design: pd.DataFrame) -> pd.DataFrame:
    """Every issued household, one row each: the responding ones (in the order of ``households``), then
    per PSU its ``households_issued`` − responding households that did not respond.

    Columns: psu, unit (row number), responded, cunju, stratum_psus, psu_households, p_psu, weight_base.
    """
    design = sample_design.set_index(PSU)
    responding = households[PSU].value_counts().reindex(design.index, fill_value=0)
    missing = design["households_issued"] - responding
    if (missing < 0).any():
        psu = missing.index[missing < 0][0]
        raise DesignError(
            f"PSU {psu!r} has {responding[psu]} responding households but "
            f"{design.loc[psu, 'households_issued']} issued",
            file="sample_design.csv",
            column="households_issued",
            row=str(psu),
            hint="households_issued counts every household selected in the PSU",
        )
    psu = np.concatenate(
        [
            households[PSU].to_numpy(dtype=object),
            np.repeat(design.index.to_numpy(dtype=object), missing.to_numpy()),
        ]
    )
    table = pd.DataFrame(
        {PSU: psu, "unit": np.arange(len(psu)), "responded": np.arange(len(psu)) < len(households)}
    )
    stage = design.loc[table[PSU]]
    columns = [STRATUM, "stratum_psus", "psu_households", "p_psu"]
    return table.assign(
        **{c: stage[c].to_numpy() for c in columns},
        weight_base=1.0 / (stage["p_psu"] * stage["p_hh"]).to_numpy(),
    )


def replicate_factors(issued: pd.DataFrame, replicates: int, seed: int | None) -> np.ndarray:
    """Preston's multistage rescaled bootstrap factor of each issued household (rows × replicates).

    Stage 1: groups within 村居 (fpc: the 村居's groups), stage 2: issued households within groups
    (fpc: the group's households). A group taken with certainty (p_psu = 1) is a stratum of its own
    whose first stage is its households, and the other groups of its 村居 form the stratum
    (n − c sampled of N − c), as certainty PSUs are usually treated.
    """
    certain = issued["p_psu"].to_numpy() >= 1
    takers = issued.loc[certain].groupby(STRATUM)[PSU].nunique()
    unit = issued["unit"].astype(str)
    stages = pd.DataFrame(
        {
            "stratum": np.where(certain, issued[PSU], issued[STRATUM]),
            "first": np.where(certain, issued[PSU] + ":" + unit, issued[PSU]),
            "second": unit,
            "first_size": np.where(
                certain,
                issued["psu_households"],
                issued["stratum_psus"] - issued[STRATUM].map(takers).fillna(0).to_numpy(),
            ),
            "second_size": np.where(certain, 1, issued["psu_households"]),
        }
    )
    design = Design(
        stages,
        strata="stratum",
        ids=["first", "second"],
        fpc=["first_size", "second_size"],
        lonely_psu="certainty",
    )
    groups, factors, _, _ = mrb_bootstrap(design, replicates, seed)
    return factors[groups]


def nonresponse_replicates(issued: pd.DataFrame, factors: np.ndarray, classes: pd.DataFrame) -> np.ndarray:
    """Nonresponse-adjusted weight of each responding household in each replicate (households × R).

    Base weight × replicate factor, times the class's issued over responding households, both weighted
    by base weight × factor (:func:`nonresponse_factors` with every factor 1). ``classes``: the table
    of :func:`nonresponse_classes`.
    """
    codes, labels = pd.factorize(issued[PSU].map(classes.set_index(PSU)["class"]))
    weighted = issued["weight_base"].to_numpy()[:, None] * factors
    responded = issued["responded"].to_numpy()
    issued_w = groupsum(weighted, codes, len(labels))
    responding_w = groupsum(weighted[responded], codes[responded], len(labels))
    if (responding_w <= 0).any():
        cls = labels[int(np.flatnonzero((responding_w <= 0).any(axis=1))[0])]
        raise DesignError(
            f"weighting class {cls!r} has no responding weight in a bootstrap replicate",
            file="sample_design.csv",
            hint="merge the class with a neighbour (min_respondents)",
        )
    return weighted[responded] * (issued_w / responding_w)[codes[responded]]


def rake_replicates(
    persons: pd.DataFrame,
    member: np.ndarray,
    household_weights: np.ndarray,
    margins: dict[str, dict[str, float]],
    tol: float,
    max_iter: int = 100,
) -> np.ndarray:
    """Persons × replicates: each replicate's household weights (households × replicates; ``member``:
    each person's household row) given to the members and raked to ``margins``, every replicate to its own
    convergence (R ``rake``, the full sample's tolerance).

    Raking multiplies every person of a joint cell (one category of every margin) by the same factor, so
    each replicate is raked on its table of joint-cell totals and the factors are then given to the
    persons: the same weights as raking the persons, on a table of a few thousand cells.
    """
    columns = list(margins)
    cell = codes_of(persons, columns, "raking cell")
    cells = persons[columns].iloc[first_rows(cell)].reset_index(drop=True)
    in_cell = sparse.csr_matrix(
        (np.ones(len(persons)), (cell, member)), shape=(len(cells), len(household_weights))
    )
    totals = in_cell @ household_weights  # cells × replicates
    full = np.bincount(cell, weights=persons["weight_prerake"].to_numpy(dtype=float))
    built = [Margin.build(cells, full, [column], population) for column, population in margins.items()]
    factors = np.empty_like(totals)
    for r in range(totals.shape[1]):
        joint, _, after = rake_weights(totals[:, r], built, tol, max_iter)
        factors[:, r] = after[-1][joint]
    return household_weights[member] * factors[cell]


def replicate_weights(
    households: pd.DataFrame,
    persons: pd.DataFrame,
    sample_design: pd.DataFrame,
    frame: pd.DataFrame,
    *,
    trim_max_ratio: float | None,
    min_respondents: int,
    replicates: int,
    seed: int | None,
    tol: float,
    composition: pd.DataFrame | None = None,
) -> np.ndarray:
    """Step 6: person replicate weights (persons × replicates, rows of ``persons``), steps 1–5 redone.

    ``persons`` carries ``household_id``, ``cunju`` and the raking cells (as in :func:`build_weights`)
    and ``weight_prerake`` (the full sample's weight before raking).
    """
    issued = issued_sample(households, sample_design)
    classes = nonresponse_classes(households, sample_design, min_respondents)
    adjusted = nonresponse_replicates(issued, replicate_factors(issued, replicates, seed), classes)
    member_of = pd.Index(households["household_id"]).get_indexer(persons["household_id"])
    if trim_max_ratio is not None:
        members = np.bincount(member_of, minlength=len(households)).astype(float)
        cunju, _ = pd.factorize(households[STRATUM])
        adjusted = trim_columns(adjusted, cunju, members, trim_max_ratio)
    return rake_replicates(persons, member_of, adjusted, frame_margins(frame, composition), tol)


def build_weights(
    households: pd.DataFrame,
    persons: pd.DataFrame,
    sample_design: pd.DataFrame,
    frame: pd.DataFrame,
    *,
    composition: pd.DataFrame | None = None,
    trim_max_ratio: float | None = None,
    min_respondents: int = 3,
    replicates: int = 200,
    seed: int = 20120411,
    tol: float = 1e-10,
) -> Weights:
    """Run steps 1–6 of the module docstring and collect the diagnostics (``replicates=0``: no step 6)."""
    design_cols = sample_design.set_index(PSU)[["stratum_psus", "psu_households"]]
    base = base_weights(households, sample_design)
    factor = nonresponse_factors(households, sample_design, min_respondents)
    hh = households.assign(weight_base=base, nonresponse_factor=factor, weight_nr=base * factor)
    link = hh.set_index("household_id")
    pp = add_rake_cells(persons.drop(columns=[STRATUM, PSU], errors="ignore"), frame)
    pp = pp.assign(
        **{c: pp["household_id"].map(link[c]) for c in (STRATUM, PSU, "weight_base", "weight_nr")},
    )
    pp = pp.assign(
        stratum_psus=pp[PSU].map(design_cols["stratum_psus"]),
        psu_households=pp[PSU].map(design_cols["psu_households"]),
    )
    pp = pp.assign(weight_prerake=trim_weights(pp["weight_nr"], pp[STRATUM], trim_max_ratio))

    raked = rake_persons(pp, frame, tol=tol, composition=composition)
    pp = pp.assign(weight=np.asarray(raked.weights, dtype=float))
    hh = hh.assign(weight=household_weights_from_persons(pp, pp["weight"], hh))

    if replicates > 0:
        matrix = replicate_weights(
            hh,
            pp,
            sample_design,
            frame,
            trim_max_ratio=trim_max_ratio,
            min_respondents=min_respondents,
            replicates=replicates,
            seed=seed,
            tol=tol,
            composition=composition,
        )
    else:
        matrix = np.empty((len(pp), 0))
    names = [f"rep{r + 1:03d}" for r in range(replicates)]
    # the matrix itself, not a copy (640 MB at 150,000 households)
    person_rep = pd.DataFrame(matrix, columns=names, index=pp.index, copy=False)
    household_rep = household_weights_from_persons(pp, person_rep, hh)
    household_rep.insert(0, "household_id", hh["household_id"].to_numpy())
    person_rep.insert(0, "person_id", pp["person_id"].to_numpy())

    diagnostics = pd.concat(
        [
            weight_summary(pp["weight_base"], "base"),
            weight_summary(pp["weight_nr"], "nonresponse"),
            weight_summary(pp["weight_prerake"], "trimmed"),
            weight_summary(pp["weight"], "raked"),
            weight_summary(hh["weight"], "household_final"),
            margin_table(pp, frame, {"before": "weight_prerake", "after": "weight"}, composition),
        ],
        ignore_index=True,
    )
    return Weights(
        hh, pp, person_rep.reset_index(drop=True), household_rep.reset_index(drop=True), diagnostics
    )
