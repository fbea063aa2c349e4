"""The annual evaluation: two waves of the resident survey, each weighted to its own frame, compared in
one stacked design, so that residential groups visited in both waves carry their covariance.

Indicators (named as the simulator's planted truth, ``analysis/simulate/truth.py``), per team of
``analysis/needs.yaml`` and for the centre:

- ``reach_<team>``: of those in need of the team (``in_need_<team>``: residents, households for a
  household team), the share whose household receives any of the team's services;
- ``unmet_<team>``: the share of the team's target population in need and receiving none of them;
- ``need_any_<team>``: stated demand, the share of households naming any of the team's services
  (``need_<team>``, "other" included);
- ``aware_centre`` (team ``centre``): the share of households that know the centre.

Each is a ratio of weighted totals on the person table; household answers enter as y_h / m_h over
1 / m_h (m_h members on the roster), the identity ``analysis/demand.py`` uses, so one calibrated
person design serves every indicator.

Stacking (:func:`stack_waves`): both waves' person tables one under the other with a ``wave`` column.
When the second wave revisited the first wave's residential groups, a group keeps one PSU id in both
waves and the strata are the 村居, so its two contributions fall in one PSU total and the covariance
of the two estimates is counted (R ``svyby(covmat=TRUE)`` then ``svycontrast``); below the group, each
wave's households are a stage of their own, taken with certainty, then drawn afresh (fpc: the
group's households that year). When the second wave drew its groups afresh, the waves are
independent samples: each keeps its own strata and PSUs (no covariance: V = V1 + V2). Person
weights are raked to each wave's own frame (margins crossed with the wave), which reproduces each
wave's own raked weights, and the variance accounts for the raking.

The change of a ratio R = A / B: a row's Taylor influence is (a − R b) / B, so the SE of R₂ − R₁ is that
of the change in the total of this linearised variable (``Design.compare``, statistic "total") over
the stacked design; for b = 1 it equals compare's own mean (tested).
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import indicators, weights
from analysis.errors import AnalysisError, DesignError
from analysis.survey import Design, logit_interval
from analysis.survey.intervals import critical, wald

CENTRE = "centre"
WAVE = "wave"
CHANGE = "change"
PSU_MODES = ("revisited", "fresh")
LEVEL = 0.95
DOMAINS = ("cunju",)
TABLE_COLUMNS = ["team", "indicator", "measure", "unit", "universe", "group", "group_value", "wave", "estimate",
                 "se", "ci_low", "ci_high", "df", "n", "se_independent", "significant", "suppressed", "note"]


# ----- indicators ----------------------------------------------------------------------------------------------

def indicator_specs(definitions: dict) -> pd.DataFrame:
    """One row per indicator: team, indicator, measure (reach, unmet, need_any, aware), unit, universe."""
    from analysis.demand import universe_text

    rows = []
    for team, spec in definitions["teams"].items():
        universe = universe_text(spec)
        rows += [(team, f"reach_{team}", "reach", spec["unit"], f"{universe} in need"),
                 (team, f"unmet_{team}", "unmet", spec["unit"], universe),
                 (team, f"need_any_{team}", "need_any", "households", "households")]
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
        in_need = table[f"in_need_{team}"] if table is not None else of_household(by_household[f"in_need_{team}"])
        put(f"reach_{team}", (1.0 - unmet).where(in_need == 1), spec["unit"])
        put(f"unmet_{team}", unmet, spec["unit"])
        stated = [c for c in (f"need_{team}.{s}" for s in [*spec["services"], "other"]) if c in households]
        need_any = indicators.any_flag(households[stated].apply(pd.to_numeric, errors="coerce")) if stated \
            else pd.Series(np.nan, index=households.index)
        put(f"need_any_{team}", of_household(need_any.set_axis(households["household_id"])), "households")
    aware = households["aware_centre"].map({"yes": 1.0, "no": 0.0}) if "aware_centre" in households \
        else pd.Series(np.nan, index=households.index)
    put("aware_centre", of_household(aware.set_axis(households["household_id"])), "households")
    return pd.concat([persons.reset_index(drop=True), pd.DataFrame(columns)], axis=1)


def asked(wave: Wave) -> set[str]:
    """Columns of a wave's clean tables holding at least one answer (a question asked in that wave)."""
    return {c for table in (wave.households, wave.persons) for c in table.columns if table[c].notna().any()}


