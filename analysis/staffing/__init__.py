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
vary one assumption at a time on the point estimate, through ``required_point``, the same arithmetic
on arrays (bit for bit; the searches call it hundreds of times).

Modules: :mod:`~analysis.staffing.apportion`, :mod:`~analysis.staffing.wisn`,
:mod:`~analysis.staffing.assumptions`, :mod:`~analysis.staffing.chain`, :mod:`~analysis.staffing.sensitivity`,
:mod:`~analysis.staffing.tables`.
"""

from __future__ import annotations

from analysis.staffing.apportion import METHODS, apportion, apportion_many
from analysis.staffing.assumptions import (
    ASSUMPTIONS_PATH,
    _leaves,
    assumptions_table,
    load_assumptions,
    teams,
    value,
    with_value,
)
from analysis.staffing.chain import (
    allocate,
    required_point,
    required_staff,
    run_chain,
    team_demand,
    workload,
)
from analysis.staffing.sensitivity import (
    assumptions_range,
    break_even,
    break_evens,
    compare_even_split,
    leader_sentence,
    plan_coverage,
    replicate_summary,
    sizing_keys,
    tornado,
)
from analysis.staffing.tables import staffing_tables, write_tables
from analysis.staffing.wisn import available_working_time, wisn

__all__ = [
    "ASSUMPTIONS_PATH",
    "METHODS",
    "_leaves",
    "allocate",
    "apportion",
    "apportion_many",
    "assumptions_range",
    "assumptions_table",
    "available_working_time",
    "break_even",
    "break_evens",
    "compare_even_split",
    "leader_sentence",
    "load_assumptions",
    "plan_coverage",
    "replicate_summary",
    "required_point",
    "required_staff",
    "run_chain",
    "sizing_keys",
    "staffing_tables",
    "team_demand",
    "teams",
    "tornado",
    "value",
    "wisn",
    "with_value",
    "workload",
    "write_tables",
]
