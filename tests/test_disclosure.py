"""Disclosure control: small cells are hidden, and hidden cells cannot be recovered from the totals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.disclosure import k_anonymity, recoverable_cells, suppress, suppress_results, thresholds
from analysis.errors import AnalysisError
from analysis.staffing import load_assumptions


def two_way(counts: np.ndarray, rows=None, cols=None) -> pd.DataFrame:
    """A 村居 × sex table with row, column and grand totals, one row per cell (tidy)."""
    rows = rows or [f"c{i + 1:02d}" for i in range(counts.shape[0])]
    cols = cols or [f"s{j + 1}" for j in range(counts.shape[1])]
    full = np.zeros((counts.shape[0] + 1, counts.shape[1] + 1), dtype=int)
    full[:-1, :-1] = counts
    full[:-1, -1] = counts.sum(axis=1)
    full[-1, :] = full[:-1, :].sum(axis=0)
    index = pd.MultiIndex.from_product([[*rows, "all"], [*cols, "all"]], names=["cunju", "sex"])
    return pd.DataFrame({"n": full.ravel()}, index=index).reset_index()


def test_thresholds_come_from_the_config():
    assert thresholds(load_assumptions()) == {"leadership": 10, "internal": 5, "k": 3}


def test_the_subtraction_attack_recovers_a_lone_suppressed_cell_and_fails_after_secondary_suppression():
    table = two_way(np.array([[3, 20], [15, 12]]))
    only_primary = table.assign(n=table["n"].where(table["n"] >= 10))
    # the attack: row total minus the visible cell gives the hidden one back
    row = only_primary[only_primary["cunju"] == "c01"].set_index("sex")["n"]
    assert row["all"] - row["s2"] == 3
    assert list(recoverable_cells(table, table["n"] < 10, ["cunju", "sex"])) == [0]

    protected = suppress(table, "n", 10, ["cunju", "sex"])
    assert protected.loc[0, "suppression"] == "primary"
    assert protected["suppressed"].sum() == 4  # the only safe pattern here: the whole 2 × 2 interior
    assert recoverable_cells(table, protected["suppressed"], ["cunju", "sex"]).empty
    for column in ("cunju", "sex"):
        hidden_per_line = protected.groupby([c for c in ("cunju", "sex") if c != column])["suppressed"].sum()
        assert not (hidden_per_line == 1).any()


def test_secondary_suppression_takes_the_smallest_other_cell():
    table = pd.DataFrame(
        {
            "cunju": ["c01", "c02", "c03", "c04", "all"],
            "n": [4, 30, 12, 50, 96],
            "estimate": [0.5, 0.2, 0.3, 0.1, 0.2],
        }
    )
    out = suppress(table, "n", 10, ["cunju"], value_cols=["estimate"])
    assert out["suppression"].tolist() == ["primary", "", "secondary", "", ""]
    assert out.loc[out["suppressed"], ["n", "estimate"]].isna().all().all()
    assert out.loc[~out["suppressed"], "n"].tolist() == [30, 50, 96]


def test_a_line_with_one_inner_cell_hides_its_total_too():
    table = pd.DataFrame({"cunju": ["c01", "all"], "n": [6, 6]})
    out = suppress(table, "n", 10, ["cunju"])
    assert out["suppressed"].all()


def test_threshold_boundary_and_zeros():
    table = pd.DataFrame({"cunju": ["c01", "c02", "c03", "c04", "all"], "n": [9, 10, 0, 40, 59]})
    out = suppress(table, "n", 10, ["cunju"])
    assert out["suppression"].tolist() == ["primary", "secondary", "", "", ""]
    zeros = suppress(table, "n", 10, ["cunju"], suppress_zeros=True)
    assert zeros["suppression"].tolist()[:3] == ["primary", "", "primary"]
    internal = suppress(table, "n", 5, ["cunju"])
    assert not internal["suppressed"].any()


def test_linked_cycles_leak_through_a_bridge_cell():
    # every row and column has 0 or >= 2 hidden cells, yet c01 × s3 follows from the sums
    counts = np.full((4, 4), 20)
    table = two_way(counts)
    hidden = {
        ("c01", "s1"),
        ("c01", "s2"),
        ("c02", "s1"),
        ("c02", "s2"),
        ("c03", "s3"),
        ("c03", "s4"),
        ("c04", "s3"),
        ("c04", "s4"),
        ("c01", "s3"),
    }
    mask = pd.Series([(r, c) in hidden for r, c in zip(table["cunju"], table["sex"])], index=table.index)
    leaked = recoverable_cells(table, mask, ["cunju", "sex"])
    assert [tuple(x) for x in table.loc[leaked, ["cunju", "sex"]].to_numpy()] == [("c01", "s3")]


def test_missing_counts_and_columns_are_reported():
    with pytest.raises(AnalysisError, match="column 'n'.*not a number"):
        suppress(pd.DataFrame({"cunju": ["c01"], "n": [None]}), "n", 10, ["cunju"])
    with pytest.raises(AnalysisError, match="no column 'respondents'"):
        suppress(pd.DataFrame({"cunju": ["c01"], "n": [3]}), "respondents", 10, ["cunju"])


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(2, 4), st.integers(0, 2**31 - 1))
def test_no_small_cell_is_visible_or_recoverable(n_rows, n_cols, seed):
    rng = np.random.default_rng(seed)
    counts = rng.choice([0, 1, 3, 6, 9, 12, 25, 60], size=(n_rows, n_cols))
    table = two_way(counts)
    out = suppress(table, "n", 10, ["cunju", "sex"])
    small = (table["n"] > 0) & (table["n"] < 10)
    assert out.loc[small, "suppressed"].all()
    assert recoverable_cells(table, out["suppressed"], ["cunju", "sex"]).empty
    assert out.loc[out["suppressed"], "n"].isna().all()


def test_k_anonymity_returns_and_raises_on_rare_combinations():
    micro = pd.DataFrame(
        {
            "cunju": ["c01"] * 6 + ["c02"] * 4,
            "age_band": ["60-79"] * 3 + ["80+"] * 3 + ["60-79"] * 3 + [None],
            "disability": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        }
    )
    assert k_anonymity(micro, ["cunju", "age_band", "disability"], k=3).empty is False
    found = k_anonymity(micro, ["cunju", "age_band", "disability"], k=3)
    assert len(found) == 1 and found["count"].tolist() == [1] and found["cunju"].tolist() == ["c02"]
    assert k_anonymity(micro, ["cunju", "disability"], k=3).empty
    with pytest.raises(AnalysisError, match="1 combinations .* fewer than 3 times"):
        k_anonymity(micro, ["cunju", "age_band", "disability"], k=3, raise_error=True)
    with pytest.raises(AnalysisError, match="no column 'sex'"):
        k_anonymity(micro, ["cunju", "sex"])


def test_results_table_breakdowns_are_protected_against_the_overall_row():
    base = {
        "analysis_type": "total",
        "team": "elderly",
        "variable": "in_need_elderly",
        "value": "1",
        "universe": "60+",
        "unit": "persons",
    }
    rows = [
        ("all", "all", 46, 900.0),
        ("cunju", "c01", 4, 80.0),
        ("cunju", "c02", 30, 600.0),
        ("cunju", "c03", 12, 220.0),
        ("sex", "male", 20, 400.0),
        ("sex", "female", 26, 500.0),
    ]
    results = pd.DataFrame(
        [
            {
                **base,
                "group": g,
                "group_value": v,
                "n": n,
                "estimate": e,
                "se": e / 10,
                "ci_low": e * 0.8,
                "ci_high": e * 1.2,
                "n_weighted": e,
                "suppressed": False,
            }
            for g, v, n, e in rows
        ]
    )
    other = results.assign(variable="adl_dependent", n=results["n"] + 20)  # no small cells: left alone
    out = suppress_results(pd.concat([results, other], ignore_index=True), threshold=10)
    first = out.iloc[:6].set_index("group_value")
    assert first.loc["c01", "suppression"] == "primary" and first.loc["c03", "suppression"] == "secondary"
    assert not first.loc[["all", "c02", "male", "female"], "suppressed"].any()
    assert first.loc[["c01", "c03"], ["estimate", "n", "n_weighted"]].isna().all().all()
    # the subtraction attack on the published totals no longer gives c01 back
    assert pd.isna(first.loc["all", "estimate"] - first.loc["c02", "estimate"] - first.loc["c03", "estimate"])
    assert not out.iloc[6:]["suppressed"].any()
