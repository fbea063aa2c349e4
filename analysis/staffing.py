"""Team sizing: WISN workload -> required social workers per team -> apportionment of the fixed posts.

Owns: the WISN arithmetic, the apportionment methods, the chain over replicates, the sensitivity and
break-even searches, the staffing tables and the sentence for leaders. Reading assumptions.yaml is
:mod:`analysis.config`'s (validated there); which files the stage reads and writes is
:mod:`analysis.pipeline`'s.

The chain (notebook ``04_team_sizing``) reads the demand stage's drivers (``demand/drivers.csv``, one
row per team and driver; ``drivers_replicates.parquet`` adds a ``replicate`` column) and the planning
assumptions in ``analysis/assumptions.yaml``:

1. ``team_demand``: residents in need per team and the survey take-up (would use / need).
2. ``workload``: annual workload of each activity (casework contacts, home visits, group sessions,
   community events) per team.
3. ``required_staff``: WHO WISN (docs/sources.md §3) -> required social workers per team.
4. ``allocate``: apportion the plan's 10 social workers and 15 other staff (docs/sources.md §7).

Every step works on all bootstrap replicates at once (a ``replicate`` column), so the uncertainty of
the survey flows through to the allocation (``replicate_summary``); ``tornado`` and ``break_even``
vary one assumption at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import config
from analysis.errors import AnalysisError, ConfigError

ASSUMPTIONS_PATH = config.ASSUMPTIONS_PATH
METHODS = ("hamilton", "webster", "huntington_hill", "jefferson")


# --------------------------------------------------------------------------------------------------
# Apportionment (docs/sources.md §7)
# --------------------------------------------------------------------------------------------------


def _divisor_priority(weights: np.ndarray, counts: np.ndarray, method: str) -> np.ndarray:
    """Priority w / d(n) of the next seat for each unit; d(n) per docs/sources.md §7.

    Huntington–Hill's d(0) = 0 gives a unit with positive weight and no seat infinite priority
    (so every such unit is seated first); a unit with zero weight never has priority above 0.
    """
    if method == "jefferson":
        divisor = counts + 1.0
    elif method == "webster":
        divisor = counts + 0.5
    else:
        divisor = np.sqrt(counts * (counts + 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        priority = weights / divisor
    return np.where(weights > 0, priority, 0.0)


def _ranked_first(score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Column order per row: highest score first, ties to the larger weight, then the lower column."""
    column = np.broadcast_to(np.arange(score.shape[1]), score.shape)
    return np.lexsort((column, -weights, -score), axis=-1)


def _hamilton(weights: np.ndarray, seats: int, minimum: int) -> np.ndarray:
    """Largest remainder with a floor: units whose quota is below ``minimum`` get the minimum and the
    remaining seats are re-divided among the others (repeated until no quota is below the minimum),
    so a minimum that does not bind changes nothing."""
    units = weights.shape[1]
    fixed = np.zeros_like(weights, dtype=bool)
    for _ in range(units):
        free_seats = seats - minimum * fixed.sum(axis=1, keepdims=True)
        free_weight = np.where(fixed, 0.0, weights)
        total = free_weight.sum(axis=1, keepdims=True)
        quota = np.divide(free_seats * free_weight, total, out=np.zeros_like(weights), where=total > 0)
        newly_fixed = ~fixed & (quota < minimum)
        if not newly_fixed.any():
            break
        fixed |= newly_fixed
    base = np.where(fixed, minimum, np.floor(quota)).astype(int)
    left = seats - base.sum(axis=1, keepdims=True)
    remainder = np.where(fixed, -np.inf, quota - np.floor(quota))
    order = _ranked_first(remainder, weights)
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.broadcast_to(np.arange(units), order.shape), axis=1)
    return base + (position < left).astype(int)


