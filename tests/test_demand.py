"""Demand tables: household shares, unmet need, drivers from replicate weights, suppression, precision."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import demand, indicators, weights
from analysis.survey import Design, logit_interval


def tiny_survey() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three households, six persons, with answers for every module (hand-made)."""
    persons = pd.DataFrame(
        {
            "household_id": ["a", "b", "b", "c", "c", "c"],
            "person_id": ["a1", "b1", "b2", "c1", "c2", "c3"],
            "age": [80, 70, 68, 40, 38, 12],
            "sex": ["female", "male", "female", "male", "female", "male"],
            "relation": ["head", "head", "spouse", "head", "spouse", "child"],
            "registration": ["local", "local", "local", "nonlocal", "nonlocal", "nonlocal"],
            **{c: ["1", "1", "1", "1", "1", "3"] for c in indicators.WG_DOMAINS},
            **{
                c: ["0" if c == "adl_bathing" else "1", "1", "1", None, None, None]
                for c in indicators.ADL_ITEMS
            },
            **{c: [1, 1, 1, None, None, None] for c in indicators.IADL_ITEMS},
            "youth_afterschool": [None, None, None, None, None, "yes"],
            "youth_study_pressure": [None, None, None, None, None, "often"],
            "youth_conflict": [None, None, None, None, None, "never"],
            "youth_internet": [None, None, None, None, None, "no"],
            "youth_work_integration": [None] * 6,
        }
    )
    services = {}
    for team, spec in indicators.load_needs()["teams"].items():
        for s in spec["services"]:
            services[f"need_{team}.{s}"] = [0, 0, 0]
            services[f"receiving_{team}.{s}"] = [0, 0, 0]
            services[f"would_use_{team}.{s}"] = [0, 0, 0]
    services["need_elderly.meal"] = [1, 1, 0]
    services["receiving_elderly.meal"] = [1, 0, 0]
    services["would_use_elderly.meal"] = [1, 1, 1]
    households = pd.DataFrame(
        {
            "household_id": ["a", "b", "c"],
            "cunju": ["c01", "c01", "c02"],
            "psu": ["c01-g01", "c01-g01", "c02-g01"],
            "hh_registration": ["local", "local", "nonlocal"],
            **{c: [0, 0, 4] for c in indicators.K6_ITEMS},
            "care_dependent": ["yes", "no", "no"],
            "caregiver_hours": [30, None, None],
            "caregiver_strain": ["no", None, None],
            "family_conflict": ["never", "never", "sometimes"],
            "parenting_stress": ["na", "na", "no"],
            "hardship": ["no", "no", "no"],
            **services,
        }
    )
    return households, persons


def prepared(household_weights=(10.0, 20.0, 30.0)):
    households, persons = tiny_survey()
    definitions = indicators.load_needs()
    hh_w = dict(zip(households["household_id"], household_weights))
    persons = persons.assign(weight=persons["household_id"].map(hh_w))
    table = demand.estimation_table(households, persons, definitions)
    specs = demand.variable_specs(table, definitions)
    return (
        households.assign(weight=list(household_weights)),
        definitions,
        specs,
        demand.add_derived_columns(table, specs, definitions),
    )


def test_household_totals_from_person_shares_equal_household_weight_totals():
    households, _definitions, _specs, table = prepared()
    # household weights here are the household means of member weights (equal within a household)
    got = (table["weight"] * table["elderly:need_elderly.meal"]).sum()
    assert got == pytest.approx(10 + 20)
    answered = table["elderly:need_elderly.meal"].notna()
    den = (table["weight"] * table["hh_share"])[answered].sum()
    assert den == pytest.approx(households["weight"].sum())


def test_unmet_need_is_need_without_receiving_among_those_needing():
    _, _, _, table = prepared()
    by_household = table.groupby("household_id")["unmet_need_elderly.meal"].first()
    assert by_household["a"] == 0 and by_household["b"] == 1 and np.isnan(by_household["c"])


def test_team_flags_reach_the_estimation_table():
    _, _, _, table = prepared()
    row = table.set_index("person_id")
    assert row.loc["a1", "in_need_elderly"] == 1  # dependent in bathing (Katz 5), lives alone
    assert np.isnan(row.loc["c1", "in_need_elderly"])  # 40-year-old outside the target group
    assert row.loc["c3", "in_need_disability"] == 1 and row.loc["c3", "in_need_youth"] == 1
    assert row.loc["c1", "in_need_family"] == 1  # K6 = 24 in household c


