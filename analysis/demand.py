"""Demand per team: prevalence, numbers in need, unmet need, willingness, by 村居 and group, with CIs.

All estimates come from one calibrated design: the weights stage's person weights with their raking to
the frame's margins (:func:`stored_design`), so every standard error accounts for the raking.
Household quantities are estimated on the same design by the weight-share identity: a household
total Σ_h w_h y_h, with w_h the mean of its members' weights, equals the person total Σ_i w_i y_h / m_h
(m_h = members on the roster). A household proportion is the ratio of two such totals.

What is estimated (``analysis/needs.yaml`` says which flags, ages and services):

- each team's indicators and ``in_need_<team>`` among its target population (persons or households);
- ``unmet_<team>``: share of those in need whose household receives none of the team's services;
- ``need_any_<team>``: share of households needing at least one of the team's services (any option of
  the ``need_<team>`` question, "other" included): the stated demand;
- per service line (household questions): ``need``, ``receiving``, ``would_use`` among all
  households, and ``unmet_need`` = needs and does not receive, among households needing it.

The estimates come from :mod:`analysis.analyse` running a list of analyses generated from the need
definitions (:func:`needs_loa`; the bundled definitions' list is ``analysis/needs_loa.csv``). Each
estimated quantity is one column of the estimation table named ``<team>:<variable>`` (e.g.
``elderly:adl_dependent``: the flag among the team's target group, blank outside it). A person
variable's share is a ``mean`` and its number a ``total``; a household variable's column holds
y_h / m_h, its share is a ``ratio`` over ``hh_share`` (1 / m_h) among the households answering and
its number a ``total``. Shares get the logit interval, numbers the Wald interval, both with t on the
domain's degrees of freedom (a 村居 with two sampled residential groups has 1).

Rows follow the tidy results table of docs/contracts.md, plus ``df``. ``drivers`` and
``drivers_replicates`` give the counts the staffing model needs, the latter as replicate-weight totals
W.T @ y.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy import special

from analysis import analyse, config, disclosure, indicators, weights
from analysis.errors import AnalysisError

NEEDS_LOA_FILE = Path(__file__).with_name("needs_loa.csv")

RESULT_COLUMNS = [
    "analysis_type",
    "team",
    "variable",
    "value",
    "universe",
    "unit",
    "group",
    "group_value",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "n",
    "n_weighted",
    "suppressed",
]
PERSON_GROUPS = {"cunju": "cunju", "registration": "registration", "sex": "sex", "age_band": "age_band"}
HOUSEHOLD_GROUPS = {"cunju": "cunju", "registration": "hh_registration"}  # household registration type
SERVICE_MEASURES = ("need", "receiving", "would_use")


def estimation_table(households: pd.DataFrame, persons: pd.DataFrame, definitions: dict) -> pd.DataFrame:
    """The person table of stage 02 with need flags, household answers and the household share 1/m_h.

    ``persons`` must carry the weighting columns (``weight_prerake``, ``weight``, design columns);
    household columns (flags, service answers) are joined by ``household_id``. A blank breakdown
    value (e.g. an age the cleaning removed) becomes the group "unknown".
    """
    households, persons = indicators.add_need_flags(households, persons, definitions)
    household_only = [c for c in households.columns if c not in persons.columns or c == "household_id"]
    table = persons.merge(households[household_only], on="household_id", how="left", validate="many_to_one")
    size = table.groupby("household_id")["household_id"].transform("size")
    groups = {
        c: table[c].astype("object").fillna("unknown")
        for c in {*PERSON_GROUPS.values(), *HOUSEHOLD_GROUPS.values()}
        if c in table.columns
    }
    return table.assign(hh_share=1.0 / size, **groups)


def prepare(
    households: pd.DataFrame, persons: pd.DataFrame, definitions: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The estimation table with every derived column, and the specs of what is estimated."""
    table = estimation_table(households, persons, definitions)
    specs = variable_specs(table, definitions)
    return add_derived_columns(table, specs, definitions), specs


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


