"""The simulator: public totals, frame = population margins, a realistic biased sample, planted faults
that the export really contains, and byte-identical reruns."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.instrument import load_form
from analysis.simulate import (
    FAULT_KINDS,
    age_band,
    build_population,
    calibration,
    draw_sample,
    load_params,
    population_frame,
    truth,
    write_survey,
)

ROOT = Path(__file__).resolve().parents[1]
FORM = load_form(ROOT / "survey" / "instrument")


@pytest.fixture(scope="module")
def population():
    return build_population(2012)


@pytest.fixture(scope="module")
def small_survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    return write_survey(7, out, n_households=150, scale=0.1)


def test_population_equals_the_public_totals_and_frame_margins(population):
    persons = population.persons
    assert len(persons) == 220_000 and (persons["registration"] == "local").sum() == 110_000
    frame = population_frame(population)
    assert frame["population"].sum() == 220_000
    by_cunju = frame.groupby("cunju")["population"].sum()
    assert by_cunju.to_dict() == population.cunju.set_index("cunju")["residents"].to_dict()
    cells = (
        persons.assign(age_band=age_band(persons["age"]))
        .groupby(["cunju", "sex", "age_band", "registration"], observed=True)
        .size()
    )
    merged = frame.set_index(["cunju", "sex", "age_band", "registration"])["population"]
    assert (merged[merged > 0].sort_index().to_numpy() == cells.sort_index().to_numpy()).all()
    assert population.cunju["households"].sum() == len(population.households)


def test_only_evidenced_cunju_names_are_used(population):
    table = population.cunju
    named = table[table["name_evidence"] != "placeholder"]
    assert set(named["name_zh"]) <= {"勒流社区", "黄连社区", "江村", "龙眼", "新安", "冲鹤村"}
    assert table.loc[table["name_evidence"] == "placeholder", "name_zh"].str.startswith("村居").all()
    assert set(table["cunju"]) == set(FORM.choice_names("cunju"))


def test_needs_are_correlated_as_the_brief_says(population):
    persons = population.persons
    old = persons["age"] >= 60
    assert persons.loc[old, "disabled"].mean() > 3 * persons.loc[~old, "disabled"].mean()
    assert 0.04 < persons["disabled"].mean() < 0.06  # docs/sources.md §1.3: ~4.5–5.5% of residents
    young = persons[(persons["age"] >= 10) & (persons["age"] <= 24)]
    internet = young["youth_internet"] == "yes"
    assert (
        internet[young["registration"] == "nonlocal"].mean()
        > internet[young["registration"] == "local"].mean()
    )


@pytest.mark.slow
def test_stated_demand_ranks_elderly_disability_and_youth_above_family_as_the_2012_survey_found(population):
    table = truth(population)
    overall = table[(table["group"] == "all") & table["variable"].str.startswith("need_any_")]
    need_any = overall.set_index("team")["proportion"]
    assert set(need_any.index) == {"elderly", "disability", "youth", "family"}
    assert min(need_any[["elderly", "disability", "youth"]]) > need_any["family"] + 0.05, need_any.to_dict()


@pytest.mark.slow
def test_stated_demand_is_the_share_of_households_ticking_any_need_option():
    small = build_population(3, scale=0.1)
    table = truth(small)
    overall = table[table["group"] == "all"].set_index("variable")
    for team, services in small.services.items():
        ticked = small.households[[f"need_{team}.{s}" for s in [*services, "other"]]].to_numpy().any(axis=1)
        row = overall.loc[f"need_any_{team}"]
        assert (row["count"], row["denominator"]) == (ticked.sum(), len(small.households))
        assert row["unit"] == "households"


def test_respondents_are_of_both_sexes(population):
    assert set(population.households["resp_sex"]) == {"female", "male"}


def test_bundled_survey_matches_its_provenance_and_the_parameters():
    survey = ROOT / "survey"
    provenance = json.loads((survey / "raw" / "PROVENANCE.json").read_text(encoding="utf-8"))
    names = {
        "cunju": "frame/cunju.csv",
        "population_frame": "frame/population_frame.csv",
        "sample_design": "frame/sample_design.csv",
        "truth": "simulation/truth.csv",
        "faults": "simulation/faults.csv",
        "kobo_xlsx": "raw/kobo/leliu_needs_survey.xlsx",
        "kobo_households": "raw/kobo/leliu_needs.csv",
        "kobo_roster": "raw/kobo/roster.csv",
        "wjx": "raw/wjx/leliu_needs_wjx.csv",
    }
    for name, path in names.items():
        assert provenance["files"][name] == hashlib.sha256((survey / path).read_bytes()).hexdigest(), path
    params = json.dumps(load_params(), sort_keys=True, ensure_ascii=False).encode()
    assert provenance["parameters_sha256"] == hashlib.sha256(params).hexdigest(), "regenerate survey/"


@pytest.mark.slow
def test_survey_readme_numbers_are_those_of_the_bundled_survey(population):
    """survey/README.md's generated blocks equal what the code computes from the bundled survey."""
    sample = draw_sample(population, population.seed + 1)
    text = (ROOT / "survey" / "README.md").read_text(encoding="utf-8")
    blocks = calibration.readme_blocks(population, sample, ROOT / "survey")
    assert calibration.replace_blocks(text, blocks) == text, "run python -m analysis.simulate.calibration"


