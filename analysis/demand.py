"""Demand per team: prevalence, numbers in need, unmet need, willingness, by 村居 and group, with CIs.

All estimates come from one calibrated design: the person table raked to the frame's margins
(:func:`analysis.weights.rake_persons`), so every standard error accounts for the raking.
Household quantities are estimated on the same design by the weight-share identity: a household
total Σ_h w_h y_h, with w_h the mean of its members' weights, equals the person total Σ_i w_i y_h / m_h
(m_h = members on the roster). A household proportion is the ratio of two such totals.

What is estimated (``analysis/needs.yaml`` says which flags, ages and services):

- each team's indicators and ``in_need_<team>`` among its target population (persons or households);
- ``unmet_<team>``: share of those in need whose household receives none of the team's services;
- per service line (household questions): ``need``, ``receiving``, ``would_use`` among all
  households, and ``unmet_need`` = needs and does not receive, among households needing it.

Rows follow the tidy results table of docs/contracts.md. ``drivers`` and ``drivers_replicates`` give
the counts the staffing model needs, the latter as replicate-weight totals W.T @ y.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis import indicators, weights
from analysis.errors import AnalysisError

RESULT_COLUMNS = ["analysis_type", "team", "variable", "value", "universe", "unit", "group", "group_value",
                  "estimate", "se", "ci_low", "ci_high", "n", "n_weighted", "suppressed"]
PERSON_GROUPS = {"cunju": "cunju", "registration": "registration", "sex": "sex", "age_band": "age_band"}
HOUSEHOLD_GROUPS = {"cunju": "cunju", "registration": "hh_registration"}
SERVICE_MEASURES = ("need", "receiving", "would_use")
HOUSEHOLD_KEYS = ["household_id", "cunju", "psu", "hh_registration"]


def estimation_table(households: pd.DataFrame, persons: pd.DataFrame, definitions: dict) -> pd.DataFrame:
    """The person table of stage 02 with need flags, household answers and the household share 1/m_h.

    ``persons`` must carry the weighting columns (``weight_prerake``, ``weight``, design columns);
    household columns (flags, service answers) are joined by ``household_id``.
    """
    households, persons = indicators.add_need_flags(households, persons, definitions)
    household_only = [c for c in households.columns if c not in persons.columns or c == "household_id"]
    table = persons.merge(households[household_only], on="household_id", how="left", validate="many_to_one")
    size = table.groupby("household_id")["household_id"].transform("size")
    return table.assign(hh_share=1.0 / size)


def universe_text(spec: dict) -> str:
    """A team's target group in words, e.g. "persons aged 60+" (the ``universe`` column)."""
    universe = spec.get("universe") or {}
    if spec["unit"] == "households":
        return "households"
    low, high = universe.get("age_min"), universe.get("age_max")
    if low is None and high is None:
        return "persons"
    if high is None:
        return f"persons aged {low}+"
    return f"persons aged {low if low is not None else 0}-{high}"


def variable_specs(table: pd.DataFrame, definitions: dict) -> pd.DataFrame:
    """One row per estimated quantity: team, variable, value, universe, unit and the column estimated.

    ``column`` holds the 0/1 (NaN = out of universe) person-level or household-level variable; household
    variables are later turned into shares y_h / m_h.
    """
    rows = []
    for team, spec in definitions["teams"].items():
        universe = universe_text(spec)
        for flag in spec["indicators"] + [f"in_need_{team}"]:
            rows.append((team, flag, "1", universe, spec["unit"], flag))
        rows.append((team, f"unmet_{team}", "1", f"{universe} in need", spec["unit"], f"unmet_{team}"))
        for service in spec["services"]:
            for measure in SERVICE_MEASURES:
                column = f"{measure}_{team}.{service}"
                if column in table.columns:
                    rows.append((team, f"{measure}_{team}", service, "households", "households", column))
            need, receiving = f"need_{team}.{service}", f"receiving_{team}.{service}"
            if need in table.columns and receiving in table.columns:
                rows.append((team, f"unmet_need_{team}", service, f"households needing {service}",
                             "households", f"unmet_need_{team}.{service}"))
    return pd.DataFrame(rows, columns=["team", "variable", "value", "universe", "unit", "column"])