def variable_specs(table: pd.DataFrame | None, definitions: dict) -> pd.DataFrame:
    """One row per estimated quantity: team, variable, value, universe, unit, the source ``column`` and
    ``key`` = "<team>:<column>", the name of its estimation column (a flag such as ``wg_disability``
    serves two teams with two universes).

    Service lines whose columns ``table`` lacks are left out; ``table=None`` lists every line
    ``needs.yaml`` names (the instrument's columns).
    """

    def present(*columns: str) -> bool:
        return table is None or all(c in table.columns for c in columns)

    rows = []
    for team, spec in definitions["teams"].items():
        universe = universe_text(spec)
        for flag in spec["indicators"] + [f"in_need_{team}"]:
            rows.append((team, flag, "1", universe, spec["unit"], flag))
        rows.append((team, f"unmet_{team}", "1", f"{universe} in need", spec["unit"], f"unmet_{team}"))
        if table is None or any(c.startswith(f"need_{team}.") for c in table.columns):
            rows.append((team, f"need_any_{team}", "1", "households", "households", f"need_any_{team}"))
        for service in spec["services"]:
            for measure in SERVICE_MEASURES:
                if present(f"{measure}_{team}.{service}"):
                    rows.append(
                        (
                            team,
                            f"{measure}_{team}",
                            service,
                            "households",
                            "households",
                            f"{measure}_{team}.{service}",
                        )
                    )
            if present(f"need_{team}.{service}", f"receiving_{team}.{service}"):
                rows.append(
                    (
                        team,
                        f"unmet_need_{team}",
                        service,
                        f"households needing {service}",
                        "households",
                        f"unmet_need_{team}.{service}",
                    )
                )
    specs = pd.DataFrame(rows, columns=["team", "variable", "value", "universe", "unit", "column"])
    return specs.assign(key=specs["team"] + ":" + specs["column"])