def test_drivers_are_weighted_totals_and_replicates_are_w_transpose_y():
    _households, definitions, specs, table = prepared()
    columns = demand.driver_columns(specs, definitions)
    point = demand.drivers(table, columns).set_index(["team", "driver"])["estimate"]
    assert point["elderly", "in_need"] == pytest.approx(10)  # only a1 (the couple in b is independent)
    assert point["elderly", "need:meal"] == pytest.approx(30)  # households a and b
    assert point["family", "in_need"] == pytest.approx(10 + 30)  # a: 30 h/week caregiving; c: K6 24
    reps = np.column_stack([table["weight"], 2 * table["weight"]])
    rep = demand.drivers(table, columns, reps).set_index(["replicate", "team", "driver"])["estimate"]
    assert rep[1, "elderly", "need:meal"] == pytest.approx(30)
    assert rep[2, "elderly", "need:meal"] == pytest.approx(60)
    assert set(columns["driver"]) >= {"in_need", "need:meal", "would_use:meal", "receiving:meal"}


def test_point_estimates_differ_between_unweighted_and_weighted():
    _, definitions, _, table = prepared()
    got = demand.point_estimates(table, definitions, {"unweighted": None, "raked": "weight"}).set_index(
        "team"
    )
    assert got.loc["family", "unweighted"] == pytest.approx(2 / 3)
    assert got.loc["family", "raked"] == pytest.approx(40 / 60)
    assert got.loc["disability", "raked"] == pytest.approx(30 / (10 + 40 + 90))


def test_the_suppression_threshold_is_the_disclosure_rule_for_leadership_tables():
    assert demand.leadership_threshold() == 10  # docs/sources.md §6, assumptions.yaml disclosure section


def test_sample_size_for_five_points_follows_the_design_effect():
    results = pd.DataFrame(
        {
            "analysis_type": ["prop"],
            "group": ["all"],
            "team": ["elderly"],
            "variable": ["in_need_elderly"],
            "universe": ["persons aged 60+"],
            "estimate": [0.5],
            "se": [np.sqrt(2.0 * 0.25 / 400)],
            "ci_low": [0.44],
            "ci_high": [0.56],
            "n": [400],
        }
    )
    table = pd.DataFrame({"household_id": [f"h{i}" for i in range(1000)]})
    out = demand.precision(results, table).iloc[0]
    assert out["deff"] == pytest.approx(2.0)  # variance twice that of a simple random sample of 400
    assert out["n_required"] == np.ceil(2.0 * 1.959964**2 * 0.25 / 0.0025)  # 769
    assert out["households_required"] == np.ceil(769 / 0.4)
    assert out["moe"] == pytest.approx(0.06)


def test_raking_cells_use_the_frame_age_bands():
    _, persons = tiny_survey()
    frame = pd.DataFrame(
        {
            "cunju": ["c01"],
            "sex": ["male"],
            "age_band": ["0-14"],
            "registration": ["local"],
            "population": [1],
        }
    )
    frame = pd.concat([frame, frame.assign(age_band="15-59"), frame.assign(age_band="60+")])
    cells = weights.add_rake_cells(persons, frame)
    assert cells["sex_age"].tolist() == [
        "female|60+",
        "male|60+",
        "female|60+",
        "male|15-59",
        "female|15-59",
        "male|0-14",
    ]
    assert not cells["rake_imputed"].any()


def test_a_missing_age_gets_the_modal_band_of_its_relation_for_raking_only():
    _, persons = tiny_survey()
    persons = pd.concat(
        [persons, persons.iloc[[3]].assign(person_id="d1", household_id="d", age=None)], ignore_index=True
    )
    frame = pd.DataFrame(
        {
            "cunju": ["c01"] * 3,
            "sex": ["male"] * 3,
            "age_band": ["0-14", "15-59", "60+"],
            "registration": ["local"] * 3,
            "population": [1, 1, 1],
        }
    )
    cells = weights.add_rake_cells(persons, frame)
    # heads are 80, 70 and 40 years old: 60+ is the modal band of heads
    assert cells.loc[6, "sex_age"] == "male|60+" and cells.loc[6, "rake_imputed"]
    assert pd.isna(cells.loc[6, "age_band"]) and pd.isna(cells.loc[6, "age"])


def test_the_committed_list_of_analyses_is_the_one_needs_yaml_gives():
    """analysis/needs_loa.csv is generated from analysis/needs.yaml; regenerate it after editing the needs:
    python -c "from analysis import demand; demand.write_needs_loa()"."""
    committed = pd.read_csv(demand.NEEDS_LOA_FILE, dtype=str, keep_default_na=False)
    generated = demand.needs_loa(indicators.load_needs()).astype(str)
    pd.testing.assert_frame_equal(committed, generated)
    assert {"mean", "ratio", "total"} == set(committed["analysis_type"])
    assert "ratio" not in set(
        committed.loc[committed["analysis_var"].str.startswith("elderly:"), "analysis_type"]
    )


