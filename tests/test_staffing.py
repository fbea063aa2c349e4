"""Team sizing: apportionment and WISN reproduce the published fixtures of docs/sources.md (§3, §7),
and the sizing chain turns demand drivers into a staffing allocation that reacts to demand as it should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.config import load_needs
from analysis.errors import ConfigError
from analysis.staffing import (
    METHODS,
    allocate,
    apportion,
    apportion_many,
    assumptions_range,
    assumptions_table,
    available_working_time,
    break_even,
    break_evens,
    leader_sentence,
    load_assumptions,
    replicate_summary,
    required_point,
    required_staff,
    run_chain,
    sizing_keys,
    staffing_tables,
    team_demand,
    tornado,
    wisn,
    with_value,
    workload,
    write_tables,
)

# ---- apportionment fixtures (docs/sources.md §7) -------------------------------------------------------

TOY = {"A": 6100, "B": 5000, "C": 900}

US_1790 = {
    "CT": 236841,
    "DE": 55540,
    "GA": 70835,
    "KY": 68705,
    "MD": 278514,
    "MA": 475327,
    "NH": 141822,
    "NJ": 179570,
    "NY": 331589,
    "NC": 353523,
    "PA": 432879,
    "RI": 68446,
    "SC": 206236,
    "VT": 85533,
    "VA": 630560,
}
HOUSE_1792 = {
    "CT": 7,
    "DE": 1,
    "GA": 2,
    "KY": 2,
    "MD": 8,
    "MA": 14,
    "NH": 4,
    "NJ": 5,
    "NY": 10,
    "NC": 10,
    "PA": 13,
    "RI": 2,
    "SC": 6,
    "VT": 2,
    "VA": 19,
}


@pytest.mark.parametrize(
    ("method", "minimum", "expected"),
    [
        ("hamilton", 0, {"A": 5, "B": 4, "C": 1}),
        ("webster", 0, {"A": 5, "B": 4, "C": 1}),
        ("jefferson", 0, {"A": 6, "B": 4, "C": 0}),
        ("huntington_hill", 1, {"A": 5, "B": 4, "C": 1}),
    ],
)
def test_toy_case_matches_published_tables(method, minimum, expected):
    assert apportion(TOY, 10, method=method, minimum=minimum) == expected


def test_jefferson_reproduces_the_1792_house():
    assert apportion(US_1790, 105, method="jefferson") == HOUSE_1792


@pytest.mark.parametrize(
    ("method", "changes"),
    [
        ("huntington_hill", {"DE": 2, "VT": 3, "PA": 12, "VA": 18}),
        ("webster", {"DE": 2, "VT": 2, "PA": 13, "VA": 18}),
        ("hamilton", {"DE": 2, "VT": 2, "PA": 13, "VA": 18}),
    ],
)
def test_1790_differences_from_jefferson(method, changes):
    result = apportion(US_1790, 105, method=method)
    assert result == {**HOUSE_1792, **changes}


def test_a_minimum_that_does_not_bind_changes_nothing():
    weights = {"elderly": 4.0, "youth": 3.0, "disability": 2.0, "family": 1.0}
    for method in ("hamilton", "webster", "jefferson"):
        assert apportion(weights, 10, method, minimum=1) == apportion(weights, 10, method)


def test_a_binding_minimum_is_met_and_the_rest_divided_by_weight():
    result = apportion({"big": 97.0, "mid": 2.0, "small": 1.0}, 10, "hamilton", minimum=2)
    assert result == {"big": 6, "mid": 2, "small": 2}


def test_ties_go_to_the_larger_weight_then_the_name_sorting_first():
    assert apportion({"b": 1.0, "a": 1.0, "c": 1.0}, 2) == {"b": 1, "a": 1, "c": 0}
    assert apportion({"c": 1.0, "b": 1.0, "a": 1.0}, 1, "webster") == {"c": 0, "b": 0, "a": 1}
    # Hamilton remainders tie (0.5 each) between x and y; the larger-weight rule cannot apply (equal)
    assert apportion({"y": 1.0, "x": 1.0}, 1) == {"y": 0, "x": 1}


def test_bad_inputs_raise_readable_errors():
    with pytest.raises(ConfigError, match="unknown apportionment method"):
        apportion(TOY, 10, method="dhondt")
    with pytest.raises(ConfigError, match="needs 12 posts"):
        apportion({"a": 1, "b": 1, "c": 1}, 10, minimum=4)
    with pytest.raises(Exception, match="non-negative"):
        apportion({"a": -1.0, "b": 2.0}, 3)


weights_strategy = st.dictionaries(
    st.sampled_from(["elderly", "youth", "disability", "family", "e", "f"]),
    st.floats(min_value=0.01, max_value=1000, allow_nan=False),
    min_size=2,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(
    weights=weights_strategy,
    seats=st.integers(0, 60),
    minimum=st.integers(0, 3),
    method=st.sampled_from(METHODS),
)
def test_seats_sum_to_total_and_minimums_hold(weights, seats, minimum, method):
    if minimum * len(weights) > seats:
        with pytest.raises(ConfigError):
            apportion(weights, seats, method, minimum)
        return
    result = apportion(weights, seats, method, minimum)
    assert sum(result.values()) == seats
    assert min(result.values()) >= minimum


@settings(max_examples=100, deadline=None)
@given(
    weights=weights_strategy,
    seats=st.integers(0, 40),
    minimum=st.integers(0, 2),
    method=st.sampled_from(["webster", "huntington_hill", "jefferson"]),
)
def test_divisor_methods_are_house_monotone(weights, seats, minimum, method):
    seats = max(seats, minimum * len(weights))
    before = apportion(weights, seats, method, minimum)
    after = apportion(weights, seats + 1, method, minimum)
    assert all(after[team] >= before[team] for team in weights)


@settings(max_examples=100, deadline=None)
@given(weights=weights_strategy, seats=st.integers(1, 40))
def test_hamilton_satisfies_the_quota_rule(weights, seats):
    total = sum(weights.values())
    result = apportion(weights, seats, "hamilton")
    for team, w in weights.items():
        quota = seats * w / total
        assert np.floor(quota) - 1e-9 <= result[team] <= np.ceil(quota) + 1e-9


def test_apportion_many_matches_row_by_row():
    rng = np.random.default_rng(7)
    weights = rng.gamma(2.0, 1.0, size=(50, 4))
    for method in METHODS:
        many = apportion_many(weights, 10, method, minimum=1)
        names = ["a", "b", "c", "d"]
        single = np.array(
            [[apportion(dict(zip(names, row)), 10, method, 1)[n] for n in names] for row in weights]
        )
        np.testing.assert_array_equal(many, single)


# ---- WISN fixtures (docs/sources.md §3.2, §3.4) --------------------------------------------------------


def test_wisn_kenya_clinic_burmen_2017():
    awt_days = available_working_time(
        weeks=52, days_per_week=4.5, public_holidays=10, annual_leave=30, sick_leave=15, hours_per_day=1
    )
    assert awt_days == 179
    result = wisn(
        awt_days,
        activities=[{"activity": "consultation", "annual_workload": 10_000 * 10, "unit_time": 0.25 / 8}],
        category_allowances=[{"name": "training", "hours": 10, "per": "year"}],
        individual_allowances=[],
        current_staff=12,
    )
    assert result["activities"]["annual_workload"].iloc[0] * 0.25 / 8 == pytest.approx(3125)
    assert round(result["service_staff"], 2) == 17.46
    assert round(result["caf"], 4) == 1.0592
    assert round(result["required"], 2) == 18.49


def test_wisn_synthetic_social_work_example():
    awt = available_working_time(
        weeks=52,
        days_per_week=5,
        public_holidays=11,
        annual_leave=5,
        sick_leave=5,
        other_leave=5,
        hours_per_day=8,
    )
    assert awt == 1872
    result = wisn(
        awt,
        activities=[
            {"activity": "casework", "annual_workload": 2400, "unit_time": 1.5},
            {"activity": "group sessions", "annual_workload": 200, "unit_time": 3.0},
            {"activity": "home visits", "annual_workload": 1000, "unit_time": 2.0},
        ],
        category_allowances=[
            {"name": "team meeting", "hours": 2, "per": "week"},
            {"name": "supervision", "hours": 1, "per": "week"},
            {"name": "record keeping", "hours": 0.5, "per": "day"},
        ],
        individual_allowances=[{"name": "team leader", "hours": 400}, {"name": "volunteers", "hours": 200}],
        current_staff=3,
    )
    steps = result["activities"].set_index("activity")
    assert steps["standard_workload"].tolist() == [1248, 624, 936]
    assert steps["staff"].round(4).tolist() == [1.9231, 0.3205, 1.0684]
    assert round(result["service_staff"], 4) == 3.3120
    assert round(result["tcas"], 4) == 0.1375
    assert round(result["caf"], 4) == 1.1594
    assert round(result["iaf"], 4) == 0.3205
    assert round(result["required"], 4) == 4.1605
    assert round(result["wisn_ratio"], 3) == 0.721
    assert round(result["difference"], 2) == -1.16


# ---- assumptions file -----------------------------------------------------------------------------


def test_bundled_assumptions_validate_and_every_leaf_has_a_source_or_is_marked():
    table = assumptions_table(load_assumptions())
    assert len(table) > 50
    assert ((table["source"] != "") | table["assumption"]).all()
    assert (table["low"] <= table["value"]).all() and (table["value"] <= table["high"]).all()
    values = table.set_index("key")["value"]
    assert values["working_time.public_holidays"] == 11 and values["working_time.annual_leave"] == 5
    assert values["plan.social_workers"] == 10 and values["plan.other_staff"] == 15


def _raw_assumptions():
    from analysis.staffing import ASSUMPTIONS_PATH

    return yaml.safe_load(ASSUMPTIONS_PATH.read_text(encoding="utf-8"))


def _write(tmp_path, raw):
    path = tmp_path / "assumptions.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_a_missing_assumption_is_named(tmp_path):
    raw = _raw_assumptions()
    del raw["teams"]["elderly"]["home_visits"]["visits_per_case"]
    with pytest.raises(ConfigError, match=r"'teams\.elderly\.home_visits\.visits_per_case' is missing"):
        load_assumptions(_write(tmp_path, raw))


@pytest.mark.parametrize("bad", ["twelve", None, True, float("nan")])
def test_a_non_numeric_assumption_is_named(tmp_path, bad):
    raw = _raw_assumptions()
    raw["working_time"]["sick_leave"]["value"] = bad
    with pytest.raises(ConfigError, match=r"'working_time\.sick_leave'.*not a number") as error:
        load_assumptions(_write(tmp_path, raw))
    assert "assumptions.yaml" in str(error.value)


def test_an_assumption_without_source_or_flag_or_range_is_rejected(tmp_path):
    raw = _raw_assumptions()
    raw["plan"]["social_workers"].pop("source")
    with pytest.raises(ConfigError, match="neither a source"):
        load_assumptions(_write(tmp_path, raw))
    raw = _raw_assumptions()
    raw["plan"]["social_workers"]["range"] = [11, 12]
    with pytest.raises(ConfigError, match="range"):
        load_assumptions(_write(tmp_path, raw))
    raw = _raw_assumptions()
    raw["plan"]["method"] = "dhondt"
    with pytest.raises(ConfigError, match="plan.method"):
        load_assumptions(_write(tmp_path, raw))


# ---- the sizing chain on a hand-made drivers table ------------------------------------------------

SERVICES = {
    "youth": ["afterschool", "tutoring", "counselling", "skills", "leisure"],
    "elderly": ["home_visit", "meal", "day_care", "health", "activity"],
    "disability": ["rehab", "assistive", "respite", "employment", "inclusion"],
    "family": ["counselling", "parenting", "mediation", "assistance", "newcomer"],
}


def hand_made_drivers(in_need=None, take_up=0.6):
    """A drivers table as the demand stage writes it (docs/contracts.md), with known take-up."""
    in_need = in_need or {"youth": 9000, "elderly": 4000, "disability": 6000, "family": 5000}
    rows = []
    for team, services in SERVICES.items():
        rows.append((team, "in_need", in_need[team]))
        for rank, service in enumerate(services, start=1):
            need = in_need[team] * 0.3 / rank
            rows += [
                (team, f"need:{service}", need),
                (team, f"would_use:{service}", need * take_up),
                (team, f"receiving:{service}", need * 0.1),
            ]
    return pd.DataFrame(rows, columns=["team", "driver", "estimate"])


def replicated(drivers, n=200, sd=0.1, seed=3):
    rng = np.random.default_rng(seed)
    return pd.concat(
        [
            drivers.assign(replicate=r, estimate=drivers["estimate"] * rng.lognormal(0, sd, len(drivers)))
            for r in range(1, n + 1)
        ],
        ignore_index=True,
    )


@pytest.fixture(scope="module")
def assumptions():
    return load_assumptions()


def test_take_up_is_would_use_over_need_capped_at_one(assumptions):
    demand = team_demand(hand_made_drivers(take_up=0.6), assumptions).set_index("team")
    assert demand["take_up"].round(12).eq(0.6).all()
    assert demand.loc["elderly", "willing"] == pytest.approx(4000 * 0.6)
    capped = team_demand(hand_made_drivers(take_up=1.7), assumptions)
    assert (capped["take_up"] == 1.0).all()


def test_missing_team_or_driver_is_reported(assumptions):
    drivers = hand_made_drivers()
    with pytest.raises(Exception, match="no drivers for team 'family'"):
        team_demand(drivers[drivers["team"] != "family"], assumptions)
    with pytest.raises(Exception, match="would_use"):
        team_demand(drivers[~drivers["driver"].str.startswith("would_use")], assumptions)
    broken = drivers.astype({"estimate": object})
    broken.loc[5, "estimate"] = "n/a"
    with pytest.raises(Exception, match=r"row 7, column 'estimate'.*not a number"):
        team_demand(broken, assumptions)


def test_chain_agrees_with_wisn_for_each_team(assumptions):
    chain = run_chain(hand_made_drivers(), assumptions)
    cas = [
        {"name": k, "hours": v["value"], "per": v["per"]}
        for k, v in assumptions["category_allowances"].items()
    ]
    ias = [{"name": k, "hours": v["value"]} for k, v in assumptions["individual_allowances"].items()]
    awt = available_working_time(
        weeks=52,
        days_per_week=5,
        public_holidays=11,
        annual_leave=5,
        sick_leave=5,
        other_leave=5,
        hours_per_day=8,
    )
    for team, work in chain["workload"].groupby("team"):
        one = wisn(awt, work.rename(columns={"unit_time_hours": "unit_time"}), cas, ias, current_staff=2)
        row = chain["required"].set_index("team").loc[team]
        assert row["required"] == pytest.approx(one["required"], rel=1e-12)
        assert row["caf"] == pytest.approx(one["caf"]) and row["iaf"] == pytest.approx(one["iaf"])


def test_workload_follows_the_stated_formula(assumptions):
    work = run_chain(hand_made_drivers(), assumptions)["workload"].set_index(["team", "activity"])
    youth = assumptions["teams"]["youth"]
    willing = 9000 * 0.6
    expected_groups = (
        willing
        * youth["group_sessions"]["coverage"]["value"]
        * youth["group_sessions"]["sessions_per_group"]["value"]
        / youth["group_sessions"]["group_size"]["value"]
    )
    assert work.loc[("youth", "group_sessions"), "annual_workload"] == pytest.approx(expected_groups)
    expected_contacts = (
        willing * youth["casework"]["coverage"]["value"] * youth["casework"]["contacts_per_case"]["value"]
    )
    assert work.loc[("youth", "casework"), "annual_workload"] == pytest.approx(expected_contacts)


def test_more_demand_in_one_team_never_costs_it_a_worker(assumptions):
    base = run_chain(hand_made_drivers(), assumptions)["allocation"].set_index("team")
    more = run_chain(
        hand_made_drivers({"youth": 9000, "elderly": 12000, "disability": 6000, "family": 5000}), assumptions
    )["allocation"].set_index("team")
    assert more.loc["elderly", "required"] > base.loc["elderly", "required"]
    assert more.loc["elderly", "social_workers"] > base.loc["elderly", "social_workers"]
    assert more["social_workers"].sum() == 10 and more["other_staff"].sum() == 15
    assert (more["social_workers"] >= 1).all() and (more["other_staff"] >= 1).all()


def test_identical_replicates_give_one_split_and_the_point_allocation(assumptions):
    point = run_chain(hand_made_drivers(), assumptions)["allocation"]
    reps = pd.concat([hand_made_drivers().assign(replicate=r) for r in range(1, 6)], ignore_index=True)
    summary = replicate_summary(run_chain(reps, assumptions)["allocation"], assumptions)
    assert summary["splits"]["share"].tolist() == [1.0]
    assert summary["splits"]["split"].iloc[0] == "/".join(map(str, point["social_workers"]))
    total = summary["required"].set_index("team").loc["total"]
    assert total["p2_5"] == pytest.approx(point["required"].sum())


def test_replicate_chain_matches_one_replicate_at_a_time(assumptions):
    reps = replicated(hand_made_drivers(), n=200)
    allocation = run_chain(reps, assumptions)["allocation"]
    for r in (1, 77, 200):
        alone = run_chain(reps[reps["replicate"] == r].drop(columns="replicate"), assumptions)["allocation"]
        np.testing.assert_allclose(allocation[allocation["replicate"] == r]["required"], alone["required"])
        assert (
            allocation[allocation["replicate"] == r]["social_workers"].tolist()
            == alone["social_workers"].tolist()
        )


def test_tornado_moves_required_staff_the_right_way(assumptions):
    demand = team_demand(hand_made_drivers(), assumptions)
    table = tornado(
        demand,
        assumptions,
        keys=[
            "teams.youth.casework.coverage",
            "working_time.sick_leave",
            "teams.elderly.group_sessions.group_size",
        ],
    ).set_index("assumption")
    assert (
        table.loc["teams.youth.casework.coverage", "required_high"]
        > table.loc["teams.youth.casework.coverage", "required_base"]
    )
    # more sick days -> less available time -> more staff needed
    assert (
        table.loc["working_time.sick_leave", "required_high"]
        > table.loc["working_time.sick_leave", "required_low"]
    )
    # bigger groups -> fewer groups -> fewer staff
    assert (
        table.loc["teams.elderly.group_sessions.group_size", "required_high"]
        < table.loc["teams.elderly.group_sessions.group_size", "required_low"]
    )
    assert (
        table.loc["teams.youth.casework.coverage", "youth_high"]
        > table.loc["teams.youth.casework.coverage", "youth_low"]
    )


@pytest.mark.slow
def test_the_array_chain_gives_the_frame_chain_bit_for_bit(assumptions):
    """required_point (the sensitivity searches' fast path) against required_staff(workload(...)): exact
    equality at each sizing assumption's value, range ends and 40 random values, not a tolerance."""
    demand = team_demand(hand_made_drivers(), assumptions)
    willing = demand.set_index("team")["willing"].reindex(assumptions["teams"]).to_numpy()
    rng = np.random.default_rng(7)
    checked = 0
    for key in sizing_keys(assumptions):
        low, high = assumptions_range(assumptions, key)
        for x in [low, high, *rng.uniform(low, high, 40 // len(sizing_keys(assumptions)) + 1)]:
            varied = with_value(assumptions, key, float(x))
            frame = required_staff(workload(demand, varied), varied)["required"].to_numpy()
            np.testing.assert_array_equal(required_point(willing, varied), frame, err_msg=f"{key}={x}")
            checked += 1
    assert checked > 2 * len(sizing_keys(assumptions))


def test_break_even_is_where_the_split_changes(assumptions):
    demand = team_demand(hand_made_drivers(), assumptions)
    key = "teams.youth.casework.coverage"
    found = break_even(demand, assumptions, key, tolerance=1e-6)
    assert np.isfinite(found["upper"]) and found["upper"] > found["value"]

    def split_at(x):
        allocation = allocate(
            required_staff(workload(demand, with_value(assumptions, key, x)), assumptions), assumptions
        )
        return "/".join(map(str, allocation["social_workers"]))

    assert split_at(found["upper"] * (1 - 1e-5)) == found["split"]
    assert split_at(found["upper"]) == found["upper_split"] != found["split"]
    assert split_at(found["lower"] * (1 + 1e-5)) == found["split"]
    assert split_at(found["lower"]) == found["lower_split"] != found["split"]


def test_output_tables_have_the_columns_the_figures_read_and_are_byte_stable(assumptions, tmp_path):
    from analysis.figures import STAFFING_COLUMNS

    drivers = hand_made_drivers()
    point, reps = run_chain(drivers, assumptions), run_chain(replicated(drivers, n=20), assumptions)
    sensitivity = tornado(
        point["demand"], assumptions, keys=["teams.youth.casework.coverage", "working_time.sick_leave"]
    )
    breaks = break_evens(point["demand"], assumptions, keys=["teams.youth.casework.coverage"])
    tables = staffing_tables(point, reps, sensitivity, breaks, assumptions)
    for name, columns in STAFFING_COLUMNS.items():
        assert columns <= set(tables[name].columns), name
    assert set(tables) == {"required_staff", "allocation", "replicate_allocations", "sensitivity"}
    total = tables["required_staff"].set_index("team").loc["total"]
    assert total["required"] == pytest.approx(point["required"]["required"].sum())
    first = [p.read_bytes() for p in write_tables(tables, tmp_path / "a")]
    second = [
        p.read_bytes()
        for p in write_tables(staffing_tables(point, reps, sensitivity, breaks, assumptions), tmp_path / "b")
    ]
    assert first == second


def test_leader_sentence_is_built_from_the_numbers(assumptions):
    drivers = hand_made_drivers()
    point = run_chain(drivers, assumptions)["allocation"]
    summary = replicate_summary(run_chain(replicated(drivers, n=40), assumptions)["allocation"], assumptions)
    split = "/".join(map(str, point["social_workers"]))
    share = summary["splits"].set_index("split")["share"].get(split, 0.0)
    en = leader_sentence(point, summary, assumptions, "en")
    zh = leader_sentence(point, summary, assumptions, "zh")
    assert f"{point['required'].sum():.1f}" in en and f"{point['required'].sum():.1f}" in zh
    assert f"{share:.0%}" in en and f"{share:.0%}" in zh
    names = {t: spec["label"] for t, spec in load_needs()["teams"].items()}  # team names come from needs.yaml
    assert all(f"{names[t]['en']} {n}" in en for t, n in zip(point["team"], point["social_workers"]))
    assert all(f"{names[t]['zh']}{n}" in zh for t, n in zip(point["team"], point["social_workers"]))
    assert ("is enough" in en) == (point["required"].sum() <= 10)
    worst = (2.5 / point.set_index("team")["required"]).idxmin()
    assert f"leave {names[worst]['en']} with" in en


def test_plan_coverage_scales_every_target_to_exactly_the_plan(assumptions):
    from analysis.staffing import _leaves, plan_coverage

    demand = team_demand(hand_made_drivers(), assumptions)
    required = required_staff(workload(demand, assumptions), assumptions)
    k = plan_coverage(required, assumptions)
    scaled = assumptions
    for key, leaf in _leaves(assumptions):
        if key.endswith(".coverage"):
            scaled = with_value(scaled, key, leaf["value"] * k)
    total = required_staff(workload(demand, scaled), scaled)["required"].sum()
    assert total == pytest.approx(10)