def aligned(first: Wave, second: Wave) -> tuple[Wave, Wave]:
    """Both waves with the union of their columns: a question one wave did not ask is blank (NaN) there."""
    out = []
    for wave in (first, second):
        tables = {name: getattr(wave, name).reindex(columns=list(dict.fromkeys(
            [*getattr(wave, name).columns, *getattr(first, name).columns, *getattr(second, name).columns])))
            for name in ("households", "persons")}
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
    """Indicators of ``base`` (the wave's :func:`indicator_table`) that change when ``questions`` are blank."""
    def blank(table: pd.DataFrame) -> pd.DataFrame:
        gone = [c for c in table.columns if c in questions or c.split(".")[0] in questions]
        return table.assign(**{c: np.nan for c in gone})

    moved = indicator_table(blank(wave.households), blank(wave.persons), definitions)
    names = [c[4:] for c in base.columns if c.startswith("num:")]
    return [name for name in names if not all(
        np.array_equal(base[c].to_numpy(float), moved[c].to_numpy(float), equal_nan=True)
        for c in (f"num:{name}", f"den:{name}"))]


# ----- waves ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Wave:
    """One wave ready to stack: its year, weighted household and person tables (``analysis.weights``), the
    population frame of its year and its sample design. ``psus``: what a simulated survey folder says of
    its residential groups ("revisited" or "fresh"), else None."""

    year: int
    households: pd.DataFrame
    persons: pd.DataFrame
    frame: pd.DataFrame
    sample_design: pd.DataFrame
    simulated: bool = False
    psus: str | None = None
    fieldwork: str = ""


def weigh_wave(year: int, households: pd.DataFrame, persons: pd.DataFrame, sample_design: pd.DataFrame,
               frame: pd.DataFrame, **wave) -> Wave:
    """A wave from clean tables: weights built to its own ``frame`` (no replicates: the change's variance is
    Taylor's, over the stacked design)."""
    built = weights.build_weights(households, persons, sample_design, frame, replicates=0)
    return Wave(year, built.households, built.persons, frame, sample_design, **wave)