def apportion_many(weights: np.ndarray, seats: int, method: str = "hamilton", minimum: int = 0) -> np.ndarray:
    """Apportion ``seats`` for every row of ``weights`` (rows = replicates, columns = teams) at once.

    Ties are broken by the larger weight, then by the lower column index. Divisor methods give each
    unit ``minimum`` seats and continue their priority sequence from there (Huntington–Hill's
    d(n) = sqrt(n(n+1)) with minimum 1 is the US House rule); Hamilton fixes units whose quota is
    below the minimum at the minimum and divides the rest by largest remainder.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    if method not in METHODS:
        raise ConfigError(f"unknown apportionment method '{method}'", hint=f"use one of {', '.join(METHODS)}")
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise AnalysisError(
            "apportionment weights must be finite and non-negative",
            hint="check the required staff per team for missing or negative values",
        )
    if int(seats) != seats or seats < 0 or int(minimum) != minimum or minimum < 0:
        raise ConfigError(f"seats ({seats}) and minimum ({minimum}) must be non-negative whole numbers")
    seats, minimum = int(seats), int(minimum)
    rows, units = weights.shape
    if minimum * units > seats:
        raise ConfigError(
            f"a minimum of {minimum} for each of {units} teams needs {minimum * units} posts, "
            f"but only {seats} are available",
            hint="lower the per-team minimum",
        )
    if seats > minimum * units and (weights.sum(axis=1) == 0).any():
        raise AnalysisError(
            "every apportionment weight is zero, so there is nothing to divide by",
            hint="check that the demand drivers are not all zero",
        )
    if method == "hamilton":
        return _hamilton(weights, seats, minimum)
    counts = np.full(weights.shape, minimum, dtype=int)
    every_row = np.arange(rows)
    for _ in range(seats - minimum * units):
        priority = _divisor_priority(weights, counts.astype(float), method)
        counts[every_row, _ranked_first(priority, weights)[:, 0]] += 1
    return counts


def apportion(
    weights: dict[str, float], seats: int, method: str = "hamilton", minimum: int = 0
) -> dict[str, int]:
    """Divide ``seats`` whole posts among teams in proportion to ``weights`` (docs/sources.md §7).

    ``method``: "hamilton" (largest remainder, default), "webster" (Sainte-Laguë, d(n) = n + 1/2),
    "huntington_hill" (d(n) = sqrt(n(n+1))) or "jefferson" (D'Hondt, d(n) = n + 1). Every team first
    receives ``minimum``. Ties go to the team with the larger weight, then to the team whose name sorts
    first, so the result never depends on dict order.
    """
    names = sorted(weights)
    counts = apportion_many(
        np.array([[weights[name] for name in names]], dtype=float), seats, method, minimum
    )
    allocation = dict(zip(names, counts[0].tolist()))
    return {name: allocation[name] for name in weights}


# --------------------------------------------------------------------------------------------------
# WISN (docs/sources.md §3)
# --------------------------------------------------------------------------------------------------


def available_working_time(
    *,
    weeks: float = 52,
    days_per_week: float = 5,
    public_holidays: float = 0,
    annual_leave: float = 0,
    sick_leave: float = 0,
    other_leave: float = 0,
    hours_per_day: float = 8,
):
    """Available working time AWT = [A − (B + C + D + E)] × F (WHO WISN; docs/sources.md §3.1).

    A = weeks × days_per_week possible working days; B public holidays; C annual leave; D sick leave;
    E other leave (training); F hours per day. Pass ``hours_per_day=1`` to keep AWT in days (the Kenya
    example, docs/sources.md §3.2). Works element-wise on arrays.
    """
    return (
        weeks * days_per_week - (public_holidays + annual_leave + sick_leave + other_leave)
    ) * hours_per_day


def allowance_factors(
    awt, cas_hours, cas_per, ias_hours, hours_per_day: float = 8, days_per_week: float = 5
) -> tuple[np.ndarray, float, float, float]:
    """Category and individual allowance factors (docs/sources.md §3.1 steps 4 and 6).

    Each category allowance standard (CAS) becomes a share of working time: hours per ``day`` ÷ hours
    per day, per ``week`` ÷ weekly hours, per ``year`` ÷ AWT (in the unit AWT is kept in). Returns
    (shares, TCAS, CAF = 1 / (1 − TCAS), IAF = Σ IAS ÷ AWT).
    """
    per = np.asarray(cas_per, dtype=object)
    unknown = sorted(set(per.tolist()) - {"day", "week", "year"})
    if unknown:
        raise ConfigError(f"category allowance period {unknown} is not one of day, week, year")
    divisor = np.select([per == "day", per == "week"], [hours_per_day, hours_per_day * days_per_week], awt)
    shares = np.asarray(cas_hours, dtype=float) / divisor.astype(float)
    tcas = float(shares.sum())
    if tcas >= 1:
        raise ConfigError(
            f"category allowances take {tcas:.0%} of working time, leaving none for service",
            hint="check the hours and periods of the category allowances",
        )
    return shares, tcas, 1.0 / (1.0 - tcas), float(np.sum(ias_hours)) / awt


def wisn(
    awt_hours: float,
    activities: list[dict] | pd.DataFrame,
    category_allowances: list[dict] | pd.DataFrame,
    individual_allowances: list[dict] | pd.DataFrame,
    current_staff: float,
    hours_per_day: float = 8,
    days_per_week: float = 5,
) -> dict[str, Any]:
    """WHO Workload Indicators of Staffing Need for one staff category (docs/sources.md §3.1, steps 5–8).

    ``activities``: rows with ``activity``, ``annual_workload`` (units per year) and ``unit_time``
    (hours per unit, or days if AWT is in days). ``category_allowances``: rows with ``name``,
    ``hours`` and ``per`` (day / week / year). ``individual_allowances``: rows with ``name`` and
    ``hours`` per year, summed over the staff who do them.

    Returns the steps: ``activities`` (with standard workload SW = AWT / unit time and staff =
    workload / SW), ``service_staff``, ``category_allowances`` (with each share), ``tcas``,
    ``caf`` = 1 / (1 − TCAS), ``iaf`` = Σ IAS / AWT, ``required`` = service staff × CAF + IAF,
    ``wisn_ratio`` = current / required and ``difference`` = current − required (unrounded).
    """
    steps = pd.DataFrame(activities, columns=["activity", "annual_workload", "unit_time"])
    steps["standard_workload"] = awt_hours / steps["unit_time"]
    steps["staff"] = steps["annual_workload"] / steps["standard_workload"]
    cas = pd.DataFrame(category_allowances, columns=["name", "hours", "per"])
    ias = pd.DataFrame(individual_allowances, columns=["name", "hours"])
    cas["share"], tcas, caf, iaf = allowance_factors(
        awt_hours, cas["hours"], cas["per"], ias["hours"], hours_per_day, days_per_week
    )
    service_staff = float(steps["staff"].sum())
    required = service_staff * caf + iaf
    return {
        "awt": awt_hours,
        "activities": steps,
        "service_staff": service_staff,
        "category_allowances": cas,
        "tcas": tcas,
        "caf": caf,
        "individual_allowances": ias,
        "iaf": iaf,
        "required": required,
        "current_staff": current_staff,
        "wisn_ratio": current_staff / required,
        "difference": current_staff - required,
    }


# --------------------------------------------------------------------------------------------------
# Assumptions (analysis/assumptions.yaml)
# --------------------------------------------------------------------------------------------------

ACTIVITIES = {  # activity: (contacts per participant key, participants per unit key); None = 1
    "casework": ("contacts_per_case", None),
    "home_visits": ("visits_per_case", None),
    "group_sessions": ("sessions_per_group", "group_size"),
    "community_events": (None, "attendance_per_event"),
}
WORKING_TIME_KEYS = (
    "weeks_per_year",
    "days_per_week",
    "public_holidays",
    "annual_leave",
    "sick_leave",
    "training_days",
    "hours_per_day",
)
# Leaves that change the required social workers (the tornado and break-even search vary these).
SIZING_SECTIONS = ("working_time", "category_allowances", "individual_allowances", "teams")


def _leaves(node: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """(dotted key, leaf) for every dict carrying a ``value``, in file order."""
    found = []
    for key, child in node.items():
        path = f"{prefix}{key}"
        if isinstance(child, dict) and "value" in child:
            found.append((path, child))
        elif isinstance(child, dict):
            found.extend(_leaves(child, path + "."))
    return found


def load_assumptions(path: str | Path = ASSUMPTIONS_PATH, needs: dict | None = None) -> dict:
    """Read and validate ``assumptions.yaml`` (default: the one bundled with the package).

    Its teams must be the teams of ``needs.yaml`` (``needs``, default the bundled definitions) and come
    back in that file's order (:func:`analysis.config.load_assumptions`).
    """
    return config.load_assumptions(path, config.load_needs() if needs is None else needs)


def value(assumptions: dict, key: str) -> float:
    """The number behind a dotted key, e.g. ``value(a, "teams.elderly.casework.coverage")``."""
    node = assumptions
    for part in key.split("."):
        node = node[part]
    return float(node["value"])


def with_value(assumptions: dict, key: str, new_value: float) -> dict:
    """A copy of ``assumptions`` with one leaf's value replaced (the original is untouched).

    Only the dicts on the key's path are copied (the sensitivity analysis calls this hundreds of times;
    a deep copy of the whole tree was 5% of the staffing stage); the rest is shared, so treat the copy as
    read-only apart from that leaf.
    """
    changed = dict(assumptions)
    node = changed
    for part in key.split("."):
        node[part] = dict(node[part])
        node = node[part]
    node["value"] = float(new_value)
    return changed


def teams(assumptions: dict) -> list[str]:
    """Team names in the order of needs.yaml (:func:`load_assumptions` puts the teams in that order)."""
    return list(assumptions["teams"])


def assumptions_table(assumptions: dict) -> pd.DataFrame:
    """Every numeric assumption as a row: key, value, low, high, source, assumption."""
    rows = [
        {
            "key": key,
            "value": leaf["value"],
            "low": leaf["range"][0],
            "high": leaf["range"][1],
            "source": leaf.get("source", ""),
            "assumption": bool(leaf.get("assumption", False)),
        }
        for key, leaf in _leaves(assumptions)
    ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# The sizing chain: drivers -> demand per team -> workload -> WISN required staff -> allocation
# --------------------------------------------------------------------------------------------------


def _keys(df: pd.DataFrame) -> list[str]:
    return ["replicate"] if "replicate" in df.columns else []


def team_demand(drivers: pd.DataFrame, assumptions: dict, file: str = "demand/drivers.csv") -> pd.DataFrame:
    """Residents in need per team and the survey take-up, from ``demand/drivers.csv``.

    take_up = Σ would_use:<service> ÷ Σ need:<service> over the team's service lines (households;
    capped at 1); ``willing`` = in_need × take_up, the residents (family: households) in need who
    would use the centre. Keeps ``replicate`` when present.
    """
    missing = [c for c in ("team", "driver", "estimate") if c not in drivers.columns]
    if missing:
        raise AnalysisError(
            "drivers table lacks a column",
            file=file,
            column=missing[0],
            hint="the demand stage writes team, driver, estimate (docs/contracts.md)",
        )
    keys = _keys(drivers)
    estimate = pd.to_numeric(drivers["estimate"], errors="coerce")
    if estimate.isna().any() or (estimate < 0).any():
        row = int(np.flatnonzero((estimate.isna() | (estimate < 0)).to_numpy())[0])
        raise AnalysisError(
            "a driver estimate is missing, negative or not a number",
            file=file,
            row=row + 2,
            column="estimate",
            hint="rerun the demand stage; every driver needs a number",
        )
    kind = drivers["driver"].astype(str).str.split(":").str[0].rename("kind")
    wide = (
        drivers.assign(kind=kind, estimate=estimate)
        .pivot_table(index=[*keys, "team"], columns="kind", values="estimate", aggfunc="sum")
        .reset_index()
    )
    for team in teams(assumptions):
        if team not in set(wide["team"]):
            raise AnalysisError(
                f"no drivers for team '{team}'",
                file=file,
                column="team",
                hint="the teams in assumptions.yaml must match the demand stage's teams",
            )
    for column in ("in_need", "need", "would_use"):
        if column not in wide.columns or wide[column].isna().any():
            raise AnalysisError(
                f"driver '{column}' is missing or not numeric for some team",
                file=file,
                column="driver",
                hint="expected in_need, need:<service>, would_use:<service>",
            )
    wide = wide[wide["team"].isin(teams(assumptions))]
    take_up = np.divide(wide["would_use"], wide["need"], out=np.zeros(len(wide)), where=wide["need"] > 0)
    out = wide[[*keys, "team", "in_need", "need", "would_use"]].copy()
    if "receiving" in wide.columns:
        out["receiving"] = wide["receiving"]
    out["take_up"] = np.clip(take_up, 0.0, 1.0)
    out["willing"] = out["in_need"] * out["take_up"]
    out.columns.name = None
    order = {t: i for i, t in enumerate(teams(assumptions))}
    return out.sort_values(
        [*keys, "team"], key=lambda s: s.map(order) if s.name == "team" else s, ignore_index=True
    )


def activity_table(assumptions: dict) -> pd.DataFrame:
    """One row per team and activity: coverage, contacts per participant, unit size, unit time (h)."""
    rows = []
    for team in teams(assumptions):
        for activity, (per_participant, unit_size) in ACTIVITIES.items():
            prefix = f"teams.{team}.{activity}."
            rows.append(
                {
                    "team": team,
                    "activity": activity,
                    "coverage": value(assumptions, prefix + "coverage"),
                    "contacts_per_participant": value(assumptions, prefix + per_participant)
                    if per_participant
                    else 1.0,
                    "participants_per_unit": value(assumptions, prefix + unit_size) if unit_size else 1.0,
                    "unit_time_hours": value(assumptions, prefix + "unit_time_hours"),
                }
            )
    return pd.DataFrame(rows)


def workload(demand: pd.DataFrame, assumptions: dict) -> pd.DataFrame:
    """Annual workload of each activity per team (units per year and hours per year).

    participants = willing × coverage; units = participants ÷ participants per unit (cases, groups to
    run, or events); annual_workload = units × contacts per participant (casework contacts, home
    visits, group sessions, events). Group work is kept fractional (no rounding up to whole groups)
    so that small changes move the result smoothly.
    """
    keys = _keys(demand)
    table = demand[[*keys, "team", "willing"]].merge(activity_table(assumptions), on="team")
    table["participants"] = table["willing"] * table["coverage"]
    table["units"] = table["participants"] / table["participants_per_unit"]
    table["annual_workload"] = table["units"] * table["contacts_per_participant"]
    table["workload_hours"] = table["annual_workload"] * table["unit_time_hours"]
    return table


def awt_hours(assumptions: dict) -> float:
    """Available working time of one full-time social worker, hours per year (docs/sources.md §3.1)."""
    v = {k: value(assumptions, f"working_time.{k}") for k in WORKING_TIME_KEYS}
    return available_working_time(
        weeks=v["weeks_per_year"],
        days_per_week=v["days_per_week"],
        public_holidays=v["public_holidays"],
        annual_leave=v["annual_leave"],
        sick_leave=v["sick_leave"],
        other_leave=v["training_days"],
        hours_per_day=v["hours_per_day"],
    )


def required_staff(work: pd.DataFrame, assumptions: dict) -> pd.DataFrame:
    """WISN required social workers per team (and per replicate), with the steps in between.

    Same formulas as :func:`wisn`, vectorised over teams and replicates: staff per activity =
    workload ÷ (AWT ÷ unit time); required = Σ staff × CAF + IAF. Also the caseload cross-check:
    active cases ÷ the caseload norm of docs/sources.md §2.5.
    """
    keys = _keys(work)
    names = teams(assumptions)
    awt = awt_hours(assumptions)
    cas = assumptions.get("category_allowances") or {}
    _, _, caf, iaf = allowance_factors(
        awt,
        [leaf["value"] for leaf in cas.values()],
        [leaf["per"] for leaf in cas.values()],
        [leaf["value"] for leaf in (assumptions.get("individual_allowances") or {}).values()],
        value(assumptions, "working_time.hours_per_day"),
        value(assumptions, "working_time.days_per_week"),
    )
    staff = work.assign(staff=work["workload_hours"] / awt)
    table = staff.set_index([*keys, "team", "activity"])[["staff", "participants"]].unstack("activity")
    table = table.reindex(
        pd.MultiIndex.from_product([table.index.unique("replicate"), names], names=["replicate", "team"])
        if keys
        else names
    )
    out = table["staff"][list(ACTIVITIES)].add_prefix("staff_")
    out["service_staff"] = out.sum(axis=1)
    out["cases"] = table["participants"]["casework"]
    norms = np.array([value(assumptions, f"teams.{t}.caseload_norm") for t in names])
    out["caseload_staff"] = out["cases"] / np.tile(norms, len(out) // len(names))
    out["awt_hours"] = awt
    out["caf"] = caf
    out["iaf"] = iaf
    out["required"] = out["service_staff"] * out["caf"] + out["iaf"]
    out.columns.name = None
    return out.reset_index()


def allocate(required: pd.DataFrame, assumptions: dict, method: str | None = None) -> pd.DataFrame:
    """Apportion the plan's social workers by required staff and other staff by their rule.

    Social workers: weights = WISN required social workers; other staff: weights = required social
    workers × the team's other_staff_per_social_worker (assumption). Both with the plan's per-team
    minimum and ``method`` (default: plan.method). Adds each team's WISN ratio (allocated ÷ required)
    and difference (allocated − required) for the social workers.
    """
    keys = _keys(required)
    method = method or assumptions["plan"]["method"]
    names = teams(assumptions)
    frame = required if keys else required.assign(replicate=0)
    wide = frame.set_index(["replicate", "team"])["required"].unstack("team").reindex(columns=names)
    ratio = np.array([value(assumptions, f"teams.{t}.other_staff_per_social_worker") for t in names])
    sw = apportion_many(
        wide.to_numpy(),
        value(assumptions, "plan.social_workers"),
        method,
        value(assumptions, "plan.minimum_social_workers"),
    )
    other = apportion_many(
        wide.to_numpy() * ratio,
        value(assumptions, "plan.other_staff"),
        method,
        value(assumptions, "plan.minimum_other_staff"),
    )
    out = pd.DataFrame(
        {
            "replicate": np.repeat(wide.index.to_numpy(), len(names)),
            "team": np.tile(names, len(wide)),
            "required": wide.to_numpy().ravel(),
            "social_workers": sw.ravel(),
            "other_staff": other.ravel(),
        }
    )
    out = out if keys else out.drop(columns="replicate")
    out["wisn_ratio"] = out["social_workers"] / out["required"]
    out["difference"] = out["social_workers"] - out["required"]
    return out


def run_chain(drivers: pd.DataFrame, assumptions: dict, method: str | None = None) -> dict[str, pd.DataFrame]:
    """The whole chain on a drivers table (with or without a ``replicate`` column)."""
    demand = team_demand(drivers, assumptions)
    work = workload(demand, assumptions)
    required = required_staff(work, assumptions)
    return {
        "demand": demand,
        "workload": work,
        "required": required,
        "allocation": allocate(required, assumptions, method),
    }


# --------------------------------------------------------------------------------------------------
# Uncertainty, sensitivity and the conclusion
# --------------------------------------------------------------------------------------------------


def split_label(allocation: pd.DataFrame, column: str = "social_workers") -> pd.Series:
    """The allocation of each replicate as "a/b/c/d" in team order (one label per replicate)."""
    keys = _keys(allocation)
    frame = allocation if keys else allocation.assign(replicate=0)
    return (
        frame[column]
        .astype(int)
        .astype(str)
        .groupby(frame["replicate"], sort=True)
        .agg("/".join)
        .rename("split")
    )


def replicate_summary(allocation: pd.DataFrame, assumptions: dict) -> dict[str, pd.DataFrame]:
    """Distribution of required staff per team over the replicates and how often each split wins.

    ``required``: mean, sd and the 2.5 / 50 / 97.5 percentiles per team and for the total; ``splits``:
    each distinct social-worker split (team order) with its count and share of replicates, most
    frequent first; ``enough``: share of replicates whose total requirement is within the plan.
    """
    names = teams(assumptions)
    wide = allocation.set_index(["replicate", "team"])["required"].unstack("team").reindex(columns=names)
    wide["total"] = wide.sum(axis=1)
    required = (
        pd.DataFrame(
            {
                "mean": wide.mean(),
                "sd": wide.std(ddof=1),
                "p2_5": wide.quantile(0.025),
                "median": wide.median(),
                "p97_5": wide.quantile(0.975),
            }
        )
        .rename_axis("team")
        .reset_index()
    )
    counts = split_label(allocation).value_counts()
    splits = (
        counts.rename("replicates")
        .rename_axis("split")
        .reset_index()
        .assign(share=lambda d: d["replicates"] / len(wide))
        .sort_values(["replicates", "split"], ascending=[False, True], ignore_index=True)
    )
    plan = value(assumptions, "plan.social_workers")
    return {
        "required": required,
        "splits": splits,
        "enough": float((wide["total"] <= plan).mean()),
        "replicates": len(wide),
    }


def sizing_keys(assumptions: dict) -> list[str]:
    """Assumptions that change the required social workers and have a range to vary over."""
    return [
        key
        for key, leaf in _leaves(assumptions)
        if key.split(".")[0] in SIZING_SECTIONS
        and leaf["range"][0] < leaf["range"][1]
        and not key.endswith((".caseload_norm", ".other_staff_per_social_worker"))
    ]


def _point(demand: pd.DataFrame, assumptions: dict) -> pd.DataFrame:
    """Required staff and allocation per team for one set of assumptions (no replicates)."""
    return allocate(required_staff(workload(demand, assumptions), assumptions), assumptions)


def tornado(demand: pd.DataFrame, assumptions: dict, keys: list[str] | None = None) -> pd.DataFrame:
    """Required social workers (total) with each assumption at the low and the high end of its range.

    One row per assumption: assumption, base, low, high (its values), required_base / _low / _high
    (total required social workers), split_base / _low / _high (the social-worker split), and per team
    the required staff at low and high (``<team>_low``, ``<team>_high``). Sorted by swing, largest first.
    """
    base = _point(demand, assumptions)
    names = teams(assumptions)
    rows = []
    for key in keys or sizing_keys(assumptions):
        low, high = assumptions_range(assumptions, key)
        at_low, at_high = (
            _point(demand, with_value(assumptions, key, low)),
            _point(demand, with_value(assumptions, key, high)),
        )
        rows.append(
            {
                "assumption": key,
                "base": value(assumptions, key),
                "low": low,
                "high": high,
                "required_base": base["required"].sum(),
                "required_low": at_low["required"].sum(),
                "required_high": at_high["required"].sum(),
                "split_base": split_label(base).iloc[0],
                "split_low": split_label(at_low).iloc[0],
                "split_high": split_label(at_high).iloc[0],
                **{f"{t}_low": r for t, r in zip(names, at_low["required"])},
                **{f"{t}_high": r for t, r in zip(names, at_high["required"])},
            }
        )
    table = pd.DataFrame(rows)
    table["swing"] = (table["required_high"] - table["required_low"]).abs()
    return table.sort_values(["swing", "assumption"], ascending=[False, True], ignore_index=True)


def assumptions_range(assumptions: dict, key: str) -> tuple[float, float]:
    """(low, high) of one assumption's range."""
    node = assumptions
    for part in key.split("."):
        node = node[part]
    return float(node["range"][0]), float(node["range"][1])