def test_sample_size_design_probabilities_and_nonresponse_bias(population):
    sample = draw_sample(population, 1)
    assert 1200 <= len(sample.households) <= 1800
    design = sample.design
    assert (
        (design["p_psu"] > 0) & (design["p_psu"] <= 1) & (design["p_hh"] > 0) & (design["p_hh"] <= 1)
    ).all()
    assert (design.groupby("cunju")["psu"].size() == design.groupby("cunju")["sampled_psus"].first()).all()
    # Horvitz–Thompson on the issued sample recovers the number of households (design is unbiased)
    weights = sample.issued["psu"].map(
        1 / (design.set_index("psu")["p_psu"] * design.set_index("psu")["p_hh"])
    )
    assert abs(weights.sum() / len(population.households) - 1) < 0.1
    # nonresponse: migrants are under-represented among respondents, so unweighted estimates are biased
    assert (sample.persons["registration"] == "nonlocal").mean() < 0.45


def test_sample_tables_are_clean_and_follow_the_contract(population):
    sample = draw_sample(population, 2)
    hh, persons = sample.households, sample.persons
    assert hh["household_id"].is_unique and persons["person_id"].is_unique
    assert not {"resp_name", "phone", "address", "id_number", "member_name"} & (
        set(hh.columns) | set(persons.columns)
    )
    for option in FORM.choice_names("need_elderly"):
        selected = hh["need_elderly"].str.split().apply(lambda names, option=option: option in names)
        assert (selected.astype(int) == hh[f"need_elderly.{option}"]).all()
    for column in ["wg_seeing", "adl_bathing", "iadl_transport", "relation", "sex"]:
        assert set(persons[column].dropna()) <= set(FORM.choice_names(column))
    assert persons.loc[persons["age"] < 60, "adl_bathing"].isna().all()
    assert (persons.groupby("household_id").size() == hh.set_index("household_id")["hh_size"]).all()


def test_draw_sample_is_deterministic(population):
    first = draw_sample(population, 5)
    second = draw_sample(population, 5)
    pd.testing.assert_frame_equal(first.households, second.households)
    pd.testing.assert_frame_equal(first.design, second.design)


def test_truth_overall_equals_the_sum_over_cunju():
    table = truth(build_population(3, scale=0.1))
    overall = table[table["group"] == "all"].set_index(["team", "variable"])["count"]
    by_cunju = table[table["group"] == "cunju"].groupby(["team", "variable"])["count"].sum()
    assert (overall.sort_index() == by_cunju.sort_index()).all()
    assert {"in_need_elderly", "in_need_disability", "in_need_youth", "in_need_family"} <= set(
        table["variable"]
    )
    assert table["proportion"].dropna().between(0, 1).all()


@pytest.mark.slow
def test_same_seed_gives_identical_files(small_survey, tmp_path):
    again = write_survey(7, tmp_path, n_households=150, scale=0.1)
    for name, path in small_survey.items():
        assert path.read_bytes() == again[name].read_bytes(), name


def test_every_kobo_column_maps_to_a_form_field(small_survey):
    fields = FORM.data_fields()
    allowed = set()
    for _, row in fields.iterrows():
        header = FORM.export_column(row["name"])
        allowed.add(header)
        if row["base_type"] == "select_multiple":
            allowed |= {f"{header}/{o}" for o in FORM.choice_names(row["name"])}
    for key in ("kobo_households", "kobo_roster"):
        columns = pd.read_csv(small_survey[key], nrows=0, encoding="utf-8-sig").columns
        unknown = [c for c in columns if not c.startswith("_") and c not in allowed]
        assert unknown == []
    sheets = pd.read_excel(small_survey["kobo_xlsx"], sheet_name=None, dtype=str, engine="openpyxl")
    assert list(sheets) == ["leliu_needs", "roster"]
    assert set(sheets["roster"]["_parent_index"]) <= set(sheets["leliu_needs"]["_index"])


