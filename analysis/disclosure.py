"""Statistical disclosure control for the tables and microdata the project publishes (docs/sources.md §6).

Owns: primary and secondary suppression of tables, the k-anonymity check, and reading the thresholds
from the validated assumptions (:func:`thresholds`, the one place they are read).

- :func:`suppress`: primary suppression of cells with fewer than ``threshold`` respondents (10 for
  leadership or public tables, 5 for internal ones: ONS CeLSIUS, Washington State DOH, OECD glossary),
  then secondary suppression so that no suppressed cell can be recovered exactly from the published
  cells and totals by subtraction (WA DOH rule), checked by :func:`recoverable_cells`.
- :func:`k_anonymity`: every combination of key variables (村居 × age band × disability) in shared
  microdata must occur at least k = 3 times (sdcMicro's ``kAnon`` idea, as a pandas group count).

Thresholds live in the ``disclosure:`` section of ``analysis/assumptions.yaml`` (:func:`thresholds`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError


def thresholds(assumptions: dict) -> dict[str, int]:
    """``leadership``, ``internal`` and ``k`` from the ``disclosure:`` section of the assumptions."""
    section = assumptions["disclosure"]
    return {
        "leadership": int(section["leadership_threshold"]["value"]),
        "internal": int(section["internal_threshold"]["value"]),
        "k": int(section["k_anonymity"]["value"]),
    }


def _check_columns(table: pd.DataFrame, columns: list[str], what: str) -> None:
    for column in columns:
        if column not in table.columns:
            raise AnalysisError(
                f"{what} has no column '{column}'",
                column=column,
                hint=f"columns present: {', '.join(map(str, table.columns))}",
            )


def _lines(
    table: pd.DataFrame, group_cols: list[str], total_label: str, margins_published: bool, by: list[str]
) -> pd.DataFrame:
    """Every additivity relation of the table as (line, row, sign): Σ inner cells − margin = 0.

    A line runs along one grouping column and holds the other columns fixed; its margin is the row
    whose value in that column is ``total_label`` (if present). Lines without a margin row count only
    when the totals are published elsewhere (``margins_published``). ``by`` columns split the table
    into independent sub-tables (no line crosses them). ``table`` must have a unique index.
    """
    position = pd.Series(np.arange(len(table)), index=table.index)
    parts = []
    for column in group_cols:
        others = [c for c in group_cols if c != column] + list(by)
        line_id = (
            table.groupby(others, sort=False, dropna=False).ngroup()
            if others
            else pd.Series(0, index=table.index)
        )
        is_margin = table[column].astype(str) == str(total_label)
        has_margin = is_margin.groupby(line_id).transform("any")
        keep = has_margin | margins_published
        parts.append(
            pd.DataFrame(
                {
                    "line": column + ":" + line_id[keep].astype(str),
                    "row": position[keep],
                    "sign": np.where(is_margin[keep], -1.0, 1.0),
                    "margin": is_margin[keep],
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def recoverable_cells(
    table: pd.DataFrame,
    suppressed: pd.Series,
    group_cols: list[str],
    total_label: str = "all",
    margins_published: bool = True,
    by: list[str] | tuple[str, ...] = (),
) -> pd.Index:
    """Index of suppressed cells whose exact value follows from the published ones by the table's sums.

    A suppressed cell x_j is determined iff the unit vector e_j lies in the row space of the additivity
    equations restricted to the suppressed cells, i.e. iff every solution of the homogeneous system
    leaves x_j at 0 (its row of the null-space basis is zero). Bounds from non-negativity are not
    considered.
    """
    lines = _lines(table.reset_index(drop=True), list(group_cols), total_label, margins_published, list(by))
    return table.index[_determined(lines, np.flatnonzero(suppressed.to_numpy(bool)))]


def _determined(lines: pd.DataFrame, hidden: np.ndarray) -> np.ndarray:
    """Positions among ``hidden`` whose value the line equations fix (see :func:`recoverable_cells`)."""
    if len(hidden) == 0:
        return hidden
    lines = lines[lines["row"].isin(hidden)]
    column = pd.Series(np.arange(len(hidden)), index=hidden)
    line_codes, line_names = pd.factorize(lines["line"])
    matrix = np.zeros((max(len(line_names), 1), len(hidden)))
    np.add.at(matrix, (line_codes, column[lines["row"]].to_numpy()), lines["sign"].to_numpy())
    _, singular, vt = np.linalg.svd(matrix)
    rank = int((singular > 1e-9 * max(singular.max(initial=0), 1)).sum())
    null = vt[rank:].T  # suppressed cells × free directions
    return hidden[np.abs(null).max(axis=1, initial=0) < 1e-9]


def suppress(
    table: pd.DataFrame,
    count_col: str,
    threshold: int,
    group_cols: list[str],
    value_cols: list[str] | tuple[str, ...] = (),
    total_label: str = "all",
    margins_published: bool = True,
    suppress_zeros: bool = False,
    by: list[str] | tuple[str, ...] = (),
) -> pd.DataFrame:
    """Suppress small cells of a frequency or estimate table and protect them from subtraction.

    ``table`` has one row per cell: ``group_cols`` identify it (a value ``total_label`` marks a margin
    row, e.g. cunju = "all"), ``count_col`` holds the respondents behind it. Primary: cells with
    0 < n < ``threshold`` (zeros too if ``suppress_zeros``). Secondary: while some line (row or column
    of the table, with its total) has exactly one suppressed cell, or some suppressed cell is still
    exactly recoverable (:func:`recoverable_cells`), the line's unsuppressed inner cell with the
    fewest respondents (non-zero first; the margin last) is suppressed too. ``margins_published``:
    totals are known even when not in the table (the safe default). ``by``: columns that split the
    table into independent sub-tables (e.g. one per variable).

    Returns a copy with ``suppressed`` (bool), ``suppression`` ("primary", "secondary" or "") and the
    count and ``value_cols`` blanked (NA) where suppressed.
    """
    group_cols, by = list(group_cols), list(by)
    _check_columns(table, [count_col, *group_cols, *value_cols, *by], "table")
    original_index = table.index
    table = table.reset_index(drop=True)
    counts = pd.to_numeric(table[count_col], errors="coerce")
    if counts.isna().any():
        row = int(np.flatnonzero(counts.isna().to_numpy())[0])
        raise AnalysisError(
            "a count is missing or not a number",
            row=row + 1,
            column=count_col,
            hint="every cell needs its number of respondents",
        )
    primary = (counts < threshold) & ((counts > 0) | suppress_zeros)
    hidden = primary.copy()
    lines = _lines(table, group_cols, total_label, margins_published, by)
    rows = table.index[lines["row"].to_numpy()]
    lines = lines.assign(count=counts.loc[rows].to_numpy(), zero=counts.loc[rows].to_numpy() == 0)
    for _ in range(len(table)):
        lines["hidden"] = hidden.loc[table.index[lines["row"].to_numpy()]].to_numpy()
        lonely = lines.groupby("line")["hidden"].transform("sum") == 1
        candidates = lines[lonely & ~lines["hidden"]]
        if candidates.empty:
            exposed = _determined(lines, np.flatnonzero(hidden.to_numpy(bool)))
            if len(exposed) == 0:
                break
            exposed_lines = lines.loc[lines["row"].isin(exposed), "line"]
            candidates = lines[lines["line"].isin(exposed_lines) & ~lines["hidden"]]
            if candidates.empty:
                break
            candidates = candidates.sort_values(["margin", "zero", "count", "row"]).head(1)
        chosen = (
            candidates.sort_values(["margin", "zero", "count", "row"]).drop_duplicates("line")["row"].unique()
        )
        hidden.iloc[chosen] = True
    out = table.copy()
    out["suppressed"] = hidden.to_numpy()
    out["suppression"] = np.select([primary.to_numpy(), hidden.to_numpy()], ["primary", "secondary"], "")
    for column in [count_col, *value_cols]:
        out[column] = out[column].astype(
            "Float64" if pd.api.types.is_numeric_dtype(out[column]) else "object"
        )
        out.loc[out["suppressed"], column] = pd.NA
    return out.set_axis(original_index)


RESULT_KEYS = ["analysis_type", "team", "variable", "value", "universe", "unit"]
RESULT_VALUES = ["estimate", "se", "ci_low", "ci_high", "n_weighted"]


def suppress_results(results: pd.DataFrame, threshold: int, count_col: str = "n") -> pd.DataFrame:
    """:func:`suppress` applied to the tidy results table (docs/contracts.md, ``demand/results.csv``).

    Each estimate (analysis_type, team, variable, value, universe, unit) broken down by a ``group``
    (村居, sex, …) is one line whose margin is its ``group = all`` row: cells with fewer than
    ``threshold`` respondents are suppressed and secondary suppression protects them from subtraction
    out of the overall row. An overall row is suppressed if any of its breakdowns needs it. Estimate,
    se, CI, weighted n and n are blanked where suppressed; ``suppressed`` keeps earlier flags.
    """
    keys = [c for c in RESULT_KEYS if c in results.columns]
    _check_columns(results, ["group", "group_value", count_col], "results table")
    values = [c for c in RESULT_VALUES if c in results.columns]
    results = results.reset_index(drop=True)
    overall = results["group"] == "all"
    groups = results.loc[~overall, "group"].drop_duplicates().tolist()
    stacked = pd.concat(
        [results[~overall].assign(_row=np.flatnonzero(~overall))]
        + [
            results[overall].assign(group=group, group_value="all", _row=np.flatnonzero(overall))
            for group in groups
        ],
        ignore_index=True,
    )
    done = suppress(stacked, count_col, threshold, ["group_value"], values, by=[*keys, "group"])
    flag = done.groupby("_row")["suppressed"].any().reindex(range(len(results)), fill_value=False).to_numpy()
    reason = (
        done.sort_values("suppression")
        .groupby("_row")["suppression"]
        .last()
        .reindex(range(len(results)), fill_value="")
    )
    out = results.copy()
    earlier = out["suppressed"].astype(str).str.lower().isin(["true", "1"]) if "suppressed" in out else False
    out["suppressed"] = flag | earlier
    out["suppression"] = np.where(flag, reason.to_numpy(), np.where(earlier, "earlier", ""))
    for column in [count_col, *values]:
        out[column] = out[column].astype("Float64")
        out.loc[out["suppressed"], column] = pd.NA
    return out


def k_anonymity(df: pd.DataFrame, keys: list[str], k: int = 3, raise_error: bool = False) -> pd.DataFrame:
    """Combinations of the key variables that occur fewer than ``k`` times (docs/sources.md §6: k ≥ 3 on
    村居 × age band × disability for shared microdata).

    Missing key values form their own category. Returns the violating combinations with their
    ``count`` (empty when the data is k-anonymous); with ``raise_error`` a violation raises
    :class:`AnalysisError` naming how many combinations and records fail.
    """
    _check_columns(df, list(keys), "microdata")
    counts = df.groupby(list(keys), dropna=False, observed=True).size().rename("count").reset_index()
    violations = counts[counts["count"] < k].sort_values([*keys], ignore_index=True)
    if raise_error and not violations.empty:
        raise AnalysisError(
            f"{len(violations)} combinations of {' × '.join(keys)} occur fewer than {k} times "
            f"({int(violations['count'].sum())} records)",
            hint="coarsen a key (e.g. wider age bands) or suppress those values before sharing",
        )
    return violations