def break_even(
    demand: pd.DataFrame, assumptions: dict, key: str, factor: float = 4.0, tolerance: float = 1e-3
) -> dict[str, Any]:
    """The nearest values of one assumption, below and above its value, at which a social worker moves.

    Steps outward by ×1.1, ×1.25, ×1.5, ×2, ×3 … up to ``factor`` (and the same divided) until the
    social-worker split changes, then bisects to a relative ``tolerance``. Returns the assumption, its
    value and split, and ``lower`` / ``upper`` (NaN when no change within the factor) with the split
    reached there (``lower_split`` / ``upper_split``).
    """
    base_value = value(assumptions, key)
    base_split = split_label(_point(demand, assumptions)).iloc[0]
    result = {"assumption": key, "value": base_value, "split": base_split}
    steps = [s for s in (1.1, 1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0) if s <= factor]
    for side, direction in (("lower", -1), ("upper", 1)):
        inside, outside, split = base_value, None, None
        for step in steps:
            candidate = base_value * step**direction
            split = split_label(_point(demand, with_value(assumptions, key, candidate))).iloc[0]
            if split != base_split:
                outside = candidate
                break
            inside = candidate
        if outside is None:
            result[side], result[f"{side}_split"] = np.nan, ""
            continue
        while abs(outside - inside) > tolerance * abs(base_value):
            middle = (inside + outside) / 2
            middle_split = split_label(_point(demand, with_value(assumptions, key, middle))).iloc[0]
            if middle_split == base_split:
                inside = middle
            else:
                outside, split = middle, middle_split
        result[side], result[f"{side}_split"] = outside, split
    return result