def add_derived_columns(table: pd.DataFrame, specs: pd.DataFrame, definitions: dict) -> pd.DataFrame:
    """Add unmet-need and stated-demand columns and one estimation column per spec, named by its ``key``.

    Person variables are blank outside the team's universe (``needs.yaml``); household variables hold
    y_h / m_h (``hh_share`` = 1 / m_h), blank where the household did not answer.
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
        options = [c for c in table.columns if c.startswith(f"need_{team}.")]
        if options:  # any option ticked, "other" included; blank when the question was not answered
            ticked = table[options].apply(pd.to_numeric, errors="coerce")
            new[f"need_any_{team}"] = (
                (ticked == 1).any(axis=1).astype(float).where(ticked.notna().any(axis=1))
            )
    table = table.assign(**new)
    inside = {
        team: indicators.in_universe(table, spec.get("universe") or {})
        for team, spec in definitions["teams"].items()
    }
    columns = {}
    for row in specs.itertuples():
        y = pd.to_numeric(table[row.column], errors="coerce").astype(float)
        columns[row.key] = y * table["hh_share"] if row.unit == "households" else y.where(inside[row.team])
    return pd.concat([table, pd.DataFrame(columns, index=table.index)], axis=1)


def _by_groups(unit: str, allowed: list[str]) -> dict[str, str]:
    """Breakdowns (group name -> column) for a unit, limited to the groups ``allowed``."""
    groups = PERSON_GROUPS if unit == "persons" else HOUSEHOLD_GROUPS
    return {g: c for g, c in groups.items() if g in allowed}


def loa_for(
    specs: pd.DataFrame, breakdowns: dict[str, list[str]] | None = None, level: float = 0.95
) -> pd.DataFrame:
    """The list of analyses (:mod:`analysis.analyse`) estimating every spec, overall and by each group.

    ``breakdowns`` (``needs.yaml``) lists the groups for indicators (team flags, in need, unmet, stated
    demand) and for service lines; default: every group for both. Per spec and group: the share (a
    ``mean`` for persons, a ``ratio`` over ``hh_share`` for households) with the logit interval, and the
    number (``total``) with the Wald interval, both with the domain's degrees of freedom.
    """
    breakdowns = breakdowns or {}
    rows = []
    for spec in specs.itertuples():
        allowed = breakdowns.get("indicators" if spec.value == "1" else "services", list(PERSON_GROUPS))
        for group_column in ["", *_by_groups(spec.unit, allowed).values()]:
            if spec.unit == "persons":
                rows.append(("mean", spec.key, group_column, "", "", "", "", "logit"))
            else:
                rows.append(("ratio", "", group_column, spec.key, "hh_share", "FALSE", "TRUE", "logit"))
            rows.append(("total", spec.key, group_column, "", "", "", "", "wald"))
    loa = pd.DataFrame(
        rows,
        columns=[
            "analysis_type",
            "analysis_var",
            "group_var",
            "analysis_var_numerator",
            "analysis_var_denominator",
            "numerator_NA_to_0",
            "filter_denominator_0",
            "ci",
        ],
    )
    loa.insert(3, "level", f"{level:g}")
    return loa.assign(df="domain")


def needs_loa(definitions: dict) -> pd.DataFrame:
    """The list of analyses of the need definitions, as committed in ``analysis/needs_loa.csv``."""
    return loa_for(variable_specs(None, definitions), definitions.get("breakdowns"))


def write_needs_loa(path: str | Path = NEEDS_LOA_FILE, needs: str | Path = indicators.NEEDS_FILE) -> Path:
    """Write the list of analyses of ``needs`` (default: ``analysis/needs.yaml``) to ``path``."""
    needs_loa(indicators.load_needs(needs)).to_csv(path, index=False, lineterminator="\n")
    return Path(path)


def _counts(table: pd.DataFrame, specs: pd.DataFrame, group_column: str | None) -> pd.DataFrame:
    """Unweighted respondents (persons or households) and weighted universe size per key and group.

    A household counts once: Σ over its members of 1/m_h is 1.
    """
    key = pd.Series("all", index=table.index) if group_column is None else table[group_column].astype(str)
    keys = specs["key"].tolist()
    inside = table[keys].notna()
    if specs["unit"].iloc[0] == "households":
        share = inside.mul(table["hh_share"], axis=0)
        n = share.groupby(key).sum().round()
        n_weighted = share.mul(table["weight"], axis=0).groupby(key).sum()
    else:
        n = inside.groupby(key).sum()
        n_weighted = inside.mul(table["weight"], axis=0).groupby(key).sum()
    both = pd.DataFrame({"n": n.stack(), "n_weighted": n_weighted.stack()})
    both.index.names = ["group_value", "key"]
    return both.reset_index().astype({"n": int})


def estimate(
    design,
    table: pd.DataFrame,
    specs: pd.DataFrame,
    level: float = 0.95,
    breakdowns: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """Share and number of every spec, overall and by each group, on ``design`` (built on ``table``).

    Runs :func:`loa_for` through :func:`analysis.analyse.run`. Returns the tidy results (contract
    columns plus ``df``), before suppression; groups without respondents have no row.
    """
    out = analyse.run(design, loa_for(specs, breakdowns, level), source="list of analyses of needs.yaml")
    key = out["analysis_var"].str.split(" %/% ").str[0]
    group_column = out["group_var"].fillna("all")
    names = {
        column: group for groups in (PERSON_GROUPS, HOUSEHOLD_GROUPS) for group, column in groups.items()
    }
    results = pd.DataFrame(
        {
            "key": key,
            "group": group_column.map(names).fillna("all"),
            "group_value": out["group_var_value"].fillna("all"),
            "analysis_type": np.where(out["analysis_type"] == "total", "total", "prop"),
            "estimate": out["stat"],
            "se": out["se"],
            "ci_low": out["stat_low"],
            "ci_high": out["stat_upp"],
            "df": out["df"],
        }
    )
    counts = []
    for (unit, group), rows in results.groupby([results["key"].map(specs.set_index("key")["unit"]), "group"]):
        unit_specs = specs[specs["key"].isin(rows["key"].unique())]
        column = None if group == "all" else (PERSON_GROUPS if unit == "persons" else HOUSEHOLD_GROUPS)[group]
        counts.append(_counts(table, unit_specs, column).assign(group=group))
    results = results.merge(
        pd.concat(counts, ignore_index=True), on=["key", "group", "group_value"], how="left"
    )
    results = results.merge(specs, on="key", how="left", validate="many_to_one")
    results = results[results["n"] > 0]  # e.g. the elderly team in the 0-14 band: no universe, no estimate
    order = {
        "_type": results["analysis_type"].map({"prop": 0, "total": 1}),
        "_spec": results["key"].map(pd.Series(range(len(specs)), index=specs["key"])),
        "_group": results["group"].map({g: i for i, g in enumerate(["all", *PERSON_GROUPS])}),
    }
    results = results.assign(**order).sort_values(
        ["_spec", "_type", "_group", "group_value"], kind="stable", ignore_index=True
    )
    return results.reindex(columns=RESULT_COLUMNS[:-1] + ["df"])


def leadership_threshold(path: str | Path = config.ASSUMPTIONS_PATH) -> int:
    """Respondents below which a published cell is suppressed: ``disclosure.leadership_threshold`` in
    ``analysis/assumptions.yaml`` (10, docs/sources.md §6), the rule the figures and brief also use."""
    return disclosure.thresholds(config.load_assumptions(path))["leadership"]


def cunju_sample(table: pd.DataFrame, min_households: int) -> pd.DataFrame:
    """Responding households and persons per 村居, with a note where the sample is too small.

    A 村居 with fewer than ``min_households`` responding households gets the note that its estimates
    rest on too few households to be read alone (its CIs are shown; many of its cells are suppressed).
    """
    per = table.groupby("cunju").agg(households=("household_id", "nunique"), persons=("person_id", "size"))
    note = np.where(
        per["households"] < min_households,
        f"fewer than {min_households} responding households: read with caution",
        "",
    )
    return per.assign(note=note).reset_index()


def _measure(rows: pd.DataFrame) -> list[str]:
    """The measure of a service row: its variable without the ``_<team>`` suffix (need, unmet_need, ...)."""
    return [variable.removesuffix(f"_{team}") for variable, team in zip(rows["variable"], rows["team"])]


def rank_services(results: pd.DataFrame) -> pd.DataFrame:
    """Service lines ranked within each team by the estimated number of households that would use them.

    Columns: team, service, need, receiving, would_use, unmet_need (household totals), rank.
    """
    rows = results[
        (results["analysis_type"] == "total") & (results["group"] == "all") & (results["value"] != "1")
    ]
    wide = rows.assign(measure=_measure(rows)).pivot_table(
        index=["team", "value"], columns="measure", values="estimate", aggfunc="first", sort=False
    )
    wide = wide.reindex(columns=["need", "receiving", "would_use", "unmet_need"]).reset_index()
    wide = wide.rename(columns={"value": "service"})
    wide["rank"] = wide.groupby("team", sort=False)["would_use"].rank(ascending=False, method="first")
    return wide.astype({"rank": "Int64"}).sort_values(["team", "rank"], ignore_index=True)


def driver_columns(specs: pd.DataFrame, definitions: dict) -> pd.DataFrame:
    """Which estimation column gives each staffing driver: team, driver, column (docs/contracts.md)."""
    rows = []
    for team in definitions["teams"]:
        rows.append((team, "in_need", f"{team}:in_need_{team}"))
        team_specs = specs[(specs["team"] == team) & (specs["value"] != "1")]
        for row in team_specs.itertuples():
            measure = row.variable[: -len(team) - 1]
            if measure in SERVICE_MEASURES:
                rows.append((team, f"{measure}:{row.value}", row.key))
    return pd.DataFrame(rows, columns=["team", "driver", "column"])


REPLICATE_BATCH = 25  # replicate columns read from Parquet at a time (memory: the matrix plus one batch)


def replicate_matrix(source: pd.DataFrame | Path, person_ids: pd.Series) -> np.ndarray:
    """The persons × replicates weights in the order of ``person_ids``, from ``source`` (person_id + one
    column per replicate, or the Parquet file holding it), filled a batch of columns at a time so that
    the file's table and the matrix are never both in memory whole."""
    problem = AnalysisError(
        "replicate weights do not cover every person",
        file="person_replicates.parquet",
        column="person_id",
        hint="rerun stage 02 on the same clean data",
    )
    if isinstance(source, pd.DataFrame):
        names = [c for c in source.columns if c != "person_id"]
        source_ids = source["person_id"]
    else:
        parquet = pq.ParquetFile(source)
        names = [c for c in parquet.schema_arrow.names if c != "person_id"]
        source_ids = parquet.read(columns=["person_id"]).column(0).to_pandas()
    if not pd.Index(source_ids).is_unique:
        raise problem
    rows = pd.Index(source_ids).get_indexer(person_ids)
    if (rows < 0).any():
        raise problem
    in_order = len(rows) == len(source_ids) and bool((rows == np.arange(len(rows))).all())
    out = np.empty((len(rows), len(names)), dtype=float, order="F")
    for start in range(0, len(names), REPLICATE_BATCH):
        batch = names[start : start + REPLICATE_BATCH]
        if isinstance(source, pd.DataFrame):
            values = [source[c].to_numpy(dtype=float) for c in batch]
        else:
            part = parquet.read(columns=batch)
            values = [part.column(c).to_numpy().astype(float, copy=False) for c in batch]
            del part
        for j, v in enumerate(values, start):
            out[:, j] = v if in_order else v[rows]
    if np.isnan(out).any():
        raise problem
    return out