def test_fault_manifest_matches_the_export(small_survey):
    hh = pd.read_csv(small_survey["kobo_households"], dtype=str, keep_default_na=False, encoding="utf-8-sig")
    roster = pd.read_csv(small_survey["kobo_roster"], dtype=str, keep_default_na=False, encoding="utf-8-sig")
    faults = pd.read_csv(small_survey["faults"], dtype=str, keep_default_na=False)
    assert set(faults["kind"]) == set(FAULT_KINDS)
    counts = hh["_uuid"].value_counts()
    roster = roster.assign(_k=roster.groupby("_parent_index").cumcount() + 1)
    for _, fault in faults.iterrows():
        rows = hh[hh["_uuid"] == fault["uuid"]]
        assert len(rows), fault.to_dict()
        if fault["kind"] == "exact_duplicate":
            assert counts[fault["uuid"]] == 2
            assert rows.drop(columns=["_id", "_index"]).drop_duplicates().shape[0] == 1
        elif fault["kind"] == "no_consent":
            assert (rows["consent"] == "no").all()
        elif fault["field"] != "record" and fault["member"] == "":
            column = FORM.export_column(fault["field"])
            assert (rows[column] == fault["injected_value"]).all(), fault.to_dict()
        elif fault["member"]:
            member = roster[
                (roster["_submission__uuid"] == fault["uuid"]) & (roster["_k"] == int(fault["member"]))
            ]
            assert (member[FORM.export_column(fault["field"])] == fault["injected_value"]).all(), (
                fault.to_dict()
            )
    assert counts.max() == 2 and (counts == 2).sum() == (faults["kind"] == "exact_duplicate").sum()
    assert faults.groupby("uuid")["kind"].nunique().max() == 1, "faults overlap, so the manifest is ambiguous"


def test_wjx_export_has_the_same_responses_in_gb18030(small_survey):
    kobo = pd.read_csv(
        small_survey["kobo_households"], dtype=str, keep_default_na=False, encoding="utf-8-sig"
    )
    wjx = pd.read_csv(small_survey["wjx"], dtype=str, keep_default_na=False, encoding="gb18030")
    assert list(wjx.columns[:6]) == ["序号", "提交答卷时间", "所用时间", "来源", "来源详情", "来自IP"]
    assert len(wjx) == len(kobo) and (wjx["序号"] == kobo["_index"]).all()
    assert wjx["所用时间"].str.fullmatch(r"\d+秒").all()
    priorities = next(c for c in wjx.columns if c.endswith("最应优先发展哪些服务？（最多选三项）"))
    assert wjx[priorities].str.contains("┋").any()
    assert (wjx.isin(["-2"]).any(axis=None)) and (wjx.isin(["-3"]).any(axis=None))


def test_fake_personal_data_is_realistic_in_form(small_survey):
    hh = pd.read_csv(small_survey["kobo_households"], dtype=str, keep_default_na=False, encoding="utf-8-sig")
    phones = hh.loc[hh["respondent/phone"] != "", "respondent/phone"]
    assert phones.str.fullmatch(r"1[3-9]\d{9}").all()
    ids = hh.loc[hh["respondent/id_number"] != "", "respondent/id_number"]
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    for number in ids:
        check = "10X98765432"[int(np.dot([int(d) for d in number[:17]], weights)) % 11]
        assert len(number) == 18 and number[-1] == check


@pytest.mark.slow
def test_a_million_person_population_builds():
    """Its time and memory are measured in the benchmark (make bench), not here."""
    big = build_population(1, scale=1_000_000 / 220_000)
    assert len(big.persons) == 1_000_000


# ----- a second wave -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def panel():
    """Two waves of a small Leliu (a quarter of the residents) sampled in 44 of its ~100 groups."""
    from analysis.simulate.waves import Panel

    params = load_params()
    params = {**params, "sample": {**params["sample"], "psus": 44}}
    return Panel(build_population(7, params=params, scale=0.25))


def test_a_year_on_everyone_is_older_and_answers_persist(panel):
    first, second = panel.first.persons.set_index("person_id"), panel.second.persons.set_index("person_id")
    assert panel.years == (2012, 2013) and second.index.is_unique
    stayed = first.index.intersection(second.index)
    assert 0.7 < len(stayed) / len(first) < 0.95  # deaths and households leaving (migrant turnover 25%)
    assert (second.loc[stayed, "age"] == first.loc[stayed, "age"] + 1).all()
    born = second.index.difference(first.index)
    babies = second.loc[born].query("age == 0")
    assert len(babies) and (babies["relation"] == "child").all()
    # keyed draws: a disability, once there, stays; registration never changes
    assert not (first.loc[stayed, "disabled"] & ~second.loc[stayed, "disabled"]).any()
    assert (first.loc[stayed, "registration"] == second.loc[stayed, "registration"]).all()
    assert abs(len(panel.second.persons) / len(panel.first.persons) - 1) < 0.03