def break_evens(
    demand: pd.DataFrame, assumptions: dict, keys: list[str] | None = None, **kwargs
) -> pd.DataFrame:
    """:func:`break_even` for several assumptions, with the relative change needed (nearest side)."""
    table = pd.DataFrame(
        [break_even(demand, assumptions, key, **kwargs) for key in keys or sizing_keys(assumptions)]
    )
    change = pd.concat(
        [(table["lower"] / table["value"] - 1).abs(), (table["upper"] / table["value"] - 1).abs()], axis=1
    ).min(axis=1)
    return table.assign(nearest_change=change).sort_values(
        ["nearest_change", "assumption"], ignore_index=True
    )


def compare_even_split(allocation: pd.DataFrame, assumptions: dict) -> pd.DataFrame:
    """Recommended social workers against an even split (plan ÷ teams) per team, with WISN ratios.

    The even split is kept fractional (10 ÷ 4 = 2.5) so that no tie-break decides who gets the odd
    worker. A final ``total`` row compares the plan with the total requirement.
    """
    plan = value(assumptions, "plan.social_workers")
    table = allocation[["team", "required", "social_workers"]].copy()
    table["even_split"] = plan / len(table)
    table["wisn_ratio"] = table["social_workers"] / table["required"]
    table["wisn_ratio_even"] = table["even_split"] / table["required"]
    total = pd.DataFrame(
        [{"team": "total", "required": table["required"].sum(), "social_workers": plan, "even_split": plan}]
    )
    total["wisn_ratio"] = total["wisn_ratio_even"] = plan / total["required"]
    return pd.concat([table, total], ignore_index=True)