def psu_mode(first: Wave, second: Wave, declared: str | None = None) -> str:
    """"revisited" when the second wave went back to the first wave's residential groups, else "fresh".

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
            raise DesignError("the waves are said to revisit the same residential groups but share no PSU",
                              file="sample_design.csv", column="psu", hint="use fresh PSUs for independent samples")
    return mode


def stack_waves(first: Wave, second: Wave, tables: tuple[pd.DataFrame, pd.DataFrame], psus: str
                ) -> tuple[pd.DataFrame, dict]:
    """Both waves' person tables (``tables``: :func:`indicator_table` of each) stacked with the design columns
    ``eval_stratum``, ``eval_psu``, ``eval_unit`` (a group in one wave), ``eval_household`` and the raking
    cells crossed with the wave; returns the table and the margins of both frames (crossed the same way)."""
    parts, margins = [], {}
    for wave, table in zip((first, second), tables):
        tag = str(wave.year)
        psu, cunju = table["psu"].astype(str), table["cunju"].astype(str)
        part = table.assign(**{WAVE: wave.year, "eval_household": tag + ":" + table["household_id"].astype(str),
                               "eval_unit": psu + "@" + tag,
                               "eval_stratum": cunju if psus == "revisited" else cunju + "@" + tag,
                               "eval_psu": psu if psus == "revisited" else psu + "@" + tag})
        part = part.assign(**{f"eval_{var}": tag + "|" + part[var].astype(str) for var in weights.RAKE_VARIABLES})
        parts.append(part)
        for var, totals in weights.frame_margins(wave.frame).items():
            margins.setdefault(f"eval_{var}", {}).update({f"{tag}|{k}": v for k, v in totals.items()})
    stacked = pd.concat(parts, ignore_index=True)
    sizes = stacked.groupby("eval_stratum")["stratum_psus"].nunique()
    if (sizes > 1).any():
        raise DesignError(f"村居 {sizes.index[sizes > 1][0]} has a different number of residential groups in the two "
                          "waves' sample designs", file="sample_design.csv", column="stratum_psus",
                          hint="revisited groups need one frame of groups; compare the waves as fresh samples")
    stacked["eval_units_in_psu"] = stacked.groupby("eval_psu")["eval_unit"].transform("nunique")
    return stacked, margins


def stacked_design(stacked: pd.DataFrame, margins: dict, tol: float = 1e-10) -> Design:
    """The stacked design (strata, groups, group-in-wave, households; fpc at each stage) raked to both frames."""
    design = Design(stacked, weights="weight_prerake", strata="eval_stratum",
                    ids=["eval_psu", "eval_unit", "eval_household"],
                    fpc=["stratum_psus", "eval_units_in_psu", "psu_households"], lonely_psu="adjust")
    return design.rake(margins, tol=tol)


def _with_columns(design: Design, columns: dict) -> Design:
    """The same design (weights, calibration) with ``columns`` added to its data (same rows, same order)."""
    new = copy.copy(design)
    new.data = design.data.assign(**columns)
    return new


# ----- estimates -----------------------------------------------------------------------------------------------

def _respondents(table: pd.DataFrame, specs: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Respondents behind each estimate: persons, or households for a household indicator."""
    rows = []
    for spec in specs.itertuples():
        inside = table[f"den:{spec.indicator}"].notna()
        unit = "eval_household" if spec.unit == "households" else None
        part = table.loc[inside, by + ([unit] if unit else [])]
        n = part.drop_duplicates().groupby(by).size() if unit else part.groupby(by).size()
        rows.append(n.rename("n").reset_index().assign(indicator=spec.indicator))
    return pd.concat(rows, ignore_index=True)


def linearised(design: Design, specs: pd.DataFrame, by: list[str]) -> tuple[pd.DataFrame, dict]:
    """Each indicator's ratio R = Σw·num / Σw·den per group of ``by`` (columns indicator, the ``by`` columns,
    estimate), and its linearised variable (num − R·den) / Σw·den on every row (``lin:<indicator>``)."""
    data, w = design.data, np.asarray(design.weights, dtype=float)
    groups = data.groupby(by, sort=True).ngroup().to_numpy()
    keys = data[by].drop_duplicates().sort_values(by).reset_index(drop=True)
    ratios, linear = [], {}
    for spec in specs.itertuples():
        a, b = data[f"num:{spec.indicator}"].to_numpy(float), data[f"den:{spec.indicator}"].to_numpy(float)
        inside = ~np.isnan(a) & ~np.isnan(b)
        top = np.bincount(groups[inside], weights=(w * a)[inside], minlength=len(keys))
        bottom = np.bincount(groups[inside], weights=(w * b)[inside], minlength=len(keys))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = top / bottom
            linear[f"lin:{spec.indicator}"] = np.where(inside, (a - ratio[groups] * b) / bottom[groups], np.nan)
        ratios.append(keys.assign(indicator=spec.indicator, estimate=ratio))
    return pd.concat(ratios, ignore_index=True), linear


