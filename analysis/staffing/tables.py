"""The staffing stage's output tables (docs/contracts.md, stage 04) and their CSV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.staffing.apportion import METHODS
from analysis.staffing.chain import allocate
from analysis.staffing.sensitivity import compare_even_split, replicate_summary


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
