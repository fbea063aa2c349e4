"""The planted truth: finite-population values of every need indicator, computed on the population itself
with the same definitions (``analysis/needs.yaml``) the demand stage estimates with.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.simulate.params import SERVICE_QUESTIONS, age_band
from analysis.simulate.population import Population


def _summaries(table: pd.DataFrame, columns: list[str], groups: dict[str, pd.Series]) -> pd.DataFrame:
    """count (flag = 1), denominator (flag known) and proportion of 0/1/NaN columns, overall and by group."""
    flags = table[columns].astype("float64")
    rows = []
    everyone = pd.Series(
        pd.Categorical.from_codes(np.zeros(len(table), dtype=np.int8), ["all"]), index=table.index
    )
    for group, values in {"all": everyone, **groups}.items():
        grouped = flags.groupby(values.astype("category").to_numpy(), sort=True, observed=True)
        count, denominator = grouped.sum(), grouped.count()
        long = pd.DataFrame({"count": count.stack(), "denominator": denominator.stack()})
        long.index.names = ["group_value", "variable"]
        long = long.reset_index().assign(group=group)
        long["group_value"] = long["group_value"].astype(str)
        rows.append(long)
    out = pd.concat(rows, ignore_index=True)
    out["proportion"] = out["count"] / out["denominator"].where(out["denominator"] > 0)
    return out


def truth(population: Population, definitions: dict | None = None) -> pd.DataFrame:
    """Finite-population values of every need indicator, overall and by 村居 (and registration, sex, age band
    for persons): columns team, variable, unit, group, group_value, count, denominator, proportion.

    Flags come from :func:`analysis.indicators.add_need_flags` applied to the population itself, so the truth
    uses exactly the definitions the demand stage estimates with (``analysis/needs.yaml``); each team's
    indicators are restricted to the team's universe (e.g. 60+ for the elderly team), as ``in_need_<team>``
    is. Household service rows (``need:<service>``, ``receiving:<service>``, ``would_use:<service>``) count
    households ticking each service line (the staffing drivers); ``need_any_<team>`` (stated demand) counts
    households ticking at least one option of the team's ``need_<team>`` question, "other" included;
    ``reach_<team>``: of those in need (``in_need_<team>``), the share whose household receives any of the
    team's services. Team ``centre``: ``aware_centre``, households that know the centre.
    """
    from analysis.indicators import add_need_flags, load_needs

    definitions = load_needs() if definitions is None else definitions
    households, persons = add_need_flags(population.households, population.persons, definitions)
    hh_groups = {"cunju": households["cunju"], "registration": households["hh_registration"]}
    person_groups = {
        "cunju": persons["cunju"],
        "registration": persons["registration"],
        "sex": persons["sex"],
        "age_band": pd.Series(age_band(persons["age"]), index=persons.index),
    }
    parts = []
    for team, spec in definitions["teams"].items():
        persons_unit = spec["unit"] == "persons"
        table = persons if persons_unit else households
        inside = pd.Series(True, index=table.index)
        universe = spec.get("universe") or {}
        if "age_min" in universe:
            inside &= table["age"] >= universe["age_min"]
        if "age_max" in universe:
            inside &= table["age"] <= universe["age_max"]
        columns = list(dict.fromkeys(spec["indicators"] + [f"in_need_{team}", f"unmet_{team}"]))
        scoped = table[columns].astype("float64").where(inside, axis=0)
        in_need = scoped[f"in_need_{team}"] == 1
        scoped[f"reach_{team}"] = (1.0 - scoped[f"unmet_{team}"]).where(in_need)  # of those in need: served
        columns.append(f"reach_{team}")
        part = _summaries(scoped, columns, person_groups if persons_unit else hh_groups)
        parts.append(part.assign(team=team, unit=spec["unit"]))
        service_cols = {
            f"{q}:{s}": households[f"{q}_{team}.{s}"] for q in SERVICE_QUESTIONS for s in spec["services"]
        }
        stated = households[[f"need_{team}.{s}" for s in [*spec["services"], "other"]]].to_numpy()
        service_cols[f"need_any_{team}"] = pd.Series(
            (stated == 1).any(axis=1).astype(float), index=households.index
        )
        services = pd.DataFrame(service_cols, index=households.index)
        parts.append(_summaries(services, list(service_cols), hh_groups).assign(team=team, unit="households"))
    aware = pd.DataFrame({"aware_centre": (households["aware_centre"].astype(str) == "yes").astype(float)})
    parts.append(_summaries(aware, ["aware_centre"], hh_groups).assign(team="centre", unit="households"))
    out = pd.concat(parts, ignore_index=True)
    out["count"] = out["count"].round().astype(int)
    out = out[["team", "variable", "unit", "group", "group_value", "count", "denominator", "proportion"]]
    return out.sort_values(["team", "unit", "variable", "group", "group_value"], kind="stable").reset_index(
        drop=True
    )


def truth_change(
    first: pd.DataFrame, second: pd.DataFrame, years: tuple[int, int] = (2012, 2013)
) -> pd.DataFrame:
    """The planted change between two waves' truths (:func:`truth` of each wave's population): per team,
    variable, unit, group and group value, each wave's ``count_<year>`` and ``proportion_<year>`` and the
    change (second − first) of both. Rows of only one wave (a 村居 level that appears) get NaN there."""
    keys = ["team", "variable", "unit", "group", "group_value"]
    a, b = (t.set_index(keys)[["count", "proportion"]] for t in (first, second))
    out = a.add_suffix(f"_{years[0]}").join(b.add_suffix(f"_{years[1]}"), how="outer")
    out["count_change"] = out[f"count_{years[1]}"] - out[f"count_{years[0]}"]
    out["proportion_change"] = out[f"proportion_{years[1]}"] - out[f"proportion_{years[0]}"]
    return out.reset_index().sort_values(keys, kind="stable").reset_index(drop=True)
