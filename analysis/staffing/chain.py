"""The sizing chain: demand drivers -> residents in need per team -> workload of each activity -> WISN
required social workers -> allocation of the plan's posts, on every bootstrap replicate at once."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
from analysis.staffing.apportion import apportion_many
from analysis.staffing.assumptions import ACTIVITIES, WORKING_TIME_KEYS, teams, value
from analysis.staffing.wisn import allowance_factors, available_working_time


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


def _allowances(awt: float, assumptions: dict) -> tuple[float, float]:
    """WISN category allowance factor (CAF) and individual allowance (IAF, staff) at ``awt`` hours."""
    cas = assumptions.get("category_allowances") or {}
    _, _, caf, iaf = allowance_factors(
        awt,
        [leaf["value"] for leaf in cas.values()],
        [leaf["per"] for leaf in cas.values()],
        [leaf["value"] for leaf in (assumptions.get("individual_allowances") or {}).values()],
        value(assumptions, "working_time.hours_per_day"),
        value(assumptions, "working_time.days_per_week"),
    )
    return caf, iaf


def required_point(willing: np.ndarray, assumptions: dict) -> np.ndarray:
    """Required social workers per team (team order) for one demand point: the ``required`` column of
    :func:`required_staff` (after :func:`workload`) with the same operations in the same order on
    arrays, so the numbers are identical bit for bit. ``willing``: residents (family: households) in
    need who would use the centre, per team in team order. The sensitivity searches call this hundreds
    of times; the frame version takes ~20 ms a call, this one well under 1 ms."""
    names = teams(assumptions)
    awt = awt_hours(assumptions)
    caf, iaf = _allowances(awt, assumptions)
    staff = np.empty((len(names), len(ACTIVITIES)))
    for i, team in enumerate(names):
        for j, (activity, (per_participant, unit_size)) in enumerate(ACTIVITIES.items()):
            prefix = f"teams.{team}.{activity}."
            contacts = value(assumptions, prefix + per_participant) if per_participant else 1.0
            per_unit = value(assumptions, prefix + unit_size) if unit_size else 1.0
            annual = willing[i] * value(assumptions, prefix + "coverage") / per_unit * contacts
            staff[i, j] = annual * value(assumptions, prefix + "unit_time_hours") / awt
    return staff.sum(axis=1) * caf + iaf


def required_staff(work: pd.DataFrame, assumptions: dict) -> pd.DataFrame:
    """WISN required social workers per team (and per replicate), with the steps in between.

    Same formulas as :func:`wisn`, vectorised over teams and replicates: staff per activity =
    workload ÷ (AWT ÷ unit time); required = Σ staff × CAF + IAF. Also the caseload cross-check:
    active cases ÷ the caseload norm of docs/sources.md §2.5.
    """
    keys = _keys(work)
    names = teams(assumptions)
    awt = awt_hours(assumptions)
    caf, iaf = _allowances(awt, assumptions)
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