def test_stated_demand_is_any_need_option_ticked_other_included():
    _, definitions, specs, table = prepared()
    by_household = table.groupby("household_id")[["need_any_elderly", "need_any_family"]].first()
    assert by_household["need_any_elderly"].tolist() == [1, 1, 0]  # a and b need meals
    assert by_household["need_any_family"].tolist() == [0, 0, 0]
    households, persons = tiny_survey()
    households = households.assign(
        **{"need_family.other": [0, 0, 1], "need_family.counselling": [np.nan, 0, 0]}
    )
    table = demand.estimation_table(households, persons, definitions)
    table = demand.add_derived_columns(table, demand.variable_specs(table, definitions), definitions)
    assert table.groupby("household_id")["need_any_family"].first().tolist() == [0, 0, 1]
    assert set(specs.loc[specs["variable"].str.startswith("need_any_"), "team"]) == set(definitions["teams"])


def survey_of_tiny_households(definitions: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The three hand-made households copied into two 村居 (3 and 2 residential groups of 3 households)."""
    households, persons = tiny_survey()
    hh_parts, person_parts = [], []
    for k, (cunju, group) in enumerate([("c01", 1), ("c01", 2), ("c01", 3), ("c02", 1), ("c02", 2)]):
        ids = {h: f"{h}{k}" for h in households["household_id"]}
        hh_parts.append(
            households.assign(
                household_id=households["household_id"].map(ids),
                cunju=cunju,
                psu=f"{cunju}-g{group}",
                weight=[10.0 + 3 * k, 20.0, 30.0 - k * k],
            )
        )
        person_parts.append(
            persons.assign(
                household_id=persons["household_id"].map(ids), person_id=persons["person_id"] + str(k)
            )
        )
    households, persons = pd.concat(hh_parts, ignore_index=True), pd.concat(person_parts, ignore_index=True)
    weights_of = households.set_index("household_id")["weight"]
    band = pd.cut(persons["age"], [-1, 14, 59, 200], labels=["0-14", "15-59", "60+"]).astype(str)
    return households, persons.assign(weight=persons["household_id"].map(weights_of), age_band=band)


def test_cunju_totals_and_shares_use_t_with_the_domain_degrees_of_freedom():
    definitions = indicators.load_needs()
    households, persons = survey_of_tiny_households(definitions)
    table, specs = demand.prepare(households, persons, definitions)
    design = Design(table, weights="weight", strata="cunju", ids="psu")
    results = demand.estimate(design, table, specs, breakdowns=definitions["breakdowns"])
    rows = results[(results["variable"] == "in_need_family")].set_index(["analysis_type", "group_value"])
    assert rows.loc[("total", "c01"), "df"] == 2 and rows.loc[("total", "c02"), "df"] == 1
    assert rows.loc[("total", "all"), "df"] == 3  # 5 residential groups − 2 村居
    for (kind, _where), row in rows.iterrows():
        if kind == "total":
            half = stats.t.ppf(0.975, row["df"]) * row["se"]
            assert row["ci_high"] - row["estimate"] == pytest.approx(half, rel=1e-12)
    share = rows.loc[("prop", "c02")]
    low, high = logit_interval(share["estimate"], share["se"], share["df"], 0.95)
    assert share["se"] > 0 and 0 < low < share["estimate"] < high < 1
    assert (share["ci_low"], share["ci_high"]) == pytest.approx((float(low), float(high)), rel=1e-12)


def test_a_fifth_team_in_the_need_definitions_reaches_every_table():
    definitions = copy.deepcopy(indicators.load_needs())
    definitions["teams"]["carers"] = {
        "label": {"zh": "照顾者", "en": "Carers"},
        "unit": "households",
        "universe": {},
        "indicators": ["hardship"],
        "in_need_if_any": ["hardship"],
        "services": ["respite"],
    }
    households, persons = survey_of_tiny_households(definitions)
    households = households.assign(
        **{
            "need_carers.respite": 1,
            "receiving_carers.respite": 0,
            "would_use_carers.respite": 1,
            "need_carers.other": 0,
        }
    )
    table, specs = demand.prepare(households, persons, definitions)
    results = demand.estimate(
        Design(table, weights="weight", strata="cunju", ids="psu"),
        table,
        specs,
        breakdowns=definitions["breakdowns"],
    )
    carers = results[results["team"] == "carers"]
    assert {"in_need_carers", "need_any_carers", "need_carers", "unmet_need_carers"} <= set(
        carers["variable"]
    )
    assert carers.loc[carers["variable"] == "need_any_carers", "estimate"].iloc[0] == pytest.approx(1.0)
    assert "carers" in set(demand.rank_services(results)["team"])
    assert "carers" in set(demand.service_table(results)["team"])
    loa = demand.needs_loa(definitions)
    assert loa["analysis_var"].str.startswith("carers:").any()
