"""Small synthetic stage outputs in the contract format (docs/contracts.md) for the figure and brief tests.

Numbers are drawn from a seeded generator: they exercise the plotting code, they are not results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.demand import RESULT_COLUMNS

TEAMS = ("elderly", "disability", "youth", "family")
SERVICES = {
    "elderly": ["home_visit", "meal", "day_care", "health", "activity"],
    "disability": ["rehab", "assistive", "respite", "employment", "inclusion"],
    "youth": ["afterschool", "tutoring", "counselling", "skills", "leisure"],
    "family": ["counselling", "parenting", "mediation", "assistance", "newcomer"],
}
CUNJU = [f"c{i:02d}" for i in range(1, 23)]


def _row(analysis_type, team, variable, value, unit, group, group_value, estimate, se, n):
    return {
        "analysis_type": analysis_type,
        "team": team,
        "variable": variable,
        "value": value,
        "universe": "all",
        "unit": unit,
        "group": group,
        "group_value": group_value,
        "estimate": estimate,
        "se": se,
        "ci_low": estimate - 1.96 * se,
        "ci_high": estimate + 1.96 * se,
        "n": n,
        "n_weighted": n * 40.0,
        "suppressed": False,
    }


def results(seed: int = 1) -> pd.DataFrame:
    """A tidy demand results table: team totals, service totals, unmet need, shares by 村居."""
    rng = np.random.default_rng(seed)
    rows = []
    for team, total in zip(TEAMS, (14200.0, 9800.0, 21500.0, 6100.0)):
        unit = "households" if team == "family" else "persons"
        rows.append(_row("total", team, f"in_need_{team}", "1", unit, "all", "all", total, total * 0.08, 300))
        rows.append(
            _row("prop", team, f"unmet_{team}", "1", unit, "all", "all", rng.uniform(0.3, 0.8), 0.04, 250)
        )
        for service in SERVICES[team] + ["other"]:
            est = float(rng.uniform(500, 9000))
            rows.append(
                _row("total", team, f"need_{team}", service, "households", "all", "all", est, est * 0.1, 120)
            )
        for code in CUNJU:
            n = int(rng.integers(4, 60))
            row = _row(
                "prop", team, f"in_need_{team}", "1", unit, "cunju", code, rng.uniform(0.02, 0.4), 0.03, n
            )
            row["suppressed"] = n < 10
            if n < 10:
                row.update(estimate=np.nan, se=np.nan, ci_low=np.nan, ci_high=np.nan)
            rows.append(row)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def staffing(seed: int = 2) -> dict[str, pd.DataFrame]:
    """Allocation, replicate allocations and sensitivity tables as analysis/staffing.py writes them."""
    rng = np.random.default_rng(seed)
    required = np.array([3.9, 2.2, 3.1, 1.6])
    allocation = pd.DataFrame(
        {"team": TEAMS, "required": required, "social_workers": [4, 2, 3, 1], "other_staff": [5, 3, 4, 3]}
    )
    allocation = allocation.assign(
        wisn_ratio=allocation["social_workers"] / required, difference=allocation["social_workers"] - required
    )
    reps = 200
    moves = rng.choice([-1, 0, 0, 0, 0, 1], size=(reps, 4))
    moves[:, 3] = -moves[:, :3].sum(axis=1)  # replicate splits still sum to the plan's 10
    replicates = pd.DataFrame(
        {
            "replicate": np.repeat(np.arange(1, reps + 1), 4),
            "team": np.tile(TEAMS, reps),
            "required": (required * rng.lognormal(0, 0.1, (reps, 4))).ravel(),
            "social_workers": (np.array([4, 2, 3, 1]) + moves).clip(0).ravel(),
            "other_staff": np.tile([5, 3, 4, 3], reps),
        }
    )
    names = [
        "teams.elderly.casework.unit_time_hours",
        "teams.youth.casework.contacts_per_case",
        "teams.family.group_sessions.coverage",
        "working_time.annual_leave",
        "category_allowances.supervision",
        "individual_allowances.team_leader",
    ]
    base = np.array([1.5, 24.0, 0.1, 5.0, 1.0, 400.0])
    effect = rng.uniform(0.3, 3.0, len(names))
    sensitivity = pd.DataFrame(
        {
            "assumption": names,
            "base": base,
            "low": base * 0.75,
            "high": base * 1.25,
            "required_base": required.sum(),
            "required_low": required.sum() - effect,
            "required_high": required.sum() + effect * 1.1,
        }
    )
    return {"allocation": allocation, "replicate_allocations": replicates, "sensitivity": sensitivity}


def clean(seed: int = 3) -> dict:
    """Clean households and persons (only the columns figures read), deletion log and provenance."""
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2012-05-02") + pd.to_timedelta(rng.integers(0, 40, 1480), unit="D")
    households = pd.DataFrame(
        {"household_id": [f"h{i:04d}" for i in range(1480)], "today": days.strftime("%Y-%m-%d")}
    )
    persons = pd.DataFrame(
        {
            "person_id": [f"p{i:05d}" for i in range(4211)],
            "household_id": [f"h{i % 1480:04d}" for i in range(4211)],
        }
    )
    checks = (
        ["duplicate_uuid;soft_duplicate"] * 31
        + ["duration"] * 22
        + ["no_consent;duration"] * 17
        + ["test_submission"] * 4
    )
    deletion_log = pd.DataFrame({"uuid": [f"u{i}" for i in range(len(checks))], "check_id": checks})
    return {
        "households": households,
        "persons": persons,
        "deletion_log": deletion_log,
        "provenance": {"simulated": True, "seed": 20120411},
    }
