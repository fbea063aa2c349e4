"""The planning assumptions (``analysis/assumptions.yaml``, validated by :mod:`analysis.config`): reading
them, one value by its dotted key, a copy with one value changed, the table of them all."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import config

ASSUMPTIONS_PATH = config.ASSUMPTIONS_PATH


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