def add_derived_columns(table: pd.DataFrame, specs: pd.DataFrame) -> pd.DataFrame:
    """Add unmet-need columns and, for household variables, the share columns the estimators use.

    For a household variable ``c``: ``num:c`` = y_h / m_h (0 where out of universe) and
    ``den:c`` = [in universe] / m_h. For a person variable: ``num:c`` = y (NaN out of universe).
    """
    new = {}
    for column in specs.loc[specs["variable"].str.startswith("unmet_need_"), "column"]:
        need, receiving = column.replace("unmet_need_", "need_"), column.replace("unmet_need_", "receiving_")
        need_v = pd.to_numeric(table[need], errors="coerce")
        got = pd.to_numeric(table[receiving], errors="coerce").fillna(0)
        new[column] = ((need_v == 1) & (got == 0)).astype(float).where(need_v == 1)
    for team in specs["team"].unique():
        unmet = f"unmet_{team}"
        if unmet in table.columns:
            new[unmet] = table[unmet].where(table[f"in_need_{team}"] == 1)
    table = table.assign(**new)
    columns = {}
    for row in specs.itertuples():
        y = pd.to_numeric(table[row.column], errors="coerce").astype(float)
        if row.unit == "households":
            columns[f"num:{row.column}"] = (y * table["hh_share"]).fillna(0.0)
            columns[f"den:{row.column}"] = table["hh_share"].where(y.notna(), 0.0)
        else:
            columns[f"num:{row.column}"] = y
    return pd.concat([table, pd.DataFrame(columns, index=table.index)], axis=1)


def _by_groups(unit: str) -> dict[str, str]:
    return PERSON_GROUPS if unit == "persons" else HOUSEHOLD_GROUPS


def _counts(table: pd.DataFrame, row, group_column: str | None) -> pd.DataFrame:
    """Unweighted respondents (persons or households) and weighted universe size per group value."""
    key = pd.Series("all", index=table.index) if group_column is None else table[group_column].astype(str)
    if row.unit == "households":
        inside = table[f"den:{row.column}"] > 0
        n = table.loc[inside].groupby(key[inside])["household_id"].nunique()
        n_weighted = (table["weight"] * table[f"den:{row.column}"]).groupby(key).sum()
    else:
        inside = table[f"num:{row.column}"].notna()
        n = inside.groupby(key).sum()
        n_weighted = table["weight"].where(inside, 0.0).groupby(key).sum()
    return pd.DataFrame({"n": n, "n_weighted": n_weighted}).fillna({"n": 0}).astype({"n": int})


def _tidy(result: pd.DataFrame, group_column: str | None) -> pd.DataFrame:
    """Design output -> columns group_value, estimate, se, ci_low, ci_high, df, deff."""
    result = result.reset_index(drop=True)
    group_value = "all" if group_column is None else result[group_column].astype(str)
    keep = ["estimate", "se", "ci_low", "ci_high", "df", "deff"]
    return result.reindex(columns=keep).assign(group_value=group_value)