def estimate(design: Design, specs: pd.DataFrame, domain: str | None, first: int, second: int,
             level: float = LEVEL) -> pd.DataFrame:
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
    per_wave = per_wave.merge(_respondents(design.data, specs, by), on=by + ["indicator"], how="left")
    per_wave["ci_low"], per_wave["ci_high"] = logit_interval(per_wave["estimate"], per_wave["se"], per_wave["df"],
                                                             level)
    changed = lin.compare(list(linear), by=WAVE, first=first, second=second, statistic="total", domains=domain,
                          na_rm=True, level=level, df="domain")
    changed["indicator"] = changed["variable"].str.removeprefix("lin:")
    changed = changed.set_index(keys)[["se", "df"]]
    one, two = (per_wave[per_wave[WAVE] == year].set_index(keys).reindex(changed.index) for year in (first, second))
    changed["estimate"] = two["estimate"] - one["estimate"]
    changed["se_independent"] = np.hypot(one["se"], two["se"])
    changed["n"] = one["n"].fillna(0) + two["n"].fillna(0)
    changed["n_least"] = np.minimum(one["n"].fillna(0), two["n"].fillna(0))
    changed["ci_low"], changed["ci_high"] = wald(changed["estimate"], changed["se"], critical(level, changed["df"]))
    out = pd.concat([per_wave.assign(**{WAVE: per_wave[WAVE].astype(str)}),
                     changed.reset_index().assign(**{WAVE: CHANGE})], ignore_index=True)
    out["group_value"] = out[domain].astype(str) if domain else "all"
    out["n"] = out["n"].fillna(0).astype(int)
    out["n_least"] = out["n_least"].fillna(out["n"]).astype(int)
    return out[["indicator", "group_value", WAVE, "estimate", "se", "ci_low", "ci_high", "df", "n",
                "se_independent", "n_least"]]


# ----- the evaluation ------------------------------------------------------------------------------------------

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

    def headline(self) -> pd.DataFrame:
        """Leliu-wide rows, one per indicator and wave, the change last."""
        return self.table[self.table["group"] == "all"].reset_index(drop=True)


def compare_waves(first: Wave, second: Wave, tables: tuple[pd.DataFrame, pd.DataFrame], specs: pd.DataFrame,
                  psus: str, domains: tuple[str, ...] = DOMAINS, level: float = LEVEL) -> tuple[pd.DataFrame, float]:
    """Unsuppressed estimates of ``specs`` (Leliu-wide, then per domain) from the two waves' indicator
    ``tables``, and the largest relative gap between the stacked design's raked weights and the waves' own."""
    stacked, margins = stack_waves(first, second, tables, psus)
    design = stacked_design(stacked, margins)
    gap = float(np.max(np.abs(np.asarray(design.weights) / stacked["weight"].to_numpy(float) - 1)))
    parts = [estimate(design, specs, None, first.year, second.year, level).assign(group="all")]
    parts += [estimate(design, specs, d, first.year, second.year, level).assign(group=d) for d in domains]
    estimates = pd.concat(parts, ignore_index=True).merge(specs, on="indicator", how="left")
    change = (estimates[WAVE] == CHANGE).to_numpy()
    estimates["significant"] = pd.array(np.where(change, (estimates["ci_low"] > 0) | (estimates["ci_high"] < 0),
                                                 False), dtype="boolean")
    estimates.loc[~change | estimates["estimate"].isna().to_numpy(), "significant"] = pd.NA
    estimates["note"] = ""
    return _order(estimates, specs), gap


