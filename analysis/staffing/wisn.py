"""WHO Workload Indicators of Staffing Need: available working time, allowance factors and required staff
(docs/sources.md §3)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import ConfigError


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