def estimate(design, table: pd.DataFrame, specs: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Proportion and total of every spec, overall and by each group, on the calibrated ``design``.

    Person variables: ``mean`` / ``total`` with missing values out of domain. Household variables:
    ``ratio`` of the household-share columns and ``total`` of the numerator. Returns the tidy results
    (contract columns plus ``df`` and ``deff``), before suppression.
    """
    pieces = []
    for row in specs.itertuples():
        for group, group_column in {"all": None, **_by_groups(row.unit)}.items():
            num = f"num:{row.column}"
            by = {} if group_column is None else {"by": group_column}
            if row.unit == "households":
                prop = design.ratio(num, f"den:{row.column}", level=level, **by)
                total = design.total(num, level=level, **by)
            else:
                prop = design.mean(num, na_rm=True, level=level, **by)
                total = design.total(num, na_rm=True, level=level, **by)
            counts = _counts(table, row, group_column)
            for kind, result in (("prop", prop), ("total", total)):
                tidy = _tidy(result, group_column).merge(counts, left_on="group_value", right_index=True,
                                                         how="left")
                pieces.append(tidy.assign(analysis_type=kind, team=row.team, variable=row.variable,
                                          value=row.value, universe=row.universe, unit=row.unit, group=group))
    results = pd.concat(pieces, ignore_index=True)
    return results.reindex(columns=RESULT_COLUMNS[:-1] + ["df", "deff"])


def suppress_small_cells(results: pd.DataFrame, min_n: int) -> pd.DataFrame:
    """Mark rows with fewer than ``min_n`` respondents ``suppressed`` and blank their numbers.

    domain.md §6: estimates from fewer than 10 respondents are not shown in leadership tables
    (Washington State DOH; ONS uses 10). Counts of respondents (``n``) stay, so a reader sees why.
    """
    small = results["n"] < min_n
    blank = ["estimate", "se", "ci_low", "ci_high", "n_weighted", "deff"]
    out = results.assign(suppressed=small)
    out.loc[small, [c for c in blank if c in out.columns]] = np.nan
    return out


def cunju_sample(table: pd.DataFrame, min_households: int) -> pd.DataFrame:
    """Responding households and persons per 村居, with a note where the sample is too small.

    A 村居 with fewer than ``min_households`` responding households gets the note that its estimates
    rest on too few households to be read alone (its CIs are shown; many of its cells are suppressed).
    """
    per = table.groupby("cunju").agg(households=("household_id", "nunique"), persons=("person_id", "size"))
    note = np.where(per["households"] < min_households,
                    f"fewer than {min_households} responding households: read with caution", "")
    return per.assign(note=note).reset_index()


def rank_services(results: pd.DataFrame) -> pd.DataFrame:
    """Service lines ranked by the estimated number of households that would use them, per team."""
    rows = results[(results["analysis_type"] == "total") & (results["group"] == "all")
                   & results["variable"].str.startswith(("would_use_", "need_", "unmet_need_"))
                   & (results["value"] != "1")]
    wide = rows.pivot_table(index=["team", "value"], columns="variable", values="estimate", aggfunc="first")
    wide.columns = [c.rsplit("_", 1)[0] if not c.startswith("unmet_need_") else "unmet_need" for c in wide.columns]
    wide = wide.rename(columns={"would": "would_use"}).reset_index().rename(columns={"value": "service"})
    wide["rank"] = wide.groupby("team")["would_use"].rank(ascending=False, method="first").astype(int)
    return wide.sort_values(["team", "rank"], ignore_index=True)


def driver_columns(specs: pd.DataFrame, definitions: dict) -> pd.DataFrame:
    """Which estimation column gives each staffing driver: team, driver, column (docs/contracts.md)."""
    rows = []
    for team in definitions["teams"]:
        rows.append((team, "in_need", f"num:in_need_{team}"))
        team_specs = specs[(specs["team"] == team) & (specs["value"] != "1")]
        for row in team_specs.itertuples():
            measure = row.variable[: -len(team) - 1]
            if measure in SERVICE_MEASURES:
                rows.append((team, f"{measure}:{row.value}", f"num:{row.column}"))
    return pd.DataFrame(rows, columns=["team", "driver", "column"])


def drivers(table: pd.DataFrame, columns: pd.DataFrame, replicate_weights: np.ndarray | None = None
            ) -> pd.DataFrame:
    """Weighted totals of each driver: with ``weight``, or per replicate as W.T @ Y (vectorised).

    ``replicate_weights`` is the persons × replicates matrix in the row order of ``table``; the result
    then has a ``replicate`` column (1-based).
    """
    y = table[columns["column"]].fillna(0.0).to_numpy(dtype=float)
    if replicate_weights is None:
        return columns[["team", "driver"]].assign(estimate=table["weight"].to_numpy() @ y)
    totals = np.asarray(replicate_weights, dtype=float).T @ y  # replicates × drivers
    n_rep = totals.shape[0]
    return pd.DataFrame({
        "team": np.tile(columns["team"].to_numpy(), n_rep),
        "driver": np.tile(columns["driver"].to_numpy(), n_rep),
        "replicate": np.repeat(np.arange(1, n_rep + 1), len(columns)),
        "estimate": totals.ravel(),
    })


def precision(results: pd.DataFrame, table: pd.DataFrame, definitions: dict, margin: float = 0.05,
              level: float = 0.95) -> pd.DataFrame:
    """Achieved margin of error and design effect of each headline prevalence, and the next wave's size.

    Headline = ``in_need_<team>`` among the team's target group. The respondents a follow-up needs for
    ± ``margin`` at the observed design effect: n = deff · z² · p(1−p) / margin² (z for ``level``, no
    finite-population correction: the target groups are thousands of residents). Households to visit =
    n / (target-group respondents per responding household in this survey).
    """
    z = stats.norm.ppf(0.5 + level / 2)
    head = results[(results["analysis_type"] == "prop") & (results["group"] == "all")
                   & (results["variable"] == "in_need_" + results["team"])].copy()
    households = table["household_id"].nunique()
    head["moe"] = (head["ci_high"] - head["ci_low"]) / 2
    p = head["estimate"]
    head["n_required"] = np.ceil(head["deff"] * z**2 * p * (1 - p) / margin**2).astype("Int64")
    per_household = head["n"] / households
    head["households_required"] = np.ceil(head["n_required"] / per_household).astype("Int64")
    return head[["team", "variable", "universe", "estimate", "se", "moe", "deff", "n", "n_required",
                 "households_required"]].reset_index(drop=True)


def headline_columns(definitions: dict) -> pd.DataFrame:
    """The headline prevalence of each team: ``in_need_<team>`` in its target group."""
    return pd.DataFrame([(team, f"in_need_{team}", spec["unit"]) for team, spec in definitions["teams"].items()],
                        columns=["team", "variable", "unit"])


def point_estimates(table: pd.DataFrame, definitions: dict, weight_columns: dict[str, str | None]) -> pd.DataFrame:
    """Headline prevalences under several weightings (None = unweighted), side by side.

    Shows what each weighting step changes; the planted truth (simulated data) shows which is right.
    """
    heads = headline_columns(definitions)
    out = heads[["team", "variable"]].copy()
    for label, column in weight_columns.items():
        w = np.ones(len(table)) if column is None else table[column].to_numpy(dtype=float)
        values = []
        for row in heads.itertuples():
            if row.unit == "households":
                num = table[f"num:{row.variable}"].to_numpy(dtype=float)
                den = table[f"den:{row.variable}"].to_numpy(dtype=float)
                if column is None:  # one vote per household
                    values.append(num.sum() / den.sum())
                else:
                    values.append((w * num).sum() / (w * den).sum())
            else:
                y = table[f"num:{row.variable}"].to_numpy(dtype=float)
                ok = ~np.isnan(y)
                values.append((w[ok] * y[ok]).sum() / w[ok].sum())
        out[label] = values
    return out


@dataclass(frozen=True)
class DemandRun:
    """Stage 03 outputs: tidy results (suppressed), drivers and their replicates, precision, rankings."""

    results: pd.DataFrame
    drivers: pd.DataFrame
    drivers_replicates: pd.DataFrame
    precision: pd.DataFrame
    ranked: pd.DataFrame
    cunju_sample: pd.DataFrame


def run_demand(households: pd.DataFrame, persons: pd.DataFrame, frame: pd.DataFrame, definitions: dict,
               person_replicates: pd.DataFrame, level: float = 0.95, min_households: int = 30) -> DemandRun:
    """Everything stage 03 writes, from the stage 02 tables and the population frame.

    ``person_replicates`` (person_id + one column per replicate) must list the persons of ``persons``.
    """
    table = estimation_table(households, persons, definitions)
    specs = variable_specs(table, definitions)
    table = add_derived_columns(table, specs)
    design = weights.rake_persons(table, frame)
    raw = estimate(design, table, specs, level=level)
    results = suppress_small_cells(raw, definitions.get("suppression_min_n", 10))
    reps = person_replicates.set_index("person_id").reindex(table["person_id"])
    if reps.isna().any().any():
        raise AnalysisError("replicate weights do not cover every person", file="person_replicates.parquet",
                            column="person_id", hint="rerun stage 02 on the same clean data")
    columns = driver_columns(specs, definitions)
    return DemandRun(
        results=results[RESULT_COLUMNS],
        drivers=drivers(table, columns),
        drivers_replicates=drivers(table, columns, reps.to_numpy()),
        precision=precision(raw, table, definitions, level=level),
        ranked=rank_services(raw),
        cunju_sample=cunju_sample(table, min_households),
    )


def headline(results: pd.DataFrame) -> pd.DataFrame:
    """Per team: share of the target group in need and the number in need, each with its 95% CI."""
    rows = results[(results["group"] == "all") & (results["variable"] == "in_need_" + results["team"])]
    wide = rows.pivot_table(index=["team", "universe", "unit"], columns="analysis_type",
                            values=["estimate", "ci_low", "ci_high"], aggfunc="first")
    wide.columns = [f"{kind}_{stat}" for stat, kind in wide.columns]
    n = rows[rows["analysis_type"] == "prop"].set_index(["team", "universe", "unit"])["n"]
    order = ["prop_estimate", "prop_ci_low", "prop_ci_high", "total_estimate", "total_ci_low", "total_ci_high"]
    return wide[order].join(n).reset_index().round({c: 3 for c in order[:3]} | {c: 0 for c in order[3:]})


def indicator_table(results: pd.DataFrame, definitions: dict) -> pd.DataFrame:
    """Each team's indicators (share of its target group, number of people or households), all of Leliu."""
    rows = results[(results["group"] == "all") & (results["value"] == "1")]
    wide = rows.pivot_table(index=["team", "variable", "universe"], columns="analysis_type",
                            values=["estimate", "ci_low", "ci_high"], aggfunc="first", sort=False)
    wide.columns = [f"{kind}_{stat}" for stat, kind in wide.columns]
    order = ["prop_estimate", "prop_ci_low", "prop_ci_high", "total_estimate", "total_ci_low", "total_ci_high"]
    return wide[order].reset_index().round({c: 3 for c in order[:3]} | {c: 0 for c in order[3:]})


def service_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per team and service line: need, receiving, would use (shares of households) and unmet need."""
    rows = results[(results["group"] == "all") & (results["analysis_type"] == "prop") & (results["value"] != "1")]
    measure = rows["variable"].str.replace(r"_(elderly|disability|youth|family)$", "", regex=True)
    wide = rows.assign(measure=measure).pivot_table(index=["team", "value"], columns="measure",
                                                    values="estimate", aggfunc="first", sort=False)
    return wide.reindex(columns=["need", "receiving", "would_use", "unmet_need"]).reset_index()


def by_group(results: pd.DataFrame, group: str) -> pd.DataFrame:
    """The headline prevalence of every team by ``group``: estimate [CI], n, suppressed."""
    rows = results[(results["group"] == group) & (results["analysis_type"] == "prop")
                   & (results["variable"] == "in_need_" + results["team"])]
    return rows[["team", "group", "group_value", "estimate", "ci_low", "ci_high", "n", "suppressed"]].round(
        {"estimate": 3, "ci_low": 3, "ci_high": 3}).reset_index(drop=True)


def is_simulated(provenance: str | Path) -> bool:
    """True when the clean stage recorded that the data are simulated (``provenance.json``)."""
    path = Path(provenance)
    if not path.exists():
        return False
    return bool(json.loads(path.read_text(encoding="utf-8")).get("simulated", False))