def plan_coverage(required: pd.DataFrame, assumptions: dict) -> float:
    """The share of the coverage targets the plan's social workers can deliver.

    Every activity's workload is proportional to its coverage target, so scaling all targets by k
    gives required = k × Σ service staff × CAF + Σ IAF; this returns the k at which that equals the
    plan (k ≥ 1: the plan meets the targets). Point estimate only (no ``replicate`` column).
    """
    plan = value(assumptions, "plan.social_workers")
    service = (required["service_staff"] * required["caf"]).sum()
    return float((plan - required["iaf"].sum()) / service)


SENTENCES = {
    "en": (
        "Give the {plan:g} social workers as {parts} (the split in {share:.0%} of {replicates} survey "
        "replicates); "
        "the measured workload needs {required:.1f} (95% range {low:.1f}–{high:.1f}), so {plan:g} {verdict}, "
        "and an even split of {even:g} each would leave {worst} with {worst_even:.0%} of the workers "
        "it needs "
        "instead of {worst_rec:.0%}."
    ),
    "zh": (
        "建议{plan:g}名社工按{parts}分配（{replicates}次重复抽样中{share:.0%}得出同一方案）；"
        "按测得的工作量需社工{required:.1f}名（95%区间{low:.1f}–{high:.1f}），{verdict}；"
        "若平均分配（每组{even:g}名），{worst}只得到所需人手的{worst_even:.0%}，本方案为{worst_rec:.0%}。"
    ),
}