def evaluate(first: Wave, second: Wave, definitions: dict | None = None, psus: str | None = None,
             domains: tuple[str, ...] = DOMAINS, threshold: int = 10, level: float = LEVEL) -> Evaluation:
    """Compare two waves: per indicator, each wave's estimate and the change, Leliu-wide and per domain;
    indicators resting on a question only one wave asked are left out and listed (``note``)."""
    definitions = indicators.load_needs() if definitions is None else definitions
    first, second = sorted((first, second), key=lambda w: w.year)
    if first.year == second.year:
        raise AnalysisError(f"both waves are from {first.year}", hint="give each wave's year (--years 2012 2013)")
    mode = psu_mode(first, second, psus)
    first, second = aligned(first, second)
    gone = left_out(first, second, definitions)
    specs = indicator_specs(definitions)
    tables = tuple(indicator_table(w.households, w.persons, definitions) for w in (first, second))
    estimates, gap = compare_waves(first, second, tables, specs[~specs["indicator"].isin(list(gone))], mode,
                                   domains, level)
    notes = specs[specs["indicator"].isin(list(gone))]
    notes = notes.assign(group="all", group_value="all", **{WAVE: CHANGE}, suppressed=False,
                         note=[f"left out: {', '.join(gone[i])} asked in one wave only" for i in notes["indicator"]])
    table = pd.concat([suppress(estimates, threshold), notes], ignore_index=True).reindex(columns=TABLE_COLUMNS)
    return Evaluation(table, estimates, gone, (first.year, second.year), mode, first.simulated or second.simulated,
                      gap, (first, second))


def _order(table: pd.DataFrame, specs: pd.DataFrame) -> pd.DataFrame:
    """Rows by indicator (the specs' order), group (all first), group value, then waves and the change."""
    order = {i: k for k, i in enumerate(specs["indicator"])}
    key = table.assign(_i=table["indicator"].map(order), _g=(table["group"] != "all").astype(int),
                       _w=(table[WAVE] == CHANGE).astype(int))
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
    planted = truth_change[(truth_change["group"] == "all") & truth_change["variable"].isin(rows["indicator"])]
    planted = planted.drop_duplicates("variable").set_index("variable")["proportion_change"]
    out = rows[["team", "indicator", "estimate", "se", "se_independent", "df", "ci_low", "ci_high"]].assign(
        planted=rows["indicator"].map(planted).to_numpy())
    out["covered"] = (out["ci_low"] <= out["planted"]) & (out["planted"] <= out["ci_high"])
    q = critical(LEVEL, out["df"])
    out["covered_independent"] = (out["estimate"] - out["planted"]).abs() <= q * out["se_independent"]
    return out.reset_index(drop=True)


# ----- survey folders and outputs -----------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FORM = ROOT / "survey" / "instrument" / "leliu_needs_survey.xlsx"
EXPORT_SUFFIXES = (".xlsx", ".csv", ".sav")


def find_export(folder: Path) -> Path:
    """The folder holding a survey folder's raw export: ``raw/kobo`` (Kobo), else ``raw/wjx`` (问卷星), else
    ``raw`` (the reader picks the main file; the Kobo folder's CSV and xlsx give the same clean tables)."""
    for sub in ("raw/kobo", "raw/wjx", "raw"):
        place = folder / sub
        if place.is_dir() and any(p.suffix.lower() in EXPORT_SUFFIXES for p in place.iterdir()):
            return place
    raise AnalysisError("no raw export in this survey folder", file=str(folder / "raw"),
                        hint="a wave folder holds raw/ (the export) and frame/ (population_frame.csv, "
                             "sample_design.csv), as survey/ does")


def fieldwork_year(households: pd.DataFrame) -> int | None:
    """The year most interviews took place (``today``, else ``start``), or None without dates."""
    for column in ("today", "start"):
        if column in households:
            dates = pd.to_datetime(households[column], errors="coerce", utc=True).dropna()
            if len(dates):
                return int(dates.dt.year.mode().min())
    return None


