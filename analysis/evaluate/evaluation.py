"""The evaluation of two waves: the tidy table (suppressed for publication), indicators left out, and the
changes beside a simulator's planted change."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis import indicators
from analysis.errors import AnalysisError
from analysis.evaluate.measures import aligned, indicator_specs, indicator_table, left_out
from analysis.evaluate.waves import CHANGE, LEVEL, WAVE, Wave, estimate, psu_mode, stack_waves, stacked_design
from analysis.survey.intervals import critical

DOMAINS = ("cunju",)
TABLE_COLUMNS = [
    "team",
    "indicator",
    "measure",
    "unit",
    "universe",
    "group",
    "group_value",
    "wave",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "df",
    "n",
    "se_independent",
    "significant",
    "suppressed",
    "note",
]


@dataclass(frozen=True)
class Evaluation:
    """The evaluation of two waves: ``table`` (tidy, suppressed below ``threshold`` respondents: what is
    published), ``estimates`` (the same unsuppressed, not for publication), the indicators ``left_out``
    (indicator -> questions only one wave asked), the waves' ``years``, the ``psus`` mode, whether any
    wave is simulated, and the largest relative gap between the stacked design's raked weights and each
    wave's own (``weight_gap``)."""

    table: pd.DataFrame
    estimates: pd.DataFrame
    left_out: dict[str, list[str]]
    years: tuple[int, int]
    psus: str
    simulated: bool
    weight_gap: float
    waves: tuple[Wave, Wave] = field(repr=False)
    figures: dict = field(default_factory=dict, repr=False)

    def headline(self) -> pd.DataFrame:
        """Leliu-wide rows, one per indicator and wave, the change last."""
        return self.table[self.table["group"] == "all"].reset_index(drop=True)

    def overview(self, group: str = "all") -> pd.DataFrame:
        """One row per indicator (and value of ``group``): each wave's estimate, the change with its 95%
        interval and SE, the SE were the waves independent, and whether the interval excludes zero."""
        rows = self.table[(self.table["group"] == group) & (self.table["note"].fillna("") == "")]
        keys = ["team", "indicator", "group_value"]
        wide = rows.pivot_table(index=keys, columns="wave", values="estimate", aggfunc="first", sort=False)
        change = rows[rows[WAVE] == CHANGE].set_index(keys)
        out = wide[[str(y) for y in self.years]].join(
            change[["estimate", "ci_low", "ci_high", "se", "se_independent", "df", "significant"]].rename(
                columns={"estimate": CHANGE}
            )
        )
        return out.reset_index().drop(columns=[] if group != "all" else ["group_value"])

    def planted(self) -> pd.DataFrame | None:
        """Leliu-wide changes beside the simulator's planted change (:func:`against_truth`), or None for
        waves without one (a real survey)."""
        path = self.waves[1].planted
        return (
            None
            if path is None
            else against_truth(self.estimates, pd.read_csv(path, dtype={"group_value": str}))
        )


def compare_waves(
    first: Wave,
    second: Wave,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    specs: pd.DataFrame,
    psus: str,
    domains: tuple[str, ...] = DOMAINS,
    level: float = LEVEL,
) -> tuple[pd.DataFrame, float]:
    """Unsuppressed estimates of ``specs`` (Leliu-wide, then per domain) from the two waves' indicator
    ``tables``, and the largest relative gap between the stacked design's raked weights and the waves' own."""
    stacked, margins = stack_waves(first, second, tables, psus)
    design = stacked_design(stacked, margins)
    gap = float(np.max(np.abs(np.asarray(design.weights) / stacked["weight"].to_numpy(float) - 1)))
    parts = [estimate(design, specs, None, first.year, second.year, level).assign(group="all")]
    parts += [estimate(design, specs, d, first.year, second.year, level).assign(group=d) for d in domains]
    estimates = pd.concat(parts, ignore_index=True).merge(specs, on="indicator", how="left")
    change = (estimates[WAVE] == CHANGE).to_numpy()
    estimates["significant"] = pd.array(
        np.where(change, (estimates["ci_low"] > 0) | (estimates["ci_high"] < 0), False), dtype="boolean"
    )
    estimates.loc[~change | estimates["estimate"].isna().to_numpy(), "significant"] = pd.NA
    estimates["note"] = ""
    return _order(estimates, specs), gap