def leader_sentence(
    allocation: pd.DataFrame, summary: dict, assumptions: dict, lang: str = "zh", needs: dict | None = None
) -> str:
    """The recommendation in one sentence a leader can repeat, computed from the tables (zh or en).

    Team names are the labels of ``needs`` (default: analysis/needs.yaml).
    """
    if lang not in SENTENCES:
        raise ConfigError(f"language '{lang}' has no sentence", hint="use zh or en")
    plan = value(assumptions, "plan.social_workers")
    needs = config.load_needs() if needs is None else needs
    labels = {t: needs["teams"][t]["label"][lang] for t in teams(assumptions)}
    joiner = "、" if lang == "zh" else ", "
    parts = joiner.join(
        f"{labels[t]}{'' if lang == 'zh' else ' '}{n}"
        for t, n in zip(allocation["team"], allocation["social_workers"])
    )
    split = split_label(allocation).iloc[0]
    splits = summary["splits"].set_index("split")["share"]
    total = summary["required"].set_index("team").loc["total"]
    required = allocation["required"].sum()
    cover = plan / required
    enough = summary["enough"]
    if lang == "zh":
        within = (
            f"所有重复抽样的需求均超过{plan:g}名"
            if enough == 0
            else f"{enough:.0%}的重复抽样需求不超过{plan:g}名"
        )
        verdict = (
            f"{plan:g}名足够（{within}）"
            if required <= plan
            else f"{plan:g}名约可覆盖{cover:.0%}的工作量（{within}）"
        )
    else:
        within = (
            f"every replicate needs more than {plan:g}"
            if enough == 0
            else f"{enough:.0%} of replicates need {plan:g} or fewer"
        )
        verdict = (
            f"is enough ({within})" if required <= plan else f"covers about {cover:.0%} of it ({within})"
        )
    even = compare_even_split(allocation, assumptions).iloc[:-1].set_index("team")
    worst = even["wisn_ratio_even"].idxmin()
    return SENTENCES[lang].format(
        plan=plan,
        parts=parts,
        share=float(splits.get(split, 0.0)),
        replicates=summary["replicates"],
        required=required,
        low=total["p2_5"],
        high=total["p97_5"],
        verdict=verdict,
        even=plan / len(even),
        worst=labels[worst],
        worst_even=even.loc[worst, "wisn_ratio_even"],
        worst_rec=even.loc[worst, "wisn_ratio"],
    )