def test_receiving_only_grows_where_need_persists(panel):
    """Monotone coupling: a household receiving a service in 2012 that still needs it receives it in 2013."""
    keep = panel.first.households["household_id"].isin(panel.second.households["household_id"])
    first = panel.first.households[keep].set_index("household_id")
    second = panel.second.households.set_index("household_id").loc[first.index]
    for team, services in panel.first.services.items():
        for s in services:
            still = (first[f"need_{team}.{s}"] == 1) & (second[f"need_{team}.{s}"] == 1)
            lost = still & (first[f"receiving_{team}.{s}"] == 1) & (second[f"receiving_{team}.{s}"] == 0)
            assert not lost.any(), (team, s)


@pytest.mark.slow
def test_the_planted_change_raises_reach_and_awareness_and_lowers_unmet_need(panel):
    change = panel.truth[panel.truth["group"] == "all"].set_index("variable")["proportion_change"]
    assert change["aware_centre"] > 0.1
    for team in panel.first.services:
        assert change[f"reach_{team}"] > 0, team
    assert {"count_2012", "count_2013", "proportion_2012", "proportion_2013", "count_change"} <= set(
        panel.truth.columns
    )
    bundled = pd.read_csv(
        ROOT / "survey" / "waves" / "2013" / "simulation" / "truth_change.csv", dtype={"group_value": str}
    )
    bundled = bundled[bundled["group"] == "all"].set_index("variable")["proportion_change"]
    assert bundled["aware_centre"] > 0.1
    for team in panel.first.services:  # the whole population: unmet need falls for every team
        assert bundled[f"reach_{team}"] > 0.01 and bundled[f"unmet_{team}"] < 0, team


def test_the_second_wave_revisits_the_groups_or_draws_fresh_ones(panel):
    pair = panel.draw_pair(3)
    first, second = pair.first.design.set_index("psu"), pair.second.design.set_index("psu")
    assert list(first.index) == list(second.index)
    assert (second["p_psu"] == first["p_psu"]).all()  # the first-stage selection is the 2012 one
    sizes = panel.second.groups.set_index("psu")["households"]
    assert (second["psu_households"] == sizes.loc[second.index]).all()
    assert np.allclose(second["p_hh"], second["households_issued"] / second["psu_households"])
    assert not set(pair.first.households["household_id"]) >= set(pair.second.households["household_id"])
    fresh = panel.draw_pair(3, fresh_psus=True)
    assert set(fresh.second.design["psu"]) != set(fresh.first.design["psu"])
    assert set(pair.frames) == {2012, 2013} and pair.frames[2013]["population"].sum() == len(
        panel.second.persons
    )
    again = panel.draw_pair(3)
    pd.testing.assert_frame_equal(again.second.households, pair.second.households)


@pytest.mark.slow
def test_wave_survey_files_are_byte_identical_on_rerun(tmp_path):
    from analysis.simulate.waves import write_wave_survey

    first = write_wave_survey(7, 2013, tmp_path / "a", n_households=120, scale=0.1, formats=("kobo_csv",))
    second = write_wave_survey(7, 2013, tmp_path / "b", n_households=120, scale=0.1, formats=("kobo_csv",))
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name
    provenance = json.loads(first["provenance"].read_text(encoding="utf-8"))
    assert (provenance["wave"], provenance["psus"]) == (2013, "revisited")
    change = pd.read_csv(first["truth_change"])
    hh = pd.read_csv(first["kobo_households"], dtype=str, encoding="utf-8-sig")
    assert hh["start"].str.startswith("2013-").all() and len(change)


def test_bundled_2013_wave_matches_its_provenance():
    wave = ROOT / "survey" / "waves" / "2013"
    provenance = json.loads((wave / "raw" / "PROVENANCE.json").read_text(encoding="utf-8"))
    assert (provenance["wave"], provenance["first_wave"], provenance["seed"]) == (2013, 2012, 2012)
    for name, digest in provenance["files"].items():
        path = next(p for p in wave.rglob("*") if p.is_file() and _file_key(p) == name)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name
    params = json.dumps(load_params(), sort_keys=True, ensure_ascii=False).encode()
    assert provenance["parameters_sha256"] == hashlib.sha256(params).hexdigest(), (
        "regenerate survey/waves/2013"
    )


def _file_key(path: Path) -> str:
    """The PROVENANCE.json key of a survey file (as write_wave names them)."""
    keys = {
        "leliu_needs_survey.xlsx": "kobo_xlsx",
        "leliu_needs.csv": "kobo_households",
        "roster.csv": "kobo_roster",
        "leliu_needs_wjx.csv": "wjx",
    }
    return keys.get(path.name, path.stem)


@pytest.mark.slow
def test_an_unknown_wave_is_one_clear_error(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "simulate",
            "--wave",
            "2030",
            "--seed",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "waves.2030" in done.stderr
