"""Need indicators reproduce their published scoring rules on hand-made rows (docs/sources.md §4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import indicators
from analysis.errors import ConfigError


def wg_rows(*rows):
    return pd.DataFrame(list(rows), columns=indicators.WG_DOMAINS)


def test_washington_group_identifier_needs_one_domain_a_lot_or_worse():
    persons = wg_rows(
        ["1", "1", "1", "1", "1", "1"],  # no difficulty
        ["2", "2", "2", "1", "1", "1"],  # some difficulty in three domains only
        ["1", "1", "3", "1", "1", "1"],  # a lot of difficulty walking
        ["4", "1", "1", "1", "1", "1"],  # cannot see
        [None] * 6,  # not asked (under 5)
        ["1", "1", None, "1", "1", "1"],  # one item unanswered, none a lot: unknown
        ["3", "1", None, "1", "1", "1"],  # one item unanswered, one a lot: disabled
    )
    expected = [0, 0, 1, 1, np.nan, np.nan, 1]
    np.testing.assert_array_equal(indicators.wg_disability(persons, "disability3").to_numpy(), expected)


def test_washington_group_alternative_cutoffs():
    persons = wg_rows(
        ["2", "1", "1", "1", "1", "1"],  # some difficulty in one domain
        ["2", "2", "1", "1", "1", "1"],  # some difficulty in two domains
        ["1", "1", "3", "1", "1", "1"],  # a lot in one domain
        ["1", "1", "1", "4", "1", "1"],  # cannot in one domain
    )
    np.testing.assert_array_equal(indicators.wg_disability(persons, "some2"), [0, 1, 1, 1])
    np.testing.assert_array_equal(indicators.wg_disability(persons, "cannot"), [0, 0, 0, 1])
    with pytest.raises(ConfigError, match="cut-off"):
        indicators.wg_disability(persons, "disability9")


def test_wg_domain_flags_mark_a_lot_or_worse_per_domain():
    persons = wg_rows(["1", "3", "4", "2", "1", None])
    flags = indicators.wg_domain_difficulty(persons).iloc[0]
    assert flags["wg_hearing_alot"] == 1 and flags["wg_walking_alot"] == 1
    assert flags["wg_cognition_alot"] == 0 and np.isnan(flags["wg_communication_alot"])


def test_katz_score_sums_independent_items_and_bands_levels():
    persons = pd.DataFrame(
        [
            ["1", "1", "1", "1", "1", "1"],  # 6 independent
            ["0", "1", "1", "1", "1", "1"],  # bathing lost first: 5 moderate
            ["0", "0", "1", "1", "1", "1"],  # 4 moderate
            ["0", "0", "0", "1", "1", "1"],  # 3 severe
            ["0", "0", "0", "0", "0", "0"],  # 0 severe
            ["1", "1", None, "1", "1", "1"],  # incomplete
        ],
        columns=indicators.ADL_ITEMS,
    )
    out = indicators.katz_adl(persons)
    np.testing.assert_array_equal(out["adl_score"], [6, 5, 4, 3, 0, np.nan])
    assert out["adl_level"].tolist()[:5] == ["independent", "moderate", "moderate", "severe", "severe"]
    assert pd.isna(out["adl_level"].iloc[5])


def test_lawton_collapses_each_domain_by_the_published_table():
    columns = (
        indicators.IADL_ITEMS
    )  # telephone shopping food housekeeping laundry transport medication finances
    persons = pd.DataFrame(
        [
            [1, 1, 1, 1, 1, 1, 1, 1],  # fully independent: 8
            [
                3,
                2,
                2,
                4,
                2,
                3,
                2,
                2,
            ],  # phone 1, shop 0, food 0, house 1, laundry 1, transport 1, meds 0, money 1 = 5
            [4, 4, 4, 5, 3, 5, 3, 3],  # fully dependent: 0
            [1, 1, 1, 6, 1, 1, 1, 1],  # housekeeping code 6 does not exist: invalid
        ],
        columns=columns,
    )
    np.testing.assert_array_equal(indicators.lawton_iadl(persons)["iadl_score"], [8, 5, 0, np.nan])


def test_k6_sums_items_and_flags_13_or_more():
    households = pd.DataFrame(
        [[2, 2, 2, 2, 2, 2], [2, 2, 2, 2, 2, 3], [4, 4, 4, 4, 4, 4], [0, 0, None, 0, 0, 0]],
        columns=indicators.K6_ITEMS,
    )
    out = indicators.k6(households)
    np.testing.assert_array_equal(out["k6_score"], [12, 13, 24, np.nan])
    np.testing.assert_array_equal(out["k6_distress"], [0, 1, 1, np.nan])


def test_youth_flags_follow_the_skip_logic():
    persons = pd.DataFrame(
        {
            "youth_afterschool": ["yes", "no", None],
            "youth_study_pressure": [None, "often", "sometimes"],
            "youth_conflict": [None, "never", "often"],
            "youth_internet": [None, "yes", "no"],
            "youth_work_integration": [None, None, "yes"],
        }
    )
    out = indicators.youth_flags(persons)
    np.testing.assert_array_equal(out["youth_afterschool"], [1, 0, np.nan])
    np.testing.assert_array_equal(out["youth_study_pressure"], [np.nan, 1, 0])
    np.testing.assert_array_equal(out["youth_conflict"], [np.nan, 0, 1])
    np.testing.assert_array_equal(out["youth_work_integration"], [np.nan, np.nan, 1])


def test_caregiver_strain_counts_strain_or_heavy_hours_only_where_someone_depends_on_care():
    households = pd.DataFrame(
        {
            "care_dependent": ["no", "yes", "yes", "yes", None],
            "caregiver_hours": [None, 5, 30, 5, None],
            "caregiver_strain": [None, "no", "no", "yes", None],
            "family_conflict": ["never", "often", "sometimes", None, "often"],
            "parenting_stress": ["na", "yes", "no", "no", "yes"],
            "hardship": ["no", "yes", "no", "no", "no"],
        }
    )
    out = indicators.family_flags(households, heavy_care_hours=20)
    np.testing.assert_array_equal(out["caregiver_strain"], [0, 0, 1, 1, np.nan])
    np.testing.assert_array_equal(out["family_conflict"], [0, 1, 0, np.nan, 1])
    np.testing.assert_array_equal(out["parenting_stress"], [np.nan, 1, 0, 0, 1])


def test_living_alone_and_empty_nest_come_from_the_roster():
    persons = pd.DataFrame(
        {
            "household_id": ["a", "b", "b", "c", "c", "c", "d"],
            "person_id": ["a1", "b1", "b2", "c1", "c2", "c3", "d1"],
            "age": [72, 68, 66, 70, 40, 12, 45],
            "relation": ["head", "head", "spouse", "parent", "head", "child", "head"],
        }
    )
    out = indicators.living_arrangement(persons, min_age=60)
    np.testing.assert_array_equal(out["living_alone"], [1, 0, 0, 0, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(out["empty_nest"], [1, 1, 1, 0, np.nan, np.nan, np.nan])


def test_add_need_flags_applies_the_team_definitions(tmp_path):
    persons = pd.DataFrame(
        {
            "household_id": ["h1", "h2", "h2"],
            "person_id": ["p1", "p2", "p3"],
            "age": [75, 30, 8],
            "relation": ["head", "head", "child"],
            **{c: ["1", "1", "1"] for c in indicators.WG_DOMAINS},
            **{c: ["1", None, None] for c in indicators.ADL_ITEMS},
            **{c: [4 if c == "iadl_shopping" else 1, None, None] for c in indicators.IADL_ITEMS},
            "youth_afterschool": [None, None, "yes"],
            "youth_study_pressure": [None, None, None],
            "youth_conflict": [None, None, None],
            "youth_internet": [None, None, None],
            "youth_work_integration": [None, None, None],
        }
    )
    households = pd.DataFrame(
        {
            "household_id": ["h1", "h2"],
            **{c: [0, 0] for c in indicators.K6_ITEMS},
            "care_dependent": ["no", "no"],
            "caregiver_hours": [None, None],
            "caregiver_strain": [None, None],
            "family_conflict": ["never", "often"],
            "parenting_stress": ["na", "no"],
            "hardship": ["no", "no"],
            "receiving_elderly.home_visit": [1, 0],
            "receiving_youth.afterschool": [0, 0],
            "receiving_family.mediation": [0, 1],
        }
    )
    definitions = indicators.load_needs()
    hh, pp = indicators.add_need_flags(households, persons, definitions)
    # the 75-year-old lives alone (elderly need) but receives a home visit: in need, not unmet
    assert pp.loc[0, "in_need_elderly"] == 1 and pp.loc[0, "unmet_elderly"] == 0
    assert np.isnan(pp.loc[1, "in_need_elderly"])  # 30-year-old outside the elderly universe
    assert pp.loc[2, "in_need_youth"] == 1 and pp.loc[2, "unmet_youth"] == 1
    assert hh["in_need_family"].tolist() == [0, 1] and hh["unmet_family"].tolist() == [0, 0]
    assert "in_need_elderly" not in persons.columns  # inputs are not modified

    bad = {
        "teams": {
            "family": {
                **definitions["teams"]["family"],
                "indicators": ["living_alone"],
                "in_need_if_any": ["living_alone"],
            }
        }
    }
    with pytest.raises(ConfigError, match="households-level"):
        indicators.add_need_flags(households, persons, bad)
    (tmp_path / "needs.yaml").write_text("teams:\n  elderly: {unit: persons}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="universe"):
        indicators.load_needs(tmp_path / "needs.yaml")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.sampled_from(["yes", " Yes", "NO ", "often", "Often\u3000", "sometimes", "", "maybe"]),
            st.integers(0, 1),
        ),
        max_size=25,
    )
)
def test_recoding_each_distinct_answer_once_equals_recoding_every_cell(values):
    """Choice names recoded once per distinct answer give every cell's flag (stripped, lower-cased; unknown,
    blank or missing NaN), for Arrow and Python text columns."""
    for dtype in ("str", object):
        column = pd.Series(
            [str(v) if isinstance(v, int) and dtype == "str" else v for v in values], dtype=dtype
        )
        for mapping in (indicators.YES_NO, indicators.FREQUENCY_OFTEN):
            every_cell = column.astype("string").str.strip().str.lower().map(mapping).astype("float64")
            pd.testing.assert_series_equal(indicators._recode(column, mapping), every_cell)
