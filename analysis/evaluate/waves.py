"""Waves side by side: each weighted to its own frame, stacked into one design (revisited residential groups
share their PSU id), raked to both frames; each wave's estimate and the change from the stacked design."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import weights
from analysis.errors import DesignError
from analysis.survey import Design, logit_interval
from analysis.survey.intervals import critical, wald

WAVE = "wave"
CHANGE = "change"
PSU_MODES = ("revisited", "fresh")
LEVEL = 0.95


@dataclass(frozen=True)
class Wave:
    """One wave ready to stack: its year, weighted household and person tables (``analysis.weights``), the
    population frame of its year and its sample design. ``psus``: what a simulated survey folder says of
    its residential groups ("revisited" or "fresh"), else None; ``planted``: the simulator's planted change
    (``simulation/truth_change.csv``) beside a simulated export that has one."""

    year: int
    households: pd.DataFrame
    persons: pd.DataFrame
    frame: pd.DataFrame
    sample_design: pd.DataFrame
    composition: pd.DataFrame | None = None  # elderly_households.csv of its frame folder, if any
    simulated: bool = False
    psus: str | None = None
    fieldwork: str = ""
    planted: Path | None = None  # the simulator's truth_change.csv beside a simulated export


def weigh_wave(
    year: int,
    households: pd.DataFrame,
    persons: pd.DataFrame,
    sample_design: pd.DataFrame,
    frame: pd.DataFrame,
    composition: pd.DataFrame | None = None,
    **wave,
) -> Wave:
    """A wave from clean tables: weights built to its own ``frame`` (and ``composition``; no replicates: the
    change's variance is Taylor's, over the stacked design)."""
    built = weights.build_weights(
        households, persons, sample_design, frame, composition=composition, replicates=0
    )
    return Wave(year, built.households, built.persons, frame, sample_design, composition, **wave)


def psu_mode(first: Wave, second: Wave, declared: str | None = None) -> str:
    """ "revisited" when the second wave went back to the first wave's residential groups, else "fresh".

    ``declared`` (the command line's ``--psus``) wins; then what a simulated folder's provenance says;
    otherwise revisited when one wave's groups all lie among the other's. Two independent draws share
    some groups by chance and are read as fresh: counting covariance there would understate the variance.
    """
    if declared is not None:
        if declared not in PSU_MODES:
            raise DesignError(f"unknown PSU mode {declared!r}", hint=f"use one of {', '.join(PSU_MODES)}")
        mode = declared
    elif second.psus in PSU_MODES:
        mode = second.psus
    else:
        a, b = set(first.sample_design["psu"].astype(str)), set(second.sample_design["psu"].astype(str))
        mode = "revisited" if a and b and (a <= b or b <= a) else "fresh"
    if mode == "revisited":
        shared = set(first.sample_design["psu"].astype(str)) & set(second.sample_design["psu"].astype(str))
        if not shared:
            raise DesignError(
                "the waves are said to revisit the same residential groups but share no PSU",
                file="sample_design.csv",
                column="psu",
                hint="use fresh PSUs for independent samples",
            )
    return mode


def stack_waves(
    first: Wave, second: Wave, tables: tuple[pd.DataFrame, pd.DataFrame], psus: str
) -> tuple[pd.DataFrame, dict]:
    """Both waves' person tables (``tables``: :func:`indicator_table` of each) stacked with the design columns
    ``eval_stratum``, ``eval_psu``, ``eval_unit`` (a group in one wave), ``eval_household`` (integer codes)
    and the raking cells crossed with the wave; returns the table and both frames' margins, crossed alike."""
    margins = {}
    both = first.composition is not None and second.composition is not None  # else neither wave uses it
    for wave in (first, second):
        for var, totals in weights.frame_margins(wave.frame, wave.composition if both else None).items():
            margins.setdefault(f"eval_{var}", {}).update({f"{wave.year}|{k}": v for k, v in totals.items()})
    stacked = pd.concat(
        [t.assign(**{WAVE: w.year}) for w, t in zip((first, second), tables)], ignore_index=True
    )
    later = (stacked[WAVE] == second.year).to_numpy().astype(np.int64)
    psu, cunju = pd.factorize(stacked["psu"].astype(str))[0], pd.factorize(stacked["cunju"].astype(str))[0]
    shared = psus == "revisited"
    stacked = stacked.assign(
        eval_household=pd.factorize(stacked["household_id"].astype(str))[0] * 2 + later,
        eval_unit=psu * 2 + later,
        eval_psu=psu if shared else psu * 2 + later,
        eval_stratum=cunju if shared else cunju * 2 + later,
        **{
            f"eval_{var}": stacked[WAVE].astype(str) + "|" + stacked[var].astype(str)
            for var in (name.removeprefix("eval_") for name in margins)
        },
    )
    if shared:
        sizes = stacked.groupby("cunju")["stratum_psus"].nunique()
        if (sizes > 1).any():
            raise DesignError(
                f"村居 {sizes.index[sizes > 1][0]} has a different number of residential groups in the "
                "two waves' sample designs",
                file="sample_design.csv",
                column="stratum_psus",
                hint="revisited groups need one frame of groups; compare the waves as fresh samples",
            )
    stacked["eval_units_in_psu"] = stacked.groupby("eval_psu")["eval_unit"].transform("nunique")
    return stacked, margins


def stacked_design(stacked: pd.DataFrame, margins: dict, tol: float = 1e-10) -> Design:
    """The stacked design (strata, groups, group-in-wave, households; fpc at each stage) raked to both
    frames."""
    design = Design(
        stacked,
        weights="weight_prerake",
        strata="eval_stratum",
        ids=["eval_psu", "eval_unit", "eval_household"],
        fpc=["stratum_psus", "eval_units_in_psu", "psu_households"],
        lonely_psu="adjust",
    )
    return design.rake(margins, tol=tol)


def _with_columns(design: Design, columns: dict) -> Design:
    """The same design (weights, calibration) with ``columns`` added to its data (same rows, same order)."""
    new = copy.copy(design)
    new.data = design.data.assign(**columns)
    return new


# ----- estimates --------------------------------------------------------------------------------------------


def linearised(design: Design, specs: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, dict]:
    """Each indicator's ratio R = Σw·num / Σw·den per group of ``by`` with its respondents (persons, or
    households for a household indicator): columns indicator, the ``by`` columns, estimate, n; and its
    linearised variable (num − R·den) / Σw·den on every row (``lin:<indicator>``)."""
    data, w = design.data, np.asarray(design.weights, dtype=float)
    grouped = data.groupby(by, sort=True)
    groups, keys = grouped.ngroup().to_numpy(), grouped.size().index.to_frame(index=False)
    household = data["eval_household"].to_numpy()
    ratios, linear = [], {}
    for spec in specs.itertuples():
        a, b = data[f"num:{spec.indicator}"].to_numpy(float), data[f"den:{spec.indicator}"].to_numpy(float)
        inside = ~np.isnan(a) & ~np.isnan(b)
        top = np.bincount(groups[inside], weights=(w * a)[inside], minlength=len(keys))
        bottom = np.bincount(groups[inside], weights=(w * b)[inside], minlength=len(keys))
        units = groups[inside]
        if spec.unit == "households":  # a household counts once
            units = np.unique(units * (household.max() + 1) + household[inside]) // (household.max() + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = top / bottom
            linear[f"lin:{spec.indicator}"] = np.where(
                inside, (a - ratio[groups] * b) / bottom[groups], np.nan
            )
        ratios.append(
            keys.assign(indicator=spec.indicator, estimate=ratio, n=np.bincount(units, minlength=len(keys)))
        )
    return pd.concat(ratios, ignore_index=True), linear


def estimate(
    design: Design, specs: pd.DataFrame, domain: str | None, first: int, second: int, level: float = LEVEL
) -> pd.DataFrame:
    """Each wave's estimate (logit interval, the domain's df, as ``svyciprop``) and the change (second −
    first; t interval with the stacked domain's df), overall (``domain`` None) or per value of ``domain``.

    A ratio's SE is that of the total of its linearised variable (the influence R ``svyratio`` uses), so
    one call gives every wave's SEs and one ``compare`` every change's. Columns: indicator, group_value,
    wave (the year, or "change"), estimate, se, ci_low, ci_high, df, n, se_independent (the change's SE
    were the waves independent samples, √(se₁² + se₂²)), n_least (the fewer respondents of the two waves,
    for suppression).
    """
    by = [WAVE] + ([domain] if domain else [])
    keys = ["indicator"] + ([domain] if domain else [])
    ratios, linear = linearised(design, specs, by)
    lin = _with_columns(design, linear)
    spread = lin.total(list(linear), by=by, na_rm=True, level=level)
    spread["indicator"] = spread["variable"].str.removeprefix("lin:")
    per_wave = ratios.merge(spread[by + ["indicator", "se", "df"]], on=by + ["indicator"], how="inner")
    per_wave["ci_low"], per_wave["ci_high"] = logit_interval(
        per_wave["estimate"], per_wave["se"], per_wave["df"], level
    )
    changed = lin.compare(
        list(linear),
        by=WAVE,
        first=first,
        second=second,
        statistic="total",
        domains=domain,
        na_rm=True,
        level=level,
        df="domain",
    )
    changed["indicator"] = changed["variable"].str.removeprefix("lin:")
    changed = changed.set_index(keys)[["se", "df"]]
    one, two = (
        per_wave[per_wave[WAVE] == year].set_index(keys).reindex(changed.index) for year in (first, second)
    )
    changed["estimate"] = two["estimate"] - one["estimate"]
    changed["se_independent"] = np.hypot(one["se"], two["se"])
    changed["n"] = one["n"].fillna(0) + two["n"].fillna(0)
    changed["n_least"] = np.minimum(one["n"].fillna(0), two["n"].fillna(0))
    changed["ci_low"], changed["ci_high"] = wald(
        changed["estimate"], changed["se"], critical(level, changed["df"])
    )
    out = pd.concat(
        [
            per_wave.assign(**{WAVE: per_wave[WAVE].astype(str)}),
            changed.reset_index().assign(**{WAVE: CHANGE}),
        ],
        ignore_index=True,
    )
    out["group_value"] = out[domain].astype(str) if domain else "all"
    out["n"] = out["n"].fillna(0).astype(int)
    out["n_least"] = out["n_least"].fillna(out["n"]).astype(int)
    return out[
        [
            "indicator",
            "group_value",
            WAVE,
            "estimate",
            "se",
            "ci_low",
            "ci_high",
            "df",
            "n",
            "se_independent",
            "n_least",
        ]
    ]