def read_wave(folder: str | Path, out: str | Path, year: int | None = None, form: str | Path | None = None) -> Wave:
    """One survey folder through the main job's clean and weights stages (``out/clean``, ``out/weights``;
    no replicate weights), weighted to the folder's own frame.

    The form is ``form``, else the folder's ``instrument/*.xlsx``, else the bundled one; the year is
    ``year``, else the year of most interviews.
    """
    from analysis import pipeline

    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise AnalysisError("survey folder not found", file=str(folder), hint="pass two survey folders to --waves")
    for name in ("population_frame", "sample_design"):
        if not (folder / "frame" / f"{name}.csv").is_file():
            raise AnalysisError("the survey folder has no frame file", file=str(folder / "frame" / f"{name}.csv"),
                                hint="each wave needs its own frame/population_frame.csv and frame/sample_design.csv")
    form = Path(form) if form else next(iter(sorted((folder / "instrument").glob("*.xlsx"))), DEFAULT_FORM)
    inputs = pipeline.Inputs(data=find_export(folder), form=form, frame=folder / "frame")
    pipeline.clean(out, inputs, fig_dir=None)
    built = pipeline.weights(out, inputs, fig_dir=None, replicates=0).built
    raw = folder / "raw" / "PROVENANCE.json"
    psus = json.loads(raw.read_text(encoding="utf-8")).get("psus") if raw.is_file() else None
    year = year or fieldwork_year(built.households)
    if year is None:
        raise AnalysisError("cannot tell the year of this wave (no interview dates)", file=str(folder),
                            hint="give the years with --years 2012 2013")
    note = pipeline.data_note(out)
    return Wave(year, built.households, built.persons, pd.read_csv(inputs.frame / "population_frame.csv"),
                pd.read_csv(inputs.sample_design), simulated=note.simulated, psus=psus, fieldwork=note.date)


def figure_note(evaluation: Evaluation, labels):
    """The footnote facts of the evaluation figure: both waves' interviews, dates and frames."""
    from analysis.figures import Note

    first, second = evaluation.waves
    counts = {f"{key}_{unit}": len(getattr(wave, unit)) for key, wave in (("first", first), ("second", second))
              for unit in ("households", "persons")}
    return Note(households=counts["first_households"] + counts["second_households"],
                persons=counts["first_persons"] + counts["second_persons"],
                date=f"{first.fieldwork} · {second.fieldwork}", simulated=evaluation.simulated,
                weighted_to=labels("figures.annual_change.weighted_to")), \
        labels("figures.annual_change.n_waves", first=first.year, second=second.year, **counts)