def evaluate(
    first: Wave,
    second: Wave,
    definitions: dict | None = None,
    psus: str | None = None,
    domains: tuple[str, ...] = DOMAINS,
    threshold: int = 10,
    level: float = LEVEL,
) -> Evaluation:
    """Compare two waves: per indicator, each wave's estimate and the change, Leliu-wide and per domain;
    indicators resting on a question only one wave asked are left out and listed (``note``)."""
    definitions = indicators.load_needs() if definitions is None else definitions
    first, second = sorted((first, second), key=lambda w: w.year)
    if first.year == second.year:
        raise AnalysisError(
            f"both waves are from {first.year}", hint="give each wave's year (--years 2012 2013)"
        )
    mode = psu_mode(first, second, psus)
    first, second = aligned(first, second)
    gone = left_out(first, second, definitions)
    specs = indicator_specs(definitions)
    tables = tuple(indicator_table(w.households, w.persons, definitions) for w in (first, second))
    estimates, gap = compare_waves(
        first, second, tables, specs[~specs["indicator"].isin(list(gone))], mode, domains, level
    )
    notes = specs[specs["indicator"].isin(list(gone))]
    notes = notes.assign(
        group="all",
        group_value="all",
        **{WAVE: CHANGE},
        suppressed=False,
        note=[f"left out: {', '.join(gone[i])} asked in one wave only" for i in notes["indicator"]],
    )
    table = pd.concat([suppress(estimates, threshold), notes], ignore_index=True).reindex(
        columns=TABLE_COLUMNS
    )
    return Evaluation(
        table,
        estimates,
        gone,
        (first.year, second.year),
        mode,
        first.simulated or second.simulated,
        gap,
        (first, second),
    )


def _order(table: pd.DataFrame, specs: pd.DataFrame) -> pd.DataFrame:
    """Rows by indicator (the specs' order), group (all first), group value, then waves and the change."""
    order = {i: k for k, i in enumerate(specs["indicator"])}
    key = table.assign(
        _i=table["indicator"].map(order),
        _g=(table["group"] != "all").astype(int),
        _w=(table[WAVE] == CHANGE).astype(int),
    )
    key = key.sort_values(["_i", "_g", "group", "group_value", "_w", WAVE], kind="stable")
    return key.drop(columns=["_i", "_g", "_w"]).reset_index(drop=True)


def suppress(estimates: pd.DataFrame, threshold: int) -> pd.DataFrame:
    """Blank every estimate resting on fewer than ``threshold`` respondents (the leadership threshold of
    analysis/assumptions.yaml): a wave's own, and a change where either wave has fewer; ``suppressed``
    marks them."""
    table = estimates.copy()
    table["suppressed"] = table["n_least"] < threshold
    table.loc[table["suppressed"], ["estimate", "se", "ci_low", "ci_high", "se_independent"]] = np.nan
    table.loc[table["suppressed"], "significant"] = pd.NA
    return table


def against_truth(estimates: pd.DataFrame, truth_change: pd.DataFrame) -> pd.DataFrame:
    """Leliu-wide changes beside the simulator's planted change (``truth_change``: the simulator's
    ``simulation/truth_change.csv`` or ``WavePair.truth``): indicator, estimate, se, se_independent, df,
    ci_low, ci_high, planted, covered (the 95% interval holds the planted change) and covered_independent
    (the interval of waves taken as independent, same t, holds it)."""
    rows = estimates[(estimates["group"] == "all") & (estimates[WAVE] == CHANGE)]
    planted = truth_change[
        (truth_change["group"] == "all") & truth_change["variable"].isin(rows["indicator"])
    ]
    planted = planted.drop_duplicates("variable").set_index("variable")["proportion_change"]
    out = rows[["team", "indicator", "estimate", "se", "se_independent", "df", "ci_low", "ci_high"]].assign(
        planted=rows["indicator"].map(planted).to_numpy()
    )
    out["covered"] = (out["ci_low"] <= out["planted"]) & (out["planted"] <= out["ci_high"])
    q = critical(LEVEL, out["df"])
    out["covered_independent"] = (out["estimate"] - out["planted"]).abs() <= q * out["se_independent"]
    return out.reset_index(drop=True)