# --------------------------------------------------------------------------------------------------
# Output tables (docs/contracts.md, stage 04)
# --------------------------------------------------------------------------------------------------


def staffing_tables(
    point: dict[str, pd.DataFrame],
    replicates: dict[str, pd.DataFrame],
    sensitivity: pd.DataFrame,
    breaks: pd.DataFrame,
    assumptions: dict,
) -> dict[str, pd.DataFrame]:
    """The stage's output tables, named as the files under ``staffing/``.

    ``required_staff``: per team (and ``total``) the WISN steps, the caseload cross-check and the
    replicate percentiles of required staff. ``allocation``: per team required, social_workers and
    other_staff by the default method, ``social_workers_<method>`` for every method, the fractional
    ``even_split`` of social workers and the WISN ratios. ``replicate_allocations``: replicate, team,
    required, social_workers, other_staff. ``sensitivity``: the tornado with the break-even values.
    """
    summary = replicate_summary(replicates["allocation"], assumptions)
    spread = summary["required"].set_index("team")[["p2_5", "median", "p97_5"]].add_prefix("required_")
    required = point["required"].join(spread, on="team")
    required = pd.concat(
        [
            required,
            pd.DataFrame(
                [
                    {
                        "team": "total",
                        **required.drop(columns="team").sum(numeric_only=True).to_dict(),
                        **spread.loc["total"].to_dict(),
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    required.loc[required["team"] == "total", ["awt_hours", "caf", "iaf"]] = np.nan
    allocation = point["allocation"].assign(method=assumptions["plan"]["method"])
    for method in METHODS:
        allocation[f"social_workers_{method}"] = allocate(point["required"], assumptions, method)[
            "social_workers"
        ]
    even = compare_even_split(point["allocation"], assumptions)
    allocation["even_split"] = even["even_split"].iloc[:-1].to_numpy()
    allocation["wisn_ratio_even"] = even["wisn_ratio_even"].iloc[:-1].to_numpy()
    return {
        "required_staff": required,
        "allocation": allocation,
        "replicate_allocations": replicates["allocation"],
        "sensitivity": sensitivity.merge(
            breaks.drop(columns=["value", "split"]), on="assumption", how="left"
        ),
    }


def write_tables(tables: dict[str, pd.DataFrame], folder: str | Path) -> list[Path]:
    """Write each table as ``<folder>/<name>.csv`` (UTF-8, fixed float format) and list them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in tables.items():
        path = folder / f"{name}.csv"
        table.to_csv(path, index=False, float_format="%.10g", encoding="utf-8")
        written.append(path)
    return written