def write_evaluation(evaluation: Evaluation, out: str | Path, definitions: dict | None = None) -> dict[str, Path]:
    """Write ``evaluation.csv`` (the tidy, suppressed table), ``summary.json`` (the paragraph in zh and en)
    and, for simulated waves, ``DATA_SOURCE.txt``; returns the paths by name."""
    from analysis.pipeline import SIMULATED_NOTE

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "evaluation.csv", "summary": out / "summary.json", "note": out / "DATA_SOURCE.txt"}
    evaluation.table.to_csv(paths["table"], index=False, lineterminator="\n")
    text = {lang: summary(evaluation, lang, definitions) for lang in ("zh", "en")}
    paths["summary"].write_text(json.dumps(text, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if evaluation.simulated:
        paths["note"].write_text(SIMULATED_NOTE, encoding="utf-8")
    else:
        paths["note"].unlink(missing_ok=True)
        del paths["note"]
    return paths


def run_evaluation(folders: list[str | Path], out: str | Path, fig_dir: str | Path | None = ROOT / "figures",
                   years: list[int] | None = None, psus: str | None = None, form: str | Path | None = None,
                   threshold: int | None = None) -> Evaluation:
    """``python -m analysis evaluate``: clean and weight each wave (``out/waves/<year>/clean``), compare them,
    write the table and summary into ``out`` and the figure ``annual_change`` into ``fig_dir``."""
    from analysis import figures
    from analysis.demand import leadership_threshold

    if len(folders) != 2:
        raise AnalysisError(f"{len(folders)} waves given; the evaluation compares two", hint="--waves FIRST SECOND")
    out = Path(out)
    waves = []
    for k, folder in enumerate(folders):
        draft = out / "waves" / f".wave{k + 1}"
        wave = read_wave(folder, draft, None if years is None else years[k], form)
        target = out / "waves" / str(wave.year)
        if target.exists():
            shutil.rmtree(target)
        draft.rename(target)
        waves.append(wave)
    evaluation = evaluate(*waves, psus=psus, threshold=leadership_threshold() if threshold is None else threshold)
    write_evaluation(evaluation, out)
    if fig_dir is not None:
        labels, english = figures.load_labels("zh"), figures.load_labels("en")
        note, extra = figure_note(evaluation, labels)
        figures.save_figures({"annual_change": figures.annual_change(evaluation.table, labels, note, english,
                                                                      extra_note=extra)}, fig_dir)
    return evaluation


# ----- the summary paragraph -----------------------------------------------------------------------------------

def _percent(p: float) -> str:
    return f"{100 * p:.0f}%"


def _points(d: float) -> str:
    return f"{100 * d:+.1f}"


def summary(evaluation: Evaluation, lang: str = "zh", definitions: dict | None = None) -> str:
    """One paragraph on the Leliu-wide changes in ``lang`` ("zh" or "en"), numbers from the table.

    A change is said to rise or fall only when its 95% interval excludes zero (read from ``ci_low`` and
    ``ci_high`` themselves); every other change is "no clear change", whatever its estimate.
    """
    from analysis.figures import load_labels

    labels = load_labels(lang)
    definitions = indicators.load_needs() if definitions is None else definitions
    text = lambda key, **values: labels(f"evaluation.{key}", **values)
    first, second = evaluation.years
    rows = evaluation.headline()
    clauses = []
    for measure in ("reach", "unmet", "need_any", "aware"):
        of = rows[rows["measure"] == measure]
        parts = {"rose": [], "fell": [], "unclear": [], "not_shown": []}
        for indicator, group in of.groupby("indicator", sort=False):
            waves = group.set_index("wave")
            if CHANGE not in waves.index or pd.isna(waves.loc[CHANGE, "estimate"]):
                if not (waves["note"].astype(str).str.len() > 0).any():  # left out: said once, below
                    parts["not_shown"].append(_name(group["team"].iloc[0], labels, definitions))
                continue
            change = waves.loc[CHANGE]
            name = _name(change["team"], labels, definitions)
            if not (change["ci_low"] > 0 or change["ci_high"] < 0):
                parts["unclear"].append(name)
                continue
            item = text("item", name=name, first=_percent(waves.loc[str(first), "estimate"]),
                        second=_percent(waves.loc[str(second), "estimate"]), change=_points(change["estimate"]),
                        low=_points(change["ci_low"]), high=_points(change["ci_high"]))
            parts["rose" if change["estimate"] > 0 else "fell"].append(item)
        said = [text(kind, **{"names" if kind in ("unclear", "not_shown") else "items": _listing(items, lang)})
                for kind, items in parts.items() if items]
        if said:
            clauses.append(text("measure", measure=labels(f"evaluation.{measure}"),
                                parts=("，" if lang == "zh" else ", and ").join(said)))
    sentences = [text("opening", first=first, second=second, simulated=text("simulated") if evaluation.simulated
                      else "") + text("join").join(clauses) + text("stop")]
    if evaluation.left_out:
        gone = evaluation.table[evaluation.table["indicator"].isin(list(evaluation.left_out))]
        names = [f"{labels('evaluation.' + m)} · {_name(t, labels, definitions)}"
                 for m, t in zip(gone["measure"], gone["team"])]
        sentences.append(text("left_out", names=_listing(list(dict.fromkeys(names)), lang)))
    sentences += [text(evaluation.psus, second=second), text("rule")]
    return ("" if lang == "zh" else " ").join(sentences)


def _listing(items: list[str], lang: str) -> str:
    """"a、b、c" in Chinese, "a, b and c" in English."""
    if lang == "zh" or len(items) < 2:
        return "、".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _name(team: str, labels, definitions: dict) -> str:
    """A team's display name (``needs.yaml``); the centre's row is all households."""
    if team == CENTRE:
        return labels("evaluation.centre")
    return definitions["teams"][team].get("label", {}).get(labels.lang, team)
