"""Simulation parameters, the teams and their service lines, and the instrument's field groups.

Parameters live in ``analysis/simulation.yaml`` (every one with its source or marked as an assumption);
the teams and their service lines are those of ``analysis/needs.yaml``, so a team added there is
simulated too once ``simulation.yaml`` says how its needs arise (``service_drivers.<team>``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.config import read_yaml
from analysis.errors import ConfigError
from analysis.indicators import ADL_ITEMS, K6_ITEMS, WG_DOMAINS

PARAMS_FILE = Path(__file__).resolve().parent.parent / "simulation.yaml"
SERVICE_QUESTIONS = ("need", "receiving", "would_use")
TEAM_KEYS = (
    "eligible",
    "drivers",
    "need_flagged",
    "need_base",
    "receiving_given_need",
    "would_use_given_need",
    "would_use_without_need",
    "other_texts",
)
WG, ADL, K6 = WG_DOMAINS, ADL_ITEMS, K6_ITEMS  # the measures' items (analysis.indicators)
YOUTH = [
    "youth_afterschool",
    "youth_study_pressure",
    "youth_conflict",
    "youth_internet",
    "youth_work_integration",
]
AGE_BANDS = [(0, 14), (15, 24), (25, 44), (45, 59), (60, 69), (70, 79), (80, 200)]
AGE_BAND_LABELS = ["0-14", "15-24", "25-44", "45-59", "60-69", "70-79", "80+"]
RELATION_ORDER = ["head", "spouse", "child", "child_in_law", "grandchild", "parent", "sibling", "other"]


def load_params(path: str | Path = PARAMS_FILE) -> dict:
    """Read the simulation parameters (``analysis/simulation.yaml`` by default)."""
    path = Path(path)
    params = read_yaml(path, "simulation parameters")
    for key in (
        "population",
        "households",
        "disability",
        "elderly",
        "youth",
        "family",
        "services",
        "sample",
        "interview",
        "faults",
        "teams",
    ):
        if key not in (params or {}):
            raise ConfigError(f"missing section '{key}'", file=str(path), hint="see analysis/simulation.yaml")
    return params


def age_band(age: pd.Series | np.ndarray) -> pd.Categorical:
    """Age bands of the population frame: 0-14, 15-24, 25-44, 45-59, 60-69, 70-79, 80+ (completed years)."""
    edges = [b[0] for b in AGE_BANDS] + [1000]
    return pd.Categorical.from_codes(
        np.searchsorted(edges, np.asarray(age), side="right") - 1, categories=AGE_BAND_LABELS, ordered=True
    )


def team_services(params: dict, definitions: dict | None = None) -> dict[str, list[str]]:
    """Teams and their service lines (``"other"`` excluded) in ``analysis/needs.yaml`` order.

    Every team needs a ``teams.<team>`` entry in the simulation parameters: the household flags behind
    its eligibility and each of its service lines, and its rates; a missing one is a :class:`ConfigError`.
    """
    from analysis.indicators import load_needs

    definitions = load_needs() if definitions is None else definitions
    simulated = params.get("teams") or {}
    services = {}
    for team, spec in definitions["teams"].items():
        lines = [s for s in spec["services"] if s != "other"]
        given = simulated.get(team) or {}
        missing = [k for k in TEAM_KEYS if k not in given] + [
            s for s in lines if s not in (given.get("drivers") or {})
        ]
        if missing:
            raise ConfigError(
                f"team '{team}' of needs.yaml lacks simulation parameters {missing}",
                file=str(PARAMS_FILE),
                column=f"teams.{team}",
                hint="give its eligibility and service-line flags and its rates (see the other teams)",
            )
        services[team] = lines
    return services


def interview_first_day(params: dict, year: int) -> str:
    """First day of fieldwork of the ``year`` wave: ``waves.<year>.interview_first_day``, else the first
    wave's ``interview.first_day``."""
    return ((params.get("waves") or {}).get(year) or {}).get(
        "interview_first_day", params["interview"]["first_day"]
    )