def drivers(
    table: pd.DataFrame, columns: pd.DataFrame, replicate_weights: np.ndarray | None = None
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
    return pd.DataFrame(
        {
            "team": np.tile(columns["team"].to_numpy(), n_rep),
            "driver": np.tile(columns["driver"].to_numpy(), n_rep),
            "replicate": np.repeat(np.arange(1, n_rep + 1), len(columns)),
            "estimate": totals.ravel(),
        }
    )


def precision(
    results: pd.DataFrame, table: pd.DataFrame, margin: float = 0.05, level: float = 0.95
) -> pd.DataFrame:
    """Achieved margin of error and design effect of each headline prevalence, and the next wave's size.

    Headline = ``in_need_<team>`` among the team's target group. The design effect here is Kish's:
    se² / (p(1−p)/n) with n the respondents of the target group in its own unit (persons, or
    households for the family team), so it compares with a simple random sample of those units.
    The respondents a follow-up needs for ± ``margin`` at that design effect:
    n = deff · z² · p(1−p) / margin² (z for ``level``; no finite-population correction, the target
    groups are thousands). Households to visit = n / (target-group respondents per responding
    household in this survey).
    """
    z = special.ndtri(0.5 + level / 2)  # the normal quantile (scipy.stats' norm.ppf)
    head = results[
        (results["analysis_type"] == "prop")
        & (results["group"] == "all")
        & (results["variable"] == "in_need_" + results["team"])
    ].copy()
    households = table["household_id"].nunique()
    head["moe"] = (head["ci_high"] - head["ci_low"]) / 2
    p = head["estimate"]
    head["deff"] = head["se"] ** 2 / (p * (1 - p) / head["n"])
    head["n_required"] = np.ceil(head["deff"] * z**2 * p * (1 - p) / margin**2).astype("Int64")
    per_household = head["n"] / households
    head["households_required"] = np.ceil(head["n_required"] / per_household).astype("Int64")
    return head[
        [
            "team",
            "variable",
            "universe",
            "estimate",
            "se",
            "moe",
            "deff",
            "n",
            "n_required",
            "households_required",
        ]
    ].reset_index(drop=True)


def headline_columns(definitions: dict) -> pd.DataFrame:
    """The headline prevalence of each team: ``in_need_<team>`` in its target group."""
    return pd.DataFrame(
        [(team, f"in_need_{team}", spec["unit"]) for team, spec in definitions["teams"].items()],
        columns=["team", "variable", "unit"],
    )


def point_estimates(
    table: pd.DataFrame, definitions: dict, weight_columns: dict[str, str | None]
) -> pd.DataFrame:
    """Headline prevalences under several weightings (None = unweighted), side by side.

    Shows what each weighting step changes; the planted truth (simulated data) shows which is right.
    """
    heads = headline_columns(definitions)
    out = heads[["team", "variable"]].copy()
    for label, column in weight_columns.items():
        w = np.ones(len(table)) if column is None else table[column].to_numpy(dtype=float)
        values = []
        for row in heads.itertuples():
            y = table[f"{row.team}:{row.variable}"].to_numpy(dtype=float)
            ok = ~np.isnan(y)
            share = (
                table["hh_share"].to_numpy(dtype=float) if row.unit == "households" else np.ones(len(table))
            )
            if column is None and row.unit == "households":  # one vote per household
                values.append(y[ok].sum() / share[ok].sum())
            else:
                values.append((w[ok] * y[ok]).sum() / (w[ok] * share[ok]).sum())
        out[label] = values
    return out


@dataclass(frozen=True)
class DemandRun:
    """Stage 03 outputs: tidy results (suppressed), drivers and their replicates, precision, rankings;
    ``estimates`` keeps every estimate unsuppressed (not for publication)."""

    results: pd.DataFrame
    estimates: pd.DataFrame
    drivers: pd.DataFrame
    drivers_replicates: pd.DataFrame
    precision: pd.DataFrame
    ranked: pd.DataFrame
    cunju_sample: pd.DataFrame


def stored_design(
    table: pd.DataFrame, margins: dict[str, dict[str, float]], tol: float = 1e-10, agree: float = 1e-6
):
    """The design of the weights stage's person weights (``weight``) with their calibration to ``margins``.

    Raking the stored weights again to the margins they were raked to leaves them in place (one sweep;
    they move by less than the raking tolerance) and gives the design the calibration its standard
    errors must account for. Weights that move by more than ``agree`` (relative) were not raked to these
    margins and are refused.
    """
    weights.check_rake_cells(table, margins)
    design = weights.design_for(table, "weight").rake(margins, tol=tol)
    moved = float(np.max(np.abs(np.asarray(design.weights) / table["weight"].to_numpy(float) - 1)))
    if moved > agree:
        raise AnalysisError(
            f"the person weights are not calibrated to the frame margins of the weights stage "
            f"(raking them again moves a weight by {moved:.1e})",
            file="weights/persons.parquet",
            column="weight",
            hint="rerun the weights stage",
        )
    return design


def run_demand(
    households: pd.DataFrame,
    persons: pd.DataFrame,
    margins: dict[str, dict[str, float]],
    definitions: dict,
    person_replicates: pd.DataFrame | Path,
    level: float = 0.95,
    min_households: int = 30,
    threshold: int | None = None,
) -> DemandRun:
    """Everything stage 03 writes, from what stage 02 wrote: the weighted tables, the frame ``margins`` their
    person weights were raked to (``weights/diagnostics.csv``) and the replicate weights.

    ``person_replicates`` (person_id + one column per replicate, or the Parquet file holding them, read
    after the estimates so that the two are never in memory together) must list the persons of ``persons``.
    Cells with fewer than ``threshold`` respondents (default :func:`leadership_threshold`) are
    suppressed with secondary suppression (:func:`analysis.disclosure.suppress_results`).
    """
    table, specs = prepare(households, persons, definitions)
    design = stored_design(table, margins)
    raw = estimate(design, table, specs, level=level, breakdowns=definitions.get("breakdowns"))
    threshold = leadership_threshold() if threshold is None else threshold
    results = disclosure.suppress_results(raw.assign(suppressed=False), threshold)
    columns = driver_columns(specs, definitions)
    return DemandRun(
        results=results[RESULT_COLUMNS + ["df"]],
        estimates=raw,
        drivers=drivers(table, columns),
        drivers_replicates=drivers(table, columns, replicate_matrix(person_replicates, table["person_id"])),
        precision=precision(raw, table, level=level),
        ranked=rank_services(raw),
        cunju_sample=cunju_sample(table, min_households),
    )


WIDE_COLUMNS = [
    "prop_estimate",
    "prop_ci_low",
    "prop_ci_high",
    "total_estimate",
    "total_ci_low",
    "total_ci_high",
]


def _share_and_number(rows: pd.DataFrame, index: list[str], sort: bool) -> pd.DataFrame:
    """``rows`` of the results table with share (``prop_*``) and number (``total_*``) side by side, one row
    per ``index``; shares rounded to 3 decimals, numbers to units."""
    wide = rows.pivot_table(
        index=index,
        columns="analysis_type",
        values=["estimate", "ci_low", "ci_high"],
        aggfunc="first",
        sort=sort,
    )
    wide.columns = [f"{kind}_{stat}" for stat, kind in wide.columns]
    return wide[WIDE_COLUMNS]


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    return table.round({c: 3 for c in WIDE_COLUMNS[:3]} | {c: 0 for c in WIDE_COLUMNS[3:]})


def headline(results: pd.DataFrame) -> pd.DataFrame:
    """Per team: share of the target group in need and the number in need, each with its 95% CI."""
    rows = results[(results["group"] == "all") & (results["variable"] == "in_need_" + results["team"])]
    index = ["team", "universe", "unit"]
    n = rows[rows["analysis_type"] == "prop"].set_index(index)["n"]
    return _rounded(_share_and_number(rows, index, sort=True).join(n).reset_index())


def indicator_table(results: pd.DataFrame) -> pd.DataFrame:
    """Each team's indicators (share of its target group, number of people or households), all of Leliu."""
    rows = results[(results["group"] == "all") & (results["value"] == "1")]
    return _rounded(_share_and_number(rows, ["team", "variable", "universe"], sort=False).reset_index())


def service_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per team and service line: need, receiving, would use (shares of households) and unmet need."""
    rows = results[
        (results["group"] == "all") & (results["analysis_type"] == "prop") & (results["value"] != "1")
    ]
    wide = rows.assign(measure=_measure(rows)).pivot_table(
        index=["team", "value"], columns="measure", values="estimate", aggfunc="first", sort=False
    )
    return wide.reindex(columns=["need", "receiving", "would_use", "unmet_need"]).reset_index()


def by_group(results: pd.DataFrame, group: str) -> pd.DataFrame:
    """The headline prevalence of every team by ``group``: estimate [CI], n, suppressed."""
    rows = results[
        (results["group"] == group)
        & (results["analysis_type"] == "prop")
        & (results["variable"] == "in_need_" + results["team"])
    ]
    return (
        rows[["team", "group", "group_value", "estimate", "ci_low", "ci_high", "n", "suppressed"]]
        .round({"estimate": 3, "ci_low": 3, "ci_high": 3})
        .reset_index(drop=True)
    )
