"""The indicators of the annual evaluation, as ratio columns of the person table, and which of them a change
of instrument between the waves leaves out."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis import indicators

if TYPE_CHECKING:
    from analysis.evaluate.waves import Wave

CENTRE = "centre"


def indicator_specs(definitions: dict) -> pd.DataFrame:
    """One row per indicator: team, indicator, measure (reach, unmet, need_any, aware), unit, universe."""
    from analysis.demand import universe_text

    rows = []
    for team, spec in definitions["teams"].items():
        universe = universe_text(spec)
        rows += [
            (team, f"reach_{team}", "reach", spec["unit"], f"{universe} in need"),
            (team, f"unmet_{team}", "unmet", spec["unit"], universe),
            (team, f"need_any_{team}", "need_any", "households", "households"),
        ]
    rows.append((CENTRE, "aware_centre", "aware", "households", "households"))
    return pd.DataFrame(rows, columns=["team", "indicator", "measure", "unit", "universe"])


def indicator_table(households: pd.DataFrame, persons: pd.DataFrame, definitions: dict) -> pd.DataFrame:
    """The person table with ``num:<indicator>`` and ``den:<indicator>`` for every indicator, NaN outside its
    denominator population: a person indicator is y over 1, a household one y_h / m_h over 1 / m_h."""
    households, persons = indicators.add_need_flags(households, persons, definitions)
    by_household = households.set_index("household_id")
    share = 1.0 / persons.groupby("household_id")["household_id"].transform("size").to_numpy(dtype=float)
    columns = {}

    def put(name: str, y: pd.Series, unit: str) -> None:
        y = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
        known = ~np.isnan(y)
        if unit == "households":
            columns[f"num:{name}"], columns[f"den:{name}"] = y * share, np.where(known, share, np.nan)
        else:
            columns[f"num:{name}"], columns[f"den:{name}"] = y, np.where(known, 1.0, np.nan)

    def of_household(values: pd.Series) -> pd.Series:
        return persons["household_id"].map(values)

    for team, spec in definitions["teams"].items():
        table = persons if spec["unit"] == "persons" else None
        unmet = table[f"unmet_{team}"] if table is not None else of_household(by_household[f"unmet_{team}"])
        in_need = (
            table[f"in_need_{team}"] if table is not None else of_household(by_household[f"in_need_{team}"])
        )
        put(f"reach_{team}", (1.0 - unmet).where(in_need == 1), spec["unit"])
        put(f"unmet_{team}", unmet, spec["unit"])
        stated = [c for c in (f"need_{team}.{s}" for s in [*spec["services"], "other"]) if c in households]
        need_any = (
            indicators.any_flag(households[stated].apply(pd.to_numeric, errors="coerce"))
            if stated
            else pd.Series(np.nan, index=households.index)
        )
        put(f"need_any_{team}", of_household(need_any.set_axis(households["household_id"])), "households")
    aware = (
        households["aware_centre"].map({"yes": 1.0, "no": 0.0})
        if "aware_centre" in households
        else pd.Series(np.nan, index=households.index)
    )
    put("aware_centre", of_household(aware.set_axis(households["household_id"])), "households")
    return pd.concat([persons.reset_index(drop=True), pd.DataFrame(columns)], axis=1)


def asked(wave: Wave) -> set[str]:
    """Columns of a wave's clean tables holding at least one answer (a question asked in that wave)."""
    return {c for table in (wave.households, wave.persons) for c in table.columns if table[c].notna().any()}


def aligned(first: Wave, second: Wave) -> tuple[Wave, Wave]:
    """Both waves with the union of their columns: a question one wave did not ask is blank (NaN) there."""
    out = []
    for wave in (first, second):
        tables = {
            name: getattr(wave, name).reindex(
                columns=list(
                    dict.fromkeys(
                        [
                            *getattr(wave, name).columns,
                            *getattr(first, name).columns,
                            *getattr(second, name).columns,
                        ]
                    )
                )
            )
            for name in ("households", "persons")
        }
        out.append(replace(wave, **tables))
    return out[0], out[1]


def left_out(first: Wave, second: Wave, definitions: dict) -> dict[str, list[str]]:
    """Indicators that need a question only one wave asked: indicator -> those questions.

    Found by blanking such questions in the wave that asked them and seeing which indicators move (all
    at once, then one by one if any moved), so the list follows the definitions in ``needs.yaml``
    without a second copy of them.
    """
    out: dict[str, list[str]] = {}
    one_wave = asked(first) ^ asked(second)
    for wave in (first, second):
        mine = sorted(q for q in one_wave if q in asked(wave))
        if not mine:
            continue
        base = indicator_table(wave.households, wave.persons, definitions)
        if not _moved(base, wave, mine, definitions):
            continue
        for question in mine:
            for indicator in _moved(base, wave, [question], definitions):
                out.setdefault(indicator, []).append(question)
    return {k: sorted(set(v)) for k, v in sorted(out.items())}


def _moved(base: pd.DataFrame, wave: Wave, questions: list[str], definitions: dict) -> list[str]:
    """Indicators of ``base`` (the wave's :func:`indicator_table`) that change when ``questions`` are
    blank."""

    def blank(table: pd.DataFrame) -> pd.DataFrame:
        gone = [c for c in table.columns if c in questions or c.split(".")[0] in questions]
        return table.assign(**{c: np.nan for c in gone})

    moved = indicator_table(blank(wave.households), blank(wave.persons), definitions)
    names = [c[4:] for c in base.columns if c.startswith("num:")]
    return [
        name
        for name in names
        if not all(
            np.array_equal(base[c].to_numpy(float), moved[c].to_numpy(float), equal_nan=True)
            for c in (f"num:{name}", f"den:{name}")
        )
    ]
